"""Langfuse: observations from the public API (a page `{"data": [...], "meta": {...}}` of the observations API,
v1 or the newer cursor-paginated one, or a plain array), and the ingestion batch LiteLLM's Langfuse logger posts
(`{"batch": [{"type": "generation-create", "body": {...}}]}`).

Only generations (and embeddings, which Langfuse also prices) carry usage; spans, events, traces and scores
are counted as skipped.

Token semantics: Langfuse's usage types are *disjoint* buckets. When a client ingests an OpenAI-shaped
usage, the Langfuse server subtracts every `prompt_tokens_details` entry from `input` (storing e.g.
`input_cached_tokens`) and every `completion_tokens_details` entry from `output` (e.g.
`output_reasoning_tokens`); its price table then prices each bucket on its own. So `usageDetails.input` is
the *non-cached* input, and reasoning stored apart is added back to output (our output includes reasoning).
Not every client follows the convention (LiteLLM subtracts only cache reads from `input`, older releases
nothing), so when an ingested `total` is smaller than the sum of the buckets the excess is treated as cache
tokens counted twice inside `input` (see `_tokens`).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from app.parsing import dig, load_items, to_decimal, to_int
from app.records import ParsedBatch, UsageRecord
from app.sources.common import FIELDS as _FIELDS
from app.sources.common import VCS_TAGS as _VCS_TAGS
from app.sources.common import as_dict as _as_dict
from app.sources.common import as_list as _as_list
from app.sources.common import attribution as _attribution
from app.sources.common import call_ids as _call_ids
from app.sources.common import first_text as _first_text
from app.sources.common import tag_values as _tag_values
from app.sources.common import text as _text
from app.sources.common import timestamp as _timestamp

SOURCE = "langfuse"
_USAGE_TYPES = {"GENERATION", "EMBEDDING"}
# Ingestion events whose body is an observation (an update completes the create of the same id).
_OBSERVATION_EVENTS = {"generation-create", "generation-update", "observation-create", "observation-update"}
# Names clients use for the same buckets (Langfuse's own, OpenAI-derived, Anthropic-derived).
_CACHE_READ_KEYS = ("cache_read_input_tokens", "input_cached_tokens", "input_cache_read", "cached_tokens")
_CACHE_WRITE_KEYS = ("cache_creation_input_tokens", "input_cache_creation", "input_cache_write")
_REASONING_KEYS = ("output_reasoning_tokens", "output_reasoning", "reasoning", "reasoning_tokens")


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    batch = ParsedBatch()
    observations: list[tuple[int, dict[str, Any]]] = []
    by_id: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(load_items(body, ndjson=ndjson)):
        if isinstance(item, ValueError):  # an NDJSON line that is not JSON
            batch.reject(index, str(item))
        elif not isinstance(item, dict):
            batch.reject(index, "item is not a JSON object")
        elif isinstance(item.get("body"), dict) and isinstance(item.get("type"), str):
            # An ingestion event: only generation bodies are observations with usage.
            observation = item["body"]
            if item["type"] not in _OBSERVATION_EVENTS or not _carries_usage(observation):
                batch.skipped += 1
            elif (key := _text(observation.get("id"))) is None:
                batch.reject(index, "missing id in event body")
            elif key in by_id:
                # A generation-update completes the generation-create of the same id seen earlier.
                by_id[key].update({k: v for k, v in observation.items() if v is not None})
                batch.skipped += 1
            else:
                by_id[key] = dict(observation)
                observations.append((index, by_id[key]))
        elif not _carries_usage(item):
            batch.skipped += 1
        else:
            observations.append((index, item))
    for index, observation in observations:
        try:
            record = _record(observation)
        except ValueError as error:
            batch.reject(index, str(error))
            continue
        if record is None:
            batch.skipped += 1
        else:
            batch.add(index, record)
    return batch


def _carries_usage(observation: dict[str, Any]) -> bool:
    # An observation without a type (a hand-built array) is taken for a generation.
    return str(observation.get("type") or "GENERATION").upper() in _USAGE_TYPES


def _record(item: dict[str, Any]) -> UsageRecord | None:
    record_id = _text(item.get("id"))
    if record_id is None:
        raise ValueError("missing id")
    # The v1 API names it `model`; the newer observations API only `providedModelName`.
    model = _first_text(item.get("model"), item.get("providedModelName"))
    if model is None:
        raise ValueError("missing model")
    timestamp = _timestamp(item.get("startTime"), "startTime")
    input_tokens, cache_read, cache_write, output, reasoning = _tokens(item)
    cost = _cost(item)
    if input_tokens + cache_read + cache_write + output == 0 and not cost:
        return None  # a generation without usage (an error, or a call not yet completed)

    metadata = _as_dict(item.get("metadata"))
    # LiteLLM forwards its spend-logs metadata (from x-litellm-spend-logs-metadata) inside the metadata.
    spend_meta = _as_dict(metadata.get("spend_logs_metadata")) or _as_dict(
        dig(metadata, "requester_metadata", "spend_logs_metadata")
    )
    tags = [*_as_list(metadata.get("tags")), *_as_list(item.get("tags"))]
    tag_values = _tag_values(tags)
    attribution = (
        _attribution(metadata)
        .filled_from(_attribution(spend_meta))
        .filled_from(_attribution({f: tag_values.get(f) for f in _FIELDS}))
        .filled_from(_attribution({f: tag_values.get(h) for h, f in _VCS_TAGS.items()}))
    )
    provider = _first_text(metadata.get("provider"), metadata.get("custom_llm_provider"))
    return UsageRecord(
        id=record_id,
        source=SOURCE,
        timestamp=timestamp,
        model=model,
        provider=provider.lower() if provider else None,
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=output,
        reasoning_tokens=reasoning,
        cost_usd=cost,
        attribution=attribution,
        actor=_first_text(
            metadata.get("user_api_key_user_email"),
            metadata.get("user_api_key_user_id"),
            metadata.get("user_id"),
            item.get("userId"),
        ),
        agent=_first_text(metadata.get("agent"), spend_meta.get("agent"), tag_values.get("agent")),
        session_id=_first_text(metadata.get("session_id"), metadata.get("sessionId"), item.get("sessionId")),
        call_ids=_call_ids(_provider_response_id(record_id)),
    )


# LiteLLM's Langfuse logger names a generation "time-HH-MM-SS-ffffff_<provider response id>".
_LITELLM_GENERATION_ID = re.compile(r"^time-\d{2}-\d{2}-\d{2}-\d+_(.+)$")


def _provider_response_id(observation_id: str) -> str | None:
    found = _LITELLM_GENERATION_ID.match(observation_id)
    return found.group(1) if found else None


def _tokens(item: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(non-cached input, cache read, cache write, output, reasoning)."""
    details = _as_dict(item.get("usageDetails"))
    if details:
        input_tokens = _count(details, "input")
        output = _count(details, "output")
        cache_read = max(_count(details, key) for key in _CACHE_READ_KEYS)
        cache_write = max(_count(details, key) for key in _CACHE_WRITE_KEYS)
        reasoning = max(_count(details, key) for key in _REASONING_KEYS)
        output += reasoning  # a separate bucket in Langfuse, part of output for us
        total = _count(details, "total")
        overlap = input_tokens + cache_read + cache_write + output - total if total else 0
        if overlap > 0:
            # Something is counted twice. First suspect: `input` still holds the cache tokens reported
            # apart; then: `output` already held the reasoning reported apart.
            in_input = min(overlap, cache_read + cache_write, input_tokens)
            input_tokens -= in_input
            output -= min(overlap - in_input, reasoning)
        return input_tokens, cache_read, cache_write, output, reasoning
    # Legacy usage: {input, output} or OpenAI-style names, on the observation or in `usage`. No cache detail.
    usage = _as_dict(item.get("usage"))
    for source in (usage, item):
        for input_key, output_key in (("input", "output"), ("promptTokens", "completionTokens")):
            if source.get(input_key) is not None or source.get(output_key) is not None:
                return _count(source, input_key), 0, 0, _count(source, output_key), 0
    return 0, 0, 0, 0, 0


def _cost(item: dict[str, Any]) -> Decimal | None:
    cost_details = _as_dict(item.get("costDetails"))
    candidates: list[tuple[str, Any]] = [
        ("costDetails.total", cost_details.get("total")),
        ("calculatedTotalCost", item.get("calculatedTotalCost")),
        ("totalCost", item.get("totalCost")),
        ("usage.totalCost", dig(item, "usage", "totalCost")),
    ]
    for name, value in candidates:
        try:
            amount = to_decimal(value)
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        if amount is not None:
            return amount
    if cost_details:  # per-bucket costs without a total
        try:
            amounts = [to_decimal(value) for value in cost_details.values()]
        except ValueError as error:
            raise ValueError(f"costDetails: {error}") from None
        return sum((amount for amount in amounts if amount is not None), Decimal(0))
    return None


def _count(data: Any, *path: str) -> int:
    try:
        return to_int(dig(data, *path))
    except ValueError as error:
        raise ValueError(f"usage {'.'.join(path)}: {error}") from None
