"""OTLP/HTTP protobuf bodies, read with the official `opentelemetry-proto` message classes. Pure.

A protobuf request is decoded and turned into the very document the OTLP/JSON encoding defines (OTLP spec,
"JSON Protobuf Encoding": lowerCamelCase field names, 64-bit integers as strings, enums as integers, trace and span
ids as hex, AnyValue bytes as base64), so the JSON readers (`otlp`, `otlp_metrics`) read both encodings and the two
mean exactly the same thing.

The answer an OTLP exporter expects is an `Export*ServiceResponse`; `export_response` builds it with the
`partial_success` the spec asks for when some items were rejected.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from app.records import PayloadError

MEDIA_TYPE = "application/x-protobuf"


@dataclass(frozen=True, slots=True)
class Signal:
    name: str  # logs | traces | metrics
    request: type[Message]
    response: type[Message]
    rejected_field: str  # the count field of the response's partial_success


SIGNALS: dict[str, Signal] = {
    "logs": Signal(
        "logs",
        logs_service_pb2.ExportLogsServiceRequest,
        logs_service_pb2.ExportLogsServiceResponse,
        "rejected_log_records",
    ),
    "traces": Signal(
        "traces",
        trace_service_pb2.ExportTraceServiceRequest,
        trace_service_pb2.ExportTraceServiceResponse,
        "rejected_spans",
    ),
    "metrics": Signal(
        "metrics",
        metrics_service_pb2.ExportMetricsServiceRequest,
        metrics_service_pb2.ExportMetricsServiceResponse,
        "rejected_data_points",
    ),
}

# The metric kinds whose data points the metrics reader walks (DESIGN §3); the count covers every kind.
_METRIC_KINDS = ("sum", "gauge", "histogram", "exponential_histogram", "summary")


def is_protobuf(content_type: str) -> bool:
    """A protobuf body (`application/x-protobuf`, what OTLP exporters send by default), by its Content-Type."""
    return content_type.split(";", 1)[0].strip().lower() in {MEDIA_TYPE, "application/protobuf"}


def wants_protobuf(accept: str, protobuf_body: bool) -> bool:
    """Answer with an `Export*ServiceResponse`: when Accept asks for it, or to a protobuf request that did not ask
    for JSON (OTLP/HTTP: the response uses the request's encoding)."""
    accept = accept.lower()
    return MEDIA_TYPE in accept or (protobuf_body and "json" not in accept)


def decode(body: bytes, signal: str) -> Message:
    """The request message of `signal`; a body that is not one is a PayloadError (the request gets a 400)."""
    message = SIGNALS[signal].request()
    try:
        message.ParseFromString(body)
    except (DecodeError, RecursionError, ValueError) as error:
        raise PayloadError(f"body is not a protobuf OTLP {signal} request: {error}") from None
    return message


def count_items(message: Any, signal: str) -> int:
    """How many items (log records, spans, data points) the request holds: what the JSON batch counter counts, so
    the record limit holds for protobuf bodies before any item is converted."""
    if signal == "logs":
        return sum(len(scope.log_records) for block in message.resource_logs for scope in block.scope_logs)
    if signal == "traces":
        return sum(len(scope.spans) for block in message.resource_spans for scope in block.scope_spans)
    return sum(
        len(getattr(metric, kind).data_points)
        for block in message.resource_metrics
        for scope in block.scope_metrics
        for metric in scope.metrics
        for kind in _METRIC_KINDS
        if metric.HasField(kind)
    )


def to_json(message: Message) -> bytes:
    """The OTLP/JSON document of `message`, as bytes the JSON readers take."""
    document = MessageToDict(message, use_integers_for_enums=True)
    for item in _items_with_ids(document):
        for key in ("traceId", "spanId", "parentSpanId"):
            if isinstance(item.get(key), str):
                item[key] = _hex(item[key])
        for link in item.get("links") or ():
            for key in ("traceId", "spanId"):
                if isinstance(link.get(key), str):
                    link[key] = _hex(link[key])
    # ensure_ascii=False keeps the text as sent; a NUL still appears as \u0000, which the ingest's text check sees.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _items_with_ids(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """Log records and spans: where the protobuf encoding has bytes ids that OTLP/JSON writes as hex."""
    for resources, scopes, items in (
        ("resourceLogs", "scopeLogs", "logRecords"),
        ("resourceSpans", "scopeSpans", "spans"),
    ):
        for block in document.get(resources) or ():
            for scope in block.get(scopes) or ():
                yield from scope.get(items) or ()


def _hex(value: str) -> str:
    # MessageToDict writes bytes as base64; OTLP/JSON (and the readers' dedupe keys) use lower-case hex.
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return value


def export_response(signal: str, *, rejected: int, error_message: str) -> bytes:
    """The `Export*ServiceResponse` of `signal`: empty when all was accepted, else `partial_success` with the
    rejected count and a message saying why (OTLP/HTTP "Partial Success")."""
    spec = SIGNALS[signal]
    response = spec.response()
    if rejected or error_message:
        partial = response.partial_success
        setattr(partial, spec.rejected_field, rejected)
        partial.error_message = error_message
    return bytes(response.SerializeToString())
