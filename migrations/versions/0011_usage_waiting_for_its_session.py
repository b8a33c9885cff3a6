"""usage that waits for its session's transcript to name a repository (Codex telemetry)

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-30 04:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op


revision: str = '0011'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'usage_unattributed',
        sa.Column('pk', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
        sa.Column('owner', sa.String(length=100), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('record_id', sa.String(length=255), nullable=False),
        sa.Column('session_id', sa.String(length=255), nullable=False),
        sa.Column('record', sa.Text(), nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('pk', name=op.f('pk_usage_unattributed')),
        sa.UniqueConstraint('owner', 'source', 'record_id', name=op.f('uq_usage_unattributed_owner_source_record_id')),
    )
    with op.batch_alter_table('usage_unattributed', schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f('ix_usage_unattributed_owner_session_id'), ['owner', 'session_id'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('usage_unattributed', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_usage_unattributed_owner_session_id'))
    op.drop_table('usage_unattributed')
