"""Cache efficiency in the database (issue 15), on SQLite and PostgreSQL: the PR summary's and the repository
report's `cache` equal a record-by-record computation at each record's own model and day; the PR page lists the
sessions far below the repository's median cache-read share (the boundary is not listed), and another owner's
records never move that median nor join the list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.cache_books import pull_low_cache_sessions
from app.db import utcnow
from app.formatting import format_pct, format_usd, usd_json
from app.main import create_app
from app.pricing import cache_prices
from app.settings import Settings
from app.tables import PULLS, USAGE
from tests.conftest import make_token
from tests.support import sign_in

REPO = "acme/widgets"
PERIOD = {"since": "2026-10-01", "until": "2026-10-31"}


@dataclass(frozen=True)
class Rec:
    owner: str
    repo: str
    pr: int | None
    session: str | None
    day: int
    model: str
    provider: str | None
    input_tokens: int
    reads: int
    writes: int = 0
    private: bool = False
    actor: str = "alice"


SONNET = ("claude-sonnet-4-5", "anthropic")
REPRICED = ("deepseek/deepseek-v4-flash", "avian")  # genai-prices changes its price on 2026-10-18
MYSTERY = ("mystery-model-x", "acme-internal")

RECORDS = [
    # PR 7: three sessions to compare, one too small to, and calls outside any session on several models and days.
    Rec("acme", REPO, 7, "s-good", 10, *SONNET, 20_000, 80_000),
    Rec("acme", REPO, 7, "s-at", 11, *SONNET, 50_000, 40_000, 10_000),  # share 0.4: exactly half the median
    Rec("acme", REPO, 7, "s-under", 12, *SONNET, 50_001, 39_999, 10_000),  # just under half
    Rec("acme", REPO, 7, "s-tiny", 12, *SONNET, 1_000, 0),
    Rec("acme", REPO, 7, None, 17, *REPRICED, 10_000, 3_000_000, 0),
    Rec("acme", REPO, 7, None, 18, *REPRICED, 10_000, 5_000_000, 0),
    Rec("acme", REPO, 7, None, 18, *SONNET, 10_000, 700_000, 90_000),
    Rec("acme", REPO, 7, None, 19, *MYSTERY, 10_000, 500_000, 0),
    # The rest of the repository's books: another PR and unmatched calls.
    Rec("acme", REPO, 8, "p8-a", 13, *SONNET, 20_000, 80_000),
    Rec("acme", REPO, 8, "p8-b", 14, *SONNET, 25_000, 100_000),
    Rec("acme", REPO, 8, "p8-c", 14, "gpt-5", "openai", 10_000, 90_000),
    Rec("acme", REPO, None, "u-a", 15, *SONNET, 30_000, 70_000),
    # Another owner: the same session id in its own repository, and a call matched to acme's PR without consent
    # (it counts on no acme figure). Either would put s-good far below the median if it leaked in.
    Rec("umbrella", "umbrella/x", None, "s-good", 12, *SONNET, 10_000_000, 0, actor="mallory"),
    Rec("umbrella", "umbrella/fork", 7, "s-good", 12, *SONNET, 10_000_000, 0, private=True, actor="mallory"),
]
# Shares of the repository's sessions with enough input: 0.8, 0.4, 0.39999, 0.8, 0.8, 0.9, 0.7 → median 0.8.
MEDIAN = Decimal("0.8")


def _seed(factory: sessionmaker[Session]) -> None:
    now = utcnow()
    with factory() as session, session.begin():
        for number in (7, 8):
            session.execute(sa.insert(PULLS).values(
                repo=REPO, number=number, title=f"PR {number}", author="alice", state="open", merged=False,
                additions=10, deletions=2, created_at=datetime(2026, 10, 9, tzinfo=UTC), updated_at=now,
                head_sha="a" * 40, head_ref=f"feat/{number}",
            ))  # fmt: skip
        for index, r in enumerate(RECORDS):
            session.execute(sa.insert(USAGE).values(
                source="api", record_id=f"r{index}", timestamp=datetime(2026, 10, r.day, 10, tzinfo=UTC),
                model=r.model, provider=r.provider, owner=r.owner, repo=r.repo, received_at=now,
                pr_repo=None if r.pr is None else REPO, pr_number=r.pr, pr_private=r.private,
                session_id=r.session, input_tokens=r.input_tokens, cache_read_tokens=r.reads,
                cache_write_tokens=r.writes, output_tokens=100, cost_nanousd=1_000_000_000, actor=r.actor,
                agent="claude-code", matched_at=now,
            ))  # fmt: skip


def _brute_force(records: list[Rec]) -> dict[str, object]:
    """The `cache` object computed one record at a time, at each record's own model and day."""
    saved, writes, priced, unpriced = Decimal(0), Decimal(0), set(), set()
    for r in records:
        if not (r.reads or r.writes):
            continue
        prices = cache_prices(r.provider, r.model, date(2026, 10, r.day))
        if prices is None:
            unpriced.add(r.model)
            continue
        priced.add(r.model)
        saved += r.reads * (prices[0] - prices[1])
        writes += r.writes * prices[2]
    reads = sum(r.reads for r in records)
    all_input = sum(r.input_tokens + r.reads + r.writes for r in records)
    return {
        "cache_read_tokens": reads,
        "cache_write_tokens": sum(r.writes for r in records),
        "cache_read_share": str((Decimal(reads) / all_input).quantize(Decimal("0.0001"))),
        "reads_saved_usd": usd_json(saved),
        "writes_cost_usd": usd_json(writes),
        "unpriced_models": len(unpriced),
    }


