"""The dashboard's Content-Security-Policy in a real browser: headless Chromium loads each kind of page of a
seeded demo server and reports no policy violation on its console, so the one inline <style> block (allowed by
its hash) and the inline SVG charts render, while nothing else could."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import LiveServer, make_token
from tests.dashboard_seed import WIDGETS, seed
from tests.e2e.test_browser import CHROMIUM, QUERY, _settled, server  # noqa: F401 - the demo server fixture


def console_of(profile: Path, url: str) -> tuple[str, str]:
    """(the DOM, the console log) of `url` in headless Chromium."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser test needs Debian's chromium (apt-get install -y chromium)")
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"chromium failed ({result.returncode}):\n{result.stderr[-2000:]}"
    return result.stdout, result.stderr


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_page_violates_the_policy(server: LiveServer, factory: sessionmaker[Session], tmp_path: Path) -> None:
    tokens = {owner: make_token(factory, owner) for owner in ("acme", "umbrella")}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        seed(http, tokens)
        _settled(http, tokens["acme"])
    pages = {
        "owner": f"/dashboard/acme?{QUERY}",
        "repository": f"/dashboard/{WIDGETS}?{QUERY}",
        "pull request": f"/dashboard/{WIDGETS}/pulls/1",
        "another owner (403)": "/dashboard/umbrella",
    }
    for what, path in pages.items():
        dom, console = console_of(tmp_path / "profile", server.url + path)
        assert "<style>" in dom and "</html>" in dom, what
        violations = [line for line in console.splitlines() if "Content Security Policy" in line]
        assert violations == [], f"{what}: {violations}"
    assert "<svg" in console_of(tmp_path / "profile", server.url + pages["repository"])[0]
