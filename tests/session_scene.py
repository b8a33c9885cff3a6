"""Agent sessions built to order, and the HTTP steps the session-join tests share: a Codex rollout and its
`codex.sse_event` telemetry, a Gemini CLI chat file and its `gemini_cli.api_response` events, Copilot chat spans
as its OTel file exporter writes them. Each response is given by its token counts, so a test can make two
responses of one session that report identical counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.tables import UNATTRIBUTED
from tests.conftest import make_token
from tests.github_payloads import make_pull_request_event, webhook_headers

REPO = "acme/widgets"
BRANCH = "feat/cache-layer"
COMMIT = "3f2c9a1b4d5e6f708192a3b4c5d6e7f8091a2b3c"
REMOTE = "git@github.com:Acme/Widgets.git"
START = datetime(2025, 10, 14, 11, 0, tzinfo=UTC)
NDJSON = {"content-type": "application/x-ndjson"}
HEADERS = {"x-vcs-repository-url-full": "https://github.com/acme/widgets", "x-vcs-ref-head-name": BRANCH}
CodexCounts = tuple[int, int, int, int]  # input (cached included), cached, output (reasoning included), reasoning
GeminiCounts = tuple[int, int, int, int, int]  # prompt, cached, candidates, thoughts, tool


def _at(index: int) -> datetime:
    return START + timedelta(seconds=10 * (index + 1))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _nanos(moment: datetime) -> str:
    return str(int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000)


def _attribute(key: str, value: Any) -> dict[str, Any]:
    kind = "intValue" if isinstance(value, int) else "stringValue"
    return {"key": key, "value": {kind: str(value)}}


def _jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def codex_rollout(session: str, responses: list[CodexCounts], *, remote: str = REMOTE) -> bytes:
    """A rollout whose token_count events grow the cumulative total by each response in turn."""
    git = {"commit_hash": COMMIT, "branch": BRANCH, "repository_url": remote}
    lines: list[dict[str, Any]] = [
        {"timestamp": _iso(START), "type": "session_meta", "payload": {"id": session, "cwd": "/src/w", "git": git}},
        {"timestamp": _iso(START), "type": "turn_context", "payload": {"model": "gpt-5-codex"}},
    ]
    total = dict.fromkeys(("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens"), 0)
    for index, counts in enumerate(responses):
        last = dict(zip(total, counts, strict=True))
        total = {name: total[name] + last[name] for name in total}
        info = {
            "total_token_usage": {**total, "total_tokens": total["input_tokens"] + total["output_tokens"]},
            "last_token_usage": {**last, "total_tokens": last["input_tokens"] + last["output_tokens"]},
        }
        payload = {"type": "token_count", "info": info}
        lines.append({"timestamp": _iso(_at(index)), "type": "event_msg", "payload": payload})
    return _jsonl(lines)


def codex_events(session: str, responses: list[CodexCounts], *, first: int = 0) -> bytes:
    """The `codex.sse_event` response.completed events of those responses (the `first`-th onwards in time)."""
    records = []
    for index, (total_input, cached, output, reasoning) in enumerate(responses, start=first):
        attributes = {
            "event.name": "codex.sse_event",
            "event.kind": "response.completed",
            "event.timestamp": _iso(_at(index)),
            "conversation.id": session,
            "model": "gpt-5-codex",
            "user.email": "alice@acme.test",
            "input_token_count": total_input,
            "cached_token_count": cached,
            "output_token_count": output,
            "reasoning_token_count": reasoning,
        }
        records.append(
            {"timeUnixNano": _nanos(_at(index)), "attributes": [_attribute(k, v) for k, v in attributes.items()]}
        )
    resource = {"attributes": [_attribute("service.name", "codex_cli_rs")]}
    logs = {
        "resourceLogs": [
            {"resource": resource, "scopeLogs": [{"scope": {"name": "codex_otel"}, "logRecords": records}]}
        ]
    }
    return json.dumps(logs).encode()


def gemini_chat(session: str, replies: list[GeminiCounts]) -> bytes:
    """A chat file in gemini-cli's JSON-lines shape: the metadata record, then a user message and a reply each."""
    lines: list[dict[str, Any]] = [{"sessionId": session, "projectHash": "0" * 64, "startTime": _iso(START)}]
    for index, (prompt, cached, candidates, thoughts, tool) in enumerate(replies):
        tokens = {"input": prompt, "cached": cached, "output": candidates, "thoughts": thoughts, "tool": tool}
        tokens["total"] = sum(tokens.values())
        lines.append({"id": f"u{index}", "type": "user", "timestamp": _iso(_at(index)), "content": "..."})
        lines.append(
            {"id": f"m{index}", "type": "gemini", "timestamp": _iso(_at(index)), "model": "gemini-2.5-pro",
             "tokens": tokens, "content": "..."}
        )  # fmt: skip
    return _jsonl(lines)