@pytest.fixture
def seeded(settings: Settings, factory: sessionmaker[Session]) -> Iterator[tuple[TestClient, str]]:
    _seed(factory)
    token = make_token(factory, "acme")
    with TestClient(create_app(settings, run_worker=False)) as client:
        yield client, token


def test_the_pr_summary_cache_equals_the_record_by_record_figures(seeded: tuple[TestClient, str]) -> None:
    client, token = seeded
    body = client.get(f"/v1/repos/{REPO}/pulls/7", headers={"Authorization": f"Bearer {token}"}).json()
    on_pr = [r for r in RECORDS if r.owner == "acme" and r.pr == 7]
    assert body["cache"] == _brute_force(on_pr)
    assert body["cache"]["unpriced_models"] == 1  # the mystery model's reads are left out, and counted
    # The repriced model's two days differ in price: the report day's price alone would give another figure.
    old, new = (cache_prices(REPRICED[1], REPRICED[0], date(2026, 10, d)) for d in (17, 18))
    assert old is not None and new is not None and old[0] - old[1] != new[0] - new[1]


def test_the_repository_report_cache_equals_the_record_by_record_figures(seeded: tuple[TestClient, str]) -> None:
    client, token = seeded
    body = client.get(f"/v1/repos/{REPO}/report", params=PERIOD, headers={"Authorization": f"Bearer {token}"})
    in_books = [r for r in RECORDS if r.owner == "acme"]
    assert body.json()["cache"] == _brute_force(in_books)
    sign_in(client, token)
    page = client.get(f"/dashboard/{REPO}", params=PERIOD).text
    saved = body.json()["cache"]["reads_saved_usd"]
    assert f'data-figure="cache-saved">{format_usd(Decimal(saved))}<' in page


def test_sessions_under_half_the_median_are_listed_and_the_boundary_is_not(
    seeded: tuple[TestClient, str], factory: sessionmaker[Session]
) -> None:
    client, token = seeded
    with factory() as session:
        found = pull_low_cache_sessions(session, repo=REPO, number=7)
    assert (found.median_share, found.compared, found.threshold) == (MEDIAN, 7, MEDIAN / 2)
    assert [s.session_id for s in found.sessions] == ["s-under"]  # not s-at (exactly 0.4), nor s-tiny, nor s-good
    listed = found.sessions[0]
    assert (listed.agents, listed.models, listed.records, listed.cost_usd) == (
        ("claude-code",), ("claude-sonnet-4-5",), 1, Decimal(1),
    )  # fmt: skip
    sign_in(client, token)
    html = client.get(f"/dashboard/{REPO}/pulls/7").text
    assert html.count("data-session=") == 1 and 'data-session="s-under"' in html
    assert f"{format_pct(MEDIAN)} over 7 sessions" in html


def test_nothing_is_listed_without_sessions_to_compare(settings: Settings, factory: sessionmaker[Session]) -> None:
    _seed(factory)
    with factory() as session, session.begin():
        session.execute(sa.delete(USAGE).where(USAGE.c.session_id.is_not(None)))
    with factory() as session:
        found = pull_low_cache_sessions(session, repo=REPO, number=7)
    assert (found.median_share, found.sessions) == (None, ())
    with TestClient(create_app(settings, run_worker=False)) as client:
        sign_in(client, make_token(factory, "acme"))
        html = client.get(f"/dashboard/{REPO}/pulls/7").text
    assert 'id="low-cache"' not in html


def test_the_session_list_names_nobody_under_aggregate(settings: Settings, factory: sessionmaker[Session]) -> None:
    _seed(factory)
    hidden = settings.model_copy(update={"dashboard_people": "aggregate"})
    with TestClient(create_app(hidden, run_worker=False)) as client:
        sign_in(client, make_token(factory, "acme"))
        html = client.get(f"/dashboard/{REPO}/pulls/7").text
    assert 'data-session="s-under"' in html
    assert "alice" not in html and "mallory" not in html
