"""Every ingest endpoint accepts its real payloads, and the repository's totals are exactly what the source's
parser read from them (tokens, records, cost), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.pricing import price_record
from app.records import ParsedBatch
from app.sources import claude_code, codex, helicone, langfuse, litellm, otlp, portkey
from tests.conftest import FIXTURES

# The upstream fixtures carry no repository: the neutral headers attribute them, as `tokentrail import` does.
VCS_HEADERS = {
    "x-vcs-repository-url-full": "https://github.com/acme/widgets.git",
    "x-vcs-ref-head-name": "feat/fixtures",
    "x-vcs-ref-head-revision": "0123456789abcdef0123456789abcdef01234567",
}

CASES: list[tuple[str, str, Callable[..., ParsedBatch], str]] = [
    ("/v1/ingest/litellm", "litellm/standard_logging_payload.json", litellm.parse, "application/json"),
    ("/v1/ingest/litellm", "litellm/spend_logs_payload.json", litellm.parse, "application/json"),
    ("/v1/ingest/langfuse", "litellm/langfuse_ingestion_completion_with_tags.json", langfuse.parse, "application/json"),
    ("/v1/ingest/langfuse", "langfuse/observations_page.json", langfuse.parse, "application/json"),
    ("/v1/ingest/otlp/v1/logs", "otlp/claude_code_api_request.json", otlp.parse_logs, "application/json"),
    ("/v1/ingest/otlp/v1/logs", "otlp/logs.json", otlp.parse_logs, "application/json"),
    ("/v1/ingest/otlp/v1/traces", "otlp/genai_spans.json", otlp.parse_traces, "application/json"),
    ("/v1/ingest/otlp/v1/traces", "otlp/trace.json", otlp.parse_traces, "application/json"),
    (
        "/v1/ingest/claude-code",
        "ccusage/claude__projects__project-alpha__session-alpha__chat.jsonl",
        claude_code.parse,
        "application/x-ndjson",
    ),
    ("/v1/ingest/claude-code", "claude_code/session_streaming.jsonl", claude_code.parse, "application/x-ndjson"),
    (
        "/v1/ingest/codex",
        "ccusage/codex__sessions__project-alpha__session-alpha.jsonl",
        codex.parse,
        "application/x-ndjson",
    ),
    ("/v1/ingest/codex", "codex/rollout_model_switch.jsonl", codex.parse, "application/x-ndjson"),
    ("/v1/ingest/portkey", "portkey/logs_export.jsonl", portkey.parse, "application/x-ndjson"),
    ("/v1/ingest/portkey", "portkey/log_insert.json", portkey.parse, "application/json"),
    ("/v1/ingest/helicone", "helicone/request_query.json", helicone.parse, "application/json"),
]


@pytest.mark.parametrize(("path", "fixture", "parser", "content_type"), CASES, ids=[c[1] for c in CASES])
def test_real_payloads_land_with_the_right_totals(
    client: TestClient,
    auth: dict[str, str],
    path: str,
    fixture: str,
    parser: Callable[..., ParsedBatch],
    content_type: str,
) -> None:
    body = (FIXTURES / fixture).read_bytes()
    expected = parser(body, ndjson=content_type == "application/x-ndjson")
    # Records that name another repository of their own would be refused: the fixtures' own attribution
    # (if any) must belong to acme or be absent for this comparison to hold.
    own = [r for r in expected.records if r.attribution.owner in (None, "acme")]
    headers = {**auth, **VCS_HEADERS, "content-type": content_type}

    response = client.post(path, content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == len(own)
    assert answer["skipped"] == expected.skipped
    assert len(answer["rejected"]) == len(expected.rejected) + len(expected.records) - len(own)

    totals = client.get("/v1/repos/acme/widgets/usage", headers=auth).json()
    assert totals["records"] == len(own)
    for field in ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens"):
        assert totals[field] == sum(getattr(r, field) for r in own), field
    costs = [price_record(r)[0] for r in own]
    assert totals["unpriced_records"] == sum(1 for c in costs if c is None)
    expected_cost = sum((c for c in costs if c is not None), Decimal(0))
    assert Decimal(totals["cost_usd"]) == pytest.approx(expected_cost, abs=Decimal("1e-9") * max(len(own), 1))

    # Redelivering the same payload changes nothing.
    again = client.post(path, content=body, headers=headers).json()
    assert again["accepted"] == 0 and again["duplicates"] == len(own)
    assert client.get("/v1/repos/acme/widgets/usage", headers=auth).json()["records"] == len(own)


def test_fixtures_with_usage_are_covered() -> None:
    """Guard against a case list that quietly tests nothing: most fixtures do carry usage."""
    with_usage = 0
    for _, fixture, parser, content_type in CASES:
        batch = parser((FIXTURES / fixture).read_bytes(), ndjson=content_type == "application/x-ndjson")
        with_usage += bool(batch.records)
    assert with_usage >= 12


def test_live_server_over_http(live_server: object, token: str) -> None:
    """A real uvicorn server (`tokentrail serve` in a subprocess) takes usage over HTTP and reports it back."""
    import httpx

    url = live_server.url  # type: ignore[attr-defined]
    auth = {"Authorization": f"Bearer {token}"}
    litellm_body = (FIXTURES / "litellm/standard_logging_payload.json").read_bytes()
    canonical = [
        {
            "id": "live-1",
            "timestamp": "2026-11-02T10:00:00Z",
            "model": "gpt-5",
            "provider": "openai",
            "input_tokens": 2000,
            "output_tokens": 500,
            "repo": "acme/widgets",
            "branch": "feat/live",
        }
    ]
    with httpx.Client(base_url=url, timeout=30) as http:
        first = http.post("/v1/ingest/litellm", content=litellm_body, headers={**auth, **VCS_HEADERS})
        second = http.post("/v1/usage", json=canonical, headers=auth)
        over = http.post("/v1/usage", content=b"[" + b" " * (11 * 1024 * 1024) + b"]", headers=auth)
        totals = http.get("/v1/repos/acme/widgets/usage", headers=auth).json()
    assert first.json()["accepted"] == 1
    assert second.json()["accepted"] == 1
    assert over.status_code == 413
    assert totals["records"] == 2
    # LiteLLM's reported $0.000225 plus gpt-5: 2000 × $1.25 + 500 × $10 per million tokens = $0.0075.
    assert Decimal(totals["cost_usd"]) == Decimal("0.000225") + Decimal("0.0075")
    branches = {row["branch"] for row in totals["by_branch"]}
    assert branches == {"feat/fixtures", "feat/live"}
    assert json.loads(json.dumps(totals))["repo"] == "acme/widgets"


def test_fixture_folder_is_self_contained() -> None:
    assert all(Path(FIXTURES / c[1]).exists() for c in CASES)
