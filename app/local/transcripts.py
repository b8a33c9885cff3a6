"""Finding agent transcripts on disk and reading them line by line into request-sized chunks.

Only the lines the server's parser reads leave the machine; see `app.local.importer` for the whole rule."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.parsing import iter_json_lines, to_int
from app.records import ParsedBatch
from app.sources import claude_code, codex, gemini, otlp

MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_LINES = 10_000
_CWD_SCAN_LINES = 5_000  # how far into a file to look for its `cwd`
_SNIFF_LINES = 20  # how far into a file to look for what kind of transcript it is
KIND_NAMES = {"claude-code": "a Claude Code transcript", "codex": "a Codex rollout"}
_CODEX_TYPES = frozenset({"session_meta", "turn_context", "response_item", "event_msg", "compacted"})
_CLAUDE_TYPES = frozenset({"user", "assistant", "summary", "system"})


# --- finding transcripts ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SourceKind:
    name: str
    endpoint: str
    pattern: str
    parse: Callable[..., ParsedBatch]


SOURCES: dict[str, SourceKind] = {
    "claude-code": SourceKind("claude-code", "/v1/ingest/claude-code", "*.jsonl", claude_code.parse),
    "codex": SourceKind("codex", "/v1/ingest/codex", "rollout-*.jsonl", codex.parse),
    "gemini": SourceKind("gemini", "/v1/ingest/gemini", "*.json*", gemini.parse),
    # Copilot's OTel file becomes OTLP/JSON span requests (app.local.agent_files), read by the traces route.
    "copilot": SourceKind("copilot", "/v1/ingest/otlp/v1/traces", "*.jsonl", otlp.parse_traces),
}


def default_paths(source: str, environ: Mapping[str, str], home: Path) -> list[Path]:
    """Where the agent keeps its transcripts: Claude Code `$CLAUDE_CONFIG_DIR/projects` (comma-separated dirs
    allowed) or `~/.config/claude/projects` and `~/.claude/projects`; Codex `$CODEX_HOME/sessions` (default
    `~/.codex`) and its `archived_sessions`; Gemini CLI `~/.gemini/tmp/*/chats`; Copilot the file
    `$COPILOT_OTEL_FILE_EXPORTER_PATH` names (none without it)."""
    if source == "claude-code":
        configured = [Path(p).expanduser() for p in environ.get("CLAUDE_CONFIG_DIR", "").split(",") if p.strip()]
        roots = configured or [home / ".config" / "claude", home / ".claude"]
        candidates = [root / "projects" for root in roots]
    elif source == "gemini":
        candidates = sorted((home / ".gemini" / "tmp").glob("*/chats")) or [home / ".gemini" / "tmp"]
    elif source == "copilot":
        exported = environ.get("COPILOT_OTEL_FILE_EXPORTER_PATH", "").strip()
        candidates = [Path(exported).expanduser()] if exported else []
    else:
        codex_home = Path(environ["CODEX_HOME"]).expanduser() if environ.get("CODEX_HOME") else home / ".codex"
        candidates = [codex_home / "sessions", codex_home / "archived_sessions"]
    existing = [path for path in candidates if path.is_dir()]
    return existing or candidates


def find_transcripts(paths: list[Path], pattern: str) -> list[Path]:
    """Transcript files under `paths` (a file is taken as is), sorted so that a session's files stay together."""
    found: set[Path] = set()
    for path in paths:
        if path.is_file():
            found.add(path)
        elif path.is_dir():
            found.update(p for p in path.rglob(pattern) if p.is_file())
    return sorted(found)


# --- reading a transcript -----------------------------------------------------------------------------------------