def gemini_events(session: str, replies: list[GeminiCounts]) -> bytes:
    """gemini-cli's `gemini_cli.api_response` events of those replies, without any repository attribute."""
    records = []
    for index, (prompt, cached, candidates, thoughts, tool) in enumerate(replies):
        attributes = {
            "event.name": "gemini_cli.api_response",
            "event.timestamp": _iso(_at(index)),
            "session.id": session,
            "user.email": "bob@acme.test",
            "model": "gemini-2.5-pro",
            "input_token_count": prompt,
            "cached_content_token_count": cached,
            "output_token_count": candidates,
            "thoughts_token_count": thoughts,
            "tool_token_count": tool,
            "prompt_id": f"{session}########{index}",
        }
        records.append(
            {"timeUnixNano": _nanos(_at(index)), "attributes": [_attribute(k, v) for k, v in attributes.items()]}
        )
    resource = {"attributes": [_attribute("service.name", "gemini-cli"), _attribute("session.id", session)]}
    logs = {
        "resourceLogs": [
            {"resource": resource, "scopeLogs": [{"scope": {"name": "gemini-cli"}, "logRecords": records}]}
        ]
    }
    return json.dumps(logs).encode()


def copilot_spans(conversation: str, calls: list[tuple[int, int]], *, service: str = "copilot-chat") -> bytes:
    """Copilot `chat` spans as its OTel file exporter writes them (one serialized span a line), the conversation
    on the span (`gen_ai.conversation.id`): VS Code's Copilot Chat (`copilot-chat`, the window's `session.id` on
    the resource) or the Copilot CLI (`github-copilot`)."""
    lines = []
    for index, (input_tokens, output_tokens) in enumerate(calls):
        started = _at(index)
        seconds = int(started.timestamp())
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "github",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.conversation.id": conversation,
            "gen_ai.response.id": f"chatcmpl-{conversation}-{index}",
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
        }
        lines.append(
            {"traceId": f"{index + 1:032x}", "spanId": f"{index + 1:016x}", "name": "chat gpt-4o", "kind": 2,
             "startTime": [seconds, 0], "endTime": [seconds + 3, 0], "attributes": attributes,
             "resource": {"attributes": {"service.name": service, "session.id": f"{service}-window"}},
             "instrumentationScope": {"name": service}}
        )  # fmt: skip
    return _jsonl(lines)


# --- the HTTP steps -----------------------------------------------------------------------------------------------


def auth_of(factory: sessionmaker[Session], owner: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {make_token(factory, owner)}"}


def post(client: TestClient, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def open_pull(client: TestClient) -> None:
    """acme/widgets#12 on `feat/cache-layer`, opened the day after the sessions."""
    event = make_pull_request_event(head_ref=BRANCH, created_at=datetime(2025, 10, 15, tzinfo=UTC))
    body = json.dumps(event).encode()
    response = client.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body))
    assert response.status_code == 202, response.text


def pull_usage(client: TestClient, app: FastAPI, auth: dict[str, str]) -> dict[str, Any]:
    app.state.worker.run_until_idle()
    usage: dict[str, Any] = client.get(f"/v1/repos/{REPO}/pulls/12", headers=auth).json()["usage"]
    return usage


def waiting(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.execute(sa.select(sa.func.count()).select_from(UNATTRIBUTED)).scalar_one())
