"""What `tokentrail import gemini|copilot` sends of a Gemini CLI chat file or a Copilot OTel file: usage only.

- Gemini CLI (`~/.gemini/tmp/<project>/chats/`, the legacy JSON document or the current JSON lines): the
  metadata record (`sessionId`, `projectHash`) and, of each reply of the model that carries `tokens`, only `id`,
  `timestamp`, `type`, `model` and `tokens`. Prompts, replies, thoughts and tool calls stay local. The chats name
  no folder, only `projectHash`, gemini-cli's SHA-256 of the folder it ran in: `project_folder` finds that folder
  among the current directory and its parents, so importing from inside a checkout attributes its chats.
- Copilot (the file `COPILOT_OTEL_FILE_EXPORTER_PATH` names): its exporter writes one JSON object a line, a
  serialized span (`traceId`, `spanId`, `name`, `startTime: [seconds, nanoseconds]`, plain `attributes`, its
  `resource.attributes`), a log record or a metrics export. Each span with GenAI usage becomes a one-span OTLP/JSON
  ExportTraceServiceRequest line for `/v1/ingest/otlp/v1/traces`, keeping only the attributes usage needs (no
  message content even when content capture was on). Log and metric lines are not sent.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_GEMINI_FIELDS = ("id", "timestamp", "type", "model", "tokens")
_SPAN_KEYS: tuple[str, ...] = (
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model", "gen_ai.response.model",
    "gen_ai.response.id", "gen_ai.conversation.id", "session.id", "user.email",
)  # fmt: skip
_RESOURCE_KEYS = ("service.name", "service.version", "session.id", "user.email", "user.id", "enduser.id")
_KEPT_PREFIXES = ("gen_ai.usage.", "vcs.")


def _line(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def _gemini_records(path: Path) -> Iterator[Any]:
    with path.open("rb") as handle:
        head = handle.read(1)
        handle.seek(0)
        if head == b"{" and path.suffix == ".json":
            try:
                document = json.load(handle)
            except (UnicodeDecodeError, json.JSONDecodeError):
                return
            if isinstance(document, dict):
                yield {key: document.get(key) for key in ("sessionId", "projectHash")}
                messages = document.get("messages")
                yield from messages if isinstance(messages, list) else ()
            return
        for raw in handle:
            try:
                yield json.loads(raw)
            except (UnicodeDecodeError, json.JSONDecodeError):
                continue  # a half-written last line: the next import reads it


def gemini_lines(path: Path) -> tuple[bytes | None, str | None, list[bytes]]:
    """(the metadata line, the project hash, one line per reply with tokens) of a chat file."""
    meta: bytes | None = None
    project: str | None = None
    lines: list[bytes] = []
    for record in _gemini_records(path):
        if not isinstance(record, dict):
            continue
        if meta is None and isinstance(record.get("sessionId"), str):
            project = record.get("projectHash") if isinstance(record.get("projectHash"), str) else None
            meta = _line({"sessionId": record["sessionId"], "projectHash": project})
        elif record.get("type") == "gemini" and isinstance(record.get("tokens"), dict):
            lines.append(_line({key: record.get(key) for key in _GEMINI_FIELDS}))
    return meta, project, lines


def project_folder(project_hash: str | None, here: Path) -> str | None:
    """The folder among `here` and its parents whose gemini-cli project hash is `project_hash`."""
    if not project_hash:
        return None
    for folder in (here, *here.parents):
        if hashlib.sha256(str(folder).encode()).hexdigest() == project_hash:
            return str(folder)
    return None


def _any_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(item) for item in value]}}
    return {"stringValue": str(value)}


def _kept(attributes: Any, names: tuple[str, ...]) -> list[dict[str, Any]]:
    if not isinstance(attributes, dict):
        return []
    return [
        {"key": key, "value": _any_value(value)}
        for key, value in attributes.items()
        if value is not None and (key in names or key.startswith(_KEPT_PREFIXES))
    ]


def _nanos(value: Any) -> str | None:
    """OpenTelemetry JS's HrTime `[seconds, nanoseconds]` as OTLP's Unix nanoseconds."""
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return str(value[0] * 1_000_000_000 + value[1])
    return None


def copilot_span_line(raw: bytes) -> bytes | None:
    """The OTLP/JSON request line of one serialized span with GenAI usage; None for anything else."""
    if b'"gen_ai.usage.' not in raw or b'"spanId"' not in raw:
        return None
    try:
        span = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    attributes = span.get("attributes") if isinstance(span, dict) else None
    if not isinstance(attributes, dict) or not any(key.startswith("gen_ai.usage.") for key in attributes):
        return None
    scope = span.get("instrumentationScope") if isinstance(span.get("instrumentationScope"), dict) else {}
    resource = span.get("resource") if isinstance(span.get("resource"), dict) else {}
    converted = {
        "traceId": span.get("traceId"),
        "spanId": span.get("spanId"),
        "parentSpanId": span.get("parentSpanId"),
        "name": span.get("name"),
        "kind": span.get("kind"),
        "startTimeUnixNano": _nanos(span.get("startTime")),
        "endTimeUnixNano": _nanos(span.get("endTime")),
        "attributes": _kept(attributes, _SPAN_KEYS),
    }
    request = {
        "resourceSpans": [
            {
                "resource": {"attributes": _kept(resource.get("attributes"), _RESOURCE_KEYS)},
                "scopeSpans": [
                    {
                        "scope": {key: scope[key] for key in ("name", "version") if isinstance(scope.get(key), str)},
                        "spans": [{key: value for key, value in converted.items() if value is not None}],
                    }
                ],
            }
        ]
    }
    return _line(request)
