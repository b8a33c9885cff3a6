"""`tokentrail import claude-code|codex [PATH]`: upload local agent transcripts to `/v1/ingest/{source}`.

How a transcript folder becomes requests:

- Files are found recursively (`*.jsonl`; Codex `rollout-*.jsonl`) and read line by line, never whole: memory holds
  one request body (≤ 10 MB) at most, whatever the size of a file.
- Only the lines the server's parser reads are sent. Claude Code: lines that carry `usage`, without the
  conversation text (`message.content` is dropped when the line has a `message.id`, which is all its dedupe id
  needs). Codex: `session_meta`, `turn_context` and `token_count` lines. Prompts, code and tool output stay local.
- Attribution: a session's `cwd` (Claude Code lines; Codex `session_meta`) is resolved to the `origin` remote of
  that folder when it still exists (once per folder) and sent as `x-vcs-repository-url-full`; the branch comes
  from the transcript itself (`gitBranch` per line; Codex `session_meta.git`), never from today's checkout.
  `--repo owner/name` sets the repository header for everything imported (a moved or deleted folder).
- Identity: each request carries `x-tokentrail-actor` with the git e-mail (`git config user.email`) of the
  checkout its sessions ran in (of the current directory when that folder is gone): transcripts name no person,
  and the server fills the actor of every record that lacks one from it.
- Requests respect the server's limits (10 MB, 10,000 lines) and `--batch-lines`; a session's lines stay in order.
  Claude Code lines of several sessions that share a repository travel together (the parser keys records on
  message ids, so any split is safe; a streamed message cut in two is reconciled by the server, which keeps the
  copy with the most tokens).
- Codex: the parser turns growths of the session's *cumulative* token total into records and needs the session
  id, the model and the previous total, so a rollout never shares a request with another one, and one that does
  not fit in a request is split with a prefix that restores that state: the first readable line (when the
  session id is a hash of it), the `session_meta` line, the latest `turn_context`, and a copy of the last
  `token_count` seen, without its timestamp. The parser takes that copy's total as its baseline and rejects the
  copy itself (no timestamp), so the next event's delta is exactly what a whole-file parse computes and the
  record ids (session id + cumulative total) are the same. Those prefix rejections are not reported.

Re-running imports nothing twice: the server dedupes on (source, record id) and reports duplicates.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import httpx

from app.agent_env import normalize_remote, read_identity, read_origin, redact_url
from app.attribution import Attribution, normalize_repo
from app.parsing import to_int
from app.records import ParsedBatch, PayloadError
from app.sources import claude_code, codex

DEFAULT_SERVER = "http://127.0.0.1:8000"
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_LINES = 10_000
DEFAULT_BATCH_LINES = 5_000
_NO_REPOSITORY = "no repository"
_CWD_SCAN_LINES = 5_000  # how far into a file to look for its `cwd`
ACTOR_HEADER = "x-tokentrail-actor"


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
}


def default_paths(source: str, environ: Mapping[str, str], home: Path) -> list[Path]:
    """Where the agent keeps its transcripts: Claude Code `$CLAUDE_CONFIG_DIR/projects` (comma-separated dirs
    allowed) or `~/.config/claude/projects` and `~/.claude/projects`; Codex `$CODEX_HOME/sessions` (default
    `~/.codex`) and its `archived_sessions`."""
    if source == "claude-code":
        configured = [Path(p).expanduser() for p in environ.get("CLAUDE_CONFIG_DIR", "").split(",") if p.strip()]
        roots = configured or [home / ".config" / "claude", home / ".claude"]
        candidates = [root / "projects" for root in roots]
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

    def add(self, line: bytes, *, usage: bool = True, ignore: bool = False) -> None:
        if ignore:
            self.ignore.add(len(self.lines))
        self.lines.append(line)
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

    def feed(self, raw: bytes) -> Iterator[Chunk]:
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
        self.chunk.add(raw, usage=usage)
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


# --- uploading ----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    accepted: int = 0
    duplicates: int = 0
    skipped: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class UploadFailed(Exception):
    """One request failed; the import goes on with the next one."""


class ImportAborted(Exception):
    """Nothing more can succeed (server unreachable, token refused)."""


class Uploader(Protocol):
    def send(self, source: SourceKind, chunk: Chunk, repo_url: str | None) -> Outcome: ...


def _headers(repo_url: str | None, actor: str | None = None) -> dict[str, str]:
    headers = {"x-vcs-repository-url-full": repo_url} if repo_url else {}
    return headers | ({ACTOR_HEADER: actor} if actor else {})


class HttpUploader:
    def __init__(self, server: str, token: str, *, client: httpx.Client | None = None, retries: int = 2) -> None:
        self.server = server.rstrip("/")
        self.client = client or httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0))
        self.token = token
        self.retries = retries

    def close(self) -> None:
        self.client.close()

    def send(self, source: SourceKind, chunk: Chunk, repo_url: str | None) -> Outcome:
        headers = {
            "Authorization": f"Bearer {self.token}",
            "Content-Type": "application/x-ndjson",
            **_headers(repo_url, chunk.actor),
        }
        body = b"".join(chunk.lines)
        url = self.server + source.endpoint
        for attempt in range(self.retries + 1):
            try:
                response = self.client.post(url, content=body, headers=headers)
            except httpx.ConnectError as error:
                raise ImportAborted(
                    f"cannot reach the server at {self.server} ({error}); is it running? "
                    "Set the address with --server or TOKENTRAIL_SERVER."
                ) from None
            except httpx.TransportError as error:
                if attempt < self.retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                raise UploadFailed(f"{type(error).__name__}: {error}") from None
            if response.status_code in (502, 503, 504) and attempt < self.retries:
                time.sleep(0.5 * 2**attempt)
                continue
            return _outcome(response)
        raise UploadFailed("retries exhausted")  # pragma: no cover - the loop always returns or raises


def _outcome(response: httpx.Response) -> Outcome:
    try:
        data = response.json()
    except ValueError:
        data = None
    detail = data.get("detail") if isinstance(data, dict) else None
    if response.status_code in (401, 403):
        raise ImportAborted(
            f"the server refused the token ({response.status_code}: {detail or response.reason_phrase}); "
            "check --token or TOKENTRAIL_TOKEN"
        )
    # 422 is an answer too: every record of the batch was rejected, each with its reason.
    if response.status_code in (200, 422) and isinstance(data, dict) and "accepted" in data:
        rejected = [
            (int(item.get("index", -1)), str(item.get("error", "")))
            for item in data.get("rejected") or []
            if isinstance(item, dict)
        ]
        return Outcome(
            accepted=int(data.get("accepted") or 0),
            duplicates=int(data.get("duplicates") or 0),
            skipped=int(data.get("skipped") or 0),
            rejected=rejected,
        )
    text = detail if detail is not None else response.text[:200]
    raise UploadFailed(f"HTTP {response.status_code}: {text}")


class DryRunUploader:
    """Parses each request body locally with the server's own parser; uploads nothing."""

    def send(self, source: SourceKind, chunk: Chunk, repo_url: str | None) -> Outcome:
        try:
            batch = source.parse(b"".join(chunk.lines), ndjson=True)
        except PayloadError as error:
            raise UploadFailed(f"unreadable batch: {error}") from None
        fallback = Attribution.parse(repo=repo_url)
        outcome = Outcome(skipped=batch.skipped, rejected=[(r.index, r.error) for r in batch.rejected])
        for position, record in zip(batch.positions, batch.records, strict=False):
            if record.with_attribution(fallback).attribution.repo is None:
                outcome.rejected.append((position, f"{_NO_REPOSITORY}: set repo, or send the header"))
            else:
                outcome.accepted += 1
        return outcome


