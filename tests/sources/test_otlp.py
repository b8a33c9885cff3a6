import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.attribution import Attribution
from app.records import PayloadError, Rejection, UsageRecord
from app.sources.otlp import parse_logs, parse_traces

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "otlp"
SESSION = "5b1f3c2e-8d4a-4f6b-9c7e-2a1d0e9f8b7c"
COMMIT = "3f2c9a1b4d5e6f708192a3b4c5d6e7f8091a2b3c"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def kv(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return {"key": key, "value": value}
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": value}}
    return {"key": key, "value": {"stringValue": value}}


def api_request(sequence: int | None = 1, time: Any = "1760434212345000000", **attributes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event.name": "api_request",
        "session.id": "s-1",
        "model": "claude-sonnet-4-5",
        "input_tokens": "10",
        "output_tokens": "20",
    }
    if sequence is not None:
        base["event.sequence"] = sequence
    base.update(attributes)
    return {
        "timeUnixNano": time,
        "body": {"stringValue": "claude_code.api_request"},
        "attributes": [kv(k, v) for k, v in base.items() if v is not None],
    }


def logs(*records: Any, resource: dict[str, Any] | None = None) -> bytes:
    block = {
        "resource": {"attributes": [kv(k, v) for k, v in (resource or {}).items()]},
        "scopeLogs": [{"scope": {"name": "com.anthropic.claude_code.events"}, "logRecords": list(records)}],
    }
    return json.dumps({"resourceLogs": [block]}).encode()


def genai_span(span_id: str = "00f067aa0ba902b7", trace_id: str = TRACE, **attributes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"gen_ai.request.model": "gpt-4o", "gen_ai.provider.name": "openai"}
    base.update(attributes)
    return {
        "traceId": trace_id,
        "spanId": span_id,
        "name": "chat gpt-4o",
        "startTimeUnixNano": "1760436000250000000",
        "attributes": [kv(k, v) for k, v in base.items() if v is not None],
    }


def traces(*spans: Any, resource: dict[str, Any] | None = None) -> bytes:
    block = {
        "resource": {"attributes": [kv(k, v) for k, v in (resource or {}).items()]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": list(spans)}],
    }
    return json.dumps({"resourceSpans": [block]}).encode()


# --- upstream examples -------------------------------------------------------------------------------------


def test_upstream_logs_example_carries_no_usage() -> None:
    batch = parse_logs((FIXTURES / "logs.json").read_bytes())
    assert batch.records == []
    assert batch.rejected == []
    assert batch.skipped == 1


def test_upstream_trace_example_carries_no_usage() -> None:
    batch = parse_traces((FIXTURES / "trace.json").read_bytes())
    assert batch.records == []
    assert batch.rejected == []
    assert batch.skipped == 1


# --- Claude Code events ------------------------------------------------------------------------------------


def test_claude_code_api_request_fixture() -> None:
    batch = parse_logs((FIXTURES / "claude_code_api_request.json").read_bytes())
    common = {
        "source": "otlp",
        "provider": "anthropic",
        "actor": "alice@acme.example",
        "agent": "claude-code",
        "session_id": SESSION,
    }
    assert batch.records == [
        UsageRecord(
            id=f"{SESSION}:3",
            timestamp=datetime(2025, 10, 14, 9, 30, 12, 345000, tzinfo=UTC),
            model="claude-sonnet-4-5-20250929",
            input_tokens=12,
            cache_read_tokens=48211,
            cache_write_tokens=1532,
            output_tokens=845,
            cost_usd=Decimal("0.03297555"),
            # the record's own branch beats the resource's "main"; repo and commit come from the resource
            attribution=Attribution(repo="acme/widgets", branch="feat/cache-layer", commit=COMMIT),
            **common,
        ),
        UsageRecord(
            id=f"{SESSION}:5",
            timestamp=datetime(2025, 10, 14, 9, 30, 21, 500000, tzinfo=UTC),
            model="claude-haiku-4-5-20251001",
            cache_read_tokens=50000,  # a cache-only call: nothing else billed
            cost_usd=Decimal("0.005"),
            attribution=Attribution(repo="acme/widgets", branch="main", commit=COMMIT),
            **common,
        ),
    ]
    assert batch.positions == [1, 3]
    assert batch.skipped == 2  # user_prompt and tool_result
    assert batch.rejected == []


def test_int_values_as_strings_or_numbers_and_cost_as_string_or_double() -> None:
    as_strings = api_request(input_tokens={"intValue": "7"}, cost_usd="0.25")
    as_numbers = api_request(sequence=2, input_tokens={"intValue": 7}, cost_usd={"doubleValue": 0.25})
    batch = parse_logs(logs(as_strings, as_numbers))
    assert [r.input_tokens for r in batch.records] == [7, 7]
    assert [r.cost_usd for r in batch.records] == [Decimal("0.25"), Decimal("0.25")]
    assert [r.id for r in batch.records] == ["s-1:1", "s-1:2"]


def test_event_recognised_by_event_name_body_or_event_name_field() -> None:
    by_attribute = api_request(sequence=1)
    by_attribute["body"] = {"stringValue": "something else"}
    by_body = api_request(sequence=2, **{"event.name": None})
    by_field = api_request(sequence=3, **{"event.name": None})
    by_field["body"] = {}
    by_field["eventName"] = "claude_code.api_request"
    other = api_request(sequence=4, **{"event.name": "api_error"})
    other["body"] = {"stringValue": "claude_code.api_error"}
    batch = parse_logs(logs(by_attribute, by_body, by_field, other))
    assert [r.id for r in batch.records] == ["s-1:1", "s-1:2", "s-1:3"]
    assert batch.skipped == 1


def test_without_sequence_the_id_is_a_stable_hash() -> None:
    record = api_request(sequence=None)
    first = parse_logs(logs(record)).records[0]
    again = parse_logs(logs(record)).records[0]
    other = parse_logs(logs(api_request(sequence=None, output_tokens="21"))).records[0]
    assert first.id == again.id
    assert first.id.startswith("sha256:")
    assert other.id != first.id


def test_timestamp_falls_back_to_event_timestamp_then_observed_time() -> None:
    from_event = api_request(time="0", **{"event.timestamp": "2025-10-14T09:30:12.345Z"})
    observed = api_request(sequence=2, time=None)
    observed["observedTimeUnixNano"] = 1760434212000000000
    batch = parse_logs(logs(from_event, observed))
    assert [r.timestamp for r in batch.records] == [
        datetime(2025, 10, 14, 9, 30, 12, 345000, tzinfo=UTC),
        datetime(2025, 10, 14, 9, 30, 12, tzinfo=UTC),
    ]


def test_bad_log_records_are_rejected_by_document_index() -> None:
    first = {
        "resource": {"attributes": []},
        "scopeLogs": [
            {"logRecords": [api_request(1), api_request(2, model=None)]},
            {"logRecords": ["not a record", api_request(4, output_tokens="-3")]},
        ],
    }
    second = {
        "scopeLogs": [
            {
                "logRecords": [
                    api_request(5, time="yesterday"),
                    api_request(6, cost_usd="lots"),
                    api_request(7),
                ]
            }
        ]
    }
    batch = parse_logs(json.dumps({"resourceLogs": [first, second]}).encode())
    assert [r.id for r in batch.records] == ["s-1:1", "s-1:7"]
    assert batch.positions == [0, 6]
    assert batch.rejected == [
        Rejection(1, "model attribute is missing"),
        Rejection(2, "logRecord is not an object"),
        Rejection(3, "output_tokens: a count cannot be negative (-3)"),
        Rejection(4, "timeUnixNano: invalid timestamp 'yesterday'"),
        Rejection(5, "cost_usd: expected an amount, got 'lots'"),
    ]


def test_actor_and_session_may_come_from_the_resource() -> None:
    record = api_request(**{"session.id": None})
    batch = parse_logs(logs(record, resource={"session.id": "res-session", "user.id": "u-42"}))
    assert batch.records[0].session_id == "res-session"
    assert batch.records[0].id == "res-session:1"
    assert batch.records[0].actor == "u-42"


# --- VCS attribution ---------------------------------------------------------------------------------------


def test_record_vcs_attributes_win_field_by_field() -> None:
    resource = {
        "vcs.repository.url.full": "https://github.com/acme/widgets",
        "vcs.ref.head.name": "main",
        "vcs.ref.head.revision": COMMIT,
    }
    own_branch = api_request(1, **{"vcs.ref.head.name": "refs/heads/feat/x", "vcs.change.id": 17})
    other_repo = api_request(2, **{"vcs.repository.url.full": "git@github.com:acme/fork.git"})
    batch = parse_logs(logs(own_branch, other_repo, resource=resource))
    assert batch.records[0].attribution == Attribution(repo="acme/widgets", branch="feat/x", commit=COMMIT, pr=17)
    # branch and commit of another repository are never borrowed
    assert batch.records[1].attribution == Attribution(repo="acme/fork")


def test_older_vcs_attribute_names_are_accepted() -> None:
    resource = {
        "vcs.repository.url.full": "https://github.com/acme/widgets.git",
        "vcs.repository.ref.name": "feat/old-names",
        "vcs.repository.ref.revision": COMMIT.upper(),
        "vcs.repository.change.id": "https://github.com/acme/widgets/pull/9",
    }
    batch = parse_traces(traces(genai_span(**{"gen_ai.usage.input_tokens": 5}), resource=resource))
    assert batch.records[0].attribution == Attribution(
        repo="acme/widgets", branch="feat/old-names", commit=COMMIT, pr=9
    )


def test_scope_attributes_sit_between_record_and_resource() -> None:
    body = json.loads(logs(api_request(1), resource={"vcs.ref.head.name": "from-resource"}))
    body["resourceLogs"][0]["scopeLogs"][0]["scope"]["attributes"] = [kv("vcs.ref.head.name", "from-scope")]
    assert parse_logs(json.dumps(body).encode()).records[0].attribution.branch == "from-scope"


# --- GenAI spans -------------------------------------------------------------------------------------------


def test_genai_spans_fixture() -> None:
    batch = parse_traces((FIXTURES / "genai_spans.json").read_bytes())
    resource = {"repo": "acme/widgets", "commit": "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"}
    common = {"source": "otlp", "actor": "bot@acme.example", "agent": "pr-review-bot"}
    assert batch.records == [
        UsageRecord(
            id=f"{TRACE}:53995c3f42cd8ad8",
            call_ids=("chatcmpl-CQ7x1y2z3",),
            timestamp=datetime(2025, 10, 14, 10, 0, 0, 250000, tzinfo=UTC),
            model="gpt-4o-2024-08-06",  # the response model beats the requested alias
            provider="openai",
            input_tokens=200,  # 1200 reported, of which 1000 were cache reads
            cache_read_tokens=1000,
            output_tokens=300,
            attribution=Attribution(branch="feat/review-bot", **resource),
            session_id="review-482",
            **common,
        ),
        UsageRecord(
            id=f"{TRACE}:a1b2c3d4e5f60718",
            timestamp=datetime(2025, 10, 14, 10, 0, 3, 500000, tzinfo=UTC),
            model="claude-sonnet-4-5",
            provider="anthropic",
            input_tokens=500,  # 5000 prompt tokens include 3000 cache reads and 1500 cache writes
            cache_read_tokens=3000,
            cache_write_tokens=1500,
            output_tokens=800,
            cost_usd=Decimal("0.0345"),
            attribution=Attribution(branch="feat/span-branch", pr=482, **resource),
            **common,
        ),
        UsageRecord(
            id=f"{TRACE}:0a0b0c0d0e0f1011",
            timestamp=datetime(2025, 10, 14, 10, 0, 9, tzinfo=UTC),
            model="o3-mini-2025-01-31",
            provider="openai",
            input_tokens=800,
            output_tokens=1500,
            reasoning_tokens=1200,
            attribution=Attribution(branch="feat/review-bot", **resource),
            **common,
        ),
    ]
    assert batch.positions == [1, 2, 3]
    assert batch.skipped == 1  # the HTTP server span
    assert batch.rejected == []


def test_hex_ids_of_any_case_give_the_same_dedupe_id() -> None:
    usage = {"gen_ai.usage.input_tokens": 3}
    upper = parse_traces(traces(genai_span("00F067AA0BA902B7", TRACE.upper(), **usage))).records[0]
    lower = parse_traces(traces(genai_span("00f067aa0ba902b7", TRACE, **usage))).records[0]
    assert upper.id == lower.id == f"{TRACE}:00f067aa0ba902b7"


def test_cache_only_span_has_no_uncached_input() -> None:
    span = genai_span(
        **{"gen_ai.usage.input_tokens": "4096", "gen_ai.usage.cache_read.input_tokens": "4096"},
    )
    record = parse_traces(traces(span)).records[0]
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (0, 4096, 0)


def test_input_smaller_than_cache_is_taken_as_already_uncached() -> None:
    # An emitter that counted like Anthropic (input excludes cache) despite the spec: never go negative.
    span = genai_span(**{"gen_ai.usage.input_tokens": 12, "gen_ai.usage.cache_read.input_tokens": 900})
    record = parse_traces(traces(span)).records[0]
    assert (record.input_tokens, record.cache_read_tokens) == (12, 900)


def test_spans_without_genai_usage_are_skipped_including_claude_code_llm_request() -> None:
    # Claude Code's own spans carry flat token attributes that duplicate its api_request events.
    claude_span = genai_span(
        **{
            "gen_ai.system": "anthropic",
            "model": "claude-sonnet-4-5",
            "input_tokens": "10",
            "output_tokens": "5",
        }
    )
    plain = genai_span("00f067aa0ba902b8", **{"gen_ai.request.model": None, "http.route": "/x"})
    batch = parse_traces(traces(claude_span, plain))
    assert batch.records == []
    assert batch.skipped == 2


def test_bad_spans_are_rejected_by_index() -> None:
    usage = {"gen_ai.usage.input_tokens": 5}
    no_model = genai_span("0000000000000001", **{"gen_ai.request.model": None}, **usage)
    no_ids = genai_span("", **usage)
    negative = genai_span("0000000000000003", **{"gen_ai.usage.output_tokens": -1})
    no_start = genai_span("0000000000000004", **usage)
    no_start["startTimeUnixNano"] = "0"
    good = genai_span("0000000000000005", **usage)
    batch = parse_traces(traces(no_model, no_ids, negative, no_start, good))
    assert [r.id for r in batch.records] == [f"{TRACE}:0000000000000005"]
    assert batch.rejected == [
        Rejection(0, "gen_ai.response.model / gen_ai.request.model is missing"),
        Rejection(1, "traceId and spanId are required"),
        Rejection(2, "gen_ai.usage.output_tokens: a count cannot be negative (-1)"),
        Rejection(3, "startTimeUnixNano is missing"),
    ]


def test_agent_is_the_service_name_unless_it_is_the_sdk_default() -> None:
    span = genai_span(**{"gen_ai.usage.input_tokens": 1})
    named = parse_traces(traces(span, resource={"service.name": "claude-code"})).records[0]
    default = parse_traces(traces(span, resource={"service.name": "unknown_service:python"})).records[0]
    assert named.agent == "claude-code"
    assert default.agent is None


# --- whole payload -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b'{"resourceLogs": {"oops": 1}}',
        b'{"resourceLogs": [3]}',
    ],
)
def test_unreadable_payload_raises(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_logs(body)


def test_empty_export_is_valid() -> None:
    batch = parse_traces(b"{}")
    assert (batch.records, batch.rejected, batch.skipped) == ([], [], 0)


def test_ndjson_requests_index_across_lines_and_reject_a_bad_line() -> None:
    line_one = logs(api_request(1), api_request(2))
    line_three = logs(api_request(3))
    body = line_one + b"\n{broken\n" + line_three + b"\n"
    batch = parse_logs(body, ndjson=True)
    assert [r.id for r in batch.records] == ["s-1:1", "s-1:2", "s-1:3"]
    assert batch.positions == [0, 1, 2]
    assert len(batch.rejected) == 1
    assert batch.rejected[0].index == 2
    assert batch.rejected[0].error.startswith("line 1: line is not valid JSON")


def test_ndjson_with_no_readable_line_raises() -> None:
    with pytest.raises(PayloadError):
        parse_logs(b"nope\nstill nope\n", ndjson=True)


def test_agent_spans_are_not_counted_on_top_of_their_calls() -> None:
    """Copilot's `invoke_agent` spans carry the totals of their `chat` turns (a sub-agent's too): only the
    inference spans are usage (DESIGN §3)."""
    batch = parse_traces((FIXTURES / "copilot_span_tree.json").read_bytes())
    assert [r.call_ids for r in batch.records] == [(f"chatcmpl-copilot-000{i}",) for i in range(1, 5)]
    assert sum(r.input_tokens for r in batch.records) == 1500 + 2100 + 1800 + 2600
    assert sum(r.output_tokens for r in batch.records) == 250 + 90 + 120 + 400
    assert batch.skipped == 5  # two invoke_agent and three execute_tool spans
    assert {r.attribution.branch for r in batch.records} == {"feat/copilot"}


def _span(span_id: str, parent: str | None, *, operation: str | None, tokens: int) -> dict[str, Any]:
    attributes = [{"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}}]
    attributes.append({"key": "gen_ai.usage.input_tokens", "value": {"intValue": str(tokens)}})
    if operation is not None:
        attributes.append({"key": "gen_ai.operation.name", "value": {"stringValue": operation}})
    span = {
        "traceId": "ab" * 16,
        "spanId": span_id,
        "startTimeUnixNano": "1763114400000000000",
        "attributes": attributes,
    }
    return span | ({"parentSpanId": parent} if parent else {})


def test_an_unnamed_span_with_usage_counts_only_when_it_is_a_leaf() -> None:
    spans = [
        _span("0000000000000001", None, operation=None, tokens=300),  # sums its children: skipped
        _span("0000000000000002", "0000000000000001", operation=None, tokens=100),  # a leaf: counted
        _span("0000000000000003", "0000000000000001", operation="chat", tokens=200),  # inference: counted
        _span("0000000000000004", None, operation="invoke_workflow", tokens=999),  # never
    ]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    batch = parse_traces(body)
    assert sorted(r.input_tokens for r in batch.records) == [100, 200]
    assert batch.skipped == 2


# -- Claude Code's own attributes (OTEL_METRICS_INCLUDE_REPOSITORY, OTEL_LOG_TOOL_DETAILS) ---------------------------


def _session_events() -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / "claude_code_session_events.json").read_text())
    return document


def _records_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = document["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
    return records


def test_cost_usd_micros_is_preferred_to_the_float_cost() -> None:
    document = _session_events()
    first = _records_of(document)[0]
    for attribute in first["attributes"]:
        if attribute["key"] == "cost_usd":
            attribute["value"] = {"doubleValue": 0.030000000000000002}  # a float's rounding
    batch = parse_logs(json.dumps(document).encode())
    assert batch.records[0].cost_usd == Decimal("0.03")  # 30000 micros, exactly
    for attribute in first["attributes"]:
        if attribute["key"] == "cost_usd_micros":
            attribute["key"] = "something_else"
    assert parse_logs(json.dumps(document).encode()).records[0].cost_usd == Decimal("0.030000000000000002")


def test_a_successful_git_commit_is_a_session_commit_and_no_usage() -> None:
    batch = parse_logs((FIXTURES / "claude_code_session_events.json").read_bytes())
    assert (len(batch.records), batch.skipped) == (2, 1)
    (commit,) = batch.commits
    assert commit.session_id == "7d2e4c1a-3b5f-4e8d-9a6c-0f1e2d3c4b5a"
    assert commit.at == datetime(2026, 11, 2, 10, 0, 30, tzinfo=UTC)
    assert commit.attribution == Attribution(
        repo="acme/widgets", branch="feat/metrics", commit="9d59409acf479dfa0df1aa568182e43e43df8bbe"
    )


@pytest.mark.parametrize("change", ["failed", "detached"])
def test_a_failed_or_detached_commit_says_nothing(change: str) -> None:
    document = _session_events()
    commit = _records_of(document)[1]
    if change == "failed":
        next(a for a in commit["attributes"] if a["key"] == "success")["value"] = {"stringValue": "false"}
    else:  # a commit on a detached HEAD has no branch name
        commit["attributes"] = [a for a in commit["attributes"] if a["key"] not in {"vcs.ref.head.name"}]
    assert parse_logs(json.dumps(document).encode()).commits == []


def test_owner_and_repository_name_attribute_events_without_a_url() -> None:
    document = _session_events()
    for record in _records_of(document):
        record["attributes"] = [a for a in record["attributes"] if a["key"] != "vcs.repository.url.full"]
    batch = parse_logs(json.dumps(document).encode())
    assert {record.attribution.repo for record in batch.records} == {"acme/widgets"}
    assert batch.commits[0].attribution.repo == "acme/widgets"
