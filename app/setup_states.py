"""The `state` of GitHub's App manifest flow: issued by the setup page, accepted once by the exchange.

GitHub sends the browser back with the `code` and the `state` the form carried; an exchange whose state this
server did not issue, issued more than an hour ago (a manifest code lives one hour), or already used is refused.
Only a state's SHA-256 is stored. The page needs no login, so what a stranger can make it store is bounded: the
expired states go at every issue, and past MAX_OPEN states the oldest make room.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from app.tables import SETUP_STATES

LIFETIME = timedelta(hours=1)
MAX_OPEN = 100


def _digest(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def issue_state(session: Session, *, now: datetime) -> str:
    session.execute(sa.delete(SETUP_STATES).where(SETUP_STATES.c.expires_at <= now))
    newest = sa.select(SETUP_STATES.c.state_hash).order_by(SETUP_STATES.c.created_at.desc()).limit(MAX_OPEN - 1)
    session.execute(sa.delete(SETUP_STATES).where(SETUP_STATES.c.state_hash.not_in(newest.scalar_subquery())))
    state = secrets.token_urlsafe(24)
    session.execute(
        sa.insert(SETUP_STATES).values(state_hash=_digest(state), created_at=now, expires_at=now + LIFETIME)
    )
    return state


def consume_state(session: Session, state: str, *, now: datetime) -> bool:
    """True once for a state this server issued and that has not expired; it cannot be used again."""
    if not state or len(state) > 200:
        return False
    query = sa.delete(SETUP_STATES).where(SETUP_STATES.c.state_hash == _digest(state), SETUP_STATES.c.expires_at > now)
    deleted = cast(CursorResult[Any], session.execute(query))
    return deleted.rowcount == 1
