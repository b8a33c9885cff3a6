"""Helpers shared by several test modules (moved from their first test module, so that none imports another)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def make_usage(index: int = 1, **overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": f"call-{index}",
        "timestamp": "2026-11-02T10:00:00Z",
        "provider": "anthropic",
        "model": "claude-sonnet-4-5",
        "input_tokens": 1000,
        "cache_read_tokens": 5000,
        "output_tokens": 100,
        "repo": "acme/widgets",
        "branch": "feat/cache",
        "commit": "3f2c9a1",
        "actor": "alice",
        "agent": "claude-code",
        "session_id": "s1",
    }
    record.update(overrides)
    return record


def usage_of(client: TestClient, auth: dict[str, str], **params: str) -> dict[str, Any]:
    response = client.get("/v1/repos/acme/widgets/usage", headers=auth, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
