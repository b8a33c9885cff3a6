"""Helpers shared by several test modules (moved from their first test module, so that none imports another)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import main
from app.records import UsageRecord
from tests.conftest import FIXTURES, LiveServer
from tests.git_checkouts import make_repo

CLAUDE_MODEL = "claude-sonnet-4-5-20250929"


CODEX_MODEL = "gpt-5-codex"


TOKEN_FIELDS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def claude_session(*, cwd: str, session: str, branch: str, calls: int, start_minute: int = 0) -> list[dict[str, Any]]:
    """A Claude Code transcript: a summary line, then per call a user line (with text) and two streamed copies of
    the assistant message (the second with the final output count)."""
    common = {"isSidechain": False, "userType": "external", "cwd": cwd, "sessionId": session, "version": "2.0.14"}
    lines: list[dict[str, Any]] = [{"type": "summary", "summary": "work on widgets", "leafUuid": f"{session}-leaf"}]
    for n in range(calls):
        minute = start_minute + n
        timestamp = f"2025-10-14T{9 + minute // 60:02d}:{minute % 60:02d}:00.000Z"
        lines.append(
            {
                **common,
                "gitBranch": branch,
                "type": "user",
                "uuid": f"{session}-u{n}",
                "timestamp": timestamp,
                "message": {"role": "user", "content": f"please change widget {n}: " + "x" * 300},
            }
        )
        for copy, output in enumerate((7, 100 + n)):
            lines.append(
                {
                    **common,
                    "gitBranch": branch,
                    "type": "assistant",
                    "uuid": f"{session}-a{n}-{copy}",
                    "requestId": f"req_{session}_{n}",
                    "timestamp": timestamp.replace(":00.000Z", f":0{copy + 1}.000Z"),
                    "message": {
                        "id": f"msg_{session}_{n}",
                        "type": "message",
                        "role": "assistant",
                        "model": CLAUDE_MODEL,
                        "content": [{"type": "text", "text": f"secret source code {n} " + "y" * 200}],
                        "usage": {
                            "input_tokens": 3 + n,
                            "cache_creation_input_tokens": 1000 + n,
                            "cache_read_input_tokens": 20000 + 10 * n,
                            "output_tokens": output,
                        },
                    },
                }
            )
    return lines


def codex_rollout(
    *,
    session: str,
    cwd: str,
    steps: int,
    git_info: dict[str, str] | None = None,
    rebase_at: int | None = None,
    with_meta: bool = True,
) -> list[dict[str, Any]]:
    """A Codex rollout: session_meta, turn_context, and per model response a message, a tool output, the
    token_count event with cumulative totals, a repeat of it, and a rate-limits-only token_count."""
    lines: list[dict[str, Any]] = []
    if with_meta:
        meta: dict[str, Any] = {
            "id": session,
            "timestamp": "2026-05-13T09:00:00Z",
            "cwd": cwd,
            "originator": "codex_cli_rs",
        }
        meta["cli_version"] = "0.46.0"
        meta["instructions"] = "Be careful."
        if git_info is not None:
            meta["git"] = git_info
        lines.append({"timestamp": "2026-05-13T09:00:00.000Z", "type": "session_meta", "payload": meta})
    lines.append(
        {
            "timestamp": "2026-05-13T09:00:00.500Z",
            "type": "turn_context",
            "payload": {"cwd": cwd, "approval_policy": "on-request", "model": CODEX_MODEL, "summary": "auto"},
        }
    )
    total = dict.fromkeys(("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens"), 0)
    for n in range(steps):
        timestamp = f"2026-05-13T{10 + n // 60:02d}:{n % 60:02d}:00.000Z"
        lines.append(
            {
                "timestamp": timestamp,
                "type": "response_item",
                "payload": {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "z" * 200}],
                },
            }
        )
        # A tool output that merely mentions a marker the importer looks for.
        lines.append(
            {
                "timestamp": timestamp,
                "type": "response_item",
                "payload": {"type": "function_call_output", "call_id": f"c{n}", "output": 'grep "token_count" app/'},
            }
        )
        last = {"input_tokens": 1000 + n, "cached_input_tokens": 400 + n, "output_tokens": 50 + n}
        last["reasoning_output_tokens"] = 10
        if rebase_at is not None and n == rebase_at:
            total = dict.fromkeys(total, 0)  # the counters restart (a resumed session)
        total = {key: total[key] + last[key] for key in total}
        usage = {**total, "total_tokens": total["input_tokens"] + total["output_tokens"]}
        last_usage = {**last, "total_tokens": last["input_tokens"] + last["output_tokens"]}
        event = {
            "timestamp": timestamp,
            "type": "event_msg",
            "payload": {"type": "token_count", "info": {"total_token_usage": usage, "last_token_usage": last_usage}},
        }
        lines.append(event)
        lines.append({**event, "timestamp": timestamp.replace(":00.000Z", ":01.000Z")})  # a repeat
        lines.append(
            {
                "timestamp": timestamp,
                "type": "event_msg",
                "payload": {"type": "token_count", "info": None, "rate_limits": {"primary": {"used_percent": 5}}},
            }
        )
    return lines


def expected_totals(records: list[UsageRecord]) -> dict[str, int]:
    totals = {name: sum(getattr(r, name) for r in records) for name in TOKEN_FIELDS}
    totals["records"] = len(records)
    return totals


def server_totals(server: LiveServer, token: str, repo: str = "acme/widgets") -> dict[str, Any]:
    response = httpx.get(f"{server.url}/v1/repos/{repo}/usage", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def totals_of(usage: dict[str, Any]) -> dict[str, int]:
    return {name: usage[name] for name in (*TOKEN_FIELDS, "records")}


def run_import(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["import", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def counts(out: str) -> tuple[int, int, int]:
    match = re.search(r"Records: ([\d,]+) accepted, ([\d,]+) duplicates .*?, ([\d,]+) rejected", out)
    assert match, out
    accepted, duplicates, rejected = (int(group.replace(",", "")) for group in match.groups())
    return accepted, duplicates, rejected


def requests_sent(out: str) -> int:
    match = re.search(r"in (\d+) request", out)
    assert match, out
    return int(match.group(1))


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "src" / "widgets", origin="git@github.com:Acme/Widgets.git")


GEMINI_CHATS = ("session-2025-10-15T09-00-7c1f9a52.json", "session-2025-10-16T14-00-9d2e8b41.jsonl")


def gemini_project_chats(home: Path, folder: Path) -> Path:
    """Gemini CLI's chats of a project (the two fixture chats), under the hash gemini-cli gives that folder."""
    project = hashlib.sha256(str(folder).encode()).hexdigest()
    chats = home / ".gemini" / "tmp" / project / "chats"
    chats.mkdir(parents=True)
    for name in GEMINI_CHATS:
        text = (
            (FIXTURES / "gemini" / name)
            .read_text()
            .replace("5b3e0f4e0c2bd1c4e76bb5c4b0a3bd1d2f5d0e6f7c4f3c6c1b3e9a3d2b7c8e91", project)
        )
        (chats / name).write_text(text)
    # gemini-cli keeps the prompts' log next to the chats: it is never read.
    (chats.parent / "logs.json").write_text(json.dumps([{"sessionId": "x", "type": "user", "message": "secret"}]))
    return chats
