"""The matching shell keeps DESIGN §5's invariant: after any sequence of webhooks and usage, every stored record is
on the PR that the pure matcher gives for all records and all PR facts at once.

The property test drives production code end to end (signed webhooks, the ingest API, the worker) on SQLite and
PostgreSQL, and after every step compares the stored answers with `app.matching.match_records` over everything
stored. Rule 5 (session), fork consent and records the matcher cannot read are covered by examples below.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.matching import Match, match_records
from app.rematch import _RECORD_COLUMNS, _facts, pull_facts
from app.repo_state import default_branches
from app.tables import PULLS, USAGE
from tests.desk import Desk, record
from tests.github_payloads import make_pull_request_event

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
GRACE = timedelta(seconds=900)
SHAS = ["1" * 40, "2" * 40, "3" * 40, "4" * 40]
BRANCHES = ["a", "b", "main"]
_examples = itertools.count()


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


# -- the invariant ---------------------------------------------------------------------------------------------------


def stored_and_expected(desk: Desk, repos: set[str]) -> tuple[dict[int, Any], dict[int, Any]]:
    """(stored answer, the pure matcher's answer over everything stored) per record of `repos`."""
    with desk.factory() as session:
        rows = [r for r in session.execute(sa.select(*_RECORD_COLUMNS, USAGE.c.match_error)) if r.repo in repos]
        keys = {(r.repo, r.number) for r in session.execute(sa.select(PULLS.c.repo, PULLS.c.number))}
        prs = [pr for pr in pull_facts(session, keys, with_branches=False) if pr.repo in repos]
        defaults = default_branches(session, repos)
    readable = [row for row in rows if row.match_error is None]
    expected = match_records([_facts(r) for r in readable], prs, grace=GRACE, default_branches=defaults)
    stored = {r.pk: _answer(Match(r.pr_repo, r.pr_number, r.match_rule, r.pr_private) if r.pr_repo else None)
              for r in readable}  # fmt: skip
    return stored, {key: _answer(match) for key, match in expected.items()}


def _answer(match: Match | None) -> tuple[Any, ...] | None:
    return None if match is None else (match.repo, match.number, match.rule, match.private)


def assert_invariant(desk: Desk, repos: set[str]) -> None:
    desk.settle()
    stored, expected = stored_and_expected(desk, repos)
    assert stored == expected


# -- scenarios ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pull:
    number: int
    fork: bool
    branch: str
    created: int  # hours after T0
    heads: tuple[str, ...]  # one per event: opened, then synchronize ...
    closed: int | None  # hours after creation; None: stays open
    merged: bool


@st.composite
def pulls(draw: st.DrawFn) -> list[Pull]:
    found = []
    for number in range(1, draw(st.integers(1, 4)) + 1):
        found.append(
            Pull(
                number=number,
                fork=draw(st.booleans()) and number == 4,
                branch=draw(st.sampled_from(BRANCHES[:2])),
                created=draw(st.integers(0, 6)),
                heads=tuple(draw(st.lists(st.sampled_from(SHAS), min_size=1, max_size=3))),
                closed=draw(st.one_of(st.none(), st.integers(0, 6))),
                merged=draw(st.booleans()),
            )
        )
    return found


@st.composite
def usage(draw: st.DrawFn, count: int) -> list[dict[str, Any]]:
    records = []
    for index in range(count):
        fields: dict[str, Any] = {
            "branch": draw(st.sampled_from([*BRANCHES, None])),
            "session_id": draw(st.sampled_from(["s1", "s2", None])),
            "fork": draw(st.booleans()),
            "hours": draw(st.integers(-8, 16)) / 2,
        }
        if draw(st.booleans()):
            fields["commit"] = draw(st.sampled_from(SHAS))[: draw(st.sampled_from([7, 12, 40]))]
        if draw(st.integers(0, 4)) == 0:
            fields["pr"] = draw(st.integers(1, 5))
        records.append({"index": index, **fields})
    return records


def pull_events(pull: Pull, *, repo: str, fork_repo: str) -> list[dict[str, Any]]:
    created = at(pull.created)
    common = {
        "repo": repo,
        "number": pull.number,
        "head_ref": pull.branch,
        "head_repo": fork_repo if pull.fork else repo,
        "created_at": created,
    }
    events = [
        make_pull_request_event(
            "opened" if i == 0 else "synchronize", head_sha=head, updated_at=created + timedelta(minutes=i), **common
        )
        for i, head in enumerate(pull.heads)
    ]
    if pull.closed is not None:
        closed_at = created + timedelta(hours=pull.closed, minutes=len(pull.heads))
        events.append(
            make_pull_request_event(
                "closed", head_sha=pull.heads[-1], closed_at=closed_at, merged=pull.merged, **common
            )
        )
    return events


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=pulls(), data=st.data(), share=st.booleans())
def test_every_stored_record_is_where_the_matcher_puts_it_after_each_step(
    desk: Desk, scenario: list[Pull], data: st.DataObject, share: bool
) -> None:
    n = next(_examples)
    repo, fork_repo = f"acme/m{n}", f"bob/m{n}"
    records = data.draw(usage(data.draw(st.integers(1, 8))))
    steps: list[tuple[str, Any]] = [("record", r) for r in records]
    queues = {p.number: pull_events(p, repo=repo, fork_repo=fork_repo) for p in scenario}
    steps += [("pull", number) for number, events in queues.items() for _ in events]
    for kind, item in data.draw(st.permutations(steps)):
        if kind == "pull":
            desk.deliver("pull_request", queues[item].pop(0))
        else:
            target, owner = (fork_repo, "bob") if item["fork"] else (repo, "acme")
            fields = {k: v for k, v in item.items() if k in {"branch", "commit", "pr"}}
            body = record(
                f"m{n}-r{item['index']}", at=at(item["hours"]), repo=target, session_id=_session(n, item), **fields
            )
            answer = desk.usage(body, owner=owner, share_upstream=share and owner == "bob")
            assert answer["accepted"] == 1, answer
        assert_invariant(desk, {repo, fork_repo})


