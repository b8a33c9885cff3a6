"""CSV exports over HTTP (issue 15): one row per PR and the monthly summary, on the dashboard seed, with the JSON
report's auth, and the pages' download links; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.csv_rows import MONTHLY_HEADER, PULL_HEADER
from app.settings import Settings
from app.tables import PULLS
from tests.dashboard_seed import PERIOD, WIDGETS, seeded_client
from tests.support import sign_in


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.fixture
def seeded(settings: Settings, factory: sessionmaker[Session]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    with seeded_client(settings, factory) as pair:
        yield pair


def test_pull_rows_over_http(seeded: tuple[TestClient, dict[str, str]], factory: sessionmaker[Session]) -> None:
    client, tokens = seeded
    with factory() as session, session.begin():  # an attacker-chosen title
        session.execute(sa.update(PULLS).where(PULLS.c.repo == WIDGETS, PULLS.c.number == 2).values(title="=1+1"))
    auth = {"Authorization": f"Bearer {tokens['acme']}"}
    answer = client.get(f"/v1/repos/{WIDGETS}/report.csv", params=PERIOD, headers=auth)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"].startswith('attachment; filename="tokentrail-acme-widgets-pulls-')
    rows = read(answer.text)
    assert tuple(rows[0]) == PULL_HEADER
    by_number = {row[1]: dict(zip(PULL_HEADER, row, strict=True)) for row in rows[1:]}
    assert sorted(by_number) == ["1", "2", "3", "4"]
    first = by_number["1"]
    assert (first["repo"], first["title"], first["author"], first["outcome"]) == (
        WIDGETS,
        "Add a cache layer",
        "alice",
        "merged",
    )
    assert (first["cost_usd"], first["total_cost_usd"], first["changed_lines"]) == ("2", "2.1", "400")
    assert first["cost_per_changed_line_usd"] == "0.00525"
    assert (first["input_tokens"], first["output_tokens"], first["reverted"]) == ("2000", "400", "false")
    assert by_number["2"]["title"] == "'=1+1" and by_number["2"]["outcome"] == "closed"
    assert '"\'=1+1"' in answer.text
    assert by_number["3"]["title"] == "Write the guide <draft> & co" and by_number["3"]["outcome"] == "open"
    assert by_number["4"]["unpriced_records"] == "1"


def test_monthly_summary_and_auth(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    auth = {"Authorization": f"Bearer {tokens['acme']}"}
    answer = client.get("/v1/orgs/acme/report.csv", params={**PERIOD, "kind": "monthly"}, headers=auth)
    assert answer.status_code == 200, answer.text
    rows = read(answer.text)
    assert tuple(rows[0]) == MONTHLY_HEADER
    table = {(r[1], r[2]): r for r in rows[1:]}
    assert {key: (row[0], row[3], row[-1]) for key, row in table.items()} == {
        ("acme/gateway", "claude-code"): ("2026-10", "1", "1"),
        ("acme/gateway", "codex"): ("2026-10", "0.1", "0"),
        (WIDGETS, "claude-code"): ("2026-10", "5.2", "3"),
        (WIDGETS, "codex"): ("2026-10", "1.45", "2"),
    }
    assert sum(Decimal(r[3]) for r in rows[1:]) == Decimal("7.75")  # the owner's books, as the JSON report says
    assert client.get("/v1/orgs/acme/report.csv", params=PERIOD).status_code == 401
    other = {"Authorization": f"Bearer {tokens['umbrella']}"}
    assert client.get("/v1/orgs/acme/report.csv", params=PERIOD, headers=other).status_code == 403
    assert client.get(f"/v1/repos/{WIDGETS}/report.csv", params=PERIOD, headers=other).status_code in (403, 404)
    assert client.get("/v1/orgs/acme/report.csv", params={"since": "nope"}, headers=auth).status_code == 422
    assert client.get("/v1/orgs/acme/report.csv", params={"kind": "people"}, headers=auth).status_code == 422


def test_the_pages_link_downloads_for_the_signed_in_browser(seeded: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = seeded
    assert client.get("/exports/acme/report.csv", params=PERIOD, follow_redirects=False).status_code == 303
    sign_in(client, tokens["acme"])
    page = client.get(f"/dashboard/{WIDGETS}", params=PERIOD).text
    link = f"/exports/{WIDGETS}/report.csv?since={PERIOD['since']}&amp;until={PERIOD['until']}"
    assert f'href="{link}"' in page and f'href="{link}&amp;kind=monthly"' in page
    browser = client.get(f"/exports/{WIDGETS}/report.csv", params=PERIOD)
    api = client.get(
        f"/v1/repos/{WIDGETS}/report.csv", params=PERIOD, headers={"Authorization": f"Bearer {tokens['acme']}"}
    )
    assert browser.status_code == 200 and browser.text == api.text
    assert client.get("/exports/umbrella/report.csv", params=PERIOD).status_code == 403
