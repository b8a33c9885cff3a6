"""Cost of a usage record: the source's own figure when it reports one, otherwise computed with genai-prices
from its offline snapshot at the record's timestamp (historical prices). Pure.

An unknown model yields None ("unpriced"), never 0: reports count such records apart. The same lookup names a
model: `canonical_model` gives genai-prices' id for every spelling of one model (dated, gateway-prefixed, Bedrock
and Vertex ids), so reports show one row per model while each record keeps the id its source reported.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from genai_prices import Usage, data_snapshot

from app.money import to_nanousd
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


# Bedrock's cross-region inference profiles prefix the model id with a geography ("us.anthropic.claude-…").
_BEDROCK_REGION = re.compile(r"^(?:us|us-gov|eu|apac|ap|au|jp|ca|global)\.(?=[a-z])")
# Bedrock's Anthropic ids: "anthropic.claude-sonnet-4-5-20250929-v1:0" is Anthropic's "claude-sonnet-4-5-20250929".
_BEDROCK_ANTHROPIC = re.compile(r"^anthropic\.(?P<model>claude-.+?)(?:-v\d+(?::\d+)?)?$")
# Vertex AI dates a model with "@": "claude-sonnet-4-5@20250929".
_VERTEX_DATE = re.compile(r"^(?P<model>.+)@(?P<date>\d{8})$")


def plain_model_spelling(model: str) -> str:
    """The model's own id without the wrapping gateways and clouds add: the last segment of a routed name
    ("openrouter/anthropic/claude-sonnet-4-5"), a Bedrock id without its region, vendor and version, a Vertex id
    with its "@date" as "-date". genai-prices matches this where it does not match the wrapped spelling."""
    text = model.strip().rsplit("/", 1)[-1]
    text = _BEDROCK_REGION.sub("", text, count=1)
    if bedrock := _BEDROCK_ANTHROPIC.match(text):
        text = bedrock["model"]
    if vertex := _VERTEX_DATE.match(text):
        text = f"{vertex['model']}-{vertex['date']}"
    return text or model


def _provider_id(provider: str | None) -> str | None:
    return _PROVIDER_ALIASES.get(provider, provider) if provider else None


def _find_model(provider_id: str | None, model: str) -> Any | None:
    """genai-prices' ModelInfo of (provider, model), or None when its snapshot does not know the pair."""
    try:
        _provider, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider_id, None)
    except LookupError:
        return None
    return info


@lru_cache(maxsize=4096)
def canonical_model(provider: str | None, model: str) -> str:
    """The name reports group a model under: genai-prices' id of the model (`claude-sonnet-4-5` for
    `claude-sonnet-4-5-20250929`, `anthropic/claude-sonnet-4-5`, `us.anthropic.claude-sonnet-4-5-20250929-v1:0`
    or `claude-sonnet-4-5@20250929`); a model it does not know stays as given.

    The plain spelling is tried first, and without the provider first: a model reached through a cloud or a gateway
    is then named by its maker's id (Bedrock's own id for a Claude model would be a different row)."""
    plain = plain_model_spelling(model)
    for spelling in dict.fromkeys((plain, model)):
        for provider_id in dict.fromkeys((None, _provider_id(provider))):
            info = _find_model(provider_id, spelling)
            if info is not None:
                return str(info.id)
    return model


@lru_cache(maxsize=4096)
def _model_price(provider: str | None, model: str, day: date) -> Any | None:
    """The price table of (provider, model) in force on `day`, or None when genai-prices does not know it.

    A plain `calc_price` call spends most of its ~80–200 µs finding the provider and model and resolving the
    price by date; caching that lookup per day leaves only the arithmetic per record. Prices change at day
    granularity at most, so keying by day is exact enough and keeps the cache small.
    """
    provider_id = _provider_id(provider)
    candidates = [(provider_id, model)]
    if "/" in model:  # "anthropic/claude-sonnet-4-5" or "openrouter/..." as gateways name models
        prefix, rest = model.split("/", 1)
        candidates.append((_PROVIDER_ALIASES.get(prefix, prefix), rest))
        candidates.append((None, rest))
    if provider_id is not None:
        candidates.append((None, model))
    # Last, the spelling `canonical_model` falls back to, so every model a report can name is priced too (a
    # Bedrock id sent without its provider, a doubly routed OpenRouter name).
    plain = plain_model_spelling(model)
    candidates += [(provider_id, plain), (None, plain)]
    for candidate_provider, candidate_model in dict.fromkeys(candidates):
        info = _find_model(candidate_provider, candidate_model)
        if info is not None:
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


