"""Telemetry that Gemini CLI and Copilot sent without a repository, then `tokentrail import gemini|copilot`, against
a real server on SQLite and PostgreSQL: the telemetry waits, counted nowhere, and the import of the session's file
gives it its repository; each call counts once."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.local.agent_files import copilot_span_line
from app.sources import gemini, otlp
from tests.conftest import FIXTURES, LiveServer
from tests.import_support import (
    GEMINI_CHATS,
    checkout,
    counts,
    gemini_project_chats,
    run_import,
    server_totals,
    totals_of,
)
from tests.import_support import expected_totals as totals_expected
from tests.session_scene import gemini_events

__all__ = ["checkout"]  # the fixture
GEMINI_SESSION = "7c1f9a52-3b0e-4d6a-9e8f-2a1b3c4d5e6f"  # the first fixture chat's sessionId, and its events'
LATER_REPLY = (16000, 15000, 40, 0, 0)  # a reply gemini-cli reported after the chat file was last written


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ("TOKENTRAIL_TOKEN", "TOKENTRAIL_SERVER", "COPILOT_OTEL_FILE_EXPORTER_PATH"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    return home


def _send(server: LiveServer, token: str, path: str, body: bytes, content_type: str) -> dict[str, Any]:
    """What the agent's own OTLP exporter sends: no `x-vcs-*` header, no repository attribute."""
    headers = {"Authorization": f"Bearer {token}", "content-type": content_type}
    response = httpx.post(f"{server.url}{path}", content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_gemini_events_wait_for_tokentrail_import_gemini(
    live_server: LiveServer,
    token: str,
    tmp_path: Path,
    checkout: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    chats = gemini_project_chats(tmp_path / "home", checkout)
    events = (FIXTURES / "gemini/otel_api_response.json").read_bytes()
    later = gemini_events(GEMINI_SESSION, [LATER_REPLY])
    for body, accepted in ((events, 3), (later, 1)):
        answer = _send(live_server, token, "/v1/ingest/otlp/v1/logs", body, "application/json")
        assert (answer["accepted"], answer["rejected"]) == (accepted, [])
    assert server_totals(live_server, token)["records"] == 0  # waiting: counted nowhere

    monkeypatch.chdir(checkout)
    code, out, err = run_import(capsys, "gemini", "--server", live_server.url, "--token", token)
    assert (code, counts(out)) == (0, (6, 0, 0)), out + err
    # The chats' six replies (three of them also reported by the events), and the later reply the events alone hold.
    expected = [r for name in GEMINI_CHATS for r in gemini.parse((chats / name).read_bytes()).records]
    expected += otlp.parse_logs(later).records
    assert totals_of(server_totals(live_server, token)) == totals_expected(expected)


def test_copilot_spans_wait_for_tokentrail_import_copilot(
    live_server: LiveServer,
    token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    exported = tmp_path / "copilot-otel.jsonl"
    shutil.copy(FIXTURES / "copilot/otel_file_exporter.jsonl", exported)
    monkeypatch.setenv("COPILOT_OTEL_FILE_EXPORTER_PATH", str(exported))
    spans = b"".join(line for raw in exported.read_bytes().splitlines(True) if (line := copilot_span_line(raw)))
    answer = _send(live_server, token, "/v1/ingest/otlp/v1/traces", spans, "application/x-ndjson")
    assert (answer["accepted"], answer["rejected"]) == (2, [])
    assert server_totals(live_server, token)["records"] == 0

    # Imported without naming the repository, the file would only wait too: nothing is sent, and the summary says
    # what to do.
    code, out, _ = run_import(capsys, "copilot", "--server", live_server.url, "--token", token)
    assert counts(out) == (0, 0, 2) and "--repo OWNER/NAME" in out
    code, out, err = run_import(
        capsys, "copilot", "--server", live_server.url, "--token", token, "--repo", "acme/widgets"
    )
    assert (code, counts(out)) == (0, (2, 0, 0)), out + err
    expected = otlp.parse_traces(spans, ndjson=True).records
    assert totals_of(server_totals(live_server, token)) == totals_expected(expected)
    again = _send(live_server, token, "/v1/ingest/otlp/v1/traces", spans, "application/x-ndjson")
    assert (again["accepted"], again["duplicates"]) == (0, 2)
