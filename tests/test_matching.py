from __future__ import annotations

import hashlib
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.matching import (
    Match,
    PullRequestFacts,
    UsageFacts,
    branch_windows,
    match_record,
    match_records,
    records_to_reexamine,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=900)
US = timedelta(microseconds=1)
SHA_A = "a" * 40
SHA_B = "b" * 40
SHA_C = "c" * 40
SHA_BASE = "d" * 40  # a commit of the base branch, in no PR


def make_pr(**fields: Any) -> PullRequestFacts:
    defaults: dict[str, Any] = {
        "repo": "acme/app",
        "number": 1,
        "head_repo": "acme/app",
        "head_ref": "feature",
        "created_at": T0,
        "closed_at": None,
        "commits": frozenset(),
        "default_branch": None,
    }
    return PullRequestFacts(**{**defaults, **fields})


def make_usage(**fields: Any) -> UsageFacts:
    defaults: dict[str, Any] = {
        "key": 1,
        "repo": "acme/app",
        "branch": "feature",
        "commit": None,
        "pr": None,
        "timestamp": T0,
    }
    return UsageFacts(**{**defaults, **fields})


def match_one(
    record: UsageFacts, prs: list[PullRequestFacts], default_branches: dict[str, str] | None = None
) -> Match | None:
    """Both paths (the scan and the index) must agree; return their answer."""
    scanned = match_record(
        record, prs=prs, windows=branch_windows(prs, grace=GRACE), default_branches=default_branches or {}
    )
    indexed = match_records([record], prs, grace=GRACE, default_branches=default_branches)[record.key]
    assert scanned == indexed
    return indexed


# --- rule precedence -------------------------------------------------------------------------------------


def test_explicit_beats_commit_beats_branch() -> None:
    named = make_pr(number=1, head_ref="other", created_at=T0 - timedelta(days=9))
    with_commit = make_pr(number=2, head_ref="elsewhere", commits=frozenset({SHA_A}))
    on_branch = make_pr(number=3, head_ref="feature")
    prs = [named, with_commit, on_branch]

    assert match_one(make_usage(pr=1, commit=SHA_A), prs) == Match("acme/app", 1, "explicit")
    assert match_one(make_usage(commit=SHA_A), prs) == Match("acme/app", 2, "commit")
    assert match_one(make_usage(commit=SHA_BASE), prs) == Match("acme/app", 3, "branch")
    assert match_one(make_usage(), prs) == Match("acme/app", 3, "branch")


def test_explicit_number_of_a_missing_pr_falls_through() -> None:
    prs = [make_pr(number=3)]
    assert match_one(make_usage(pr=99), prs) == Match("acme/app", 3, "branch")


def test_explicit_pr_in_another_repo_does_not_match() -> None:
    prs = [make_pr(repo="acme/other", head_repo="acme/other", number=7, head_ref="x")]
    assert match_one(make_usage(pr=7, branch="unrelated"), prs) is None
    # ... and the record still falls through to its own repo's branch window.
    own = make_pr(number=8)
    assert match_one(make_usage(pr=7), [*prs, own]) == Match("acme/app", 8, "branch")


def test_explicit_prefers_the_base_repo_over_a_fork_pr_with_the_same_number() -> None:
    fork_pr_upstream = make_pr(repo="acme/app", number=5, head_repo="alice/app", head_ref="fix")
    pr_inside_fork = make_pr(repo="alice/app", number=5, head_repo="alice/app", head_ref="wip")
    record = make_usage(repo="alice/app", branch="fix", pr=5)
    assert match_one(record, [fork_pr_upstream, pr_inside_fork]) == Match("alice/app", 5, "explicit")
    assert match_one(record, [fork_pr_upstream]) == Match("acme/app", 5, "explicit")


# --- commit rule -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [7, 8, 12, 39, 40])
def test_abbreviated_commit_matches(length: int) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    prs = [make_pr(number=4, head_ref="x", commits=frozenset({sha}))]
    assert match_one(make_usage(branch="y", commit=sha[:length]), prs) == Match("acme/app", 4, "commit")


