"""The demo's usage payloads in their real shapes: Claude Code OTLP log exports, Codex rollouts and LiteLLM
callbacks, each built for one demo pull request from a seeded random generator. Pure."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

CLAUDE_MODELS = ("claude-sonnet-4-5", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1")
CODEX_MODELS = ("gpt-5-codex", "gpt-5")
LITELLM_MODELS = ("gpt-5-mini", "claude-haiku-4-5", "gemini-2.5-pro")


@dataclass(frozen=True)
class Request:
    """One HTTP request of the seed. `owner` names whose API token signs usage uploads (None: a webhook)."""

    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    event: str | None = None  # GitHub event name for webhooks
    owner: str | None = None


@dataclass(frozen=True)
class DemoPull:
    repo: str
    number: int
    title: str
    author: str
    head_repo: str
    head_ref: str
    created_at: datetime
    closed_at: datetime | None
    merged: bool
    additions: int
    deletions: int


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def claude_code_export(rng: random.Random, *, pull: DemoPull, session: str, start: datetime, calls: int) -> Request:
    """An OTLP/HTTP logs export of Claude Code `api_request` events, attributed by resource attributes."""

    def attr(key: str, value: Any) -> dict[str, Any]:
        kind = "stringValue" if isinstance(value, str) else "intValue"
        return {"key": key, "value": {kind: value if isinstance(value, str) else str(value)}}

    records = []
    for sequence in range(calls):
        at = start + timedelta(minutes=3 * sequence + rng.randint(0, 2))
        model = rng.choice(CLAUDE_MODELS)
        input_tokens, output = rng.randint(200, 4_000), rng.randint(150, 2_500)
        cache_read, cache_write = rng.randint(20_000, 160_000), rng.choice([0, 0, rng.randint(1_000, 12_000)])
        nanos = str(int(at.timestamp() * 1e9))
        records.append(
            {
                "timeUnixNano": nanos,
                "observedTimeUnixNano": nanos,
                "body": {"stringValue": "claude_code.api_request"},
                "attributes": [
                    attr("event.name", "api_request"),
                    attr("event.timestamp", iso(at)),
                    attr("event.sequence", sequence),
                    attr("session.id", session),
                    attr("user.email", f"{pull.author}@acme.dev"),
                    attr("model", model),
                    attr("input_tokens", input_tokens),
                    attr("output_tokens", output),
                    attr("cache_read_tokens", cache_read),
                    attr("cache_creation_tokens", cache_write),
                ],
            }
        )
    body = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [
                        attr("service.name", "claude-code"),
                        attr("vcs.repository.url.full", f"https://github.com/{pull.head_repo}.git"),
                        attr("vcs.ref.head.name", pull.head_ref),
                    ]
                },
                "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": records}],
            }
        ]
    }
    owner = pull.head_repo.split("/")[0]
    return Request(
        path="/v1/ingest/otlp/v1/logs",
        body=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
        owner=owner,
    )


def codex_rollout(rng: random.Random, *, pull: DemoPull, session: str, start: datetime, turns: int) -> Request:
    """A Codex rollout: session_meta with git facts, turn_context, cumulative token_count events."""
    model = rng.choice(CODEX_MODELS)
    lines: list[dict[str, Any]] = [
        {
            "timestamp": iso(start),
            "type": "session_meta",
            "payload": {
                "id": session,
                "timestamp": iso(start),
                "cwd": f"/home/{pull.author}/src/{pull.repo.split('/')[1]}",
                "originator": "codex_cli_rs",
                "cli_version": "0.46.0",
                "model_provider": "openai",
                "git": {
                    "repository_url": f"git@github.com:{pull.head_repo}.git",
                    "branch": pull.head_ref,
                    "commit_hash": sha(rng),
                },
            },
        },
        {"timestamp": iso(start), "type": "turn_context", "payload": {"model": model, "cwd": "."}},
    ]
    total = {
        "input_tokens": 0,
        "cached_input_tokens": 0,
        "output_tokens": 0,
        "reasoning_output_tokens": 0,
        "total_tokens": 0,
    }
    for turn in range(turns):
        at = start + timedelta(minutes=4 * turn + 1)
        cached = rng.randint(2_000, 40_000)
        last = {
            "input_tokens": cached + rng.randint(300, 6_000),
            "cached_input_tokens": cached,
            "output_tokens": rng.randint(200, 3_000),
            "reasoning_output_tokens": rng.randint(0, 1_200),
        }
        last["total_tokens"] = last["input_tokens"] + last["output_tokens"]
        total = {key: total[key] + last[key] for key in total}
        event = {"type": "token_count", "info": {"total_token_usage": dict(total), "last_token_usage": last}}
        lines.append({"timestamp": iso(at), "type": "event_msg", "payload": event})
        if rng.random() < 0.3:  # Codex repeats token_count events; the totals did not grow, so nothing is counted
            lines.append({"timestamp": iso(at), "type": "event_msg", "payload": event})
    body = "\n".join(json.dumps(line) for line in lines) + "\n"
    return Request(
        path="/v1/ingest/codex",
        body=body.encode(),
        headers={"content-type": "application/x-ndjson"},
        owner=pull.head_repo.split("/")[0],
    )


def litellm_callbacks(
    rng: random.Random, *, repo: str, branch: str, actor: str, start: datetime, calls: int, prefix: str
) -> Request:
    """LiteLLM's generic_api callback body: StandardLoggingPayload objects with spend_logs_metadata."""
    payloads = []
    for index in range(calls):
        at = start + timedelta(minutes=2 * index)
        model = rng.choice(LITELLM_MODELS)
        prompt, completion = rng.randint(800, 12_000), rng.randint(100, 2_000)
        cached = rng.randint(0, prompt // 2)
        payloads.append(
            {
                "id": f"{prefix}-{index}",
                "call_type": "acompletion",
                "status": "success",
                "custom_llm_provider": {"gpt-5-mini": "openai", "claude-haiku-4-5": "anthropic"}.get(model, "gemini"),
                "startTime": at.timestamp(),
                "endTime": at.timestamp() + 3,
                "model": model,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "response_cost": None,
                "metadata": {
                    "user_api_key_user_email": f"{actor}@acme.dev",
                    "spend_logs_metadata": {"repo": repo, "branch": branch, "agent": "acme-reviewer"},
                    "usage_object": {
                        "prompt_tokens": prompt,
                        "completion_tokens": completion,
                        "prompt_tokens_details": {"cached_tokens": cached},
                    },
                },
                "request_tags": [f"repo:{repo}", f"branch:{branch}"],
            }
        )
    return Request(
        path="/v1/ingest/litellm",
        body=json.dumps(payloads).encode(),
        headers={"content-type": "application/json"},
        owner=repo.split("/")[0],
    )
