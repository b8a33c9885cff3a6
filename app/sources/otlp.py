"""OTLP/HTTP JSON → usage records: Claude Code `api_request` log events and OpenTelemetry GenAI spans. Pure.

Shapes: ExportLogsServiceRequest `resourceLogs[].scopeLogs[].logRecords[]` and ExportTraceServiceRequest
`resourceSpans[].scopeSpans[].spans[]`; attribute values are AnyValue objects; 64-bit ints and nanosecond
timestamps arrive as strings or numbers; trace/span ids are hex of any case.

The rejection index of a log record or span is its position in document order across the whole request (and,
for NDJSON, across all lines), so a client can find the offending item without knowing our structure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from app.attribution import Attribution
from app.parsing import iter_json_lines, load_json, to_datetime, to_decimal, to_int
from app.records import ParsedBatch, PayloadError, UsageRecord

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


@dataclass(frozen=True, slots=True)
class _Item:
    """One log record or span with the attributes of its resource and scope (looked up record → scope →
    resource: the most specific value wins)."""

    index: int
    value: Any
    scope: dict[str, Any]
    resource: dict[str, Any]


def parse_logs(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    return _parse(body, ndjson, ("resourceLogs", "scopeLogs", "logRecords"), _log_record)


def parse_traces(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    """GenAI spans. A span that names no operation counts only when it is a leaf: no span of the same request
    has it as parent (an unnamed parent with usage is a total of its children)."""
    batch = ParsedBatch()
    items = list(_items(body, ndjson, ("resourceSpans", "scopeSpans", "spans"), batch))
    parents = {_parent_key(item.value) for item in items} - {None}

    def convert(item: _Item, attributes: dict[str, Any]) -> UsageRecord | None:
        return _span_record(item, attributes, is_leaf=_span_key(item.value) not in parents)

    return _convert_all(items, "span", convert, batch)


def _parse(
    body: bytes,
    ndjson: bool,
    keys: tuple[str, str, str],
    convert: Callable[[_Item, dict[str, Any]], UsageRecord | None],
) -> ParsedBatch:
    batch = ParsedBatch()
    return _convert_all(_items(body, ndjson, keys, batch), keys[2][:-1], convert, batch)


def _convert_all(
    items: Iterable[_Item],
    kind: str,
    convert: Callable[[_Item, dict[str, Any]], UsageRecord | None],
    batch: ParsedBatch,
) -> ParsedBatch:
    for item in items:
        try:
            if not isinstance(item.value, dict):
                raise ValueError(f"{kind} is not an object")
            record = convert(item, _attributes(item.value.get("attributes"), kind))
        except ValueError as error:
            batch.reject(item.index, str(error))
            continue
        if record is None:
            batch.skipped += 1
        else:
            batch.add(item.index, record)
    return batch


def _items(body: bytes, ndjson: bool, keys: tuple[str, str, str], batch: ParsedBatch) -> Iterator[_Item]:
    """Flatten the request(s) into items. A request whose structure is unreadable is a PayloadError for a
    plain JSON body; in NDJSON (as the collector's file exporter writes: one request a line) it rejects that
    line only."""
    if not body.strip():
        raise PayloadError("body is empty")
    if not ndjson:
        try:
            yield from _flatten(load_json(body), keys, 0)
        except ValueError as error:
            if isinstance(error, PayloadError):
                raise
            raise PayloadError(str(error)) from None
        return
    position, readable = 0, False
    for line, request in iter_json_lines(body):
        try:
            if isinstance(request, ValueError):
                raise request
            items = list(_flatten(request, keys, position))
        except ValueError as error:
            batch.reject(position, f"line {line}: {error}")
            continue
        readable = True
        position += len(items)
        yield from items
    if not readable:
        raise PayloadError("no line of the body is an OTLP JSON request")


def _flatten(request: Any, keys: tuple[str, str, str], start: int) -> Iterator[_Item]:
    resources_key, scopes_key, items_key = keys
    if not isinstance(request, dict):
        raise ValueError(f"expected an OTLP JSON object with {resources_key}")
    index = start
    for r, resource_block in enumerate(_list(request, resources_key, resources_key)):
        where = f"{resources_key}[{r}]"
        if not isinstance(resource_block, dict):
            raise ValueError(f"{where} is not an object")
        resource = _attributes(_get(resource_block.get("resource"), "attributes"), f"{where}.resource")
        for s, scope_block in enumerate(_list(resource_block, scopes_key, where)):
            if not isinstance(scope_block, dict):
                raise ValueError(f"{where}.{scopes_key}[{s}] is not an object")
            scope = _attributes(_get(scope_block.get("scope"), "attributes"), f"{where}.{scopes_key}[{s}]")
            for value in _list(scope_block, items_key, f"{where}.{scopes_key}[{s}]"):
                yield _Item(index=index, value=value, scope=scope, resource=resource)
                index += 1


def _list(container: dict[str, Any], key: str, where: str) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []  # an empty export is valid OTLP
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key} is not an array")
    return value


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _attributes(value: Any, where: str, depth: int = 0) -> dict[str, Any]:
    """OTLP KeyValue list → plain dict (first occurrence of a key wins, as the spec says keys are unique).

    A value that is not an AnyValue of the spec's shape raises ValueError naming its key, so the record (or, for
    resource and scope attributes, the request) is rejected with the reason instead of crashing the parser.
    """
    if value is None:
        return {}
    if not isinstance(value, list):
        raise ValueError(f"{where}: attributes is not an array")
    result: dict[str, Any] = {}
    for entry in value:
        if isinstance(entry, dict) and isinstance(entry.get("key"), str) and entry["key"] not in result:
            try:
                result[entry["key"]] = _any_value(entry.get("value"), depth)
            except ValueError as error:
                if depth:
                    raise  # named once, by the outermost attribute
                raise ValueError(f"{where}: attribute {entry['key']}: {error}") from None
    return result


# Attribute values nest arrays and key-value lists; real ones go a few levels deep. A bound keeps a hostile one
# from exhausting the stack (a RecursionError would fail the whole request).
MAX_VALUE_DEPTH = 32


def _any_value(value: Any, depth: int) -> Any:
    if not isinstance(value, dict):
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        raw = value["intValue"]  # int64: a JSON string per the OTLP spec, a number from lax encoders
        try:
            return int(raw) if isinstance(raw, str | int) and not isinstance(raw, bool) else raw
        except ValueError:
            return raw  # left as is, so the counter that reads it rejects it with the field's name
    if "doubleValue" in value:
        return value["doubleValue"]
    if "boolValue" in value:
        return value["boolValue"]
    if "arrayValue" in value:
        return [_any_value(v, depth + 1) for v in _values(value["arrayValue"], "arrayValue", depth)]
    if "kvlistValue" in value:
        return _attributes(_values(value["kvlistValue"], "kvlistValue", depth), "kvlistValue", depth + 1)
    return value.get("bytesValue")


def _values(container: Any, kind: str, depth: int) -> list[Any]:
    """The `values` list of an ArrayValue or KeyValueList."""
    if depth >= MAX_VALUE_DEPTH:
        raise ValueError(f"value nested deeper than {MAX_VALUE_DEPTH} levels")
    if container is None:
        return []
    if not isinstance(container, dict):
        raise ValueError(f"{kind} is not an object")
    values = container.get("values")
    if values is None:
        return []
    if not isinstance(values, list):
        raise ValueError(f"{kind}.values is not an array")
    return values


def _first(attributes: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = attributes.get(name)
        if value is not None and value != "":
            return value
    return None


def _lookup(item: _Item, own: dict[str, Any], *names: str) -> Any:
    for attributes in (own, item.scope, item.resource):
        value = _first(attributes, names)
        if value is not None:
            return value
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _vcs(attributes: dict[str, Any]) -> Attribution:
    return Attribution.parse(
        repo=_first(attributes, ("vcs.repository.url.full",)),
        branch=_first(attributes, ("vcs.ref.head.name", "vcs.repository.ref.name")),
        commit=_first(attributes, ("vcs.ref.head.revision", "vcs.repository.ref.revision")),
        pr=_first(attributes, ("vcs.change.id", "vcs.repository.change.id")),
    )


def _attribution(item: _Item, own: dict[str, Any]) -> Attribution:
    # Field by field the most specific claim wins; filled_from refuses branch/commit of another repository.
    return _vcs(own).filled_from(_vcs(item.scope)).filled_from(_vcs(item.resource))


def _read(attributes: dict[str, Any], names: tuple[str, ...], reader: Callable[[Any], _T]) -> _T:
    """Read the first present attribute of `names`; an unreadable value names the attribute in the error."""
    value = _first(attributes, names)
    try:
        return reader(value)
    except ValueError as error:
        raise ValueError(f"{next(n for n in names if attributes.get(n) is not None)}: {error}") from None


def _nanos(value: Any, field: str) -> datetime | None:
    """Unix nanoseconds (string or number); 0 or absent means "unknown" in OTLP."""
    if value is None or value == "" or value == 0 or value == "0":
        return None
    try:
        nanos = int(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        if nanos is None or nanos < 0:
            raise ValueError
        return _EPOCH + timedelta(microseconds=nanos // 1000)  # exact: no float rounding
    except (ValueError, OverflowError):
        raise ValueError(f"{field}: invalid timestamp {value!r}") from None


def _hex_id(value: Any) -> str | None:
    # Hex ids are case-insensitive: lower-case them so the dedupe key is stable. Anything else (base64 from a
    # non-conformant encoder) is kept as sent, since lower-casing base64 would merge distinct ids.
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    return text.lower() if set(text.lower()) <= _HEX else text


def _log_record(item: _Item, attributes: dict[str, Any]) -> UsageRecord | None:
    record = item.value
    body = _get(record.get("body"), "stringValue")
    names = (attributes.get("event.name"), record.get("eventName"), body)
    if not any(isinstance(name, str) and name in _API_REQUEST for name in names):
        return None  # user_prompt, tool_result, any other log line: no usage
    model = _text(attributes.get("model"))
    if model is None:
        raise ValueError("model attribute is missing")
    timestamp = _nanos(record.get("timeUnixNano"), "timeUnixNano")
    if timestamp is None and attributes.get("event.timestamp") is not None:
        try:
            timestamp = to_datetime(attributes["event.timestamp"])
        except ValueError as error:
            raise ValueError(f"event.timestamp: {error}") from None
    timestamp = timestamp or _nanos(record.get("observedTimeUnixNano"), "observedTimeUnixNano")
    if timestamp is None:
        raise ValueError("timeUnixNano, event.timestamp and observedTimeUnixNano are all missing")
    session = _text(_lookup(item, attributes, "session.id"))
    sequence = attributes.get("event.sequence")
    if session is not None and sequence is not None:
        record_id = f"{session}:{_read(attributes, ('event.sequence',), to_int)}"
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
        input_tokens=_read(attributes, ("input_tokens",), to_int),
        cache_read_tokens=_read(attributes, ("cache_read_tokens",), to_int),
        cache_write_tokens=_read(attributes, ("cache_creation_tokens",), to_int),
        output_tokens=_read(attributes, ("output_tokens",), to_int),
        cost_usd=_read(attributes, ("cost_usd",), to_decimal),
        attribution=_attribution(item, attributes),
        actor=_text(_lookup(item, attributes, "user.email", "user.id")),
        agent="claude-code",
        session_id=session,
        call_ids=tuple(i for i in (_text(attributes.get("request_id")),) if i),
    )


def _span_key(span: Any) -> tuple[str, str] | None:
    if not isinstance(span, dict):
        return None
    trace_id, span_id = _hex_id(span.get("traceId")), _hex_id(span.get("spanId"))
    return (trace_id, span_id) if trace_id and span_id else None


def _parent_key(span: Any) -> tuple[str, str] | None:
    if not isinstance(span, dict):
        return None
    trace_id, parent_id = _hex_id(span.get("traceId")), _hex_id(span.get("parentSpanId"))
    return (trace_id, parent_id) if trace_id and parent_id else None


def _span_record(item: _Item, attributes: dict[str, Any], *, is_leaf: bool) -> UsageRecord | None:
    span = item.value
    if all(attributes.get(name) is None for name in _USAGE_KEYS):
        # Not a GenAI call. Deliberately also Claude Code's own `claude_code.llm_request` spans, whose flat
        # `input_tokens` attributes repeat what its `api_request` log event already reports (no double count).
        return None
    operation = _text(attributes.get("gen_ai.operation.name"))
    if operation in _AGGREGATES or (operation not in _INFERENCE and not is_leaf):
        return None  # an agent, workflow or tool span, or a span of another kind that sums its children
    model = _text(_first(attributes, ("gen_ai.response.model", "gen_ai.request.model")))
    if model is None:
        raise ValueError("gen_ai.response.model / gen_ai.request.model is missing")
    trace_id, span_id = _hex_id(span.get("traceId")), _hex_id(span.get("spanId"))
    if trace_id is None or span_id is None:
        raise ValueError("traceId and spanId are required")
    timestamp = _nanos(span.get("startTimeUnixNano"), "startTimeUnixNano")
    if timestamp is None:
        raise ValueError("startTimeUnixNano is missing")
    input_tokens = _read(attributes, _INPUT, to_int)
    cache_read = _read(attributes, _CACHE_READ, to_int)
    cache_write = _read(attributes, _CACHE_WRITE, to_int)
    # GenAI semconv: gen_ai.usage.input_tokens "SHOULD include all types of input tokens, including cached
    # tokens", and both cache counts "SHOULD be included in gen_ai.usage.input_tokens". Our input is
    # non-cached, so subtract them. An input smaller than its cache counts can only come from an emitter that
    # used Anthropic's exclusive counting despite the spec: keep it as is rather than invent a negative.
    if input_tokens >= cache_read + cache_write:
        input_tokens -= cache_read + cache_write
    service = _text(item.resource.get("service.name"))
    provider = _text(_first(attributes, ("gen_ai.provider.name", "gen_ai.system")))
    return UsageRecord(
        id=f"{trace_id}:{span_id}",
        source="otlp",
        timestamp=timestamp,
        model=model,
        provider=provider.lower() if provider else None,
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        output_tokens=_read(attributes, _OUTPUT, to_int),
        # Semconv: reasoning tokens SHOULD be included in output_tokens, which is our convention too.
        reasoning_tokens=_read(attributes, _REASONING, to_int),
        cost_usd=_read(attributes, _SPAN_COST, to_decimal),
        attribution=_attribution(item, attributes),
        actor=_text(_lookup(item, attributes, "user.email", "user.id", "enduser.id")),
        # The SDK default "unknown_service[:exe]" names no agent.
        agent=service if service and not service.startswith("unknown_service") else None,
        session_id=_text(_lookup(item, attributes, "session.id", "gen_ai.conversation.id")),
        call_ids=tuple(i for i in (_text(attributes.get("gen_ai.response.id")),) if i),
    )