def test_commit_that_is_not_a_prefix_does_not_match() -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    prs = [make_pr(number=4, head_ref="x", commits=frozenset({sha}))]
    assert match_one(make_usage(branch="y", commit=sha[1:9]), prs) is None
    assert match_one(make_usage(branch="y", commit=sha[:6]), prs) is None  # below the minimum abbreviation
    assert match_one(make_usage(branch="y", commit=sha[:39] + "8"), prs) is None


def test_commit_in_another_repo_does_not_match() -> None:
    prs = [make_pr(repo="acme/other", head_repo="acme/other", commits=frozenset({SHA_A}))]
    assert match_one(make_usage(commit=SHA_A), prs) is None


def test_base_branch_commit_falls_through_to_branch() -> None:
    prs = [make_pr(number=6, commits=frozenset({SHA_A}))]
    assert match_one(make_usage(commit=SHA_BASE), prs) == Match("acme/app", 6, "branch")


def test_commit_on_a_closed_pr_matches_after_its_window() -> None:
    prs = [make_pr(number=6, closed_at=T0, commits=frozenset({SHA_A}))]
    late = T0 + timedelta(days=30)
    assert match_one(make_usage(branch="rebased", commit=SHA_A, timestamp=late), prs) == Match("acme/app", 6, "commit")


def test_stacked_prs_prefer_the_window_then_the_earliest() -> None:
    first = make_pr(number=1, head_ref="step-1", created_at=T0, closed_at=T0 + timedelta(hours=1))
    second = make_pr(number=2, head_ref="step-2", created_at=T0 + timedelta(minutes=30))
    prs = [replace(first, commits=frozenset({SHA_A})), replace(second, commits=frozenset({SHA_A, SHA_B}))]

    in_both = make_usage(branch="local", commit=SHA_A, timestamp=T0 + timedelta(minutes=45))
    assert match_one(in_both, prs) == Match("acme/app", 1, "commit")  # both windows: earliest created
    only_second = replace(in_both, timestamp=T0 + timedelta(hours=2))
    assert match_one(only_second, prs) == Match("acme/app", 2, "commit")
    # Reverse the input order: the choice doesn't depend on it.
    assert match_one(only_second, prs[::-1]) == Match("acme/app", 2, "commit")


def test_stacked_prs_outside_every_window_take_the_earliest() -> None:
    one = make_pr(number=1, head_ref="a", closed_at=T0, commits=frozenset({SHA_A}))
    two = make_pr(number=2, head_ref="b", created_at=T0 + US, closed_at=T0, commits=frozenset({SHA_A}))
    late = make_usage(branch="c", commit=SHA_A[:9], timestamp=T0 + timedelta(days=2))
    assert match_one(late, [two, one]) == Match("acme/app", 1, "commit")


def test_abbreviation_shared_by_two_prs_prefers_the_window() -> None:
    sha_1 = "abcdef1" + "1" * 33
    sha_2 = "abcdef1" + "2" * 33
    old = make_pr(number=1, head_ref="a", closed_at=T0, commits=frozenset({sha_1}))
    new = make_pr(number=2, head_ref="b", created_at=T0 + US, commits=frozenset({sha_2}))
    record = make_usage(branch="c", commit="abcdef1", timestamp=T0 + timedelta(days=1))
    assert match_one(record, [old, new]) == Match("acme/app", 2, "commit")
    assert match_one(replace(record, commit="abcdef11"), [old, new]) == Match("acme/app", 1, "commit")


# --- branch windows ---------------------------------------------------------------------------------------


def test_work_before_the_pr_was_opened_belongs_to_it() -> None:
    prs = [make_pr(number=9, created_at=T0)]
    assert match_one(make_usage(timestamp=T0 - timedelta(days=3)), prs) == Match("acme/app", 9, "branch")


