"""What the installed hooks run (`app.local.hooks`): upload one finished session, never in the agent's way.

- `tokentrail hooks run claude-code`: Claude Code hands the hook JSON on stdin (`session_id`, `transcript_path`,
  `cwd`, `hook_event_name`). `tokentrail hooks run codex '<json>'`: Codex appends its notification as the last
  argument (`type: agent-turn-complete`, `thread-id`, `turn-id`, `cwd`); the session's rollout is the
  `rollout-*-<thread-id>.jsonl` under `$CODEX_HOME/sessions`.
- Either starts `tokentrail hooks upload <agent> <file>` as a detached process and exits 0 at once: the agent never
  waits for the network. The upload is `tokentrail import` of that one file (`app.local.importer`: the repository
  from the session's folder, the branch from the transcript's own `gitBranch` or the rollout's git block), with the
  stored server and token. Re-uploading a grown transcript adds only what is new (the server dedupes).
- Nothing a hook does fails the agent: every problem goes to the log file, and the exit code is always 0.

Where the server and token are kept: `$XDG_CONFIG_HOME/tokentrail/hooks.json` (default `~/.config/...`), mode 0600,
written by `hooks install --server --token`; `TOKENTRAIL_SERVER` / `TOKENTRAIL_TOKEN` in the agent's environment
win over it. The log is `hooks.log` next to it.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from app.local.upload import DEFAULT_SERVER

CONFIG_NAME = "hooks.json"
LOG_NAME = "hooks.log"
MAX_LOG_BYTES = 1_000_000
STDIN_SECONDS = 5.0  # how long to wait for the hook JSON; a stdin left open must not hold the agent


def config_dir(environ: Mapping[str, str], home: Path) -> Path:
    base = environ.get("XDG_CONFIG_HOME")
    return (Path(base).expanduser() if base else home / ".config") / "tokentrail"


def store_credentials(folder: Path, *, server: str | None, token: str | None) -> Path:
    """Merge the server and token into the hooks' config file, readable by its owner only."""
    path = folder / CONFIG_NAME
    stored = read_config(folder)
    if server:
        stored["server"] = server.rstrip("/")
    if token:
        stored["token"] = token
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{CONFIG_NAME}.{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(stored, handle, indent=2)
        handle.write("\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def read_config(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {key: value for key, value in data.items() if isinstance(value, str)} if isinstance(data, dict) else {}


def credentials(folder: Path, environ: Mapping[str, str]) -> tuple[str, str | None]:
    stored = read_config(folder)
    server = environ.get("TOKENTRAIL_SERVER") or stored.get("server") or DEFAULT_SERVER
    return server, environ.get("TOKENTRAIL_TOKEN") or stored.get("token")


def log(folder: Path, message: str) -> None:
    """Append to the hooks' log (started afresh past MAX_LOG_BYTES); never raises."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / LOG_NAME
        mode = "w" if path.exists() and path.stat().st_size > MAX_LOG_BYTES else "a"
        with path.open(mode, encoding="utf-8") as handle:
            handle.write(f"{datetime.now(UTC).isoformat(timespec='seconds')} {message}\n")
    except OSError:
        pass


# --- the hook: find the file, start the upload, return ------------------------------------------------------------


def read_stdin(stream: IO[str], *, timeout: float = STDIN_SECONDS) -> str:
    """All of stdin, or what arrived within `timeout` seconds (some hosts never close it)."""
    deadline = time.monotonic() + timeout
    chunks: list[str] = []
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError):
        return stream.read()
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([descriptor], [], [], remaining)
        if not ready:
            break
        chunk = os.read(descriptor, 65536)
        if not chunk:
            break
        chunks.append(chunk.decode("utf-8", errors="replace"))
    return "".join(chunks)


def claude_code_file(payload: Any) -> Path | None:
    path = payload.get("transcript_path") if isinstance(payload, dict) else None
    return Path(path).expanduser() if isinstance(path, str) and path else None


def codex_file(payload: Any, environ: Mapping[str, str], home: Path) -> Path | None:
    if not isinstance(payload, dict) or payload.get("type") != "agent-turn-complete":
        return None
    thread = payload.get("thread-id")
    if not isinstance(thread, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,99}", thread):
        return None  # a thread id is a UUID: nothing else goes into the file pattern
    codex_home = Path(environ["CODEX_HOME"]).expanduser() if environ.get("CODEX_HOME") else home / ".codex"
    found = sorted((codex_home / "sessions").rglob(f"rollout-*{thread}.jsonl"))
    return found[-1] if found else None


def run_hook(
    agent: str, argv: list[str], *, stdin: IO[str], environ: Mapping[str, str], home: Path, detach: bool = True
) -> int:
    """The installed hook: always 0."""
    folder = config_dir(environ, home)
    try:
        if agent == "claude-code":
            payload = json.loads(read_stdin(stdin) or "null")
            path = claude_code_file(payload)
        else:
            payload = json.loads(argv[-1]) if argv else None
            path = codex_file(payload, environ, home)
        if path is None:
            log(folder, f"{agent}: nothing to upload for {str(payload)[:200]}")
            return 0
        command = [sys.executable, "-m", "app.cli", "hooks", "upload", agent, str(path)]
        if not detach:
            return upload(agent, path, environ=environ, home=home)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / LOG_NAME).open("a", encoding="utf-8") as sink:
            subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                start_new_session=True,  # outlives the agent's process group, and is not killed with it
                close_fds=True,
                env={**environ, "PYTHONPATH": _app_root(environ)},
            )
    except Exception:  # the agent must never fail because of us: everything goes to the log
        log(folder, f"{agent}: hook failed\n{traceback.format_exc()}")
    return 0


def _app_root(environ: Mapping[str, str]) -> str:
    """Where `app` is imported from, so the detached `python -m app.cli` finds it from any working directory."""
    root = str(Path(__file__).resolve().parents[2])
    existing = environ.get("PYTHONPATH")
    return f"{root}{os.pathsep}{existing}" if existing else root


def upload(agent: str, path: Path, *, environ: Mapping[str, str], home: Path) -> int:
    """Upload one transcript or rollout; the outcome (or why not) goes to the log. Always 0."""
    from app.local.importer import Importer
    from app.local.progress import Totals
    from app.local.transcripts import SOURCES
    from app.local.upload import HttpUploader, ImportAborted

    folder = config_dir(environ, home)
    try:
        server, token = credentials(folder, environ)
        if not token:
            log(folder, f"{agent}: {path}: no token; run `tokentrail hooks install {agent} --token T`")
            return 0
        if not path.is_file():
            log(folder, f"{agent}: {path}: no such file")
            return 0
        uploader = HttpUploader(server, token)
        totals = Totals()
        try:
            Importer(source=SOURCES[agent], uploader=uploader, totals=totals).run([path])
        except ImportAborted as stop:
            log(folder, f"{agent}: {path}: {stop}")
            return 0
        finally:
            uploader.close()
        problems = "; ".join(totals.failures[:3]) or ", ".join(f"{n}× {e}" for e, n in totals.errors.most_common(3))
        log(
            folder,
            f"{agent}: {path}: {totals.accepted} new, {totals.duplicates} already sent, {totals.rejected} rejected"
            + (f" ({problems})" if problems else ""),
        )
    except Exception:
        log(folder, f"{agent}: {path}: upload failed\n{traceback.format_exc()}")
    return 0
