"""`tokentrail import claude-code|codex`: transcript folders built here, imported into a real server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.local.importer import Importer
from app.local.progress import Progress, Totals
from app.local.transcripts import SOURCES, Chunk, CodexChunker, SourceKind, claude_code_line
from app.local.upload import Outcome
from app.records import UsageRecord
from app.sources import claude_code, codex
from tests.conftest import ROOT, LiveServer, free_port
from tests.import_support import (
    checkout,  # noqa: F401 - fixtures
    claude_session,
    codex_rollout,
    counts,
    expected_totals,
    requests_sent,
    run_import,
    server_totals,
    totals_of,
    write_jsonl,
)

ACME = {"repository_url": "git@github.com:acme/widgets.git"}


# --- building transcripts ---------------------------------------------------------------------------------------------


# --- expectations from the parsers ------------------------------------------------------------------------------------


def parsed_records(files: list[Path], source: str) -> dict[str, UsageRecord]:
    """What the server's parser reads from each whole file; per id, the copy with the most tokens (as stored)."""
    parse = claude_code.parse if source == "claude-code" else codex.parse
    kept: dict[str, UsageRecord] = {}
    for path in files:
        for record in parse(path.read_bytes()).records:
            if record.id not in kept or record.total_tokens > kept[record.id].total_tokens:
                kept[record.id] = record
    return kept


# --- running the command ----------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_user_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("TOKENTRAIL_TOKEN", "TOKENTRAIL_SERVER", "CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    yield


# --- Claude Code ------------------------------------------------------------------------------------------------------


