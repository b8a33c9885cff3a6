"""OTLP log events of coding agents other than Claude Code: Codex `codex.sse_event` and Gemini CLI
`gemini_cli.api_response`. Pure; `app.sources.otlp` hands every log record to `record_of` first.

Codex (codex-rs `otel`, `SessionTelemetry::sse_event_completed`): one `codex.sse_event` per server-sent event
of a model response; the one with `event.kind = response.completed` carries `input_token_count` (which
INCLUDES `cached_token_count`), `output_token_count` (which includes `reasoning_token_count`) and
`tool_token_count`. Every Codex event also carries `conversation.id` (the rollout's `session_meta.id`),
`model`, `slug`, `user.email` and `event.timestamp`. Codex cannot add resource attributes: its records are
attributed later, by the rollout of the same conversation (`app.session_join`).

Gemini CLI (packages/core/src/telemetry/types.ts, `ApiResponseEvent.toLogRecord`): `event.name =
gemini_cli.api_response`, `model`, `duration_ms`, `input_token_count` (Gemini's promptTokenCount, cached content
included), `cached_content_token_count`, `output_token_count` (candidatesTokenCount, thoughts NOT included),
`thoughts_token_count`, `tool_token_count` (toolUsePromptTokenCount, billed as input), `prompt_id`, and the
common `session.id` / `user.email`. Its second record of the same response
(`gen_ai.client.inference.operation.details`) repeats the usage and is not read. The `session.id` is gemini-cli's
`config.getSessionId()`, which its chat file records as `sessionId`: events that name no repository wait for the
chat file (`tokentrail import gemini`) to attribute them.

A rollout (or a Gemini chat file) and the telemetry of the same session report the same model calls. Both name
each call by `usage_call_id` (agent, session, the call's token counts and, numbered by the store, which
occurrence of those counts it is), so the records of one owner sharing it are one call (DESIGN §2), whichever
arrived first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from app.parsing import to_datetime, to_int
from app.records import UsageRecord
from app.sources.otlp_json import Item, attribution_of, get_field, lookup, nanos_time, read_attribute, text_of

CODEX_EVENT = "codex.sse_event"
GEMINI_EVENT = "gemini_cli.api_response"
_MINE = {CODEX_EVENT, GEMINI_EVENT}


class NotMine:
    """`record_of`'s answer for a log record of another agent (Claude Code's events go on to its own reader)."""


NOT_MINE = NotMine()
TELEMETRY_SOURCE = "otlp"
# A telemetry agent whose records may name no repository -> the source of the records that attribute its sessions:
# Codex's rollout (app.sources.codex); Gemini CLI's chat file (app.sources.gemini); Copilot's own spans (VS Code's
# Copilot Chat is service `copilot-chat`, the Copilot CLI `github-copilot`), read back from its OTel file exporter
# by `tokentrail import copilot` in the checkout they ran in (app.local.agent_files).
SESSION_SOURCES: Mapping[str, str] = {
    "codex": "codex",
    "gemini-cli": "gemini",
    "copilot-chat": TELEMETRY_SOURCE,
    "github-copilot": TELEMETRY_SOURCE,
}
NUMBERED = "#"  # a call id ending in it is numbered by the store (`app.call_numbers`): "…#k", its k-th occurrence
_MAX_CALL_ID = 240  # room left for the number within the 255 characters a call id may have


def waits_for_session(record: UsageRecord) -> bool:
    """Telemetry of an agent of `SESSION_SOURCES` that names no repository: it is accepted, and waits for a record
    of its session from that agent's own file to attribute it (`app.session_join`)."""
    return (
        record.agent in SESSION_SOURCES
        and record.source == TELEMETRY_SOURCE
        and record.session_id is not None
        and record.attribution.repo is None
    )


def attributes_session(record: UsageRecord) -> bool:
    """A record of an agent's own file (`SESSION_SOURCES`) that names a repository: its session's waiting telemetry
    takes that repository, branch and commit."""
    return (
        record.agent is not None
        and SESSION_SOURCES.get(record.agent) == record.source
        and record.session_id is not None
        and record.attribution.repo is not None
    )


def usage_call_id(agent: str, session: str, *counts: int) -> str:
    """One model call of an agent session, named by its token counts as the agent itself reports them: the
    rollout or chat file and the telemetry of the same session give the same name. Two calls of a session can
    report the same counts, so the name ends in `NUMBERED` and the store appends which occurrence of it a record
    is, counted per source in arrival order: the k-th in the file is the k-th in the telemetry, and counts once."""
    name = f"{agent}:{session}:" + ":".join(str(count) for count in counts)
    if len(name) > _MAX_CALL_ID:  # a very long session id: the same digest on both sides
        name = f"{agent}:sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return name + NUMBERED


