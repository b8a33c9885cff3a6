"""One model under several names (DESIGN §2 "Models and people"): dated, gateway-prefixed and cloud ids of one
model are one row, under genai-prices' name, in the comment, the PR summary, the usage API, the reports and the
dashboard, with one colour on every page; the records keep the ids their sources reported."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from genai_prices import Usage, calc_price
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from app.charts import PALETTE
from app.main import create_app
from app.pricing import canonical_model, compute_cost
from app.records import UsageRecord
from app.report import ModelSpend, merge_models
from app.settings import Settings
from app.tables import USAGE
from tests.conftest import make_token
from tests.github_payloads import make_pull_request_event, webhook_headers
from tests.support import sign_in

SONNET = "claude-sonnet-4-5"
# (provider as sources send it, model id as sources send it): all of them Claude Sonnet 4.5.
SONNET_SPELLINGS = [
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-sonnet-4-5-20250929"),
    (None, "claude-sonnet-4-5-20250929"),
    (None, "anthropic/claude-sonnet-4-5"),  # LiteLLM
    ("openrouter", "anthropic/claude-sonnet-4.5"),  # OpenRouter's own id
    (None, "openrouter/anthropic/claude-sonnet-4-5"),  # LiteLLM routing to OpenRouter
    ("bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),  # Bedrock cross-region inference profile
    (None, "global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("aws", "anthropic.claude-sonnet-4-5-20250929-v1:0"),  # Bedrock in one region
    (None, "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("vertex_ai", "claude-sonnet-4-5@20250929"),  # Vertex AI
    (None, "claude-sonnet-4-5@20250929"),
]


@pytest.mark.parametrize(("provider", "model"), SONNET_SPELLINGS)
def test_every_spelling_of_one_model_has_its_canonical_name(provider: str | None, model: str) -> None:
    assert canonical_model(provider, model) == SONNET


@pytest.mark.parametrize(
    ("provider", "model", "canonical"),
    [
        ("openai", "gpt-5-2025-08-07", "gpt-5"),
        (None, "openai/gpt-5", "gpt-5"),
        ("anthropic", "claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("bedrock", "eu.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
        ("aws", "us.meta.llama3-1-70b-instruct-v1:0", "meta.llama3-1-70b-instruct-v1:0"),  # Bedrock's own model
        ("acme-internal", "mystery-model-x", "mystery-model-x"),  # unknown: as given
        (None, "Acme/Thing-2", "Acme/Thing-2"),
    ],
)
def test_other_models_and_unknown_ones(provider: str | None, model: str, canonical: str) -> None:
    assert canonical_model(provider, model) == canonical


@pytest.mark.parametrize(
    ("provider", "model"),
    [(None, "us.anthropic.claude-sonnet-4-5-20250929-v1:0"), (None, "anthropic.claude-sonnet-4-5-20250929-v1:0"),
     (None, "openrouter/anthropic/claude-sonnet-4-5")],
)  # fmt: skip
def test_spellings_genai_prices_does_not_match_as_sent_are_priced_as_their_model(
    provider: str | None, model: str
) -> None:
    at = datetime(2026, 10, 6, tzinfo=UTC)
    usage = {"input_tokens": 1_000_000, "output_tokens": 100_000}
    expected = compute_cost(
        UsageRecord(id="a", source="api", timestamp=at, model=SONNET, provider="anthropic", **usage)
    )
    record = UsageRecord(id="b", source="api", timestamp=at, model=model, provider=provider, **usage)
    assert expected is not None and compute_cost(record) == expected


def test_a_bedrock_id_sent_with_its_provider_keeps_bedrocks_own_price() -> None:
    at = datetime(2026, 10, 6, tzinfo=UTC)
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    bedrock = calc_price(Usage(input_tokens=1_000_000, output_tokens=100_000), model, provider_id="aws",
                         genai_request_timestamp=at).total_price  # fmt: skip
    record = UsageRecord(id="c", source="api", timestamp=at, model=model, provider="bedrock",
                         input_tokens=1_000_000, output_tokens=100_000)  # fmt: skip
    assert compute_cost(record) == bedrock


def _model_spend(provider: str | None, model: str, records: int, cost: int) -> ModelSpend:
    return ModelSpend(model=model, provider=provider, records=records, unpriced_records=records // 3,
                      cost_usd=Decimal(cost) / 100, input_tokens=records * 7, cache_read_tokens=records * 5,
                      cache_write_tokens=records, output_tokens=records * 2)  # fmt: skip


@given(
    st.lists(
        st.tuples(
            st.sampled_from([*SONNET_SPELLINGS, ("openai", "gpt-5"), ("openai", "gpt-5-2025-08-07"), (None, "x-1")]),
            st.integers(min_value=1, max_value=1000),
            st.integers(min_value=0, max_value=10**6),
        ),
        max_size=12,
        unique_by=lambda item: item[0],
    )
)
def test_merging_keeps_every_figure_and_gives_one_row_per_model(rows: list[Any]) -> None:
    spends = [_model_spend(provider, model, records, cost) for (provider, model), records, cost in rows]
    merged = merge_models(spends)

    assert len({m.model for m in merged}) == len(merged)
    assert {m.model for m in merged} == {canonical_model(s.provider, s.model) for s in spends}
    for name in ("records", "unpriced_records", "cost_usd", "input_tokens", "cache_read_tokens", "output_tokens"):
        assert sum(getattr(m, name) for m in merged) == sum(getattr(s, name) for s in spends)
    raw = [model for m in merged for model in m.raw_models]
    assert sorted(raw) == sorted({s.model for s in spends})
    assert merge_models(merged) == merged  # already merged rows stay as they are


# --- through the HTTP API, on SQLite and PostgreSQL -------------------------------------------------------------

REPO = "acme/widgets"
OPENED = datetime(2026, 10, 5, 9, tzinfo=UTC)
PERIOD = {"since": "2026-10-05", "until": "2026-10-06"}


def _record(index: int, provider: str | None, model: str, *, repo: str = REPO, cost: str = "1.00") -> dict[str, Any]:
    return {"id": f"call-{repo}-{index}", "timestamp": f"2026-10-05T{10 + index % 12:02d}:00:00Z",
            "provider": provider, "model": model, "input_tokens": 100, "output_tokens": 10, "cost_usd": cost,
            "repo": repo, "branch": "feat/cache", "actor": "alice", "agent": "claude-code"}  # fmt: skip


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, run_worker=False)


@pytest.fixture
def client(app: FastAPI, factory: sessionmaker[Session]) -> Iterator[TestClient]:
    """PR #12 of acme/widgets with Claude Sonnet 4.5 under every spelling ($1 each) and gpt-5 under two ($5
    each); acme/gateway spent $100 on gpt-5 (so the owner's page ranks the models otherwise than the repo's)."""
    token = make_token(factory)
    records = [_record(i, provider, model) for i, (provider, model) in enumerate(SONNET_SPELLINGS)]
    records += [_record(20, "openai", "gpt-5", cost="5"), _record(21, "openai", "gpt-5-2025-08-07", cost="5")]
    records += [_record(30, "openai", "gpt-5", repo="acme/gateway", cost="100")]
    with TestClient(app) as test_client:
        body = json.dumps(make_pull_request_event(created_at=OPENED)).encode()
        response = test_client.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body))
        assert response.status_code == 202, response.text
        headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
        response = test_client.post("/v1/usage", content=json.dumps(records), headers=headers)
        assert response.json()["accepted"] == len(records), response.text
        app.state.worker.run_until_idle()
        test_client.headers["Authorization"] = f"Bearer {token}"
        sign_in(test_client, token)
        yield test_client


def test_the_pull_request_summary_and_comment_show_one_row_per_model(client: TestClient) -> None:
    summary = client.get(f"/v1/repos/{REPO}/pulls/12").json()
    assert [(m["model"], m["records"], m["cost_usd"]) for m in summary["by_model"]] == [
        (SONNET, len(SONNET_SPELLINGS), str(len(SONNET_SPELLINGS))),
        ("gpt-5", 2, "10"),
    ]
    sonnet = summary["by_model"][0]
    assert sonnet["raw_models"] == sorted({model for _, model in SONNET_SPELLINGS})
    assert sonnet["provider"] is not None and "anthropic" in sonnet["provider"].split(", ")

    comment = client.get(f"/v1/repos/{REPO}/pulls/12/comment.md").text
    assert "<summary>By model (2)</summary>" in comment
    assert len(re.findall(r"^\| claude-sonnet-4-5 \|", comment, re.MULTILINE)) == 1
    assert "20250929" not in comment

    page = client.get(f"/dashboard/{REPO}/pulls/12").text
    assert page.count(f'<th scope="row">{SONNET}</th>') == 1


def test_the_usage_api_and_the_reports_group_by_model(client: TestClient) -> None:
    usage = client.get(f"/v1/repos/{REPO}/usage").json()
    assert [(m["model"], m["records"]) for m in usage["by_model"]] == [(SONNET, 12), ("gpt-5", 2)]
    assert usage["by_model"][1]["raw_models"] == ["gpt-5", "gpt-5-2025-08-07"]

    report = client.get(f"/v1/repos/{REPO}/report", params=PERIOD).json()
    assert [(m["model"], m["records"]) for m in report["by_model"]] == [(SONNET, 12), ("gpt-5", 2)]
    day = next(d for d in report["by_date"] if d["date"] == "2026-10-05")
    assert day["by_model"] == [{"model": SONNET, "cost_usd": "12"}, {"model": "gpt-5", "cost_usd": "10"}]
    org = client.get("/v1/orgs/acme/report", params=PERIOD).json()
    assert [(m["model"], m["cost_usd"]) for m in org["by_model"]] == [("gpt-5", "110"), (SONNET, "12")]


def test_the_raw_ids_stay_on_the_records(client: TestClient, factory: sessionmaker[Session]) -> None:
    with factory() as session:
        stored = {row.model for row in session.execute(sa.select(USAGE.c.model).where(USAGE.c.repo == REPO))}
    assert stored == {model for _, model in SONNET_SPELLINGS} | {"gpt-5", "gpt-5-2025-08-07"}


def _legend(page: str) -> dict[str, str]:
    """The spend chart's legend: series name → swatch colour."""
    chart = page[page.index('id="chart-spend-title"') :]
    chart = chart[: chart.index("</svg>")]
    legend = chart[chart.index('<g class="legend">') :]
    pairs = re.findall(r'<rect [^>]*fill="(#[0-9A-Fa-f]{6})"/>\s*<text [^>]*>([^<]+)</text>', legend)
    return {name: color for color, name in pairs}


def test_a_model_keeps_one_colour_on_every_page(client: TestClient) -> None:
    repo_page = _legend(client.get(f"/dashboard/{REPO}", params=PERIOD).text)
    org_page = _legend(client.get("/dashboard/acme", params=PERIOD).text)
    gateway_page = _legend(client.get("/dashboard/acme/gateway", params=PERIOD).text)

    assert set(repo_page) == set(org_page) == {"gpt-5", SONNET}  # one series per model
    assert set(gateway_page) == {"gpt-5"}
    # The ranks differ (Sonnet first on the repository's page, second on the owner's), the colours do not.
    assert repo_page == org_page
    assert gateway_page["gpt-5"] == repo_page["gpt-5"]
    assert set(repo_page.values()) <= set(PALETTE)
