"""daily usage rollup: usage_days, kept by triggers on usage

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'usage_days',
        sa.Column('cell', sa.Text(), nullable=False),
        sa.Column('owner', sa.String(length=100), nullable=False),
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('repo', sa.String(length=200), nullable=False),
        sa.Column('pr_repo', sa.String(length=200), nullable=True),
        sa.Column('pr_number', sa.Integer(), nullable=True),
        sa.Column('pr_private', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('model', sa.String(length=255), nullable=False),
        sa.Column('provider', sa.String(length=64), nullable=True),
        sa.Column('agent', sa.String(length=100), nullable=True),
        sa.Column('actor', sa.String(length=255), nullable=True),
        sa.Column('branch', sa.String(length=255), nullable=True),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in (
                'records', 'unpriced', 'cost_hi', 'cost_lo', 'input_hi', 'input_lo', 'cache_read_hi',
                'cache_read_lo', 'cache_write_hi', 'cache_write_lo', 'output_hi', 'output_lo',
            )
        ),
        sa.PrimaryKeyConstraint('cell', name=op.f('pk_usage_days')),
    )
    op.create_index(op.f('ix_usage_days_owner_day'), 'usage_days', ['owner', 'day'], unique=False)
    op.create_index(op.f('ix_usage_days_repo_day'), 'usage_days', ['repo', 'day'], unique=False)
    op.create_index(op.f('ix_usage_days_pr_repo_day'), 'usage_days', ['pr_repo', 'day'], unique=False)
    op.create_index(op.f('ix_usage_days_pr_repo_pr_number'), 'usage_days', ['pr_repo', 'pr_number'], unique=False)
    # Roll up the records already stored, then keep the rollup with every write (app.daily_rollup).
    from app.daily_rollup import create_triggers, rebuild

    rebuild(op.get_bind())
    create_triggers(op.get_bind())


def downgrade() -> None:
    from app.daily_rollup import drop_triggers

    drop_triggers(op.get_bind())
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP FUNCTION IF EXISTS usage_days_inserted()')
        op.execute('DROP FUNCTION IF EXISTS usage_days_updated()')
    op.drop_index(op.f('ix_usage_days_pr_repo_pr_number'), table_name='usage_days')
    op.drop_index(op.f('ix_usage_days_pr_repo_day'), table_name='usage_days')
    op.drop_index(op.f('ix_usage_days_repo_day'), table_name='usage_days')
    op.drop_index(op.f('ix_usage_days_owner_day'), table_name='usage_days')
    op.drop_table('usage_days')