# --- progress and totals ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Totals:
    files: int = 0
    files_done: int = 0
    lines: int = 0
    lines_sent: int = 0
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    no_repository: int = 0
    failed_requests: int = 0
    oversized_lines: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    unattributed_folders: set[str] = field(default_factory=set)


class Progress:
    """One status line on stderr: redrawn in place on a terminal, a plain line every few seconds otherwise."""

    def __init__(self, stream: IO[str], label: str, *, interval: float | None = None) -> None:
        self.stream = stream
        self.label = label
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.1 if self.tty else 5.0)
        self.last = 0.0
        self.shown = ""

    def line(self, totals: Totals) -> str:
        return (
            f"{self.label}: files {totals.files_done}/{totals.files} · lines {totals.lines:,} · "
            f"accepted {totals.accepted:,} · duplicates {totals.duplicates:,} · rejected {totals.rejected:,}"
        )

    def update(self, totals: Totals, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        line = self.line(totals)
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        elif line != self.shown:
            self.stream.write(line + "\n")
        self.shown = line
        self.stream.flush()

    def close(self, totals: Totals) -> None:
        self.update(totals, force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --- the import ---------------------------------------------------------------------------------------------------


def _where(cwd: str | None, path: Path) -> str:
    """How the summary names a session that got no repository: its folder, or the file when it names none."""
    return cwd or f"{path} (names no folder)"


class RepoResolver:
    """cwd → https URL of its checkout's origin remote, once per folder."""

    def __init__(self, read: Callable[[Path], str | None] = read_origin) -> None:
        self.read = read
        self.cache: dict[str, str | None] = {}

    def __call__(self, cwd: str | None) -> str | None:
        if not cwd:
            return None
        if cwd not in self.cache:
            folder = Path(cwd)
            remote = self.read(folder) if folder.is_dir() else None
            self.cache[cwd] = normalize_remote(remote)[1] if remote else None
        return self.cache[cwd]


class IdentityResolver:
    """cwd → the git e-mail of its checkout, once per folder; a folder that is gone takes the current directory's."""

    def __init__(self, read: Callable[[Path | None], str | None] = read_identity) -> None:
        self.read = read
        self.cache: dict[str | None, str | None] = {}

    def __call__(self, cwd: str | None) -> str | None:
        folder = cwd if cwd and Path(cwd).is_dir() else None
        if folder not in self.cache:
            self.cache[folder] = self.read(Path(folder) if folder else None)
        return self.cache[folder]


@dataclass
class Importer:
    source: SourceKind
    uploader: Uploader
    totals: Totals
    progress: Progress | None = None
    batch_lines: int = DEFAULT_BATCH_LINES
    batch_bytes: int = MAX_BODY_BYTES
    repo: str | None = None  # --repo: the repository header for everything
    resolve: Callable[[str | None], str | None] = field(default_factory=RepoResolver)
    identify: Callable[[str | None], str | None] = field(default_factory=IdentityResolver)

    def run(self, files: list[Path]) -> None:
        self.totals.files = len(files)
        pending = Chunk()
        pending_repo: str | None = None
        pending_folders: set[str] = set()
        for path in files:
            cwd = find_cwd(path, self.source.name)
            repo_url = self.repo or self.resolve(cwd)
            actor = self.identify(cwd)
            if self.source.name == "codex":
                self._send_codex(path, repo_url, cwd, actor)
            else:
                # Claude Code: sessions of one repository and person share requests; another one starts a new one.
                if repo_url != pending_repo or actor != pending.actor:
                    if pending.lines:
                        self._send(pending, pending_repo, pending_folders)
                    pending, pending_folders = Chunk(actor=actor), set()
                pending_repo = repo_url
                pending_folders.add(_where(cwd, path))
                with path.open("rb") as handle:
                    for raw in handle:
                        self.totals.lines += 1
                        line = claude_code_line(raw)
                        if line is None:
                            continue
                        if len(line) > self.batch_bytes:
                            self.totals.oversized_lines += 1
                            continue
                        if not pending.fits(line, max_lines=self.batch_lines, max_bytes=self.batch_bytes):
                            self._send(pending, pending_repo, pending_folders)
                            pending, pending_folders = Chunk(actor=actor), {_where(cwd, path)}
                        pending.add(line)
            self.totals.files_done += 1
            self._tick()
        if pending.lines:
            self._send(pending, pending_repo, pending_folders)

    def _send_codex(self, path: Path, repo_url: str | None, cwd: str | None, actor: str | None) -> None:
        chunker = CodexChunker(max_lines=self.batch_lines, max_bytes=self.batch_bytes)
        folders = {_where(cwd, path)}
        with path.open("rb") as handle:
            for raw in handle:
                self.totals.lines += 1
                for chunk in chunker.feed(raw):
                    chunk.actor = actor
                    self._send(chunk, repo_url, folders)
        for chunk in chunker.finish():
            chunk.actor = actor
            self._send(chunk, repo_url, folders)
        self.totals.oversized_lines += chunker.oversized

    def _send(self, chunk: Chunk, repo_url: str | None, folders: set[str]) -> None:
        self.totals.requests += 1
        try:
            outcome = self.uploader.send(self.source, chunk, repo_url)
        except UploadFailed as error:
            self.totals.failed_requests += 1
            self.totals.failures.append(str(error))
            return
        self.totals.lines_sent += len(chunk.lines)
        self.totals.accepted += outcome.accepted
        self.totals.duplicates += outcome.duplicates
        for index, reason in outcome.rejected:
            if index in chunk.ignore:
                continue
            self.totals.rejected += 1
            if reason.startswith(_NO_REPOSITORY):
                self.totals.no_repository += 1
                if repo_url is None:
                    self.totals.unattributed_folders.update(folders)
            else:
                self.totals.errors[reason[:160]] += 1
        self._tick()

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress.update(self.totals)


def summary(totals: Totals, *, source: str, dry_run: bool) -> list[str]:
    verb = "Read" if dry_run else "Imported"
    lines = [
        f"{verb} {totals.files_done} {source} transcript file(s), {totals.lines:,} lines "
        f"({totals.lines_sent:,} of them sent, in {totals.requests} request(s)).",
    ]
    if dry_run:
        lines.append(
            f"Dry run, nothing uploaded: {totals.accepted:,} usage record(s) would be sent, "
            f"{totals.rejected:,} would be rejected."
        )
    else:
        lines.append(
            f"Records: {totals.accepted:,} accepted, {totals.duplicates:,} duplicates (already imported), "
            f"{totals.rejected:,} rejected."
        )
    if totals.no_repository:
        folders = sorted(totals.unattributed_folders)
        shown = ", ".join(folders[:5]) + (f" and {len(folders) - 5} more" if len(folders) > 5 else "")
        lines.append(
            f"{totals.no_repository:,} record(s) had no repository"
            + (f" (their folder is gone, has no origin remote, or is not named: {shown})" if shown else "")
            + f". Import them from the checkout they belong to with `tokentrail import {source} PATH "
            "--repo OWNER/NAME`."
        )
    for error, count in totals.errors.most_common(5):
        lines.append(f"  rejected {count:,}×: {error}")
    if totals.oversized_lines:
        lines.append(f"{totals.oversized_lines:,} line(s) larger than one request were left out.")
    if totals.failed_requests:
        lines.append(f"{totals.failed_requests} request(s) failed; first error: {totals.failures[0]}")
    return lines


# --- command line -------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, source: str) -> None:
    default = (
        "$CLAUDE_CONFIG_DIR/projects, else ~/.config/claude/projects and ~/.claude/projects"
        if source == "claude-code"
        else "$CODEX_HOME (default ~/.codex) sessions and archived_sessions"
    )
    parser.add_argument("path", nargs="?", type=Path, help=f"a transcript file or folder (default: {default})")
    parser.add_argument("--server", help=f"Tokentrail server URL (env TOKENTRAIL_SERVER; default {DEFAULT_SERVER})")
    parser.add_argument("--token", help="API token (env TOKENTRAIL_TOKEN); not needed with --dry-run")
    parser.add_argument(
        "--batch-lines",
        type=int,
        default=DEFAULT_BATCH_LINES,
        help=f"lines per request, at most {MAX_LINES:,} (default {DEFAULT_BATCH_LINES:,})",
    )
    parser.add_argument(
        "--repo",
        help="OWNER/NAME (or git URL) for every record that names no repository itself (a moved or deleted folder)",
    )
    parser.add_argument("--dry-run", action="store_true", help="read and count, upload nothing")


def run(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """The `tokentrail import` command: 0 when every request succeeded, 1 when one failed, 2 on bad usage."""
    environ = os.environ if environ is None else environ
    out = out or sys.stdout
    err = err or sys.stderr
    source = SOURCES[args.import_source]

    def say(text: str, stream: IO[str]) -> None:
        stream.write(text + "\n")
        stream.flush()

    if not 1 <= args.batch_lines <= MAX_LINES:
        say(f"tokentrail: --batch-lines must be between 1 and {MAX_LINES:,}", err)
        return 2
    repo = normalize_repo(redact_url(args.repo)) if args.repo else None
    if args.repo and repo is None:
        say(f"tokentrail: --repo {args.repo!r} is not OWNER/NAME or a git URL", err)
        return 2
    token = args.token or environ.get("TOKENTRAIL_TOKEN")
    if not token and not args.dry_run:
        say("tokentrail: a token is required: --token T or TOKENTRAIL_TOKEN (tokentrail token create)", err)
        return 2
    paths = [args.path.expanduser()] if args.path else default_paths(source.name, environ, Path.home())
    missing = [str(p) for p in paths if not p.exists()]
    if missing and len(missing) == len(paths):
        say(f"tokentrail: no such file or folder: {', '.join(missing)}", err)
        return 2
    files = find_transcripts(paths, source.pattern)
    if not files:
        say(f"No {source.name} transcripts found in {', '.join(map(str, paths))}.", out)
        return 0
    server = args.server or environ.get("TOKENTRAIL_SERVER") or DEFAULT_SERVER
    uploader: Uploader = DryRunUploader() if args.dry_run else HttpUploader(server, token or "")
    totals = Totals()
    progress = Progress(err, source.name)
    importer = Importer(
        source=source,
        uploader=uploader,
        totals=totals,
        progress=progress,
        batch_lines=args.batch_lines,
        repo=repo,
    )
    aborted: str | None = None
    try:
        importer.run(files)
    except ImportAborted as stop:
        aborted = str(stop)
    finally:
        progress.close(totals)
        if isinstance(uploader, HttpUploader):
            uploader.close()
    for line in summary(totals, source=source.name, dry_run=args.dry_run):
        say(line, out)
    if aborted is not None:
        say(f"tokentrail: import stopped: {aborted}", err)
        return 1
    return 1 if totals.failed_requests else 0
