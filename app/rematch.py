"""Stored usage against stored pull requests: the shell around the pure `app.matching`.

Two entry points, both run by the worker under a per-repository lock so that a PR event and newly arrived
usage can never both miss each other:
- `match_pending` matches records that arrived since the last run (ingest leaves them pending);
- `rematch_pull` re-examines every record a change to one PR can move (its branch, its number, its commits,
  what it already holds).
Both return the pull requests whose spend changed, so their comments are refreshed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app import metrics
from app.db import as_utc, utcnow
from app.matching import MIN_COMMIT_PREFIX, Match, PullRequestFacts, UsageFacts, match_records
from app.models import Usage
from app.repo_state import COMMITS, PULLS, default_branches

USAGE = Usage.__table__  # type: ignore[attr-defined]
U = USAGE.c
P = PULLS.c
C = COMMITS.c
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


_RECORD_COLUMNS = (U.pk, U.repo, U.branch, U.commit, U.pr, U.timestamp, U.pr_repo, U.pr_number, U.match_rule)


def _facts(row: Any) -> UsageFacts:
    return UsageFacts(
        key=row.pk, repo=row.repo, branch=row.branch, commit=row.commit, pr=row.pr, timestamp=as_utc(row.timestamp)
    )


def _pull_facts(session: Session, keys: set[PullKey], *, with_branches: bool) -> list[PullRequestFacts]:
    """Facts of these PRs (and, with_branches, of every other PR on their head branches: windows need them)."""
    if not keys:
        return []
    rows: dict[PullKey, Any] = {}
    for repo, numbers in _group(keys).items():
        for chunk in _chunks(sorted(numbers)):
            for row in session.execute(sa.select(PULLS).where(P.repo == repo, P.number.in_(chunk))):
                rows[(row.repo, row.number)] = row
    if with_branches:
        branches = {(r.head_repo, r.head_ref) for r in rows.values() if r.head_repo}
        for head_repo, refs in _group(branches).items():
            for chunk in _chunks(sorted(refs)):
                query = sa.select(PULLS).where(P.head_repo == head_repo, P.head_ref.in_(chunk))
                for row in session.execute(query):
                    rows[(row.repo, row.number)] = row
    commits: dict[PullKey, set[str]] = defaultdict(set)
    for repo, numbers in _group(rows.keys()).items():
        for chunk in _chunks(sorted(numbers)):
            query = sa.select(C.repo, C.number, C.sha).where(C.repo == repo, C.number.in_(chunk))
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
        query = sa.select(P.repo, P.number).where(
            sa.or_(P.repo.in_(repos), P.head_repo.in_(repos)), P.number.in_(chunk)
        )
        keys.update((repo, number) for repo, number in session.execute(query))
    branches = {(r.repo, r.branch) for r in records if r.repo and r.branch}
    for head_repo, refs in _group(branches).items():
        for chunk in _chunks(sorted(refs)):
            query = sa.select(P.repo, P.number).where(P.head_repo == head_repo, P.head_ref.in_(chunk))
            keys.update((repo, number) for repo, number in session.execute(query))
    prefixes = sorted({r.commit[:MIN_COMMIT_PREFIX] for r in records if r.commit})
    for chunk in _chunks(prefixes):
        # A SHA starting with the prefix sorts between the prefix itself and the prefix followed by 'g'.
        ranges = [sa.and_(C.sha >= prefix, C.sha < prefix + "g") for prefix in chunk]
        query = sa.select(C.repo, C.number).where(sa.or_(*ranges)).distinct()
        keys.update((repo, number) for repo, number in session.execute(query))
    return keys


def _apply(session: Session, rows: Sequence[Any], matches: dict[int, Match | None]) -> set[PullKey]:
    """Write the answers that changed; every examined record is marked matched. Returns the PRs touched."""
    now = utcnow()
    changed: list[dict[str, Any]] = []
    touched: set[PullKey] = set()
    for row in rows:
        match = matches.get(row.pk)
        metrics.MATCHES.inc(match.rule if match else "none")
        new = (match.repo, match.number, match.rule) if match else (None, None, None)
        old = (row.pr_repo, row.pr_number, row.match_rule)
        if new != old:
            changed.append({"key": row.pk, "new_repo": new[0], "new_number": new[1], "new_rule": new[2]})
            for repo, number in (old[:2], new[:2]):
                if repo is not None and number is not None:
                    touched.add((repo, number))
    if changed:
        session.execute(
            sa.update(USAGE)
            .where(U.pk == sa.bindparam("key"))
            .values(
                pr_repo=sa.bindparam("new_repo"),
                pr_number=sa.bindparam("new_number"),
                match_rule=sa.bindparam("new_rule"),
                matched_at=now,
            ),
            changed,
        )
    changed_keys = {c["key"] for c in changed}
    pending = [row.pk for row in rows if row.pk not in changed_keys]
    for chunk in _chunks(pending):
        session.execute(sa.update(USAGE).where(U.pk.in_(chunk), U.matched_at.is_(None)).values(matched_at=now))
    return touched


def _match(session: Session, rows: Sequence[Any], *, grace: timedelta) -> set[PullKey]:
    records = [_facts(row) for row in rows]
    pulls = _pull_facts(session, _candidate_pulls(session, records), with_branches=True)
    defaults = default_branches(session, {r.repo for r in records if r.repo})
    return _apply(session, rows, match_records(records, pulls, grace=grace, default_branches=defaults))


def pending_repos(session: Session) -> list[str]:
    return [repo for (repo,) in session.execute(sa.select(U.repo).where(U.matched_at.is_(None)).distinct())]


def match_pending(session: Session, *, repo: str, grace: timedelta) -> tuple[set[PullKey], bool]:
    """Match up to PENDING_BATCH pending records of `repo`; returns (PRs touched, whether more are pending)."""
    lock_repos(session, [repo])
    rows = session.execute(
        sa.select(*_RECORD_COLUMNS).where(U.repo == repo, U.matched_at.is_(None)).order_by(U.pk).limit(PENDING_BATCH)
    ).all()
    if not rows:
        return set(), False
    return _match(session, rows, grace=grace), len(rows) == PENDING_BATCH


def rematch_pull(session: Session, *, repo: str, number: int, grace: timedelta) -> set[PullKey]:
    """Re-examine every record a change to this PR can move: its branch, its number, its commits, its matches."""
    pull = session.execute(sa.select(PULLS).where(P.repo == repo, P.number == number)).first()
    if pull is None:
        return set()
    repos = {repo} | ({pull.head_repo} if pull.head_repo else set())
    lock_repos(session, repos)
    shas = [sha for (sha,) in session.execute(sa.select(C.sha).where(C.repo == repo, C.number == number))]
    conditions = [
        sa.and_(U.pr_repo == repo, U.pr_number == number),
        sa.and_(U.repo.in_(repos), U.pr == number),
    ]
    if pull.head_repo:
        conditions.append(sa.and_(U.repo == pull.head_repo, U.branch == pull.head_ref))
    selected: dict[int, Any] = {}
    for condition in conditions:
        for row in session.execute(sa.select(*_RECORD_COLUMNS).where(condition)):
            selected[row.pk] = row
    for chunk in _chunks(shas):
        ranges = [sa.and_(U.commit >= sha[:MIN_COMMIT_PREFIX], U.commit <= sha) for sha in chunk]
        query = sa.select(*_RECORD_COLUMNS).where(U.repo.in_(repos), sa.or_(*ranges))
        for row in session.execute(query):
            if any(sha.startswith(row.commit) for sha in chunk):
                selected[row.pk] = row
    if not selected:
        return set()
    return _match(session, list(selected.values()), grace=grace) | {(repo, number)}
