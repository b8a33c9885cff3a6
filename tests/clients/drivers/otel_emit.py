"""Run in the clients' environment under `opentelemetry-instrument`, which configures OpenTelemetry's Python SDK
from the environment alone (OTEL_* variables, as docs/recipes/otel.env sets them): one GenAI inference span and
one Claude Code style `api_request` log event, as an instrumented agent emits them. The span's and event's ids go to
the file named by the first argument as JSON; the SDK exports both when the program exits.

    opentelemetry-instrument python otel_emit.py IDS.json
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber, get_logger

SPAN_USAGE = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-6",
    "gen_ai.response.model": "claude-sonnet-4-6",
    # Semantic conventions: input_tokens include the cache reads and writes.
    "gen_ai.usage.input_tokens": 1500,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.cache_creation.input_tokens": 200,
    "gen_ai.usage.output_tokens": 50,
    "gen_ai.usage.cost": 0.0027,
}
EVENT = {
    "event.name": "api_request",
    "model": "claude-sonnet-4-6",
    "input_tokens": 25,
    "output_tokens": 7,
    "cache_read_tokens": 300,
    "cache_creation_tokens": 0,
    "cost_usd": 0.000273,
    "event.sequence": 1,
}


def main(out: Path) -> None:
    session = str(uuid.uuid4())
    with trace.get_tracer("tokentrail.clients").start_as_current_span("chat claude-sonnet-4-6") as span:
        span.set_attributes({**SPAN_USAGE, "gen_ai.response.id": f"msg_{uuid.uuid4().hex[:24]}"})
        context = span.get_span_context()
    get_logger("tokentrail.clients").emit(
        timestamp=time.time_ns(),
        severity_number=SeverityNumber.INFO,
        body="claude_code.api_request",
        event_name="claude_code.api_request",
        attributes={**EVENT, "session.id": session},
    )
    ids = {
        "span": f"{context.trace_id:032x}:{context.span_id:016x}",
        "event": f"{session}:{EVENT['event.sequence']}",
    }
    out.write_text(json.dumps(ids))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
