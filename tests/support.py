"""Helpers the test modules share (so that test modules never import each other)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.budget import Limits
from app.cache_savings import CacheDay
from app.repo_config import ConfigResult
from app.report import (
    ActorSpend,
    ModelSpend,
    PullRequestInfo,
    PullRequestReport,
    Push,
    ReportFacts,
    ReviewInfo,
    SpendPoint,
    SpendTotals,
    build_report,
)

SAME_ORIGIN = {"Origin": "http://testserver"}  # the TestClient's own origin: a form posted by our own pages


def sign_in(client: TestClient, token: str) -> None:
    """Sign in as a browser does from the login page; the client keeps the session cookie."""
    answer = client.post("/login", data={"token": token}, headers=SAME_ORIGIN, follow_redirects=False)
    assert answer.status_code == 303, answer.text


# -- builders of the report's facts (defaults for every field; `make_*` changes only what a test names) ----------

T0 = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)

_PR = PullRequestInfo(
    repo="acme/widgets",
    number=482,
    title="Add a cache layer",
    author="alice",
    state="open",
    draft=False,
    head_ref="feat/cache-layer",
    head_sha="3f2c9a1d0e5b6c7a8f9e0d1c2b3a4f5e6d7c8b9a",
    base_ref="main",
    additions=420,
    deletions=96,
    changed_files=12,
    labels=(),
    created_at=T0,
    closed_at=None,
    merged_at=None,
    html_url="https://github.com/acme/widgets/pull/482",
)
_TOTALS = SpendTotals(
    records=1234,
    unpriced_records=0,
    cost_usd=Decimal("12.48"),
    input_tokens=1_100_000,
    cache_read_tokens=5_600_000,
    cache_write_tokens=200_000,
    output_tokens=400_000,
    reasoning_tokens=50_000,
    sessions=3,
    agents=2,
)
_MODEL = ModelSpend(
    model="claude-sonnet-4-5",
    provider="anthropic",
    records=1102,
    unpriced_records=0,
    cost_usd=Decimal("10.92"),
    input_tokens=1_000_000,
    cache_read_tokens=5_400_000,
    cache_write_tokens=150_000,
    output_tokens=300_000,
)


def make_pr(**changes: Any) -> PullRequestInfo:
    return replace(_PR, **changes)


def make_totals(**changes: Any) -> SpendTotals:
    return replace(_TOTALS, **changes)


def make_model(**changes: Any) -> ModelSpend:
    return replace(_MODEL, **changes)


def make_actor(**changes: Any) -> ActorSpend:
    return replace(ActorSpend(actor="alice", agent="claude-code", records=1000, cost_usd=Decimal("10.00")), **changes)


def make_push(**changes: Any) -> Push:
    return replace(Push(sha="3f2c9a1d0e5b6c7a8f9e0d1c2b3a4f5e6d7c8b9a", pushed_at=T0 + timedelta(hours=3)), **changes)


def make_point(**changes: Any) -> SpendPoint:
    return replace(SpendPoint(timestamp=T0 + timedelta(hours=1), cost_usd=Decimal("1.00"), records=10), **changes)


def make_review(**changes: Any) -> ReviewInfo:
    return replace(ReviewInfo(reviewer="bob", state="approved", submitted_at=T0 + timedelta(hours=5)), **changes)


def make_facts(**changes: Any) -> ReportFacts:
    facts = ReportFacts(
        pr=make_pr(),
        totals=make_totals(),
        by_model=(
            make_model(),
            make_model(
                model="gpt-5",
                provider="openai",
                records=132,
                cost_usd=Decimal("1.56"),
                input_tokens=100_000,
                cache_read_tokens=200_000,
                cache_write_tokens=50_000,
                output_tokens=100_000,
            ),
        ),
        by_actor=(
            make_actor(),
            make_actor(actor="bob", agent="codex", records=234, cost_usd=Decimal("2.48")),
        ),
        pushes=(
            make_push(sha="a" * 40, pushed_at=T0 + timedelta(hours=2)),
            make_push(sha="b" * 40, pushed_at=T0 + timedelta(hours=4)),
        ),
        spend_points=(
            make_point(timestamp=T0, cost_usd=Decimal("4.00"), records=400),
            make_point(timestamp=T0 + timedelta(hours=3), cost_usd=Decimal("8.48"), records=834),
        ),
        reviews=(),
        repo_median_cost_per_line=Decimal("0.018"),
        config=ConfigResult(),
        limits=Limits(),
        generated_at=T0 + timedelta(hours=5, minutes=2),
        public_url="https://tokentrail.example.com/",
    )
    facts = replace(facts, **changes)
    if "cache_days" in changes:
        return facts
    # The shell sums cache tokens by model and day; here all of a model's are on the report's day.
    day = facts.generated_at.date()
    return replace(
        facts,
        cache_days=tuple(
            CacheDay(m.model, m.provider, day, m.cache_read_tokens, m.cache_write_tokens) for m in facts.by_model
        ),
    )


def make_report(**changes: Any) -> PullRequestReport:
    return build_report(make_facts(**changes))


# --- review summary ------------------------------------------------------------------------------------------


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def worker_is_idle(factory: sessionmaker[Session]) -> bool:
    """Nothing left for the worker: no job queued or running, and no usage record waiting for its first match."""
    with factory() as session:
        busy_jobs = session.execute(sa.text("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')")).scalar()
        waiting = session.execute(sa.text("SELECT COUNT(*) FROM usage WHERE matched_at IS NULL")).scalar()
    return busy_jobs == 0 and waiting == 0


def wait_until_idle(factory: sessionmaker[Session], *, timeout: float = 30.0) -> None:
    """Wait until the worker has drained everything (seen idle twice in a row, so a job it is about to enqueue
    from the last one is waited for too). This, not a sleep, is how a test says "and then nothing happened"."""
    deadline = time.monotonic() + timeout
    idle_in_a_row = 0
    while idle_in_a_row < 2:
        if time.monotonic() > deadline:
            raise AssertionError(f"the worker was still busy after {timeout:.0f} s")
        idle_in_a_row = idle_in_a_row + 1 if worker_is_idle(factory) else 0
        time.sleep(0.05)