def test_grace_period_after_close() -> None:
    closed = T0 + timedelta(hours=5)
    prs = [make_pr(number=9, closed_at=closed)]
    in_grace = make_usage(timestamp=closed + timedelta(minutes=10))
    assert match_one(in_grace, prs) == Match("acme/app", 9, "branch")
    assert match_one(replace(in_grace, timestamp=closed + GRACE), prs) == Match("acme/app", 9, "branch")
    assert match_one(replace(in_grace, timestamp=closed + GRACE + US), prs) is None


def test_branch_reused_after_merge_starts_a_new_window() -> None:
    closed = T0 + timedelta(hours=2)
    first = make_pr(number=1, created_at=T0, closed_at=closed)
    second = make_pr(number=2, created_at=closed + timedelta(days=1))
    prs = [second, first]  # input order doesn't matter: windows follow created_at
    cases = {
        T0 - timedelta(days=1): 1,
        closed: 1,
        closed + GRACE: 1,  # the boundary belongs to the closing PR (end inclusive)
        closed + GRACE + US: 2,  # ... and the next window starts right after it
        closed + timedelta(days=3): 2,
    }
    for at, number in cases.items():
        assert match_one(make_usage(timestamp=at), prs) == Match("acme/app", number, "branch"), at

    assert branch_windows(prs, grace=GRACE) == {
        ("acme/app", "feature"): [(None, closed + GRACE, first), (closed + GRACE, None, second)]
    }


def test_pr_opened_while_another_on_the_branch_is_open_gets_no_window() -> None:
    first = make_pr(repo="acme/app", number=1)
    second = make_pr(repo="acme/app", number=2, created_at=T0 + timedelta(hours=1))
    assert branch_windows([first, second], grace=GRACE) == {("acme/app", "feature"): [(None, None, first)]}
    later = make_usage(timestamp=T0 + timedelta(days=5))
    assert match_one(later, [first, second]) == Match("acme/app", 1, "branch")


def test_pr_closed_within_the_previous_window_gets_no_window() -> None:
    first = make_pr(number=1, closed_at=T0 + timedelta(hours=3))
    short = make_pr(number=2, created_at=T0 + timedelta(hours=1), closed_at=T0 + timedelta(hours=2))
    third = make_pr(number=3, created_at=T0 + timedelta(hours=4))
    end = T0 + timedelta(hours=3) + GRACE
    assert branch_windows([third, short, first], grace=GRACE) == {
        ("acme/app", "feature"): [(None, end, first), (end, None, third)]
    }


def test_same_creation_time_orders_by_number() -> None:
    a = make_pr(number=2, closed_at=T0)
    b = make_pr(number=1, closed_at=T0 + timedelta(hours=1))
    assert [pr.number for *_, pr in branch_windows([a, b], grace=GRACE)[("acme/app", "feature")]] == [1]


def test_reopened_pr_extends_its_window() -> None:
    was_closed = make_pr(number=3, closed_at=T0 + timedelta(hours=1))
    reopened = replace(was_closed, closed_at=None)
    much_later = make_usage(timestamp=T0 + timedelta(days=20))
    assert match_one(much_later, [was_closed]) is None
    assert match_one(much_later, [reopened]) == Match("acme/app", 3, "branch")


def test_timestamps_with_different_offsets_compare_as_instants() -> None:
    closed = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    prs = [make_pr(number=4, created_at=closed - timedelta(days=1), closed_at=closed)]
    plus_five = timezone(timedelta(hours=5))
    minus_eight = timezone(timedelta(hours=-8))
    # 15:15+05:00 is 10:15Z: exactly the end of the grace period.
    assert match_one(make_usage(timestamp=datetime(2025, 3, 1, 15, 15, tzinfo=plus_five)), prs) == Match(
        "acme/app", 4, "branch"
    )
    assert match_one(make_usage(timestamp=datetime(2025, 3, 1, 15, 16, tzinfo=plus_five)), prs) is None
    # 02:14-08:00 is 10:14Z, in grace although its wall clock is before the close.
    assert match_one(make_usage(timestamp=datetime(2025, 3, 1, 2, 14, tzinfo=minus_eight)), prs) is not None
    # Windows built from PRs in mixed offsets are still ordered by instant.
    first = make_pr(number=1, created_at=datetime(2025, 3, 1, 9, 0, tzinfo=plus_five), closed_at=closed)
    second = make_pr(number=2, created_at=datetime(2025, 3, 1, 8, 0, tzinfo=UTC))
    ordered = branch_windows([second, first], grace=GRACE)[("acme/app", "feature")]
    assert [pr.number for *_, pr in ordered] == [1, 2]


