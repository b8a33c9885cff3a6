"""Stored usage against stored pull requests: the shell around the pure `app.matching`.

Two entry points, both run by the worker under a per-repository lock so that a PR event and newly arrived
usage can never both miss each other:
- `match_pending` matches records that arrived (or grew, or gained attribution) since the last run;
- `rematch_pulls` re-examines what `matching.records_to_reexamine` names after pull requests changed.
Either way every record of the sessions involved is examined too (rule 5 looks at a whole session), and both
return the pull requests whose spend changed, so their comments are refreshed; both rewrite those PRs' rollups
(app.pull_rollup) in the same transaction as the answers.

A record the matcher cannot read (a time SQLite cannot parse, a commit that is not hex: rows written by older
versions or by hand) is set aside with its error (`match_error`) and never stops the rest (DESIGN §5).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import metrics
from app.attribution import normalize_commit
from app.db import as_utc, utcnow
from app.matching import (
    MIN_COMMIT_PREFIX,
    Match,
    PullRequestFacts,
    Reexamine,
    UsageFacts,
    match_records,
    records_to_reexamine,
)
from app.pull_rollup import refresh_pull_spend
from app.repo_state import default_branches
from app.tables import PULL_COMMITS, PULLS, USAGE

PENDING_BATCH = 5_000
_CHUNK = 500

PullKey = tuple[str, int]


def lock_repos(session: Session, repos: Iterable[str]) -> None:
    """Serialise matching per repository on PostgreSQL (SQLite already has a single writer).

    Locks are taken in sorted order so two workers locking overlapping sets cannot deadlock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for repo in sorted(set(repos)):
        session.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"match:{repo}"})


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


# The time is read as the database hands it over, without SQLAlchemy's conversion: on SQLite that conversion
# raises for text it cannot parse, which would fail the whole query instead of the one bad row.
_RAW_TIME = sa.type_coerce(USAGE.c.timestamp, sa.String).label("raw_timestamp")
_RECORD_COLUMNS = (
    *(USAGE.c[name] for name in ("pk", "owner", "repo", "branch", "commit", "pr")),
    _RAW_TIME,
    *(USAGE.c[name] for name in ("session_id", "share_upstream", "pr_repo", "pr_number", "match_rule")),
    *(USAGE.c[name] for name in ("pr_private", "matched_at")),
)


def _read_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, str):
        return as_utc(datetime.fromisoformat(value))
    raise ValueError(f"unreadable timestamp {value!r}")


def _facts(row: Any) -> UsageFacts:
    """The matcher's view of a stored record; ValueError when the row cannot be read."""
    try:
        timestamp = _read_time(row.raw_timestamp)
    except (ValueError, OverflowError):
        raise ValueError(f"unreadable timestamp {str(row.raw_timestamp)[:40]!r}") from None
    if row.commit is not None and normalize_commit(row.commit) != row.commit:
        raise ValueError(f"commit {str(row.commit)[:40]!r} is not 7-40 lower-case hex")
    return UsageFacts(
        key=row.pk,
        repo=row.repo,
        branch=row.branch,
        commit=row.commit,
        pr=row.pr,
        timestamp=timestamp,
        owner=row.owner,
        session_id=row.session_id,
        share_upstream=bool(row.share_upstream),
    )


def pull_facts(session: Session, keys: set[PullKey], *, with_branches: bool) -> list[PullRequestFacts]:
    """Facts of these PRs (and, with_branches, of every other PR on their head branches: windows need them)."""
    if not keys:
        return []
    rows: dict[PullKey, Any] = {}
    for repo, numbers in _group(keys).items():
        for chunk in _chunks(sorted(numbers)):
            for row in session.execute(sa.select(PULLS).where(PULLS.c.repo == repo, PULLS.c.number.in_(chunk))):
                rows[(row.repo, row.number)] = row
    if with_branches:
        branches = {(r.head_repo, r.head_ref) for r in rows.values() if r.head_repo}
        for head_repo, refs in _group(branches).items():
            for chunk in _chunks(sorted(refs)):
                query = sa.select(PULLS).where(PULLS.c.head_repo == head_repo, PULLS.c.head_ref.in_(chunk))
                for row in session.execute(query):
                    rows[(row.repo, row.number)] = row
    commits: dict[PullKey, set[str]] = defaultdict(set)
    for repo, numbers in _group(rows.keys()).items():
        for chunk in _chunks(sorted(numbers)):
            query = sa.select(PULL_COMMITS.c.repo, PULL_COMMITS.c.number, PULL_COMMITS.c.sha).where(
                PULL_COMMITS.c.repo == repo, PULL_COMMITS.c.number.in_(chunk)
            )
            for commit_row in session.execute(query):
                commits[(commit_row.repo, commit_row.number)].add(commit_row.sha)
    defaults = default_branches(session, {r.head_repo for r in rows.values() if r.head_repo})
    return [
        PullRequestFacts(
            repo=row.repo,
            number=row.number,
            head_repo=row.head_repo,
            head_ref=row.head_ref,
            created_at=as_utc(row.created_at),
            closed_at=None if row.closed_at is None else as_utc(row.closed_at),
            commits=frozenset(commits[key]),
            default_branch=defaults.get(row.head_repo) if row.head_repo else None,
        )
        for key, row in rows.items()
    ]


