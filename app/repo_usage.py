"""A repository's usage, matched to a PR or not, as `GET /v1/repos/{owner}/{repo}/usage` answers it: totals, by
branch and by (canonical) model. Shell: the queries, then the merge by model in Python."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.exact_sum import exact_sum
from app.formatting import decimal_str
from app.money import from_nanousd
from app.pricing import canonical_model
from app.tables import USAGE


def _money(nanousd: Any) -> str:
    return decimal_str(from_nanousd(int(nanousd or 0))) or "0"


def _totals_columns() -> list[Any]:
    return [
        sa.func.count().label("records"),
        sa.func.coalesce(exact_sum(USAGE.c.cost_nanousd), 0).label("cost"),
        sa.func.count().filter(USAGE.c.cost_nanousd.is_(None)).label("unpriced"),
        sa.func.coalesce(exact_sum(USAGE.c.input_tokens), 0).label("input_tokens"),
        sa.func.coalesce(exact_sum(USAGE.c.cache_read_tokens), 0).label("cache_read_tokens"),
        sa.func.coalesce(exact_sum(USAGE.c.cache_write_tokens), 0).label("cache_write_tokens"),
        sa.func.coalesce(exact_sum(USAGE.c.output_tokens), 0).label("output_tokens"),
        sa.func.coalesce(exact_sum(USAGE.c.reasoning_tokens), 0).label("reasoning_tokens"),
    ]


def _tokens(row: Any) -> dict[str, int]:
    return {
        name: int(getattr(row, name))
        for name in (
            "input_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "output_tokens",
            "reasoning_tokens",
        )
    }


def repo_usage(
    session: Session,
    *,
    repo: str,
    branch: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> dict[str, Any]:
    conditions = [USAGE.c.repo == repo]
    if branch is not None:
        conditions.append(USAGE.c.branch == branch)
    if since is not None:
        conditions.append(USAGE.c.timestamp >= since)
    if until is not None:
        conditions.append(USAGE.c.timestamp < until)
    where = sa.and_(*conditions)
    total = session.execute(sa.select(*_totals_columns()).where(where)).one()
    by_branch = session.execute(
        sa.select(USAGE.c.branch, USAGE.c.pr_number, *_totals_columns())
        .where(where)
        .group_by(USAGE.c.branch, USAGE.c.pr_number)
        .order_by(sa.desc("cost"), USAGE.c.branch)
    ).all()
    by_model = session.execute(
        sa.select(USAGE.c.model, USAGE.c.provider, *_totals_columns())
        .where(where)
        .group_by(USAGE.c.model, USAGE.c.provider)
    ).all()
    return {
        "repo": repo,
        "cost_usd": _money(total.cost),
        "records": int(total.records),
        "unpriced_records": int(total.unpriced),
        **_tokens(total),
        "by_branch": [
            {
                "branch": row.branch,
                "pr": row.pr_number,
                "cost_usd": _money(row.cost),
                "records": int(row.records),
                "unpriced_records": int(row.unpriced),
            }
            for row in by_branch
        ],
        "by_model": _by_canonical_model(by_model),
    }


_SUMMED = ("records", "unpriced", "cost", "input_tokens", "cache_read_tokens", "cache_write_tokens",
           "output_tokens", "reasoning_tokens")  # fmt: skip


def _by_canonical_model(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """The (model, provider) rows SQL grouped, summed under each model's canonical name (DESIGN §2: one model,
    one row), costliest first; `raw_models` lists the ids the records carry when they differ from that name."""
    groups: dict[str, list[Any]] = {}
    for row in rows:
        groups.setdefault(canonical_model(row.provider, row.model), []).append(row)
    merged: list[tuple[int, str, dict[str, Any]]] = []
    for name, members in groups.items():
        sums = {key: sum(int(getattr(row, key) or 0) for row in members) for key in _SUMMED}
        members.sort(key=lambda row: (-int(row.cost or 0), row.model, row.provider or ""))
        raw = sorted({row.model for row in members})
        item = {
            "model": name,
            "provider": ", ".join(dict.fromkeys(row.provider for row in members if row.provider)) or None,
            "records": sums["records"],
            "unpriced_records": sums["unpriced"],
            "cost_usd": _money(sums["cost"]),
            **{key: sums[key] for key in _SUMMED[3:]},
            **({"raw_models": raw} if raw != [name] else {}),
        }
        merged.append((-sums["cost"], name, item))
    return [item for *_, item in sorted(merged, key=lambda entry: entry[:2])]
