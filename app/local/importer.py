"""`tokentrail import claude-code|codex|gemini|copilot [PATH]`: upload local agent transcripts to Tokentrail.

Gemini CLI chats and Copilot's OTel file: `app.local.agent_files` says what of them is sent, and how they are
attributed. The rest of this note is about Claude Code and Codex.

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
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from app.attribution import normalize_repo
from app.local.agent_env import normalize_remote, read_identity, read_origin, redact_url
from app.local.agent_files import copilot_span_line, gemini_lines, project_folder
from app.local.progress import Progress, Totals, summary
from app.local.transcripts import (
    KIND_NAMES,
    MAX_BODY_BYTES,
    MAX_LINES,
    SOURCES,
    Chunk,
    CodexChunker,
    SourceKind,
    claude_code_line,
    default_paths,
    find_cwd,
    find_transcripts,
    sniff,
    unreadable,
)
from app.local.upload import (
    DEFAULT_SERVER,
    NO_REPOSITORY,
    DryRunUploader,
    HttpUploader,
    ImportAborted,
    Uploader,
    UploadFailed,
)

DEFAULT_BATCH_LINES = 5_000


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
    here: Path = field(default_factory=Path.cwd)  # where a Gemini CLI chat's project folder is looked for

    def run(self, files: list[Path]) -> None:
        self.totals.files = len(files)
        pending = Chunk()
        pending_repo: str | None = None
        pending_folders: set[str] = set()
        for path in files:
            if self.source.name in ("gemini", "copilot"):
                self._send_agent_file(path)
                self.totals.files_done += 1
                self._tick()
                continue
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
                    for number, raw in enumerate(handle, start=1):
                        self.totals.lines += 1
                        line = claude_code_line(raw)
                        if line is None:
                            continue
                        if (reason := unreadable(line)) is not None:  # refused here, named by file and line
                            self.totals.reject(reason, f"{path}:{number}")
                            continue
                        if len(line) > self.batch_bytes:
                            self.totals.oversized_lines += 1
                            continue
                        if not pending.fits(line, max_lines=self.batch_lines, max_bytes=self.batch_bytes):
                            self._send(pending, pending_repo, pending_folders)
                            pending, pending_folders = Chunk(actor=actor), {_where(cwd, path)}
                        pending.add(line, origin=f"{path}:{number}")
            self.totals.files_done += 1
            self._tick()
        if pending.lines:
            self._send(pending, pending_repo, pending_folders)

    def _send_codex(self, path: Path, repo_url: str | None, cwd: str | None, actor: str | None) -> None:
        chunker = CodexChunker(max_lines=self.batch_lines, max_bytes=self.batch_bytes)
        folders = {_where(cwd, path)}
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                self.totals.lines += 1
                for chunk in chunker.feed(raw, origin=f"{path}:{number}"):
                    chunk.actor = actor
                    self._send(chunk, repo_url, folders)
        for chunk in chunker.finish():
            chunk.actor = actor
            self._send(chunk, repo_url, folders)
        self.totals.oversized_lines += chunker.oversized

    def _send_agent_file(self, path: Path) -> None:
        """A Gemini CLI chat (its metadata line opens every request) or a Copilot OTel file (a span a line)."""
        prefix: bytes | None = None
        cwd: str | None = None
        if self.source.name == "gemini":
            prefix, project, lines = gemini_lines(path)
            self.totals.lines += len(lines) + (prefix is not None)
            cwd = project_folder(project, self.here)
        else:
            with path.open("rb") as handle:
                raw_lines = handle.readlines()
            self.totals.lines += len(raw_lines)
            lines = [line for line in map(copilot_span_line, raw_lines) if line is not None]
        repo_url, actor, folders = self.repo or self.resolve(cwd), self.identify(cwd), {_where(cwd, path)}
        if repo_url is None and self.source.name == "copilot":
            # The server would take these spans for live telemetry and keep them waiting for a file that names
            # their repository: this import is that file, so without one nothing is sent and the summary says so.
            unattributed = len(self.source.parse(b"".join(lines), ndjson=True).records)
            self.totals.rejected += unattributed
            self.totals.no_repository += unattributed
            self.totals.unattributed_folders.update(folders)
            return
        chunk = Chunk(actor=actor)
        for line in lines:
            if len(line) + len(prefix or b"") > self.batch_bytes:
                self.totals.oversized_lines += 1
                continue
            if not chunk.lines and prefix is not None:
                chunk.add(prefix, usage=False)
            if not chunk.fits(line, max_lines=self.batch_lines, max_bytes=self.batch_bytes):
                self._send(chunk, repo_url, folders)
                chunk = Chunk(actor=actor)
                if prefix is not None:
                    chunk.add(prefix, usage=False)
            chunk.add(line, origin=str(path))
        if chunk.usage_lines:
            self._send(chunk, repo_url, folders)

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
            if reason.startswith(NO_REPOSITORY):
                self.totals.rejected += 1
                self.totals.no_repository += 1
                if repo_url is None:
                    self.totals.unattributed_folders.update(folders)
            else:
                self.totals.reject(reason, chunk.origins[index] if 0 <= index < len(chunk.origins) else None)
        self._tick()

    def _tick(self) -> None:
        if self.progress is not None:
            self.progress.update(self.totals)


# --- command line -------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, source: str) -> None:
    default = {
        "claude-code": "$CLAUDE_CONFIG_DIR/projects, else ~/.config/claude/projects and ~/.claude/projects",
        "codex": "$CODEX_HOME (default ~/.codex) sessions and archived_sessions",
        "gemini": "~/.gemini/tmp/*/chats",
        "copilot": "the file $COPILOT_OTEL_FILE_EXPORTER_PATH names",
    }[source]
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
    """The `tokentrail import` command: 0 when every request succeeded; 1 when one failed, when every record was
    rejected, or when files were the other agent's; 2 on bad usage."""
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
    if not paths:
        say("tokentrail: name the file: the PATH argument, or COPILOT_OTEL_FILE_EXPORTER_PATH", err)
        return 2
    missing = [str(p) for p in paths if not p.exists()]
    if missing and len(missing) == len(paths):
        say(f"tokentrail: no such file or folder: {', '.join(missing)}", err)
        return 2
    files = find_transcripts(paths, source.pattern)
    # Claude Code transcripts and Codex rollouts are both JSON lines and easily swapped: the other agent's files
    # are named, and left out (its parser would read nothing of them). Gemini CLI and Copilot files are not sniffed.
    other = {"claude-code": "codex", "codex": "claude-code"}.get(source.name)
    candidates = (files or find_transcripts(paths, "*.jsonl")[:20]) if other else []
    misplaced = [path for path in candidates if sniff(path) == other]
    for path in misplaced[:5]:
        say(f"tokentrail: {path}: this looks like {KIND_NAMES[other or '']}: use `tokentrail import {other}`", err)
    if len(misplaced) > 5:
        say(f"tokentrail: … and {len(misplaced) - 5} more files like these", err)
    files = [path for path in files if path not in set(misplaced)]
    if not files:
        say(f"No {source.name} transcripts found in {', '.join(map(str, paths))}.", out)
        return 1 if misplaced else 0
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
    if aborted is None or totals.requests > 1 or totals.accepted or totals.duplicates:
        for line in summary(totals, source=source.name, dry_run=args.dry_run, stopped=aborted is not None):
            say(line, out)
    if aborted is not None:  # before anything was sent (a refused token): no summary of an import that did not happen
        say(f"tokentrail: import stopped: {aborted}", err)
        return 1
    if totals.nothing_stored:
        say(f"tokentrail: every record was rejected: nothing was {'read' if args.dry_run else 'stored'}", err)
    return 1 if totals.failed_requests or totals.nothing_stored or misplaced else 0
