"""The canonical usage record every source is normalised into, and the result of parsing a batch.

Pure: plain dataclasses, no framework. Token fields follow one convention whatever the source said:
``input_tokens`` is *non-cached* input; cache reads and writes are counted apart; ``reasoning_tokens`` is the
part of ``output_tokens`` the provider spent on reasoning (informational, already inside output where billed so).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.attribution import Attribution

# Sources as they appear in the `source` field and in the dedupe key (owner, source, id).
# `ci`: usage files of agents that ran in CI, uploaded by the companion Action (app.sources.ci_files).
SOURCES = ("api", "litellm", "otlp", "claude-code", "codex", "gemini", "langfuse", "portkey", "helicone", "ci")

# DESIGN §2 "Limits, the same on every database": what a record may hold. PostgreSQL would refuse a longer
# string for the whole batch, SQLite would take it; checked here, a record outside them is rejected by index.
EARLIEST = datetime(2020, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(hours=24)  # clocks drift and time zones get mislabelled; a day ahead is a bad value
TEXT_LIMITS = {"id": 255, "call_id": 255, "model": 255, "actor": 255, "session_id": 255, "branch": 255}
TEXT_LIMITS |= {"provider": 64, "agent": 100}
MAX_TOKENS = 10**15  # exclusive
MAX_COST_USD = Decimal(10**9)  # exclusive


@dataclass(frozen=True, slots=True)
class UsageRecord:
    id: str
    source: str
    timestamp: datetime  # timezone-aware, when the call started
    model: str
    provider: str | None = None
    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: Decimal | None = None  # as reported by the source; None means "compute it"
    attribution: Attribution = field(default_factory=Attribution)
    actor: str | None = None
    agent: str | None = None
    session_id: str | None = None
    # The provider's ids of this call (request id, message or response id); records of one owner sharing any of
    # them are one call, counted once (DESIGN §2). The first is the one shown.
    call_ids: tuple[str, ...] = ()

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.output_tokens

    def with_attribution(self, fallback: Attribution) -> UsageRecord:
        """Fill the attribution this record lacks from `fallback` (e.g. the request's x-vcs-* headers)."""
        merged = self.attribution.filled_from(fallback)
        return self if merged == self.attribution else replace(self, attribution=merged)


MAX_COST_NANOUSD = int(MAX_COST_USD) * 10**9  # exclusive, as stored


def limit_violation(record: UsageRecord, *, now: datetime, cost_nanousd: int | None = None) -> str | None:
    """Why `record` is outside DESIGN §2's limits (the reason a client sees), or None. `cost_nanousd` is the cost
    as it will be stored (reported, or computed when the source reported none): it must fit too.

    This runs for every record of every batch: the common case (everything within its limits) is one expression;
    only a record that fails it is looked at field by field for the reason."""
    attribution = record.attribution
    if (
        EARLIEST <= record.timestamp <= now + LATEST_AHEAD
        and len(record.id) <= 255
        and len(record.model) <= 255
        and (record.provider is None or len(record.provider) <= 64)
        and (record.actor is None or len(record.actor) <= 255)
        and (record.agent is None or len(record.agent) <= 100)
        and (record.session_id is None or len(record.session_id) <= 255)
        and (attribution.branch is None or len(attribution.branch) <= 255)
        and (not record.call_ids or max(map(len, record.call_ids)) <= 255)
        and max(record.input_tokens, record.cache_read_tokens, record.cache_write_tokens, record.output_tokens,
                record.reasoning_tokens) < MAX_TOKENS
        and (cost_nanousd is None or cost_nanousd < MAX_COST_NANOUSD)
    ):  # fmt: skip
        return None
    return _violation(record, now=now, cost_nanousd=cost_nanousd)


def _violation(record: UsageRecord, *, now: datetime, cost_nanousd: int | None) -> str | None:
    if record.timestamp < EARLIEST:
        return f"timestamp {record.timestamp.isoformat()} is before {EARLIEST.date().isoformat()}"
    if record.timestamp > now + LATEST_AHEAD:
        return f"timestamp {record.timestamp.isoformat()} is more than 24 h in the future"
    texts = {
        "id": record.id,
        "model": record.model,
        "provider": record.provider,
        "actor": record.actor,
        "agent": record.agent,
        "session_id": record.session_id,
        "branch": record.attribution.branch,
    }
    for name, value in texts.items():
        if value is not None and len(value) > TEXT_LIMITS[name]:
            return f"{name} is longer than {TEXT_LIMITS[name]} characters"
    if any(len(call_id) > TEXT_LIMITS["call_id"] for call_id in record.call_ids):
        return f"call_id is longer than {TEXT_LIMITS['call_id']} characters"
    counts = (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens, record.output_tokens)
    if any(count >= MAX_TOKENS for count in (*counts, record.reasoning_tokens)):
        return "a token count must be below 10^15"
    if cost_nanousd is not None and cost_nanousd >= MAX_COST_NANOUSD:
        return "cost_usd must be below 10^9 USD"
    return None


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record of a batch that could not be accepted; `index` is its position in the payload."""

    index: int
    error: str


@dataclass(frozen=True, slots=True)
class CumulativePoint:
    """A point of a cumulative sum: `value` (held in the record's `field`) is the total since `start_nanos`.
    What it adds is known only against the series' previous point, so the store turns it into a delta."""

    series: str  # owner-independent key of the series (metric, resource and point attributes)
    start_nanos: int
    time_nanos: int
    value: Decimal
    field: str  # the UsageRecord field that holds the value: cost_usd or a token count


@dataclass(frozen=True, slots=True)
class SessionCommit:
    """A successful `git commit` of an agent session: from `at` on, the session works on this branch."""

    session_id: str
    at: datetime
    attribution: Attribution  # the repository (when known), branch and commit


@dataclass(slots=True)
class ParsedBatch:
    records: list[UsageRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    # Items of the payload that carry no usage at all (a trace-create event, a user line of a transcript):
    # they are not errors, and counting them lets a caller see nothing was silently dropped.
    skipped: int = 0
    # Payload index of each record, parallel to `records`, so later checks (tenancy) can reject by index too.
    positions: list[int] = field(default_factory=list)
    # OTLP metrics sent with cumulative temporality: record id -> its point, turned into a delta when stored.
    cumulative: dict[str, CumulativePoint] = field(default_factory=dict)
    # Claude Code's `git commit` tool results: the branch each session is on from then on.
    commits: list[SessionCommit] = field(default_factory=list)

    def add(self, index: int, record: UsageRecord) -> None:
        self.records.append(record)
        self.positions.append(index)

    def reject(self, index: int, error: str) -> None:
        self.rejected.append(Rejection(index=index, error=error))


class PayloadError(ValueError):
    """The payload as a whole cannot be read (not JSON, wrong top-level shape): the request gets a 4xx."""
