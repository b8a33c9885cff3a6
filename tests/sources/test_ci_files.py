"""app.sources.ci_files: the usage files of agents that ran in CI, read for one run."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from app.attribution import Attribution
from app.records import PayloadError
from app.sources import codex
from app.sources.ci_files import Run, detect, parse, run_from_claims

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
EXECUTION_FILE = (FIXTURES / "ci" / "claude_code_action_execution.json").read_bytes()
GH_AW = (FIXTURES / "ci" / "gh_aw_token_usage.jsonl").read_bytes()
ROLLOUT = (FIXTURES / "codex" / "rollout_model_switch.jsonl").read_bytes()
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
RUN = Run(repo="acme/widgets", run_id="3003", pr=12, branch="feat/cache", commit="a" * 40)


def test_kinds_are_told_from_the_content() -> None:
    assert detect(EXECUTION_FILE) == "claude-code-action"
    assert detect(GH_AW) == "gh-aw"
    assert detect(ROLLOUT) == "codex"
    assert detect(b'{"id": "r1", "model": "m", "timestamp": "2026-01-01T00:00:00Z"}\n') == "canonical"
    # stream-json output (one SDK message a line) is an execution file too
    lines = b"".join(json.dumps(m).encode() + b"\n" for m in json.loads(EXECUTION_FILE))
    assert detect(lines) == "claude-code-action"
    assert detect(b'{"hello": 1}') is None
    assert detect(b"not json") is None
    assert detect(b"[]") is None


def test_the_execution_file_gives_one_record_per_model_at_the_reported_cost() -> None:
    batch = parse(EXECUTION_FILE, kind="claude-code-action", run=RUN, now=NOW)
    assert batch.rejected == [] and batch.skipped == 3  # system, assistant, user
    by_model = {r.model: r for r in batch.records}
    sonnet = by_model["claude-sonnet-4-5-20250929"]
    assert sonnet.id == "3003:claude-code-action:6f1e2d3c-4b5a-4789-9abc-def012345678:claude-sonnet-4-5-20250929"
    assert (sonnet.input_tokens, sonnet.cache_read_tokens, sonnet.cache_write_tokens, sonnet.output_tokens) == (
        290,
        95120,
        18234,
        2301,
    )
    assert sonnet.cost_usd == Decimal("0.4") and by_model["claude-3-5-haiku-20241022"].cost_usd == Decimal("0.0213")
    assert {r.source for r in batch.records} == {"ci"}
    assert {r.agent for r in batch.records} == {"claude-code-action"}
    assert {r.timestamp for r in batch.records} == {NOW}
    assert {r.attribution for r in batch.records} == {
        Attribution(repo="acme/widgets", branch="feat/cache", commit="a" * 40, pr=12)
    }


def test_an_execution_file_without_model_usage_uses_the_totals_and_the_init_model() -> None:
    messages = json.loads(EXECUTION_FILE)
    del messages[-1]["modelUsage"]
    (record,) = parse(json.dumps(messages).encode(), kind="claude-code-action", run=RUN, now=NOW).records
    assert record.model == "claude-sonnet-4-5-20250929" and record.cost_usd == Decimal("0.4213")
    assert (record.input_tokens, record.cache_read_tokens, record.output_tokens) == (310, 95120, 2411)
    without_init = json.dumps(messages[1:]).encode()
    batch = parse(without_init, kind="claude-code-action", run=RUN, now=NOW)
    assert batch.records == [] and "no system message names the model" in batch.rejected[0].error


def test_gh_aw_lines_take_cached_tokens_out_of_openai_style_input() -> None:
    batch = parse(GH_AW, kind="gh-aw", run=RUN, now=NOW)
    assert batch.skipped == 1  # the refused request billed nothing
    anthropic, copilot = batch.records
    assert (anthropic.input_tokens, anthropic.cache_read_tokens, anthropic.cache_write_tokens) == (1200, 30000, 5000)
    assert (copilot.input_tokens, copilot.cache_read_tokens, copilot.reasoning_tokens) == (5000, 15000, 300)
    assert copilot.id == "3003:gh-aw:8d1f3c52-0b1e-4d7e-9a61-2f1c0a9e7b02" and copilot.agent == "gh-aw"
    assert copilot.timestamp == datetime(2026, 1, 1, 10, 0, 9, tzinfo=UTC)
    assert all(r.cost_usd is None for r in batch.records)  # priced from tokens


def test_a_codex_rollout_keeps_its_counts_and_takes_the_run_attribution() -> None:
    own = codex.parse(ROLLOUT)
    batch = parse(ROLLOUT, kind="codex", run=RUN, now=NOW)
    assert [r.id for r in batch.records] == [f"3003:codex:{r.id}" for r in own.records]
    assert [r.total_tokens for r in batch.records] == [r.total_tokens for r in own.records]
    assert {r.attribution.branch for r in batch.records} == {"feat/cache"}  # not the rollout's feat/cache-layer


def test_canonical_records_naming_another_repository_are_rejected() -> None:
    lines = [
        {"id": "a", "model": "m", "timestamp": "2026-01-01T00:00:00Z", "repo": "umbrella/app"},
        {"id": "b", "model": "m", "timestamp": "2026-01-01T00:00:00Z", "repo": "git@github.com:acme/widgets.git"},
        {"id": "c", "model": "m", "timestamp": "2026-01-01T00:00:00Z", "branch": "other", "agent": "aider"},
    ]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    batch = parse(body, kind="canonical", run=RUN, now=NOW)
    assert [r.index for r in batch.rejected] == [0]
    assert "this run's token writes only acme/widgets" in batch.rejected[0].error
    b, c = batch.records
    assert b.id == "3003:canonical:b" and b.attribution.pr == 12
    assert c.attribution.branch == "other" and c.agent == "aider"  # a record's own fields stay


def test_the_same_file_gives_the_same_ids_in_another_attempt_and_new_ones_in_another_run() -> None:
    first = [r.id for r in parse(GH_AW, kind="gh-aw", run=RUN, now=NOW).records]
    later = datetime(2026, 3, 1, tzinfo=UTC)
    assert [r.id for r in parse(GH_AW, kind="gh-aw", run=RUN, now=later).records] == first
    other_run = Run(repo="acme/widgets", run_id="3004", pr=12)
    assert not set(first) & {r.id for r in parse(GH_AW, kind="gh-aw", run=other_run, now=NOW).records}


def test_the_token_says_which_pull_request() -> None:
    event = Attribution.parse(pr=99, branch="claimed", commit="c" * 40)
    claims = {"run_id": "7", "ref": "refs/pull/12/merge", "head_ref": "feat/cache"}
    assert run_from_claims(claims, repository="acme/widgets", event=event) == Run(
        repo="acme/widgets", run_id="7", pr=12, branch="feat/cache", commit="c" * 40
    )
    # pull_request_target runs on the base branch: the PR comes from the event
    target = {"run_id": "7", "ref": "refs/heads/main", "head_ref": "feat/cache"}
    assert run_from_claims(target, repository="acme/widgets", event=event).pr == 99
    with pytest.raises(ValueError, match="run_id"):
        run_from_claims({"ref": "refs/pull/1/merge"}, repository="acme/widgets", event=event)


def test_unreadable_bodies() -> None:
    with pytest.raises(PayloadError):
        parse(b"  ", kind="gh-aw", run=RUN, now=NOW)
    with pytest.raises(PayloadError, match="unknown kind"):
        parse(b"{}", kind="bogus", run=RUN, now=NOW)
    batch = parse(b'{"request_id": "r", "cache_read_tokens": 1}\nnot json\n', kind="gh-aw", run=RUN, now=NOW)
    assert [r.index for r in batch.rejected] == [0, 1]  # no model; not JSON