def _group(pairs: Iterable[tuple[Any, Any]]) -> dict[Any, set[Any]]:
    grouped: dict[Any, set[Any]] = defaultdict(set)
    for first, second in pairs:
        grouped[first].add(second)
    return grouped


def _candidate_pulls(session: Session, records: Sequence[UsageFacts]) -> set[PullKey]:
    """PRs that could claim any of these records: by number, by head branch, or by one of their commits."""
    keys: set[PullKey] = set()
    repos = {r.repo for r in records if r.repo}
    numbers = {r.pr for r in records if r.pr is not None}
    for chunk in _chunks(sorted(numbers)):
        query = sa.select(PULLS.c.repo, PULLS.c.number).where(
            sa.or_(PULLS.c.repo.in_(repos), PULLS.c.head_repo.in_(repos)), PULLS.c.number.in_(chunk)
        )
        keys.update((repo, number) for repo, number in session.execute(query))
    branches = {(r.repo, r.branch) for r in records if r.repo and r.branch}
    for head_repo, refs in _group(branches).items():
        for chunk in _chunks(sorted(refs)):
            query = sa.select(PULLS.c.repo, PULLS.c.number).where(
                PULLS.c.head_repo == head_repo, PULLS.c.head_ref.in_(chunk)
            )
            keys.update((repo, number) for repo, number in session.execute(query))
    prefixes = sorted({r.commit[:MIN_COMMIT_PREFIX] for r in records if r.commit})
    for chunk in _chunks(prefixes):
        # A SHA starting with the prefix sorts between the prefix itself and the prefix followed by 'g'.
        ranges = [sa.and_(PULL_COMMITS.c.sha >= prefix, PULL_COMMITS.c.sha < prefix + "g") for prefix in chunk]
        query = sa.select(PULL_COMMITS.c.repo, PULL_COMMITS.c.number).where(sa.or_(*ranges)).distinct()
        keys.update((repo, number) for repo, number in session.execute(query))
    return keys


@dataclass(frozen=True, slots=True)
class _Answer:
    repo: str | None
    number: int | None
    rule: str | None
    private: bool

    @classmethod
    def of(cls, match: Match | None) -> _Answer:
        if match is None:
            return cls(None, None, None, False)
        return cls(match.repo, match.number, match.rule, match.private)

    @property
    def pull(self) -> PullKey | None:
        return None if self.repo is None or self.number is None else (self.repo, self.number)


def _apply(session: Session, rows: Sequence[Any], matches: dict[int, Match | None]) -> set[PullKey]:
    """Write the answers that changed; every examined record is marked matched. Returns the PRs whose figures
    changed: the old and new PR of a record that moved, and the PR of a record examined for the first time since
    it arrived, grew or gained attribution (matched_at NULL)."""
    now = utcnow()
    changed: list[dict[str, Any]] = []
    touched: set[PullKey] = set()
    for row in rows:
        new = _Answer.of(matches.get(row.pk))
        old = _Answer(row.pr_repo, row.pr_number, row.match_rule, bool(row.pr_private))
        if new != old:
            changed.append(
                {"key": row.pk, "new_repo": new.repo, "new_number": new.number, "new_rule": new.rule,
                 "new_private": new.private}
            )  # fmt: skip
            touched |= {pull for pull in (old.pull, new.pull) if pull is not None}
            metrics.MATCHES.inc(new.rule or "none")
        elif row.matched_at is None:
            touched |= {new.pull} if new.pull is not None else set()
            metrics.MATCHES.inc(new.rule or "none")
    if changed:
        session.execute(
            sa.update(USAGE)
            .where(USAGE.c.pk == sa.bindparam("key"))
            .values(
                pr_repo=sa.bindparam("new_repo"),
                pr_number=sa.bindparam("new_number"),
                match_rule=sa.bindparam("new_rule"),
                pr_private=sa.bindparam("new_private"),
                matched_at=now,
            ),
            changed,
        )
    changed_keys = {c["key"] for c in changed}
    pending = [row.pk for row in rows if row.pk not in changed_keys and row.matched_at is None]
    for chunk in _chunks(pending):
        session.execute(sa.update(USAGE).where(USAGE.c.pk.in_(chunk)).values(matched_at=now))
    return touched


def _set_aside(session: Session, rows: Sequence[tuple[Any, str]]) -> set[PullKey]:
    """Records the matcher cannot read: unmatched, marked with the reason, never examined again."""
    now = utcnow()
    for row, error in rows:
        session.execute(
            sa.update(USAGE)
            .where(USAGE.c.pk == row.pk)
            .values(
                pr_repo=None, pr_number=None, match_rule=None, pr_private=False, matched_at=now, match_error=error[:500]
            )
        )
    return {(row.pr_repo, row.pr_number) for row, _ in rows if row.pr_repo is not None and row.pr_number is not None}