def event_name(item: Item, attributes: dict[str, Any]) -> str | None:
    record = item.value
    for name in (attributes.get("event.name"), record.get("eventName"), get_field(record.get("body"), "stringValue")):
        if isinstance(name, str) and name in _MINE:
            return name
    return None


def record_of(item: Item, attributes: dict[str, Any]) -> UsageRecord | NotMine | None:
    """The usage record of a Codex or Gemini CLI event, None for another event of theirs, NOT_MINE otherwise."""
    name = event_name(item, attributes)
    if name == CODEX_EVENT:
        if text_of(attributes.get("event.kind")) != "response.completed" or attributes.get("error.message"):
            return None  # every other server-sent event, and a completion that failed: no usage
        return _codex(item, attributes)
    if name == GEMINI_EVENT:
        return _gemini(item, attributes)
    return NOT_MINE


def _count(attributes: dict[str, Any], name: str) -> int:
    return read_attribute(attributes, (name,), to_int)


def _timestamp(item: Item, attributes: dict[str, Any]) -> Any:
    record = item.value
    timestamp = nanos_time(record.get("timeUnixNano"), "timeUnixNano")
    if timestamp is None and attributes.get("event.timestamp") is not None:
        try:
            timestamp = to_datetime(attributes["event.timestamp"])
        except ValueError as error:
            raise ValueError(f"event.timestamp: {error}") from None
    timestamp = timestamp or nanos_time(record.get("observedTimeUnixNano"), "observedTimeUnixNano")
    if timestamp is None:
        raise ValueError("timeUnixNano, event.timestamp and observedTimeUnixNano are all missing")
    return timestamp


def _event_id(session: str | None, item: Item, attributes: dict[str, Any]) -> str:
    """Neither agent numbers its events: a hash of what the event says, so re-sending an export dedupes."""
    canonical = json.dumps(
        [attributes, item.value.get("timeUnixNano"), item.value.get("observedTimeUnixNano")],
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:32]
    return f"{session}:{digest}" if session else f"sha256:{digest}"


def _model(attributes: dict[str, Any]) -> str:
    model = text_of(attributes.get("model"))
    if model is None:
        raise ValueError("model attribute is missing")
    return model


def _codex(item: Item, attributes: dict[str, Any]) -> UsageRecord:
    model = _model(attributes)
    conversation = text_of(lookup(item, attributes, "conversation.id"))
    total_input = _count(attributes, "input_token_count")
    cached = _count(attributes, "cached_token_count")
    output = _count(attributes, "output_token_count")
    reasoning = _count(attributes, "reasoning_token_count")
    if cached > total_input:
        raise ValueError("cached_token_count is larger than input_token_count")
    calls = (usage_call_id("codex", conversation, total_input, cached, output, reasoning),) if conversation else ()
    return UsageRecord(
        id=_event_id(conversation, item, attributes),
        source="otlp",
        timestamp=_timestamp(item, attributes),
        model=model,
        provider="openai",
        input_tokens=total_input - cached,
        cache_read_tokens=cached,
        output_tokens=output,
        reasoning_tokens=reasoning,
        attribution=attribution_of(item, attributes),
        actor=text_of(lookup(item, attributes, "user.email")),
        agent="codex",
        session_id=conversation,
        call_ids=calls,
    )


def gemini_counts(prompt: int, cached: int, candidates: int, thoughts: int, tool: int) -> tuple[int, int, int, int]:
    """Gemini's usage metadata in our convention (also used for its chat files): input without the cached
    content, plus the tool-use prompt; output with the thoughts, which Google bills as output."""
    if cached > prompt:
        raise ValueError("cached tokens are more than the prompt tokens")
    return prompt - cached + tool, cached, candidates + thoughts, thoughts  # input, cache read, output, reasoning


def _gemini(item: Item, attributes: dict[str, Any]) -> UsageRecord:
    model = _model(attributes)
    session = text_of(lookup(item, attributes, "session.id"))
    raw = [
        _count(attributes, name)
        for name in (
            "input_token_count",
            "cached_content_token_count",
            "output_token_count",
            "thoughts_token_count",
            "tool_token_count",
        )
    ]
    calls = [usage_call_id("gemini-cli", session, *raw)] if session else []
    input_tokens, cache_read, output, reasoning = gemini_counts(*raw)
    response_id = text_of(attributes.get("response_id"))
    if response_id:
        calls.append(response_id)
    return UsageRecord(
        id=_event_id(session, item, attributes),
        source="otlp",
        timestamp=_timestamp(item, attributes),
        model=model,
        provider="google",
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        output_tokens=output,
        reasoning_tokens=reasoning,
        attribution=attribution_of(item, attributes),
        actor=text_of(lookup(item, attributes, "user.email")),
        agent="gemini-cli",
        session_id=session,
        call_ids=tuple(calls),
    )
