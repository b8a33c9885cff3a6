"""`tokentrail import gemini|copilot`: real files in a temporary HOME, imported into a real server."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from app.local.agent_files import copilot_span_line, gemini_lines, project_folder
from app.sources import gemini, otlp
from tests.conftest import FIXTURES, LiveServer
from tests.import_support import (
    GEMINI_CHATS,
    checkout,
    counts,
    gemini_project_chats,
    requests_sent,
    run_import,
    server_totals,
    totals_of,
)
from tests.import_support import expected_totals as totals_expected

GEMINI = FIXTURES / "gemini"
__all__ = ["checkout"]  # the fixture, shared with the Claude Code and Codex import tests
CHATS = GEMINI_CHATS


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("TOKENTRAIL_TOKEN", "TOKENTRAIL_SERVER", "COPILOT_OTEL_FILE_EXPORTER_PATH"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return home


def test_gemini_chats_are_imported_from_the_default_folder_and_attributed_by_their_project(
    live_server: LiveServer,
    token: str,
    tmp_path: Path,
    checkout: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chats = gemini_project_chats(tmp_path / "home", checkout)
    # A subagent's chat sits in a folder named after its parent session.
    subagent = chats / "7c1f9a52-3b0e-4d6a-9e8f-2a1b3c4d5e6f" / "0a1b2c3d-sub.jsonl"
    subagent.parent.mkdir()
    reply = {"id": "sub-1", "timestamp": "2025-10-15T09:00:40Z", "type": "gemini", "model": "gemini-2.5-flash"}
    reply["tokens"] = {"input": 900, "output": 30, "cached": 0, "thoughts": 0, "tool": 0, "total": 930}
    subagent.write_text(
        json.dumps({"sessionId": "sub", "projectHash": "x", "kind": "subagent"}) + "\n" + json.dumps(reply) + "\n"
    )
    (checkout / "src").mkdir(exist_ok=True)
    monkeypatch.chdir(checkout / "src")  # gemini-cli ran at the checkout's root; the import runs below it
    expected = [r for path in [*(chats / n for n in CHATS), subagent] for r in gemini.parse(path.read_bytes()).records]
    assert len(expected) == 7

    code, out, err = run_import(capsys, "gemini", "--server", live_server.url, "--token", token)
    # The subagent's file names another project hash: it has no repository unless --repo says one.
    assert (code, counts(out)) == (0, (6, 0, 1)), out + err
    assert requests_sent(out) == 3  # one request a file
    usage = server_totals(live_server, token)
    assert totals_of(usage) == totals_expected(expected[:6])
    assert usage["unpriced_records"] == 0

    code, out, _ = run_import(capsys, "gemini", "--server", live_server.url, "--token", token, "--repo", "acme/widgets")
    assert counts(out) == (1, 6, 0)  # again: duplicates; the subagent's reply lands with --repo


def test_gemini_import_sends_usage_fields_only() -> None:
    meta, project, lines = gemini_lines(GEMINI / CHATS[0])
    sent = b"".join([meta or b"", *lines])
    assert project == "5b3e0f4e0c2bd1c4e76bb5c4b0a3bd1d2f5d0e6f7c4f3c6c1b3e9a3d2b7c8e91"
    for private in (b"Add retries", b"client.ts", b"Planning", b"backoff", b"functionResponse"):
        assert private not in sent
    assert len(gemini.parse(sent).records) == 3


def test_the_project_folder_is_found_from_a_subfolder(tmp_path: Path) -> None:
    root = tmp_path / "widgets"
    digest = hashlib.sha256(str(root).encode()).hexdigest()
    assert project_folder(digest, root / "src" / "lib") == str(root)
    assert project_folder("0" * 64, root) is None and project_folder(None, root) is None


def test_copilot_file_from_its_environment_variable(
    live_server: LiveServer,
    token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exported = tmp_path / "copilot-otel.jsonl"
    shutil.copy(FIXTURES / "copilot/otel_file_exporter.jsonl", exported)
    monkeypatch.setenv("COPILOT_OTEL_FILE_EXPORTER_PATH", str(exported))
    args = ("copilot", "--server", live_server.url, "--token", token, "--repo", "acme/widgets")
    code, out, err = run_import(capsys, *args)
    assert (code, counts(out)) == (0, (2, 0, 0)), out + err  # the two chat spans; invoke_agent holds their totals
    body = b"".join(line for raw in exported.read_bytes().splitlines(True) if (line := copilot_span_line(raw)))
    expected = otlp.parse_traces(body, ndjson=True).records
    assert totals_of(server_totals(live_server, token)) == totals_expected(expected)
    assert counts(run_import(capsys, *args)[1]) == (0, 2, 0)


def test_copilot_lines_keep_no_message_content() -> None:
    span = json.loads((FIXTURES / "copilot/otel_file_exporter.jsonl").read_text().splitlines()[0])
    span["attributes"]["gen_ai.input.messages"] = '[{"role":"user","content":"the secret plan"}]'
    span["attributes"]["copilot_chat.user_request"] = "the secret plan"
    line = copilot_span_line(json.dumps(span).encode())
    assert line is not None and b"secret" not in line
    (record,) = otlp.parse_traces(line, ndjson=True).records
    assert (record.model, record.input_tokens, record.cache_read_tokens, record.output_tokens) == (
        "claude-sonnet-4.5",
        3250,
        15000,
        412,
    )
    assert record.session_id == "c0ffee00-1234-4abc-9def-0123456789ab"
    assert copilot_span_line(b'{"hrTime":[1,2],"attributes":{"gen_ai.usage.input_tokens":1}}\n') is None


def test_copilot_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_import(capsys, "copilot", "--dry-run")
    assert code == 2 and "COPILOT_OTEL_FILE_EXPORTER_PATH" in err
