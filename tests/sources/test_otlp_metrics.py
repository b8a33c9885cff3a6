"""The OTLP metrics reader (pure): which points are usage, how they become records, and what is rejected."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

from app.batch_size import Shape, count_items
from app.sources import otlp_metrics
from tests.conftest import FIXTURES

BODY = (FIXTURES / "otlp/claude_code_metrics.json").read_bytes()


def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(BODY)
    return document


def _metrics(document: dict[str, Any]) -> list[dict[str, Any]]:
    metrics: list[dict[str, Any]] = document["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
    return metrics


def test_claude_code_counters_are_one_record_per_series_and_interval() -> None:
    batch = otlp_metrics.parse(BODY)
    assert (len(batch.records), batch.skipped, batch.rejected) == (5, 1, [])
    cost, *tokens = batch.records
    assert cost.cost_usd == Decimal("0.0421") and cost.total_tokens == 0
    assert [r.cost_usd for r in tokens] == [Decimal(0)] * 4  # the cost is the cost counter's alone
    assert [(r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens) for r in tokens] == [
        (1200, 0, 0, 0),
        (0, 350, 0, 0),
        (0, 0, 24000, 0),
        (0, 0, 0, 1800),
    ]
    for record in batch.records:
        assert (record.source, record.agent, record.provider) == ("otlp-metrics", "claude-code", "anthropic")
        assert record.attribution.repo == "acme/widgets"
        assert record.session_id == "7d2e4c1a-3b5f-4e8d-9a6c-0f1e2d3c4b5a"
        assert record.actor == "dev@acme.example"
    assert len({record.id for record in batch.records}) == 5
    assert batch.cumulative == {}  # Claude Code's default is delta
    assert otlp_metrics.parse(BODY).records == batch.records  # the ids do not depend on anything but the content


def test_the_owner_and_name_attribute_when_the_url_is_absent() -> None:
    document = _document()
    for metric in _metrics(document):
        for point in metric["sum"]["dataPoints"]:
            point["attributes"] = [a for a in point["attributes"] if a["key"] != "vcs.repository.url.full"]
    batch = otlp_metrics.parse(json.dumps(document).encode())
    assert {record.attribution.repo for record in batch.records} == {"acme/widgets"}


def test_bad_points_are_rejected_by_their_index_and_the_rest_read() -> None:
    document = _document()
    cost, tokens = _metrics(document)[1], _metrics(document)[2]
    cost["sum"]["dataPoints"][0]["asDouble"] = -1
    tokens["sum"]["dataPoints"][1]["attributes"].append({"key": "type", "value": {"stringValue": "x"}})
    tokens["sum"]["dataPoints"][1]["attributes"] = [
        a
        for a in tokens["sum"]["dataPoints"][1]["attributes"]
        if a["key"] != "type" or a["value"]["stringValue"] == "x"
    ]
    tokens["sum"]["dataPoints"][2]["asDouble"] = 12.5
    batch = otlp_metrics.parse(json.dumps(document).encode())
    assert [(r.index, r.error.split(":")[0]) for r in batch.rejected] == [
        (1, "claude_code.cost.usage"),
        (3, "claude_code.token.usage"),
        (4, "claude_code.token.usage"),
    ]
    assert "-1" in batch.rejected[0].error and "'x'" in batch.rejected[1].error
    assert "whole" in batch.rejected[2].error
    assert len(batch.records) == 2


def test_unspecified_temporality_is_refused_rather_than_guessed() -> None:
    document = _document()
    del _metrics(document)[1]["sum"]["aggregationTemporality"]
    batch = otlp_metrics.parse(json.dumps(document).encode())
    assert [r.index for r in batch.rejected] == [1]
    assert "aggregationTemporality" in batch.rejected[0].error


def test_cumulative_points_are_marked_for_the_store() -> None:
    document = _document()
    for metric in _metrics(document):
        metric["sum"]["aggregationTemporality"] = 2
    batch = otlp_metrics.parse(json.dumps(document).encode())
    assert set(batch.cumulative) == {record.id for record in batch.records}
    point = batch.cumulative[batch.records[1].id]
    assert (point.field, point.value) == ("input_tokens", Decimal(1200))
    assert point.time_nanos > point.start_nanos > 0


def test_genai_histograms_count_their_sum() -> None:
    metric = {
        "name": "gen_ai.client.token.usage",
        "histogram": {
            "aggregationTemporality": 1,
            "dataPoints": [
                {
                    "attributes": [
                        {"key": "gen_ai.token.type", "value": {"stringValue": kind}},
                        {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o-2024-08-06"}},
                        {"key": "gen_ai.provider.name", "value": {"stringValue": "OpenAI"}},
                    ],
                    "startTimeUnixNano": "1793613600000000000",
                    "timeUnixNano": "1793613660000000000",
                    "count": "2",
                    "sum": total,
                }
                for kind, total in (("input", 900.0), ("output", 120.0))
            ],
        },
    }
    document = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [metric]}]}]}
    batch = otlp_metrics.parse(json.dumps(document).encode())
    assert [(r.input_tokens, r.output_tokens, r.cost_usd, r.provider) for r in batch.records] == [
        (900, 0, None, "openai"),
        (0, 120, None, "openai"),
    ]


def test_the_batch_counter_counts_every_data_point_of_every_kind() -> None:
    document = _document()
    extra = copy.deepcopy(_metrics(document)[0])
    extra["gauge"] = extra.pop("sum")
    _metrics(document).append(extra)
    body = json.dumps(document).encode()
    batch = otlp_metrics.parse(body)
    total = len(batch.records) + len(batch.rejected) + batch.skipped
    assert count_items(body, shape=Shape.OTLP_METRICS, ndjson=False, limit=100) == total == 7
    assert count_items(body, shape=Shape.OTLP_METRICS, ndjson=False, limit=3) == 4  # stops past the limit
