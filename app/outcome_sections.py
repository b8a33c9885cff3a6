"""The outcome sections (issue 15) that the org and repository pages and `/report` add to the analytics: what
ships per agent and model, review loops per repository, and people by name with their outcomes (or, with
`dashboard.people: aggregate`, team medians and no names). One hook for the pages and one for the JSON."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.cache_books import scope_cache
from app.cache_savings import cache_json
from app.formatting import per_line_json, usd_json
from app.outcome_report import Analytics, analytics_json
from app.people_outcomes import person_outcomes
from app.people_view import PeopleMode, hide_people_in_analytics, team_medians, with_unlinked
from app.review_loops import review_loops, review_loops_json
from app.routing_table import THIN_BELOW, agent_model_json, agent_model_table
from app.visibility import people_shown


def outcome_context(session: Session, analytics: Analytics, *, default: PeopleMode) -> dict[str, Any]:
    """What the page templates' outcome partials read; `analytics` comes back without people when they are
    not to be shown."""
    scope, period = analytics.scope, analytics.period
    shown = people_shown(session, scope=scope, default=default)
    people = with_unlinked(person_outcomes(session, scope=scope, period=period), analytics.by_author)
    return {
        "analytics": analytics if shown else hide_people_in_analytics(analytics),
        "routing": agent_model_table(session, scope=scope, period=period),
        "thin_below": THIN_BELOW,
        "loops": review_loops(session, scope=scope, period=period),
        "cache": scope_cache(session, scope=scope, period=period),
        "agents": sorted(analytics.by_agent, key=lambda n: (n.name is None, n.name or "")),  # by name
        "people_shown": shown,
        "people": people if shown else (),
        "medians": team_medians(people),
    }


def outcome_report_json(session: Session, analytics: Analytics, *, default: PeopleMode) -> dict[str, Any]:
    """`/report` (DESIGN §9): the analytics plus `by_agent_model`, `review_loops`, `cache` (app.cache_savings),
    `people` (by name, with outcomes; empty under `aggregate`) and `team_medians`."""
    context = outcome_context(session, analytics, default=default)
    medians = context["medians"]
    return analytics_json(context["analytics"]) | {
        "by_agent_model": agent_model_json(context["routing"]),
        "review_loops": review_loops_json(context["loops"]),
        "cache": cache_json(context["cache"].efficiency, context["cache"].share),
        "people": [
            {
                "author": p.name,
                "pull_requests": p.pull_requests,
                "on_pulls_cost_usd": usd_json(p.cost_usd),
                "unmatched_cost_usd": usd_json(p.unlinked_cost_usd),
                "cost_usd": usd_json(p.total_cost_usd),
                "merged_pull_requests": p.merged_pull_requests,
                "merged_changed_lines": p.merged_changed_lines,
                "cost_per_merged_changed_line_usd": per_line_json(p.cost_per_merged_line),
            }
            for p in context["people"]
        ],
        "team_medians": {
            "people": medians.people,
            "cost_usd": None if medians.cost_usd is None else usd_json(medians.cost_usd),
            "merged_changed_lines": None if medians.merged_changed_lines is None else str(medians.merged_changed_lines),
            "cost_per_merged_changed_line_usd": per_line_json(medians.cost_per_merged_line),
        },
    }
