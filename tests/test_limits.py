"""DESIGN §2 "Limits, the same on every database": a record outside them is rejected by index with the reason and
the rest of its batch is stored, on SQLite and PostgreSQL, through every ingest endpoint; and a job that fails for
a reason retrying cannot cure is a dead letter at once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from app import jobs, metrics
from app.db import utcnow
from app.tables import JOBS
from app.worker import is_transient
from tests.desk import Desk, record

GOOD = "2026-11-02T09:00:00Z"
BAD_TIMES = [
    "0999-06-01T00:00:00Z",  # SQLite could not read it back
    "2019-12-31T23:59:59Z",  # before 2020
    "9999-12-31T00:00:00Z",  # far future
    "9999-12-31T23:00:00-05:00",  # no UTC form at all
    "0001-01-01T00:00:00+01:00",  # no UTC form at all
]
VCS = {"x-vcs-repository-url-full": "https://github.com/acme/widgets", "x-vcs-ref-head-name": "feat/x"}


def _lines(items: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def _claude(i: int, at: str) -> dict[str, Any]:
    message = {
        "id": f"msg_{i}",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "usage": {"input_tokens": 10 + i, "output_tokens": 5},
    }
    return {"type": "assistant", "timestamp": at, "sessionId": "s", "requestId": f"req_{i}", "message": message}


def _codex(times: list[str]) -> bytes:
    lines: list[dict[str, Any]] = [
        {"timestamp": GOOD, "type": "session_meta", "payload": {"id": "sess-1", "cwd": "/w"}},
        {"timestamp": GOOD, "type": "turn_context", "payload": {"model": "gpt-5"}},
    ]
    for i, at in enumerate(times, start=1):
        total = {"input_tokens": 100 * i, "cached_input_tokens": 0, "output_tokens": 10 * i, "total_tokens": 110 * i}
        info = {"total_token_usage": total, "last_token_usage": total}
        lines.append({"timestamp": at, "type": "event_msg", "payload": {"type": "token_count", "info": info}})
    return _lines(lines)


# Per endpoint: a body of one good item followed by one item per bad time, and the payload index of the good one.
BODIES: dict[str, Callable[[list[str]], tuple[bytes, str]]] = {
    "/v1/usage": lambda times: (
        json.dumps([record(f"c{i}", at=datetime.now(UTC), timestamp=t) for i, t in enumerate(times)]).encode(),
        "application/json",
    ),
    "/v1/ingest/litellm": lambda times: (
        json.dumps(
            [
                {
                    "id": f"l{i}",
                    "model": "gpt-4o",
                    "custom_llm_provider": "openai",
                    "startTime": t,
                    "prompt_tokens": 10,
                    "completion_tokens": 5,
                    "response_cost": 0.001,
                }
                for i, t in enumerate(times)
            ]
        ).encode(),
        "application/json",
    ),
    "/v1/ingest/langfuse": lambda times: (
        json.dumps(
            [
                {
                    "id": f"g{i}",
                    "type": "GENERATION",
                    "model": "gpt-4o",
                    "startTime": t,
                    "usageDetails": {"input": 10, "output": 5},
                }
                for i, t in enumerate(times)
            ]
        ).encode(),
        "application/json",
    ),
    "/v1/ingest/portkey": lambda times: (
        json.dumps(
            [
                {
                    "id": f"p{i}",
                    "created_at": t,
                    "ai_model": "gpt-4o",
                    "ai_org": "openai",
                    "req_units": 10,
                    "res_units": 5,
                    "cost": 0.1,
                }
                for i, t in enumerate(times)
            ]
        ).encode(),
        "application/json",
    ),
    "/v1/ingest/helicone": lambda times: (
        json.dumps(
            [
                {
                    "request_id": f"h{i}",
                    "request_created_at": t,
                    "model": "gpt-4o",
                    "provider": "OPENAI",
                    "prompt_tokens": 10,
                    "completion_tokens": 5,
                    "cost": 0.001,
                }
                for i, t in enumerate(times)
            ]
        ).encode(),
        "application/json",
    ),
    "/v1/ingest/claude-code": lambda times: (
        _lines([_claude(i, t) for i, t in enumerate(times)]),
        "application/x-ndjson",
    ),
    "/v1/ingest/codex": lambda times: (_codex(times), "application/x-ndjson"),
}


@pytest.mark.parametrize("path", list(BODIES))
def test_times_outside_the_window_are_rejected_by_index_and_the_good_record_stored(desk: Desk, path: str) -> None:
    future = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body, content_type = BODIES[path]([GOOD, *BAD_TIMES, future])
    answer = desk.post(path, body, **VCS, **{"content-type": content_type})
    assert answer["status_code"] == 200, answer
    assert answer["accepted"] == 1
    offset = 2 if path == "/v1/ingest/codex" else 0  # the rollout's session_meta and turn_context lines
    assert [r["index"] for r in answer["rejected"]] == list(range(offset + 1, offset + 2 + len(BAD_TIMES)))
    reasons = " ".join(r["error"] for r in answer["rejected"])
    assert "before 2020-01-01" in reasons and "24 h in the future" in reasons
    assert len(desk.rows()) == 1


def _otlp_logs(nanos: list[int]) -> bytes:
    def event(i: int, at: int) -> dict[str, Any]:
        attributes = {"event.name": "api_request", "session.id": "s", "event.sequence": i, "model": "claude-sonnet-4-5",
                      "input_tokens": 10, "output_tokens": 5}  # fmt: skip
        values = [
            {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}
            for k, v in attributes.items()
        ]
        return {"timeUnixNano": str(at), "attributes": values}

    return json.dumps(
        {"resourceLogs": [{"scopeLogs": [{"logRecords": [event(i, n) for i, n in enumerate(nanos)]}]}]}
    ).encode()


def test_otlp_times_outside_the_window_are_rejected_by_index(desk: Desk) -> None:
    def nanos(moment: datetime) -> int:
        return int(moment.timestamp()) * 10**9

    good = nanos(datetime(2026, 11, 2, tzinfo=UTC))
    bad = [nanos(datetime(2019, 6, 1, tzinfo=UTC)), nanos(datetime(2100, 1, 1, tzinfo=UTC)), 10**30]
    answer = desk.post("/v1/ingest/otlp/v1/logs", _otlp_logs([good, *bad]), **VCS)
    assert (answer["accepted"], [r["index"] for r in answer["rejected"]]) == (1, [1, 2, 3])


LONG = {
    "id": "i" * 256,
    "model": "m" * 256,
    "provider": "p" * 65,
    "actor": "a" * 256,
    "session_id": "s" * 256,
    "agent": "g" * 101,
    "branch": "b" * 256,
    "call_id": "c" * 256,
}


def test_over_long_fields_are_rejected_by_index_on_every_database(desk: Desk) -> None:
    now = datetime.now(UTC)
    good = record("good", at=now)
    bad = [record(f"long-{name}", at=now, **{name: value}) for name, value in LONG.items()]
    answer = desk.usage(good, *bad)
    assert answer["accepted"] == 1, answer
    rejected = {r["index"]: r["error"] for r in answer["rejected"]}
    assert sorted(rejected) == list(range(1, len(LONG) + 1))
    for index, name in enumerate(LONG, start=1):
        assert name in rejected[index] or "longer than" in rejected[index]
    # A gateway's long model name is refused the same way, not a 500 for the batch.
    gateway = [
        {
            "id": "ok",
            "model": "gpt-4o",
            "startTime": GOOD,
            "prompt_tokens": 1,
            "completion_tokens": 1,
            "response_cost": 0.1,
        },
        {"id": "long", "model": "x" * 300, "startTime": GOOD, "prompt_tokens": 1, "completion_tokens": 1},
    ]
    answer = desk.post("/v1/ingest/litellm", gateway, **VCS)
    assert (answer["accepted"], [r["index"] for r in answer["rejected"]]) == (1, [1])


def test_counts_and_costs_at_the_limits(desk: Desk) -> None:
    now = datetime.now(UTC)
    answer = desk.usage(
        record("max-count", at=now, output_tokens=10**15 - 1, cost_usd="999999999.99"),
        record("count-over", at=now, output_tokens=10**15),
        record("cost-over", at=now, cost_usd="1000000000"),
        # No reported cost: the computed one (an expensive model, a huge count) must fit too.
        record("computed-over", at=now, model="claude-opus-4-1", output_tokens=10**15 - 1, cost_usd=None),
    )
    assert answer["accepted"] == 1
    assert {r["index"]: r["error"] for r in answer["rejected"]} == {
        1: "output_tokens: a count must be below 10^15 (1000000000000000)",
        2: "cost_usd: an amount must be below 10^9 USD ('1000000000')",
        3: "cost_usd must be below 10^9 USD",
    }


# -- dead letters --------------------------------------------------------------------------------------------------


def test_a_job_that_fails_for_good_is_a_dead_letter_at_once(desk: Desk) -> None:
    # A job no retry can cure (a key no pull request has: written by an older version, or by hand).
    with desk.factory() as session, session.begin():
        jobs.enqueue(session, kind="refresh", key="acme/widgets#not-a-number")
    before = metrics.JOBS_RUN.value("refresh", "dead")
    desk.settle()
    with desk.factory() as session:
        job = session.execute(sa.select(JOBS).where(JOBS.c.key == "acme/widgets#not-a-number")).one()
    assert (job.state, job.attempts) == ("failed", 1)
    assert "ValueError" in job.last_error
    assert metrics.JOBS_RUN.value("refresh", "dead") == before + 1
    assert 'tokentrail_jobs{state="failed"} 1' in desk.client.get("/metrics").text


def test_only_transient_failures_are_retried() -> None:
    from app.github import GitHubError

    assert is_transient(sa.exc.OperationalError("SELECT 1", {}, Exception("server closed the connection")))
    assert is_transient(GitHubError("502", status=502))
    assert is_transient(ConnectionResetError())
    assert not is_transient(GitHubError("422", status=422, retryable=False))
    assert not is_transient(sa.exc.DataError("INSERT", {}, Exception("value out of range")))
    assert not is_transient(ValueError("a bug"))
