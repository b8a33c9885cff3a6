"""The agent × model table (issue 15) on SQLite and PostgreSQL: equal to a brute-force aggregation over the raw
records; and served by `/report` and shown on the dashboard."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from app.db import utcnow
from app.money import from_nanousd
from app.outcome_report import Period, Scope
from app.pricing import canonical_model
from app.routing_table import THIN_BELOW, agent_model_json, agent_model_table
from app.tables import PULLS, USAGE

REPO, OTHER_REPO, STRANGER = "acme/widgets", "acme/gateway", "umbrella/secret"
SINCE = datetime(2026, 10, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 1, tzinfo=UTC)
MODELS = [("anthropic", "claude-sonnet-4-5"), ("anthropic", "claude-sonnet-4-5-20250929"), (None, "gpt-5"),
          ("openai", "gpt-5-mini"), (None, "mystery-model")]  # fmt: skip
AGENTS = ["claude-code", "codex", None]
REVERTED = {(REPO, 3)}  # PR 3 is reverted by PR 4's body


def _pull(repo: str, number: int, state: str, *, lines: int, reverts: int | None = None) -> dict[str, Any]:
    merged = state == "merged"
    when = SINCE + timedelta(days=number)
    return {
        "repo": repo, "number": number, "title": f"#{number}", "author": "alice", "state": "closed" if merged or
        state == "closed" else "open", "merged": merged, "additions": lines, "deletions": number, "created_at": when,
        "closed_at": when + timedelta(days=2) if state != "open" else None,
        "merged_at": when + timedelta(days=2) if merged else None, "updated_at": when, "reverts_number": reverts,
    }  # fmt: skip


def seed(factory: sessionmaker[Session]) -> None:
    chance = random.Random(15)
    pulls = [_pull(REPO, n, ["merged", "closed", "open"][n % 3], lines=10 * n) for n in range(1, 13) if n not in (3, 4)]
    pulls += [_pull(REPO, 3, "merged", lines=70), _pull(REPO, 4, "merged", lines=70, reverts=3)]
    pulls += [_pull(OTHER_REPO, n, "merged", lines=5) for n in (1, 2)]
    usage = []
    for index in range(400):
        repo = chance.choice([REPO, REPO, OTHER_REPO, STRANGER])
        provider, model = chance.choice(MODELS)
        number = chance.choice([None, *range(1, 13)]) if repo == REPO else chance.choice([None, 1, 2])
        usage.append({
            "source": "api", "record_id": f"r{index}", "model": model, "provider": provider,
            "timestamp": SINCE + timedelta(hours=chance.randrange(-200, 800)),  # some outside the period
            "input_tokens": chance.randrange(0, 5000), "cache_read_tokens": chance.randrange(0, 50000),
            "cache_write_tokens": chance.randrange(0, 3000), "output_tokens": chance.randrange(0, 2000),
            "cost_nanousd": None if model == "mystery-model" else chance.randrange(1, 10**9),
            "owner": repo.split("/")[0], "repo": repo, "agent": chance.choice(AGENTS), "received_at": utcnow(),
            "pr_repo": None if number is None or repo == STRANGER else repo, "pr_number": None if repo == STRANGER
            else number, "pr_private": chance.random() < 0.05,
        })  # fmt: skip
    # a rarely used agent: its one row rests on 2 PRs, too few to route on
    usage += [{**usage[0], "record_id": f"aider{n}", "agent": "aider", "repo": REPO, "owner": "acme",
               "pr_repo": REPO, "pr_number": 1 + n % 2, "pr_private": False, "timestamp": SINCE + timedelta(days=3)}
              for n in range(3)]  # fmt: skip
    with factory() as session, session.begin():
        session.execute(sa.insert(PULLS), pulls)
        session.execute(sa.insert(USAGE), usage)


def brute_force(factory: sessionmaker[Session], repos: set[str]) -> dict[tuple[str | None, str], dict[str, Any]]:
    """Every raw record, one at a time: what the table must say."""
    with factory() as session:
        records = session.execute(sa.select(USAGE)).all()
        pulls = {(p.repo, p.number): p for p in session.execute(sa.select(PULLS))}
    rows: dict[tuple[str | None, str], dict[str, Any]] = defaultdict(
        lambda: {"cost": Decimal(0), "records": 0, "unpriced": 0, "input": 0, "read": 0, "pulls": {}}
    )
    for r in records:
        at = r.timestamp if r.timestamp.tzinfo else r.timestamp.replace(tzinfo=UTC)
        if r.pr_repo not in repos or r.pr_number is None or r.pr_private or not SINCE <= at < UNTIL:
            continue
        row = rows[(r.agent, canonical_model(r.provider, r.model))]
        cost = from_nanousd(r.cost_nanousd) or Decimal(0)
        row["cost"] += cost
        row["records"] += 1
        row["unpriced"] += r.cost_nanousd is None
        row["input"] += r.input_tokens + r.cache_read_tokens + r.cache_write_tokens
        row["read"] += r.cache_read_tokens
        row["pulls"][(r.pr_repo, r.pr_number)] = row["pulls"].get((r.pr_repo, r.pr_number), Decimal(0)) + cost
    expected = {}
    for key, row in rows.items():
        merged = [k for k in row["pulls"] if pulls[k].merged and k not in REVERTED]
        wasted = [k for k in row["pulls"] if (pulls[k].state == "closed" and not pulls[k].merged) or k in REVERTED]
        expected[key] = {
            "cost": row["cost"], "records": row["records"], "unpriced": row["unpriced"], "pulls": len(row["pulls"]),
            "merged": len(merged), "lines": sum(pulls[k].additions + pulls[k].deletions for k in merged),
            "merged_cost": sum((row["pulls"][k] for k in merged), Decimal(0)), "wasted": len(wasted),
            "wasted_cost": sum((row["pulls"][k] for k in wasted), Decimal(0)), "input": row["input"],
            "read": row["read"],
        }  # fmt: skip
    return expected


def as_dict(table: Any) -> dict[tuple[str | None, str], dict[str, Any]]:
    return {
        (r.agent, r.model): {
            "cost": r.cost_usd,
            "records": r.records,
            "unpriced": r.unpriced_records,
            "pulls": r.pull_requests,
            "merged": r.merged_pull_requests,
            "lines": r.merged_changed_lines,
            "merged_cost": r.merged_cost_usd,
            "wasted": r.wasted_pull_requests,
            "wasted_cost": r.wasted_cost_usd,
            "input": r.input_tokens,
            "read": r.cache_read_tokens,
        }
        for r in table
    }


def test_equals_brute_force_over_raw_records(factory: sessionmaker[Session]) -> None:
    seed(factory)
    with factory() as session:
        repo_table = agent_model_table(session, scope=Scope("acme", REPO), period=Period(SINCE, UNTIL))
        owner_table = agent_model_table(session, scope=Scope("acme"), period=Period(SINCE, UNTIL))
    assert as_dict(repo_table) == brute_force(factory, {REPO})
    assert as_dict(owner_table) == brute_force(factory, {REPO, OTHER_REPO})
    # dated spellings are one model; the reverted PR counts as waste, not as merged work
    assert not any(r.model.endswith("20250929") for r in repo_table)
    assert any(r.wasted_pull_requests for r in repo_table)
    # rows resting on few PRs are flagged, and the order is by name, never by spend
    assert [(r.agent, r.pull_requests) for r in owner_table if r.thin] == [("aider", 2)]
    assert all(r.pull_requests >= THIN_BELOW for r in owner_table if not r.thin)
    assert [(r.agent is None, r.agent or "", r.model) for r in owner_table] == sorted(
        (r.agent is None, r.agent or "", r.model) for r in owner_table
    )
    shown = agent_model_json(repo_table)
    assert set(shown[0]) >= {"agent", "model", "cost_usd", "pull_requests", "merged_pull_requests",
                             "cost_per_merged_changed_line_usd", "closed_or_reverted_share", "cache_read_share",
                             "few_pull_requests"}  # fmt: skip


def test_served_by_report_and_dashboard(client: TestClient, factory: sessionmaker[Session], token: str) -> None:
    seed(factory)
    period = {"since": "2026-10-01", "until": "2026-10-31"}
    auth = {"Authorization": f"Bearer {token}"}
    report = client.get(f"/v1/repos/{REPO}/report", params=period, headers=auth)
    assert report.status_code == 200, report.text
    with factory() as session:
        expected = agent_model_json(agent_model_table(session, scope=Scope("acme", REPO), period=Period(SINCE, UNTIL)))
    assert report.json()["by_agent_model"] == expected
    assert client.get("/v1/orgs/acme/report", params=period, headers=auth).json()["by_agent_model"]
    # another owner's token sees none of it
    assert (
        client.get(f"/v1/repos/{REPO}/report", params=period, headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )
