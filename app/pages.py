"""The dashboard's HTML: the Jinja environment (autoescape on) with its filters, and the charts of each page built
from the outcome report (`app.outcome_report`) or a PR's report (`app.report`) with `app.charts`.

Pure apart from reading templates/: the routes in `app.dashboard` gather the figures and pass them here.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

import jinja2
from markupsafe import Markup

from app.charts import (
    OTHER_COLOR,
    OUTCOME_PALETTE,
    Bar,
    Series,
    horizontal_bar_chart,
    line_chart,
    push_timeline_chart,
    series_color,
    stacked_bar_chart,
)
from app.formatting import format_pct, format_usd, pluralize, register_filters
from app.outcome_report import Analytics, NamedSpend, Outcome, Period, RepoLoops, monday
from app.pricing import canonical_model
from app.render import TEMPLATES
from app.report import PullRequestReport

MAX_SERIES = 6  # models drawn separately; the rest are one "other models" series
MAX_BARS = 10
OUTCOME_LABELS: dict[Outcome, str] = {
    "merged": "merged",
    "reverted": "merged then reverted",
    "closed": "closed without merge",
    "open": "still open",
    "unmatched": "not linked to a PR",
}
# "merged then reverted" sits between merged and closed, in the muted scheme's rose.
OUTCOME_COLORS: dict[Outcome, str] = dict(
    zip(("merged", "reverted", "closed", "open", "unmatched"), OUTCOME_PALETTE, strict=True)
)


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES / "dashboard"),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    register_filters(env, text=str)  # HTML: autoescape makes user strings safe
    env.filters.update(outcome=lambda value: OUTCOME_LABELS.get(value, value))
    return env


def render_page(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def period_inputs(period: Period) -> tuple[str, str]:
    """The date inputs of the period filter: `until` is shown as the last day included."""
    return period.since.date().isoformat(), (period.until - timedelta(microseconds=1)).date().isoformat()


def model_color(model: str) -> str:
    """A model's colour on every chart and page, keyed on its canonical name (however a source spelled it)."""
    return series_color(canonical_model(None, model))


def _svg(markup: str) -> Markup:
    return Markup(markup)  # app.charts escapes every text it writes


def _spend_chart(a: Analytics, chart_id: str) -> Markup:
    totals: dict[str, Decimal] = {}
    for bucket in a.by_bucket:
        for model, cost in bucket.by_model:
            totals[model] = totals.get(model, Decimal(0)) + cost
    ranked = sorted(totals, key=lambda m: (-totals[m], m))
    shown = ranked if len(ranked) <= MAX_SERIES + 1 else ranked[:MAX_SERIES]
    series = [
        Series(model, [dict(b.by_model).get(model, Decimal(0)) for b in a.by_bucket], color=model_color(model))
        for model in shown
    ]
    if len(shown) < len(ranked):
        rest = [sum((c for m, c in b.by_model if m not in shown), Decimal(0)) for b in a.by_bucket]
        series.append(Series(f"{len(ranked) - len(shown)} other models", rest, color=OTHER_COLOR))
    unit = "day" if a.bucket == "day" else "week"
    top = ", ".join(f"{m} {format_usd(totals[m])}" for m in ranked[:3])
    desc = f"Spend per {unit} from {a.period.since.date()} by model: {format_usd(a.totals.cost_usd)} in all"
    return _svg(
        stacked_bar_chart(
            chart_id=chart_id,
            title=f"Spend by {unit} and model",
            desc=desc + (f"; most on {top}." if top else "."),
            labels=[
                b.start.isoformat()[5:] if a.bucket == "day" else "wk " + b.start.isoformat()[5:] for b in a.by_bucket
            ],
            series=series,
            fmt=format_usd,
        )
    )


def _weeks(period: Period) -> list[date]:
    """The Mondays of the weeks the period touches."""
    weeks, cursor, last = [], monday(period.since.date()), (period.until - timedelta(microseconds=1)).date()
    while cursor <= last:
        weeks.append(cursor)
        cursor += timedelta(days=7)
    return weeks


def _merged_line_chart(a: Analytics, chart_id: str) -> Markup:
    weeks = _weeks(a.period)
    by_week: dict[date, Decimal | None] = {w.week: w.cost_per_changed_line for w in a.merged_weeks}
    overall = a.merged.cost_per_changed_line if a.merged else None
    desc = (
        f"Cost per merged changed line by week of merge; {format_usd(overall)} over the period."
        if overall is not None
        else "No merged pull request with spend in this period."
    )
    return _svg(
        line_chart(
            chart_id=chart_id,
            title="Cost per merged changed line, by week of merge",
            desc=desc,
            labels=["wk " + w.isoformat()[5:] for w in weeks],
            values=[by_week.get(w) for w in weeks],
            series_name="cost per changed line",
            fmt=format_usd,
        )
    )


