"""The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium) against `tokentrail serve` in demo
mode, seeded over HTTP. Checks the figures and charts of the rendered DOM and saves screenshots (desktop and phone
width) to test-artifacts/ for a human to look at.

Chromium is required: without it this test fails (install it with `apt-get install -y chromium`)."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.formatting import format_usd
from tests.conftest import ROOT, LiveServer, make_token, start_server
from tests.dashboard_seed import PERIOD, WIDGETS, WIDGETS_EXPECTED, seed

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
QUERY = f"since={PERIOD['since']}&until={PERIOD['until']}"
# No chart ranks people by spend (issue 15): authors are a table by name, with outcomes beside spend.
OVERVIEW_CHARTS = ["chart-spend", "chart-outcomes", "chart-merged", "chart-agents", "chart-branches"]
# A repository's page also draws the weekly share of its spend that went into review rounds.
REPO_CHARTS = [*OVERVIEW_CHARTS[:3], "chart-review-loops", *OVERVIEW_CHARTS[3:]]


def chromium(profile: Path, *arguments: str) -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser test needs Debian's chromium (apt-get install -y chromium)")
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *arguments,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}"
    return result.stdout


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(
        database_url=database_url,
        log=tmp_path / "server.log",
        env={"TOKENTRAIL_DEMO_MODE": "true", "TOKENTRAIL_DEMO_OWNER": "acme", "TOKENTRAIL_DRY_RUN": "true"},
    )
    yield live
    live.stop()


def _settled(http: httpx.Client, token: str) -> dict[str, Any]:
    """The report once the server's worker has matched every record and applied every close."""
    deadline = time.monotonic() + 60
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = http.get(
            f"/v1/repos/{WIDGETS}/report", params=PERIOD, headers={"Authorization": f"Bearer {token}"}
        ).json()
        outcomes = {name: (o["cost_usd"], o["pull_requests"]) for name, o in body["outcomes"].items()}
        if outcomes == WIDGETS_EXPECTED["outcomes"] and len(body["cost_per_merged_line_by_week"]) == 2:
            return body
        time.sleep(0.2)
    raise AssertionError(f"the worker did not settle the seeded history: {body.get('outcomes')}")


def _svgs(dom: str) -> list[str]:
    return re.findall(r'<svg[^>]*aria-labelledby="([\w-]+)-title', dom)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_dashboard_in_chromium(server: LiveServer, factory: sessionmaker[Session], tmp_path: Path) -> None:
    tokens = {owner: make_token(factory, owner) for owner in ("acme", "umbrella")}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        seed(http, tokens)
        body = _settled(http, tokens["acme"])
    profile = tmp_path / "chromium-profile"

    repo_url = f"{server.url}/dashboard/{WIDGETS}?{QUERY}"
    dom = chromium(profile, "--dump-dom", repo_url)
    assert "<h1>AI spend in acme/widgets</h1>" in dom
    assert f'data-figure="total">{format_usd(Decimal(body["cost_usd"]))}<' in dom
    assert 'data-figure="total">$6.65<' in dom
    assert 'data-figure="wasted">$3.00<' in dom
    assert 'data-figure="per-line">$0.00522<' in dom
    for outcome, (cost, _) in WIDGETS_EXPECTED["outcomes"].items():
        assert f'data-outcome="{outcome}">{format_usd(Decimal(cost))}<' in dom
    assert _svgs(dom) == REPO_CHARTS
    assert dom.count('<title id="chart-') == len(REPO_CHARTS)
    assert "demo mode" in dom
    # What ships, per agent and model: every row of the JSON, greyed out under 5 PRs (all of the seed's are)
    assert body["by_agent_model"] and '<table class="routing">' in dom
    for row in body["by_agent_model"]:
        assert f'data-agent="{row["agent"] or ""}" data-model="{row["model"]}"' in dom
        assert format_usd(Decimal(row["cost_usd"])) in dom
    assert dom.count('<tr class="thin"') == len(body["by_agent_model"])

    assert "AI spend of acme" in chromium(profile, "--dump-dom", f"{server.url}/")  # demo mode: / opens acme
    owner_dom = chromium(profile, "--dump-dom", f"{server.url}/dashboard/acme?{QUERY}")
    assert 'data-figure="total">$7.75<' in owner_dom
    assert _svgs(owner_dom) == ["chart-repositories", *OVERVIEW_CHARTS]

    pull_dom = chromium(profile, "--dump-dom", f"{server.url}/dashboard/{WIDGETS}/pulls/1")
    assert 'data-figure="pr-total">$2.10<' in pull_dom and _svgs(pull_dom) == ["chart-timeline"]

    ARTIFACTS.mkdir(exist_ok=True)
    shots = {
        "dashboard.png": (repo_url, "1280,2000"),
        "dashboard-phone.png": (repo_url, "390,2000"),
        "pull-request.png": (f"{server.url}/dashboard/{WIDGETS}/pulls/1", "1280,1400"),
    }
    for name, (url, size) in shots.items():
        target = ARTIFACTS / name
        target.unlink(missing_ok=True)
        chromium(profile, f"--screenshot={target}", f"--window-size={size}", url)
        data = target.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000, name
