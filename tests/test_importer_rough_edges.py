"""`tokentrail import` where a newcomer stumbled (issue 12 §4.7): no summary of an import that never happened, a
rejected line named by file and line with the server's whole reason, a failing exit status when nothing was
stored, and the other agent's transcripts recognised and named.

The server is real (uvicorn); what is under test is the command's own behaviour, so SQLite is enough here (the
server's storage of imports runs on both databases in tests/test_importer.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.sources import claude_code
from tests.conftest import LiveServer
from tests.git_checkouts import make_repo
from tests.import_support import (
    claude_session,
    codex_rollout,
    run_import,
    server_totals,
    write_jsonl,
)

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
BROKEN = b'{"type": "assistant", "message": {"usage": {"input_tokens": 5}, "model": "claude-sonnet-4-5"\n'


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "src" / "widgets", origin="git@github.com:Acme/Widgets.git")


@pytest.fixture(autouse=True)
def _no_user_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("TOKENTRAIL_TOKEN", "TOKENTRAIL_SERVER", "CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


@SQLITE
def test_a_refused_token_prints_no_import_summary(
    live_server: LiveServer, tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_jsonl(tmp_path / "p" / "s.jsonl", claude_session(cwd=str(checkout), session="x", branch="b", calls=1))
    code, out, err = run_import(
        capsys, "claude-code", str(tmp_path / "p"), "--server", live_server.url, "--token", "no"
    )
    assert code == 1 and "refused the token (401" in err
    assert "Imported" not in out and "transcript file(s)" not in out


@SQLITE
def test_a_malformed_line_is_named_by_file_and_line_with_the_whole_reason(
    live_server: LiveServer, token: str, tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = write_jsonl(
        tmp_path / "p" / "s.jsonl", claude_session(cwd=str(checkout), session="m", branch="b", calls=2)
    )
    lines = transcript.read_bytes().splitlines(keepends=True)
    lines.insert(3, BROKEN)  # line 4 of the file
    transcript.write_bytes(b"".join(lines))
    reason = claude_code.parse(lines[1] + BROKEN).rejected[-1].error  # what the server's parser says of it, whole
    code, out, _ = run_import(capsys, "claude-code", str(tmp_path / "p"), "--server", live_server.url, "--token", token)
    assert code == 0, out  # the good records are stored; one line was refused
    assert f"{transcript}:4: {reason}" in out
    assert server_totals(live_server, token)["records"] == 2


@SQLITE
def test_every_record_rejected_exits_1(
    live_server: LiveServer, token: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = tmp_path / "p" / "s.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_bytes(BROKEN + BROKEN)
    code, out, err = run_import(capsys, "claude-code", str(transcript), "--server", live_server.url, "--token", token)
    assert code == 1, out
    assert f"{transcript}:1:" in out and f"{transcript}:2:" in out
    assert "every record was rejected: nothing was stored" in err


def test_a_codex_rollout_given_to_claude_code_is_named(
    tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rollout = write_jsonl(
        tmp_path / "rollout-2026-05-13T09-00-00-abc.jsonl", codex_rollout(session="r", cwd=str(checkout), steps=2)
    )
    code, out, err = run_import(capsys, "claude-code", str(rollout), "--dry-run")
    assert code == 1, out
    assert f"{rollout}: this looks like a Codex rollout: use `tokentrail import codex`" in err


def test_a_claude_code_transcript_given_to_codex_is_named(
    tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = write_jsonl(tmp_path / "s.jsonl", claude_session(cwd=str(checkout), session="c", branch="b", calls=1))
    code, _, err = run_import(capsys, "codex", str(transcript), "--dry-run")
    assert code == 1
    assert f"{transcript}: this looks like a Claude Code transcript: use `tokentrail import claude-code`" in err
    folder = tmp_path  # a folder of Claude Code transcripts holds no rollout-*.jsonl: say what it does hold
    code, out, err = run_import(capsys, "codex", str(folder), "--dry-run")
    assert code == 1
    assert "this looks like a Claude Code transcript: use `tokentrail import claude-code`" in err + out


def test_the_right_format_imports_as_before(tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rollout = write_jsonl(tmp_path / "rollout-x.jsonl", codex_rollout(session="r", cwd=str(checkout), steps=2))
    code, _, err = run_import(capsys, "codex", str(rollout), "--dry-run")
    assert code == 0 and "looks like" not in err, err


@SQLITE
def test_a_line_the_server_refuses_is_named_by_file_and_line(
    live_server: LiveServer, token: str, tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Valid JSON the server's parser refuses: the rejection's index in the request leads back to the file's line,
    across requests (one line per request here) and with the reason whole."""
    session = claude_session(cwd=str(checkout), session="t", branch="b", calls=3)
    session[5]["timestamp"] = "yesterday, around tea time, " + "give or take " * 20  # a long reason
    transcript = write_jsonl(tmp_path / "p" / "s.jsonl", session)
    reason = claude_code.parse(transcript.read_bytes()).rejected[0].error
    assert len(reason) > 160
    code, out, _ = run_import(
        capsys, "claude-code", str(transcript), "--server", live_server.url, "--token", token, "--batch-lines", "1"
    )
    assert code == 0, out
    assert f"{transcript}:6: {reason}" in out
