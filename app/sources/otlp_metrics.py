"""OTLP/HTTP metrics → usage records: Claude Code's cost and token counters and GenAI token histograms. Pure.

Read (DESIGN §3), names as Claude Code's monitoring docs and the GenAI semantic conventions give them:
- `claude_code.cost.usage` (USD, a sum; `model` attribute) → a record whose cost is the point's value;
- `claude_code.token.usage` (a sum; `type` = input, output, cacheRead, cacheCreation; `model`) → a record with
  that one token count and a cost of zero, because the same calls' cost is already in `claude_code.cost.usage`;
- `gen_ai.client.token.usage` (a histogram; `gen_ai.token.type` = input or output; the point's `sum` is the
  token count) → a record priced from its tokens.
Every other metric's points are skipped.

One record per series and interval: the series is the metric with its resource and point attributes; the record
id is the series with the interval's start and end, so a redelivered point is a duplicate. Delta points (Claude
Code's default) are complete as they are; a cumulative point is the total since its start time, so the parser
marks it (`ParsedBatch.cumulative`) and the store turns it into what it adds over the series' previous point.

The rejection index is the data point's position in document order across the request, as the batch counter
counts them.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from app.parsing import to_decimal
from app.records import CumulativePoint, ParsedBatch, UsageRecord
from app.sources.otlp_json import (
    Item,
    attributes_of,
    attribution_of,
    first,
    lookup,
    nanos_time,
    read_items,
    text_of,
)

COST = "claude_code.cost.usage"
TOKENS = "claude_code.token.usage"
GENAI_TOKENS = "gen_ai.client.token.usage"
# Claude Code's `type` values and GenAI's `gen_ai.token.type` values → our token fields (DESIGN §2 convention:
# Claude Code's input excludes cache reads and writes, as Anthropic's usage block does).
_CLAUDE_TYPES = {
    "input": "input_tokens",
    "output": "output_tokens",
    "cacheRead": "cache_read_tokens",
    "cacheCreation": "cache_write_tokens",
}
_GENAI_TYPES = {"input": "input_tokens", "output": "output_tokens"}
# Every kind of point, so that skipped metrics count as the batch counter counts them.
KINDS = ("sum", "gauge", "histogram", "exponentialHistogram", "summary")
DELTA, CUMULATIVE = 1, 2  # AggregationTemporality


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    batch = ParsedBatch()
    position = 0
    for item in read_items(body, ndjson, ("resourceMetrics", "scopeMetrics", "metrics"), batch):
        metric = item.value
        points = _points(metric)
        if not isinstance(metric, dict):
            batch.reject(position, "metric is not an object")
            position += 1
            continue
        name = metric.get("name")
        reader = _READERS.get(name) if isinstance(name, str) else None
        for point in points:
            if reader is None:
                batch.skipped += 1
            else:
                try:
                    record = reader(item, metric, point, batch)
                except ValueError as error:
                    batch.reject(position, f"{name}: {error}")
                else:
                    if record is None:
                        batch.skipped += 1
                    else:
                        batch.add(position, record)
            position += 1
    return batch


def _points(metric: Any) -> list[Any]:
    if not isinstance(metric, dict):
        return [None]
    points: list[Any] = []
    for kind in KINDS:
        data = metric.get(kind)
        if isinstance(data, dict) and isinstance(data.get("dataPoints"), list):
            points.extend(data["dataPoints"])
    return points


def _temporality(data: Any) -> int:
    value = data.get("aggregationTemporality") if isinstance(data, dict) else None
    if value in (DELTA, "AGGREGATION_TEMPORALITY_DELTA", str(DELTA)):
        return DELTA
    if value in (CUMULATIVE, "AGGREGATION_TEMPORALITY_CUMULATIVE", str(CUMULATIVE)):
        return CUMULATIVE
    # UNSPECIFIED "MUST NOT be used": guessing delta could count a running total again at every export.
    raise ValueError("aggregationTemporality is neither delta (1) nor cumulative (2)")


def _number(point: dict[str, Any]) -> Decimal:
    for key in ("asDouble", "asInt"):
        if point.get(key) is not None:
            value = to_decimal(point[key])
            if value is None or not value.is_finite() or value < 0:
                raise ValueError(f"{key} is not a count or amount of at least 0: {point[key]!r}")
            return value
    raise ValueError("the point has no value (asDouble or asInt)")


def _series(item: Item, metric: dict[str, Any], attributes: dict[str, Any]) -> str:
    """The series' key: a metric's stream is its name with its resource, scope and point attributes."""
    canonical = json.dumps([metric.get("name"), item.resource, item.scope, attributes], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _claude(item: Item, metric: dict[str, Any], point: Any, batch: ParsedBatch) -> UsageRecord | None:
    if metric.get("name") == COST:
        return _record(item, metric, point, batch, field="cost_usd", provider="anthropic", agent="claude-code")
    attributes = attributes_of(point.get("attributes") if isinstance(point, dict) else None, "dataPoint")
    kind = attributes.get("type")
    field = _CLAUDE_TYPES.get(kind) if isinstance(kind, str) else None
    if field is None:
        raise ValueError(f"type {kind!r} is not one of {', '.join(_CLAUDE_TYPES)}")
    return _record(item, metric, point, batch, field=field, provider="anthropic", agent="claude-code")


def _genai(item: Item, metric: dict[str, Any], point: Any, batch: ParsedBatch) -> UsageRecord | None:
    attributes = attributes_of(point.get("attributes") if isinstance(point, dict) else None, "dataPoint")
    kind = attributes.get("gen_ai.token.type")
    field = _GENAI_TYPES.get(kind) if isinstance(kind, str) else None
    if field is None:
        raise ValueError(f"gen_ai.token.type {kind!r} is not input or output")
    provider = text_of(first(attributes, ("gen_ai.provider.name", "gen_ai.system")))
    service = text_of(item.resource.get("service.name"))
    agent = service if service and not service.startswith("unknown_service") else None
    return _record(
        item, metric, point, batch, field=field, provider=provider.lower() if provider else None, agent=agent
    )


def _record(
    item: Item, metric: dict[str, Any], point: Any, batch: ParsedBatch, *, field: str, provider: str | None,
    agent: str | None,
) -> UsageRecord | None:  # fmt: skip
    if not isinstance(point, dict):
        raise ValueError("data point is not an object")
    data = next((metric[k] for k in KINDS if isinstance(metric.get(k), dict)), None)
    temporality = _temporality(data)
    attributes = attributes_of(point.get("attributes"), "dataPoint")
    if metric.get("histogram") is data:
        if point.get("sum") is None:
            raise ValueError("the histogram point has no sum")
        value = to_decimal(point["sum"])
        if value is None or not value.is_finite() or value < 0:
            raise ValueError(f"sum is not a count of at least 0: {point['sum']!r}")
    else:
        value = _number(point)
    end = nanos_time(point.get("timeUnixNano"), "timeUnixNano")
    if end is None:
        raise ValueError("timeUnixNano is missing")
    start = nanos_time(point.get("startTimeUnixNano"), "startTimeUnixNano")
    if value == 0 and temporality == DELTA:
        return None  # an interval without usage
    model = text_of(first(attributes, ("model", "gen_ai.response.model", "gen_ai.request.model")))
    if model is None:
        raise ValueError("model attribute is missing")
    series = _series(item, metric, attributes)
    start_nanos, end_nanos = int(point.get("startTimeUnixNano") or 0), int(point["timeUnixNano"])
    record_id = f"m:{series}:{start_nanos}:{end_nanos}"
    amounts: dict[str, Any] = {"cost_usd": Decimal(0)} if metric.get("name") == TOKENS else {}
    if field == "cost_usd":
        amounts["cost_usd"] = value
    else:
        if value != value.to_integral_value():
            raise ValueError(f"a token count must be whole, got {value}")
        amounts[field] = int(value)
    if temporality == CUMULATIVE:
        batch.cumulative[record_id] = CumulativePoint(series, start_nanos, end_nanos, value, field)
    return UsageRecord(
        id=record_id,
        source="otlp-metrics",
        timestamp=start or end,
        model=model,
        provider=provider,
        attribution=attribution_of(item, attributes),
        actor=text_of(lookup(item, attributes, "user.email", "user.id")),
        agent=agent,
        session_id=text_of(lookup(item, attributes, "session.id")),
        **amounts,
    )


_READERS = {COST: _claude, TOKENS: _claude, GENAI_TOKENS: _genai}
