"""The canonical record format of `POST /v1/usage` (DESIGN §2): a JSON array, {"records": [...]}, or NDJSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.attribution import Attribution
from app.parsing import MAX_COUNT, as_utc_time, load_items, to_datetime, to_decimal, to_int
from app.records import SOURCES, ParsedBatch, UsageRecord

_TOKEN_FIELDS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    batch = ParsedBatch()
    for index, item in enumerate(load_items(body, ndjson=ndjson)):
        try:
            batch.add(index, parse_record(item))
        except ValueError as error:
            batch.reject(index, str(error))
    return batch


def _text(item: dict[str, Any], name: str, *, required: bool = False, limit: int = 255) -> str | None:
    value = item.get(name)
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
    try:
        return to_int(value)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None


def _timestamp(value: Any) -> datetime:
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
