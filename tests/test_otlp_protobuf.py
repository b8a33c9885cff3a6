"""OTLP/HTTP protobuf: the same content means the same records as OTLP/JSON, through the parsers and the routes."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import httpx
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceResponse

from app.main import create_app
from app.settings import Settings
from app.sources import otlp
from tests.conftest import FIXTURES
from tests.ingest_support import usage_of
from tests.otlp_encoding import to_protobuf

VCS = {"x-vcs-repository-url-full": "https://github.com/acme/widgets", "x-vcs-ref-head-name": "feat/otlp"}
PROTOBUF = {"Content-Type": "application/x-protobuf"}


def test_a_protobuf_request_gets_the_export_response_and_json_on_request(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = (FIXTURES / "otlp/claude_code_api_request.json").read_bytes()
    expected = otlp.parse_logs(body)
    encoded = to_protobuf(body, "logs")
    headers = {**auth, **VCS, **PROTOBUF, "Content-Encoding": "gzip"}
    response = client.post("/v1/ingest/otlp/v1/logs", content=gzip.compress(encoded), headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    answer = ExportLogsServiceResponse.FromString(response.content)
    assert not answer.HasField("partial_success")  # everything was accepted
    totals = usage_of(client, auth)
    assert totals["records"] == len(expected.records)
    assert Decimal(totals["cost_usd"]) == sum(r.cost_usd or 0 for r in expected.records)
    # The JSON encoding of the same content is the same records: all duplicates. Accept asks for our JSON answer.
    accept_json = {**headers, "Accept": "application/json"}
    again = client.post("/v1/ingest/otlp/v1/logs", content=gzip.compress(encoded), headers=accept_json)
    assert again.status_code == 200
    assert again.json()["duplicates"] == len(expected.records)
    as_json = client.post("/v1/ingest/otlp/v1/logs", content=body, headers={**auth, **VCS})
    assert as_json.json()["accepted"] == 0 and as_json.json()["duplicates"] == len(expected.records)


def test_rejected_points_are_the_partial_success_of_the_export_response(
    client: TestClient, auth: dict[str, str]
) -> None:
    document = json.loads((FIXTURES / "otlp/claude_code_metrics.json").read_bytes())
    cost = document["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][1]
    cost["sum"]["dataPoints"][0]["attributes"] = [
        a for a in cost["sum"]["dataPoints"][0]["attributes"] if a["key"] != "model"
    ]
    response = client.post(
        "/v1/ingest/otlp/v1/metrics", content=to_protobuf(document, "metrics"), headers={**auth, **PROTOBUF}
    )
    assert response.status_code == 200, response.text
    answer = ExportMetricsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_data_points == 1
    assert "model attribute is missing" in answer.partial_success.error_message
    # A JSON request asking for protobuf gets it too.
    asked = client.post(
        "/v1/ingest/otlp/v1/metrics", json=document, headers={**auth, "Accept": "application/x-protobuf"}
    )
    assert ExportMetricsServiceResponse.FromString(asked.content).partial_success.rejected_data_points == 1
    assert usage_of(client, auth)["records"] == 4  # the four token points


def test_the_record_limit_holds_for_protobuf_before_conversion(settings: Settings, auth: dict[str, str]) -> None:
    document = json.loads((FIXTURES / "otlp/claude_code_api_request.json").read_bytes())
    records = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    document["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = records * 3
    limited = settings.model_copy(update={"max_batch_records": len(records) * 3 - 1})
    with TestClient(create_app(limited)) as client:
        body = to_protobuf(document, "logs")
        response = client.post("/v1/ingest/otlp/v1/logs", content=body, headers={**auth, **VCS, **PROTOBUF})
        assert response.status_code == 413, response.text
        assert usage_of(client, auth)["records"] == 0


def test_a_body_that_is_not_protobuf_is_a_400(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/ingest/otlp/v1/traces", content=b"\xff\xff\xff", headers={**auth, **PROTOBUF})
    assert response.status_code == 400
    assert "not a protobuf OTLP traces request" in response.json()["detail"]


def test_live_server_reads_gzipped_protobuf(live_server: Any, token: str) -> None:
    body = to_protobuf((FIXTURES / "otlp/genai_spans.json").read_bytes(), "traces")
    expected = otlp.parse_traces((FIXTURES / "otlp/genai_spans.json").read_bytes())
    headers = {"Authorization": f"Bearer {token}", **VCS, **PROTOBUF, "Content-Encoding": "gzip"}
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        response = http.post("/v1/ingest/otlp/v1/traces", content=gzip.compress(body), headers=headers)
        totals = http.get("/v1/repos/acme/widgets/usage", headers={"Authorization": f"Bearer {token}"}).json()
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    assert totals["records"] == len(expected.records) > 0
