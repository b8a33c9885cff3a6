"""One pure parser per usage format; each turns a source's own payload into canonical records.

`FORMATS` is the one list of what Tokentrail reads: the ingest routes, their OpenAPI summaries, the metrics label
and the shape the batch counter uses all come from it, so a new format is one parser and one line here. The
importer (`app.local.transcripts`) names the transcript formats it reads from disk by the same `source`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.batch_size import Shape
from app.records import ParsedBatch

Parser = Callable[..., ParsedBatch]


@dataclass(frozen=True, slots=True)
class Format:
    path: str  # the ingest route
    source: str  # the metrics label, and the `source` the parser writes on its records
    parse: Parser
    shape: Shape | None  # how to count its items before parsing (None: counted after parsing only)
    summary: str  # the OpenAPI summary
    ndjson: bool = False  # whether the OpenAPI schema lists an NDJSON body
    otlp_signal: str | None = None  # an OTLP/HTTP route (logs, traces, metrics): it also reads protobuf bodies
    # The parser of the decoded items (`parsing.load_items`), for a format that has one: ingest then decodes a
    # small body once, counts its items and parses them, instead of counting on the raw text first.
    parse_items: Callable[[list[Any]], ParsedBatch] | None = None


def _formats() -> tuple[Format, ...]:
    # Imported here so that `app.sources.<format>` modules may import from this package without a cycle.
    from app.sources import (
        canonical,
        claude_code,
        codex,
        gemini,
        helicone,
        langfuse,
        litellm,
        otlp,
        otlp_metrics,
        portkey,
    )

    return (
        Format(
            "/v1/usage",
            "api",
            canonical.parse,
            Shape.ITEMS,
            'Canonical usage records (JSON array, {"records": [...]}, or NDJSON)',
            ndjson=True,
            parse_items=canonical.parse_items,
        ),
        Format(
            "/v1/ingest/litellm",
            "litellm",
            litellm.parse,
            Shape.ITEMS,
            "LiteLLM generic_api callback body or /spend/logs rows",
        ),
        Format(
            "/v1/ingest/otlp/v1/logs",
            "otlp",
            otlp.parse_logs,
            Shape.OTLP_LOGS,
            "OTLP/HTTP logs, JSON or protobuf (Claude Code, Codex and Gemini CLI events)",
            otlp_signal="logs",
        ),
        Format(
            "/v1/ingest/otlp/v1/traces",
            "otlp",
            otlp.parse_traces,
            Shape.OTLP_TRACES,
            "OTLP/HTTP traces, JSON or protobuf (GenAI spans)",
            otlp_signal="traces",
        ),
        Format(
            "/v1/ingest/otlp/v1/metrics",
            "otlp-metrics",
            otlp_metrics.parse,
            Shape.OTLP_METRICS,
            "OTLP/HTTP metrics, JSON or protobuf (claude_code.cost.usage and token.usage, gen_ai.client.token.usage)",
            otlp_signal="metrics",
        ),
        Format(
            "/v1/ingest/claude-code",
            "claude-code",
            claude_code.parse,
            Shape.TRANSCRIPT,
            "Claude Code transcript JSONL lines",
            ndjson=True,
        ),
        Format("/v1/ingest/codex", "codex", codex.parse, Shape.TRANSCRIPT, "Codex rollout JSONL", ndjson=True),
        Format(
            "/v1/ingest/gemini",
            "gemini",
            gemini.parse,
            None,
            "Gemini CLI chat files (the JSON document or its JSON lines)",
            ndjson=True,
        ),
        Format(
            "/v1/ingest/langfuse",
            "langfuse",
            langfuse.parse,
            Shape.ITEMS,
            "Langfuse observations (a v2 API page or an array)",
        ),
        Format(
            "/v1/ingest/portkey", "portkey", portkey.parse, Shape.ITEMS, "Portkey log export rows or gateway log bodies"
        ),
        Format("/v1/ingest/helicone", "helicone", helicone.parse, Shape.ITEMS, "Helicone query-API rows"),
    )


FORMATS: tuple[Format, ...] = _formats()
