"""What ships, per agent and model (issue 15): one row per agent × canonical model over a scope and period, the
evidence a routing decision needs. Shell: the scope's daily rollup cells (app.daily_books) grouped by agent, model
and PR, with each PR's facts, then folding in Python, where model ids become canonical names
(`app.pricing.canonical_model`).

The figures of a row, over the records made in the period that count on a PR:
- spend, and the PRs it touched;
- merged PRs (merged and not reverted since) and their changed lines (each PR's lines count once per row);
- cost per merged changed line: the row's spend on those merged PRs over their lines;
- the share of the row's spend on PRs closed without merge or reverted;
- the cache-read share of input (cache reads over all input tokens: non-cached, cache read, cache write).

Each figure says how many PRs it rests on; a row touching fewer than `THIN_BELOW` PRs is shown greyed out. No
counterfactual prices: only what was spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from app.books import usd
from app.daily_books import pull_facts, pull_groups
from app.formatting import per_line_json, usd_json
from app.outcome_report import Period, Scope
from app.pricing import canonical_model
from app.reverts import reverted_pulls

THIN_BELOW = 5  # rows resting on fewer PRs are greyed out: too few to route on


@dataclass(frozen=True, slots=True)
class AgentModelRow:
    agent: str | None
    model: str  # canonical
    cost_usd: Decimal
    records: int
    unpriced_records: int
    pull_requests: int  # PRs the row's records count on
    merged_pull_requests: int  # of those, merged and not reverted
    merged_changed_lines: int
    merged_cost_usd: Decimal  # the row's spend on those merged PRs
    wasted_pull_requests: int  # closed without merge, or reverted
    wasted_cost_usd: Decimal
    input_tokens: int  # all input: non-cached + cache read + cache write
    cache_read_tokens: int

    @property
    def cost_per_merged_line(self) -> Decimal | None:
        return self.merged_cost_usd / self.merged_changed_lines if self.merged_changed_lines else None

    @property
    def wasted_share(self) -> Decimal | None:
        return self.wasted_cost_usd / self.cost_usd if self.cost_usd else None

    @property
    def cache_read_share(self) -> Decimal | None:
        return Decimal(self.cache_read_tokens) / self.input_tokens if self.input_tokens else None

    @property
    def thin(self) -> bool:
        return self.pull_requests < THIN_BELOW


def _pull_outcome(row: Any, reverted: bool) -> str:
    if row.merged:
        return "reverted" if reverted else "merged"
    return "closed" if row.state == "closed" else "open"


@dataclass(frozen=True, slots=True)
class _Group:
    """The spend of one agent and model spelling on one PR, with the PR's facts (None: a PR not known yet)."""

    agent: str | None
    provider: str | None
    model: str
    pr_repo: str
    pr_number: int
    cost: int
    records: int
    unpriced: int
    input: int
    cache_read: int
    cache_write: int
    merged: bool | None
    state: str | None
    additions: int | None
    deletions: int | None


def _groups(session: Session, scope: Scope, period: Period) -> list[_Group]:
    sums = {key[:5]: acc for key, acc in pull_groups(session, scope=scope, period=period).items() if not key[5]}
    facts = pull_facts(session, {(key[3], key[4]) for key in sums})
    groups = []
    for key, acc in sums.items():
        pull = facts.get((key[3], key[4]))
        known = (pull.merged, pull.state, pull.additions, pull.deletions) if pull is not None else (None,) * 4
        agent, provider, model, repo, number = key
        cost, records, unpriced, tokens_in, cache_read, cache_write = acc
        groups.append(
            _Group(agent, provider, model, repo, number, cost, records, unpriced, tokens_in, cache_read, cache_write,
                   *known)
        )  # fmt: skip
    return groups


def agent_model_table(session: Session, *, scope: Scope, period: Period) -> tuple[AgentModelRow, ...]:
    rows = _groups(session, scope, period)
    reverted = reverted_pulls(session, repos={row.pr_repo for row in rows})
    sums: dict[tuple[str | None, str], dict[str, Any]] = {}
    for row in rows:
        key = (row.agent, canonical_model(row.provider, row.model))
        acc = sums.setdefault(key, {"cost": Decimal(0), "records": 0, "unpriced": 0, "input": 0, "cache_read": 0,
                                    "pulls": {}})  # fmt: skip
        cost = usd(row.cost)
        acc["cost"] += cost
        acc["records"] += int(row.records)
        acc["unpriced"] += int(row.unpriced)
        acc["input"] += int(row.input) + int(row.cache_read) + int(row.cache_write)
        acc["cache_read"] += int(row.cache_read)
        pull = (row.pr_repo, row.pr_number)
        outcome = _pull_outcome(row, pull in reverted)
        lines = int(row.additions or 0) + int(row.deletions or 0)
        spent, _, _ = acc["pulls"].get(pull, (Decimal(0), outcome, lines))
        acc["pulls"][pull] = (spent + cost, outcome, lines)
    table = []
    for (agent, model), acc in sums.items():
        pulls: dict[Any, tuple[Decimal, str, int]] = acc["pulls"]
        merged = [p for p in pulls.values() if p[1] == "merged"]
        wasted = [p for p in pulls.values() if p[1] in ("closed", "reverted")]
        table.append(
            AgentModelRow(
                agent=agent,
                model=model,
                cost_usd=acc["cost"],
                records=acc["records"],
                unpriced_records=acc["unpriced"],
                pull_requests=len(pulls),
                merged_pull_requests=len(merged),
                merged_changed_lines=sum(p[2] for p in merged),
                merged_cost_usd=sum((p[0] for p in merged), Decimal(0)),
                wasted_pull_requests=len(wasted),
                wasted_cost_usd=sum((p[0] for p in wasted), Decimal(0)),
                input_tokens=acc["input"],
                cache_read_tokens=acc["cache_read"],
            )
        )
    # Alphabetical, not by spend: this is evidence for routing, not a ranking of consumption.
    return tuple(sorted(table, key=lambda r: (r.agent is None, r.agent or "", r.model)))


def _share(value: Decimal | None) -> str | None:
    return None if value is None else str(value.quantize(Decimal("0.0001")))


def agent_model_json(rows: tuple[AgentModelRow, ...]) -> list[dict[str, Any]]:
    """`by_agent_model` of the outcome report (DESIGN §9)."""
    return [
        {
            "agent": r.agent,
            "model": r.model,
            "cost_usd": usd_json(r.cost_usd),
            "records": r.records,
            "unpriced_records": r.unpriced_records,
            "pull_requests": r.pull_requests,
            "merged_pull_requests": r.merged_pull_requests,
            "merged_changed_lines": r.merged_changed_lines,
            "cost_per_merged_changed_line_usd": per_line_json(r.cost_per_merged_line),
            "closed_or_reverted_pull_requests": r.wasted_pull_requests,
            "closed_or_reverted_share": _share(r.wasted_share),
            "cache_read_share": _share(r.cache_read_share),
            "few_pull_requests": r.thin,
        }
        for r in rows
    ]
