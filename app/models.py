"""Database tables (SQLModel). Alembic migrations in migrations/versions must agree with these; a test checks it.

Money is stored as an integer count of nano-dollars (1e-9 USD): exact on SQLite and PostgreSQL alike (SQLite has
no decimal type), and sums in SQL stay exact. It becomes a Decimal again at the boundary (app.money).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

# Stable constraint names make migrations reproducible across SQLite and PostgreSQL.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


class Usage(SQLModel, table=True):
    """One model call, normalised (DESIGN §2). (source, record_id) is the dedupe key."""

    __tablename__ = "usage"
    __table_args__ = (
        sa.UniqueConstraint("source", "record_id"),
        sa.Index(None, "repo", "branch", "timestamp"),
        sa.Index(None, "repo", "commit"),
        sa.Index(None, "repo", "timestamp"),
        sa.Index(None, "pr_repo", "pr_number"),
    )

    pk: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    source: str = Field(sa_type=sa.String(32))
    record_id: str = Field(sa_type=sa.String(255))
    timestamp: datetime = Field(sa_type=_utc())
    provider: str | None = Field(default=None, sa_type=sa.String(64))
    model: str = Field(sa_type=sa.String(255))
    input_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    cache_read_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    cache_write_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    output_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    reasoning_tokens: int = Field(default=0, sa_type=sa.BigInteger)
    cost_nanousd: int | None = Field(default=None, sa_type=sa.BigInteger)
    cost_reported: bool = Field(default=False)  # True: the source's own figure; False: computed or unknown
    owner: str = Field(sa_type=sa.String(100), index=True)
    repo: str = Field(sa_type=sa.String(200))
    branch: str | None = Field(default=None, sa_type=sa.String(255))
    commit: str | None = Field(default=None, sa_type=sa.String(40))
    pr: int | None = Field(default=None)
    actor: str | None = Field(default=None, sa_type=sa.String(255))
    agent: str | None = Field(default=None, sa_type=sa.String(100))
    session_id: str | None = Field(default=None, sa_type=sa.String(255))
    received_at: datetime = Field(sa_type=_utc())
    # Set by matching (DESIGN §5): the pull request this record served, and the rule that said so.
    pr_repo: str | None = Field(default=None, sa_type=sa.String(200))
    pr_number: int | None = Field(default=None)
    match_rule: str | None = Field(default=None, sa_type=sa.String(16))


class IngestToken(SQLModel, table=True):
    """An API token of one owner (a GitHub user or organisation login). Only its SHA-256 is stored."""

    __tablename__ = "ingest_tokens"

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(sa_type=sa.String(100), index=True)
    name: str = Field(default="", sa_type=sa.String(200))
    token_hash: str = Field(sa_type=sa.String(64), unique=True)
    created_at: datetime = Field(sa_type=_utc())
    last_used_at: datetime | None = Field(default=None, sa_type=_utc())