def test_record_arriving_a_week_late_lands_by_its_own_timestamp() -> None:
    closed = T0 + timedelta(hours=4)
    first = make_pr(number=1, closed_at=closed)
    second = make_pr(number=2, created_at=closed + timedelta(days=1))
    # The transcript is imported a week after the work, when the branch's window already belongs to PR 2.
    imported_late = make_usage(key=77, timestamp=T0 + timedelta(hours=1))
    assert match_records([imported_late], [first, second], grace=GRACE) == {77: Match("acme/app", 1, "branch")}


def test_no_pr_on_the_branch_is_unmatched() -> None:
    assert match_one(make_usage(branch="nobody-opened-a-pr"), [make_pr()]) is None
    assert match_one(make_usage(branch=None), [make_pr()]) is None


# --- forks, deleted forks, default branch, missing repo ----------------------------------------------------


def test_fork_pr_matches_on_head_repo_not_base() -> None:
    fork_pr = make_pr(repo="acme/app", number=12, head_repo="alice/app", head_ref="feature")
    assert match_one(make_usage(repo="alice/app"), [fork_pr]) == Match("acme/app", 12, "branch")
    assert match_one(make_usage(repo="acme/app"), [fork_pr]) is None  # upstream's same-named branch


def test_fork_pr_commit_matches_in_head_and_base_repo() -> None:
    fork_pr = make_pr(repo="acme/app", number=12, head_repo="alice/app", commits=frozenset({SHA_A}))
    assert match_one(make_usage(repo="alice/app", branch="x", commit=SHA_A), [fork_pr]) == Match(
        "acme/app", 12, "commit"
    )
    # A maintainer's checkout of the PR in the base repo carries the same SHA.
    assert match_one(make_usage(repo="acme/app", branch="x", commit=SHA_A), [fork_pr]) == Match(
        "acme/app", 12, "commit"
    )
    assert match_one(make_usage(repo="bob/app", branch="x", commit=SHA_A), [fork_pr]) is None


def test_deleted_fork_matches_nothing_new() -> None:
    deleted = make_pr(repo="acme/app", number=12, head_repo=None, head_ref="feature", commits=frozenset({SHA_A}))
    assert branch_windows([deleted], grace=GRACE) == {}
    assert records_to_reexamine([deleted], neighbours=[deleted]).branches == frozenset()
    assert match_one(make_usage(repo="alice/app"), [deleted]) is None
    assert match_one(make_usage(repo="alice/app", commit=SHA_A), [deleted]) is None
    assert match_one(make_usage(repo="acme/app", commit=SHA_A), [deleted]) is None
    assert match_one(make_usage(repo="alice/app", pr=12), [deleted]) is None
    # Naming it explicitly from the base repo still works.
    assert match_one(make_usage(repo="acme/app", pr=12), [deleted]) == Match("acme/app", 12, "explicit")


