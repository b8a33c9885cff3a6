"""The ingest API on both databases: formats, idempotency, tenancy, limits and bad input."""

from __future__ import annotations

import gzip
import json

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.main import create_app
from app.settings import Settings
from app.tables import USAGE
from tests.conftest import make_token
from tests.ingest_support import make_usage, usage_of


def test_requires_a_bearer_token(client: TestClient) -> None:
    response = client.post("/v1/usage", json=[make_usage()])
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert client.post("/v1/usage", json=[], headers={"Authorization": "Bearer tt_nope"}).status_code == 401
    assert client.get("/v1/repos/acme/widgets/usage").status_code == 401


@pytest.mark.parametrize("shape", ["array", "records", "ndjson", "object"])
def test_accepts_every_canonical_shape(client: TestClient, auth: dict[str, str], shape: str) -> None:
    records = [make_usage(1), make_usage(2)] if shape != "object" else [make_usage(1)]
    headers = dict(auth)
    if shape == "array":
        body = json.dumps(records)
    elif shape == "records":
        body = json.dumps({"records": records})
    elif shape == "ndjson":
        body = "\n".join(json.dumps(r) for r in records) + "\n"
        headers["content-type"] = "application/x-ndjson"
    else:
        body = json.dumps(records[0])
    response = client.post("/v1/usage", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": len(records), "duplicates": 0, "skipped": 0, "rejected": []}
    assert usage_of(client, auth)["records"] == len(records)


def test_redelivery_is_counted_as_duplicates_and_stored_once(client: TestClient, auth: dict[str, str]) -> None:
    batch = [make_usage(i) for i in range(5)]
    first = client.post("/v1/usage", json=batch, headers=auth).json()
    second = client.post("/v1/usage", json=batch, headers=auth).json()
    assert first["accepted"] == 5 and first["duplicates"] == 0
    assert second["accepted"] == 0 and second["duplicates"] == 5
    totals = usage_of(client, auth)
    assert totals["records"] == 5
    # 5 × (1000 × $3 + 5000 × $0.30 + 100 × $15) per million tokens
    assert totals["cost_usd"] == "0.03"


def test_duplicate_inside_one_batch_keeps_the_largest(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/v1/usage", json=[make_usage(1, output_tokens=10), make_usage(1, output_tokens=100)], headers=auth
    )
    assert response.json()["accepted"] == 1 and response.json()["duplicates"] == 1
    assert usage_of(client, auth)["output_tokens"] == 100


def test_a_later_larger_version_replaces_the_figures(client: TestClient, auth: dict[str, str]) -> None:
    client.post("/v1/usage", json=[make_usage(1, output_tokens=10)], headers=auth)
    response = client.post("/v1/usage", json=[make_usage(1, output_tokens=500)], headers=auth)
    assert response.json()["accepted"] == 1
    smaller_again = client.post("/v1/usage", json=[make_usage(1, output_tokens=10)], headers=auth)
    assert smaller_again.json()["duplicates"] == 1
    totals = usage_of(client, auth)
    assert totals["records"] == 1 and totals["output_tokens"] == 500


def test_bad_records_are_rejected_by_index_and_the_good_ones_stored(client: TestClient, auth: dict[str, str]) -> None:
    batch = [
        make_usage(1),
        {"id": "x", "model": "m"},  # no timestamp
        make_usage(3, input_tokens=-5),
        "not an object",
        make_usage(5, timestamp="yesterday"),
        make_usage(6, cost_usd="a lot"),
        make_usage(7),
    ]
    response = client.post("/v1/usage", json=batch, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4, 5]
    assert "timestamp" in body["rejected"][0]["error"]
    assert "input_tokens" in body["rejected"][1]["error"]
    assert "cost_usd" in body["rejected"][4]["error"]
    assert usage_of(client, auth)["records"] == 2


def test_integers_beyond_64_bits_read_as_written(
    client: TestClient, auth: dict[str, str], factory: sessionmaker[Session]
) -> None:
    # The fast decoder rounds such an integer to a float; the batch is decoded again exactly, so an id stays the
    # digits sent and a refusal quotes the value as written.
    body = (
        "["
        + json.dumps(make_usage(1)).replace('"call-1"', "123456789012345678901234567890")
        + ","
        + json.dumps(make_usage(2)).replace('"input_tokens": 1000', '"input_tokens": 99999999999999999999')
        + ","
        + json.dumps(make_usage(3)).replace('"output_tokens": 100', '"output_tokens": -9223372036854775809')
        + "]"
    )
    response = client.post("/v1/usage", content=body, headers={**auth, "content-type": "application/json"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 1
    assert result["rejected"] == [
        {"index": 1, "error": "input_tokens: a count must be below 10^15 (99999999999999999999)"},
        {"index": 2, "error": "output_tokens: a count cannot be negative (-9223372036854775809)"},
    ]
    with factory() as session:
        stored = session.execute(sa.select(USAGE.c.record_id)).scalars().all()
    assert stored == ["123456789012345678901234567890"]


def test_a_batch_with_nothing_acceptable_is_422(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/usage", json=[{"id": "x"}], headers=auth)
    assert response.status_code == 422
    assert response.json()["rejected"][0]["index"] == 0


def test_other_owners_repositories_are_refused(
    client: TestClient, auth: dict[str, str], factory: sessionmaker[Session]
) -> None:
    batch = [make_usage(1), make_usage(2, repo="globex/secret"), make_usage(3, repo=None)]
    body = client.post("/v1/usage", json=batch, headers=auth).json()
    assert body["accepted"] == 1
    errors = {r["index"]: r["error"] for r in body["rejected"]}
    assert "globex/secret does not belong to acme" in errors[1]
    assert "no repository" in errors[2]
    globex = {"Authorization": f"Bearer {make_token(factory, 'globex')}"}
    assert client.get("/v1/repos/globex/secret/usage", headers=globex).json()["records"] == 0
    assert client.get("/v1/repos/globex/secret/usage", headers=auth).status_code == 403


def test_neutral_headers_fill_missing_attribution(client: TestClient, auth: dict[str, str]) -> None:
    headers = {
        **auth,
        "x-vcs-repository-url-full": "git@github.com:Acme/Widgets.git",
        "x-vcs-ref-head-name": "feat/from-header",
        "x-vcs-ref-head-revision": "abcdef1234",
    }
    batch = [make_usage(1, repo=None, branch=None, commit=None), make_usage(2, branch="feat/own")]
    assert client.post("/v1/usage", json=batch, headers=headers).json()["accepted"] == 2
    branches = {row["branch"] for row in usage_of(client, auth)["by_branch"]}
    assert branches == {"feat/from-header", "feat/own"}


def test_malformed_body_is_400(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post("/v1/usage", content=b"{not json", headers=auth)
    assert response.status_code == 400
    assert "JSON" in response.json()["detail"]
    assert client.post("/v1/usage", content=b"", headers=auth).status_code == 400
    assert client.post("/v1/usage", content=b"42", headers=auth).status_code == 400


def test_ndjson_with_a_bad_line(client: TestClient, auth: dict[str, str]) -> None:
    body = json.dumps(make_usage(1)) + "\n{oops\n" + json.dumps(make_usage(2)) + "\n"
    response = client.post("/v1/usage", content=body, headers={**auth, "content-type": "application/x-ndjson"})
    assert response.json()["accepted"] == 2
    assert response.json()["rejected"][0]["index"] == 1


def test_gzip_body(client: TestClient, auth: dict[str, str]) -> None:
    body = gzip.compress(json.dumps([make_usage(1)]).encode())
    response = client.post("/v1/usage", content=body, headers={**auth, "content-encoding": "gzip"})
    assert response.status_code == 200 and response.json()["accepted"] == 1
    bad = client.post("/v1/usage", content=b"not gzip", headers={**auth, "content-encoding": "gzip"})
    assert bad.status_code == 400


def test_limits_give_413(settings: Settings, token: str) -> None:
    small = settings.model_copy(update={"max_body_bytes": 2_000, "max_batch_records": 3})
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(small)) as client:
        too_long = client.post("/v1/usage", content=b"[" + b" " * 5_000 + b"]", headers=auth)
        assert too_long.status_code == 413
        too_many = client.post("/v1/usage", json=[{"id": str(i)} for i in range(4)], headers=auth)
        assert too_many.status_code == 413
        assert "limit is 3" in too_many.json()["detail"]
        bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
        assert client.post("/v1/usage", content=bomb, headers={**auth, "content-encoding": "gzip"}).status_code == 413
        assert client.get("/v1/repos/acme/widgets/usage", headers=auth).json()["records"] == 0


def test_reported_computed_and_unpriced_costs(client: TestClient, auth: dict[str, str]) -> None:
    batch = [
        make_usage(1, cost_usd="1.25"),
        make_usage(2, cost_usd=0.5),
        make_usage(3),  # computed: 0.006
        make_usage(4, model="acme-internal-llm", provider="acme"),
    ]
    client.post("/v1/usage", json=batch, headers=auth)
    totals = usage_of(client, auth)
    assert totals["cost_usd"] == "1.756"
    assert totals["records"] == 4 and totals["unpriced_records"] == 1
    by_model = {row["model"]: row for row in totals["by_model"]}
    assert by_model["acme-internal-llm"]["unpriced_records"] == 1
    assert by_model["acme-internal-llm"]["cost_usd"] == "0"


def test_usage_filters(client: TestClient, auth: dict[str, str]) -> None:
    batch = [
        make_usage(1, timestamp="2026-11-01T10:00:00Z", branch="a"),
        make_usage(2, timestamp="2026-11-02T10:00:00Z", branch="a"),
        make_usage(3, timestamp="2026-11-03T10:00:00Z", branch="b"),
    ]
    client.post("/v1/usage", json=batch, headers=auth)
    assert usage_of(client, auth, branch="a")["records"] == 2
    assert usage_of(client, auth, since="2026-11-02T00:00:00Z")["records"] == 2
    assert usage_of(client, auth, until="2026-11-02T00:00:00Z")["records"] == 1
    assert client.get("/v1/repos/acme/widgets/usage", headers=auth, params={"since": "nope"}).status_code == 422


def test_offsets_are_stored_as_the_same_instant(client: TestClient, auth: dict[str, str]) -> None:
    # 20:00 at -08:00 is 04:00 UTC the next day: SQLite would keep the wall-clock digits if we let it.
    client.post("/v1/usage", json=[make_usage(1, timestamp="2026-11-01T20:00:00-08:00")], headers=auth)
    assert usage_of(client, auth, since="2026-11-02T03:59:00Z")["records"] == 1
    assert usage_of(client, auth, since="2026-11-02T04:01:00Z")["records"] == 0
