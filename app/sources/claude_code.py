"""Claude Code transcripts (~/.claude/projects/<project>/<session>.jsonl) → usage records. Pure.

Each assistant line carries the Anthropic API `message` with its `usage` block. Claude Code writes one line
per content block of a streamed response (thinking, text, each tool_use), so one API call appears on several
lines with the same `message.id` and `requestId`, the later ones with the final output count: we keep, per
call, the line with the most tokens. Sub-agent (`isSidechain`) lines are calls of their own and are kept.

Token semantics: Anthropic's `input_tokens` EXCLUDES `cache_read_input_tokens` and
`cache_creation_input_tokens`, which is already our convention: no normalisation.

Cost: DESIGN §3 says "computed" for this source, so `cost_usd` is None even when a line has the legacy
`costUSD`. That field is Claude Code's own client-side estimate from its built-in price table (not a billed
amount); current versions no longer write it, so honouring it would price the same kind of usage two ways
depending on the Claude Code version that wrote the file. genai-prices computes every line the same way, at
the price in force on the line's date.

Attribution: lines carry `gitBranch` (and `cwd`, a local path that names no repository); the repository comes
from the import request's x-vcs-* headers, applied later with UsageRecord.with_attribution.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from app.attribution import Attribution
from app.parsing import to_datetime, to_int
from app.parsing import transcript_lines as _lines
from app.records import ParsedBatch, UsageRecord

# Claude Code writes locally generated messages (API errors, interruptions) with this model and zero usage.
_SYNTHETIC = "<synthetic>"
_USAGE_FIELDS = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens")


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    """`ndjson` is accepted for a uniform signature: a transcript is always JSON lines (a JSON array of line
    objects is read too)."""
    batch = ParsedBatch()
    # dedupe key → (line index, record), in order of first appearance
    kept: dict[str, tuple[int, UsageRecord]] = {}
    for index, line in _lines(body):
        try:
            record = _record(line)
        except ValueError as error:
            batch.reject(index, str(error))
            continue
        if record is None:
            batch.skipped += 1
            continue
        previous = kept.get(record.id)
        if previous is None:
            kept[record.id] = (index, record)
            continue
        # A streaming copy of a call already seen: keep the line with the most tokens (a tie keeps the later,
        # most complete line) but the earliest timestamp, the closest to when the call started. The superseded
        # copy counts as skipped so every line is accounted for.
        batch.skipped += 1
        first = min(previous[1].timestamp, record.timestamp)
        if record.total_tokens >= previous[1].total_tokens:
            kept[record.id] = (index, replace(record, timestamp=first))
        elif first != previous[1].timestamp:
            kept[record.id] = (previous[0], replace(previous[1], timestamp=first))
    for index, record in kept.values():
        batch.add(index, record)
    return batch


def _record(line: Any) -> UsageRecord | None:
    """The usage record of one transcript line; None for a line without usage; ValueError for a bad line."""
    if isinstance(line, ValueError):
        raise line
    if not isinstance(line, dict):
        raise ValueError("line is not a JSON object")
    message = line.get("message")
    # The ccusage fixtures have no `type`; real lines say "assistant". User, summary, system, file-history
    # lines (and user lines whose message is a tool result) carry no usage.
    if line.get("type", "assistant") != "assistant" or not isinstance(message, dict):
        return None
    if message.get("role", "assistant") != "assistant" or not isinstance(message.get("usage"), dict):
        return None
    model = message.get("model")
    if model == _SYNTHETIC:
        return None
    if not isinstance(model, str) or not model.strip():
        raise ValueError("message.model is missing")
    tokens: dict[str, int] = {}
    for name in _USAGE_FIELDS:
        try:
            tokens[name] = to_int(message["usage"].get(name))
        except ValueError as error:
            raise ValueError(f"message.usage.{name}: {error}") from None
    if not any(tokens.values()):
        return None
    if line.get("timestamp") is None:
        raise ValueError("timestamp is missing")
    try:
        timestamp = to_datetime(line["timestamp"])
    except ValueError as error:
        raise ValueError(f"timestamp: {error}") from None
    session = _text(line.get("sessionId"))
    return UsageRecord(
        id=_dedupe_id(line, message),
        source="claude-code",
        timestamp=timestamp,
        model=model.strip(),
        provider="anthropic",
        input_tokens=tokens["input_tokens"],
        cache_read_tokens=tokens["cache_read_input_tokens"],
        cache_write_tokens=tokens["cache_creation_input_tokens"],
        output_tokens=tokens["output_tokens"],
        cost_usd=None,  # computed, see the module docstring
        attribution=Attribution.parse(branch=line.get("gitBranch")),
        agent="claude-code",
        session_id=session,
        # The Anthropic message id and request id: Claude Code's OpenTelemetry events carry the request id, a
        # gateway in front of it the message id, so either one finds the same call reported elsewhere.
        call_ids=tuple(i for i in (_text(message.get("id")), _text(line.get("requestId"))) if i),
    )


def _dedupe_id(line: dict[str, Any], message: dict[str, Any]) -> str:
    message_id, request_id = _text(message.get("id")), _text(line.get("requestId"))
    if message_id is not None:
        return f"{message_id}:{request_id}" if request_id else message_id
    # No message id (hand-made or very old lines): the line's own uuid, else a hash of its content, so that
    # re-importing the same file gives the same ids.
    uuid = _text(line.get("uuid"))
    if uuid is not None:
        return f"uuid:{uuid}"
    canonical = json.dumps(line, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def _text(value: Any) -> str | None:
    return (value.strip() or None) if isinstance(value, str) else None