def _named_bars(items: tuple[NamedSpend, ...], unknown: str) -> list[Bar]:
    return [
        Bar(item.name or unknown, item.spend.cost_usd, note=pluralize(item.spend.records, "call"))
        for item in items[:MAX_BARS]
    ]


def _bars(chart_id: str, title: str, what: str, bars: list[Bar]) -> Markup:
    listed = "; ".join(f"{b.label} {format_usd(Decimal(str(b.value)))}" for b in bars)
    desc = f"{what}: {listed}." if bars else f"No {what.lower()} in this period."
    return _svg(horizontal_bar_chart(chart_id=chart_id, title=title, desc=desc, bars=bars, fmt=format_usd))


def overview_charts(a: Analytics) -> dict[str, Markup]:
    """Every chart of an owner's or a repository's overview, by name."""
    outcome_bars = [
        Bar(
            OUTCOME_LABELS[o.outcome],
            o.spend.cost_usd,
            OUTCOME_COLORS[o.outcome],
            note=pluralize(o.pull_requests, "PR"),
        )
        if o.outcome != "unmatched"
        else Bar(OUTCOME_LABELS[o.outcome], o.spend.cost_usd, OUTCOME_COLORS[o.outcome])
        for o in a.outcomes
    ]
    prefix = a.scope.repo is None
    branch_bars = [
        Bar(
            (f"{b.repo.split('/', 1)[1]}:" if prefix else "")
            + (b.branch or "(no branch)")
            + (" (default)" if b.is_default else ""),
            b.spend.cost_usd,
            note=pluralize(b.spend.records, "call"),
        )
        for b in a.unmatched_by_branch[:MAX_BARS]
    ]
    charts = {
        "spend": _spend_chart(a, "chart-spend"),
        "merged": _merged_line_chart(a, "chart-merged"),
        "outcomes": _bars("chart-outcomes", "Spend by outcome of the pull request", "Spend by outcome", outcome_bars),
        "authors": _bars("chart-authors", "Spend by author", "Spend by author", _named_bars(a.by_author, "(unknown)")),
        "agents": _bars("chart-agents", "Spend by agent", "Spend by agent", _named_bars(a.by_agent, "(unknown)")),
        "branches": _bars("chart-branches", "Unmatched spend by branch", "Unmatched spend by branch", branch_bars),
    }
    if a.scope.repo is None:
        repo_bars = [
            Bar(r.repo.split("/", 1)[1], r.spend.cost_usd, note=pluralize(r.pull_requests, "PR"))
            for r in a.repositories[:MAX_BARS]
        ]
        charts["repositories"] = _bars("chart-repositories", "Spend by repository", "Spend by repository", repo_bars)
    return charts


def review_loops_chart(loops: RepoLoops, period: Period) -> Markup:
    """A repository's weekly share of spend that went into rounds of requested changes, by week of closing; a
    week without a closed PR with spend is a gap, not 0 %."""
    weeks = _weeks(period)
    by_week = {week: share.share for week, share in loops.weeks}
    share, before = loops.period.share, loops.previous.share
    desc = (
        f"Share of the spend of pull requests closed each week that went into rounds of requested changes; "
        f"{format_pct(share)} over the period"
        + (f", {format_pct(before)} the period before." if before is not None else ".")
        if share is not None
        else "No pull request with spend was closed in this period."
    )
    return _svg(
        line_chart(
            chart_id="chart-review-loops",
            title=f"Spend in review rounds, by week of closing: {loops.repo}",
            desc=desc,
            labels=["wk " + w.isoformat()[5:] for w in weeks],
            values=[by_week.get(w) for w in weeks],
            series_name="share of spend in review rounds",
            fmt=format_pct,
        )
    )


def timeline_chart(report: PullRequestReport) -> Markup:
    bars = [
        Bar(report.tail_label if i.sha is None else i.sha[:7], i.cost_usd, note=pluralize(i.records, "call"))
        for i in report.timeline
    ]
    listed = "; ".join(f"{b.label} {format_usd(Decimal(str(b.value)))}" for b in bars)
    desc = f"Cost of the work before each push: {listed}." if bars else "No push of this pull request is known yet."
    return _svg(
        push_timeline_chart(
            chart_id="chart-timeline", title="Cost between pushes", desc=desc, bars=bars, fmt=format_usd
        )
    )
