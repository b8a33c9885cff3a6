"""OTLP protobuf decoding (pure): the same content as protobuf and as JSON gives the same records, and the export
response carries the rejected count."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from app.records import ParsedBatch, PayloadError
from app.sources import otlp, otlp_metrics, otlp_proto
from tests.conftest import FIXTURES
from tests.otlp_encoding import to_protobuf

# copilot_span_tree.json is left out: its readable ids ("t000…1") are not hex, so protobuf cannot carry them.
CASES = [
    ("otlp/logs.json", "logs", otlp.parse_logs),
    ("otlp/claude_code_api_request.json", "logs", otlp.parse_logs),
    ("otlp/claude_code_session_events.json", "logs", otlp.parse_logs),
    ("otlp/trace.json", "traces", otlp.parse_traces),
    ("otlp/genai_spans.json", "traces", otlp.parse_traces),
    ("otlp/anthropic_span_of_a_litellm_call.json", "traces", otlp.parse_traces),
    ("otlp/claude_code_metrics.json", "metrics", otlp_metrics.parse),
]


def _meaning(batch: ParsedBatch) -> tuple[Any, ...]:
    return (batch.records, batch.positions, batch.rejected, batch.skipped, batch.cumulative, batch.commits)


@pytest.mark.parametrize(("fixture", "signal", "parse"), CASES, ids=[c[0] for c in CASES])
def test_protobuf_and_json_of_the_same_content_are_the_same_records(fixture: str, signal: str, parse: Any) -> None:
    body = (FIXTURES / fixture).read_bytes()
    from_json = parse(body)
    message = otlp_proto.decode(to_protobuf(body, signal), signal)
    from_protobuf = parse(otlp_proto.to_json(message))
    assert _meaning(from_protobuf) == _meaning(from_json)
    assert otlp_proto.count_items(message, signal) == len(from_json.records) + len(from_json.rejected) + (
        from_json.skipped
    )


def test_a_body_that_is_not_a_request_is_a_payload_error() -> None:
    with pytest.raises(PayloadError, match="not a protobuf OTLP logs request"):
        otlp_proto.decode(b"\x0a\xff", "logs")


def test_the_export_response_says_how_many_were_rejected_and_why() -> None:
    assert otlp_proto.export_response("traces", rejected=0, error_message="") == b""
    answer = ExportTraceServiceResponse.FromString(
        otlp_proto.export_response("traces", rejected=2, error_message="0: model is missing")
    )
    assert (answer.partial_success.rejected_spans, answer.partial_success.error_message) == (2, "0: model is missing")