def _with_sessions(session: Session, rows: dict[int, Any]) -> dict[int, Any]:
    """Every record of the sessions these records belong to (rule 5 decides over a whole session)."""
    sessions = _group((row.owner, row.session_id) for row in rows.values() if row.session_id is not None)
    for owner, ids in sessions.items():
        for chunk in _chunks(sorted(ids)):
            query = sa.select(*_RECORD_COLUMNS).where(
                USAGE.c.owner == owner, USAGE.c.session_id.in_(chunk), USAGE.c.match_error.is_(None)
            )
            rows.update((row.pk, row) for row in session.execute(query))
    return rows


def _match(session: Session, rows: dict[int, Any], *, grace: timedelta, writable: set[str]) -> set[PullKey]:
    """Match these records (with their sessions) against every PR that could claim them; write the answers of
    the records of `writable` repositories (the ones locked; the others are context for rule 5)."""
    rows = _with_sessions(session, rows)
    readable: list[Any] = []
    facts: list[UsageFacts] = []
    broken: list[tuple[Any, str]] = []
    for row in rows.values():
        try:
            facts.append(_facts(row))
            readable.append(row)
        except ValueError as error:
            if row.repo in writable:
                broken.append((row, str(error)))
    touched = _set_aside(session, broken)
    pulls = pull_facts(session, _candidate_pulls(session, facts), with_branches=True)
    defaults = default_branches(session, {r.repo for r in facts if r.repo})
    matches = match_records(facts, pulls, grace=grace, default_branches=defaults)
    return touched | _apply(session, [row for row in readable if row.repo in writable], matches)


def match_pending(session: Session, *, repo: str, grace: timedelta) -> tuple[set[PullKey], bool]:
    """Match up to PENDING_BATCH pending records of `repo`; returns (PRs touched, whether more are pending)."""
    lock_repos(session, [repo])
    query = sa.select(*_RECORD_COLUMNS).where(USAGE.c.repo == repo, USAGE.c.matched_at.is_(None)).order_by(USAGE.c.pk)
    rows = session.execute(query.limit(PENDING_BATCH)).all()
    if not rows:
        return set(), False
    touched = _match(session, {row.pk: row for row in rows}, grace=grace, writable={repo})
    refresh_pull_spend(session, touched)
    return touched, len(rows) == PENDING_BATCH


def _select(session: Session, what: Reexamine, *, repos: set[str]) -> dict[int, Any]:
    """The stored records `what` names, each looked up by an index; commits in `repos`."""
    conditions: list[Any] = []
    for repo, branches in _group(what.branches).items():
        conditions += [sa.and_(USAGE.c.repo == repo, USAGE.c.branch.in_(chunk)) for chunk in _chunks(sorted(branches))]
    for repo, numbers in _group(what.numbers).items():
        conditions += [sa.and_(USAGE.c.repo == repo, USAGE.c.pr.in_(chunk)) for chunk in _chunks(sorted(numbers))]
    for repo, numbers in _group(what.holders).items():
        conditions += [
            sa.and_(USAGE.c.pr_repo == repo, USAGE.c.pr_number.in_(chunk)) for chunk in _chunks(sorted(numbers))
        ]
    selected: dict[int, Any] = {}
    for condition in conditions:
        query = sa.select(*_RECORD_COLUMNS).where(condition, USAGE.c.match_error.is_(None))
        selected.update((row.pk, row) for row in session.execute(query))
    shas = sorted(what.commits)
    for chunk in _chunks(shas):
        # Records carry abbreviations: a record's commit is a prefix of the SHA, so it sorts between the SHA's
        # shortest abbreviation and the SHA itself.
        ranges = [sa.and_(USAGE.c.commit >= sha[:MIN_COMMIT_PREFIX], USAGE.c.commit <= sha) for sha in chunk]
        query = sa.select(*_RECORD_COLUMNS).where(
            USAGE.c.repo.in_(repos), sa.or_(*ranges), USAGE.c.match_error.is_(None)
        )
        for row in session.execute(query):
            if any(sha.startswith(row.commit) for sha in chunk):
                selected[row.pk] = row
    return selected


def rematch_pulls(
    session: Session, *, keys: set[PullKey], grace: timedelta, moved_default_branches: Iterable[tuple[str, str]] = ()
) -> set[PullKey]:
    """Re-examine every record a change to these PRs can move (`matching.records_to_reexamine`)."""
    neighbours = pull_facts(session, keys, with_branches=True)
    changed = [pr for pr in neighbours if (pr.repo, pr.number) in keys]
    moved = set(moved_default_branches)
    if not changed and not moved:
        return set()
    # Every repository whose records this can move: the bases and heads of these PRs and of their neighbours
    # (a record of a shared commit may sit in any of them), and the repositories whose default branch moved.
    repos = {repo for pr in neighbours for repo in (pr.repo, pr.head_repo) if repo} | {repo for repo, _ in moved}
    lock_repos(session, repos)
    what = records_to_reexamine(changed, neighbours=neighbours, moved_default_branches=moved)
    rows = _select(session, what, repos=repos)
    touched = {(pr.repo, pr.number) for pr in changed}
    touched |= _match(session, rows, grace=grace, writable=repos) if rows else set()
    refresh_pull_spend(session, touched)
    return touched
