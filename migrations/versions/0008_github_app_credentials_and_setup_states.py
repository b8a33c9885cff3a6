"""GitHub App credentials created through /github/setup, and the setup's single-use states

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'github_app_credentials',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('app_id', sa.BigInteger(), nullable=False),
        sa.Column('slug', sa.String(length=100), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('owner', sa.String(length=100), nullable=False),
        sa.Column('html_url', sa.String(length=500), nullable=False),
        sa.Column('client_id', sa.String(length=100), nullable=False),
        sa.Column('private_key_encrypted', sa.Text(), nullable=False),
        sa.Column('webhook_secret_encrypted', sa.Text(), nullable=True),
        sa.Column('client_secret_encrypted', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_github_app_credentials')),
    )
    op.create_table(
        'github_setup_states',
        sa.Column('state_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('state_hash', name=op.f('pk_github_setup_states')),
    )
    with op.batch_alter_table('github_setup_states', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_github_setup_states_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('github_setup_states', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_github_setup_states_expires_at'))
    op.drop_table('github_setup_states')
    op.drop_table('github_app_credentials')