def test_default_branch_is_never_matched_by_commit_or_branch() -> None:
    on_main = make_pr(number=1, head_ref="main", commits=frozenset({SHA_A}))
    record = make_usage(branch="main", commit=SHA_A)
    assert match_one(record, [on_main]) == Match("acme/app", 1, "commit")  # default branch unknown
    assert match_one(record, [on_main], {"acme/app": "main"}) is None
    assert match_one(replace(record, commit=None), [on_main], {"acme/app": "main"}) is None
    # The PR facts may tell the default branch instead, from any PR of that head repository.
    told = make_pr(number=2, head_ref="other", default_branch="main")
    assert match_one(record, [on_main, told]) is None
    # Another repository's default branch doesn't matter.
    assert match_one(record, [on_main], {"acme/other": "main"}) == Match("acme/app", 1, "commit")
    # Naming the PR still works on the default branch.
    assert match_one(replace(record, pr=1), [on_main], {"acme/app": "main"}) == Match("acme/app", 1, "explicit")


def test_record_without_repo_is_never_matched() -> None:
    prs = [make_pr(number=1, commits=frozenset({SHA_A}))]
    assert match_one(make_usage(repo=None, pr=1, commit=SHA_A), prs) is None


def test_records_to_reexamine_names_branches_numbers_holders_and_commits() -> None:
    fork = make_pr(head_repo="alice/app", head_ref="fix", number=4, commits=frozenset({SHA_A}))
    what = records_to_reexamine([fork], neighbours=[fork])
    assert what.branches == {("alice/app", "fix")}
    assert what.numbers == {("acme/app", 4), ("alice/app", 4)}
    assert what.holders == {("acme/app", 4)}
    assert what.commits == {SHA_A}
    with_default = make_pr(head_ref="fix", default_branch="trunk")
    assert records_to_reexamine([with_default], neighbours=[]).branches == {("acme/app", "fix"), ("acme/app", "trunk")}
    moved = records_to_reexamine([], neighbours=[], moved_default_branches=[("acme/app", "main")])
    assert moved.branches == {("acme/app", "main")}


def test_records_to_reexamine_includes_the_commits_of_every_pr_on_the_branch() -> None:
    # A PR opened on branch "a" moves the window of PR 1 on "a": the records of a commit PR 1 shares with PR 2
    # (on "b") may change hands, though the new PR has no such commit.
    first = make_pr(number=1, head_ref="a", commits=frozenset({SHA_A}))
    elsewhere = make_pr(number=2, head_ref="b", commits=frozenset({SHA_A, SHA_B}))
    new = make_pr(number=3, head_ref="a", commits=frozenset({SHA_C}))
    what = records_to_reexamine([new], neighbours=[first, elsewhere, new])
    assert what.commits == {SHA_A, SHA_C}


# --- rule 5: session ---------------------------------------------------------------------------------------


def test_session_records_before_the_branch_join_its_pr() -> None:
    pr = make_pr(number=7, head_ref="feature", created_at=T0 + timedelta(hours=2))
    on_branch = make_usage(key=1, branch="feature", timestamp=T0 + timedelta(hours=1), session_id="s", owner="acme")
    before = make_usage(key=2, branch="main", timestamp=T0 - timedelta(hours=4), session_id="s", owner="acme")
    too_early = make_usage(key=3, branch="main", timestamp=T0 - timedelta(hours=5, seconds=1), session_id="s")
    after = make_usage(key=4, branch="main", timestamp=T0 + timedelta(hours=3), session_id="s", owner="acme")
    other_session = make_usage(key=5, branch="main", timestamp=T0, session_id="t", owner="acme")
    records = [on_branch, before, replace(too_early, owner="acme"), after, other_session]
    matches = match_records(records, [pr], grace=GRACE, default_branches={"acme/app": "main"})
    assert matches == {
        1: Match("acme/app", 7, "branch"),
        2: Match("acme/app", 7, "session"),
        3: None,  # more than 6 h before the session's first record on the PR
        4: None,  # after it: not work done before the branch existed
        5: None,
    }


