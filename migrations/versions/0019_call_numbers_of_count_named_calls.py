"""occurrence numbers of the calls agents name by their token counts

Revision ID: 0019
Revises: 0016
Create Date: 2026-11-30 07:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op


revision: str = '0019'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'usage_call_numbers',
        sa.Column('owner', sa.String(length=100), nullable=False),
        sa.Column('call_id', sa.String(length=255), nullable=False),
        sa.Column('source', sa.String(length=32), nullable=False),
        sa.Column('record_id', sa.String(length=255), nullable=False),
        sa.Column('number', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('owner', 'call_id', 'source', 'record_id', name=op.f('pk_usage_call_numbers')),
    )


def downgrade() -> None:
    op.drop_table('usage_call_numbers')
