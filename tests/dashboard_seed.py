"""A small history for the analytics, report and dashboard tests, sent through the real endpoints (signed webhooks
in dry-run mode, canonical usage with POST /v1/usage), and the figures it must give, computed by hand below.

acme/widgets (default branch main), period 2026-10-03 … 2026-10-16 (inclusive):

| PR | author | branch | outcome | lines | spend in period | all its spend |
|---|---|---|---|---:|---:|---:|
| #1 Add a cache layer | alice | feat/cache | merged Wed Oct 7 | 400 | 1.20 + 0.80 = 2.00 | + 0.10 on Oct 1 = 2.10 |
| #2 Rewrite everything | bob | exp/rewrite | closed Oct 8 | 900 | 2.50 + 0.50 = 3.00 | 3.00 |
| #3 Write the guide | alice | docs/guide | open | 120 | 0.30 | 0.30 |
| #4 Fix the parser | carol | fix/bug | merged Tue Oct 14 | 50 | 0.25 (+1 unpriced) | 0.25 |
| – | erin | main (default) | unmatched | | 0.70 | |
| – | frank | spike/idea | unmatched | | 0.40 (+1 unpriced) | |

acme/gateway: #7 (dave, feat/retry, merged Fri Oct 9, 100 lines) 1.00; main 0.10 unmatched.
umbrella/secret (another owner): 9.99 unmatched, never shown to acme.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import Settings
from tests.conftest import make_token
from tests.github_payloads import make_pull_request_event, webhook_headers

SINCE, UNTIL = "2026-10-03", "2026-10-16"
PERIOD = {"since": SINCE, "until": UNTIL}
WIDGETS, GATEWAY, OTHER = "acme/widgets", "acme/gateway", "umbrella/secret"


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 10, day, hour, tzinfo=UTC)


class Poster(Protocol):
    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Any: ...


# (id, repo, branch, day, hour, model, cost or None for unpriced, actor, agent)
USAGE = [
    ("u0", WIDGETS, "feat/cache", 1, 12, "claude-sonnet-4-5", "0.10", "alice", "claude-code"),
    ("u1", WIDGETS, "feat/cache", 5, 10, "claude-sonnet-4-5", "1.20", "alice", "claude-code"),
    ("u2", WIDGETS, "feat/cache", 6, 11, "gpt-5", "0.80", "alice", "codex"),
    ("u3", WIDGETS, "exp/rewrite", 6, 15, "claude-sonnet-4-5", "2.50", "bob", "claude-code"),
    ("u4", WIDGETS, "exp/rewrite", 7, 9, "claude-sonnet-4-5", "0.50", "bob", "claude-code"),
    ("u5", WIDGETS, "docs/guide", 12, 10, "claude-haiku-4-5", "0.30", "alice", "claude-code"),
    ("u6", WIDGETS, "fix/bug", 13, 10, "gpt-5", "0.25", "carol", "codex"),
    ("u7", WIDGETS, "main", 10, 8, "claude-sonnet-4-5", "0.70", "erin", "claude-code"),
    ("u8", WIDGETS, "spike/idea", 11, 16, "gpt-5", "0.40", "frank", "codex"),
    ("u9", WIDGETS, "spike/idea", 11, 17, "mystery-model-x", None, "frank", "codex"),
    ("u10", WIDGETS, "fix/bug", 13, 11, "mystery-model-x", None, "carol", "codex"),
    ("g1", GATEWAY, "feat/retry", 7, 10, "claude-sonnet-4-5", "1.00", "dave", "claude-code"),
    ("g2", GATEWAY, "main", 8, 10, "gpt-5", "0.10", "dave", "codex"),
    ("x1", OTHER, "feat/x", 6, 10, "gpt-5", "9.99", "mallory", "codex"),
]

# (repo, number, title, author, branch, opened day, closed day or None, merged, additions, deletions)
PULLS = [
    (WIDGETS, 1, "Add a cache layer", "alice", "feat/cache", 5, 7, True, 300, 100),
    (WIDGETS, 2, "Rewrite everything", "bob", "exp/rewrite", 6, 8, False, 800, 100),
    (WIDGETS, 3, "Write the guide <draft> & co", "alice", "docs/guide", 12, None, False, 100, 20),
    (WIDGETS, 4, "Fix the parser", "carol", "fix/bug", 13, 14, True, 40, 10),
    (GATEWAY, 7, "Retry upstream calls", "dave", "feat/retry", 6, 9, True, 100, 0),
]
SECOND_PUSH = "b" * 40  # PR #1 was pushed again on Oct 6 at 12:00


def _pull_event(action: str, pull: tuple[Any, ...], *, closed: bool) -> dict[str, Any]:
    repo, number, title, author, branch, opened, closed_day, merged, additions, deletions = pull
    head = SECOND_PUSH if number == 1 and action != "opened" else f"{number:x}" * 40
    return make_pull_request_event(
        action,
        repo=repo,
        number=number,
        title=title,
        author=author,
        head_ref=branch,
        head_sha=head[:40],
        additions=additions,
        deletions=deletions,
        changed_files=3,
        created_at=at(opened, 9),
        closed_at=at(closed_day, 12) if closed and closed_day else None,
        merged=merged and closed,
    )


def _usage_body(owner: str) -> bytes:
    records = []
    for record_id, repo, branch, day, hour, model, cost, actor, agent in USAGE:
        if not repo.startswith(owner + "/"):
            continue
        record: dict[str, Any] = {
            "id": record_id,
            "timestamp": at(day, hour).isoformat(),
            "provider": "acme-internal" if cost is None else "anthropic",
            "model": model,
            "input_tokens": 1000,
            "output_tokens": 200,
            "repo": repo,
            "branch": branch,
            "actor": actor,
            "agent": agent,
        }
        if cost is not None:
            record["cost_usd"] = cost
        records.append(record)
    return json.dumps(records).encode()


def seed(http: Poster, tokens: dict[str, str], *, settle: Callable[[], None] = lambda: None) -> None:
    """Open the PRs, send the usage, push and close: as GitHub and the gateways would. `settle` runs the worker."""

    def webhook(payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        response = http.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body))
        assert response.status_code == 202, response.text

    for pull in PULLS:
        webhook(_pull_event("opened", pull, closed=False))
    settle()
    for owner, token in tokens.items():
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        response = http.post("/v1/usage", content=_usage_body(owner), headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == [], response.text
    settle()
    push = _pull_event("synchronize", PULLS[0], closed=False)
    push["pull_request"]["updated_at"] = (at(6, 12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    webhook(push)
    settle()
    for pull in PULLS:
        if pull[6] is not None:
            webhook(_pull_event("closed", pull, closed=True))
    settle()


D = Decimal
# The figures of acme/widgets over PERIOD, by hand from the table above.
WIDGETS_EXPECTED = {
    "cost_usd": "6.65",
    "records": 10,
    "unpriced_records": 2,
    "outcomes": {
        "merged": ("2.25", 2),
        "reverted": ("0", 0),
        "closed": ("3", 1),
        "open": ("0.3", 1),
        "unmatched": ("1.1", 0),
    },
    "wasted": "3",
    "weeks": {"2026-10-05": ("2.1", 400), "2026-10-12": ("0.25", 50)},
    "merged_per_line": D("2.35") / 450,
    "authors": {"bob": "3", "alice": "2.3", "erin": "0.7", "frank": "0.4", "carol": "0.25"},
    "agents": {"claude-code": ("5.2", 5), "codex": ("1.45", 5)},
    "models": {"claude-sonnet-4-5": "4.9", "gpt-5": "1.45", "claude-haiku-4-5": "0.3", "mystery-model-x": "0"},
    "branches": {("main", True): ("0.7", 1, 0), ("spike/idea", False): ("0.4", 2, 1)},
    "days": {
        "2026-10-05": "1.2",
        "2026-10-06": "3.3",
        "2026-10-07": "0.5",
        "2026-10-10": "0.7",
        "2026-10-11": "0.4",
        "2026-10-12": "0.3",
        "2026-10-13": "0.25",
    },
    "top": [(2, "3", "3"), (1, "2", "2.1"), (3, "0.3", "0.3"), (4, "0.25", "0.25")],
}
ACME_EXPECTED = {
    "cost_usd": "7.75",
    "records": 12,
    "weeks": {"2026-10-05": ("3.1", 500), "2026-10-12": ("0.25", 50)},
    "repositories": {WIDGETS: "6.65", GATEWAY: "1.1"},
}
PERIOD_SINCE = datetime(2026, 10, 3, tzinfo=UTC)
PERIOD_UNTIL = datetime(2026, 10, 17, tzinfo=UTC)
ONE_DAY = timedelta(days=1)


@contextmanager
def seeded_client(settings: Settings, factory: sessionmaker[Session]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A TestClient on the seeded history; the worker runs between steps instead of in its thread."""
    app = create_app(settings, run_worker=False)
    tokens = {owner: make_token(factory, owner) for owner in ("acme", "umbrella")}
    with TestClient(app) as client:
        seed(client, tokens, settle=app.state.worker.run_until_idle)
        yield client, tokens
