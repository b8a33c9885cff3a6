"""Database tables of usage, tokens, sessions, the job outbox and the spend rollups (SQLModel); `app.github_models`
holds what GitHub told us. Alembic migrations in migrations/versions must agree with these; a test checks it.

Money is stored as an integer count of nano-dollars (1e-9 USD): exact on SQLite and PostgreSQL alike (SQLite has
no decimal type), and sums in SQL stay exact. It becomes a Decimal again at the boundary (app.money).
"""

from __future__ import annotations

from datetime import date, datetime

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
# The OTLP batch state's tables (their own module), registered with the others under this naming convention.
from app.state_models import AgentSession, MetricSeries  # noqa: E402, F401


def utc_column() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def flag_column() -> sa.Column[bool]:
    """A boolean column that is false unless set (also for rows that existed before it)."""
    return sa.Column(sa.Boolean, nullable=False, server_default=sa.false())


class Usage(SQLModel, table=True):
    """One model call, normalised (DESIGN §2). (owner, source, record_id) is the dedupe key: nothing one owner
    sends can touch another owner's records. The provider's own ids of the call are in `usage_calls`."""

    __tablename__ = "usage"
    __table_args__ = (
        sa.UniqueConstraint("owner", "source", "record_id"),
        sa.Index(None, "owner", "session_id"),
        sa.Index(None, "repo", "branch", "timestamp"),
        sa.Index(None, "repo", "commit"),
        sa.Index(None, "repo", "timestamp"),
        sa.Index(None, "pr_repo", "pr_number"),
        # Only records not yet matched: the index stays as small as the backlog, and writes to it stop once a
        # record is matched (a full (repo, matched_at) index would be rewritten for every record).
        sa.Index(
            "ix_usage_pending",
            "repo",
            sqlite_where=sa.text("matched_at IS NULL"),
            postgresql_where=sa.text("matched_at IS NULL"),
        ),
    )

    pk: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    source: str = Field(sa_type=sa.String(32))
    record_id: str = Field(sa_type=sa.String(255))
    timestamp: datetime = Field(sa_type=utc_column())
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
    received_at: datetime = Field(sa_type=utc_column())
    # The provider's id of the call (DESIGN §2 "One call, one record"), as first reported; every id the call is
    # known by is a row of `usage_calls`.
    call_id: str | None = Field(default=None, sa_type=sa.String(255))
    # Other sources that reported the same call (comma-separated, sorted): answered as duplicates, never stored.
    also_seen_by: str | None = Field(default=None, sa_type=sa.String(255))
    # The token that sent it was made with `--share-upstream`: it may count on another owner's pull request.
    share_upstream: bool = Field(default=False, sa_column=flag_column())
    # Set by matching (DESIGN §5): the pull request this record served, and the rule that said so.
    pr_repo: str | None = Field(default=None, sa_type=sa.String(200))
    pr_number: int | None = Field(default=None)
    match_rule: str | None = Field(default=None, sa_type=sa.String(16))
    # Matched to another owner's pull request without that consent (DESIGN §5): in its owner's books only, never
    # in the pull request's figures.
    pr_private: bool = Field(default=False, sa_column=flag_column())
    # None until the worker has matched the record once (DESIGN §5); the worker re-examines it on PR events.
    matched_at: datetime | None = Field(default=None, sa_type=utc_column())
    # Why the matcher set this record aside (it could not read it): it counts nowhere and blocks nothing.
    match_error: str | None = Field(default=None, sa_type=sa.String(500))


class UsageCall(SQLModel, table=True):
    """An id the provider gave a model call (a request id, a message or response id), per owner: two records of
    one owner that share any of these ids are one call (DESIGN §2), and only the first stored counts."""

    __tablename__ = "usage_calls"
    __table_args__ = (sa.Index(None, "usage_pk"),)

    owner: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    call_id: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    usage_pk: int = Field(sa_type=sa.BigInteger)


class UnattributedUsage(SQLModel, table=True):
    """A usage record that names no repository yet and waits for its session's transcript to name one: Codex,
    Gemini CLI or Copilot telemetry until the agent's own file of that session arrives (app.session_join). It
    counts nowhere until then; (owner, source, record_id) dedupes a redelivery as in `usage`."""

    __tablename__ = "usage_unattributed"
    __table_args__ = (sa.UniqueConstraint("owner", "source", "record_id"), sa.Index(None, "owner", "session_id"))

    pk: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    owner: str = Field(sa_type=sa.String(100))
    source: str = Field(sa_type=sa.String(32))
    record_id: str = Field(sa_type=sa.String(255))
    session_id: str = Field(sa_type=sa.String(255))
    record: str = Field(sa_type=sa.Text)  # the canonical record as JSON
    received_at: datetime = Field(sa_type=utc_column())


