"""OTLP/HTTP JSON → usage records: Claude Code `api_request` log events (Codex and Gemini CLI events in
`app.sources.agent_events`) and OpenTelemetry GenAI spans. Pure.

Shapes: ExportLogsServiceRequest `resourceLogs[].scopeLogs[].logRecords[]` and ExportTraceServiceRequest
`resourceSpans[].scopeSpans[].spans[]`; attribute values are AnyValue objects; 64-bit ints and nanosecond
timestamps arrive as strings or numbers; trace/span ids are hex of any case.

The rejection index of a log record or span is its position in document order across the whole request (and,
for NDJSON, across all lines), so a client can find the offending item without knowing our structure.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from app.parsing import to_datetime, to_decimal, to_int
from app.records import ParsedBatch, UsageRecord
from app.sources import agent_events
from app.sources.otlp_json import (
    Item,
    attribution_of,
    convert_all,
    first,
    get_field,
    hex_id,
    lookup,
    nanos_time,
    parse_items,
    read_attribute,
    read_items,
    text_of,
)

_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX = frozenset("0123456789abcdef")
# Claude Code names the event "api_request" in `event.name` and "claude_code.api_request" in the body
# (and newer SDKs in the LogRecord's own `eventName`).
_API_REQUEST = {"api_request", "claude_code.api_request"}
# GenAI semconv names (current first, then the deprecated spellings still emitted by older instrumentations).
_INPUT = ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
_OUTPUT = ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
_CACHE_READ = ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")
_CACHE_WRITE = ("gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens")
_REASONING = ("gen_ai.usage.reasoning.output_tokens",)
_SPAN_COST = ("gen_ai.usage.cost", "gen_ai.usage.cost_usd", "cost_usd")
_USAGE_KEYS = (*_INPUT, *_OUTPUT, *_CACHE_READ, *_CACHE_WRITE)
# DESIGN §3: only inference operations are usage. Agent, workflow and tool spans carry the totals of the calls
# beneath them (Copilot's `invoke_agent` sums its `chat` turns), so counting them would count every call twice.
_INFERENCE = {"chat", "text_completion", "generate_content", "embeddings"}
_AGGREGATES = {"invoke_agent", "invoke_workflow", "execute_tool", "create_agent"}


def parse_logs(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    return parse_items(body, ndjson, ("resourceLogs", "scopeLogs", "logRecords"), _log_record)


def parse_traces(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    """GenAI spans. A span that names no operation counts only when it is a leaf: no span of the same request
    has it as parent (an unnamed parent with usage is a total of its children)."""
    batch = ParsedBatch()
    items = list(read_items(body, ndjson, ("resourceSpans", "scopeSpans", "spans"), batch))
    parents = {_parent_key(item.value) for item in items} - {None}

    def convert(item: Item, attributes: dict[str, Any]) -> UsageRecord | None:
        return _span_record(item, attributes, is_leaf=_span_key(item.value) not in parents)

    return convert_all(items, "span", convert, batch)


def _log_record(item: Item, attributes: dict[str, Any]) -> UsageRecord | None:
    other_agent = agent_events.record_of(item, attributes)  # Codex and Gemini CLI events
    if not isinstance(other_agent, agent_events.NotMine):
        return other_agent
    record = item.value
    body = get_field(record.get("body"), "stringValue")
    names = (attributes.get("event.name"), record.get("eventName"), body)
    if not any(isinstance(name, str) and name in _API_REQUEST for name in names):
        return None  # user_prompt, tool_result, any other log line: no usage
    model = text_of(attributes.get("model"))
    if model is None:
        raise ValueError("model attribute is missing")
    timestamp = nanos_time(record.get("timeUnixNano"), "timeUnixNano")
    if timestamp is None and attributes.get("event.timestamp") is not None:
        try:
            timestamp = to_datetime(attributes["event.timestamp"])
        except ValueError as error:
            raise ValueError(f"event.timestamp: {error}") from None
    timestamp = timestamp or nanos_time(record.get("observedTimeUnixNano"), "observedTimeUnixNano")
    if timestamp is None:
        raise ValueError("timeUnixNano, event.timestamp and observedTimeUnixNano are all missing")
    session = text_of(lookup(item, attributes, "session.id"))
    sequence = attributes.get("event.sequence")
    if session is not None and sequence is not None:
        record_id = f"{session}:{read_attribute(attributes, ('event.sequence',), to_int)}"
    else:
        # No sequence to key on: a hash of what the event says, so re-sending the same export dedupes.
        canonical = json.dumps(
            [attributes, record.get("timeUnixNano"), record.get("observedTimeUnixNano")],
            sort_keys=True,
            default=str,
        )
        record_id = "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]
    # Claude Code reports Anthropic's usage block: input_tokens already EXCLUDES cache reads and writes, which
    # is our convention, so the counts are taken as they are.
    return UsageRecord(
        id=record_id,
        source="otlp",
        timestamp=timestamp,
        model=model,
        provider="anthropic",
        input_tokens=read_attribute(attributes, ("input_tokens",), to_int),
        cache_read_tokens=read_attribute(attributes, ("cache_read_tokens",), to_int),
        cache_write_tokens=read_attribute(attributes, ("cache_creation_tokens",), to_int),
        output_tokens=read_attribute(attributes, ("output_tokens",), to_int),
        cost_usd=read_attribute(attributes, ("cost_usd",), to_decimal),
        attribution=attribution_of(item, attributes),
        actor=text_of(lookup(item, attributes, "user.email", "user.id")),
        agent="claude-code",
        session_id=session,
        call_ids=tuple(i for i in (text_of(attributes.get("request_id")),) if i),
    )


def _span_key(span: Any) -> tuple[str, str] | None:
    if not isinstance(span, dict):
        return None
    trace_id, span_id = hex_id(span.get("traceId")), hex_id(span.get("spanId"))
    return (trace_id, span_id) if trace_id and span_id else None


def _parent_key(span: Any) -> tuple[str, str] | None:
    if not isinstance(span, dict):
        return None
    trace_id, parent_id = hex_id(span.get("traceId")), hex_id(span.get("parentSpanId"))
    return (trace_id, parent_id) if trace_id and parent_id else None


def _span_record(item: Item, attributes: dict[str, Any], *, is_leaf: bool) -> UsageRecord | None:
    span = item.value
    if all(attributes.get(name) is None for name in _USAGE_KEYS):
        # Not a GenAI call. Deliberately also Claude Code's own `claude_code.llm_request` spans, whose flat
        # `input_tokens` attributes repeat what its `api_request` log event already reports (no double count).
        return None
    operation = text_of(attributes.get("gen_ai.operation.name"))
    if operation in _AGGREGATES or (operation not in _INFERENCE and not is_leaf):
        return None  # an agent, workflow or tool span, or a span of another kind that sums its children
    model = text_of(first(attributes, ("gen_ai.response.model", "gen_ai.request.model")))
    if model is None:
        raise ValueError("gen_ai.response.model / gen_ai.request.model is missing")
    trace_id, span_id = hex_id(span.get("traceId")), hex_id(span.get("spanId"))
    if trace_id is None or span_id is None:
        raise ValueError("traceId and spanId are required")
    timestamp = nanos_time(span.get("startTimeUnixNano"), "startTimeUnixNano")
    if timestamp is None:
        raise ValueError("startTimeUnixNano is missing")
    input_tokens = read_attribute(attributes, _INPUT, to_int)
    cache_read = read_attribute(attributes, _CACHE_READ, to_int)
    cache_write = read_attribute(attributes, _CACHE_WRITE, to_int)
    # GenAI semconv: gen_ai.usage.input_tokens "SHOULD include all types of input tokens, including cached
    # tokens", and both cache counts "SHOULD be included in gen_ai.usage.input_tokens". Our input is
    # non-cached, so subtract them. An input smaller than its cache counts can only come from an emitter that
    # used Anthropic's exclusive counting despite the spec: keep it as is rather than invent a negative.
    if input_tokens >= cache_read + cache_write:
        input_tokens -= cache_read + cache_write
    service = text_of(item.resource.get("service.name"))
    provider = text_of(first(attributes, ("gen_ai.provider.name", "gen_ai.system")))
    return UsageRecord(
        id=f"{trace_id}:{span_id}",
        source="otlp",
        timestamp=timestamp,
        model=model,
        provider=provider.lower() if provider else None,
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=read_attribute(attributes, _OUTPUT, to_int),
        # Semconv: reasoning tokens SHOULD be included in output_tokens, which is our convention too.
        reasoning_tokens=read_attribute(attributes, _REASONING, to_int),
        cost_usd=read_attribute(attributes, _SPAN_COST, to_decimal),
        attribution=attribution_of(item, attributes),
        actor=text_of(lookup(item, attributes, "user.email", "user.id", "enduser.id")),
        # The SDK default "unknown_service[:exe]" names no agent.
        agent=service if service and not service.startswith("unknown_service") else None,
        session_id=text_of(lookup(item, attributes, "session.id", "gen_ai.conversation.id")),
        call_ids=tuple(i for i in (text_of(attributes.get("gen_ai.response.id")),) if i),
    )
