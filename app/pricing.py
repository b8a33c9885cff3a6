"""Cost of a usage record: the source's own figure when it reports one, otherwise computed with genai-prices
from its offline snapshot at the record's timestamp (historical prices). Pure.

An unknown model yields None ("unpriced"), never 0: reports count such records apart.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from genai_prices import Usage, data_snapshot

from app.records import UsageRecord

# Providers as sources name them -> genai-prices provider ids, where the two differ.
_PROVIDER_ALIASES = {
    "gemini": "google",
    "vertex_ai": "google",
    "vertex": "google",
    "azure_openai": "azure",
    "claude": "anthropic",
    "bedrock": "aws",
}


@lru_cache(maxsize=4096)
def _model_price(provider: str | None, model: str, day: date) -> Any | None:
    """The price table of (provider, model) in force on `day`, or None when genai-prices does not know it.

    A plain `calc_price` call spends most of its ~80–200 µs finding the provider and model and resolving the
    price by date; caching that lookup per day leaves only the arithmetic per record. Prices change at day
    granularity at most, so keying by day is exact enough and keeps the cache small.
    """
    snapshot = data_snapshot.get_snapshot()
    provider_id = _PROVIDER_ALIASES.get(provider or "", provider) if provider else None
    candidates = [(provider_id, model)]
    if "/" in model:  # "anthropic/claude-sonnet-4-5" or "openrouter/..." as gateways name models
        prefix, rest = model.split("/", 1)
        candidates.append((_PROVIDER_ALIASES.get(prefix, prefix), rest))
        candidates.append((None, rest))
    if provider_id is not None:
        candidates.append((None, model))
    for candidate_provider, candidate_model in candidates:
        try:
            _provider, info = snapshot.find_provider_model(candidate_model, None, candidate_provider, None)
        except LookupError:
            continue
        moment = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        return info.get_prices(moment)
    return None


_MTOK = Decimal(1_000_000)
_KCOUNT = Decimal(1000)
# Prices that plain text-token usage can touch; anything else (audio, images, ...) takes the library's path.
_LINEAR_FIELDS = ("input_mtok", "cache_read_mtok", "cache_write_mtok", "output_mtok", "requests_kcount")


def _unit_price(price: Any, total_input_tokens: int) -> Decimal | None:
    """A per-unit price, resolving tiers the way genai-prices does: crossing a tier's start (measured in total
    input tokens, cache included) applies that tier's rate to all units."""
    if price is None or isinstance(price, Decimal):
        return price
    applicable: Decimal = price.base
    for tier in reversed(price.tiers):
        if total_input_tokens > tier.start:
            applicable = tier.price
            break
    return applicable


@lru_cache(maxsize=4096)
def _price_fields(provider: str | None, model: str, day: date) -> tuple[Any, ...] | None:
    """The five prices the fast path reads, looked up once per (provider, model, day); None when one of them is
    neither a plain nor a tiered price (the library then does the arithmetic)."""
    price = _model_price(provider, model, day)
    fields = tuple(getattr(price, name, None) for name in _LINEAR_FIELDS)
    if all(f is None or isinstance(f, Decimal) or hasattr(f, "tiers") for f in fields):
        return fields
    return None


def compute_cost(record: UsageRecord) -> Decimal | None:
    """The computed cost in USD, or None when the model is unknown to genai-prices."""
    day = record.timestamp.date()
    price = _model_price(record.provider, record.model, day)
    if price is None:
        return None
    fields = _price_fields(record.provider, record.model, day)
    if fields is None:
        return library_cost(record, price)
    counts = (record.input_tokens, record.cache_read_tokens, record.cache_write_tokens, record.output_tokens)
    total_input = counts[0] + counts[1] + counts[2]
    input_mtok, read_mtok, write_mtok, output_mtok, requests_kcount = (
        _unit_price(field, total_input) for field in fields
    )
    # A model without a separate cache price bills those tokens as plain input (as genai-prices does).
    read_mtok = input_mtok if read_mtok is None else read_mtok
    write_mtok = input_mtok if write_mtok is None else write_mtok
    prices = (input_mtok, read_mtok, write_mtok, output_mtok)
    if not all(p is not None or n == 0 for p, n in zip(prices, counts, strict=True)):
        return library_cost(record, price)
    # Fast path, ~10x cheaper than ModelPrice.calc_price, which resolves its unit registry on every call;
    # a test checks it equals the library's answer for every model in the snapshot.
    total = sum((p * n for p, n in zip(prices, counts, strict=True) if p is not None and n), Decimal(0))
    cost = total / _MTOK
    if requests_kcount is not None:
        cost += requests_kcount / _KCOUNT
    return cost


def library_cost(record: UsageRecord, price: Any) -> Decimal | None:
    """genai-prices' own arithmetic, for tiered prices and whatever the fast path does not cover."""
    # genai-prices' Usage.input_tokens *includes* cache reads and writes (DESIGN §2); ours excludes them.
    usage = Usage(
        input_tokens=record.input_tokens + record.cache_read_tokens + record.cache_write_tokens,
        cache_read_tokens=record.cache_read_tokens,
        cache_write_tokens=record.cache_write_tokens,
        output_tokens=record.output_tokens,
    )
    try:
        total: Decimal = price.calc_price(usage)["total_price"]
    except (ValueError, LookupError):
        return None
    return total


def price_record(record: UsageRecord) -> tuple[Decimal | None, bool]:
    """(cost, reported): the source's figure when it has one, else the computed cost (None when unknown)."""
    if record.cost_usd is not None:
        return record.cost_usd, True
    return compute_cost(record), False