def _session(n: int, item: dict[str, Any]) -> str | None:
    return None if item["session_id"] is None else f"{item['session_id']}-{n}"


# -- the reproduced bug: a PR opened later on the branch of one of two PRs sharing a commit ------------------------


def test_a_new_pr_on_a_branch_moves_a_shared_commit_to_the_pr_whose_window_holds_it(desk: Desk) -> None:
    repo = "acme/stacked"
    shared = SHAS[0]
    # PR 1 on "a" and PR 2 on "b" both carry the shared commit; the record (on another branch) falls in PR 1's
    # window first, so it is PR 1's.
    for number, branch, created in ((1, "a", at(1)), (2, "b", at(2))):
        desk.deliver(
            "pull_request",
            make_pull_request_event(
                "opened", repo=repo, number=number, head_ref=branch, head_sha=shared, created_at=created
            ),
        )
    desk.usage(record("shared", at=at(3), repo=repo, branch="local", commit=shared))
    assert_invariant(desk, {repo})
    assert desk.matches()["shared"] == (repo, 1, "commit")
    # An older PR 3 of branch "a", closed before the record: PR 1's window now starts after it, PR 2's holds it.
    desk.deliver(
        "pull_request",
        make_pull_request_event(
            "closed", repo=repo, number=3, head_ref="a", head_sha=SHAS[1], created_at=at(0), closed_at=at(4)
        ),
    )
    assert_invariant(desk, {repo})
    assert desk.matches()["shared"] == (repo, 2, "commit")


# -- rule 5 through the API --------------------------------------------------------------------------------------------


def test_a_sessions_work_before_its_branch_existed_goes_to_the_pr(desk: Desk) -> None:
    desk.deliver("pull_request", make_pull_request_event("opened", head_ref="feat/x", created_at=at(3)))
    desk.usage(
        record("planning", at=at(0), branch="main", session_id="sess"),  # on the default branch, 2 h before
        record("too-early", at=at(-5), branch="main", session_id="sess"),  # 7 h before: not this PR's
        record("coding", at=at(2), branch="feat/x", session_id="sess"),
        record("other-session", at=at(1), branch="main", session_id="other"),
    )
    assert_invariant(desk, {"acme/widgets"})
    assert desk.matches() == {
        "planning": ("acme/widgets", 12, "session"),
        "too-early": (None, None, None),
        "coding": ("acme/widgets", 12, "branch"),
        "other-session": (None, None, None),
    }
    assert desk.summary(12)["usage"]["records"] == 2


def test_a_session_record_that_arrives_last_places_the_earlier_ones(desk: Desk) -> None:
    desk.deliver("pull_request", make_pull_request_event("opened", head_ref="feat/x", created_at=at(3)))
    desk.usage(record("planning", at=at(0), branch="main", session_id="sess"))
    assert_invariant(desk, {"acme/widgets"})
    assert desk.matches()["planning"] == (None, None, None)
    desk.usage(record("coding", at=at(2), branch="feat/x", session_id="sess"))
    assert_invariant(desk, {"acme/widgets"})
    assert desk.matches()["planning"] == ("acme/widgets", 12, "session")


# -- consent: forks across owners (DESIGN §5) --------------------------------------------------------------------------


