"""`tokentrail hooks`: Claude Code's SessionEnd/Stop hooks and Codex's notify program, installed into real settings
files in a temporary HOME, and run as the agents run them against a real `tokentrail serve` (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from app.cli import build_parser
from app.local import hook_run, hooks, hooks_cli
from app.sources import claude_code, codex
from tests.conftest import LiveServer, make_token, start_server
from tests.oidc_scene import seed, wait_for

FIXTURES = Path(__file__).resolve().parent / "fixtures"
REPO = "acme/widgets"
NUMBER = 12
BRANCH = "feat/cache"  # the seeded PR's head branch


def cli(home: Path, *argv: str) -> tuple[int, str, str]:
    """`tokentrail hooks …` in-process, with HOME (and nothing else of the user's) in its environment."""
    out, err = _Buffer(), _Buffer()
    args = build_parser().parse_args(["hooks", *argv])
    code = hooks_cli.main(args, environ={"HOME": str(home)}, home=home, out=out, err=err)
    return code, out.text, err.text


class _Buffer:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text


USER_SETTINGS: dict[str, Any] = {
    "model": "opus",
    "permissions": {"allow": ["Bash(npm run test:*)"], "deny": []},
    "hooks": {
        "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "~/bin/audit.sh"}]}],
        "SessionEnd": [{"hooks": [{"type": "command", "command": "~/bin/notify-done"}]}],
    },
    "env": {"FOO": "bar"},
}


def test_claude_code_install_reinstall_live_and_uninstall(tmp_path: Path) -> None:
    settings = tmp_path / ".claude" / "settings.json"
    settings.parent.mkdir()
    original = json.dumps(USER_SETTINGS, indent=4) + "\n"
    settings.write_text(original)

    code, out, err = cli(tmp_path, "install", "claude-code", "--server", "http://t.example", "--token", "tt_secret")
    assert code == 0 and "added the SessionEnd hook" in out, (out, err)
    installed = json.loads(settings.read_text())
    assert '\n    "model": "opus"' in settings.read_text()  # the file's own indentation
    assert list(installed) == list(USER_SETTINGS)
    assert {k: v for k, v in installed.items() if k != "hooks"} == {
        k: v for k, v in USER_SETTINGS.items() if k != "hooks"
    }
    assert installed["hooks"]["PreToolUse"] == USER_SETTINGS["hooks"]["PreToolUse"]
    user_hook, ours = installed["hooks"]["SessionEnd"]
    assert user_hook == USER_SETTINGS["hooks"]["SessionEnd"][0]
    (entry,) = ours["hooks"]
    assert entry["type"] == "command" and shlex.split(entry["command"])[-3:] == ["hooks", "run", "claude-code"]
    assert "Stop" not in installed["hooks"]
    config = tmp_path / ".config" / "tokentrail" / "hooks.json"
    assert json.loads(config.read_text()) == {"server": "http://t.example", "token": "tt_secret"}
    assert stat.S_IMODE(config.stat().st_mode) == 0o600

    # a second install changes nothing: not even the file's time
    before = (settings.read_bytes(), settings.stat().st_mtime_ns)
    code, out, _ = cli(tmp_path, "install", "claude-code")
    assert code == 0 and "already installed" in out
    assert (settings.read_bytes(), settings.stat().st_mtime_ns) == before

    # --live adds the Stop hook, once
    assert "added the Stop hook" in cli(tmp_path, "install", "claude-code", "--live")[1]
    assert "already installed" in cli(tmp_path, "install", "claude-code", "--live")[1]
    assert len(json.loads(settings.read_text())["hooks"]["Stop"]) == 1

    code, out, _ = cli(tmp_path, "uninstall", "claude-code")
    assert code == 0 and "removed the SessionEnd and Stop hook" in out
    assert settings.read_text() == original  # exactly what was there
    assert "not installed" in cli(tmp_path, "uninstall", "claude-code")[1]


def test_claude_code_install_on_a_fresh_home_and_bad_settings(tmp_path: Path) -> None:
    code, _, err = cli(tmp_path, "install", "claude-code")
    assert code == 0 and "no token stored yet" in err
    settings = tmp_path / ".claude" / "settings.json"
    assert list(json.loads(settings.read_text())["hooks"]) == ["SessionEnd"]
    cli(tmp_path, "uninstall", "claude-code")
    assert json.loads(settings.read_text()) == {}

    settings.write_text("{not json")
    code, _, err = cli(tmp_path, "install", "claude-code")
    assert code == 1 and "not valid JSON" in err and settings.read_text() == "{not json"


USER_CODEX = """# my Codex settings
model = "gpt-5-codex"   # the default model
approval_policy = "on-request"

[model_providers.proxy]
name = "proxy"
base_url = "http://localhost:4000/v1"
env_http_headers = { "x-vcs-ref-head-name" = "TT_BRANCH" }

[profiles.fast]
model = "gpt-5-mini"
"""


def test_codex_install_reinstall_and_uninstall_keep_the_file_text(tmp_path: Path) -> None:
    config = tmp_path / ".codex" / "config.toml"
    config.parent.mkdir()
    config.write_text(USER_CODEX)

    code, out, _ = cli(tmp_path, "install", "codex", "--token", "tt_secret")
    assert code == 0 and "added the notify program" in out
    text = config.read_text()
    assert text.endswith(USER_CODEX)  # the user's text, byte for byte, after the two lines added on top
    parsed = tomllib.loads(text)
    assert parsed["notify"][-3:] == ["hooks", "run", "codex"]
    assert parsed["model_providers"] == tomllib.loads(USER_CODEX)["model_providers"]

    before = config.read_bytes()
    assert "already installed" in cli(tmp_path, "install", "codex")[1]
    assert config.read_bytes() == before

    assert "removed the notify program" in cli(tmp_path, "uninstall", "codex")[1]
    assert config.read_text() == USER_CODEX
    assert "not installed" in cli(tmp_path, "uninstall", "codex")[1]

    # Codex runs one notify program: a user's own is never replaced
    config.write_text('notify = ["notify-send", "Codex"]\n' + USER_CODEX)
    code, _, err = cli(tmp_path, "install", "codex")
    assert code == 1 and "already runs a notify program" in err
    assert config.read_text().startswith('notify = ["notify-send", "Codex"]\n')
    assert "--live is for claude-code" in cli(tmp_path, "install", "codex", "--live")[2]


# ---------------------------------------------------------------- the hooks, run as the agents run them


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(database_url=database_url, log=tmp_path / "server.log")
    yield live
    live.stop()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A clone of acme/widgets: the folder the agent's session ran in."""
    folder = tmp_path / "src" / "widgets"
    folder.mkdir(parents=True)
    environment = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    for argv in (["init", "-q"], ["remote", "add", "origin", "https://github.com/acme/widgets.git"]):
        subprocess.run(["git", *argv], cwd=folder, check=True, env=environment)
    return folder


def agent_env(home: Path) -> dict[str, str]:
    """What the agent hands its hooks: its own environment, here a user with nothing of Tokentrail's set."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}


def pull_records(server: LiveServer, token: str) -> int:
    response = httpx.get(
        f"{server.url}/v1/repos/{REPO}/pulls/{NUMBER}", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    return int(response.json()["usage"]["records"]) if response.status_code == 200 else -1


def fixture_lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


def rewritten(lines: list[dict[str, Any]], start: datetime) -> bytes:
    for index, line in enumerate(lines):
        if "timestamp" in line:
            line["timestamp"] = (start + timedelta(seconds=index)).isoformat().replace("+00:00", "Z")
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def test_claude_code_session_end_uploads_the_transcript_to_its_pull_request(
    server: LiveServer, factory: sessionmaker[Session], tmp_path: Path, checkout: Path
) -> None:
    token = make_token(factory, "acme")
    opened = seed(server.url, token, repo=REPO, number=NUMBER, costs=("0.25",))
    home = tmp_path / "home"
    assert cli(home, "install", "claude-code", "--server", server.url, "--token", token)[0] == 0

    lines = [
        json.loads(line)
        for line in (FIXTURES / "claude_code" / "session_streaming.jsonl").read_text().split("\n")
        if line
    ]
    for line in lines:
        if "cwd" in line:
            line["cwd"], line["gitBranch"] = str(checkout), BRANCH  # the branch, per line: no env needed
    transcript = home / ".claude" / "projects" / "-src-widgets" / "8c0e7d41-3b2a-4f19-9e5d-6a7b8c9d0e1f.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_bytes(rewritten(lines, opened + timedelta(minutes=20)))
    expected = len(claude_code.parse(transcript.read_bytes()).records)
    assert expected >= 1

    # the command exactly as installed, with the hook JSON on stdin, as Claude Code runs it
    settings = json.loads((home / ".claude" / "settings.json").read_text())
    command = settings["hooks"]["SessionEnd"][0]["hooks"][0]["command"]
    hook_input = {
        "session_id": "8c0e7d41-3b2a-4f19-9e5d-6a7b8c9d0e1f",
        "transcript_path": str(transcript),
        "cwd": str(checkout),
        "hook_event_name": "SessionEnd",
        "reason": "prompt_input_exit",
    }
    done = subprocess.run(
        ["bash", "-c", command],
        input=json.dumps(hook_input),
        text=True,
        capture_output=True,
        env=agent_env(home),
        cwd=checkout,
        timeout=30,
    )
    assert done.returncode == 0 and done.stdout == "", done
    wait_for(lambda: pull_records(server, token) == 1 + expected, what="the transcript on the PR")
    log = home / ".config" / "tokentrail" / hook_run.LOG_NAME
    wait_for(lambda: f"{expected} new" in log.read_text(), what="the upload's log line")

    # the same session ending again (a resumed session) adds nothing
    again = subprocess.run(
        ["bash", "-c", command],
        input=json.dumps(hook_input),
        text=True,
        capture_output=True,
        env=agent_env(home),
        timeout=30,
    )
    assert again.returncode == 0
    wait_for(lambda: f"0 new, {expected} already sent" in log.read_text(), what="the second upload")
    assert pull_records(server, token) == 1 + expected


def test_codex_notify_uploads_the_rollout_of_its_thread(
    server: LiveServer, factory: sessionmaker[Session], tmp_path: Path, checkout: Path
) -> None:
    token = make_token(factory, "acme")
    opened = seed(server.url, token, repo=REPO, number=NUMBER, costs=("0.25",))
    home = tmp_path / "home"
    assert cli(home, "install", "codex", "--server", server.url, "--token", token)[0] == 0

    lines = [
        json.loads(line) for line in (FIXTURES / "codex" / "rollout_model_switch.jsonl").read_text().split("\n") if line
    ]
    thread = lines[0]["payload"]["id"]
    lines[0]["payload"]["cwd"] = str(checkout)
    lines[0]["payload"]["git"]["branch"] = BRANCH
    rollout = home / ".codex" / "sessions" / "2026" / "01" / "01" / f"rollout-2026-01-01T10-00-00-{thread}.jsonl"
    rollout.parent.mkdir(parents=True)
    rollout.write_bytes(rewritten(lines, opened + timedelta(minutes=20)))
    expected = len(codex.parse(rollout.read_bytes()).records)

    argv = tomllib.loads((home / ".codex" / "config.toml").read_text())["notify"]
    notification = {
        "type": "agent-turn-complete",
        "thread-id": thread,
        "turn-id": "12345",
        "cwd": str(checkout),
        "input-messages": ["Add an LRU cache"],
        "last-assistant-message": "Added the cache.",
    }
    done = subprocess.run(
        [*argv, json.dumps(notification)], capture_output=True, text=True, env=agent_env(home), timeout=30
    )
    assert done.returncode == 0, done
    wait_for(lambda: pull_records(server, token) == 1 + expected, what="the rollout on the PR")


def test_a_hook_never_fails_the_agent(tmp_path: Path) -> None:
    """No token, a bad payload, an unknown thread, an unreachable server: exit 0, and the log says why."""
    home = tmp_path / "home"
    log = home / ".config" / "tokentrail" / hook_run.LOG_NAME
    script = Path(hooks.hook_argv("claude-code")[0])
    runs = [
        ([str(script), "hooks", "run", "claude-code"], "not json"),
        ([str(script), "hooks", "run", "codex", json.dumps({"type": "agent-turn-complete", "thread-id": "nope"})], ""),
    ]
    for argv, stdin in runs:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=agent_env(home), timeout=30)
        assert (done.returncode, done.stdout) == (0, ""), done
    text = log.read_text()
    assert "claude-code: hook failed" in text and "codex: nothing to upload" in text

    transcript = tmp_path / "t.jsonl"
    transcript.write_text("{}\n")
    assert hook_run.upload("claude-code", transcript, environ={}, home=home) == 0
    assert "no token" in log.read_text()
    unreachable = {"TOKENTRAIL_TOKEN": "tt_x", "TOKENTRAIL_SERVER": "http://127.0.0.1:9"}
    assert hook_run.upload("claude-code", transcript, environ=unreachable, home=home) == 0
