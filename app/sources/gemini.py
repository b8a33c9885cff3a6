"""Gemini CLI chat files (`~/.gemini/tmp/<project>/chats/session-*.json[l]`) → usage records. Pure.

Two shapes, both written by gemini-cli's ChatRecordingService (packages/core/src/services/chatRecording*.ts):

- the legacy JSON document `ConversationRecord {sessionId, projectHash, startTime, lastUpdated, messages[]}`;
- the current JSON lines: a first metadata record `{sessionId, projectHash, startTime, …}`, then one record per
  message written (a message is written again, whole, each time it changes: same `id`), `{"$set": {…}}`
  metadata updates and `{"$rewindTo": id}` markers.

A `MessageRecord` of `type: "gemini"` carries `model` and `tokens {input, output, cached, thoughts, tool, total}`
(Gemini's promptTokenCount, candidatesTokenCount, cachedContentTokenCount, thoughtsTokenCount,
toolUsePromptTokenCount, totalTokenCount). One record per such message, keyed by session and message id: a
message written again is the same record (the copy with most tokens is kept). A rewind hides messages from the
conversation, not from the bill: they still count. `$set` updates repeat messages already written and are not
read. The files name no repository: attribution comes from the request (`x-vcs-*` headers, which `tokentrail
import gemini` sets from the checkout the chats belong to).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from app.parsing import dig, to_datetime, to_int, transcript_lines
from app.records import ParsedBatch, PayloadError, UsageRecord
from app.sources.agent_events import gemini_counts, usage_call_id

_TOKENS = ("input", "cached", "output", "thoughts", "tool")


def _items(body: bytes) -> tuple[str | None, Iterator[tuple[int, Any]]]:
    """(the legacy document's sessionId, the (index, record) to read)."""
    if body.lstrip()[:1] == b"{":
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            document = None
        if isinstance(document, dict) and "messages" in document:
            messages = document["messages"]
            if not isinstance(messages, list):
                raise PayloadError("messages is not a list")
            session = document.get("sessionId")
            return (session.strip() or None) if isinstance(session, str) else None, enumerate(messages)
    return None, transcript_lines(body)


def parse(body: bytes, *, ndjson: bool = False) -> ParsedBatch:
    """`ndjson` is accepted for a uniform signature: the shape is read from the body."""
    session, items = _items(body)
    batch = ParsedBatch()
    for index, item in items:
        if isinstance(item, ValueError):
            batch.reject(index, str(item))
            continue
        if not isinstance(item, dict):
            batch.reject(index, "record is not a JSON object")
            continue
        if session is None and isinstance(item.get("sessionId"), str) and item["sessionId"].strip():
            session = item["sessionId"].strip()  # the metadata record opens the file
        if item.get("type") != "gemini" or not isinstance(item.get("tokens"), dict):
            batch.skipped += 1  # metadata, user and info messages, updates, rewinds, a reply not yet counted
            continue
        try:
            batch.add(index, _record(item, session))
        except ValueError as error:
            batch.reject(index, str(error))
    return batch


def _record(message: dict[str, Any], session: str | None) -> UsageRecord:
    if session is None:
        raise ValueError("no sessionId: the file's metadata record must come first")
    message_id = message.get("id")
    if not isinstance(message_id, str) or not message_id.strip():
        raise ValueError("message id is missing")
    model = message.get("model")
    if not isinstance(model, str) or not model.strip():
        raise ValueError("model is missing")
    if message.get("timestamp") is None:
        raise ValueError("timestamp is missing")
    try:
        timestamp = to_datetime(message["timestamp"])
    except ValueError as error:
        raise ValueError(f"timestamp: {error}") from None
    raw: list[int] = []
    for name in _TOKENS:
        try:
            raw.append(to_int(dig(message, "tokens", name)))
        except ValueError as error:
            raise ValueError(f"tokens.{name}: {error}") from None
    prompt, cached, candidates, thoughts, tool = raw
    input_tokens, cache_read, output, reasoning = gemini_counts(prompt, cached, candidates, thoughts, tool)
    return UsageRecord(
        id=f"{session}:{message_id.strip()}",
        source="gemini",
        timestamp=timestamp,
        model=model.strip(),
        provider="google",
        input_tokens=input_tokens,
        cache_read_tokens=cache_read,
        output_tokens=output,
        reasoning_tokens=reasoning,
        agent="gemini-cli",
        session_id=session,
        # The same response as the `gemini_cli.api_response` event reports it: counted once.
        call_ids=(usage_call_id("gemini-cli", session, prompt, cached, candidates, thoughts, tool),),
    )
