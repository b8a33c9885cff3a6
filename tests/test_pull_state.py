"""PR state follows GitHub, not arrival order, and a PR's commits only grow (DESIGN §5), in dry-run through the
webhook route on SQLite and PostgreSQL. (App mode: tests/test_worker.py.)"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.tables import PULL_COMMITS, PULLS
from tests.desk import Desk, record
from tests.github_payloads import make_pull_request_event

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
A, B, C = "a" * 40, "b" * 40, "c" * 40


def event(
    action: str, *, updated: timedelta, head: str = A, repo: str = "acme/widgets", **fields: Any
) -> dict[str, Any]:
    return make_pull_request_event(action, repo=repo, head_sha=head, created_at=T0, updated_at=T0 + updated, **fields)


def pull(desk: Desk, number: int = 12, repo: str = "acme/widgets") -> Any:
    with desk.factory() as session:
        return session.execute(sa.select(PULLS).where(PULLS.c.repo == repo, PULLS.c.number == number)).one()


def commits(desk: Desk, number: int = 12, repo: str = "acme/widgets") -> set[str]:
    with desk.factory() as session:
        query = sa.select(PULL_COMMITS.c.sha).where(PULL_COMMITS.c.repo == repo, PULL_COMMITS.c.number == number)
        return set(session.execute(query).scalars())


def test_a_stale_opened_after_closed_leaves_the_pr_merged(desk: Desk) -> None:
    merged_at = T0 + timedelta(hours=5)
    desk.deliver("pull_request", event("closed", updated=timedelta(hours=5), closed_at=merged_at, merged=True))
    desk.deliver("pull_request", event("opened", updated=timedelta(0)))
    desk.settle()
    assert (pull(desk).state, pull(desk).merged) == ("closed", True)
    # Usage long after the merge (past the grace period) is not this PR's.
    desk.usage(record("after-merge", at=merged_at + timedelta(hours=2), branch="feat/cache"))
    desk.settle()
    summary = desk.summary(12)
    assert summary["state"] == "merged"
    assert summary["usage"]["records"] == 0


def test_a_stale_closed_after_reopened_leaves_the_pr_open(desk: Desk) -> None:
    closed_at = T0 + timedelta(hours=2)
    desk.deliver("pull_request", event("opened", updated=timedelta(0)))
    desk.deliver("pull_request", event("reopened", updated=timedelta(hours=3)))
    desk.deliver("pull_request", event("closed", updated=timedelta(hours=2), closed_at=closed_at))
    desk.settle()
    assert (pull(desk).state, pull(desk).closed_at) == ("open", None)


def test_the_head_follows_the_newest_event_and_every_head_is_a_commit(desk: Desk) -> None:
    desk.deliver("pull_request", event("closed", updated=timedelta(hours=2), head=C, closed_at=T0 + timedelta(hours=2)))
    desk.deliver("pull_request", event("synchronize", updated=timedelta(hours=1), head=B))
    desk.deliver("pull_request", event("opened", updated=timedelta(0), head=A))
    desk.settle()
    assert pull(desk).head_sha == C
    assert commits(desk) == {A, B, C}
    assert desk.summary(12)["head_sha"] == C


def test_a_record_of_the_head_the_pr_was_opened_with_matches_by_commit(desk: Desk) -> None:
    desk.deliver("pull_request", event("opened", updated=timedelta(0), head=A))
    desk.usage(record("on-head", at=T0 + timedelta(minutes=3), branch=None, commit=A[:9]))
    desk.settle()
    assert desk.matches() == {"on-head": ("acme/widgets", 12, "commit")}


def test_a_force_push_keeps_the_replaced_commit_on_the_pr(desk: Desk) -> None:
    desk.deliver("pull_request", event("opened", updated=timedelta(0), head=A))
    desk.usage(record("on-old", at=T0 + timedelta(minutes=3), branch="elsewhere", commit=A))
    desk.settle()
    forced = event("synchronize", updated=timedelta(hours=1), head=B)
    forced.update(before=A, after=B)
    desk.deliver("pull_request", forced)
    desk.settle()
    assert desk.matches() == {"on-old": ("acme/widgets", 12, "commit")}
    assert commits(desk) == {A, B}


# The events of one PR's life: each with its own `updated_at`; the last one is GitHub's current state.
LIFE = [
    ("opened", {"head": A}, 0),
    ("synchronize", {"head": B}, 1),
    ("labeled", {"head": B, "labels": ("ai-budget-exempt",)}, 2),
    ("closed", {"head": B, "closed_at": T0 + timedelta(hours=3), "labels": ("ai-budget-exempt",)}, 3),
    ("reopened", {"head": B, "labels": ("ai-budget-exempt",)}, 4),
    ("synchronize", {"head": C, "labels": ("ai-budget-exempt",)}, 5),
    ("closed", {"head": C, "closed_at": T0 + timedelta(hours=6), "merged": True, "labels": ("ai-budget-exempt",)}, 6),
]
_repos = itertools.count()


def _state(desk: Desk, repo: str) -> tuple[Any, ...]:
    row = pull(desk, repo=repo)
    return (
        row.state,
        row.merged,
        row.head_sha,
        row.closed_at is not None,
        row.labels,
        frozenset(commits(desk, repo=repo)),
    )


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(LIFE))), redeliver=st.lists(st.integers(0, len(LIFE) - 1), max_size=3))
def test_the_same_webhooks_in_any_order_give_the_same_state(desk: Desk, order: list[int], redeliver: list[int]) -> None:
    repo = f"acme/life{next(_repos)}"
    for index in [*order, *redeliver]:
        action, fields, hours = LIFE[index]
        desk.deliver("pull_request", event(action, updated=timedelta(hours=hours), repo=repo, **fields))
        desk.settle()
    # What delivering them in order gives: merged, closed, head C, its label, every head among its commits.
    assert _state(desk, repo) == ("closed", True, C, True, '["ai-budget-exempt"]', frozenset({A, B, C}))
