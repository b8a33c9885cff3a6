"""per pull request rollup groups: pull_spend

Revision ID: 0014
Revises: 0011
Create Date: 2026-11-30 04:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

revision: str = '0014'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'pull_spend',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('repo', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.Column('model', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column('provider', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('agent', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('also_seen_by', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('push_interval', sa.Integer(), nullable=False),
        sa.Column('pr_sessions', sa.Integer(), nullable=False),
        sa.Column('pushes_digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('records', sa.BigInteger(), nullable=False),
        sa.Column('unpriced', sa.BigInteger(), nullable=False),
        sa.Column('cost_nanousd', sa.BigInteger(), nullable=False),
        sa.Column('input_tokens', sa.BigInteger(), nullable=False),
        sa.Column('cache_read_tokens', sa.BigInteger(), nullable=False),
        sa.Column('cache_write_tokens', sa.BigInteger(), nullable=False),
        sa.Column('output_tokens', sa.BigInteger(), nullable=False),
        sa.Column('reasoning_tokens', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pull_spend')),
    )
    op.create_index(op.f('ix_pull_spend_repo_number'), 'pull_spend', ['repo', 'number'], unique=False)
    # Roll up the PRs that already have matched usage (app.pull_rollup keeps it from then on).
    from app.pull_rollup import rebuild_all

    rebuild_all(op.get_bind())


def downgrade() -> None:
    op.drop_index(op.f('ix_pull_spend_repo_number'), table_name='pull_spend')
    op.drop_table('pull_spend')
