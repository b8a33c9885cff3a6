"""Attributing Codex telemetry by its rollout: the join of `conversation.id` to the rollout's git block.

Codex cannot put resource attributes on its OTLP events, so a `codex.sse_event` record arrives with no
repository. Its `conversation.id` is the rollout's `session_meta.id`, and the rollout's records carry that
session's `git` block (repository, branch, commit). So, within one owner (never across owners: a session id
of another owner's rollout attributes nothing of mine):

- telemetry arriving after the rollout takes the rollout's attribution before it is stored;
- a rollout arriving after the telemetry gives its attribution to the stored records of that session that have
  no repository yet, and queues them for matching (`matched_at` NULL, a match job for the repository).

Only what a record lacks is filled: a record that names its repository (an `x-vcs-*` header) keeps it.
Shell: runs inside the store's write transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.attribution import Attribution
from app.records import UsageRecord
from app.tables import USAGE

_ROLLOUT_SOURCE = "codex"  # the records of an imported rollout (app.sources.codex)
_AGENT = "codex"
_CHUNK = 500
_T = TypeVar("_T")


def _waiting(record: UsageRecord) -> bool:
    """A telemetry record of a Codex session that names no repository."""
    return (
        record.agent == _AGENT
        and record.source != _ROLLOUT_SOURCE
        and record.session_id is not None
        and record.attribution.repo is None
    )


def rollout_attributions(records: Iterable[UsageRecord]) -> dict[str, Attribution]:
    """session id -> the git block of the rollout records among `records` (those are the join's other side)."""
    found: dict[str, Attribution] = {}
    for record in records:
        if record.source == _ROLLOUT_SOURCE and record.session_id and record.attribution.repo:
            found.setdefault(record.session_id, replace(record.attribution, pr=None))
    return found


def fill_from_stored(session: Session, owner: str, items: list[tuple[UsageRecord, _T]]) -> list[tuple[UsageRecord, _T]]:
    """The batch's waiting telemetry records with the attribution of this owner's stored rollout of their session."""
    sessions = sorted({record.session_id for record, _ in items if _waiting(record) and record.session_id})
    if not sessions:
        return items
    u = USAGE.c
    known: dict[str, Attribution] = {}
    for start in range(0, len(sessions), _CHUNK):
        query = (
            sa.select(u.session_id, u.repo, u.branch, u.commit)
            .where(
                u.owner == owner,
                u.source == _ROLLOUT_SOURCE,
                u.session_id.in_(sessions[start : start + _CHUNK]),
                u.repo.is_not(None),
            )
            .order_by(u.pk)
        )
        for row in session.execute(query):
            known.setdefault(row.session_id, Attribution(repo=row.repo, branch=row.branch, commit=row.commit))
    return [
        (record.with_attribution(known[record.session_id]), priced)
        if _waiting(record) and record.session_id in known
        else (record, priced)
        for record, priced in items
    ]


def attribute_waiting(session: Session, owner: str, rollouts: dict[str, Attribution]) -> set[str]:
    """Give each rollout's attribution to this owner's stored telemetry of that session that has no repository;
    returns the repositories whose matching must run."""
    u = USAGE.c
    repos: set[str] = set()
    for session_id, attribution in rollouts.items():
        values: dict[str, Any] = {
            "repo": attribution.repo,
            "branch": attribution.branch,
            "commit": attribution.commit,
            "matched_at": None,
        }
        result: Any = session.execute(
            sa.update(USAGE)
            .where(
                u.owner == owner,
                u.session_id == session_id,
                u.agent == _AGENT,
                u.source != _ROLLOUT_SOURCE,
                u.repo.is_(None),
            )
            .values(**values)
        )
        if result.rowcount and attribution.repo:
            repos.add(attribution.repo)
    return repos