_NANO_PER_USD = 10**9
_SCALE = 10**6  # the integer sum below is in nano-dollars times a million (prices are per million tokens)


def _nano(price: Any) -> Any:
    """A per-unit price in integer nano-dollars, a tiered price as (base, ((start, price), …)) of them, None for
    none; ValueError when a price has more than nine decimals (the Decimal path then keeps it exact)."""
    if price is None:
        return None
    if isinstance(price, Decimal):
        scaled = price * _NANO_PER_USD
        if scaled != scaled.to_integral_value():
            raise ValueError(price)
        return int(scaled)
    return (_nano(price.base), tuple((tier.start, _nano(tier.price)) for tier in reversed(price.tiers)))


@lru_cache(maxsize=4096)
def _nano_prices(provider: str | None, model: str, day: date) -> tuple[Any, ...] | None:
    """`_price_fields` in integer nano-dollars (per million tokens, per thousand requests), looked up once per
    (provider, model, day); None when the model is unknown or the Decimal path must do the arithmetic."""
    fields = _price_fields(provider, model, day) if _model_price(provider, model, day) is not None else None
    if fields is None:
        return None
    try:
        return tuple(_nano(field) for field in fields)
    except ValueError:
        return None


def _tier(price: Any, total_input_tokens: int) -> int | None:
    """`_unit_price` for a price from `_nano_prices`."""
    if price is None or type(price) is int:
        return price
    base, tiers = price
    for start, tier_price in tiers:
        if total_input_tokens > start:
            return int(tier_price)
    return int(base)


def cost_nanousd(record: UsageRecord) -> int | None:
    """The computed cost in integer nano-dollars (None when the model is unknown): exactly
    `to_nanousd(compute_cost(record))`, in integers. This is the ingest path's: no Decimal per record."""
    table = _nano_prices(record.provider, record.model, record.timestamp.date())
    if table is None:
        return to_nanousd(compute_cost(record))
    input_tokens, read_tokens = record.input_tokens, record.cache_read_tokens
    write_tokens, output_tokens = record.cache_write_tokens, record.output_tokens
    input_price, read_price, write_price, output_price, requests_price = table
    if type(input_price) is not int or type(read_price) is not int or type(write_price) is not int:
        total_input = input_tokens + read_tokens + write_tokens
        input_price, read_price, write_price = (_tier(p, total_input) for p in table[:3])
    if type(output_price) is not int and output_price is not None:
        output_price = _tier(output_price, input_tokens + read_tokens + write_tokens)
    read_price = input_price if read_price is None else read_price
    write_price = input_price if write_price is None else write_price
    total = 0
    for price, count in (
        (input_price, input_tokens), (read_price, read_tokens), (write_price, write_tokens),
        (output_price, output_tokens),
    ):  # fmt: skip
        if count:
            if price is None:
                return to_nanousd(compute_cost(record))  # a count the table has no price for: the library decides
            total += price * count
    if requests_price is not None:
        total += _tier(requests_price, input_tokens + read_tokens + write_tokens) * 1000  # type: ignore[operator]
    units, remainder = divmod(total, _SCALE)
    # Round half to even, as to_nanousd does.
    if remainder * 2 > _SCALE or (remainder * 2 == _SCALE and units % 2):
        units += 1
    return units


def price_nanousd(record: UsageRecord) -> tuple[int | None, bool]:
    """`price_record` in integer nano-dollars, as stored: (cost, reported by the source)."""
    if record.cost_usd is not None:
        return to_nanousd(record.cost_usd), True
    return cost_nanousd(record), False


def price_record(record: UsageRecord) -> tuple[Decimal | None, bool]:
    """(cost, reported): the source's figure when it has one, else the computed cost (None when unknown)."""
    if record.cost_usd is not None:
        return record.cost_usd, True
    return compute_cost(record), False


def cache_prices(provider: str | None, model: str, day: date) -> tuple[Decimal, Decimal, Decimal] | None:
    """(uncached input, cache read, cache write) USD per token of a model on a day, at its base tier; None when
    genai-prices does not know the model's input price. A model without cache prices bills them as input."""
    fields = _price_fields(provider, model, day)
    if fields is None:
        return None
    input_mtok, read_mtok, write_mtok = (_unit_price(field, 0) for field in fields[:3])
    if input_mtok is None:
        return None
    read_mtok = input_mtok if read_mtok is None else read_mtok
    write_mtok = input_mtok if write_mtok is None else write_mtok
    return input_mtok / _MTOK, read_mtok / _MTOK, write_mtok / _MTOK