class IngestToken(SQLModel, table=True):
    """An API token of one owner (a GitHub user or organisation login). Only its SHA-256 is stored."""

    __tablename__ = "ingest_tokens"

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(sa_type=sa.String(100), index=True)
    name: str = Field(default="", sa_type=sa.String(200))
    token_hash: str = Field(sa_type=sa.String(64), unique=True)
    created_at: datetime = Field(sa_type=utc_column())
    last_used_at: datetime | None = Field(default=None, sa_type=utc_column())
    # Records sent with this token may reach another owner's pull request (a fork's PR upstream; DESIGN §5).
    share_upstream: bool = Field(default=False, sa_column=flag_column())
    # Set by `tokentrail token revoke`: the token is refused everywhere from then on, and its sessions end.
    revoked_at: datetime | None = Field(default=None, sa_type=utc_column())


class DashboardSession(SQLModel, table=True):
    """A browser signed in to the dashboard with a token. The cookie holds a random session id, never the token;
    only the id's SHA-256 is stored. The session lasts until it expires, its owner signs out, or its token is
    revoked."""

    __tablename__ = "dashboard_sessions"

    id: int | None = Field(default=None, primary_key=True)
    id_hash: str = Field(sa_type=sa.String(64), unique=True)
    token_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("ingest_tokens.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    created_at: datetime = Field(sa_type=utc_column())
    expires_at: datetime = Field(sa_type=utc_column(), index=True)


class Delivery(SQLModel, table=True):
    """A webhook delivery as received; unique on GitHub's delivery id so a redelivery is a no-op."""

    __tablename__ = "deliveries"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(sa_type=sa.String(100), unique=True)
    event: str = Field(sa_type=sa.String(64))
    action: str | None = Field(default=None, sa_type=sa.String(64))
    payload: str = Field(sa_type=sa.Text)
    received_at: datetime = Field(sa_type=utc_column())


class Job(SQLModel, table=True):
    """The outbox: work for the worker, claimed with FOR UPDATE SKIP LOCKED on PostgreSQL."""

    __tablename__ = "jobs"
    __table_args__ = (sa.Index(None, "state", "run_after"), sa.Index(None, "kind", "key", "state"))

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=sa.String(32))  # webhook | match | refresh
    key: str = Field(sa_type=sa.String(300))  # what it is about: a delivery id, a repository, a pull request
    state: str = Field(default="queued", sa_type=sa.String(16))  # queued | running | done | failed
    attempts: int = Field(default=0)
    run_after: datetime = Field(sa_type=utc_column())
    locked_at: datetime | None = Field(default=None, sa_type=utc_column())
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(sa_type=utc_column())
    updated_at: datetime = Field(sa_type=utc_column())


class PullSpendGroup(SQLModel, table=True):
    """The per-PR rollup (app.pull_rollup): a PR's counted usage (pr_private false) summed per model, actor,
    source and push interval, rewritten whole whenever matching touches the PR. The PR summary reads these few
    rows instead of aggregating every record of a heavy PR on each request."""

    __tablename__ = "pull_spend"
    __table_args__ = (sa.Index(None, "repo", "number"),)

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    repo: str = Field(sa_type=sa.String(200))
    number: int
    model: str = Field(sa_type=sa.String(255))
    provider: str | None = Field(default=None, sa_type=sa.String(64))
    actor: str | None = Field(default=None, sa_type=sa.String(255))
    agent: str | None = Field(default=None, sa_type=sa.String(100))
    source: str = Field(sa_type=sa.String(32))
    also_seen_by: str | None = Field(default=None, sa_type=sa.String(255))
    push_interval: int  # how many of the PR's pushes came before these calls (0: before the first push)
    # The same on every row of a PR (kept here, not on pull_requests, so that matching never waits for the row lock
    # a refresh holds): the PR's distinct sessions, and the digest of the pushes the intervals were split by.
    pr_sessions: int
    pushes_digest: str = Field(sa_type=sa.String(64))
    first_at: datetime = Field(sa_type=utc_column())
    records: int = Field(sa_type=sa.BigInteger)
    unpriced: int = Field(sa_type=sa.BigInteger)
    cost_nanousd: int = Field(sa_type=sa.BigInteger)
    input_tokens: int = Field(sa_type=sa.BigInteger)
    cache_read_tokens: int = Field(sa_type=sa.BigInteger)
    cache_write_tokens: int = Field(sa_type=sa.BigInteger)
    output_tokens: int = Field(sa_type=sa.BigInteger)
    reasoning_tokens: int = Field(sa_type=sa.BigInteger)