def test_session_on_two_prs_places_nothing_and_sessions_are_per_owner() -> None:
    one = make_pr(number=1, head_ref="a")
    two = make_pr(number=2, head_ref="b")
    records = [
        make_usage(key=1, branch="a", timestamp=T0 + timedelta(hours=1), session_id="s", owner="acme"),
        make_usage(key=2, branch="b", timestamp=T0 + timedelta(hours=2), session_id="s", owner="acme"),
        make_usage(key=3, branch="main", timestamp=T0, session_id="s", owner="acme"),
    ]
    assert match_records(records, [one, two], grace=GRACE)[3] is None
    # The same session id sent by another owner is another session: it borrows nothing.
    foreign = make_usage(key=4, repo="evil/app", branch="main", timestamp=T0, session_id="s", owner="evil")
    assert match_records([records[0], foreign], [one], grace=GRACE)[4] is None


# --- consent (DESIGN §5 forks) --------------------------------------------------------------------------------


def test_a_fork_owner_without_consent_keeps_the_match_private() -> None:
    fork_pr = make_pr(number=12, head_repo="bob/app", head_ref="fix")
    record = make_usage(repo="bob/app", branch="fix", owner="bob")
    assert match_one(record, [fork_pr]) == Match("acme/app", 12, "branch", private=True)
    assert match_one(replace(record, share_upstream=True), [fork_pr]) == Match("acme/app", 12, "branch")
    # The upstream owner's own checkout of the fork's branch needs no consent.
    own = make_usage(repo="acme/app", branch="x", pr=12, owner="acme")
    assert match_one(own, [fork_pr]) == Match("acme/app", 12, "explicit")


def test_match_records_keys_every_record() -> None:
    prs = [make_pr(number=1)]
    records = [make_usage(key=1), make_usage(key=2, branch="nope"), make_usage(key=3, repo=None)]
    assert match_records(records, prs, grace=GRACE) == {1: Match("acme/app", 1, "branch"), 2: None, 3: None}
    assert match_records([], prs, grace=GRACE) == {}


def test_module_is_pure() -> None:
    code = (
        "import sys, app.matching\n"
        "bad = {'fastapi', 'sqlmodel', 'sqlalchemy', 'httpx', 'githubkit'} & set(sys.modules)\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def fake_sha(*parts: int) -> str:
    # Real SHAs are uniformly spread, which is what keeps the 7-hex buckets of the commit index tiny.
    return hashlib.sha1(repr(parts).encode()).hexdigest()


def test_scale_100k_records_1k_prs() -> None:
    prs = [
        make_pr(
            number=n,
            head_ref=f"b{n % 300}",
            created_at=T0 + timedelta(hours=n),
            closed_at=T0 + timedelta(hours=n + 2) if n % 3 else None,
            commits=frozenset(fake_sha(n, i) for i in range(20)),
        )
        for n in range(1, 1001)
    ]
    records = [
        make_usage(
            key=k,
            branch=f"b{k % 350}",
            commit=fake_sha(k % 1200, k % 25)[: 7 + k % 34] if k % 2 else None,
            pr=k % 1500 if k % 10 == 0 else None,
            timestamp=T0 + timedelta(minutes=k % 60_000),
        )
        for k in range(100_000)
    ]
    # Speed is measured in bench/, not asserted here: this checks the indexed path at scale gives answers of
    # every rule (an O(records x commits) scan would take minutes, which the suite's own runtime would show).
    result = match_records(records, prs, grace=GRACE, default_branches={"acme/app": "main"})
    assert len(result) == len(records)
    rules = {m.rule for m in result.values() if m is not None}
    assert rules == {"explicit", "commit", "branch"}


# --- properties -----------------------------------------------------------------------------------------

REPOS = ["acme/app", "alice/app", "acme/lib"]
BRANCHES = ["main", "feat", "fix"]
# Some SHAs share their first 7 or 9 hex digits, so abbreviations can be ambiguous.
SHAS = [
    "abcdef1" + "0" * 33,
    "abcdef1" + "1" * 33,
    "abcdef123" + "2" * 31,
    "abcdef123" + "3" * 31,
    "0123456" + "4" * 33,
    "fedcba9" + "5" * 33,
]
UNKNOWN_SHA = "9" * 40
OFFSETS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-7))]
GRID = timedelta(minutes=5)  # grace is a multiple of it, so records often sit exactly on a boundary


