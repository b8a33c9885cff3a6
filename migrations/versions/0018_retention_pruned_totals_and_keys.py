"""Retention: the totals and dedupe keys of pruned records

Revision ID: 0018
Revises: 0016
Create Date: 2026-11-30 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _big() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    figures = ("records", "unpriced", "cost_nanousd", "input_tokens", "cache_read_tokens", "cache_write_tokens",
               "output_tokens", "reasoning_tokens")  # fmt: skip
    op.create_table(
        "usage_pruned",
        sa.Column("id", _big(), autoincrement=True, nullable=False),
        sa.Column("repo", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("agent", sa.String(length=100), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("also_seen_by", sa.String(length=255), nullable=True),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in figures),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_pruned")),
    )
    op.create_index(op.f("ix_usage_pruned_repo_number"), "usage_pruned", ["repo", "number"], unique=False)
    op.create_table(
        "usage_pruned_sessions",
        sa.Column("repo", sa.String(length=200), nullable=False),
        sa.Column("number", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("repo", "number", "session_id", name=op.f("pk_usage_pruned_sessions")),
    )
    op.create_table(
        "usage_keys",
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("usage_pk", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "source", "record_id", name=op.f("pk_usage_keys")),
    )


def downgrade() -> None:
    op.drop_table("usage_keys")
    op.drop_table("usage_pruned_sessions")
    op.drop_index(op.f("ix_usage_pruned_repo_number"), table_name="usage_pruned")
    op.drop_table("usage_pruned")
