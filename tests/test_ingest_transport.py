"""How the ingest endpoints read a body, on both databases: content types (415 names what is accepted),
compressed bodies (every gzip member, nothing dropped in silence), bodies that crash a parser (deep nesting,
odd OTLP values), and the record limit checked before the items are parsed."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.github_payloads import webhook_headers
from tests.ingest_support import make_usage, usage_of

INGEST_PATHS = [
    "/v1/usage",
    "/v1/ingest/litellm",
    "/v1/ingest/otlp/v1/logs",
    "/v1/ingest/otlp/v1/traces",
    "/v1/ingest/claude-code",
    "/v1/ingest/codex",
    "/v1/ingest/langfuse",
    "/v1/ingest/portkey",
    "/v1/ingest/helicone",
]


def _ndjson(records: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


# -- content types ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.acme+json", "text/plain", None],
)
def test_json_content_types_are_read_as_json(
    client: TestClient, auth: dict[str, str], content_type: str | None
) -> None:
    headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
    response = client.post("/v1/usage", content=json.dumps([make_usage(1), make_usage(2)]), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 2


@pytest.mark.parametrize(
    "content_type", ["application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/json-seq"]
)
def test_ndjson_content_types_are_read_as_lines(client: TestClient, auth: dict[str, str], content_type: str) -> None:
    body = _ndjson([make_usage(1), make_usage(2), make_usage(3)])
    response = client.post("/v1/usage", content=body, headers={**auth, "Content-Type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3


@pytest.mark.parametrize("path", INGEST_PATHS)
def test_protobuf_is_read_on_otlp_routes_and_415_elsewhere(client: TestClient, auth: dict[str, str], path: str) -> None:
    # The start of a real OTLP protobuf body, cut short: not a readable request.
    body = b"\n\xba\x01\n\x1e\n\x1c\n\x0cservice.name\x12\x0c\n\nclaude-code"
    response = client.post(path, content=body, headers={**auth, "Content-Type": "application/x-protobuf"})
    if "/otlp/" in path:
        # Read as protobuf: a truncated message is a 400 that says so, never a complaint about UTF-8.
        assert response.status_code == 400, response.text
        assert "protobuf OTLP" in response.json()["detail"]
        return
    assert response.status_code == 415, response.text
    detail = response.json()["detail"]
    assert "application/json" in detail and "application/x-ndjson" in detail
    assert "utf-8" not in detail.lower()


@pytest.mark.parametrize("content_type", ["application/xml", "multipart/form-data; boundary=x", "image/png"])
def test_other_content_types_are_415_naming_what_is_accepted(
    client: TestClient, auth: dict[str, str], content_type: str
) -> None:
    for path in INGEST_PATHS:
        response = client.post(path, content=b"<usage/>", headers={**auth, "Content-Type": content_type})
        assert response.status_code == 415, (path, response.text)
        detail = response.json()["detail"]
        assert content_type in detail and "application/json" in detail and "application/x-ndjson" in detail
    assert usage_of(client, auth)["records"] == 0


# -- compressed bodies --------------------------------------------------------------------------------------------


def test_every_gzip_member_is_read(client: TestClient, auth: dict[str, str]) -> None:
    # `cat a.gz b.gz` is a valid gzip file of two members; an exporter that compresses as it streams makes them.
    body = gzip.compress(_ndjson([make_usage(1)])) + gzip.compress(_ndjson([make_usage(2), make_usage(3)]))
    headers = {**auth, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"}
    response = client.post("/v1/usage", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    assert usage_of(client, auth)["records"] == 3


def test_members_are_inflated_within_the_limit_together(client: TestClient, auth: dict[str, str]) -> None:
    # Each member alone is under 10 MB inflated; together they are over it.
    member = gzip.compress(b" " * (6 * 1024 * 1024))
    body = gzip.compress(b"[") + member + member + gzip.compress(b"]")
    headers = {**auth, "Content-Encoding": "gzip"}
    response = client.post("/v1/usage", content=body, headers=headers)
    assert response.status_code == 413, response.text
    assert "inflated body" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "encoding", "message"),
    [
        (gzip.compress(b"[]") + b"trailing garbage", "gzip", "not gzip"),
        (gzip.compress(_ndjson([make_usage(1), make_usage(2)]))[:-12], "gzip", "truncated"),
        (zlib.compress(_ndjson([make_usage(1)])) + zlib.compress(_ndjson([make_usage(2)])), "deflate", "after"),
        (zlib.compress(_ndjson([make_usage(1), make_usage(2)]))[:-6], "deflate", "truncated"),
    ],
    ids=["gzip-trailing-garbage", "gzip-truncated", "deflate-trailing-data", "deflate-truncated"],
)
def test_compressed_data_that_cannot_all_be_read_is_400(
    client: TestClient, auth: dict[str, str], body: bytes, encoding: str, message: str
) -> None:
    headers = {**auth, "Content-Type": "application/x-ndjson", "Content-Encoding": encoding}
    response = client.post("/v1/usage", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert message in response.json()["detail"]
    assert usage_of(client, auth)["records"] == 0


def test_gzip_padding_after_the_last_member_is_not_data(client: TestClient, auth: dict[str, str]) -> None:
    body = gzip.compress(json.dumps([make_usage(1)]).encode()) + b"\x00" * 512
    response = client.post("/v1/usage", content=body, headers={**auth, "Content-Encoding": "gzip"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 1


# -- bodies that crashed a parser ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", INGEST_PATHS)
@pytest.mark.parametrize("ndjson", [False, True], ids=["json", "ndjson"])
def test_deeply_nested_json_is_400(client: TestClient, auth: dict[str, str], path: str, ndjson: bool) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    headers = {**auth, "Content-Type": "application/x-ndjson" if ndjson else "application/json"}
    response = client.post(path, content=body, headers=headers)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"]


@pytest.mark.parametrize("path", INGEST_PATHS)
def test_deep_nesting_inside_an_item_is_not_500(client: TestClient, auth: dict[str, str], path: str) -> None:
    deep = "[" * 5_000 + "]" * 5_000
    body = f'[{{"id": "a", "metadata": {deep}, "message": {deep}, "attributes": {deep}}}]'.encode()
    response = client.post(path, content=body, headers={**auth, "Content-Type": "application/json"})
    assert 400 <= response.status_code < 500 or response.status_code == 200, response.text


def _otlp_log(sequence: int, *extra: dict[str, Any]) -> dict[str, Any]:
    def attr(key: str, value: Any) -> dict[str, Any]:
        return {"key": key, "value": {"stringValue": value} if isinstance(value, str) else {"intValue": value}}

    return {
        "timeUnixNano": "1793610000000000000",
        "attributes": [
            attr("event.name", "api_request"),
            attr("model", "claude-sonnet-4-5"),
            attr("session.id", "s-otlp"),
            attr("event.sequence", sequence),
            attr("input_tokens", 10),
            attr("output_tokens", 5),
            attr("vcs.repository.url.full", "https://github.com/acme/widgets"),
            *extra,
        ],
    }


def _deep_value(kind: str, depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"stringValue": "leaf"}
    for _ in range(depth):
        if kind == "array":
            value = {"arrayValue": {"values": [value]}}
        else:
            value = {"kvlistValue": {"values": [{"key": "k", "value": value}]}}
    return value


@pytest.mark.parametrize(
    "bad_value",
    [
        {"arrayValue": {"values": 5}},
        {"arrayValue": {"values": "abc"}},
        {"arrayValue": {"values": {"stringValue": "x"}}},
        {"arrayValue": 5},
        {"kvlistValue": {"values": 5}},
        {"kvlistValue": {"values": [{"key": "k", "value": {"arrayValue": {"values": True}}}]}},
        _deep_value("array", 300),
        _deep_value("kvlist", 100),
    ],
    ids=["values-5", "values-str", "values-object", "array-5", "kvlist-5", "nested-bool", "deep-array", "deep-kvlist"],
)
def test_a_bad_otlp_attribute_rejects_its_record_only(
    client: TestClient, auth: dict[str, str], bad_value: dict[str, Any]
) -> None:
    records = [_otlp_log(1), _otlp_log(2, {"key": "tool.input", "value": bad_value}), _otlp_log(3)]
    payload = {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}
    response = client.post("/v1/ingest/otlp/v1/logs", json=payload, headers=auth)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 2
    [rejection] = result["rejected"]
    assert rejection["index"] == 1 and "tool.input" in rejection["error"]
    assert usage_of(client, auth)["records"] == 2


def test_a_signed_but_deeply_nested_webhook_is_400(client: TestClient) -> None:
    body = b'{"action": "opened", "pull_request": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = client.post("/github/webhook", content=body, headers=webhook_headers("pull_request", body))
    assert response.status_code == 400, response.text
    assert "nested" in response.json()["detail"]


# -- the record limit comes before the parsing --------------------------------------------------------------------


def _limited_client(database_url: str, limit: int) -> TestClient:
    from app.main import create_app
    from app.settings import Settings

    settings = Settings(database_url=database_url, max_batch_records=limit, run_worker=False)
    return TestClient(create_app(settings))


@pytest.mark.parametrize(
    ("path", "body", "ndjson"),
    [
        ("/v1/usage", b"[" + b",".join([b"{}"] * 11) + b"]", False),
        ("/v1/usage", b'{"records": [' + b",".join([b"{}"] * 11) + b"]}", False),
        ("/v1/usage", b"{}\n" * 11, True),
        ("/v1/ingest/claude-code", b"{}\n" * 11, False),
        ("/v1/ingest/codex", b"[" + b",".join([b"{}"] * 11) + b"]", False),
        ("/v1/ingest/otlp/v1/logs", json.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [{}] * 11}]}]}), False),
        (
            "/v1/ingest/otlp/v1/traces",
            (json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{}] * 6}]}]}) + "\n") * 2,
            True,
        ),
    ],
    ids=["array", "wrapper", "ndjson", "transcript-lines", "transcript-array", "otlp-logs", "otlp-ndjson"],
)
def test_a_batch_over_the_limit_is_413_before_parsing(
    database_url: str, token: str, path: str, body: bytes | str, ndjson: bool
) -> None:
    with _limited_client(database_url, 10) as client:
        content_type = "application/x-ndjson" if ndjson else "application/json"
        response = client.post(
            path, content=body, headers={"Authorization": f"Bearer {token}", "Content-Type": content_type}
        )
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == "batch has more than 10 records; the limit is 10"


def test_a_batch_at_the_limit_is_examined(database_url: str, token: str) -> None:
    with _limited_client(database_url, 3) as client:
        auth = {"Authorization": f"Bearer {token}"}
        response = client.post("/v1/usage", json={"records": [make_usage(i) for i in range(3)]}, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 3
        # A repeated wrapper key: json.loads keeps the last array, and so does the count.
        body = '{"records": [1, 2], "records": [' + json.dumps(make_usage(9)) + "]}"
        response = client.post("/v1/usage", content=body, headers=auth)
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == 1