def at(step: int, offset: int = 0) -> datetime:
    return (T0 + step * GRID).astimezone(OFFSETS[offset])


def step_of(moment: datetime) -> int:
    return (moment - T0) // GRID


@st.composite
def pull_requests(draw: st.DrawFn) -> list[PullRequestFacts]:
    ids = draw(st.sets(st.tuples(st.sampled_from(REPOS), st.integers(1, 5)), min_size=draw(st.integers(0, 8))))
    prs = []
    for repo, number in sorted(ids):
        # Mostly same-repo PRs, some forks, a few deleted forks.
        head_repo = draw(st.sampled_from([repo, repo, repo, *REPOS, None]))
        created = draw(st.integers(0, 40))
        closed = draw(st.one_of(st.none(), st.integers(created, 50), st.integers(created, 50)))
        prs.append(
            PullRequestFacts(
                repo=repo,
                number=number,
                head_repo=head_repo,
                head_ref=draw(st.sampled_from(BRANCHES)),
                created_at=at(created, draw(st.integers(0, 2))),
                closed_at=None if closed is None else at(closed, draw(st.integers(0, 2))),
                commits=frozenset(draw(st.sets(st.sampled_from(SHAS), max_size=3))),
                # The default branch is a fact of the repository: when known, it is always "main" here.
                default_branch=draw(st.sampled_from([None, None, "main"])),
            )
        )
    return prs


@st.composite
def usage_records(draw: st.DrawFn, prs: list[PullRequestFacts], grace: timedelta) -> list[UsageFacts]:
    """Records mostly aimed at one PR (its repos, branch, commits, number, window boundaries), some random."""
    records = []
    for key in range(draw(st.integers(0, 25))):
        anchor = draw(st.sampled_from(prs)) if prs and draw(st.integers(0, 4)) else None
        repos: list[str | None] = [*REPOS, None]
        branches: list[str | None] = [*BRANCHES, None]
        commits: list[str | None] = [*SHAS, UNKNOWN_SHA, None, None]
        numbers: list[int | None] = [1, 2, 3, 4, 5, 6, None, None, None]
        steps = list(range(-5, 61))
        if anchor is not None:
            repos += [anchor.head_repo, anchor.head_repo, anchor.repo]
            branches += [anchor.head_ref] * 4
            commits += sorted(anchor.commits)
            numbers += [anchor.number]
            steps += [step_of(anchor.created_at) - 1] * 4
            if anchor.closed_at is not None:
                end = step_of(anchor.closed_at + grace)
                steps += [end - 1, end, end, end + 1] * 3
        commit = draw(st.sampled_from(commits))
        if commit is not None:
            commit = commit[: draw(st.sampled_from([7, 9, 10, 40]))]
        records.append(
            UsageFacts(
                key=key,
                repo=draw(st.sampled_from(repos)),
                branch=draw(st.sampled_from(branches)),
                commit=commit,
                pr=draw(st.sampled_from(numbers)),
                timestamp=at(draw(st.sampled_from(steps)), draw(st.integers(0, 2))),
            )
        )
    return records


