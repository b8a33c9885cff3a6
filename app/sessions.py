"""Dashboard sessions (DESIGN §9): a signed-in browser holds a random session id in its cookie, never the API
token (which can also write). Only the id's SHA-256 is stored, with the token it was opened with and an expiry;
signing out deletes it, and revoking the token ends every session opened with it."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import utcnow
from app.tables import DASHBOARD_SESSIONS, TOKENS

LIFETIME = timedelta(days=7)
MAX_ID_CHARS = 100  # ours are 43; anything longer in a cookie is not one of them


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(session: Session, *, token_id: int) -> str:
    """Open a session for the token `token_id` and return its id (for the cookie; it cannot be shown again)."""
    now = utcnow()
    session.execute(
        sa.delete(DASHBOARD_SESSIONS).where(DASHBOARD_SESSIONS.c.expires_at <= now)
    )  # keeps the table to live sessions
    session_id = secrets.token_urlsafe(32)
    session.execute(
        sa.insert(DASHBOARD_SESSIONS).values(
            id_hash=_hash(session_id), token_id=token_id, created_at=now, expires_at=now + LIFETIME
        )
    )
    return session_id


def owner_of_session(session: Session, session_id: str) -> str | None:
    """The owner whose pages this session may see; None when it is unknown, expired, or its token revoked."""
    if not session_id or len(session_id) > MAX_ID_CHARS:
        return None
    row = session.execute(
        sa.select(TOKENS.c.owner)
        .select_from(DASHBOARD_SESSIONS.join(TOKENS, TOKENS.c.id == DASHBOARD_SESSIONS.c.token_id))
        .where(
            DASHBOARD_SESSIONS.c.id_hash == _hash(session_id),
            DASHBOARD_SESSIONS.c.expires_at > utcnow(),
            TOKENS.c.revoked_at.is_(None),
        )
    ).first()
    return None if row is None else str(row.owner)


def end_session(session: Session, session_id: str) -> None:
    if session_id and len(session_id) <= MAX_ID_CHARS:
        session.execute(sa.delete(DASHBOARD_SESSIONS).where(DASHBOARD_SESSIONS.c.id_hash == _hash(session_id)))


def end_sessions_of_token(session: Session, *, token_id: int) -> int:
    """End every session opened with the token; returns how many had not expired yet."""
    mine = DASHBOARD_SESSIONS.c.token_id == token_id
    live = session.execute(
        sa.select(sa.func.count())
        .select_from(DASHBOARD_SESSIONS)
        .where(mine, DASHBOARD_SESSIONS.c.expires_at > utcnow())
    ).scalar_one()
    session.execute(sa.delete(DASHBOARD_SESSIONS).where(mine))
    return int(live)
