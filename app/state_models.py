"""Tables of the OTLP batch state (`app.agent_state`): the last point of each cumulative metric series and what is
known of each agent session, both per owner; and the occurrence numbers of count-named calls (`app.call_numbers`).
`app.models` imports this module, so they are registered (and migrated) with every other table."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class MetricSeries(SQLModel, table=True):
    """The last point seen of a cumulative OTLP metric series, per owner: what the next point adds is its value
    less this one's (or all of it after a restart). Keyed by owner, so another owner's same series is another row."""

    __tablename__ = "metric_series"

    owner: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    series: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    start_nanos: int = Field(sa_type=sa.BigInteger)
    time_nanos: int = Field(sa_type=sa.BigInteger)
    value: str = Field(sa_type=sa.Text)  # a Decimal as text: exact on both databases, whatever its digits
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class AgentSession(SQLModel, table=True):
    """What Tokentrail learnt about one agent session of an owner across requests: whether its per-call events
    arrived (then its metrics are not counted again), and the branch its last `git commit` was on, from when."""

    __tablename__ = "agent_sessions"

    owner: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    session_id: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    has_events: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False, server_default=sa.false()))
    repo: str | None = Field(default=None, sa_type=sa.String(200))
    branch: str | None = Field(default=None, sa_type=sa.String(255))
    commit: str | None = Field(default=None, sa_type=sa.String(40))
    branch_since: datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=sa.DateTime(timezone=True))


class CallNumber(SQLModel, table=True):
    """Which occurrence of a count-named call one record is (`app.call_numbers`): the k-th record of one source
    reporting the same token counts in one session of an owner. Kept, so that a record sent again gets its number
    again and the next new one the next number, whether or not the record itself was stored."""

    __tablename__ = "usage_call_numbers"

    # Key order: a batch looks its names up by (owner, call id).
    owner: str = Field(sa_column=sa.Column(sa.String(100), primary_key=True))
    call_id: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))  # the call id before its number
    source: str = Field(sa_column=sa.Column(sa.String(32), primary_key=True))
    record_id: str = Field(sa_column=sa.Column(sa.String(255), primary_key=True))
    number: int
