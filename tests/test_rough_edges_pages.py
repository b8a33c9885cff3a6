"""Rough edges of the dashboard and the PR endpoint a newcomer met (issue 12 §4): what was posted is shown, empty
and error states say what they mean, and a fork's PR says where it comes from. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.settings import Settings
from tests.dashboard_seed import PERIOD, WIDGETS, seeded_client
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
