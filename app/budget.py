"""Budgets (DESIGN §7): the verdict of a PR's spend against the repository's limits (app.repo_config), with any
overrides the API or the Action pass. Pure. Reasons are human text, for the comment, the check run and the Action.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal, TypeAlias

from app.formatting import format_pct, format_tokens, format_usd
from app.repo_config import DEFAULT_WARN_AT, MAX_TOKENS_LIMIT, MAX_USD_LIMIT, RepoConfig

Status: TypeAlias = Literal["pass", "warn", "fail", "none"]
Conclusion: TypeAlias = Literal["success", "neutral", "failure"]


@dataclass(frozen=True, slots=True)
class Limits:
    max_cost_per_pr: Decimal | None = None
    max_cost_per_changed_line: Decimal | None = None
    max_tokens_per_pr: int | None = None
    warn_at: Decimal = DEFAULT_WARN_AT

    @property
    def has_any(self) -> bool:
        return (self.max_cost_per_pr, self.max_cost_per_changed_line, self.max_tokens_per_pr) != (None,) * 3


def limits_with_overrides(
    config: RepoConfig,
    *,
    max_cost: Decimal | None = None,
    max_cost_per_changed_line: Decimal | None = None,
    max_tokens: int | None = None,
) -> Limits:
    """The repository's limits, each replaced by its override when given (API query parameters, the Action)."""
    overrides = {"max_cost": max_cost, "max_cost_per_changed_line": max_cost_per_changed_line, "max_tokens": max_tokens}
    for name, value in overrides.items():
        if value is not None and not (Decimal(value).is_finite() and value >= 0):
            raise ValueError(f"{name} must be non-negative")
        ceiling = MAX_TOKENS_LIMIT if name == "max_tokens" else MAX_USD_LIMIT
        if value is not None and value > ceiling:
            raise ValueError(f"{name} must be at most {ceiling:,}")
    b = config.budget
    return Limits(
        b.max_cost_per_pr if max_cost is None else max_cost,
        b.max_cost_per_changed_line if max_cost_per_changed_line is None else max_cost_per_changed_line,
        b.max_tokens_per_pr if max_tokens is None else max_tokens,
        b.warn_at,
    )


@dataclass(frozen=True, slots=True)
class LimitCheck:
    name: str  # the config key, e.g. "max_cost_per_pr"
    status: Literal["pass", "warn", "fail"]
    fraction: Decimal | None  # value / limit; None for a limit of 0
    reason: str


@dataclass(frozen=True, slots=True)
class BudgetVerdict:
    status: Status
    reasons: tuple[str, ...]  # worst first
    usage_fraction: Decimal | None  # the highest fraction of any limit
    checks: tuple[LimitCheck, ...] = ()


def _check(name: str, value: Decimal, limit: Decimal, shown: tuple[str, str], warn_at: Decimal) -> LimitCheck:
    fraction = value / limit if limit > 0 else None
    text, limit_text = shown
    plural = text.endswith(" tokens")  # "8.2 M tokens exceed", "$31.20 exceeds"
    if value > limit:
        return LimitCheck(name, "fail", fraction, f"{text} {'exceed' if plural else 'exceeds'} {name} {limit_text}")
    if fraction is not None and fraction >= warn_at:
        verb = "are" if plural else "is"
        return LimitCheck(name, "warn", fraction, f"{text} {verb} {format_pct(fraction)} of {name} {limit_text}")
    pct = f" ({format_pct(fraction)})" if fraction is not None else ""
    return LimitCheck(name, "pass", fraction, f"{text} within {name} {limit_text}{pct}")


def _usd_pair(value: Decimal, limit: Decimal, suffix: str = "") -> tuple[str, str]:
    text, limit_text = format_usd(value), format_usd(limit)
    if text == limit_text and value != limit:  # "$25.00 exceeds $25.00" would read as a bug
        text = f"${value.normalize():f}"
    return text + suffix, limit_text


def evaluate_budget(
    *,
    cost: Decimal,
    tokens: int,
    changed_lines: int,
    labels: Iterable[str],
    limits: Limits,
    exempt_labels: Iterable[str],
) -> BudgetVerdict:
    """pass / warn (≥ warn_at of a limit; reaching it exactly is not over) / fail (over a limit) / none.

    `none`: no limit set, an exempt label, or no limit applicable. The per-line limit does not apply to a PR with
    no changed lines (nothing to divide by); a reason says so.
    """
    if not limits.has_any:
        return BudgetVerdict("none", ("no budget limits set",), None)
    measured: list[tuple[str, Decimal, Decimal, tuple[str, str]]] = []
    notes: list[str] = []
    if (limit := limits.max_cost_per_pr) is not None:
        measured.append(("max_cost_per_pr", cost, limit, _usd_pair(cost, limit)))
    if (limit := limits.max_cost_per_changed_line) is not None and changed_lines > 0:
        per_line = cost / changed_lines
        shown = _usd_pair(per_line, limit, " per changed line")
        measured.append(("max_cost_per_changed_line", per_line, limit, shown))
    elif limit is not None:
        notes.append("max_cost_per_changed_line not applied: no changed lines")
    if (max_tokens := limits.max_tokens_per_pr) is not None:
        shown = (f"{format_tokens(tokens)} tokens", format_tokens(max_tokens))
        measured.append(("max_tokens_per_pr", Decimal(tokens), Decimal(max_tokens), shown))
    checks = [_check(*m, warn_at=limits.warn_at) for m in measured]
    rank = {"fail": 0, "warn": 1, "pass": 2}
    checks.sort(key=lambda c: (rank[c.status], -(c.fraction if c.fraction is not None else Decimal(0))))
    usage = max((c.fraction for c in checks if c.fraction is not None), default=None)
    reasons = tuple(c.reason for c in checks) + tuple(notes)
    exempt = {label.casefold() for label in exempt_labels}
    hits = sorted({label for label in labels if label.casefold() in exempt})
    if hits:
        return BudgetVerdict("none", (f"exempt: label {hits[0]}", *reasons), usage, tuple(checks))
    if not checks:
        return BudgetVerdict("none", reasons, usage)
    return BudgetVerdict(checks[0].status, reasons, usage, tuple(checks))


_CONCLUSIONS: dict[Status, Conclusion] = {"pass": "success", "none": "success", "warn": "neutral", "fail": "failure"}


def conclusion_for(status: Status) -> Conclusion:
    """The check run's conclusion: success under warn_at (or no budget), neutral between, failure over a limit."""
    return _CONCLUSIONS[status]
