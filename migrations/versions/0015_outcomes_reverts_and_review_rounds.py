"""outcomes: merge commits, revert signals and the spend of review rounds

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 04:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("merge_commit_sha", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("reverts_number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("review_rounds", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("review_round_nanousd", sa.BigInteger(), server_default="0", nullable=False))
    op.create_table(
        "revert_commits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo", sa.String(length=200), nullable=False),
        sa.Column("sha", sa.String(length=40), nullable=False),
        sa.Column("reverted_sha", sa.String(length=40), nullable=False),
        sa.Column("pushed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo", "sha", "reverted_sha"),
    )
    with op.batch_alter_table("revert_commits", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revert_commits_repo"), ["repo"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("revert_commits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_revert_commits_repo"))
    op.drop_table("revert_commits")
    with op.batch_alter_table("pull_requests", schema=None) as batch_op:
        batch_op.drop_column("review_round_nanousd")
        batch_op.drop_column("review_rounds")
        batch_op.drop_column("reverts_number")
        batch_op.drop_column("merge_commit_sha")
