"""Reverted work in the database: the revert commits pushed to default branches, and each repository's merged PRs
that are reverted now (decided by the pure `app.outcomes`).

A repository's reverts are few, so its whole revert graph is read at once: the PRs a revert names and the PRs
whose bodies revert another, with their merge commits and commits.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import as_utc
from app.money import from_nanousd
from app.outcomes import PullChange, RevertCommitSignal, RevertedBy, revert_states, reverted_targets
from app.tables import PULL_COMMITS, PULLS, REVERT_COMMITS


def record_revert_commits(session: Session, *, repo: str, reverts: Iterable[tuple[str, str]], at: datetime) -> int:
    """Store (reverting commit, reverted sha) pairs pushed to `repo`'s default branch; returns how many were new."""
    added = 0
    for sha, reverted in reverts:
        exists = session.execute(
            sa.select(REVERT_COMMITS.c.id).where(
                REVERT_COMMITS.c.repo == repo, REVERT_COMMITS.c.sha == sha, REVERT_COMMITS.c.reverted_sha == reverted
            )
        ).first()
        if exists is None:
            session.execute(sa.insert(REVERT_COMMITS).values(repo=repo, sha=sha, reverted_sha=reverted, pushed_at=at))
            added += 1
    return added


def _signals(session: Session, repos: set[str]) -> dict[str, list[RevertCommitSignal]]:
    found: dict[str, list[RevertCommitSignal]] = {}
    rows = session.execute(
        sa.select(REVERT_COMMITS).where(REVERT_COMMITS.c.repo.in_(repos)).order_by(REVERT_COMMITS.c.id)
    )
    for row in rows:
        found.setdefault(row.repo, []).append(RevertCommitSignal(row.sha, row.reverted_sha, as_utc(row.pushed_at)))
    return found


def _pulls(session: Session, repo: str, signals: list[RevertCommitSignal]) -> dict[int, PullChange]:
    """The PRs of `repo` its revert graph can involve: those whose body reverts another, those named by such a
    body, and those holding a commit a revert commit names or is."""
    shas = {s.sha for s in signals} | {s.reverted_sha for s in signals}
    named = sa.select(PULLS.c.reverts_number).where(PULLS.c.repo == repo, PULLS.c.reverts_number.is_not(None))
    by_commit = sa.select(PULL_COMMITS.c.number).where(PULL_COMMITS.c.repo == repo, PULL_COMMITS.c.sha.in_(shas))
    # An abbreviated sha (`git revert` writes full ones, people type short ones) is matched by prefix.
    prefixes = [PULL_COMMITS.c.sha.startswith(sha) for sha in shas if len(sha) < 40]
    by_prefix = sa.select(PULL_COMMITS.c.number).where(PULL_COMMITS.c.repo == repo, sa.or_(sa.false(), *prefixes))
    merge_prefixes = [PULLS.c.merge_commit_sha.startswith(sha) for sha in shas if len(sha) < 40]
    involved = sa.or_(
        PULLS.c.reverts_number.is_not(None),
        PULLS.c.number.in_(named),
        PULLS.c.number.in_(by_commit),
        PULLS.c.merge_commit_sha.in_(shas),
        *((PULLS.c.number.in_(by_prefix), *merge_prefixes) if prefixes else ()),
    )
    rows = session.execute(
        sa.select(
            PULLS.c.number, PULLS.c.merged, PULLS.c.merged_at, PULLS.c.merge_commit_sha, PULLS.c.reverts_number
        ).where(PULLS.c.repo == repo, involved)
    ).all()
    numbers = [row.number for row in rows]
    commits: dict[int, set[str]] = {}
    for number, sha in session.execute(
        sa.select(PULL_COMMITS.c.number, PULL_COMMITS.c.sha).where(
            PULL_COMMITS.c.repo == repo, PULL_COMMITS.c.number.in_(numbers)
        )
    ):
        commits.setdefault(number, set()).add(sha)
    return {
        row.number: PullChange(
            number=row.number,
            merged=bool(row.merged),
            merged_at=None if row.merged_at is None else as_utc(row.merged_at),
            shas=frozenset(commits.get(row.number, set()) | {row.merge_commit_sha} - {None}),
            reverts_number=row.reverts_number,
        )
        for row in rows
    }


def reverted_pulls(session: Session, *, repos: Iterable[str]) -> dict[tuple[str, int], RevertedBy]:
    """Every merged PR of these repositories that is reverted now, with what reverted it."""
    repos = set(repos)
    signals = _signals(session, repos)
    with_bodies = {
        repo
        for (repo,) in session.execute(
            sa.select(PULLS.c.repo).where(PULLS.c.repo.in_(repos), PULLS.c.reverts_number.is_not(None)).distinct()
        )
    }
    found: dict[tuple[str, int], RevertedBy] = {}
    for repo in sorted(with_bodies | set(signals)):
        repo_signals = signals.get(repo, [])
        for number, by in revert_states(_pulls(session, repo, repo_signals).values(), repo_signals).items():
            found[(repo, number)] = by
    return found


def owner_repos(session: Session, owner: str) -> set[str]:
    mine = PULLS.c.repo.startswith(owner + "/", autoescape=True)
    rows = session.execute(sa.select(PULLS.c.repo).where(mine).distinct())
    return {repo for (repo,) in rows if repo.split("/")[0] == owner}


def pulls_touched_by_reverts(session: Session, *, repo: str) -> set[tuple[str, int]]:
    """The PRs whose outcome a revert signal of `repo` may change: they need a fresh comment."""
    signals = _signals(session, {repo}).get(repo, [])
    return {(repo, number) for number in reverted_targets(_pulls(session, repo, signals), signals)}


def pull_spend(session: Session, *, repo: str, number: int) -> Decimal | None:
    """The stored spend of one PR (the refresh's rollup), None when the PR is unknown."""
    row = session.execute(
        sa.select(PULLS.c.spend_nanousd).where(PULLS.c.repo == repo, PULLS.c.number == number)
    ).first()
    return None if row is None else from_nanousd(int(row.spend_nanousd or 0)) or Decimal(0)
