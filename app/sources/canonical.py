"""The canonical record format of `POST /v1/usage` (DESIGN §2): a JSON array, {"records": [...]}, or NDJSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.attribution import Attribution
from app.parsing import MAX_COUNT, as_utc_time, load_items, to_datetime, to_decimal, to_int
from app.records import SOURCES, ParsedBatch, PayloadError, UsageRecord

_BEYOND_64_BITS = float(2**63)


class InexactNumber(PayloadError):
    """The fast decode rounded an integer of the body that does not fit 64 bits: decode it again exactly."""


_TOKEN_FIELDS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    return parse_items(load_items(body, ndjson=ndjson))


def parse_items(items: list[Any]) -> ParsedBatch:
    """The batch of already decoded items. Items decoded by orjson (`parsing.load_items(fast=True)`) may hold a
    float where the body had an integer beyond 64 bits: `InexactNumber` then asks for the exact decode."""
    batch = ParsedBatch()
    add, reject = batch.add, batch.reject
    for index, item in enumerate(items):
        try:
            add(index, parse_record(item))
        except InexactNumber:
            raise
        except ValueError as error:
            reject(index, str(error))
    return batch


def _exact(value: Any) -> None:
    # orjson decodes an integer beyond 64 bits as a float; json as the integer. Both are refused (or, for an id,
    # kept as text), but with the value as written: ask for the exact decode rather than show a rounded one.
    if type(value) is float and abs(value) >= _BEYOND_64_BITS:
        raise InexactNumber


def _text(item: dict[str, Any], name: str, *, required: bool = False, limit: int = 255) -> str | None:
    value = item.get(name)
    _exact(value)
    if type(value) is str and 0 < len(value) <= limit:  # the common case, checked first: this runs per field
        return value
    if value is None or value == "":
        if required:
            raise ValueError(f"{name} is required")
        return None
    if isinstance(value, int) and not isinstance(value, bool) and name == "id":
        return str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    raise ValueError(f"{name} is longer than {limit} characters")


def _count(item: dict[str, Any], name: str) -> int:
    value = item.get(name)
    if type(value) is int and 0 <= value <= MAX_COUNT:
        return value
    _exact(value)
    try:
        return to_int(value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _timestamp(value: Any) -> datetime:
    _exact(value)
    if type(value) is str:
        try:
            parsed = datetime.fromisoformat(value)  # RFC 3339 in the common case, "Z" included
        except ValueError:
            pass
        else:
            try:
                return as_utc_time(parsed, value)
            except ValueError as error:
                raise ValueError(f"timestamp: {error}") from None
    try:
        return to_datetime(value)
    except ValueError as error:
        raise ValueError(f"timestamp: {error}") from None


def parse_record(item: Any) -> UsageRecord:
    if isinstance(item, ValueError):
        raise item
    if not isinstance(item, dict):
        raise ValueError("record must be a JSON object")
    get = item.get
    # The common case first, checked in one go: every text a non-empty string within its limit, every count a
    # plain int within its limit, an RFC 3339 time, no cost reported. Anything else takes the field-by-field path
    # below, which has every rule and message.
    record_id, model, provider, actor = get("id"), get("model"), get("provider"), get("actor")
    agent, session_id, source = get("agent"), get("session_id"), get("source")
    counts = (get("input_tokens", 0), get("cache_read_tokens", 0), get("cache_write_tokens", 0),
              get("output_tokens", 0), get("reasoning_tokens", 0))  # fmt: skip
    stamp = get("timestamp")
    if (
        type(record_id) is str and 0 < len(record_id) <= 255
        and type(model) is str and 0 < len(model) <= 255
        and (provider is None or (type(provider) is str and 0 < len(provider) <= 64))
        and (actor is None or (type(actor) is str and 0 < len(actor) <= 255))
        and (agent is None or (type(agent) is str and 0 < len(agent) <= 100))
        and (session_id is None or (type(session_id) is str and 0 < len(session_id) <= 255))
        and (source is None or source == "api")
        and get("cost_usd") is None
        and get("call_id") is None
        and type(stamp) is str
        and all(type(count) is int and 0 <= count <= MAX_COUNT for count in counts)
    ):  # fmt: skip
        return UsageRecord(
            id=record_id,
            source="api",
            timestamp=_timestamp(stamp),
            model=model,
            provider=provider.lower() if provider else None,
            input_tokens=counts[0],
            cache_read_tokens=counts[1],
            cache_write_tokens=counts[2],
            output_tokens=counts[3],
            reasoning_tokens=counts[4],
            attribution=Attribution.parse(repo=get("repo"), branch=get("branch"), commit=get("commit"), pr=get("pr")),
            actor=actor,
            agent=agent,
            session_id=session_id,
        )
    return _parse_record_fully(item)


def _parse_record_fully(item: dict[str, Any]) -> UsageRecord:
    record_id = _text(item, "id", required=True)
    model = _text(item, "model", required=True)
    source = _text(item, "source", limit=32) or "api"
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}")
    if "timestamp" not in item:
        raise ValueError("timestamp is required")
    timestamp = _timestamp(item["timestamp"])
    try:
        cost = to_decimal(item.get("cost_usd"))
    except ValueError as error:
        raise ValueError(f"cost_usd: {error}") from None
    provider = _text(item, "provider", limit=64)
    assert record_id is not None and model is not None
    return UsageRecord(
        id=record_id,
        source=source,
        timestamp=timestamp,
        model=model,
        provider=provider.lower() if provider else None,
        input_tokens=_count(item, "input_tokens"),
        cache_read_tokens=_count(item, "cache_read_tokens"),
        cache_write_tokens=_count(item, "cache_write_tokens"),
        output_tokens=_count(item, "output_tokens"),
        reasoning_tokens=_count(item, "reasoning_tokens"),
        cost_usd=cost,
        attribution=Attribution.parse(
            repo=item.get("repo"), branch=item.get("branch"), commit=item.get("commit"), pr=item.get("pr")
        ),
        actor=_text(item, "actor"),
        agent=_text(item, "agent", limit=100),
        session_id=_text(item, "session_id"),
        call_ids=(call_id,) if (call_id := _text(item, "call_id")) else (),
    )
