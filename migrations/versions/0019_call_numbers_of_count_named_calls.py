"""occurrence numbers of the calls agents name by their token counts

Call ids stored before this revision ("codex:<session>:<counts>", "gemini-cli:<session>:<counts>") had no
occurrence number. They become the first occurrence ("…#1") of their name from the source that stored them, and
that number is recorded, so a session that spans the upgrade still meets its other source's records as one call.
Telemetry still waiting for its session is numbered in arrival order, as the store would have numbered it.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 07:40:00.000000
"""

from collections.abc import Sequence

import json
from collections import defaultdict

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op


revision: str = '0019'
down_revision: str | None = '0018'
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
    _number_stored_calls()


_LEGACY = "(call_id LIKE 'codex:%' OR call_id LIKE 'gemini-cli:%')"


def _is_legacy(call_id: object) -> bool:
    return isinstance(call_id, str) and call_id.startswith(('codex:', 'gemini-cli:')) and '#' not in call_id


def _number_stored_calls() -> None:
    bind = op.get_bind()
    # A stored call is its name's first occurrence from the source of the record that holds it (one stored record
    # per owner and name: the store merged every other report of it).
    bind.execute(sa.text(
        "INSERT INTO usage_call_numbers (owner, call_id, source, record_id, number)"
        " SELECT c.owner, c.call_id || '#', u.source, u.record_id, 1"
        " FROM usage_calls c JOIN usage u ON u.pk = c.usage_pk"
        f" WHERE {_LEGACY.replace('call_id', 'c.call_id')}"
    ))
    bind.execute(sa.text(f"UPDATE usage_calls SET call_id = call_id || '#1' WHERE {_LEGACY}"))
    bind.execute(sa.text(f"UPDATE usage SET call_id = call_id || '#1' WHERE {_LEGACY}"))
    # Waiting telemetry: numbered per owner, source and name in the order it arrived.
    taken: dict[tuple[str, str, str], int] = defaultdict(int)
    rows = bind.execute(sa.text("SELECT pk, owner, source, record_id, record FROM usage_unattributed ORDER BY pk"))
    for row in rows.all():
        record = json.loads(row.record)
        calls = record.get('call_ids') or []
        if not any(_is_legacy(call) for call in calls):
            continue
        numbered = []
        for call in calls:
            if not _is_legacy(call):
                numbered.append(call)
                continue
            key = (row.owner, row.source, call + '#')
            taken[key] += 1
            numbered.append(f'{call}#{taken[key]}')
            bind.execute(
                sa.text(
                    "INSERT INTO usage_call_numbers (owner, call_id, source, record_id, number)"
                    " VALUES (:owner, :call_id, :source, :record_id, :number)"
                ),
                {'owner': row.owner, 'call_id': call + '#', 'source': row.source, 'record_id': row.record_id,
                 'number': taken[key]},
            )
        record['call_ids'] = numbered
        bind.execute(
            sa.text("UPDATE usage_unattributed SET record = :record WHERE pk = :pk"),
            {'record': json.dumps(record, separators=(',', ':')), 'pk': row.pk},
        )


def downgrade() -> None:
    op.drop_table('usage_call_numbers')
