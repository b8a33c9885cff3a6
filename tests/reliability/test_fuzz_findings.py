"""The bad inputs schemathesis (test_schema.py) found answered with a 500 or an undocumented body, kept as plain
regression tests on SQLite and PostgreSQL: each is now refused with a 4xx that says what is wrong, and the data
already stored is untouched.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.repo_config import parse_repo_config
from tests.reliability.support import REPO, build_scenario


@pytest.fixture
def seeded(client: TestClient, auth: dict[str, str]) -> TestClient:
    """PR #12 of acme/widgets with matched usage (dry-run; the worker run by hand)."""
    for delivery in build_scenario([12]).deliveries:
        response = client.post(delivery.path, content=delivery.body, headers={**delivery.headers, **auth})
        assert response.status_code in (200, 202), response.text
    client.app.state.worker.run_until_idle()  # type: ignore[attr-defined]
    return client


def _record(**fields: Any) -> dict[str, Any]:
    return {"id": "r1", "timestamp": "2026-11-02T09:00:00Z", "model": "claude-sonnet-4-5", "repo": REPO, **fields}


def test_validation_errors_carry_the_type_the_schema_requires(seeded: TestClient, auth: dict[str, str]) -> None:
    response = seeded.get(f"/v1/repos/{REPO}/usage", headers=auth, params={"since": "not a date"})
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", "since"] and error["msg"] and error["type"]


@pytest.mark.parametrize("number", [0, 2**31, 2**63])
def test_a_pull_number_out_of_range_is_422_not_500(seeded: TestClient, auth: dict[str, str], number: int) -> None:
    for suffix in ("", "/budget", "/comment.md"):
        response = seeded.get(f"/v1/repos/{REPO}/pulls/{number}{suffix}", headers=auth)
        assert response.status_code == 422, (suffix, response.text)
    assert seeded.get(f"/v1/repos/{REPO}/pulls/{2**31 - 1}", headers=auth).status_code == 404


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_cost": "1e26"}, "max_cost must be at most 1,000,000,000"),
        ({"max_cost_per_changed_line": "1e30"}, "max_cost_per_changed_line must be at most"),
        ({"max_tokens": str(10**40)}, "max_tokens must be at most"),
    ],
)
def test_absurd_budget_overrides_are_422_not_500(
    seeded: TestClient, auth: dict[str, str], params: dict[str, str], message: str
) -> None:
    response = seeded.get(f"/v1/repos/{REPO}/pulls/12/budget", headers=auth, params=params)
    assert response.status_code == 422 and message in response.json()["detail"], response.text
    assert seeded.get(f"/v1/repos/{REPO}/pulls/12/budget", headers=auth, params={"max_cost": "1e9"}).is_success


def test_absurd_limits_in_the_repository_config_are_reported_not_a_crash() -> None:
    result = parse_repo_config("budget:\n  max_cost_per_pr: 1e30\n  max_tokens_per_pr: 100000000000000000000\n")
    assert len(result.errors) == 2 and "max_cost_per_pr (line 2)" in result.errors[0]
    assert result.config.budget.max_cost_per_pr is None  # the invalid limits are dropped, the rest applies


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"cost_usd": "1e20"}, "cost_usd: an amount must be below 10^9 USD"),
        ({"input_tokens": 2**63}, "input_tokens: a count must be below 10^15"),
        ({"output_tokens": "99999999999999999999"}, "output_tokens: a count must be below 10^15"),
        ({"model": "claude\u0000"}, "text cannot contain NUL characters"),
        ({"branch": "feat/\u0000"}, "text cannot contain NUL characters"),
        ({"actor": "\ud800"}, "text is not valid Unicode"),
    ],
)
def test_unstorable_records_are_rejected_by_index_not_500(
    client: TestClient, auth: dict[str, str], fields: dict[str, Any], error: str
) -> None:
    good = _record(id="good", cost_usd="0.01")
    bad = _record(id="bad", **fields)
    body = json.dumps([good, bad]).encode()
    response = client.post("/v1/usage", content=body, headers={**auth, "content-type": "application/json"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["accepted"] == 1 and [r["index"] for r in answer["rejected"]] == [1], answer
    assert error in answer["rejected"][0]["error"], answer
    # The same bytes as raw UTF-8-encoded surrogates (which json.loads lets through) are refused too.
    raw = b'[{"id": "raw", "timestamp": "2026-11-02T09:00:00Z", "model": "m\xed\xa0\x80", "repo": "acme/widgets"}]'
    response = client.post("/v1/usage", content=raw, headers={**auth, "content-type": "application/json"})
    assert response.status_code == 422 and "lone surrogate" in response.text, response.text


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/repos/{REPO}/usage?branch=%00",
        "/v1/repos/acme/wid%00gets/usage",
        "/v1/repos/acme/wid%00gets/pulls/12",
        "/v1/repos/acme/wid%00gets/report",
        "/dashboard/acme/wid%00gets",
    ],
)
def test_a_nul_character_in_the_url_is_400_not_500(seeded: TestClient, auth: dict[str, str], path: str) -> None:
    response = seeded.get(path, headers=auth)
    assert response.status_code == 400 and response.json()["detail"] == "the URL contains a NUL character"
