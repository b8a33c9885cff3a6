"""API tokens: each belongs to one owner (a GitHub login). Only the SHA-256 of a token is stored."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import utcnow
from app.github_login import LOGIN_RULE, is_github_login
from app.models import IngestToken

PREFIX = "tt_"


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
    session.add(
        IngestToken(
            owner=owner,
            name=name,
            token_hash=hash_token(token),
            created_at=utcnow(),
            share_upstream=share_upstream,
        )
    )
    return token


def identity_of_token(session: Session, token: str) -> TokenIdentity | None:
    """Whom a valid token speaks for, or None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    columns = IngestToken.__table__.c  # type: ignore[attr-defined]
    row = session.execute(
        sa.select(columns.owner, columns.share_upstream).where(columns.token_hash == hash_token(token))
    ).first()
    return None if row is None else TokenIdentity(owner=str(row.owner), share_upstream=bool(row.share_upstream))


def owner_of_token(session: Session, token: str) -> str | None:
    """The owner of a valid token, or None."""
    identity = identity_of_token(session, token)
    return None if identity is None else identity.owner