def _load(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def find_cwd(path: Path, source: str) -> str | None:
    """The folder the session ran in: the first `cwd` of a Claude Code line, or of a Codex `session_meta` (or
    `turn_context`) payload."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle):
            if number >= _CWD_SCAN_LINES:
                break
            if b'"cwd"' not in raw:
                continue
            line = _load(raw)
            if not isinstance(line, dict):
                continue
            holder = line if source == "claude-code" else line.get("payload")
            cwd = holder.get("cwd") if isinstance(holder, dict) else None
            if isinstance(cwd, str) and cwd.strip():
                return cwd.strip()
    return None


def sniff(path: Path) -> str | None:
    """Which agent wrote this file ("claude-code", "codex"), from the shape of its first lines; None when unsure.
    Codex lines are `{"type": ..., "payload": {...}}`; Claude Code lines carry `sessionId` and no `payload`."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle):
            if number >= _SNIFF_LINES:
                break
            line = _load(raw)
            if not isinstance(line, dict):
                continue
            if isinstance(line.get("payload"), dict) and line.get("type") in _CODEX_TYPES:
                return "codex"
            if "payload" not in line and ("sessionId" in line or line.get("type") in _CLAUDE_TYPES):
                return "claude-code"
    return None


def unreadable(raw: bytes) -> str | None:
    """Why the server's parser would refuse this line as JSON (its very words), or None when it reads."""
    for _, value in iter_json_lines(raw):
        return str(value) if isinstance(value, ValueError) else None
    return None


def _complete(raw: bytes) -> bytes:
    return raw if raw.endswith(b"\n") else raw + b"\n"


def claude_code_line(raw: bytes) -> bytes | None:
    """The line to send, or None when it carries no usage (or is an unfinished last line still being written)."""
    if b'"usage"' not in raw:
        return None
    line = _load(raw)
    if line is None:
        # Unreadable: a half-written last line is left for the next import; anything else goes to the server,
        # which rejects it with the reason.
        return None if not raw.endswith(b"\n") else raw
    message = line.get("message") if isinstance(line, dict) else None
    has_id = isinstance(message, dict) and isinstance(message.get("id"), str) and bool(message["id"].strip())
    if has_id and isinstance(message, dict) and "content" in message:
        del message["content"]
        return json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    return _complete(raw)


_CODEX_MARKERS = (b'"session_meta"', b'"turn_context"', b'"token_count"')
_CODEX_TOTAL_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens")


def _codex_total(line: dict[str, Any]) -> int | None:
    """The cumulative total_tokens of a token_count line, as the parser reads it; None if it reads none."""
    payload = line.get("payload")
    if line.get("type") != "event_msg" or not isinstance(payload, dict) or payload.get("type") != "token_count":
        return None
    info = payload.get("info")
    total = info.get("total_token_usage") if isinstance(info, dict) else None
    if not isinstance(total, dict):
        return None
    try:
        counts = {name: to_int(total.get(name)) for name in (*_CODEX_TOTAL_FIELDS, "total_tokens")}
    except ValueError:
        return None
    return counts["total_tokens"] or counts["input_tokens"] + counts["output_tokens"]


@dataclass(slots=True)
class Chunk:
    """The body of one request and the line indexes whose rejections are ours to ignore (a split's prefix)."""

    lines: list[bytes] = field(default_factory=list)
    size: int = 0
    ignore: set[int] = field(default_factory=set)
    usage_lines: int = 0  # lines that may yield records (not the prefix)
    actor: str | None = None  # who ran the sessions (the checkout's git e-mail), sent as x-tokentrail-actor
    origins: list[str | None] = field(default_factory=list)  # "file:line" of each line, to name a rejected one

    def add(self, line: bytes, *, usage: bool = True, ignore: bool = False, origin: str | None = None) -> None:
        if ignore:
            self.ignore.add(len(self.lines))
        self.lines.append(line)
        self.origins.append(origin)
        self.size += len(line)
        self.usage_lines += usage

    def fits(self, line: bytes, *, max_lines: int, max_bytes: int) -> bool:
        return not self.lines or (len(self.lines) < max_lines and self.size + len(line) <= max_bytes)


class CodexChunker:
    """Splits one rollout into requests the parser reads as it would read the whole file (module docstring)."""

    def __init__(self, *, max_lines: int, max_bytes: int) -> None:
        self.max_lines, self.max_bytes = max_lines, max_bytes
        self.first_readable: bytes | None = None
        self.meta: bytes | None = None
        self.meta_has_id = False
        self.context: bytes | None = None
        self.baseline: dict[str, Any] | None = None
        self.baseline_total = 0
        self.chunk = Chunk()
        self.oversized = 0

    def feed(self, raw: bytes, origin: str | None = None) -> Iterator[Chunk]:
        line = _load(raw) if (self.first_readable is None or any(m in raw for m in _CODEX_MARKERS)) else None
        if not isinstance(line, dict):
            return
        raw = _complete(raw)
        is_first = self.first_readable is None
        if is_first:
            self.first_readable = raw
        kind = line.get("type")
        payload = line.get("payload")
        token_count = kind == "event_msg" and isinstance(payload, dict) and payload.get("type") == "token_count"
        # A token_count without `info` only reports rate limits; a response item may merely mention a marker.
        usage = token_count and isinstance(payload, dict) and payload.get("info") is not None
        if not is_first and not usage and kind not in {"session_meta", "turn_context"}:
            return
        if len(raw) > self.max_bytes:
            self.oversized += 1
            return
        if not self.chunk.fits(raw, max_lines=self.max_lines, max_bytes=self.max_bytes):
            yield from self._emit()
            self._start_with_prefix()
        self.chunk.add(raw, usage=usage, origin=origin)
        # Track the state the parser carries from one line to the next.
        total = _codex_total(line)
        if kind == "session_meta" and self.meta is None and isinstance(payload, dict):
            self.meta = raw
            self.meta_has_id = isinstance(payload.get("id"), str) and bool(payload["id"].strip())
        elif kind == "turn_context" and isinstance(payload, dict):
            model = payload.get("model")
            if isinstance(model, str) and model.strip():
                self.context = raw
        elif total is not None and total != self.baseline_total:
            self.baseline, self.baseline_total = line, total

    def finish(self) -> Iterator[Chunk]:
        yield from self._emit()

    def _emit(self) -> Iterator[Chunk]:
        if self.chunk.usage_lines:
            yield self.chunk
        self.chunk = Chunk()

    def _start_with_prefix(self) -> None:
        prefix: list[bytes] = []
        if not self.meta_has_id and self.first_readable is not None:
            prefix.append(self.first_readable)
        if self.meta is not None and self.meta not in prefix:
            prefix.append(self.meta)
        if self.context is not None:
            prefix.append(self.context)
        if self.baseline is not None:
            marker = copy.deepcopy(self.baseline)
            marker["timestamp"] = None  # rejected by the parser, after it took the total as its baseline
            marker["tokentrail_import_baseline"] = True
            prefix.append(json.dumps(marker, separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
        for line in prefix:
            self.chunk.add(line, usage=False, ignore=True)
