"""API tokens: each belongs to one owner (a GitHub login). Only the SHA-256 of a token is stored."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import IngestToken

PREFIX = "tt_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, *, owner: str, name: str = "") -> str:
    """Store a new token for `owner` and return it; it cannot be shown again."""
    owner = owner.strip().lower()
    if not owner or "/" in owner or len(owner) > 100:
        raise ValueError("owner must be a GitHub login (a user or an organisation)")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(IngestToken(owner=owner, name=name, token_hash=hash_token(token), created_at=utcnow()))
    return token


def owner_of_token(session: Session, token: str) -> str | None:
    """The owner of a valid token, or None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    columns = IngestToken.__table__.c  # type: ignore[attr-defined]
    row = session.execute(sa.select(columns.owner).where(columns.token_hash == hash_token(token))).first()
    return None if row is None else str(row[0])
