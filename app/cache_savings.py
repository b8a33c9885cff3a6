"""Cache efficiency (issue 15): what cache reads saved against sending the same tokens as uncached input at the
same model's price, and what cache writes cost; and the sessions whose cache-read share is far below their
repository's. Pure; prices from `app.pricing` (genai-prices' snapshot).

The shell hands over cache tokens summed per (model, provider, UTC day), so each group is priced at its own
model's price on its own day with one cached price lookup per group, never one per record. Only what was spent and
its list price: a model whose input price is unknown that day adds nothing (and is counted apart). Prices are at
the base tier.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from statistics import median
from typing import Any

from app.formatting import usd_json
from app.pricing import cache_prices, canonical_model


@dataclass(frozen=True, slots=True)
class CacheDay:
    """The cache tokens of one model (as the records spell it) on one UTC day."""

    model: str
    provider: str | None
    day: date
    cache_read_tokens: int
    cache_write_tokens: int


@dataclass(frozen=True, slots=True)
class CacheEfficiency:
    saved_usd: Decimal  # cache reads × (input price − cache read price), of the priced models
    writes_usd: Decimal  # cache writes × cache write price, of the priced models
    read_tokens: int
    write_tokens: int
    unpriced_models: int  # models with cache tokens but no known price (on at least one of their days)
    priced_models: int = 0  # models with cache tokens priced (on at least one of their days)

    @property
    def has_cache(self) -> bool:
        return bool(self.read_tokens or self.write_tokens)

    @property
    def is_priced(self) -> bool:
        """Whether the money figures mean anything: some model with cache tokens has a known price."""
        return self.priced_models > 0


NO_CACHE = CacheEfficiency(Decimal(0), Decimal(0), 0, 0, 0)


def _prices(provider: str | None, model: str, day: date) -> tuple[Decimal, Decimal, Decimal] | None:
    for name in (provider or "").split(", "):  # a merged row may name several providers
        prices = cache_prices(name or None, model, day)
        if prices is not None:
            return prices
    return None


def cache_efficiency(days: Iterable[CacheDay]) -> CacheEfficiency:
    saved, writes, reads, written = Decimal(0), Decimal(0), 0, 0
    priced: set[str] = set()
    unpriced: set[str] = set()
    for group in days:
        if not (group.cache_read_tokens or group.cache_write_tokens):
            continue
        reads += group.cache_read_tokens
        written += group.cache_write_tokens
        name = canonical_model(group.provider, group.model)
        prices = _prices(group.provider, group.model, group.day)
        if prices is None:
            unpriced.add(name)
            continue
        priced.add(name)
        input_price, read_price, write_price = prices
        saved += group.cache_read_tokens * (input_price - read_price)
        writes += group.cache_write_tokens * write_price
    return CacheEfficiency(saved, writes, reads, written, len(unpriced), len(priced))


def read_share(input_tokens: int, cache_read_tokens: int, cache_write_tokens: int) -> Decimal | None:
    """Cache reads over all input (uncached, cache read, cache write); None without input."""
    total = input_tokens + cache_read_tokens + cache_write_tokens
    return Decimal(cache_read_tokens) / total if total else None


def share_json(share: Decimal | None) -> str | None:
    return None if share is None else str(share.quantize(Decimal("0.0001")))


def cache_json(cache: CacheEfficiency, share: Decimal | None) -> dict[str, Any]:
    """The `cache` object of the PR summary and the reports: money as strings, null when no model with cache
    tokens has a known price (an unknown figure is not $0)."""
    known = cache.is_priced or not cache.has_cache
    return {
        "cache_read_tokens": cache.read_tokens,
        "cache_write_tokens": cache.write_tokens,
        "cache_read_share": share_json(share),
        "reads_saved_usd": usd_json(cache.saved_usd) if known else None,
        "writes_cost_usd": usd_json(cache.writes_usd) if known else None,
        "unpriced_models": cache.unpriced_models,
    }


# -- sessions far below the repository's cache-read share ---------------------------------------------------------

MIN_SESSION_INPUT = 100_000  # tokens of input, cache included: a smaller session's share says little
FAR_BELOW = Decimal("0.5")  # listed when its share is under half the repository's median


@dataclass(frozen=True, slots=True)
class SessionCache:
    session_id: str
    agents: tuple[str, ...]  # costliest first
    models: tuple[str, ...]  # canonical names, costliest first
    records: int
    cost_usd: Decimal
    unpriced_records: int
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int

    @property
    def all_input(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def share(self) -> Decimal:
        return read_share(self.input_tokens, self.cache_read_tokens, self.cache_write_tokens) or Decimal(0)


@dataclass(frozen=True, slots=True)
class LowCacheSessions:
    median_share: Decimal | None  # over the repository's sessions with enough input; None when there are none
    compared: int  # how many sessions the median is over
    threshold: Decimal | None  # median × FAR_BELOW
    sessions: tuple[SessionCache, ...]  # the PR's sessions under the threshold, costliest first


def median_share(shares: Sequence[Decimal]) -> Decimal | None:
    return Decimal(median(shares)) if shares else None


def low_cache_sessions(pr_sessions: Iterable[SessionCache], repo_shares: Sequence[Decimal]) -> LowCacheSessions:
    """The PR's sessions with at least `MIN_SESSION_INPUT` input whose cache-read share is under `FAR_BELOW` of
    the median share of the repository's sessions (`repo_shares`, those with enough input). None are listed
    without a median, or when the median is 0 (nothing is below it)."""
    middle = median_share(repo_shares)
    if not middle:
        return LowCacheSessions(middle, len(repo_shares), None, ())
    threshold = middle * FAR_BELOW
    low = [s for s in pr_sessions if s.all_input >= MIN_SESSION_INPUT and s.share < threshold]
    low.sort(key=lambda s: (-s.cost_usd, s.share, s.session_id))
    return LowCacheSessions(middle, len(repo_shares), threshold, tuple(low))
