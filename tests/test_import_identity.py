"""Who imported records belong to: `tokentrail import` sends the checkout's git e-mail in `x-tokentrail-actor`,
and every ingest endpoint fills the actor of the records that name none from that header (transcripts and Codex
rollouts name no person, so their records used to show as "—")."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.cli import main
from app.local.importer import IdentityResolver
from app.local.upload import ACTOR_HEADER
from tests.conftest import LiveServer
from tests.git_checkouts import make_repo
from tests.import_support import claude_session, codex_rollout, write_jsonl

PERIOD = {"since": "2025-10-01", "until": "2026-06-01"}


def _record(record_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": record_id, "timestamp": "2026-03-02T10:00:00Z", "model": "claude-sonnet-4-5", "cost_usd": "1",
            "repo": "acme/widgets", "branch": "spike", "agent": "codex"} | fields  # fmt: skip


def _authors(client: TestClient | httpx.Client, auth: dict[str, str]) -> dict[str | None, int]:
    report = client.get("/v1/orgs/acme/report", params=PERIOD, headers=auth).json()
    return {a["author"]: a["records"] for a in report["by_author"]}


def test_the_header_fills_the_actor_of_records_without_one(client: TestClient, auth: dict[str, str]) -> None:
    body = json.dumps([_record("a"), _record("b", actor="carol"), _record("c")])
    headers = {**auth, "content-type": "application/json", ACTOR_HEADER: " alice@acme.dev "}
    response = client.post("/v1/usage", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["accepted"] == 3, response.text
    assert _authors(client, auth) == {"alice@acme.dev": 2, "carol": 1}

    blank = client.post("/v1/usage", content=json.dumps([_record("d")]), headers={**headers, ACTOR_HEADER: "  "})
    assert blank.status_code == 200
    assert _authors(client, auth) == {"alice@acme.dev": 2, "carol": 1, None: 1}


def test_an_overlong_header_is_a_400(client: TestClient, auth: dict[str, str]) -> None:
    headers = {**auth, "content-type": "application/json", ACTOR_HEADER: "a" * 256 + "@acme.dev"}
    response = client.post("/v1/usage", content=json.dumps([_record("a")]), headers=headers)
    assert response.status_code == 400
    assert response.json() == {"detail": f"{ACTOR_HEADER} is longer than 255 characters"}
    assert _authors(client, auth) == {}


def test_a_folder_that_is_gone_takes_the_identity_of_the_current_directory(tmp_path: Path) -> None:
    asked: list[Path | None] = []

    def read(folder: Path | None) -> str | None:
        asked.append(folder)
        return "here@acme.dev" if folder is None else f"{folder.name}@acme.dev"

    identify = IdentityResolver(read)
    (tmp_path / "widgets").mkdir()
    assert identify(str(tmp_path / "widgets")) == "widgets@acme.dev"
    assert identify(str(tmp_path / "gone")) == "here@acme.dev"
    assert identify(None) == "here@acme.dev"
    assert identify(str(tmp_path / "widgets")) == "widgets@acme.dev"
    assert asked == [tmp_path / "widgets", None]  # once per folder


@pytest.fixture
def checkouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Two clones of acme/widgets, one for each of two people."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for name in ("TOKENTRAIL_TOKEN", "TOKENTRAIL_SERVER", "CLAUDE_CONFIG_DIR", "CODEX_HOME"):
        monkeypatch.delenv(name, raising=False)
    found = {}
    for person in ("alice", "bob"):
        path = make_repo(tmp_path / person / "widgets", origin="git@github.com:acme/widgets.git")
        subprocess.run(["git", "-C", str(path), "config", "user.email", f"{person}@acme.dev"], check=True)
        found[person] = path
    yield found


def test_import_sends_each_checkouts_git_identity(
    live_server: LiveServer, token: str, tmp_path: Path, checkouts: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    projects = tmp_path / "claude" / "projects"
    write_jsonl(projects / "a" / "s1.jsonl", claude_session(cwd=str(checkouts["alice"]), session="s1",
                                                             branch="feat/a", calls=3))  # fmt: skip
    write_jsonl(projects / "b" / "s2.jsonl", claude_session(cwd=str(checkouts["bob"]), session="s2",
                                                             branch="feat/b", calls=2, start_minute=10))  # fmt: skip
    sessions = tmp_path / "codex" / "sessions"
    rollout = codex_rollout(session="aaaa", cwd=str(checkouts["bob"]), steps=4, git_info={"branch": "feat/c"})
    write_jsonl(sessions / "rollout-2026-05-13T09-00-00-aaaa.jsonl", rollout)

    for source, path in (("claude-code", projects), ("codex", sessions)):
        assert main(["import", source, str(path), "--server", live_server.url, "--token", token]) == 0
    out = capsys.readouterr().out
    assert "0 rejected" in out

    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=live_server.url) as http:
        assert _authors(http, auth) == {"alice@acme.dev": 3, "bob@acme.dev": 2 + 4}
