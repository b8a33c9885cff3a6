"""Peak memory of `tokentrail import claude-code` over 1,000,000 transcript lines, against a bare interpreter.

    python bench/import.py [--lines 1000000] [--database-url postgresql+psycopg://…/postgres]

It writes realistic Claude Code transcripts into a temporary folder: several projects, each a git checkout with
an `origin` remote (so attribution goes the way it does on a laptop), holding session files of very different
sizes (one of them a tenth of all lines), whose lines are what Claude Code writes: user prompts, tool results of
up to several kB, assistant lines with `usage` (one per content block: thinking, text, tool_use, sharing a
message id), sidechain (sub-agent) calls, summaries and file-history snapshots. Then it starts `tokentrail serve`
(worker off) on a fresh database and runs `python -m app.cli import claude-code <folder> --server … --token …` as
a subprocess, sampling its peak resident set (VmHWM every 20 ms, and the exact ru_maxrss from wait4).

Ceiling, same run: the peak RSS of `python -c 'import app.local.importer'` (the interpreter and every module the
importer loads): what any import costs before reading a single line. The last line is `import: peak RSS <a> MB
for <n> lines (<r> lines/s); bare interpreter with imports <b> MB; ratio <a/b>`; the target is < 250 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import migrate
from bench.common import make_tokens, postgres_database, run_measured, server

MODELS = ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5")
TOOLS = ("Read", "Edit", "Bash", "Grep", "Glob", "Write", "TodoWrite")
FILLER = (
    "def handle(request):\n    payload = parse(request.body)\n    if not payload.valid:\n"
    "        raise BadRequest(payload.errors)\n    return store(payload)\n"
    "# The cache layer keeps the last N answers keyed by the normalised query; "
    "entries expire after the TTL and a miss falls through to the database. Tests cover eviction and expiry.\n"
) * 40


def text(rng: random.Random, low: int, high: int) -> str:
    size = rng.randint(low, high)
    start = rng.randint(0, len(FILLER) - size - 1)
    return FILLER[start : start + size]


class Session:
    """Writes one session's lines the way Claude Code does."""

    def __init__(self, rng: random.Random, cwd: str, branch: str, started: datetime) -> None:
        self.rng, self.cwd, self.branch, self.now = rng, cwd, branch, started
        self.id = str(uuid.UUID(int=rng.getrandbits(128)))
        self.parent: str | None = None

    def _base(self, kind: str, *, sidechain: bool = False) -> dict[str, object]:
        self.now += timedelta(seconds=self.rng.uniform(0.5, 20))
        line_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
        base: dict[str, object] = {
            "parentUuid": self.parent,
            "isSidechain": sidechain,
            "userType": "external",
            "cwd": self.cwd,
            "sessionId": self.id,
            "version": "2.0.14",
            "gitBranch": self.branch,
            "type": kind,
            "uuid": line_id,
            "timestamp": self.now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        self.parent = line_id
        return base

    def prompt(self) -> str:
        line = self._base("user")
        line["message"] = {"role": "user", "content": text(self.rng, 40, 600)}
        return json.dumps(line)

    def tool_result(self, tool_id: str) -> str:
        line = self._base("user")
        output = text(self.rng, 100, 4_000) if self.rng.random() < 0.9 else text(self.rng, 4_000, 12_000)
        line["message"] = {
            "role": "user",
            "content": [{"tool_use_id": tool_id, "type": "tool_result", "content": output, "is_error": False}],
        }
        line["toolUseResult"] = {"stdout": output[:2_000], "stderr": "", "interrupted": False}
        return json.dumps(line)

    def call(self, blocks: int) -> tuple[list[str], str]:
        """One API call: one line per content block, the same message id; returns (lines, last tool_use id)."""
        rng = self.rng
        sidechain = rng.random() < 0.1
        message_id = f"msg_01{rng.getrandbits(120):030x}"
        request_id = f"req_011C{rng.getrandbits(100):025x}"
        model = rng.choice(MODELS)
        usage_in = {
            "input_tokens": rng.randint(1, 12),
            "cache_creation_input_tokens": rng.randint(0, 8_000),
            "cache_read_input_tokens": rng.randint(5_000, 120_000),
        }
        lines, tool_id = [], ""
        content: dict[str, object]
        for block in range(blocks):
            last = block == blocks - 1
            if block == 0 and rng.random() < 0.3:
                content = {"type": "thinking", "thinking": text(rng, 100, 1_500), "signature": "Eq" + "A" * 300}
            elif last:
                tool_id = f"toolu_01{rng.getrandbits(100):025x}"
                content = {
                    "type": "tool_use",
                    "id": tool_id,
                    "name": rng.choice(TOOLS),
                    "input": {
                        "file_path": f"{self.cwd}/src/module_{rng.randint(1, 80)}.py",
                        "content": text(rng, 0, 1_500),
                    },
                }
            else:
                content = {"type": "text", "text": text(rng, 30, 800)}
            line = self._base("assistant", sidechain=sidechain)
            line["message"] = {
                "id": message_id,
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [content],
                "stop_reason": "tool_use" if last else None,
                "stop_sequence": None,
                "usage": {
                    **usage_in,
                    "cache_creation": {"ephemeral_5m_input_tokens": usage_in["cache_creation_input_tokens"]},
                    "output_tokens": rng.randint(200, 3_000) if last else rng.randint(1, 40),
                    "service_tier": "standard",
                },
            }
            line["requestId"] = request_id
            lines.append(json.dumps(line))
        return lines, tool_id

    def write(self, path: Path, count: int) -> None:
        rng = self.rng
        with path.open("w") as handle:
            written = 0

            def put(line: str) -> None:
                nonlocal written
                if written < count:
                    handle.write(line + "\n")
                    written += 1

            put(json.dumps({"type": "summary", "summary": "Add a cache layer", "leafUuid": str(uuid.uuid4())}))
            while written < count:
                put(self.prompt())
                for _ in range(rng.randint(1, 12)):
                    lines, tool_id = self.call(rng.choice((1, 2, 2, 3)))
                    for line in lines:
                        put(line)
                    put(self.tool_result(tool_id))
                if rng.random() < 0.2:
                    put(json.dumps({"type": "file-history-snapshot", "messageId": str(uuid.uuid4()), "snapshot": {}}))


def make_transcripts(folder: Path, lines: int, *, projects: int = 8, seed: int = 5) -> tuple[int, int]:
    """Projects with a git origin and session files of skewed sizes; returns (files, bytes)."""
    rng = random.Random(seed)
    sizes = [rng.paretovariate(1.2) for _ in range(60)]
    counts = [int(lines * 0.9 * s / sum(sizes)) for s in sizes]
    counts.append(lines - sum(counts))  # one big session: a tenth of all lines and more
    started = datetime(2026, 10, 1, tzinfo=UTC)
    total_bytes = 0
    for index, count in enumerate(counts):
        project = index % projects
        checkout = folder / "checkouts" / f"service-{project}"
        if not checkout.exists():
            checkout.mkdir(parents=True)
            subprocess.run(["git", "init", "-q", str(checkout)], check=True)
            remote = f"https://github.com/acme/service-{project}.git"
            subprocess.run(["git", "-C", str(checkout), "remote", "add", "origin", remote], check=True)
        sessions = folder / "projects" / str(checkout).replace("/", "-")
        sessions.mkdir(parents=True, exist_ok=True)
        path = sessions / f"{uuid.UUID(int=rng.getrandbits(128))}.jsonl"
        branch = f"feat/task-{rng.randint(1, 400)}"
        session = Session(rng, str(checkout), branch, started + timedelta(hours=index * 3))
        session.write(path, count)
        total_bytes += path.stat().st_size
    return len(counts), total_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--database-url", help="a PostgreSQL admin URL (a database is created and dropped)")
    args = parser.parse_args()

    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        files, size = make_transcripts(folder / "home", args.lines)
        print(f"{files} transcript files, {args.lines:,} lines, {size / 1e6:,.0f} MB")
        if args.database_url:
            database_url = stack.enter_context(postgres_database(args.database_url))
        else:
            database_url = f"sqlite:///{folder / 'import.db'}"
        migrate(database_url)
        token = make_tokens(database_url, ["acme"])["acme"]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENTRAIL_")}
        bare_status, _seconds, bare_kib = run_measured([sys.executable, "-c", "import app.local.importer"], env=env)
        if bare_status != 0:
            raise RuntimeError("python -c 'import app.local.importer' failed")
        with server(database_url, folder / "server.log") as url:
            argv = [sys.executable, "-m", "app.cli", "import", "claude-code", str(folder / "home" / "projects")]
            argv += ["--server", url, "--token", token]
            output = folder / "import.out"
            status, seconds, peak_kib = run_measured(argv, env=env, stdout=output)
        report = output.read_text()
        if status != 0:
            raise RuntimeError(f"the import failed ({status}):\n{report[-3000:]}")
        shutil.rmtree(folder / "home", ignore_errors=True)

    print("\n".join(line for line in report.splitlines() if not line.startswith("claude-code: files")))
    peak, bare = peak_kib / 1024, bare_kib / 1024
    print(
        f"import: peak RSS {peak:.0f} MB for {args.lines:,} lines ({args.lines / seconds:,.0f} lines/s); "
        f"bare interpreter with imports {bare:.0f} MB; ratio {peak / bare:.1f}"
    )


if __name__ == "__main__":
    main()
