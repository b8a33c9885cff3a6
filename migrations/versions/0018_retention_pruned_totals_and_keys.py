"""Retention: the totals and dedupe keys of pruned records; monthly partitions of usage on PostgreSQL

On PostgreSQL `usage` becomes a table partitioned by RANGE on `timestamp`, one partition per month (app.partitions)
and a DEFAULT one, so that `tokentrail prune` drops whole months. A partitioned table's unique keys must hold the
partition key, so the per-owner dedupe key (owner, source, record_id) moves to `usage_keys`, one unpartitioned row
per record (app.store), which pruning keeps. On SQLite `usage` stays one table with its unique key, and
`usage_keys` keeps only the keys of pruned records.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 07:30:00.000000
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from app import daily_rollup, partitions

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _big() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


# The indexes of `usage` besides its keys (app.models.Usage), rebuilt on the new table either way.
_INDEXES = {
    "ix_usage_owner": "(owner)",
    "ix_usage_owner_session_id": "(owner, session_id)",
    "ix_usage_pending": "(repo) WHERE matched_at IS NULL",
    "ix_usage_pr_repo_pr_number": "(pr_repo, pr_number)",
    "ix_usage_repo_branch_timestamp": '(repo, branch, "timestamp")',
    "ix_usage_repo_commit": "(repo, commit)",
    "ix_usage_repo_timestamp": '(repo, "timestamp")',
}
# Months of existing rows that get their own partition; rows of other times wait in the DEFAULT partition.
_MONTHS = """
SELECT DISTINCT CAST(date_trunc('month', "timestamp" AT TIME ZONE 'UTC') AS date) FROM usage_flat
WHERE "timestamp" >= '2000-01-01 00:00:00+00' AND "timestamp" < now() + interval '3 months'
"""


def _swap(old: str, partitioned: bool) -> None:
    """Rename `usage` to `old`, create the new `usage` like it, copy the rows, drop `old`; the pk sequence moves."""
    op.execute(f"ALTER TABLE usage RENAME TO {old}")
    op.execute("ALTER SEQUENCE usage_pk_seq OWNED BY NONE")
    tail = ' PARTITION BY RANGE ("timestamp")' if partitioned else ""
    op.execute(f"CREATE TABLE usage (LIKE {old} INCLUDING DEFAULTS){tail}")
    if partitioned:
        bind = op.get_bind()
        months = {month for (month,) in bind.execute(sa.text(_MONTHS))}
        ahead = datetime.now(tz=UTC).date().replace(day=1)
        for _ in range(partitions.AHEAD + 1):
            months.add(ahead)
            ahead = partitions.next_month(ahead)
        op.execute(f"CREATE TABLE {partitions.DEFAULT} PARTITION OF usage DEFAULT")
        for month in sorted(months):
            op.execute(f"CREATE TABLE {partitions.name_of(month)} PARTITION OF usage {partitions.bounds_of(month)}")
    op.execute(f"INSERT INTO usage SELECT * FROM {old}")
    if partitioned:
        op.execute(
            'INSERT INTO usage_keys (owner, source, record_id, usage_pk, "timestamp") '
            f'SELECT owner, source, record_id, pk, "timestamp" FROM {old} ON CONFLICT DO NOTHING'
        )
    op.execute(f"DROP TABLE {old}")
    op.execute("ALTER SEQUENCE usage_pk_seq OWNED BY usage.pk")
    if partitioned:
        op.execute('ALTER TABLE usage ADD CONSTRAINT pk_usage PRIMARY KEY (pk, "timestamp")')
        op.execute("CREATE INDEX ix_usage_owner_source_record_id ON usage (owner, source, record_id)")
    else:
        op.execute("ALTER TABLE usage ADD CONSTRAINT pk_usage PRIMARY KEY (pk)")
        op.execute("ALTER TABLE usage ADD CONSTRAINT uq_usage_owner_source_record_id UNIQUE (owner, source, record_id)")
    for name, columns in _INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON usage {columns}")
    # The daily rollup's triggers (0017) went with the old table; the copy above went in without them, as the
    # rollup already holds those rows.
    daily_rollup.create_triggers(op.get_bind())


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
    if op.get_bind().dialect.name == "postgresql":
        _swap("usage_flat", partitioned=True)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT 1 FROM usage_pruned LIMIT 1")).first() is not None:
        raise RuntimeError(
            "usage_pruned holds the figures of pruned records: downgrading past 0018 would drop them from every "
            "pull request's totals"
        )
    if bind.dialect.name == "postgresql":
        _swap("usage_parted", partitioned=False)
    op.drop_table("usage_keys")
    op.drop_table("usage_pruned_sessions")
    op.drop_index(op.f("ix_usage_pruned_repo_number"), table_name="usage_pruned")
    op.drop_table("usage_pruned")
