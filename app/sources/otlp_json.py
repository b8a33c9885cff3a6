"""Reading OTLP/HTTP JSON documents: requests flattened into items with their resource and scope attributes,
AnyValue decoding, attribute lookups and the `vcs.*` attribution every OTLP signal shares. Pure.

Shapes: `resource{Logs,Spans,Metrics}[].scope{Logs,Spans,Metrics}[].{logRecords,spans,metrics}[]`; attribute values
are AnyValue objects; 64-bit ints and nanosecond timestamps arrive as strings or numbers; trace/span ids are hex
of any case.

The rejection index of an item is its position in document order across the whole request (and, for NDJSON,
across all lines), so a client can find the offending item without knowing our structure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from app.attribution import Attribution
from app.parsing import iter_json_lines, load_json
from app.records import ParsedBatch, PayloadError, UsageRecord

_T = TypeVar("_T")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Item:
    """One log record or span with the attributes of its resource and scope (looked up record → scope →
    resource: the most specific value wins)."""

    index: int
    value: Any
    scope: dict[str, Any]
    resource: dict[str, Any]


def parse_items(
    body: bytes,
    ndjson: bool,
    keys: tuple[str, str, str],
    convert: Callable[[Item, dict[str, Any]], UsageRecord | None],
) -> ParsedBatch:
    batch = ParsedBatch()
    return convert_all(read_items(body, ndjson, keys, batch), keys[2][:-1], convert, batch)


def convert_all(
    items: Iterable[Item],
    kind: str,
    convert: Callable[[Item, dict[str, Any]], UsageRecord | None],
    batch: ParsedBatch,
) -> ParsedBatch:
    for item in items:
        try:
            if not isinstance(item.value, dict):
                raise ValueError(f"{kind} is not an object")
            record = convert(item, attributes_of(item.value.get("attributes"), kind))
        except ValueError as error:
            batch.reject(item.index, str(error))
            continue
        if record is None:
            batch.skipped += 1
        else:
            batch.add(item.index, record)
    return batch


def read_items(body: bytes, ndjson: bool, keys: tuple[str, str, str], batch: ParsedBatch) -> Iterator[Item]:
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


def _flatten(request: Any, keys: tuple[str, str, str], start: int) -> Iterator[Item]:
    resources_key, scopes_key, items_key = keys
    if not isinstance(request, dict):
        raise ValueError(f"expected an OTLP JSON object with {resources_key}")
    index = start
    for r, resource_block in enumerate(_list(request, resources_key, resources_key)):
        where = f"{resources_key}[{r}]"
        if not isinstance(resource_block, dict):
            raise ValueError(f"{where} is not an object")
        resource = attributes_of(get_field(resource_block.get("resource"), "attributes"), f"{where}.resource")
        for s, scope_block in enumerate(_list(resource_block, scopes_key, where)):
            if not isinstance(scope_block, dict):
                raise ValueError(f"{where}.{scopes_key}[{s}] is not an object")
            scope = attributes_of(get_field(scope_block.get("scope"), "attributes"), f"{where}.{scopes_key}[{s}]")
            for value in _list(scope_block, items_key, f"{where}.{scopes_key}[{s}]"):
                yield Item(index=index, value=value, scope=scope, resource=resource)
                index += 1


def _list(container: dict[str, Any], key: str, where: str) -> list[Any]:
    value = container.get(key)
    if value is None:
        return []  # an empty export is valid OTLP
    if not isinstance(value, list):
        raise ValueError(f"{where}: {key} is not an array")
    return value


def get_field(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def attributes_of(value: Any, where: str, depth: int = 0) -> dict[str, Any]:
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
        return attributes_of(_values(value["kvlistValue"], "kvlistValue", depth), "kvlistValue", depth + 1)
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


def first(attributes: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = attributes.get(name)
        if value is not None and value != "":
            return value
    return None


def lookup(item: Item, own: dict[str, Any], *names: str) -> Any:
    for attributes in (own, item.scope, item.resource):
        value = first(attributes, names)
        if value is not None:
            return value
    return None


def text_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _repository(attributes: dict[str, Any]) -> Any:
    """`vcs.repository.url.full`, else `vcs.owner.name` + `vcs.repository.name` (Claude Code omits the URL when
    its remote is not URL-shaped, and other emitters may send the names alone)."""
    url = first(attributes, ("vcs.repository.url.full",))
    if url is not None:
        return url
    owner, name = text_of(attributes.get("vcs.owner.name")), text_of(attributes.get("vcs.repository.name"))
    return f"{owner}/{name}" if owner and name else None


def vcs_attribution(attributes: dict[str, Any]) -> Attribution:
    return Attribution.parse(
        repo=_repository(attributes),
        branch=first(attributes, ("vcs.ref.head.name", "vcs.repository.ref.name")),
        commit=first(attributes, ("vcs.ref.head.revision", "vcs.repository.ref.revision")),
        pr=first(attributes, ("vcs.change.id", "vcs.repository.change.id")),
    )


def attribution_of(item: Item, own: dict[str, Any]) -> Attribution:
    # Field by field the most specific claim wins; filled_from refuses branch/commit of another repository.
    return vcs_attribution(own).filled_from(vcs_attribution(item.scope)).filled_from(vcs_attribution(item.resource))


def read_attribute(attributes: dict[str, Any], names: tuple[str, ...], reader: Callable[[Any], _T]) -> _T:
    """Read the first present attribute of `names`; an unreadable value names the attribute in the error."""
    value = first(attributes, names)
    try:
        return reader(value)
    except ValueError as error:
        raise ValueError(f"{next(n for n in names if attributes.get(n) is not None)}: {error}") from None


def nanos_time(value: Any, field: str) -> datetime | None:
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


def hex_id(value: Any) -> str | None:
    # Hex ids are case-insensitive: lower-case them so the dedupe key is stable. Anything else (base64 from a
    # non-conformant encoder) is kept as sent, since lower-casing base64 would merge distinct ids.
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    return text.lower() if set(text.lower()) <= _HEX else text
