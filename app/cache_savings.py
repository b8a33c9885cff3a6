"""Cache efficiency (issue 15): what cache reads saved against sending the same tokens as uncached input at the
same model's price, and what cache writes cost. Pure; prices from `app.pricing` (genai-prices' snapshot).

Only what was spent and its list price: a model whose input price is unknown adds nothing (and is counted apart).
Prices are those of the day given (the report's), at the base tier.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from app.pricing import cache_prices
from app.spend_rows import ModelSpend


@dataclass(frozen=True, slots=True)
class CacheEfficiency:
    saved_usd: Decimal  # cache reads × (input price − cache read price)
    writes_usd: Decimal  # cache writes × cache write price
    read_tokens: int
    write_tokens: int
    unpriced_models: int  # models with cache tokens but no known price

    @property
    def has_cache(self) -> bool:
        return bool(self.read_tokens or self.write_tokens)


def cache_efficiency(rows: Iterable[ModelSpend], *, day: date) -> CacheEfficiency:
    saved, writes, reads, written, unpriced = Decimal(0), Decimal(0), 0, 0, 0
    for row in rows:
        if not (row.cache_read_tokens or row.cache_write_tokens):
            continue
        reads += row.cache_read_tokens
        written += row.cache_write_tokens
        prices = None
        for provider in (row.provider or "").split(", ") or [""]:
            prices = cache_prices(provider or None, row.model, day)
            if prices is not None:
                break
        if prices is None:
            unpriced += 1
            continue
        input_price, read_price, write_price = prices
        saved += row.cache_read_tokens * (input_price - read_price)
        writes += row.cache_write_tokens * write_price
    return CacheEfficiency(saved, writes, reads, written, unpriced)
