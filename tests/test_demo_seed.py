"""The demo's history has what the newcomer's tour promises, in the real payload shapes."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta

from app.events import PullRequestEvent, parse_event
from app.local.demo_seed import ORG, REPOS, build_seed, plan_pulls
from app.sources import claude_code, codex, litellm, otlp

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)


def test_twenty_five_pull_requests_over_four_weeks_with_every_outcome() -> None:
    pulls = plan_pulls(NOW, random.Random(7))
    assert len(pulls) == 25
    assert {p.repo for p in pulls} == set(REPOS)
    assert min(p.created_at for p in pulls) >= NOW - timedelta(days=28)
    outcomes = Counter("open" if p.closed_at is None else ("merged" if p.merged else "closed") for p in pulls)
    assert outcomes["merged"] >= 12 and outcomes["closed"] >= 3 and outcomes["open"] >= 3
    assert sum(1 for p in pulls if p.head_repo.split("/")[0] != ORG) == 1  # one from a fork
    branches = Counter((p.head_repo, p.head_ref) for p in pulls)
    assert max(branches.values()) == 2  # one branch reused after a merge
    assert len({p.author for p in pulls}) >= 4


def test_every_request_is_a_real_payload_its_endpoint_accepts() -> None:
    requests = build_seed(NOW)
    by_path = Counter(r.path for r in requests)
    assert by_path["/github/webhook"] > 50
    parsers = {
        "/v1/ingest/otlp/v1/logs": otlp.parse_logs,
        "/v1/ingest/codex": codex.parse,
        "/v1/ingest/litellm": litellm.parse,
        "/v1/ingest/claude-code": claude_code.parse,
    }
    agents: set[str | None] = set()
    models: set[str] = set()
    for request in requests:
        if request.event is not None:
            event = parse_event(request.event, json.loads(request.body), now=NOW)  # raises Ignored if it were not used
            if isinstance(event, PullRequestEvent):
                assert event.pull.repo in REPOS
            continue
        batch = parsers[request.path](request.body, ndjson="ndjson" in request.headers.get("content-type", ""))
        assert batch.records and not batch.rejected, request.path
        assert all(r.attribution.repo and r.attribution.branch for r in batch.records)
        agents |= {r.agent for r in batch.records}
        models |= {r.model for r in batch.records}
    assert {"claude-code", "codex", "acme-reviewer"} <= agents
    assert len(models) >= 5


def test_the_seed_is_deterministic() -> None:
    assert [r.body for r in build_seed(NOW)] == [r.body for r in build_seed(NOW)]
