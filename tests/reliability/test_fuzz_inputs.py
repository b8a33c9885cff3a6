"""Hypothesis fuzzing of everything that reads a client's or GitHub's bytes: each source's parser and the whole
ingest function (parse, count, tenancy, store; on SQLite and PostgreSQL), `app.events.parse_event`, and the signed
webhook route. The inputs are the fixtures of tests/fixtures/ with arbitrary mutations (values replaced by any
JSON, keys deleted, containers nested deep, bytes flipped or cut), and arbitrary JSON and bytes.

The only outcomes allowed are the ones mapped to a 4xx: a ParsedBatch (bad items rejected by index), a
PayloadError (400), an HTTPException with a 4xx status, `Ignored` for a webhook; and from the route, never a 5xx.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from app.attribution import attribution_from_headers
from app.events import Event, Ignored, parse_event
from app.ingest import IngestResult, ingest
from app.records import ParsedBatch, PayloadError
from app.sources import FORMATS, canonical, claude_code, codex, gemini, helicone, langfuse, litellm, otlp, portkey
from app.tokens import TokenIdentity
from tests.conftest import FIXTURES
from tests.github_payloads import webhook_headers

Parser = Callable[..., ParsedBatch]

# Each parser with the fixtures of its source (JSON documents, or JSON lines when the name says so).
SOURCES: dict[str, tuple[Parser, list[str]]] = {
    "canonical": (canonical.parse, []),
    "litellm": (litellm.parse, ["litellm/*.json"]),
    "otlp-logs": (
        otlp.parse_logs,
        ["otlp/logs.json", "otlp/claude_code_api_request.json", "codex/otel_sse_events.json", "gemini/otel_*.json"],
    ),
    "otlp-traces": (otlp.parse_traces, ["otlp/trace.json", "otlp/genai_spans.json"]),
    "claude-code": (claude_code.parse, ["claude_code/*.jsonl", "ccusage/claude__*.jsonl"]),
    "codex": (codex.parse, ["codex/*.jsonl", "ccusage/codex__*.jsonl"]),
    "gemini": (gemini.parse, ["gemini/session-*.json*"]),
    "langfuse": (langfuse.parse, ["langfuse/*.json"]),
    "portkey": (portkey.parse, ["portkey/*.json", "portkey/*.jsonl"]),
    "helicone": (helicone.parse, ["helicone/*.json"]),
}
CANONICAL_RECORD = {
    "id": "r1",
    "timestamp": "2026-11-02T09:00:00Z",
    "model": "claude-sonnet-4-5",
    "provider": "anthropic",
    "input_tokens": 10,
    "output_tokens": 5,
    "cost_usd": "0.01",
    "repo": "acme/widgets",
    "branch": "feat/x",
    "commit": "3f2c9a1",
}
GITHUB = sorted((FIXTURES / "github").glob("*.json"))

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)  # what the worker would pass as the time of handling


def _documents(source: str) -> list[Any]:
    """The fixtures of a source as Python values: a JSON document, or the list of a JSONL file's lines."""
    documents: list[Any] = []
    for pattern in SOURCES[source][1]:
        for path in sorted(FIXTURES.glob(pattern)):
            text = path.read_text()
            if path.suffix == ".jsonl":
                documents.append([json.loads(line) for line in text.splitlines() if line.strip()])
            else:
                documents.append(json.loads(text))
    return documents or [[CANONICAL_RECORD, {**CANONICAL_RECORD, "id": "r2"}]]


JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "0", "-1", "1e400", "NaN", "\x00", "\ud800", "2026-11-02T09:00:00Z", "api_request"])
)
ANY_JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every node of a JSON value (its root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found.extend(_paths(child, (*prefix, index)))
    return found


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    """`value` with the node at `path` replaced by `new` (copies along the path only); `_DELETE` removes it."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if rest or new is not _DELETE:
            copy[head] = _replace(value[head], rest, new)
        else:
            del copy[head]
        return copy
    copy_list = list(value)
    if rest or new is not _DELETE:
        copy_list[head] = _replace(value[head], rest, new)
    else:
        del copy_list[head]
    return copy_list


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


_DELETE = object()


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """`document` with one to four of its nodes replaced by arbitrary JSON or an OTLP AnyValue of any shape,
    deleted, nulled, retyped, wrapped in a list, or nested up to thousands of levels deep."""
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        paths = _paths(document)
        operation = draw(st.sampled_from(["json", "delete", "null", "string", "list", "deep", "number", "any-value"]))
        # An AnyValue goes where OTLP has one (an attribute's value) at least half the time, where there is one.
        values = [path for path in paths if path and path[-1] == "value"]
        if operation == "any-value" and values and draw(st.booleans()):
            paths = values
        path = draw(st.sampled_from(paths))
        old = _get(document, path)
        if operation == "delete" and path:
            new: Any = _DELETE
        elif operation == "null":
            new = None
        elif operation == "string":
            new = json.dumps(old)
        elif operation == "list":
            new = [old]
        elif operation == "deep":  # written out by `_encode` (json.dumps itself stops at ~1,000 levels)
            levels = draw(st.sampled_from([40, 200, 400, 2_000, 100_000]))
            new = f"{_DEEP}{levels}:{draw(st.sampled_from(sorted(_NESTING)))}"
        elif operation == "any-value":  # an OTLP AnyValue of any shape, the spec's or not
            kind = draw(st.sampled_from(["arrayValue", "kvlistValue", "intValue", "stringValue", "bytesValue"]))
            inner = draw(ANY_JSON)
            new = {kind: draw(st.sampled_from([inner, {"values": inner}]))}
        elif operation == "number":
            new = draw(st.sampled_from([-1, 0, 2**63, 10**30, 1.5, -0.0, True]))
        else:
            new = draw(ANY_JSON)
        document = _replace(document, path, new)
    return document


_DEEP = "\x00deep:"
_DEEP_MARK = re.compile(r'"\\u0000deep:(\d+):(\w+)"')
_NESTING = {
    "list": ("[", "]"),
    "values": ('{"values": [', "]}"),
    "array-value": ('{"arrayValue": {"values": [', "]}}"),
    "kvlist-value": ('{"kvlistValue": {"values": [{"key": "k", "value": ', "}]}}"),
}


def _deep(match: re.Match[str]) -> str:
    levels, (opening, closing) = int(match.group(1)), _NESTING[match.group(2)]
    return opening * levels + "null" + closing * levels


def _encode(document: Any, *, lines: bool) -> bytes:
    if lines and isinstance(document, list):
        text = "".join(json.dumps(line) + "\n" for line in document)
    else:
        text = json.dumps(document)
    return _DEEP_MARK.sub(_deep, text).encode("utf-8", "surrogatepass")


@st.composite
def bodies(draw: st.DrawFn, source: str) -> tuple[bytes, bool]:
    """(body, ndjson) for a source: a mutated fixture, arbitrary JSON, or bytes cut or flipped."""
    documents = _documents(source)
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "json", "bytes", "cut"]))
    lines = draw(st.booleans())
    if kind == "json":
        return _encode(draw(ANY_JSON), lines=lines), lines
    body = _encode(draw(mutated(draw(st.sampled_from(documents)))), lines=lines)
    if kind == "bytes":
        position = draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        body = body[:position] + draw(st.binary(min_size=1, max_size=8)) + body[position + 1 :]
    elif kind == "cut":
        body = body[: draw(st.integers(min_value=0, max_value=len(body)))]
    return body, lines


@pytest.mark.parametrize("source", list(SOURCES))
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_parsers_only_reject(source: str, data: st.DataObject) -> None:
    parser = SOURCES[source][0]
    body, ndjson = data.draw(bodies(source))
    try:
        batch = parser(body, ndjson=ndjson)
    except PayloadError:
        return
    except RecursionError:
        return  # the ingest function maps it to 400 (checked below, through it)
    assert isinstance(batch, ParsedBatch)
    total = len(batch.records) + len(batch.rejected) + batch.skipped
    assert total >= 0


@pytest.mark.parametrize("source", list(SOURCES))
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_ingest_function_answers_only_4xx(source: str, data: st.DataObject, factory: sessionmaker[Session]) -> None:
    parser = SOURCES[source][0]
    body, ndjson = data.draw(bodies(source))
    try:
        result = ingest(
            body,
            format=next(f for f in FORMATS if f.parse is parser),
            ndjson=ndjson,
            identity=TokenIdentity(owner="acme"),
            fallback=attribution_from_headers({"x-vcs-repository-url-full": "https://github.com/acme/widgets"}),
            factory=factory,
            max_records=10_000,
        )
    except HTTPException as error:
        assert 400 <= error.status_code < 500, error.detail
        assert error.detail
        return
    assert isinstance(result, IngestResult)
    for rejection in result.rejected:
        assert rejection.error


@pytest.mark.parametrize("fixture", [path.name for path in GITHUB])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_parse_event_only_ignores(fixture: str, data: st.DataObject) -> None:
    event = fixture.split(".", 1)[0]
    document = data.draw(mutated(json.loads((FIXTURES / "github" / fixture).read_text())))
    try:
        payload = json.loads(_encode(document, lines=False).decode("utf-8", "surrogatepass"))
    except RecursionError:
        assume(False)  # no route hands parse_event what json.loads cannot build (the route test covers it)
    try:
        parsed = parse_event(event, payload, now=NOW)
    except Ignored as ignored:
        assert ignored.reason
        return
    assert isinstance(parsed, Event)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_the_signed_webhook_route_never_answers_5xx(client: TestClient, data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(GITHUB))
    event = path.name.split(".", 1)[0]
    body = _encode(data.draw(mutated(json.loads(path.read_text()))), lines=False)
    if data.draw(st.booleans()):
        position = data.draw(st.integers(min_value=0, max_value=max(len(body) - 1, 0)))
        body = body[:position] + data.draw(st.binary(min_size=1, max_size=4)) + body[position + 1 :]
    response = client.post("/github/webhook", content=body, headers=webhook_headers(event, body))
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 202, 400), response.text
    assert response.json()


# OTLP attribute values of any shape: the spec's AnyValue kinds holding anything, nested.
ANY_VALUE = st.deferred(
    lambda: st.one_of(
        JSON_LEAVES,
        st.fixed_dictionaries({"arrayValue": JSON_LEAVES | st.fixed_dictionaries({"values": _VALUES})}),
        st.fixed_dictionaries({"kvlistValue": JSON_LEAVES | st.fixed_dictionaries({"values": _KEY_VALUES})}),
        st.dictionaries(st.sampled_from(["intValue", "doubleValue", "stringValue", "boolValue"]), ANY_JSON, min_size=1),
    )
)
# A `values` list as the spec has it, or anything else in its place.
_VALUES = JSON_LEAVES | st.dictionaries(st.text(max_size=4), ANY_VALUE, max_size=2) | st.lists(ANY_VALUE, max_size=3)
_KEY_VALUES = _VALUES | st.lists(
    st.fixed_dictionaries({"key": st.text(max_size=4), "value": ANY_VALUE}) | ANY_VALUE, max_size=3
)


@pytest.mark.parametrize(("source", "fixture"), [("otlp-logs", "logs.json"), ("otlp-traces", "genai_spans.json")])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(value=ANY_VALUE, where=st.sampled_from(["item", "scope", "resource"]), key=st.sampled_from(["x", "model"]))
def test_any_otlp_attribute_value_rejects_at_most_its_record(
    source: str, fixture: str, value: Any, where: str, key: str
) -> None:
    """Every item of the request is still accounted for (stored, rejected by index or skipped), whatever one
    attribute holds; only a bad resource or scope attribute may make the whole request unreadable."""
    parser = SOURCES[source][0]
    document = json.loads((FIXTURES / "otlp" / fixture).read_text())
    expected = parser(json.dumps(document).encode())
    resource = document[next(iter(document))][0]
    scope = resource[next(key for key in resource if key.startswith("scope"))][0]
    item = scope[next(key for key in scope if key in ("logRecords", "spans"))][0]
    target = {"item": item, "scope": scope.setdefault("scope", {}), "resource": resource.setdefault("resource", {})}
    target[where].setdefault("attributes", []).insert(0, {"key": key, "value": value})
    try:
        batch = parser(json.dumps(document).encode())
    except PayloadError:
        assert where != "item"
        return
    total = len(batch.records) + len(batch.rejected) + batch.skipped
    assert total == len(expected.records) + len(expected.rejected) + expected.skipped
