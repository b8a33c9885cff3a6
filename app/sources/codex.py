"""Codex CLI rollouts (~/.codex/sessions/YYYY/MM/DD/rollout-*.jsonl) → usage records. Pure.

A rollout is JSON lines of `RolloutLine {timestamp, type, payload}` (codex-rs protocol): `session_meta` (id,
cwd, git {repository_url, branch, commit_hash}), `turn_context` (model), `response_item`, `event_msg`. Usage
comes from `event_msg` payloads of type `token_count` whose `info` (TokenUsageInfo) holds the session's
cumulative `total_token_usage` and the `last_token_usage` of the latest response.

Counting: one record per growth of the cumulative total. Codex re-emits token_count events without a new
model response (rate-limit updates, turn ends), repeating `last_token_usage`, so summing `last_token_usage`
over-counts; the differences of `total_token_usage` do not. An event whose total did not grow is a repeat and
is skipped. The dedupe id is "<session id>:<cumulative total_tokens after the event>": the same file imported
again, or again after it grew, yields the same ids.

Token semantics (OpenAI): `input_tokens` INCLUDES `cached_input_tokens`, so input = input - cached and
cache_read = cached; `reasoning_output_tokens` is already part of `output_tokens` (informational here).
OpenAI bills no cache writes. Cost is computed (DESIGN §3).

The session id is Codex's conversation id, which its telemetry names `conversation.id`: `app.session_join`
gives the rollout's git block to that telemetry, and `agent_events.usage_call_id` counts each response once.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.attribution import Attribution
from app.parsing import dig, to_datetime, to_int
from app.parsing import transcript_lines as _lines
from app.records import ParsedBatch, UsageRecord
from app.sources.agent_events import usage_call_id

_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")
_Usage = dict[str, int]
_HASHED_SESSION = "rollout-"  # the id of a rollout without session_meta
_CALL_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    """`ndjson` is accepted for a uniform signature: a rollout is always JSON lines (a JSON array of line
    objects is read too)."""
    lines = list(_lines(body))
    session_id, attribution = _session(lines)
    batch = ParsedBatch()
    previous: _Usage = dict.fromkeys(_FIELDS, 0)
    model: str | None = None
    for index, line in lines:
        if isinstance(line, ValueError):
            batch.reject(index, str(line))
            continue
        if not isinstance(line, dict):
            batch.reject(index, "line is not a JSON object")
            continue
        payload = line.get("payload")
        if not isinstance(payload, dict):
            payload = {}
        if line.get("type") == "turn_context" and isinstance(payload.get("model"), str):
            model = payload["model"].strip() or model
        if line.get("type") != "event_msg" or payload.get("type") != "token_count":
            batch.skipped += 1  # session_meta, turn_context, response_item, other events: no usage
            continue
        info = payload.get("info")
        if info is None:
            batch.skipped += 1  # a token_count that only carries rate limits
            continue
        try:
            total = _usage(dig(info, "total_token_usage"), "info.total_token_usage")
        except ValueError as error:
            batch.reject(index, str(error))
            continue
        if total["total_tokens"] == previous["total_tokens"]:
            batch.skipped += 1  # a repeat: the cumulative total did not grow
            continue
        # The baseline moves even when this event is rejected below, so the next event's delta stays its own.
        previous, baseline = total, previous
        try:
            delta = _delta(total, baseline, info)
            if not any(delta[name] for name in _FIELDS[:4]):
                batch.skipped += 1
                continue
            position = f"{session_id}:{total['total_tokens']}"
            batch.add(index, _record(line, info, delta, model, position, session_id, attribution))
        except ValueError as error:
            batch.reject(index, str(error))
    return batch


def _session(lines: list[tuple[int, Any]]) -> tuple[str, Attribution]:
    """Session id and git attribution from the first `session_meta` line.

    Without one (the ccusage fixture, a truncated upload) the id is a hash of the first readable line: a
    rollout only ever grows at its end, so the first line, and with it every dedupe id, stays the same when
    the file is imported again.
    """
    for _, line in lines:
        meta = line.get("payload") if isinstance(line, dict) else None
        if isinstance(meta, dict) and line.get("type") == "session_meta":
            attribution = Attribution.parse(
                repo=dig(meta, "git", "repository_url"),
                branch=dig(meta, "git", "branch"),
                commit=dig(meta, "git", "commit_hash"),
            )
            if isinstance(meta.get("id"), str) and meta["id"].strip():
                return meta["id"].strip(), attribution
            break
    else:
        attribution = Attribution()
    first = next((line for _, line in lines if not isinstance(line, ValueError)), None)
    canonical = json.dumps(first, sort_keys=True, separators=(",", ":"))
    return _HASHED_SESSION + hashlib.sha256(canonical.encode()).hexdigest()[:24], attribution


def _usage(value: Any, where: str) -> _Usage:
    if not isinstance(value, dict):
        raise ValueError(f"{where} is missing")
    usage: _Usage = {}
    for name in _FIELDS:
        try:
            usage[name] = to_int(value.get(name))
        except ValueError as error:
            raise ValueError(f"{where}.{name}: {error}") from None
    if not usage["total_tokens"]:
        usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
    return usage


def _delta(total: _Usage, previous: _Usage, info: dict[str, Any]) -> _Usage:
    """This event's own usage."""
    delta = {name: total[name] - previous[name] for name in _FIELDS}
    if any(value < 0 for value in delta.values()):
        # The cumulative counters were rebased (Codex resets them to the context window when it overflows,
        # or a resumed session restarts them): the difference means nothing, `last_token_usage` is this
        # event's usage.
        return _usage(info.get("last_token_usage"), "info.last_token_usage")
    return delta


def _record(
    line: dict[str, Any],
    info: dict[str, Any],
    delta: _Usage,
    model: str | None,
    record_id: str,
    session_id: str,
    attribution: Attribution,
) -> UsageRecord:
    # Older rollouts name the model only in turn_context; some builds also put it on the token_count info.
    own_model = info.get("model")
    model = own_model.strip() if isinstance(own_model, str) and own_model.strip() else model
    if model is None:
        raise ValueError("no model: neither info.model nor a preceding turn_context names one")
    if line.get("timestamp") is None:
        raise ValueError("timestamp is missing")
    try:
        timestamp = to_datetime(line["timestamp"])
    except ValueError as error:
        raise ValueError(f"timestamp: {error}") from None
    cached = delta["cached_input_tokens"]
    return UsageRecord(
        id=record_id,
        source="codex",
        timestamp=timestamp,
        model=model,
        provider="openai",
        input_tokens=max(delta["input_tokens"] - cached, 0),
        cache_read_tokens=cached,
        output_tokens=delta["output_tokens"],
        reasoning_tokens=delta["reasoning_output_tokens"],
        attribution=attribution,
        agent="codex",
        session_id=session_id,
        # The same response as Codex's telemetry reports it (`codex.sse_event`): counted once, whichever came first.
        # A session named by a hash (no session_meta) has no conversation id for telemetry to share.
        call_ids=()
        if session_id.startswith(_HASHED_SESSION)
        else (usage_call_id("codex", session_id, *(delta[name] for name in _CALL_FIELDS)),),
    )
