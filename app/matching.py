"""Matching usage records to the pull requests their work became (DESIGN §5).

Pure: the shell loads the facts, calls `match_records` and stores each answer (`Match.rule` is the record's
`match_rule`). The rules, first that applies wins:

1. explicit: the record names a PR number that exists in its repository (base, or head for a fork).
2. commit: the record's commit (possibly abbreviated) is one of a PR's own commits.
3. branch: the record's (repo, branch) is a PR's (head repo, head ref) and its time is in the PR's window.
4. otherwise unmatched.

Records without a repository never match; records on a default branch match only explicitly. Every time is
the record's own timestamp or GitHub's created_at / closed_at, never a time of arrival, so the answer does
not depend on the order in which records and PR events arrive (the tests check this).

Re-matching after a PR event (opened, reopened, synchronize, closed): reload and re-match the records
- on `affected_branches(pr)` (of the old and new facts),
- naming `pr.number` in `pr.repo` or `pr.head_repo`,
- whose commit prefixes a commit of the old or new facts of any PR on those branches: a moved window can
  change which of several stacked PRs a shared commit belongs to.

A deleted fork (`head_repo is None`) is no candidate for rules 2-3: the matches it already has are kept
because the caller does not re-match its records (`affected_branches` is empty for it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

Rule: TypeAlias = Literal["explicit", "commit", "branch"]

# Commits are indexed by the shortest abbreviation a record may carry, so a lookup scans only the few SHAs
# sharing those hex digits instead of every commit of every PR.
MIN_COMMIT_PREFIX = 7


@dataclass(frozen=True, slots=True)
class PullRequestFacts:
    repo: str  # base repository, "owner/name" lower-case; (repo, number) is unique among the facts
    number: int
    head_repo: str | None  # the fork's name for fork PRs; None when the fork was deleted
    head_ref: str
    created_at: datetime  # tz-aware, GitHub's created_at
    closed_at: datetime | None  # None while open (again None after a reopen)
    commits: frozenset[str]  # full lower-case SHAs of the PR's own commits
    default_branch: str | None = None  # of the head repository, when known


@dataclass(frozen=True, slots=True)
class UsageFacts:
    key: int  # the stored record's primary key
    repo: str | None
    branch: str | None
    commit: str | None  # 7-40 lower-case hex, may be abbreviated
    pr: int | None
    timestamp: datetime  # tz-aware, the record's own time


@dataclass(frozen=True, slots=True)
class Match:
    repo: str  # the PR's base repository
    number: int
    rule: Rule


# (start, end, pr): the PR's window is the half-open interval start < t <= end; start None is the beginning of
# time, end None means no end (the PR is open).
Window: TypeAlias = tuple[datetime | None, datetime | None, PullRequestFacts]
Windows: TypeAlias = dict[tuple[str, str], list[Window]]
WindowMap: TypeAlias = Mapping[tuple[str, str], Sequence[Window]]


def _creation_order(pr: PullRequestFacts) -> tuple[datetime, int, str]:
    return (pr.created_at, pr.number, pr.repo)


def _contains(start: datetime | None, end: datetime | None, at: datetime) -> bool:
    return (start is None or start < at) and (end is None or at <= end)


def branch_windows(prs: Iterable[PullRequestFacts], *, grace: timedelta) -> Windows:
    """Per (head_repo, head_ref), the consecutive disjoint windows of the PRs of that branch.

    PRs are taken in (created_at, number) order. PR k's window is
    (end of the previous window, closed_at + grace]: the end is inclusive, so a record exactly at
    closed_at + grace still belongs to the closing PR and the next PR's window starts just after it. Work
    before a PR was opened belongs to it (the first window starts at the beginning of time). Empty windows
    are left out of the list, so each entry's start is the previous entry's end:
    - a PR created while an earlier PR of the branch is open gets none (the open window never ends);
    - a PR closed (plus grace) before the previous window ended gets none.
    PRs of a deleted fork (head_repo None) have no branch and get none.
    """
    by_branch: dict[tuple[str, str], list[PullRequestFacts]] = defaultdict(list)
    for pr in prs:
        if pr.head_repo is not None:
            by_branch[(pr.head_repo, pr.head_ref)].append(pr)
    windows: Windows = {}
    for key, group in by_branch.items():
        entries: list[Window] = []
        start: datetime | None = None
        for pr in sorted(group, key=_creation_order):
            end = None if pr.closed_at is None else pr.closed_at + grace
            if start is not None and end is not None and end <= start:
                continue
            entries.append((start, end, pr))
            if end is None:
                break
            start = end
        windows[key] = entries
    return windows


def _window_contains(pr: PullRequestFacts, windows: WindowMap, at: datetime) -> bool:
    if pr.head_repo is None:
        return False
    for start, end, candidate in windows.get((pr.head_repo, pr.head_ref), ()):
        if candidate.repo == pr.repo and candidate.number == pr.number:
            return _contains(start, end, at)
    return False


def _decide(
    record: UsageFacts,
    *,
    named: Iterable[PullRequestFacts],
    containing: Iterable[PullRequestFacts],
    on_default_branch: bool,
    windows: WindowMap,
) -> Match | None:
    """Apply the rules to the candidates found (by a scan or an index) for one record with a repository."""
    # The PR of the record's own repository beats a same-numbered PR opened from it (a fork) into another one.
    pr = min(named, key=lambda p: (p.repo != record.repo, *_creation_order(p)), default=None)
    if pr is not None:
        return Match(pr.repo, pr.number, "explicit")
    if on_default_branch:
        return None
    # Stacked PRs share commits: the PR whose window holds the record's time is the one being worked on.
    pr = min(
        containing,
        key=lambda p: (not _window_contains(p, windows, record.timestamp), *_creation_order(p)),
        default=None,
    )
    if pr is not None:
        return Match(pr.repo, pr.number, "commit")
    if record.repo is not None and record.branch is not None:
        for start, end, pr in windows.get((record.repo, record.branch), ()):
            if _contains(start, end, record.timestamp):
                return Match(pr.repo, pr.number, "branch")
    return None


def match_record(
    record: UsageFacts,
    *,
    prs: Sequence[PullRequestFacts],
    windows: WindowMap,
    default_branches: Mapping[str, str],
) -> Match | None:
    """Match one record by scanning `prs`; `windows` is `branch_windows(prs, ...)`.

    `default_branches` maps a repository to its default branch; the PR facts' `default_branch` adds to it.
    For many records use `match_records`, which indexes the PRs once.
    """
    repo, commit, branch = record.repo, record.commit, record.branch
    if repo is None:
        return None
    named = [p for p in prs if p.number == record.pr and repo in (p.repo, p.head_repo)]
    containing = []
    if commit is not None and len(commit) >= MIN_COMMIT_PREFIX:
        containing = [
            p
            for p in prs
            if p.head_repo is not None
            and repo in (p.repo, p.head_repo)
            and any(sha.startswith(commit) for sha in p.commits)
        ]
    on_default = branch is not None and (
        default_branches.get(repo) == branch or any(p.head_repo == repo and p.default_branch == branch for p in prs)
    )
    return _decide(record, named=named, containing=containing, on_default_branch=on_default, windows=windows)


class _Index:
    """The PRs looked up by number, by head repository and number, and by commit prefix."""

    def __init__(self, prs: Iterable[PullRequestFacts], default_branches: Mapping[str, str]) -> None:
        self.by_number: dict[tuple[str, int], list[PullRequestFacts]] = defaultdict(list)
        self.by_commit: dict[tuple[str, str], list[tuple[str, PullRequestFacts]]] = defaultdict(list)
        self.defaults = set(default_branches.items())
        for pr in prs:
            self.by_number[(pr.repo, pr.number)].append(pr)
            if pr.head_repo is None:
                continue
            if pr.head_repo != pr.repo:
                self.by_number[(pr.head_repo, pr.number)].append(pr)
            if pr.default_branch is not None:
                self.defaults.add((pr.head_repo, pr.default_branch))
            # A SHA names the same commit everywhere: a maintainer's checkout of a fork's PR counts too.
            for repo in {pr.repo, pr.head_repo}:
                for sha in pr.commits:
                    self.by_commit[(repo, sha[:MIN_COMMIT_PREFIX])].append((sha, pr))

    def match(self, record: UsageFacts, windows: Windows) -> Match | None:
        repo, commit = record.repo, record.commit
        if repo is None:
            return None
        named = self.by_number.get((repo, record.pr), []) if record.pr is not None else []
        containing: dict[tuple[str, int], PullRequestFacts] = {}
        if commit is not None and len(commit) >= MIN_COMMIT_PREFIX:
            for sha, pr in self.by_commit.get((repo, commit[:MIN_COMMIT_PREFIX]), ()):
                if sha.startswith(commit):
                    containing[(pr.repo, pr.number)] = pr
        on_default = (repo, record.branch) in self.defaults
        return _decide(
            record, named=named, containing=containing.values(), on_default_branch=on_default, windows=windows
        )


def match_records(
    records: Iterable[UsageFacts],
    prs: Sequence[PullRequestFacts],
    *,
    grace: timedelta,
    default_branches: Mapping[str, str] | None = None,
) -> dict[int, Match | None]:
    """Match every record against `prs`, building windows and indexes once: record key -> Match or None."""
    windows = branch_windows(prs, grace=grace)
    index = _Index(prs, default_branches or {})
    return {record.key: index.match(record, windows) for record in records}


def affected_branches(pr: PullRequestFacts) -> set[tuple[str, str]]:
    """The (repo, branch) keys whose records a change to this PR can re-match (see the module docstring).

    Its head branch, and the head repository's default branch when these facts reveal it (records there lose
    their commit and branch matches). Empty for a deleted fork: what its records matched is kept.
    """
    if pr.head_repo is None:
        return set()
    keys = {(pr.head_repo, pr.head_ref)}
    if pr.default_branch is not None:
        keys.add((pr.head_repo, pr.default_branch))
    return keys
