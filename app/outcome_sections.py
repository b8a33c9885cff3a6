"""The outcome sections (issue 15) that the org and repository pages and `/report` add to the analytics: what
ships per agent and model, and review loops per repository. One hook for the dashboard and one for the JSON, so
the analytics module stays as it is."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.outcome_report import Analytics
from app.review_loops import review_loops, review_loops_json
from app.routing_table import THIN_BELOW, agent_model_json, agent_model_table


def outcome_context(session: Session, analytics: Analytics) -> dict[str, Any]:
    """What the page templates' outcome partials read."""
    return {
        "routing": agent_model_table(session, scope=analytics.scope, period=analytics.period),
        "thin_below": THIN_BELOW,
        "loops": review_loops(session, scope=analytics.scope, period=analytics.period),
    }


def outcome_json(session: Session, analytics: Analytics) -> dict[str, Any]:
    """The keys `/report` adds (DESIGN §9): `by_agent_model` and `review_loops`."""
    context = outcome_context(session, analytics)
    return {"by_agent_model": agent_model_json(context["routing"]), "review_loops": review_loops_json(context["loops"])}
