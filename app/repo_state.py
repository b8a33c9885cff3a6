"""What Tokentrail knows of GitHub: installations, repositories, pull requests, their commits, pushes and reviews.

Writes come from webhook events and, in App mode, from GitHub's REST API (the worker refreshes a PR's facts).
GitHub delivers webhooks in any order and redelivers them, so a PR's facts follow GitHub's own `updated_at`, never
the order of arrival (DESIGN §5): an older snapshot never overwrites a newer one, and a PR's commits only grow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from app.db import as_utc, utcnow
from app.events import InstallationEvent
from app.github_objects import PullRequestSnapshot
from app.oidc import RecordedInstallation, RecordedRepository
from app.tables import INSTALLATIONS, PULL_COMMITS, PULLS, PUSHES, REPOSITORIES, REVIEWS


def _upsert(session: Session, table: sa.Table, *, keys: dict[str, Any], values: dict[str, Any]) -> None:
    """Insert or update one row by its natural key (portable: SQLite and PostgreSQL)."""
    where = sa.and_(*(table.c[name] == value for name, value in keys.items()))
    updated = cast(CursorResult[Any], session.execute(sa.update(table).where(where).values(**values)))
    if updated.rowcount == 0:
        session.execute(sa.insert(table).values(**keys, **values))


def apply_installation(session: Session, event: InstallationEvent) -> None:
    now = utcnow()
    values: dict[str, Any] = {
        "account_login": event.account_login,
        "account_type": event.account_type,
        "updated_at": now,
    }
    if event.account_id is not None:
        values["account_id"] = event.account_id
    if event.action == "deleted":
        values["deleted"] = True
    elif event.action == "suspend":
        values["suspended"] = True
    elif event.action in {"unsuspend", "created"}:
        values.update(suspended=False, deleted=False)
    _upsert(session, INSTALLATIONS, keys={"id": event.installation_id}, values=values)
    repository_ids = dict(event.repository_ids)
    for repo in event.repos_added:
        # An installation's repositories belong to its account: the account's id is their owner's id.
        upsert_repository(
            session,
            repo=repo,
            installation_id=event.installation_id,
            repository_id=repository_ids.get(repo),
            owner_id=event.account_id if repo in repository_ids else None,
        )
    removed = list(event.repos_removed)
    if event.action == "deleted":
        removed = [
            r
            for (r,) in session.execute(
                sa.select(REPOSITORIES.c.full_name).where(REPOSITORIES.c.installation_id == event.installation_id)
            )
        ]
    if removed:
        session.execute(
            sa.update(REPOSITORIES).where(REPOSITORIES.c.full_name.in_(removed)).values(removed=True, updated_at=now)
        )


def upsert_repository(
    session: Session,
    *,
    repo: str,
    installation_id: int | None = None,
    default_branch: str | None = None,
    repository_id: int | None = None,
    owner_id: int | None = None,
) -> list[tuple[str, str]]:
    """Store what an event says of a repository; returns the (repo, branch) pairs that became or stopped being its
    default branch (records on them match differently: DESIGN §5 never matches the default branch)."""
    before = session.execute(
        sa.select(REPOSITORIES.c.default_branch).where(REPOSITORIES.c.full_name == repo)
    ).scalar_one_or_none()
    values: dict[str, Any] = {"updated_at": utcnow(), "removed": False}
    if installation_id is not None:
        values["installation_id"] = installation_id
    if default_branch:
        values["default_branch"] = default_branch
    if repository_id is not None and owner_id is not None:  # a pair: the ids of one repository, told at once
        values.update(repository_id=repository_id, owner_id=owner_id)
    _upsert(session, REPOSITORIES, keys={"full_name": repo}, values=values)
    if default_branch and before is not None and before != default_branch:
        return [(repo, before), (repo, default_branch)]
    return []


def installation_of(session: Session, repo: str) -> int | None:
    row = session.execute(sa.select(REPOSITORIES.c.installation_id).where(REPOSITORIES.c.full_name == repo)).first()
    return None if row is None else row[0]


def recorded_repository(session: Session, repo: str) -> RecordedRepository | None:
    """What the webhooks told of `repo` and of the installation it belongs to; None when they never named it."""
    row = session.execute(
        sa.select(
            REPOSITORIES.c.repository_id,
            REPOSITORIES.c.owner_id,
            REPOSITORIES.c.removed,
            INSTALLATIONS.c.account_login,
            INSTALLATIONS.c.account_id,
            INSTALLATIONS.c.suspended,
            INSTALLATIONS.c.deleted,
        )
        .select_from(REPOSITORIES.outerjoin(INSTALLATIONS, INSTALLATIONS.c.id == REPOSITORIES.c.installation_id))
        .where(REPOSITORIES.c.full_name == repo)
    ).first()
    if row is None:
        return None
    installation = None
    if row.account_login is not None:
        installation = RecordedInstallation(
            account_login=row.account_login,
            account_id=row.account_id,
            suspended=bool(row.suspended),
            deleted=bool(row.deleted),
        )
    return RecordedRepository(
        full_name=repo,
        repository_id=row.repository_id,
        owner_id=row.owner_id,
        removed=bool(row.removed),
        installation=installation,
    )


def default_branches(session: Session, repos: Iterable[str]) -> dict[str, str]:
    names = sorted(set(repos))
    if not names:
        return {}
    rows = session.execute(
        sa.select(REPOSITORIES.c.full_name, REPOSITORIES.c.default_branch).where(REPOSITORIES.c.full_name.in_(names))
    )
    return {name: branch for name, branch in rows}


_OLDEST = datetime(1970, 1, 1, tzinfo=UTC)


def snapshot_order(updated_at: datetime | None, *, closed: bool, merged: bool, head_sha: str) -> tuple[Any, ...]:
    """Which of two snapshots of a PR is newer: GitHub's `updated_at` first. GitHub's times have one-second
    resolution, so for equal times the more final state wins (closed over open, merged over not), then the head
    SHA: a total order, so the same snapshots in any order leave the same state."""
    return (as_utc(updated_at) if updated_at is not None else _OLDEST, closed, merged, head_sha)


def upsert_pull(session: Session, pull: PullRequestSnapshot) -> bool:
    """Store GitHub's facts of a PR unless the stored ones are newer; returns whether they were stored.

    Counts the payload lacks (a review's PR object) keep their stored values; a deleted fork (head repo null)
    keeps the head repository already known, so past matches stay."""
    stored = session.execute(
        sa.select(PULLS.c.github_updated_at, PULLS.c.state, PULLS.c.merged, PULLS.c.head_sha).where(
            PULLS.c.repo == pull.repo, PULLS.c.number == pull.number
        )
    ).first()
    incoming = snapshot_order(
        pull.updated_at or pull.created_at, closed=pull.state == "closed", merged=pull.merged, head_sha=pull.head_sha
    )
    if stored is not None:
        current = snapshot_order(
            stored.github_updated_at, closed=stored.state == "closed", merged=stored.merged, head_sha=stored.head_sha
        )
        if incoming <= current:
            return False
    values: dict[str, Any] = {
        "title": pull.title,
        "author": pull.author,
        "state": pull.state,
        "merged": pull.merged,
        "draft": pull.draft,
        "head_ref": pull.head_ref,
        "head_sha": pull.head_sha,
        "base_ref": pull.base_ref,
        "labels": json.dumps(list(pull.labels)),
        "html_url": pull.html_url,
        "created_at": pull.created_at,
        "closed_at": pull.closed_at,
        "merged_at": pull.merged_at,
        "updated_at": utcnow(),
        "github_updated_at": incoming[0],
    }
    if pull.head_repo is not None:
        values["head_repo"] = pull.head_repo
    if pull.merge_commit_sha is not None:
        values["merge_commit_sha"] = pull.merge_commit_sha
    values["reverts_number"] = pull.reverts_number  # the body as it is now: an edited-away link no longer counts
    for name in ("additions", "deletions", "changed_files"):
        if getattr(pull, name) is not None:
            values[name] = getattr(pull, name)
    _upsert(session, PULLS, keys={"repo": pull.repo, "number": pull.number}, values=values)
    return True


def add_commits(session: Session, *, repo: str, number: int, shas: Iterable[str]) -> int:
    """Record commits of a PR; returns how many were new. Commits are never removed: every head a PR had and
    every commit GitHub listed stay its own, so a force-push does not orphan the records of the work it replaced
    (DESIGN §5)."""
    known = {
        sha
        for (sha,) in session.execute(
            sa.select(PULL_COMMITS.c.sha).where(PULL_COMMITS.c.repo == repo, PULL_COMMITS.c.number == number)
        )
    }
    new = sorted({sha.lower() for sha in shas if sha} - known)
    if new:
        session.execute(sa.insert(PULL_COMMITS), [{"repo": repo, "number": number, "sha": sha} for sha in new])
    return len(new)


def add_push(session: Session, *, repo: str, number: int, sha: str, at: datetime) -> None:
    exists = session.execute(
        sa.select(PUSHES.c.id).where(PUSHES.c.repo == repo, PUSHES.c.number == number, PUSHES.c.sha == sha)
    ).first()
    if exists is None:
        session.execute(sa.insert(PUSHES).values(repo=repo, number=number, sha=sha, pushed_at=at))


def upsert_review(
    session: Session, *, repo: str, number: int, review_id: int, reviewer: str, state: str, submitted_at: datetime
) -> None:
    _upsert(
        session,
        REVIEWS,
        keys={"repo": repo, "review_id": review_id},
        values={"number": number, "reviewer": reviewer, "state": state, "submitted_at": submitted_at},
    )


def open_pulls_of_branch(session: Session, *, head_repo: str, head_ref: str) -> set[tuple[str, int]]:
    rows = session.execute(
        sa.select(PULLS.c.repo, PULLS.c.number).where(
            PULLS.c.head_repo == head_repo, PULLS.c.head_ref == head_ref, PULLS.c.state == "open"
        )
    )
    return {(repo, number) for repo, number in rows}


def open_pulls(session: Session, *, repo: str) -> set[tuple[str, int]]:
    rows = session.execute(sa.select(PULLS.c.repo, PULLS.c.number).where(PULLS.c.repo == repo, PULLS.c.state == "open"))
    return {(name, number) for name, number in rows}


def pulls_at_head(session: Session, *, repo: str, head_sha: str) -> set[tuple[str, int]]:
    rows = session.execute(sa.select(PULLS.c.number).where(PULLS.c.repo == repo, PULLS.c.head_sha == head_sha))
    return {(repo, number) for (number,) in rows}


def get_pull(session: Session, *, repo: str, number: int, lock: bool = False) -> Any | None:
    """The stored PR row; with `lock`, held until the transaction ends (one refresh of a PR at a time, whatever
    the number of workers, on PostgreSQL; SQLite has a single writer anyway)."""
    query = sa.select(PULLS).where(PULLS.c.repo == repo, PULLS.c.number == number)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.execute(query).first()


def mark_rematch(session: Session, pulls: Iterable[tuple[str, int]]) -> None:
    """These PRs' facts changed in ways that can move records: their next refresh re-matches them."""
    for repo, number in sorted(set(pulls)):
        session.execute(
            sa.update(PULLS).where(PULLS.c.repo == repo, PULLS.c.number == number).values(rematch_pending=True)
        )


def save_published(session: Session, *, pull_id: int, values: dict[str, Any]) -> None:
    """What a refresh rendered and posted (comment, check run, the spend rollup); the re-match is done."""
    session.execute(sa.update(PULLS).where(PULLS.c.id == pull_id).values(rematch_pending=False, **values))


def stale_config_branch(session: Session, *, repo: str) -> str | None:
    """The default branch to read `.github/tokentrail.yml` from when the cached copy is stale (a push moved the
    default branch since it was read); None when the cache is current."""
    row = session.execute(
        sa.select(REPOSITORIES.c.default_branch, REPOSITORIES.c.config_fetched).where(REPOSITORIES.c.full_name == repo)
    ).first()
    return None if row is None or row.config_fetched else str(row.default_branch)


def save_config(session: Session, *, repo: str, text: str | None) -> None:
    session.execute(
        sa.update(REPOSITORIES).where(REPOSITORIES.c.full_name == repo).values(config_text=text, config_fetched=True)
    )


def mark_config_stale(session: Session, *, repo: str) -> None:
    """The default branch moved: its budget file is read again at the next refresh (App mode)."""
    session.execute(sa.update(REPOSITORIES).where(REPOSITORIES.c.full_name == repo).values(config_fetched=False))


def pull_labels(row: Any) -> tuple[str, ...]:
    try:
        labels = json.loads(row.labels or "[]")
    except json.JSONDecodeError:
        return ()
    return tuple(str(label) for label in labels)
