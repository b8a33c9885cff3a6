"""Rough edges of the dashboard and the PR endpoint a newcomer met (issue 12 §4): what was posted is shown, empty
and error states say what they mean, and a fork's PR says where it comes from. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import Settings
from tests.conftest import make_token
from tests.dashboard_seed import PERIOD, WIDGETS, at, seeded_client
from tests.github_payloads import make_pull_request_event, webhook_headers
from tests.support import sign_in


@pytest.fixture
def seeded(settings: Settings, factory: sessionmaker[Session]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with seeded_client(settings, factory) as pair:
        yield pair


def test_the_stored_check_run_is_on_the_pr_endpoint_and_page(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    auth = {"Authorization": f"Bearer {tokens['acme']}"}
    summary = client.get(f"/v1/repos/{WIDGETS}/pulls/1", headers=auth).json()
    check = summary["published"]["check_run"]
    assert check is not None
    assert check["conclusion"] in {"success", "neutral", "failure", "action_required"}
    assert check["title"] and check["summary"].strip()
    assert check["rendered_at"] == summary["published"]["generated_at"]
    datetime.fromisoformat(check["rendered_at"])
    assert check["posted"] is False and check["id"] is None  # dry-run: rendered and stored, nothing sent

    sign_in(client, tokens["acme"])
    html = client.get(f"/dashboard/{WIDGETS}/pulls/1").text
    assert 'id="check-run"' in html
    assert check["title"] in html and f'data-conclusion="{check["conclusion"]}"' in html
    assert "not sent to GitHub (dry-run)" in html


def test_a_fresh_server_says_how_to_connect_github(settings: Settings, factory: sessionmaker[Session]) -> None:
    """No PR, no spend: no "The 0 pull requests", no red $0.00, no "all spend is linked", and the way in."""
    token = make_token(factory, "acme")
    with TestClient(create_app(settings, run_worker=False)) as client:
        sign_in(client, token)
        for path in ("/dashboard/acme",):
            page = client.get(path)
            assert page.status_code == 200
            html = page.text
            assert "The 0 pull requests" not in html
            assert "All spend in this period is linked" not in html
            assert '<li class="bad">' not in html  # $0.00 is not shown as a loss
            assert 'href="/github/setup"' in html and "webhook" in html


def test_a_seeded_owner_shows_no_setup_hint_and_keeps_its_figures(
    seeded: tuple[TestClient, dict[str, str]],
) -> None:
    client, tokens = seeded
    sign_in(client, tokens["acme"])
    html = client.get("/dashboard/acme", params=PERIOD).text
    assert 'href="/github/setup"' not in html
    assert '<li class="bad">' in html  # $3.00 spent on a PR closed without merge
    assert "The 5 pull requests with the most spend" in html


def test_an_unknown_repository_is_a_404_page(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    sign_in(client, tokens["acme"])
    assert client.get(f"/dashboard/{WIDGETS}", params=PERIOD).status_code == 200
    typo = client.get("/dashboard/acme/typo")
    assert typo.status_code == 404 and typo.headers["content-type"].startswith("text/html")
    assert "acme/typo" in typo.text and "<h1>" in typo.text


@pytest.mark.parametrize(
    "path", [f"/dashboard/{WIDGETS}/pulls/abc", f"/dashboard/{WIDGETS}/pulls/0", "/dashboard/a%20b"]
)
def test_a_malformed_dashboard_url_is_an_html_page(seeded: tuple[TestClient, dict[str, str]], path: str) -> None:
    client, tokens = seeded
    sign_in(client, tokens["acme"])
    page = client.get(path)
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html"), page.text
    assert "<h1>" in page.text and '"detail"' not in page.text
    api = client.get(f"/v1/repos/{WIDGETS}/pulls/abc", headers={"Authorization": f"Bearer {tokens['acme']}"})
    assert api.status_code == 422 and api.headers["content-type"].startswith("application/json")  # the API's JSON


def test_demo_mode_hides_sign_out_when_nobody_signed_in(settings: Settings, factory: sessionmaker[Session]) -> None:
    demo = settings.model_copy(update={"demo_mode": True, "demo_owner": "acme"})
    with seeded_client(demo, factory) as (client, tokens):
        page = client.get(f"/dashboard/{WIDGETS}", params=PERIOD).text
        assert "demo mode" in page and "Sign out" not in page
        sign_in(client, tokens["acme"])  # a real session can end
        assert "Sign out" in client.get(f"/dashboard/{WIDGETS}", params=PERIOD).text


def test_a_fork_pull_request_says_it_comes_from_a_fork(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    event = make_pull_request_event(
        "opened", repo=WIDGETS, number=9, title="Typo fix", author="outsider", head_ref="patch-1",
        head_repo="outsider/widgets", head_sha="9" * 40, created_at=at(15),
    )  # fmt: skip
    body = json.dumps(event).encode()
    assert (
        client.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body)).status_code == 202
    )
    client.app.state.worker.run_until_idle()  # type: ignore[attr-defined]
    sign_in(client, tokens["acme"])
    fork = client.get(f"/dashboard/{WIDGETS}/pulls/9").text
    assert "from the fork" in fork and "outsider/widgets" in fork
    assert "from the fork" not in client.get(f"/dashboard/{WIDGETS}/pulls/1").text
