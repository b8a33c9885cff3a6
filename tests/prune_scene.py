"""A pull request's history from August to November, for the tests of `tokentrail prune` and the monthly
partitions, and what the PR shows (its summary, its budget verdict, its comment)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.desk import Desk, record
from tests.github_payloads import make_pull_request_event, make_review_event

REPO, NUMBER = "acme/widgets", 12
SHAS = ["1" * 40, "2" * 40, "3" * 40, "4" * 40, "5" * 40]


def day(month: int, day_: int, hour: int = 9) -> datetime:
    return datetime(2026, month, day_, hour, tzinfo=UTC)


def pull_event(action: str, head: int, **fields: Any) -> dict[str, Any]:
    return make_pull_request_event(action, head_sha=SHAS[head], created_at=day(8, 10), **fields)


def unpriced(body: dict[str, Any]) -> dict[str, Any]:
    del body["cost_usd"]  # an unknown model stays unpriced: counted apart, never as 0
    return body


def seed_history(desk: Desk) -> None:
    """A PR from August to November: pushes and review verdicts between its records, three sessions, two agents, an
    unpriced model, the same call from two sources, and usage on a branch with no PR."""
    desk.deliver("pull_request", pull_event("opened", 0))
    desk.usage(
        record("a1", at=day(8, 11), session_id="s1", call_id="call-1"),
        unpriced(record("a2", at=day(8, 20), model="in-house-model", actor="bob", session_id="s2")),
        record("a3", at=day(9, 5), session_id="s1", agent="codex", cost_usd="2.50"),
        record("b1", at=day(9, 12), branch="other", cost_usd="7.00"),  # no PR: unmatched usage
    )
    desk.usage(record("a1-again", at=day(8, 11), call_id="call-1", source="litellm"), owner="acme")
    desk.deliver("pull_request", pull_event("synchronize", 1, updated_at=day(8, 15)))
    desk.deliver("pull_request", pull_event("synchronize", 2, updated_at=day(9, 1)))
    opened = pull_event("opened", 2)
    desk.deliver("pull_request_review", make_review_event("changes_requested", pull_event=opened, review_id=1,
                                                          submitted_at=day(9, 10)))  # fmt: skip
    desk.usage(
        record("a4", at=day(10, 3), session_id="s3", cost_usd="4.00", output_tokens=900),
        record("a5", at=day(11, 2), session_id="s1", cost_usd="0.75"),
    )
    desk.deliver("pull_request", pull_event("synchronize", 3, updated_at=day(10, 10)))
    desk.deliver("pull_request_review", make_review_event("approved", pull_event=opened, review_id=2,
                                                          submitted_at=day(10, 20)))  # fmt: skip
    desk.settle()


def views(desk: Desk, *, repo: str = REPO) -> dict[str, Any]:
    """What a PR shows: its summary, its budget verdict against a limit, and its comment's text."""
    headers = {"Authorization": f"Bearer {desk.token('acme')}"}
    path = f"/v1/repos/{repo}/pulls/{NUMBER}"
    budget = desk.client.get(f"{path}/budget?max_cost=5", headers=headers).json()
    comment = desk.client.get(f"{path}/comment.md", headers=headers)
    assert comment.status_code == 200, comment.text
    summary = desk.summary(NUMBER, repo=repo)
    return {
        "summary": summary,
        "budget": {key: budget[key] for key in ("status", "cost_usd", "reasons")},
        "comment": comment.text,
    }
