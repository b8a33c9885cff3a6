"""OpenTelemetry's Python SDK exporting to a real server, configured only through the environment: the variables of
docs/recipes/otel.env, and `opentelemetry-instrument` (the SDK's own zero-code set-up) to read them.

OpenTelemetry Python ships an OTLP/HTTP JSON exporter, `opentelemetry-exporter-otlp-json-http` (registered as
`otlp_json_http`); its standard `otlp` exporter sends protobuf, which Tokentrail reads too. The endpoint rules the
README explains are checked here too: the base endpoint gets the signal paths appended by the SDK, the per-signal
variables take full paths, and a full path in the base endpoint is a 404 that stores nothing.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from app.money import to_nanousd
from tests.clients.conftest import (
    BRANCH,
    DRIVERS,
    REPO,
    ClientRun,
    RecordingProxy,
    Shell,
    recipe,
    wait_for_records,
)
from tests.conftest import LiveServer


def export(shell: Shell, server: str, token: str, tmp_path: Path, *, then: str = "") -> tuple[ClientRun, Path]:
    """Source the recipe (pointed at `server`), run `then` (changes to what the recipe set), then the instrumented
    program. Returns its run and the file that names the span and event it emitted."""
    env_file = tmp_path / "otel.env"
    env_file.write_text(recipe("otel.env", server))
    ids = tmp_path / "ids.json"
    run = shell.run(
        f". {env_file}\n{then}\nopentelemetry-instrument python {DRIVERS / 'otel_emit.py'} {ids}",
        env={"TOKENTRAIL_TOKEN": token},
    )
    return run, ids


def export_failures(run: ClientRun) -> list[tuple[int, str]]:
    """(status, reason) of each batch the SDK's exporters logged as refused."""
    return [
        (int(status), reason)
        for status, reason in re.findall(r"Failed to export \w+ batch code: (\d+), reason: (.*)", run.stderr)
    ]


def assert_span_and_event_stored(shell: Shell, ids_file: Path, stored: Any) -> None:
    ids = json.loads(ids_file.read_text())
    records = wait_for_records(stored, set(ids.values()))
    span, event = records[ids["span"]], records[ids["event"]]
    for record in (span, event):
        assert record["source"] == "otlp"
        # Attribution from OTEL_RESOURCE_ATTRIBUTES, which `tokentrail env` exported.
        assert (record["repo"], record["branch"], record["commit"]) == (REPO, BRANCH, shell.checkout.commit)
    # The span's input_tokens include its cache tokens (semantic conventions); Tokentrail's exclude them.
    assert (span["input_tokens"], span["cache_read_tokens"], span["cache_write_tokens"], span["output_tokens"]) == (
        300,
        1000,
        200,
        50,
    )
    assert span["cost_nanousd"] == to_nanousd(Decimal("0.0027"))
    assert (span["provider"], span["model"]) == ("anthropic", "claude-sonnet-4-6")
    assert (event["input_tokens"], event["cache_read_tokens"], event["output_tokens"]) == (25, 300, 7)
    assert event["cost_nanousd"] == to_nanousd(Decimal("0.000273"))


def test_json_exporters_configured_by_the_recipe_deliver_spans_and_logs(
    shell: Shell, live_server: LiveServer, token: str, stored: Any, tmp_path: Path
) -> None:
    run, ids = export(shell, live_server.url, token, tmp_path)
    run.check()
    assert export_failures(run) == []
    assert_span_and_event_stored(shell, ids, stored)


def test_per_signal_endpoints_take_the_full_paths(
    shell: Shell, live_server: LiveServer, token: str, stored: Any, tmp_path: Path
) -> None:
    base = f"{live_server.url}/v1/ingest/otlp"
    run, ids = export(
        shell,
        live_server.url,
        token,
        tmp_path,
        then=(
            "unset OTEL_EXPORTER_OTLP_ENDPOINT\n"
            f"export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={base}/v1/traces\n"
            f"export OTEL_EXPORTER_OTLP_LOGS_ENDPOINT={base}/v1/logs"
        ),
    )
    run.check()
    assert export_failures(run) == []
    assert_span_and_event_stored(shell, ids, stored)


def test_a_full_signal_path_in_the_base_endpoint_is_a_404_that_stores_nothing(
    shell: Shell, recording_proxy: RecordingProxy, token: str, stored: Any, tmp_path: Path
) -> None:
    full_path = f"{recording_proxy.url}/v1/ingest/otlp/v1/traces"
    run, _ = export(shell, recording_proxy.url, token, tmp_path, then=f"export OTEL_EXPORTER_OTLP_ENDPOINT={full_path}")
    run.check()
    # The SDK appends the signal's path to the base, whatever the base already ends with.
    assert sorted((exchange.path, exchange.status) for exchange in recording_proxy.exchanges) == [
        ("/v1/ingest/otlp/v1/traces/v1/logs", 404),
        ("/v1/ingest/otlp/v1/traces/v1/traces", 404),
    ]
    assert [status for status, _ in export_failures(run)] == [404, 404]
    # The program has exited, so every export was answered: nothing more can arrive.
    assert stored() == {}


def test_default_protobuf_exporters_deliver_spans_and_logs(
    shell: Shell, recording_proxy: RecordingProxy, token: str, stored: Any, tmp_path: Path
) -> None:
    """The SDK's standard exporters (`otlp` over `http/protobuf`, gzip-compressed) with the recipe's endpoint and
    headers: each batch is stored, and answered with the OTLP export response (read at a pass-through in front of
    the server, since an exporter logs only failures)."""
    run, ids = export(
        shell,
        recording_proxy.url,
        token,
        tmp_path,
        then=(
            "export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf\n"
            "export OTEL_EXPORTER_OTLP_COMPRESSION=gzip\n"
            "export OTEL_TRACES_EXPORTER=otlp\n"
            "export OTEL_LOGS_EXPORTER=otlp"
        ),
    )
    run.check()
    assert export_failures(run) == []
    exchanges = sorted(recording_proxy.exchanges, key=lambda exchange: exchange.path)
    assert [(exchange.path, exchange.content_type, exchange.status) for exchange in exchanges] == [
        ("/v1/ingest/otlp/v1/logs", "application/x-protobuf", 200),
        ("/v1/ingest/otlp/v1/traces", "application/x-protobuf", 200),
    ]
    logs, traces = (exchange.answer for exchange in exchanges)
    # Everything was accepted: no partial_success in either answer.
    assert not ExportLogsServiceResponse.FromString(logs).HasField("partial_success")
    assert not ExportTraceServiceResponse.FromString(traces).HasField("partial_success")
    assert_span_and_event_stored(shell, ids, stored)
