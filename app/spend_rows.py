"""Rows of the PR spend report by model, by author and agent, and by source; rows that name one model or one person
in several spellings merged into one. Pure (part of `app.report`, which re-exports these names).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from app.pricing import canonical_model


@dataclass(frozen=True, slots=True)
class ModelSpend:
    model: str  # as the records carry it; after `merge_models`, the canonical name (pricing.canonical_model)
    provider: str | None  # after `merge_models`, every provider of the merged rows, comma-separated
    records: int
    unpriced_records: int
    cost_usd: Decimal
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    raw_models: tuple[str, ...] = ()  # after `merge_models`: the ids the records carry, sorted

    @property
    def is_renamed(self) -> bool:
        """Whether the row stands for ids other than its name (a dated or routed spelling)."""
        return bool(self.raw_models) and self.raw_models != (self.model,)


@dataclass(frozen=True, slots=True)
class ActorSpend:
    actor: str | None  # as the usage records carry it (login, email, local name); after `merge_actors`, the login
    agent: str | None
    records: int
    cost_usd: Decimal


@dataclass(frozen=True, slots=True)
class SourceSpend:
    """The calls a source reported first (and so counted), and how many of them other sources reported too."""

    source: str
    records: int
    cost_usd: Decimal
    also_seen_by: tuple[tuple[str, int], ...] = ()  # (other source, calls it also reported), by source


def costliest(item: ModelSpend | ActorSpend) -> tuple[Decimal, int]:
    return (-item.cost_usd, -item.records)


def merge_models(rows: Iterable[ModelSpend]) -> tuple[ModelSpend, ...]:
    """One row per model: rows whose ids are spellings of one model (dated, routed through a gateway or a cloud)
    summed under its canonical name, with the ids they carried in `raw_models`."""
    groups: dict[str, list[ModelSpend]] = {}
    for row in rows:
        groups.setdefault(canonical_model(row.provider, row.model), []).append(row)
    return tuple(_merged_model(name, members) for name, members in groups.items())


def _merged_model(name: str, members: list[ModelSpend]) -> ModelSpend:
    members = sorted(members, key=lambda m: (*costliest(m), m.model, m.provider or ""))
    providers = dict.fromkeys(m.provider for m in members if m.provider)  # costliest first, each once
    return ModelSpend(
        model=name,
        provider=", ".join(providers) or None,
        records=sum(m.records for m in members),
        unpriced_records=sum(m.unpriced_records for m in members),
        cost_usd=sum((m.cost_usd for m in members), Decimal(0)),
        input_tokens=sum(m.input_tokens for m in members),
        cache_read_tokens=sum(m.cache_read_tokens for m in members),
        cache_write_tokens=sum(m.cache_write_tokens for m in members),
        output_tokens=sum(m.output_tokens for m in members),
        raw_models=tuple(sorted({raw for m in members for raw in (m.raw_models or (m.model,))})),
    )


def merge_actors(rows: Iterable[ActorSpend], logins: Mapping[str, str]) -> tuple[ActorSpend, ...]:
    """One row per person and agent: an actor with a known login (an email, a local user name) is shown as that
    login, and rows that become the same (login, agent) are summed."""
    sums: dict[tuple[str | None, str | None], tuple[int, Decimal]] = {}
    for row in rows:
        key = (logins.get(row.actor, row.actor) if row.actor is not None else None, row.agent)
        records, cost = sums.get(key, (0, Decimal(0)))
        sums[key] = (records + row.records, cost + row.cost_usd)
    return tuple(
        ActorSpend(actor=actor, agent=agent, records=records, cost_usd=cost)
        for (actor, agent), (records, cost) in sums.items()
    )
