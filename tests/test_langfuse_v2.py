"""Langfuse's newer observations API names the model `providedModelName` and has no `model` key
(tests/fixtures/langfuse/observations_v2_page.json): such observations are usage, not "missing model"."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from fastapi.testclient import TestClient

from app.attribution import Attribution
from app.records import UsageRecord
from app.sources import langfuse

COMMIT = "3f2c9a1b7e4d2c0a9b8f7e6d5c4b3a2918f7e6d5"
PAGE = Path(__file__).resolve().parent / "fixtures" / "langfuse" / "observations_v2_page.json"


def test_the_v2_page_reads_the_model_from_provided_model_name() -> None:
    batch = langfuse.parse(PAGE.read_bytes())

    assert batch.rejected == []
    assert batch.skipped == 1  # the AGENT observation
    assert batch.records == [
        UsageRecord(
            id="0f5a7c1e9b2d4e6f",
            source="langfuse",
            timestamp=datetime(2026, 10, 6, 9, 14, 2, 118000, tzinfo=UTC),
            model="claude-sonnet-4-5-20250929",
            input_tokens=1400,
            cache_read_tokens=36000,
            output_tokens=620,
            cost_usd=Decimal("0.0243"),
            attribution=Attribution(repo="acme/widgets", branch="feat/cache-layer", commit=COMMIT),
            actor="alice@acme.dev",
            agent="claude-code",
            session_id="cc-session-2f6e",
        ),
        UsageRecord(
            id="5e4d3c2b1a0f9e8d",
            source="langfuse",
            timestamp=datetime(2026, 10, 6, 11, 2, 45, 31000, tzinfo=UTC),
            model="gpt-5-2025-08-07",
            input_tokens=2000,
            output_tokens=300,
            attribution=Attribution(repo="acme/widgets", branch="main"),
            agent="in-house-bot",
        ),
    ]


def test_model_is_read_before_provided_model_name() -> None:
    observation = {"id": "g", "startTime": "2026-10-06T09:00:00Z", "model": "gpt-5",
                   "providedModelName": "gpt-5-2025-08-07", "usageDetails": {"input": 1, "output": 1}}  # fmt: skip
    assert [r.model for r in langfuse.parse(json.dumps([observation]).encode()).records] == ["gpt-5"]
    del observation["model"]
    assert [r.model for r in langfuse.parse(json.dumps([observation]).encode()).records] == ["gpt-5-2025-08-07"]
    del observation["providedModelName"]
    assert langfuse.parse(json.dumps([observation]).encode()).rejected[0].error == "missing model"


def test_a_v2_page_is_ingested_over_http(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/ingest/langfuse", content=PAGE.read_bytes(), headers=auth)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2, "duplicates": 0, "skipped": 1, "rejected": []}

    usage = client.get("/v1/repos/acme/widgets/usage", headers=auth).json()
    # The gpt-5 call reports no cost: it is priced from its model, so the model was read.
    assert (usage["records"], usage["unpriced_records"]) == (2, 0)
    assert Decimal(usage["cost_usd"]) > Decimal("0.0243")