Scenario = tuple[list[PullRequestFacts], list[UsageFacts], timedelta, dict[str, str]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    grace = draw(st.sampled_from([timedelta(0), 3 * GRID]))
    defaults = draw(st.sampled_from([{}, {"acme/app": "main"}, {"alice/app": "fix", "acme/lib": "main"}]))
    prs = draw(pull_requests())
    return prs, draw(usage_records(prs, grace)), grace, defaults


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def oracle_window(
    pr: PullRequestFacts, prs: list[PullRequestFacts], grace: timedelta
) -> tuple[datetime | None, datetime | None] | None:
    """The window by its definition, independently of branch_windows: None when empty."""
    if pr.head_repo is None:
        return None
    same = [p for p in prs if (p.head_repo, p.head_ref) == (pr.head_repo, pr.head_ref)]
    earlier = [p for p in same if (p.created_at, p.number, p.repo) < (pr.created_at, pr.number, pr.repo)]
    if any(p.closed_at is None for p in earlier):
        return None
    start = max((p.closed_at + grace for p in earlier if p.closed_at is not None), default=None)
    end = None if pr.closed_at is None else pr.closed_at + grace
    if start is not None and end is not None and end <= start:
        return None
    return (start, end)


def in_oracle_window(pr: PullRequestFacts, prs: list[PullRequestFacts], grace: timedelta, t: datetime) -> bool:
    window = oracle_window(pr, prs, grace)
    if window is None:
        return False
    start, end = window
    return (start is None or start < t) and (end is None or t <= end)


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_property_every_match_is_justified_by_its_rule(scenario: Scenario) -> None:
    prs, records, grace, defaults = scenario
    result = match_records(records, prs, grace=grace, default_branches=defaults)
    assert set(result) == {r.key for r in records}
    by_id = {(p.repo, p.number): p for p in prs}
    known_defaults = set(defaults.items()) | {(p.head_repo, p.default_branch) for p in prs if p.default_branch}

    for record in records:
        repo = record.repo
        named = [p for p in prs if p.number == record.pr and repo is not None and repo in (p.repo, p.head_repo)]
        on_default = (repo, record.branch) in known_defaults
        containing = [
            p
            for p in prs
            if p.head_repo is not None
            and repo in (p.repo, p.head_repo)
            and record.commit is not None
            and any(sha.startswith(record.commit) for sha in p.commits)
        ]
        windowed = [
            p
            for p in prs
            if (p.head_repo, p.head_ref) == (repo, record.branch) and in_oracle_window(p, prs, grace, record.timestamp)
        ]
        assert len(windowed) <= 1  # windows of one branch are disjoint
        match = result[record.key]
        if repo is None:
            assert match is None
            continue
        if match is None:
            assert not named
            assert on_default or (not containing and not windowed)
            continue
        pr = by_id[(match.repo, match.number)]
        if match.rule == "explicit":
            assert pr in named
            assert pr.repo == repo or all(p.repo != repo for p in named)
        elif match.rule == "commit":
            assert not named and not on_default
            assert pr in containing
            # The window preference: if any candidate's window holds the time, the chosen one's does.
            if any(in_oracle_window(p, prs, grace, record.timestamp) for p in containing):
                assert in_oracle_window(pr, prs, grace, record.timestamp)
        else:
            assert match.rule == "branch"
            assert not named and not on_default and not containing
            assert windowed == [pr]


@PROPERTY_SETTINGS
@given(prs=pull_requests(), grace=st.sampled_from([timedelta(0), 3 * GRID]))
def test_property_windows_are_consecutive_and_follow_the_definition(
    prs: list[PullRequestFacts], grace: timedelta
) -> None:
    windows = branch_windows(prs, grace=grace)
    listed = set()
    for (head_repo, head_ref), entries in windows.items():
        assert entries and entries[0][0] is None
        for (_, end, _), (start, _, _) in pairwise(entries):
            assert end is not None and start == end
        for start, end, pr in entries:
            assert (pr.head_repo, pr.head_ref) == (head_repo, head_ref)
            assert start is None or end is None or start < end
            assert oracle_window(pr, prs, grace) == (start, end)
            listed.add((pr.repo, pr.number))
    for pr in prs:
        if (pr.repo, pr.number) not in listed:
            assert oracle_window(pr, prs, grace) is None


@PROPERTY_SETTINGS
@given(scenario=scenarios())
def test_property_match_records_equals_matching_each_record_alone(scenario: Scenario) -> None:
    prs, records, grace, defaults = scenario
    together = match_records(records, prs, grace=grace, default_branches=defaults)
    windows = branch_windows(prs, grace=grace)
    for record in records:
        alone = match_record(record, prs=prs, windows=windows, default_branches=defaults)
        assert together[record.key] == alone
        assert match_records([record], prs, grace=grace, default_branches=defaults) == {record.key: alone}
