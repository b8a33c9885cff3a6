"""API tokens: each belongs to one owner (a GitHub login). Only the SHA-256 of a token is stored.

A token can be listed (never shown again) and revoked: a revoked token is refused everywhere, and the dashboard
sessions opened with it end.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import as_utc, utcnow
from app.github_login import LOGIN_RULE, is_github_login
from app.sessions import end_sessions_of_token
from app.tables import TOKENS

PREFIX = "tt_"
# "Last used" is kept to this precision: a write per request would cost the ingest path, one per interval does not.
LAST_USED_PRECISION = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    owner: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    share_upstream: bool = False

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def is_use_worth_recording(self, now: datetime) -> bool:
        return self.last_used_at is None or now - self.last_used_at >= LAST_USED_PRECISION


def _info(row: Any) -> TokenInfo:
    def moment(value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value)

    return TokenInfo(
        id=row.id,
        owner=row.owner,
        name=row.name,
        created_at=as_utc(row.created_at),
        last_used_at=moment(row.last_used_at),
        revoked_at=moment(row.revoked_at),
        share_upstream=bool(row.share_upstream),
    )


_COLUMNS = (
    TOKENS.c.id, TOKENS.c.owner, TOKENS.c.name, TOKENS.c.created_at, TOKENS.c.last_used_at, TOKENS.c.revoked_at,
    TOKENS.c.share_upstream,
)  # fmt: skip


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class TokenIdentity:
    """Whom a token speaks for: its owner, and whether that owner lets its records count on other owners' pull
    requests (a fork's PR upstream; DESIGN §5)."""

    owner: str
    share_upstream: bool = False


def checked_owner(owner: str) -> str:
    """The owner as stored (lower case); ValueError when it is not a GitHub login."""
    owner = owner.strip().lower()
    if not is_github_login(owner):
        raise ValueError(f"owner {owner!r} is not a GitHub login (a user or an organisation): {LOGIN_RULE}")
    return owner


def create_token(session: Session, *, owner: str, name: str = "", share_upstream: bool = False) -> str:
    """Store a new token for `owner` and return it; it cannot be shown again."""
    owner = checked_owner(owner)
    token = PREFIX + secrets.token_urlsafe(32)
    session.execute(
        sa.insert(TOKENS).values(
            owner=owner, name=name, token_hash=hash_token(token), created_at=utcnow(), share_upstream=share_upstream
        )
    )
    return token


def find_token(session: Session, token: str) -> TokenInfo | None:
    """The stored token `token` is, revoked or not; None when there is none."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = session.execute(sa.select(*_COLUMNS).where(TOKENS.c.token_hash == hash_token(token))).first()
    return None if row is None else _info(row)


def owner_of_token(session: Session, token: str) -> str | None:
    """The owner of a valid (known, not revoked) token, or None."""
    found = find_token(session, token)
    return None if found is None or found.is_revoked else found.owner


def record_use(session: Session, *, token_id: int) -> None:
    """Stamp the token as used now, unless a request already did within LAST_USED_PRECISION."""
    now = utcnow()
    session.execute(
        sa.update(TOKENS)
        .where(
            TOKENS.c.id == token_id,
            sa.or_(TOKENS.c.last_used_at.is_(None), TOKENS.c.last_used_at <= now - LAST_USED_PRECISION),
        )
        .values(last_used_at=now)
    )


def list_tokens(session: Session) -> list[TokenInfo]:
    return [_info(row) for row in session.execute(sa.select(*_COLUMNS).order_by(TOKENS.c.id))]


def revoke_token(session: Session, *, token_id: int) -> tuple[TokenInfo, int] | None:
    """Revoke the token (it stays listed, as revoked) and end its dashboard sessions; returns the token as it is
    now and how many sessions ended, or None when there is no such token. Revoking twice changes nothing."""
    row = session.execute(sa.select(*_COLUMNS).where(TOKENS.c.id == token_id)).first()
    if row is None:
        return None
    if row.revoked_at is None:
        session.execute(sa.update(TOKENS).where(TOKENS.c.id == token_id).values(revoked_at=utcnow()))
    ended = end_sessions_of_token(session, token_id=token_id)
    found = session.execute(sa.select(*_COLUMNS).where(TOKENS.c.id == token_id)).one()
    return _info(found), ended