class UsageDay(SQLModel, table=True):
    """The daily rollup (app.daily_rollup): counted usage (no `match_error`) summed per UTC day and what the org and
    repository pages group by. Database triggers keep it in the same statement as every insert or update of
    `usage`; deleting a usage row does not touch it (pruning keeps the figures). Each sum is held in two parts,
    above and below 10^9 (as app.exact_sum adds), so that no cell overflows a bigint."""

    __tablename__ = "usage_days"
    __table_args__ = (
        sa.Index(None, "owner", "day"),
        sa.Index(None, "repo", "day"),
        sa.Index(None, "pr_repo", "day"),
        sa.Index(None, "pr_repo", "pr_number"),
    )

    # The key columns below, as one value: JSON text on SQLite, its SHA-256 on PostgreSQL (app.daily_rollup).
    cell: str = Field(sa_column=sa.Column(sa.Text, primary_key=True))
    owner: str = Field(sa_type=sa.String(100))
    day: date
    repo: str = Field(sa_type=sa.String(200))
    pr_repo: str | None = Field(default=None, sa_type=sa.String(200))
    pr_number: int | None = Field(default=None)
    pr_private: bool = Field(default=False, sa_column=flag_column())
    model: str = Field(sa_type=sa.String(255))
    provider: str | None = Field(default=None, sa_type=sa.String(64))
    agent: str | None = Field(default=None, sa_type=sa.String(100))
    actor: str | None = Field(default=None, sa_type=sa.String(255))  # unmatched records only (pr_number None)
    branch: str | None = Field(default=None, sa_type=sa.String(255))  # unmatched records only
    last_at: datetime = Field(sa_type=utc_column())
    records: int = Field(sa_type=sa.BigInteger)
    unpriced: int = Field(sa_type=sa.BigInteger)
    cost_hi: int = Field(sa_type=sa.BigInteger)
    cost_lo: int = Field(sa_type=sa.BigInteger)
    input_hi: int = Field(sa_type=sa.BigInteger)
    input_lo: int = Field(sa_type=sa.BigInteger)
    cache_read_hi: int = Field(sa_type=sa.BigInteger)
    cache_read_lo: int = Field(sa_type=sa.BigInteger)
    cache_write_hi: int = Field(sa_type=sa.BigInteger)
    cache_write_lo: int = Field(sa_type=sa.BigInteger)
    output_hi: int = Field(sa_type=sa.BigInteger)
    output_lo: int = Field(sa_type=sa.BigInteger)


class PrunedSpend(SQLModel, table=True):
    """What `tokentrail prune` removed from a PR's figures (app.retention): the PR's counted records of pruned days,
    summed per model, actor, source and the push interval and review phase they fell in. The rollup rewrite and the
    raw reads add these rows to what the remaining records give, so a PR's figures survive pruning. The interval
    and phase are found again from `first_at` (every later push or review comes after it)."""

    __tablename__ = "usage_pruned"
    __table_args__ = (sa.Index(None, "repo", "number"),)

    id: int | None = Field(
        default=None,
        sa_column=sa.Column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    repo: str = Field(sa_type=sa.String(200))
    number: int
    model: str = Field(sa_type=sa.String(255))
    provider: str | None = Field(default=None, sa_type=sa.String(64))
    actor: str | None = Field(default=None, sa_type=sa.String(255))
    agent: str | None = Field(default=None, sa_type=sa.String(100))
    source: str = Field(sa_type=sa.String(32))
    also_seen_by: str | None = Field(default=None, sa_type=sa.String(255))
    first_at: datetime = Field(sa_type=utc_column())
    records: int = Field(sa_type=sa.BigInteger)
    unpriced: int = Field(sa_type=sa.BigInteger)
    cost_nanousd: int = Field(sa_type=sa.BigInteger)
    input_tokens: int = Field(sa_type=sa.BigInteger)
    cache_read_tokens: int = Field(sa_type=sa.BigInteger)
    cache_write_tokens: int = Field(sa_type=sa.BigInteger)
    output_tokens: int = Field(sa_type=sa.BigInteger)
    reasoning_tokens: int = Field(sa_type=sa.BigInteger)


class PrunedSession(SQLModel, table=True):
    """A session of a PR's pruned records: the PR's distinct sessions count these with its remaining records'."""

    __tablename__ = "usage_pruned_sessions"

    repo: str = Field(sa_column=sa.Column(sa.String(200), primary_key=True))
    number: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    session_id: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))


class UsageKey(SQLModel, table=True):
    """The dedupe key (owner, source, record_id) of a record, kept after the record itself is pruned: the same
    record sent again is a duplicate and cannot come back (app.retention)."""

    __tablename__ = "usage_keys"

    owner: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    source: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    record_id: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    usage_pk: int = Field(sa_type=sa.BigInteger)
    timestamp: datetime = Field(sa_type=utc_column())
