"""`tokentrail demo` from the command line: seeds through the real endpoints, prints where to look and a rendered
comment, and a second run starts cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, free_port


def run_demo(database: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "demo", "--no-serve", "--port", str(port), "--database", str(database)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("TOKENTRAIL_")},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_demo_seeds_prints_and_runs_twice(tmp_path: Path) -> None:
    database = tmp_path / "demo.db"
    first = run_demo(database, free_port())
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "dashboard" in out and "/dashboard/acme" in out
    assert "<!-- tokentrail:pr-comment -->" in out
    assert "AI spend on this pull request" in out
    assert "per changed line" in out
    second = run_demo(database, free_port())
    assert second.returncode == 0, second.stderr
    # A fresh database each time: the same history, so the same comment.
    marker = "AI spend on this pull request"
    headline = next(line for line in out.splitlines() if marker in line)
    assert any(marker in line and line.split("**")[1] == headline.split("**")[1] for line in second.stdout.splitlines())


def test_demo_pages_show_the_figures_of_the_api(tmp_path: Path) -> None:
    """The demo as a newcomer meets it: served, open without login, the page's numbers equal the API's."""
    import re
    from decimal import Decimal

    import httpx

    from app.formatting import format_usd

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--port", str(port), "--database", str(tmp_path / "demo.db")],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("TOKENTRAIL_")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:  # bounded: the demo prints "Press Ctrl-C" once it has seeded
            lines.append(line)
            if "Press Ctrl-C" in line or len(lines) > 500:
                break
        output = "".join(lines)
        token_match = re.search(r"^export TOKEN=(tt_[\w-]+)$", output, flags=re.MULTILINE)
        assert token_match, output
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as http:
            auth = {"Authorization": f"Bearer {token_match.group(1)}"}
            period: dict[str, str] = {}  # the default period, the last 30 days, holds the whole demo
            report = http.get("/v1/repos/acme/widgets/report", headers=auth, params=period).json()
            page = http.get("/dashboard/acme/widgets", params=period)
            summary = http.get("/v1/repos/acme/widgets/pulls/101", headers=auth).json()
            pull_page = http.get("/dashboard/acme/widgets/pulls/101")
            # what came of the work (issue 15): #121 went through two rounds of changes, #122 reverts #101
            loops = http.get("/v1/repos/acme/widgets/pulls/121", headers=auth).json()
            revert = http.get("/v1/repos/acme/widgets/pulls/122", headers=auth).json()
            csv_text = http.get("/v1/repos/acme/widgets/report.csv", headers=auth).text
        assert page.status_code == 200 and pull_page.status_code == 200
        assert Decimal(report["cost_usd"]) > 0
        assert format_usd(Decimal(report["cost_usd"])) in page.text
        wasted = Decimal(report["spend_that_produced_nothing_usd"])
        assert wasted > 0 and format_usd(wasted) in page.text
        assert format_usd(Decimal(summary["usage"]["cost_usd"])) in pull_page.text
        assert page.text.count("<svg") >= 4
        assert summary["review"]["outcome"] == "reverted" and summary["review"]["reverted_by"]["pull_request"] == 122
        assert "spent on work that was reverted" in pull_page.text
        assert revert["review"]["reverts"] == {"pull_request": 101, "cost_usd": summary["usage"]["cost_usd"]}
        assert loops["review"]["rounds"] == 2 and Decimal(loops["review"]["spend_in_rounds_usd"]) > 0
        assert report["outcomes"]["reverted"]["pull_requests"] == 1
        assert report["by_agent_model"] and "What ships, per agent and model" in page.text
        assert "\r\nacme/widgets,101," in csv_text and ",reverted," in csv_text
        # Every address printed bare opens in a browser (no token); API calls are printed as curl commands.
        bare = [
            url
            for line in output.split("The comment on")[0].splitlines()  # the listing, not the comment's links
            if "curl " not in line
            for url in re.findall(r"http://\S+", line)
        ]
        assert len(bare) >= 3, output
        with httpx.Client(timeout=30, follow_redirects=True) as browser:
            for url in bare:
                assert browser.get(url).status_code == 200, url
        assert "Sign out" not in pull_page.text  # demo mode without a session: nothing to sign out of
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()