def test_a_fork_owners_usage_stays_in_its_books_without_consent(desk: Desk) -> None:
    # acme opens a PR from bob's fork branch: whoever opens the PR changes nothing about where bob's usage counts.
    desk.deliver(
        "pull_request",
        make_pull_request_event("opened", head_repo="bob/widgets", head_ref="fix", created_at=at(0)),
    )
    desk.usage(record("bobs-work", at=at(1), repo="bob/widgets", branch="fix", cost_usd="7.00"), owner="bob")
    assert_invariant(desk, {"acme/widgets", "bob/widgets"})
    assert desk.matches() == {"bobs-work": ("acme/widgets", 12, "branch")}
    (row,) = desk.rows(record_id="bobs-work")
    assert row.pr_private is True
    summary = desk.summary(12)
    assert summary["usage"]["records"] == 0 and summary["by_actor"] == []  # acme reads nothing of bob's
    report = desk.client.get("/v1/orgs/acme/report", headers={"Authorization": f"Bearer {desk.token('acme')}"})
    assert report.json()["cost_usd"] == "0"
    # bob sees his own spend, matched to the upstream PR.
    mine = desk.client.get("/v1/orgs/bob/report", headers={"Authorization": f"Bearer {desk.token('bob')}"}).json()
    assert mine["cost_usd"] == "7" and [p["number"] for p in mine["top_pulls"]] == [12]


def test_a_fork_owner_that_consents_shares_its_usage_upstream(desk: Desk) -> None:
    desk.deliver(
        "pull_request",
        make_pull_request_event("opened", head_repo="bob/widgets", head_ref="fix", created_at=at(0)),
    )
    desk.usage(
        record("bobs-work", at=at(1), repo="bob/widgets", branch="fix", cost_usd="7.00"),
        owner="bob",
        share_upstream=True,
    )
    assert_invariant(desk, {"acme/widgets", "bob/widgets"})
    assert desk.summary(12)["usage"]["cost_usd"] == "7"


# -- a record the matcher cannot read ------------------------------------------------------------------------------


def test_a_record_the_matcher_cannot_read_is_set_aside_and_blocks_nothing(desk: Desk) -> None:
    desk.deliver("pull_request", make_pull_request_event("opened", head_ref="feat/x", created_at=at(0)))
    desk.settle()
    # A row written by an older version or by hand: a commit that is not hex (and on SQLite a year before 1000,
    # which it cannot read back).
    sqlite = desk.factory.kw["bind"].dialect.name == "sqlite"
    with desk.factory() as session, session.begin():
        session.execute(
            USAGE.insert().values(
                source="api",
                record_id="poison",
                timestamp=at(1),
                model="m",
                owner="acme",
                repo="acme/widgets",
                branch="feat/x",
                commit="not-a-commit!",
                received_at=at(1),
            )
        )
        if sqlite:
            session.execute(
                USAGE.insert().values(
                    source="api",
                    record_id="ancient",
                    timestamp=at(1),
                    model="m",
                    owner="acme",
                    repo="acme/widgets",
                    branch="feat/x",
                    received_at=at(1),
                )
            )
            session.execute(
                sa.text("UPDATE usage SET timestamp = '999-06-01 00:00:00.000000' WHERE record_id = 'ancient'")
            )
        session.execute(sa.text("INSERT INTO jobs (kind, key, state, attempts, run_after, created_at, updated_at) "
                                "VALUES ('match', 'acme/widgets', 'queued', 0, :t, :t, :t)"), {"t": at(1)})  # fmt: skip
    desk.usage(record("good", at=at(2), branch="feat/x"))
    assert_invariant(desk, {"acme/widgets"})
    assert desk.matches()["good"] == ("acme/widgets", 12, "branch")
    aside = {row.record_id: row.match_error for row in desk.rows() if row.match_error}
    assert set(aside) == ({"poison", "ancient"} if sqlite else {"poison"})
    assert "commit" in aside["poison"]
    # And a PR event of the repository goes through too (a `closed` webhook failed on such a row before).
    desk.deliver(
        "pull_request",
        make_pull_request_event("closed", head_ref="feat/x", created_at=at(0), closed_at=at(5), merged=True),
    )
    desk.settle()
    assert desk.summary(12)["state"] == "merged"
    with desk.factory() as session:
        failed = session.execute(sa.text("SELECT count(*) FROM jobs WHERE state <> 'done'")).scalar_one()
    assert failed == 0


def test_default_branch_records_only_match_explicitly_or_by_session(desk: Desk) -> None:
    desk.deliver("pull_request", make_pull_request_event("opened", head_ref="main", created_at=at(0)))
    desk.usage(record("on-main", at=at(1), branch="main"))
    assert_invariant(desk, {"acme/widgets"})
    assert desk.matches()["on-main"] == (None, None, None)
