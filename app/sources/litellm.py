"""LiteLLM: the `generic_api` callback body (StandardLoggingPayload objects) and `/spend/logs` rows.

Both shapes arrive through the same endpoint, so one reader handles either: a StandardLoggingPayload carries
`id` and `response_cost`, a SpendLogs row carries `request_id` and `spend`, and the rest mostly shares
names. In the pre-DB SpendLogsPayload, `metadata` and `request_tags` are JSON-encoded *strings*; the
`/spend/logs` API returns them decoded. Both are accepted wherever a dict or list is expected.

Token semantics: LiteLLM normalises every provider to the OpenAI shape, where `prompt_tokens` *includes*
cached input. For Anthropic it adds `cache_read_input_tokens` and `cache_creation_input_tokens` into
`prompt_tokens`, so non-cached input is `prompt_tokens - cache_read - cache_write`. Some LiteLLM releases
added only the cache reads; when `prompt_tokens` is too small to contain the writes too, only the reads are
subtracted (see `_tokens`).
"""

from __future__ import annotations

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
from app.sources.common import parse_each
from app.sources.common import tag_values as _tag_values
from app.sources.common import text as _text
from app.sources.common import timestamp as _timestamp

SOURCE = "litellm"
# `extra_spend_tag_headers` turns a request header into the tag "Header-Name: value"; map ours back to fields.


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    return parse_each(load_items(body, ndjson=ndjson), _record)


def _record(item: dict[str, Any]) -> UsageRecord | None:
    record_id = _text(item.get("id")) or _text(item.get("request_id"))
    if record_id is None:
        raise ValueError("missing id (StandardLoggingPayload `id` or spend-log `request_id`)")
    metadata = _as_dict(item.get("metadata"))
    provider = _text(item.get("custom_llm_provider")) or _text(
        dig(item, "model_map_information", "model_map_value", "litellm_provider")
    )
    provider = provider.lower() if provider else None
    model = _text(item.get("model")) or _text(dig(item, "hidden_params", "litellm_model_name"))
    if model is None:
        raise ValueError("missing model")
    if provider and model.lower().startswith(provider + "/"):
        model = model[len(provider) + 1 :]
    timestamp = _timestamp(item.get("startTime"), "startTime")

    input_tokens, cache_read, cache_write, output, reasoning = _tokens(item, metadata)
    cost_field = "response_cost" if item.get("response_cost") is not None else "spend"
    try:
        cost = to_decimal(item.get(cost_field))
    except ValueError as error:
        raise ValueError(f"{cost_field}: {error}") from None
    if input_tokens + cache_read + cache_write + output == 0 and not cost:
        return None  # a failed call, or a call that used nothing: no usage to record

    spend_meta = _as_dict(metadata.get("spend_logs_metadata"))
    requester_meta = _as_dict(dig(metadata, "requester_metadata", "spend_logs_metadata"))
    tags = _as_list(item.get("request_tags"))
    tag_values = _tag_values(tags)
    headers = {k.lower(): v for k, v in _as_dict(metadata.get("requester_custom_headers")).items()}
    attribution = (
        _attribution(spend_meta)
        .filled_from(_attribution(requester_meta))
        .filled_from(_attribution({f: tag_values.get(f) for f in _FIELDS}))
        .filled_from(_attribution({f: tag_values.get(h) for h, f in _VCS_TAGS.items()}))
        .filled_from(_attribution({f: headers.get(h) for h, f in _VCS_TAGS.items()}))
    )
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
        attribution=attribution,
        actor=_first_text(
            metadata.get("user_api_key_user_email"),
            metadata.get("user_api_key_user_id"),
            item.get("user_api_key_user_id"),
            item.get("end_user"),
            item.get("user"),
        ),
        agent=_first_text(spend_meta.get("agent"), requester_meta.get("agent"), tag_values.get("agent")),
        session_id=_first_text(item.get("session_id"), metadata.get("session_id"), item.get("trace_id")),
        # LiteLLM's `id` (`request_id` in spend logs) is the provider's response id (chatcmpl-…, msg_…) once a
        # response exists; the provider's request id header is kept among the hidden params when it was sent.
        call_ids=_call_ids(
            dig(item, "response", "id"),
            record_id,
            dig(item, "hidden_params", "additional_headers", "llm_provider-request-id"),
        ),
    )


def _tokens(item: dict[str, Any], metadata: dict[str, Any]) -> tuple[int, int, int, int, int]:
    """(non-cached input, cache read, cache write, output, reasoning)."""
    # The usage object holds the cache details; the payload's own top-level counts win where present.
    usage = _as_dict(metadata.get("usage_object")) or _as_dict(_as_dict(item.get("response")).get("usage"))
    prompt = _count(item, "prompt_tokens") if item.get("prompt_tokens") is not None else _count(usage, "prompt_tokens")
    completion = (
        _count(item, "completion_tokens")
        if item.get("completion_tokens") is not None
        else _count(usage, "completion_tokens")
    )
    # OpenAI names cache reads prompt_tokens_details.cached_tokens; LiteLLM also copies Anthropic's
    # names. They describe the same tokens, so take the larger rather than adding them.
    cache_read = max(_count(usage, "prompt_tokens_details", "cached_tokens"), _count(usage, "cache_read_input_tokens"))
    cache_write = max(
        _count(usage, "cache_creation_input_tokens"),
        _count(usage, "prompt_tokens_details", "cache_creation_tokens"),
    )
    reasoning = _count(usage, "completion_tokens_details", "reasoning_tokens")
    if prompt >= cache_read + cache_write:
        input_tokens = prompt - cache_read - cache_write
    else:
        # prompt_tokens cannot hold the writes (a LiteLLM release that only added cache reads to it).
        input_tokens = max(prompt - cache_read, 0)
    # OpenAI's completion_tokens already include reasoning tokens, so output is completion_tokens as reported.
    return input_tokens, cache_read, cache_write, completion, reasoning


def _count(data: Any, *path: str) -> int:
    try:
        return to_int(dig(data, *path))
    except ValueError as error:
        raise ValueError(f"{'.'.join(path)}: {error}") from None
