"""What the gateway parsers (LiteLLM, Langfuse, Portkey, Helicone) read the same way. Pure."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.attribution import VCS_HEADERS, Attribution
from app.parsing import to_datetime
from app.records import ParsedBatch, UsageRecord

FIELDS = ("repo", "branch", "commit", "pr")
# Tags of the form `x-vcs-ref-head-name: value`, as LiteLLM's extra_spend_tag_headers produces them.
VCS_TAGS = {header: field for field, header in VCS_HEADERS.items()}


def parse_each(
    items: Iterable[Any], record: Callable[[dict[str, Any]], UsageRecord | None], batch: ParsedBatch | None = None
) -> ParsedBatch:
    """One record per payload item: a bad item is rejected by its index, one without usage is skipped."""
    batch = batch if batch is not None else ParsedBatch()
    for index, item in enumerate(items):
        if isinstance(item, ValueError):  # an NDJSON line that is not JSON
            batch.reject(index, str(item))
            continue
        if not isinstance(item, dict):
            batch.reject(index, "item is not a JSON object")
            continue
        try:
            parsed = record(item)
        except ValueError as error:
            batch.reject(index, str(error))
            continue
        if parsed is None:
            batch.skipped += 1
        else:
            batch.add(index, parsed)
    return batch


def timestamp(value: Any, field: str) -> datetime:
    """A required time: naive strings ("2025-01-24 09:20:46.847371") are UTC; epoch seconds may be floats."""
    if value is None or value == "":
        raise ValueError(f"missing {field}")
    try:
        return to_datetime(value).astimezone(UTC)
    except ValueError as error:
        raise ValueError(f"{field}: {error}") from None


def as_dict(value: Any) -> dict[str, Any]:
    """A dict, or a JSON-encoded dict (LiteLLM's SpendLogsPayload stores metadata as a string); else {}."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return value if isinstance(value, list) else []


def text(value: Any) -> str | None:
    """A non-empty string (numbers as text); LiteLLM's stringified None ("None") counts as absent."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        value = str(value)
    if isinstance(value, str) and value.strip() and value.strip() != "None":
        return value.strip()
    return None


def first_text(*values: Any) -> str | None:
    return next((found for value in values if (found := text(value)) is not None), None)


def call_ids(*values: Any) -> tuple[str, ...]:
    """The provider's ids of one call (request id, message or response id), each once, in the order given."""
    found: list[str] = []
    for value in values:
        if (found_text := text(value)) is not None and found_text not in found:
            found.append(found_text)
    return tuple(found)


def tag_values(tags: list[Any]) -> dict[str, str]:
    """`repo:…`, `branch:…`, `commit:…`, `pr:…`, `agent:…` and `x-vcs-…: …` tags, the first of each kind."""
    found: dict[str, str] = {}
    for tag in tags:
        if not isinstance(tag, str) or ":" not in tag:
            continue
        key, _, value = tag.partition(":")
        key, value = key.strip().lower(), value.strip()
        if value and key not in found and (key in FIELDS or key == "agent" or key in VCS_TAGS):
            found[key] = value
    return found


def attribution(data: dict[str, Any]) -> Attribution:
    return Attribution.parse(**{field: data.get(field) for field in FIELDS})
