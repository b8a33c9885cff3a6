"""Helicone: rows of the request query API (POST /v1/request/query or /v1/request/query-clickhouse answer
`{"data": [...], "error": null}`; a JSON array or NDJSON of rows is accepted too, and GET /v1/request/{id}'s
`{"data": {...}}`). Webhooks are not enough: they carry no custom properties, so no attribution.

A row (`HeliconeRequest`) has `request_id`, `request_created_at`, `model` (or `request_model`,
`response_model`, `model_override`), `provider` ("OPENAI", "ANTHROPIC", …), `prompt_tokens`,
`completion_tokens`, `reasoning_tokens`, `prompt_cache_read_tokens`, `prompt_cache_write_tokens`,
`prompt_audio_tokens`, `completion_audio_tokens`, `cost` (USD: the API divides Helicone's stored integer by
its precision multiplier), `request_user_id` and `request_properties`. A `Helicone-Property-Repo:
acme/widgets` header becomes the property `Repo` (header case is not guaranteed, so keys are matched
case-insensitively, with or without a `helicone-property-` prefix).

Token semantics: Helicone stores *non-cached* prompt tokens. Its usage processors subtract
`prompt_tokens_details.cached_tokens` (and audio) from OpenAI's `prompt_tokens`, keep Anthropic's
`input_tokens` as they are (cache excluded), and its cost formula prices `prompt_tokens` at the full input
rate and the cache columns at their own rates, which only adds up if they are disjoint. Likewise completion
tokens exclude reasoning and audio tokens, which have columns of their own (the API's `total_tokens` adds
them up). So input is `prompt_tokens` (+ audio input) and output is `completion_tokens` + `reasoning_tokens`
(+ audio output).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.attribution import Attribution
from app.parsing import load_items, to_decimal, to_int
from app.records import ParsedBatch, PayloadError, UsageRecord
from app.sources.common import FIELDS as _FIELDS
from app.sources.common import as_dict as _as_dict
from app.sources.common import call_ids as _call_ids
from app.sources.common import first_text as _first_text
from app.sources.common import parse_each
from app.sources.common import text as _text
from app.sources.common import timestamp as _timestamp

SOURCE = "helicone"
_PROPERTY_PREFIX = "helicone-property-"
# Helicone's provider names that do not name the model vendor.
_NO_PROVIDER = {"custom", "local", "helicone"}


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    items = load_items(body, ndjson=ndjson)
    if len(items) == 1 and isinstance(items[0], dict) and "request_id" not in items[0]:
        envelope = items[0]
        if envelope.get("error") and envelope.get("data") is None:
            raise PayloadError(f"Helicone answered an error: {envelope['error']}")
        if isinstance(envelope.get("data"), dict):  # GET /v1/request/{id}
            items = [envelope["data"]]
    return parse_each(items, _record)


def _record(item: dict[str, Any]) -> UsageRecord | None:
    record_id = _text(item.get("request_id"))
    if record_id is None:
        raise ValueError("missing request_id")
    # Helicone's own precedence: an override, then what the provider answered, then what was asked for.
    model = _first_text(
        item.get("model_override"), item.get("model"), item.get("response_model"), item.get("request_model")
    )
    if model is None:
        raise ValueError("missing model (`model`, `response_model` or `request_model`)")
    timestamp = _timestamp(item.get("request_created_at"), "request_created_at")
    provider = _text(item.get("provider"))
    provider = provider.lower() if provider and provider.lower() not in _NO_PROVIDER else None

    input_tokens = _count(item, "prompt_tokens") + _count(item, "prompt_audio_tokens")
    cache_read = _count(item, "prompt_cache_read_tokens")
    cache_write = _count(item, "prompt_cache_write_tokens")
    reasoning = _count(item, "reasoning_tokens")
    output = _count(item, "completion_tokens") + reasoning + _count(item, "completion_audio_tokens")
    cost = _cost(item)
    if input_tokens + cache_read + cache_write + output == 0 and not cost:
        return None  # a failed or cached request with no usage

    properties = _properties(item)
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
        attribution=Attribution.parse(**{field: properties.get(field) for field in _FIELDS}),
        actor=_first_text(item.get("request_user_id"), properties.get("user")),
        agent=_first_text(properties.get("agent")),
        # Helicone sessions travel as the property Helicone-Session-Id.
        session_id=_first_text(properties.get("helicone-session-id"), properties.get("session-id")),
        # `request_id` and `response_id` are Helicone's own; the provider's id is inside the response body.
        call_ids=_call_ids(_as_dict(item.get("response_body")).get("id")),
    )


def _properties(item: dict[str, Any]) -> dict[str, Any]:
    """Custom properties with lower-case keys and no `helicone-property-` prefix."""
    raw = _as_dict(item.get("request_properties")) or _as_dict(item.get("properties"))
    properties: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).strip().lower()
        name = name.removeprefix(_PROPERTY_PREFIX)
        properties.setdefault(name, value)
    return properties


def _cost(item: dict[str, Any]) -> Decimal | None:
    for field in ("cost_usd", "costUSD", "cost"):
        try:
            amount = to_decimal(item.get(field))
        except ValueError as error:
            raise ValueError(f"{field}: {error}") from None
        if amount is not None:
            return amount
    return None


def _count(data: dict[str, Any], field: str) -> int:
    try:
        return to_int(data.get(field))
    except ValueError as error:
        raise ValueError(f"{field}: {error}") from None
