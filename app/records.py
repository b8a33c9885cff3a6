"""The canonical usage record every source is normalised into, and the result of parsing a batch.

Pure: plain dataclasses, no framework. Token fields follow one convention whatever the source said:
``input_tokens`` is *non-cached* input; cache reads and writes are counted apart; ``reasoning_tokens`` is the
part of ``output_tokens`` the provider spent on reasoning (informational, already inside output where billed so).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal

from app.attribution import Attribution

# Sources as they appear in the `source` field and in the dedupe key (source, id).
SOURCES = ("api", "litellm", "otlp", "claude-code", "codex", "langfuse", "portkey", "helicone")


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

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens + self.output_tokens

    def with_attribution(self, fallback: Attribution) -> UsageRecord:
        """Fill the attribution this record lacks from `fallback` (e.g. the request's x-vcs-* headers)."""
        merged = self.attribution.filled_from(fallback)
        return self if merged == self.attribution else replace(self, attribution=merged)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A record of a batch that could not be accepted; `index` is its position in the payload."""

    index: int
    error: str


@dataclass(slots=True)
class ParsedBatch:
    records: list[UsageRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    # Items of the payload that carry no usage at all (a trace-create event, a user line of a transcript):
    # they are not errors, and counting them lets a caller see nothing was silently dropped.
    skipped: int = 0
    # Payload index of each record, parallel to `records`, so later checks (tenancy) can reject by index too.
    positions: list[int] = field(default_factory=list)

    def add(self, index: int, record: UsageRecord) -> None:
        self.records.append(record)
        self.positions.append(index)

    def reject(self, index: int, error: str) -> None:
        self.rejected.append(Rejection(index=index, error=error))


class PayloadError(ValueError):
    """The payload as a whole cannot be read (not JSON, wrong top-level shape): the request gets a 4xx."""