def test_claude_code_sessions_are_attributed_by_their_folder(
    live_server: LiveServer, token: str, tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    projects = tmp_path / "claude" / "projects"
    here = [
        write_jsonl(
            projects / "-src-widgets" / "s1.jsonl",
            claude_session(cwd=str(checkout), session="s1", branch="feat/cache", calls=4),
        ),
        write_jsonl(
            projects / "-src-widgets" / "s2.jsonl",
            claude_session(cwd=str(checkout / "docs"), session="s2", branch="main", calls=3, start_minute=30),
        ),
    ]
    (checkout / "docs").mkdir()
    gone = str(tmp_path / "moved-away" / "widgets")
    orphan = write_jsonl(
        projects / "-moved-away-widgets" / "s3.jsonl",
        claude_session(cwd=gone, session="s3", branch="feat/old", calls=2),
    )
    expected = parsed_records(here, "claude-code")
    orphans = parsed_records([orphan], "claude-code")

    code, out, err = run_import(capsys, "claude-code", str(projects), "--server", live_server.url, "--token", token)
    assert code == 0, out + err
    assert counts(out) == (len(expected), 0, len(orphans))
    assert f"{len(orphans)} record(s) had no repository" in out
    assert gone in out and "--repo OWNER/NAME" in out
    usage = server_totals(live_server, token)
    assert totals_of(usage) == expected_totals(list(expected.values()))
    assert {row["branch"]: row["records"] for row in usage["by_branch"]} == {"feat/cache": 4, "main": 3}
    assert "claude-code: files 3/3" in err  # the progress line (plain on a non-terminal)

    # Again: nothing is imported twice.
    code, out, _ = run_import(capsys, "claude-code", str(projects), "--server", live_server.url, "--token", token)
    assert code == 0
    assert counts(out) == (0, len(expected), len(orphans))
    assert totals_of(server_totals(live_server, token)) == expected_totals(list(expected.values()))

    # The moved folder, attributed by hand.
    code, out, _ = run_import(
        capsys,
        "claude-code",
        str(orphan.parent),
        "--server",
        live_server.url,
        "--token",
        token,
        "--repo",
        "https://github.com/acme/widgets.git",
    )
    assert code == 0
    assert counts(out) == (len(orphans), 0, 0)
    assert "no repository" not in out
    everything = [*expected.values(), *orphans.values()]
    assert totals_of(server_totals(live_server, token)) == expected_totals(everything)


def test_claude_code_sends_usage_lines_without_conversation_text() -> None:
    session = claude_session(cwd="/x", session="s", branch="b", calls=1)
    sent = [claude_code_line((json.dumps(line) + "\n").encode()) for line in session]
    assert [line is not None for line in sent] == [False, False, True, True]
    body = b"".join(line for line in sent if line)
    assert b"secret source code" not in body and b"please change" not in body
    assert [r.id for r in claude_code.parse(body).records] == [
        r.id for r in claude_code.parse("".join(json.dumps(line) + "\n" for line in session).encode()).records
    ]
    # An unfinished last line (still being written) waits for the next import; a broken full line is sent.
    assert claude_code_line(b'{"message": {"usage": {"input_tok') is None
    assert claude_code_line(b'{"message": {"usage": broken}\n') == b'{"message": {"usage": broken}\n'


# --- Codex ------------------------------------------------------------------------------------------------------------


def test_codex_rollouts_are_imported_once(
    live_server: LiveServer, token: str, tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sessions = tmp_path / "codex-home" / "sessions"
    files = [
        # The rollout's own git info names no repository: the folder's origin remote does.
        write_jsonl(
            sessions / "2026" / "05" / "13" / "rollout-2026-05-13T09-00-00-aaaa.jsonl",
            codex_rollout(
                session="aaaa", cwd=str(checkout), steps=5, git_info={"branch": "feat/codex", "commit_hash": "abc1234"}
            ),
        ),
        # A folder that is gone, but the rollout carries its repository.
        write_jsonl(
            sessions / "2026" / "05" / "14" / "rollout-2026-05-14T09-00-00-bbbb.jsonl",
            codex_rollout(
                session="bbbb",
                cwd=str(tmp_path / "deleted"),
                steps=3,
                git_info={"repository_url": "https://github.com/Acme/Widgets.git", "branch": "main"},
            ),
        ),
    ]
    (sessions / "2026" / "05" / "14" / "notes.jsonl").write_text("{}\n")  # not a rollout: ignored
    expected = parsed_records(files, "codex")
    assert len(expected) == 8

    code, out, err = run_import(capsys, "codex", str(sessions), "--server", live_server.url, "--token", token)
    assert code == 0, out + err
    assert counts(out) == (8, 0, 0)
    assert requests_sent(out) == 2  # one rollout, one request
    usage = server_totals(live_server, token)
    assert totals_of(usage) == expected_totals(list(expected.values()))
    assert {row["branch"] for row in usage["by_branch"]} == {"feat/codex", "main"}

    code, out, _ = run_import(capsys, "codex", str(sessions), "--server", live_server.url, "--token", token)
    assert code == 0
    assert counts(out) == (0, 8, 0)


def test_files_larger_than_one_batch_are_split_without_changing_totals(
    live_server: LiveServer, token: str, tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    claude_file = write_jsonl(
        tmp_path / "projects" / "p" / "long.jsonl",
        claude_session(cwd=str(checkout), session="long", branch="feat/long", calls=9),
    )
    codex_file = write_jsonl(
        tmp_path / "sessions" / "rollout-long.jsonl",
        codex_rollout(session="cccc", cwd=str(checkout), steps=12, rebase_at=7, git_info={"branch": "feat/long"}),
    )
    expected = [*parsed_records([claude_file], "claude-code").values(), *parsed_records([codex_file], "codex").values()]

    server = ["--server", live_server.url, "--token", token]
    code, out, err = run_import(capsys, "claude-code", str(claude_file.parent), "--batch-lines", "4", *server)
    assert code == 0, out + err
    assert requests_sent(out) == 5  # 18 usage lines, 4 a request
    assert counts(out)[2] == 0
    code, out, err = run_import(capsys, "codex", str(codex_file.parent), "--batch-lines", "5", *server)
    assert code == 0, out + err
    assert requests_sent(out) > 3
    assert counts(out) == (12, 0, 0)  # no record twice, no prefix line reported
    assert totals_of(server_totals(live_server, token)) == expected_totals(expected)

    # The same files in one request each give the same ids: all duplicates.
    code, out, _ = run_import(capsys, "codex", str(codex_file.parent), *server)
    assert counts(out) == (0, 12, 0)
    code, out, _ = run_import(capsys, "claude-code", str(claude_file.parent), *server)
    assert counts(out) == (0, 9, 0)


@pytest.mark.parametrize("with_meta", [True, False])
@pytest.mark.parametrize("batch_lines", [1, 2, 3, 4, 5, 7, 10, 1000])
def test_codex_chunks_parse_like_the_whole_file(tmp_path: Path, batch_lines: int, with_meta: bool) -> None:
    lines = codex_rollout(session="dddd", cwd="/w", steps=9, rebase_at=4, with_meta=with_meta, git_info={"branch": "b"})
    raw = [(json.dumps(line) + "\n").encode() for line in lines]
    whole = codex.parse(b"".join(raw))
    assert not whole.rejected
    chunker = CodexChunker(max_lines=batch_lines, max_bytes=10**7)
    chunks = [chunk for line in raw for chunk in chunker.feed(line)] + list(chunker.finish())
    records: list[UsageRecord] = []
    for chunk in chunks:
        batch = codex.parse(b"".join(chunk.lines))
        assert {r.index for r in batch.rejected} <= chunk.ignore
        records.extend(batch.records)
    assert [(r.id, r.input_tokens, r.cache_read_tokens, r.output_tokens, r.model) for r in records] == [
        (r.id, r.input_tokens, r.cache_read_tokens, r.output_tokens, r.model) for r in whole.records
    ]
    assert {r.attribution for r in records} == {r.attribution for r in whole.records}


# --- dry run, failures, defaults --------------------------------------------------------------------------------------


def test_dry_run_uploads_nothing(
    live_server: LiveServer, token: str, tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    projects = tmp_path / "projects"
    write_jsonl(projects / "p" / "s.jsonl", claude_session(cwd=str(checkout), session="d", branch="b", calls=3))
    write_jsonl(projects / "q" / "t.jsonl", claude_session(cwd="/nowhere", session="e", branch="b", calls=2))
    code, out, _ = run_import(capsys, "claude-code", str(projects), "--server", live_server.url, "--dry-run")
    assert code == 0, out
    assert "Dry run, nothing uploaded: 3 usage record(s) would be sent, 2 would be rejected." in out
    assert "2 record(s) had no repository" in out and "/nowhere" in out
    assert server_totals(live_server, token)["records"] == 0


def test_server_down_exits_1_with_a_message(tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_jsonl(tmp_path / "p" / "s.jsonl", claude_session(cwd=str(checkout), session="x", branch="b", calls=1))
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run_import(capsys, "claude-code", str(tmp_path / "p"), "--server", url, "--token", "tt_x")
    assert code == 1
    assert f"cannot reach the server at {url}" in err


def test_a_refused_token_exits_1(
    live_server: LiveServer, tmp_path: Path, checkout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_jsonl(tmp_path / "p" / "s.jsonl", claude_session(cwd=str(checkout), session="x", branch="b", calls=1))
    code, _, err = run_import(capsys, "claude-code", str(tmp_path / "p"), "--server", live_server.url, "--token", "bad")
    assert code == 1
    assert "refused the token (401" in err


def test_a_token_is_required_and_paths_must_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_import(capsys, "codex", str(tmp_path))
    assert code == 2 and "a token is required" in err
    code, _, err = run_import(capsys, "codex", str(tmp_path / "missing"), "--token", "t")
    assert code == 2 and "no such file or folder" in err
    code, _, err = run_import(capsys, "codex", str(tmp_path), "--token", "t", "--batch-lines", "10001")
    assert code == 2 and "--batch-lines" in err


def test_default_folders_honour_claude_config_dir_and_codex_home(tmp_path: Path, checkout: Path) -> None:
    config = tmp_path / "claude-config"
    write_jsonl(
        config / "projects" / "p" / "s.jsonl", claude_session(cwd=str(checkout), session="y", branch="b", calls=2)
    )
    codex_home = tmp_path / "codex-home"
    write_jsonl(
        codex_home / "sessions" / "2026" / "rollout-x.jsonl",
        codex_rollout(session="x", cwd="/w", steps=2, git_info=ACME),
    )
    write_jsonl(
        codex_home / "archived_sessions" / "rollout-y.jsonl",
        codex_rollout(session="y", cwd="/w", steps=1, git_info=ACME),
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLAUDE_CONFIG_DIR": str(config), "CODEX_HOME": str(codex_home)}
    env["HOME"] = str(tmp_path / "empty-home")
    for source, files, records in (("claude-code", 1, 2), ("codex", 2, 3)):
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "import", source, "--dry-run"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert f"Read {files} {source} transcript file(s)" in result.stdout
        assert f"{records} usage record(s) would be sent" in result.stdout


# --- memory -----------------------------------------------------------------------------------------------------------


class CountingUploader:
    def __init__(self) -> None:
        self.lines = 0
        self.largest = 0

    def send(self, source: SourceKind, chunk: Chunk, repo_url: str | None) -> Outcome:
        self.lines += len(chunk.lines)
        self.largest = max(self.largest, chunk.size)
        return Outcome(accepted=chunk.usage_lines)


def test_memory_stays_flat_on_a_large_transcript(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    session = claude_session(cwd="/w", session="big", branch="b", calls=1)
    session[1]["message"]["content"] = "tool output " * 250  # user lines carry file contents and tool output
    user, first, final = (json.dumps(line) + "\n" for line in session[1:])
    with path.open("w") as handle:
        for _ in range(12_000):  # 36,000 lines
            handle.write(user + first + final)
    assert path.stat().st_size > 30_000_000
    uploader = CountingUploader()
    importer = Importer(
        source=SOURCES["claude-code"], uploader=uploader, totals=Totals(), batch_lines=1000, batch_bytes=2_000_000
    )
    tracemalloc.start()
    try:
        importer.run([path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert importer.totals.lines == 36_000
    assert uploader.lines == 24_000
    assert uploader.largest <= 2_000_000
    assert peak < 5_000_000, peak  # one batch, not the file


def test_progress_redraws_in_place_on_a_terminal_and_prints_lines_otherwise() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    totals = Totals(files=2, files_done=1, lines=1234, accepted=5)
    terminal = Terminal()
    progress = Progress(terminal, "codex", interval=0)
    progress.update(totals)
    progress.close(totals)
    assert terminal.getvalue().startswith("\r\x1b[Kcodex: files 1/2 · lines 1,234 · accepted 5")
    assert terminal.getvalue().endswith("\n") and terminal.getvalue().count("\n") == 1
    plain = io.StringIO()
    progress = Progress(plain, "codex", interval=0)
    progress.update(totals)
    progress.close(totals)
    assert plain.getvalue().splitlines() == [progress.line(totals)]  # the same line is not repeated
    assert "\r" not in plain.getvalue()
