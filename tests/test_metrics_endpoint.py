"""OTLP metrics through `/v1/ingest/otlp/v1/metrics` on both databases: Claude Code's delta counters, cumulative
GenAI histograms turned into deltas (restarts included), redelivery, events winning over metrics in either arrival
order, a `git commit` moving a session's later calls to its branch, and tenancy."""

from __future__ import annotations

import copy
import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.attribution import Attribution
from app.ingest import ingest
from app.sources import FORMATS
from app.tokens import TokenIdentity
from tests.conftest import FIXTURES, make_token
from tests.ingest_support import usage_of
from tests.otlp_encoding import to_protobuf

METRICS = "/v1/ingest/otlp/v1/metrics"
LOGS = "/v1/ingest/otlp/v1/logs"
METRICS_BODY = (FIXTURES / "otlp/claude_code_metrics.json").read_bytes()
EVENTS_BODY = (FIXTURES / "otlp/claude_code_session_events.json").read_bytes()
SECOND = 10**9
T0 = 1_793_613_600 * SECOND  # 2026-11-02T10:00:00Z


def _post(client: TestClient, auth: dict[str, str], path: str, body: bytes | dict[str, Any]) -> dict[str, Any]:
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    response = client.post(path, content=content, headers={**auth, "Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def _histogram(
    points: list[tuple[int, int, float]], *, repo: str = "acme/widgets", kind: str = "input"
) -> dict[str, Any]:
    """A cumulative `gen_ai.client.token.usage` export: (start, end, sum) per point, one series."""
    attributes = [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o-2024-08-06"}},
        {"key": "gen_ai.token.type", "value": {"stringValue": kind}},
        {"key": "vcs.repository.url.full", "value": {"stringValue": f"https://github.com/{repo}"}},
    ]
    data_points = [
        {"attributes": attributes, "startTimeUnixNano": str(start), "timeUnixNano": str(end), "count": "3",
         "sum": total, "bucketCounts": ["0", "3"], "explicitBounds": [1.0]}
        for start, end, total in points
    ]  # fmt: skip
    metric = {
        "name": "gen_ai.client.token.usage",
        "unit": "{token}",
        "histogram": {"aggregationTemporality": 2, "dataPoints": data_points},
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": "support-bot"}}]}
    return {"resourceMetrics": [{"resource": resource, "scopeMetrics": [{"metrics": [metric]}]}]}


def test_claude_code_delta_counters_land_and_redelivery_is_a_duplicate(
    client: TestClient, auth: dict[str, str]
) -> None:
    first = _post(client, auth, METRICS, METRICS_BODY)
    assert (first["accepted"], first["skipped"], first["rejected"]) == (5, 1, [])  # session.count is skipped
    again = _post(client, auth, METRICS, METRICS_BODY)
    assert (again["accepted"], again["duplicates"]) == (0, 5)
    totals = usage_of(client, auth)
    assert Decimal(totals["cost_usd"]) == Decimal("0.0421")  # the reported cost; token records add none
    assert (totals["input_tokens"], totals["output_tokens"]) == (1200, 350)
    assert (totals["cache_read_tokens"], totals["cache_write_tokens"]) == (24000, 1800)


def test_protobuf_metrics_are_the_same_records(client: TestClient, auth: dict[str, str]) -> None:
    headers = {**auth, "Content-Type": "application/x-protobuf", "Accept": "application/json"}
    response = client.post(METRICS, content=to_protobuf(METRICS_BODY, "metrics"), headers=headers)
    assert response.json()["accepted"] == 5
    assert _post(client, auth, METRICS, METRICS_BODY)["duplicates"] == 5


@pytest.mark.parametrize("events_first", [True, False], ids=["events-then-metrics", "metrics-then-events"])
def test_a_session_sent_as_events_and_metrics_counts_once(
    client: TestClient, auth: dict[str, str], events_first: bool
) -> None:
    """Events win: they are per call (exact tokens, request ids); the metrics say the same again in aggregate."""
    order = [(LOGS, EVENTS_BODY), (METRICS, METRICS_BODY)]
    for path, body in order if events_first else reversed(order):
        _post(client, auth, path, body)
    _post(client, auth, METRICS, METRICS_BODY)  # a redelivery after both: still not counted
    totals = usage_of(client, auth)
    assert totals["records"] == 2  # the two api_request events
    assert Decimal(totals["cost_usd"]) == Decimal("0.0421")
    assert (totals["input_tokens"], totals["cache_read_tokens"]) == (1200, 24000)


def test_metrics_of_a_session_without_events_still_count_when_other_sessions_have_events(
    client: TestClient, auth: dict[str, str]
) -> None:
    other = METRICS_BODY.replace(b"7d2e4c1a-3b5f-4e8d-9a6c-0f1e2d3c4b5a", b"00000000-1111-4222-8333-444444444444")
    _post(client, auth, LOGS, EVENTS_BODY)
    assert _post(client, auth, METRICS, other)["accepted"] == 5
    assert Decimal(usage_of(client, auth)["cost_usd"]) == Decimal("0.0421") * 2


def test_cumulative_sums_become_deltas_with_restarts_detected(client: TestClient, auth: dict[str, str]) -> None:
    start, restart = T0, T0 + 300 * SECOND
    exports = [
        [(start, start + 60 * SECOND, 1000.0)],  # all of it is new: 1000
        [(start, start + 120 * SECOND, 1500.0), (start, start + 180 * SECOND, 1600.0)],  # +500, +100
        [(start, start + 120 * SECOND, 1500.0)],  # a redelivery of an old point: nothing
        [(restart, restart + 60 * SECOND, 200.0)],  # a new start time: the process restarted, 200 new
        [(restart, restart + 120 * SECOND, 50.0)],  # smaller than before with the same start: a reset, 50 new
        [(restart, restart + 180 * SECOND, 50.0)],  # nothing added
    ]
    answers = [_post(client, auth, METRICS, _histogram(points)) for points in exports]
    assert [a["accepted"] for a in answers] == [1, 2, 0, 1, 1, 0]
    assert answers[2]["duplicates"] == 1 and answers[5]["duplicates"] == 1
    totals = usage_of(client, auth)
    assert totals["input_tokens"] == 1000 + 500 + 100 + 200 + 50
    assert totals["unpriced_records"] == 0 and Decimal(totals["cost_usd"]) > 0  # priced from the tokens
    # The whole export again, as an exporter retries: nothing changes.
    assert _post(client, auth, METRICS, _histogram(exports[1][0:1] + exports[4]))["accepted"] == 0
    assert usage_of(client, auth)["input_tokens"] == 1850


def test_another_owners_same_series_and_session_are_theirs(
    client: TestClient, auth: dict[str, str], factory: sessionmaker[Session]
) -> None:
    """The series key and the session id are the same strings for both owners; state and dedupe are per owner."""
    other = {"Authorization": f"Bearer {make_token(factory, 'umbrella')}"}
    points = [(T0, T0 + 60 * SECOND, 1000.0)]
    _post(client, auth, METRICS, _histogram(points))
    theirs = _post(client, other, METRICS, _histogram([*points, (T0, T0 + 120 * SECOND, 1200.0)], repo="umbrella/x"))
    assert theirs["accepted"] == 2  # their first point is new to them, not a duplicate of acme's
    mine = _post(client, auth, METRICS, _histogram([(T0, T0 + 120 * SECOND, 1100.0)]))
    assert mine["accepted"] == 1
    assert usage_of(client, auth)["input_tokens"] == 1100  # +100 over acme's own last point, not umbrella's
    # Their events of the same session id do not remove acme's metric records of that session.
    umbrella_metrics = METRICS_BODY.replace(b"github.com/acme/widgets", b"github.com/umbrella/x")
    umbrella_metrics = umbrella_metrics.replace(b'"acme"', b'"umbrella"').replace(b'"widgets"', b'"x"')
    _post(client, auth, METRICS, METRICS_BODY)
    events = EVENTS_BODY.replace(b"github.com/acme/widgets", b"github.com/umbrella/x")
    events = events.replace(b'"acme"', b'"umbrella"').replace(b'"widgets"', b'"x"')
    _post(client, other, LOGS, events)
    assert Decimal(usage_of(client, auth)["cost_usd"]) > Decimal("0.0421")  # acme's metric cost is still there
    attacker = _post(client, other, METRICS, umbrella_metrics)
    assert attacker["accepted"] == 0  # umbrella's own session has events: its metrics are not counted again


def _log_records(body: bytes) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(body)["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    return records


def _with_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    document = json.loads(EVENTS_BODY)
    document["resourceLogs"][0]["scopeLogs"][0]["logRecords"] = copy.deepcopy(records)
    return document


def _branches(client: TestClient, auth: dict[str, str]) -> dict[str | None, int]:
    return {row["branch"]: row["records"] for row in usage_of(client, auth)["by_branch"]}


def test_a_commit_moves_the_later_calls_of_its_session_to_its_branch(client: TestClient, auth: dict[str, str]) -> None:
    before, commit, after = _log_records(EVENTS_BODY)
    answer = _post(client, auth, LOGS, _with_records([before, commit, after]))
    assert (answer["accepted"], answer["skipped"]) == (2, 1)
    assert _branches(client, auth) == {None: 1, "feat/metrics": 1}


@pytest.mark.parametrize("commit_first", [True, False], ids=["commit-then-call", "call-then-commit"])
def test_the_commit_branch_holds_across_batches_in_either_order(
    client: TestClient, auth: dict[str, str], commit_first: bool
) -> None:
    before, commit, after = _log_records(EVENTS_BODY)
    batches = [[commit], [before, after]] if commit_first else [[before, after], [commit]]
    for records in batches:
        _post(client, auth, LOGS, _with_records(records))
    assert _branches(client, auth) == {None: 1, "feat/metrics": 1}
    # An older commit arriving late does not take the session back.
    older = copy.deepcopy(commit)
    older["timeUnixNano"] = str(int(commit["timeUnixNano"]) - 20 * SECOND)
    for attribute in older["attributes"]:
        if attribute["key"] == "vcs.ref.head.name":
            attribute["value"]["stringValue"] = "feat/older"
    _post(client, auth, LOGS, _with_records([older]))
    assert _branches(client, auth)["feat/metrics"] == 1


def _ingest_at_once(factory: sessionmaker[Session], bodies: list[tuple[str, bytes]]) -> None:
    """Ingest the bodies from one thread each, released together (two exporters' batches racing)."""
    barrier = threading.Barrier(len(bodies))
    formats = {f.path: f for f in FORMATS}
    errors: list[BaseException] = []

    def run(path: str, body: bytes) -> None:
        try:
            barrier.wait()
            ingest(body, format=formats[path], ndjson=False, identity=TokenIdentity(owner="acme"),
                   fallback=Attribution(), factory=factory, max_records=10_000)  # fmt: skip
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=item) for item in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_two_batches_of_one_series_at_once_count_each_token_once(
    client: TestClient, auth: dict[str, str], factory: sessionmaker[Session]
) -> None:
    for round_ in range(5):
        start = T0 + round_ * 3600 * SECOND  # a new series start each round: a restart, all new
        earlier = json.dumps(_histogram([(start, start + 60 * SECOND, 1000.0)])).encode()
        later = json.dumps(_histogram([(start, start + 120 * SECOND, 1500.0)])).encode()
        _ingest_at_once(factory, [(METRICS, earlier), (METRICS, later)])
        # Either order ends at the series' last total: 1000 then +500, or 1500 then the older point dropped.
        assert usage_of(client, auth)["input_tokens"] == 1500 * (round_ + 1)


def test_events_and_metrics_of_one_session_at_once_count_once(
    client: TestClient, auth: dict[str, str], factory: sessionmaker[Session]
) -> None:
    for round_ in range(3):
        session = f"00000000-0000-4000-8000-00000000000{round_}".encode()
        metrics = METRICS_BODY.replace(b"7d2e4c1a-3b5f-4e8d-9a6c-0f1e2d3c4b5a", session)
        events = EVENTS_BODY.replace(b"7d2e4c1a-3b5f-4e8d-9a6c-0f1e2d3c4b5a", session)
        events = events.replace(b"req_011CVmetricsA", f"req_011CVround{round_}".encode())  # other calls
        _ingest_at_once(factory, [(METRICS, metrics), (LOGS, events)])
        assert Decimal(usage_of(client, auth)["cost_usd"]) == Decimal("0.0421") * (round_ + 1)


@pytest.mark.parametrize("bad", ["long", "nul"])
def test_a_commit_event_the_database_cannot_store_is_left_out_not_a_500(
    client: TestClient, auth: dict[str, str], bad: str
) -> None:
    before, commit, after = _log_records(EVENTS_BODY)
    commit = copy.deepcopy(commit)
    for attribute in commit["attributes"]:
        if attribute["key"] == "session.id":
            attribute["value"]["stringValue"] = "s" * 300 if bad == "long" else "session\x00id"
        if attribute["key"] == "vcs.ref.head.name" and bad == "nul":
            attribute["value"]["stringValue"] = "feat/\x00nul"
    answer = _post(client, auth, LOGS, _with_records([before, commit, after]))
    assert (answer["accepted"], answer["skipped"]) == (2, 1)
    assert _branches(client, auth) == {None: 2}
