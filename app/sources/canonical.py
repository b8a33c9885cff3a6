"""The canonical record format of `POST /v1/usage` (DESIGN §2): a JSON array, {"records": [...]}, or NDJSON."""

from __future__ import annotations

from typing import Any

from app.attribution import Attribution
from app.parsing import load_items, to_datetime, to_decimal, to_int
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
    if value is None or value == "":
        if required:
            raise ValueError(f"{name} is required")
        return None
    if isinstance(value, int) and not isinstance(value, bool) and name == "id":
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    if len(value) > limit:
        raise ValueError(f"{name} is longer than {limit} characters")
    return value


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
    try:
        timestamp = to_datetime(item["timestamp"])
    except ValueError as error:
        raise ValueError(f"timestamp: {error}") from None
    tokens = {}
    for name in _TOKEN_FIELDS:
        try:
            tokens[name] = to_int(item.get(name))
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
    try:
        cost = to_decimal(item.get("cost_usd"))
    except ValueError as error:
        raise ValueError(f"cost_usd: {error}") from None
    assert record_id is not None and model is not None
    return UsageRecord(
        id=record_id,
        source=source,
        timestamp=timestamp,
        model=model,
        provider=(_text(item, "provider", limit=64) or "").lower() or None,
        cost_usd=cost,
        attribution=Attribution.parse(
            repo=item.get("repo"), branch=item.get("branch"), commit=item.get("commit"), pr=item.get("pr")
        ),
        actor=_text(item, "actor"),
        agent=_text(item, "agent", limit=100),
        session_id=_text(item, "session_id"),
        **tokens,
    )
