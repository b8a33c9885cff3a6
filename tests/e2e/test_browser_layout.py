"""Every dashboard page at a desktop's width (1400 px) and a phone's (390 px), in headless Chromium: no text may
overflow its box. Measured in the DOM (`scrollWidth` against `clientWidth`), never by comparing pixels:

- the page itself never scrolls sideways (tables scroll inside their `.table-wrap`, charts scale by `viewBox`);
- no element holding text is wider inside than its box, except deliberate scroll containers (`overflow-x: auto`
  or `scroll`) and what they hold;
- no text of a chart reaches outside its SVG's `viewBox` (a clipped label).

Screenshots of each page at each width are saved under test-artifacts/layout/ for a human to look at."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import ROOT, LiveServer, make_token, start_server
from tests.dashboard_seed import GATEWAY, PERIOD, PULLS, WIDGETS, seed
from tests.e2e.cdp import Browser
from tests.e2e.test_browser import _settled

ARTIFACTS = ROOT / "test-artifacts" / "layout"
WIDTHS = (1400, 390)
QUERY = f"since={PERIOD['since']}&until={PERIOD['until']}"

# The measurement, run in the page: a list of what overflows, each described well enough to find it.
OVERFLOWS = (Path(__file__).parent / "overflows.js").read_text()


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(
        database_url=database_url,
        log=tmp_path / "server.log",
        env={"TOKENTRAIL_DEMO_MODE": "true", "TOKENTRAIL_DEMO_OWNER": "acme", "TOKENTRAIL_DRY_RUN": "true"},
    )
    yield live
    live.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    opened = Browser(tmp_path / "chromium-profile")
    yield opened
    opened.close()


def _pages(base: str) -> dict[str, str]:
    pages = {
        "owner": f"{base}/dashboard/acme?{QUERY}",
        "repository": f"{base}/dashboard/{WIDGETS}?{QUERY}",
        "repository-gateway": f"{base}/dashboard/{GATEWAY}?{QUERY}",
        "repository-default-period": f"{base}/dashboard/{WIDGETS}",
        "not-found": f"{base}/dashboard/acme/typo",
        "malformed": f"{base}/dashboard/{WIDGETS}/pulls/abc",
    }
    for repo, number, *_ in PULLS:
        pages[f"pull-{repo.split('/')[1]}-{number}"] = f"{base}/dashboard/{repo}/pulls/{number}"
    return pages


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_text_overflows_on_any_page_at_desktop_and_phone_width(
    server: LiveServer, factory: sessionmaker[Session], browser: Browser
) -> None:
    tokens = {owner: make_token(factory, owner) for owner in ("acme", "umbrella")}
    with httpx.Client(base_url=server.url, timeout=30) as http:
        seed(http, tokens)
        _settled(http, tokens["acme"])
        # Long names, as real repositories and branches have them, on a PR of their own.
        long_branch = "feature/" + "very-long-branch-name-" * 4 + "end"
        seed_long_names(http, tokens["acme"], branch=long_branch)
        seed_cache_sessions(http, tokens["acme"])
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    problems: dict[str, list[str]] = {}
    for label, url in _pages(server.url).items():
        for width in WIDTHS:
            browser.open(url, width=width)
            found = browser.evaluate(OVERFLOWS)
            shot = browser.screenshot(ARTIFACTS / f"{label}-{width}.png")
            assert shot.startswith(b"\x89PNG\r\n\x1a\n"), label
            if found:
                problems[f"{label} at {width}px"] = found
    assert not problems, json.dumps(problems, indent=2, ensure_ascii=False)


def seed_long_names(http: httpx.Client, token: str, *, branch: str) -> None:
    """Unmatched usage on a long branch name: the branch chart and table must hold it at 390 px."""
    record = {
        "id": "long-1",
        "timestamp": "2026-10-12T10:00:00+00:00",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 10,
        "output_tokens": 10,
        "cost_usd": "0.12",
        "repo": WIDGETS,
        "branch": branch,
        "actor": "someone-with-a-rather-long-login-name",
        "agent": "claude-code",
    }
    answer = http.post("/v1/usage", json=[record], headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and not answer.json()["rejected"], answer.text


def seed_cache_sessions(http: httpx.Client, token: str) -> None:
    """Sessions on PR #1 that read their cache, and one with a long id that hardly does: the PR page lists it in
    its table of sessions far below the repository's cache-read share, and shows the cache line."""
    sessions = [
        ("layout-a", 20_000, 80_000),
        ("layout-b", 15_000, 85_000),
        ("session-" + "0123456789abcdef" * 4, 90_000, 10_000),
    ]
    records = [
        {
            "id": f"cache-{index}",
            "timestamp": f"2026-10-05T10:{10 + index}:00+00:00",
            "provider": "anthropic",
            "model": "claude-sonnet-4-5",
            "input_tokens": uncached,
            "cache_read_tokens": reads,
            "cache_write_tokens": 5_000,
            "output_tokens": 100,
            "cost_usd": "0",  # the seeded history's figures stay as they are
            "repo": WIDGETS,
            "branch": "feat/cache",
            "session_id": session,
            "actor": "alice",
            "agent": "claude-code",
        }
        for index, (session, uncached, reads) in enumerate(sessions)
    ]
    auth = {"Authorization": f"Bearer {token}"}
    answer = http.post("/v1/usage", json=records, headers=auth)
    assert answer.status_code == 200 and not answer.json()["rejected"], answer.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the server's worker has matched them to PR #1
        if http.get(f"/v1/repos/{WIDGETS}/pulls/1", headers=auth).json()["cache"]["cache_read_tokens"]:
            return
        time.sleep(0.2)
    raise AssertionError("the cache sessions were not matched to PR #1")
