"""Matching usage records to the pull requests their work became (DESIGN §5).

Pure: the shell loads the facts, calls `match_records` and stores each answer (`Match.rule` is the record's
`match_rule`). The rules, first that applies wins:

1. explicit: the record names a PR number that exists in its repository (base, or head for a fork).
2. commit: the record's commit (possibly abbreviated) is one of a PR's own commits.
3. branch: the record's (repo, branch) is a PR's (head repo, head ref) and its time is in the PR's window.
4. (none of these) the record is examined by rule 5, and otherwise stays unmatched.
5. session: a record still unmatched whose session has records on exactly one PR by rules 1-3, made at most
   SESSION_LOOKBACK before the first of them: the work a session did before it created its branch. Session
   matches do not chain.

Records without a repository never match; records on a default branch match only explicitly (or by session).
Every time is the record's own timestamp or GitHub's created_at / closed_at, never a time of arrival, so the
answer does not depend on the order in which records and PR events arrive. A match of a record to another
owner's pull request without that owner's consent (`share_upstream`) is `private`: it stays in the record
owner's books and never counts on the pull request.

The shell keeps the invariant "every stored record is where `match_records` over all records and all PR facts
puts it" by re-examining, after each change, exactly what `records_to_reexamine` names (and, for the session
rule, every record of the sessions involved); a property test drives the shell on both databases to check it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

Rule: TypeAlias = Literal["explicit", "commit", "branch", "session"]

# Commits are indexed by the shortest abbreviation a record may carry, so a lookup scans only the few SHAs
# sharing those hex digits instead of every commit of every PR.
MIN_COMMIT_PREFIX = 7
# Rule 5: how long before a session's first record on a pull request its earlier records still belong to it.
SESSION_LOOKBACK = timedelta(hours=6)


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
    owner: str = ""  # the owner whose token sent it ("" in examples that need no tenancy)
    session_id: str | None = None
    share_upstream: bool = False  # its owner lets it count on other owners' pull requests


@dataclass(frozen=True, slots=True)
class Match:
    repo: str  # the PR's base repository
    number: int
    rule: Rule
    private: bool = False  # another owner's PR, without consent: in the record owner's books only


def _with_consent(match: Match | None, record: UsageFacts) -> Match | None:
    """Mark a match to another owner's pull request private unless the record's owner shares upstream."""
    if match is None or not record.owner or record.share_upstream:
        return match
    if match.repo.split("/", 1)[0] == record.owner:
        return match
    return Match(match.repo, match.number, match.rule, private=True)


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
    match = _decide(record, named=named, containing=containing, on_default_branch=on_default, windows=windows)
    return _with_consent(match, record)


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
        match = _decide(
            record, named=named, containing=containing.values(), on_default_branch=on_default, windows=windows
        )
        return _with_consent(match, record)


def match_records(
    records: Iterable[UsageFacts],
    prs: Sequence[PullRequestFacts],
    *,
    grace: timedelta,
    default_branches: Mapping[str, str] | None = None,
) -> dict[int, Match | None]:
    """Match every record against `prs`, building windows and indexes once: record key -> Match or None.

    Rule 5 (session) looks at the records given: pass every record of a session to place any of them."""
    records = list(records)
    windows = branch_windows(prs, grace=grace)
    index = _Index(prs, default_branches or {})
    matches = {record.key: index.match(record, windows) for record in records}
    matches.update(session_matches(records, matches, prs))
    return matches


def session_matches(
    records: Sequence[UsageFacts], matches: Mapping[int, Match | None], prs: Sequence[PullRequestFacts]
) -> dict[int, Match]:
    """Rule 5: records left unmatched by rules 1-3 whose session (of the same owner) holds records on exactly
    one PR, made at most SESSION_LOOKBACK before the session's first record there, in that PR's repository or
    its head repository."""
    sessions: dict[tuple[str, str], list[UsageFacts]] = defaultdict(list)
    for record in records:
        if record.session_id is not None:
            sessions[(record.owner, record.session_id)].append(record)
    by_key = {(pr.repo, pr.number): pr for pr in prs}
    found: dict[int, Match] = {}
    for group in sessions.values():
        held = [(record, match) for record in group if (match := matches.get(record.key)) is not None]
        pulls = {(match.repo, match.number) for _, match in held}
        if len(pulls) != 1:
            continue
        (repo, number), first = pulls.pop(), min(record.timestamp for record, _ in held)
        pr = by_key.get((repo, number))
        repos = {repo} if pr is None or pr.head_repo is None else {repo, pr.head_repo}
        for record in group:
            unmatched = matches.get(record.key) is None and record.repo in repos
            if unmatched and first - SESSION_LOOKBACK <= record.timestamp <= first:
                placed = _with_consent(Match(repo, number, "session"), record)
                assert placed is not None
                found[record.key] = placed
    return found


@dataclass(frozen=True, slots=True)
class Reexamine:
    """The stored records a change to some pull requests can move, in the shapes the shell can look up by index:
    records on these (repo, branch) pairs, naming these (repo, number) pairs, carrying an abbreviation of these
    commits, or held now by these pull requests."""

    branches: frozenset[tuple[str, str]]
    numbers: frozenset[tuple[str, int]]
    commits: frozenset[str]
    holders: frozenset[tuple[str, int]]


def records_to_reexamine(
    changed: Iterable[PullRequestFacts],
    *,
    neighbours: Iterable[PullRequestFacts],
    moved_default_branches: Iterable[tuple[str, str]] = (),
) -> Reexamine:
    """What to re-examine after the facts of `changed` pull requests changed (a PR's commits only ever grow).

    - the records of their head branches: the windows of every PR of those branches may have moved;
    - the records of their head repositories' default branches (facts may just have revealed them), and of
      `moved_default_branches` ((repo, branch) that became or stopped being a default branch);
    - the records naming their numbers, and the ones they hold now;
    - the records whose commit is one of theirs or of any `neighbours` (every PR on those head branches):
      a moved window decides which of several stacked PRs sharing a commit the record belongs to.
    """
    branches: set[tuple[str, str]] = set(moved_default_branches)
    numbers: set[tuple[str, int]] = set()
    commits: set[str] = set()
    holders: set[tuple[str, int]] = set()
    for pr in changed:
        holders.add((pr.repo, pr.number))
        numbers.add((pr.repo, pr.number))
        commits |= pr.commits
        if pr.head_repo is None:
            continue
        numbers.add((pr.head_repo, pr.number))
        branches.add((pr.head_repo, pr.head_ref))
        if pr.default_branch is not None:
            branches.add((pr.head_repo, pr.default_branch))
    for pr in neighbours:
        if pr.head_repo is not None and (pr.head_repo, pr.head_ref) in branches:
            commits |= pr.commits
    return Reexamine(frozenset(branches), frozenset(numbers), frozenset(commits), frozenset(holders))
