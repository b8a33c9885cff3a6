"""Portkey: rows of a log export (JSONL, or a JSON array of them) and the log object of Portkey's logs API
(`{"request": {...}, "response": {...}, "metadata": {...}}`, as POST /v1/logs takes it).

An export row has `id`, `trace_id`, `created_at`, `ai_org`, `ai_model`, `req_units`, `res_units`, `cost`,
`cost_currency`, `metadata` and, when requested, `request`/`response` (their JSON bodies). Its `cost` is in
**cents** (USD) and is converted to dollars here. `metadata` is what `x-portkey-metadata` carried (our repo,
branch, commit, pr; `_user` is Portkey's reserved user key); exports of the analytics store may flatten it
to `{"key": [...], "value": [...]}`, which is accepted too.

Token semantics: `req_units`/`res_units` are bare totals. When the response body is present its `usage` says
more, but Portkey's OpenAI-shaped usage is not uniform: for OpenAI `prompt_tokens` *includes*
`prompt_tokens_details. cached_tokens`, while for Anthropic Portkey keeps Anthropic's `input_tokens` (cache
excluded) as `prompt_tokens` and adds `cache_read_input_tokens`/`cache_creation_input_tokens` beside it (and
copies the reads into `prompt_tokens_details.cached_tokens`). `total_tokens` tells the two apart (see
`_usage_tokens`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

from app.attribution import Attribution
from app.parsing import as_utc_time, dig, load_items, to_decimal, to_int
from app.records import ParsedBatch, UsageRecord
from app.sources.common import FIELDS as _FIELDS
from app.sources.common import as_dict as _as_dict
from app.sources.common import call_ids as _call_ids
from app.sources.common import first_text as _first_text
from app.sources.common import parse_each
from app.sources.common import text as _text
from app.sources.common import timestamp as _timestamp

SOURCE = "portkey"
_CENTS_PER_DOLLAR = Decimal(100)


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    return parse_each(load_items(body, ndjson=ndjson), _record)


def _record(item: dict[str, Any]) -> UsageRecord | None:
    request = _body(item.get("request"))
    response = _body(item.get("response"))
    # An export row has the log id; a bare log object only has the provider's response id.
    record_id = _first_text(item.get("id"), item.get("log_id"), response.get("id"))
    if record_id is None:
        raise ValueError("missing id (log `id`, or `id` of the response body)")
    model = _first_text(item.get("ai_model"), response.get("model"), request.get("model"))
    if model is None:
        raise ValueError("missing model (`ai_model`)")
    timestamp = _when(item, response)
    provider = _first_text(
        item.get("ai_org"),
        item.get("ai_provider"),
        item.get("provider"),
        _as_dict(item.get("request")).get("provider"),
        response.get("provider"),
    )
    provider = provider.lower() if provider else None

    usage = _as_dict(response.get("usage"))
    if usage:
        input_tokens, cache_read, cache_write, output, reasoning = _usage_tokens(usage, provider)
    else:
        input_tokens, cache_read, cache_write = _count(item, "req_units"), 0, 0
        output, reasoning = _count(item, "res_units"), 0
    cost = _cost(item)
    if input_tokens + cache_read + cache_write + output == 0 and not cost:
        return None  # a failed request, or one that used nothing

    metadata = _metadata(item.get("metadata"))
    return UsageRecord(
        id=record_id,
        source=SOURCE,
        timestamp=timestamp,
        model=model,
        provider=provider,
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=output,
        reasoning_tokens=reasoning,
        cost_usd=cost,
        attribution=Attribution.parse(**{field: metadata.get(field) for field in _FIELDS}),
        actor=_first_text(metadata.get("_user"), metadata.get("user"), item.get("user_id")),
        agent=_first_text(metadata.get("agent")),
        # Portkey's trace id groups the requests of one run; the logs API takes it as metadata.traceId.
        session_id=_first_text(
            metadata.get("session_id"),
            item.get("trace_id"),
            metadata.get("traceId"),
            metadata.get("trace_id"),
        ),
        call_ids=_call_ids(response.get("id")),
    )


def _when(item: dict[str, Any], response: dict[str, Any]) -> datetime:
    """When the call started: the log's `created_at`; for a bare log object, the response's `created` (OpenAI)
    or else the HTTP `Date` header of the response (Anthropic's body has no time)."""
    if item.get("created_at") not in (None, ""):
        return _timestamp(item["created_at"], "created_at")
    if response.get("created") not in (None, ""):
        return _timestamp(response["created"], "response.body.created")
    headers = _as_dict(_as_dict(item.get("response")).get("headers"))
    date = next((v for k, v in headers.items() if str(k).lower() == "date" and isinstance(v, str)), None)
    if date is None:
        raise ValueError("missing created_at")
    try:
        parsed = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise ValueError(f"response.headers.date: unreadable timestamp {date!r}") from None
    return as_utc_time(parsed, date)


def _usage_tokens(usage: dict[str, Any], provider: str | None) -> tuple[int, int, int, int, int]:
    """(non-cached input, cache read, cache write, output, reasoning) of an OpenAI/Anthropic usage."""
    prompt = _count(usage, "prompt_tokens") or _count(usage, "input_tokens")
    completion = _count(usage, "completion_tokens") or _count(usage, "output_tokens")
    details = _as_dict(usage.get("prompt_tokens_details")) or _as_dict(usage.get("input_tokens_details"))
    anthropic_read = _count(usage, "cache_read_input_tokens")
    anthropic_write = _count(usage, "cache_creation_input_tokens")
    cache_read = max(anthropic_read, _count(details, "cached_tokens"))
    cache_write = max(anthropic_write, _count(details, "cache_creation_tokens"), _count(details, "cache_write_tokens"))
    reasoning = _count(usage, "completion_tokens_details", "reasoning_tokens") or _count(
        usage, "output_tokens_details", "reasoning_tokens"
    )
    total = _count(usage, "total_tokens")
    if total and cache_read + cache_write:
        # Anthropic-shaped: the total adds the cache buckets to an input that excludes them.
        inclusive = total == prompt + completion
    else:
        # No total to decide by: Anthropic's own names (or provider) mean its exclusive convention.
        anthropic_names = "cache_read_input_tokens" in usage or "cache_creation_input_tokens" in usage
        inclusive = not (anthropic_names or provider == "anthropic")
    input_tokens = max(prompt - cache_read - cache_write, 0) if inclusive else prompt
    # OpenAI's completion tokens include reasoning; Anthropic counts thinking inside output_tokens too.
    return input_tokens, cache_read, cache_write, completion, reasoning


def _cost(item: dict[str, Any]) -> Decimal | None:
    try:
        cents = to_decimal(item.get("cost"))
    except ValueError as error:
        raise ValueError(f"cost: {error}") from None
    if cents is None:
        return None
    currency = _text(item.get("cost_currency"))
    if currency is not None and currency.upper() != "USD":
        return None  # not dollars: leave it to be computed rather than mix currencies
    return cents / _CENTS_PER_DOLLAR


def _metadata(value: Any) -> dict[str, Any]:
    """The request metadata as a dict: an object, a JSON string, or parallel `key`/`value` arrays."""
    data = _as_dict(value)
    keys, values = data.get("key"), data.get("value")
    if isinstance(keys, list) and isinstance(values, list):
        return {str(k): v for k, v in zip(keys, values, strict=False)}
    return data


def _body(value: Any) -> dict[str, Any]:
    """A request/response part: `{"body": {...}}` (or a JSON string of it) or the body itself."""
    data = _as_dict(value)
    return _as_dict(data["body"]) if "body" in data else data


def _count(data: Any, *path: str) -> int:
    try:
        return to_int(dig(data, *path))
    except ValueError as error:
        raise ValueError(f"{'.'.join(path)}: {error}") from None
