"""Pull request endpoints (DESIGN §9): the spend summary, the budget verdict and the rendered comment.

Each answer is computed from the same facts the worker uses for the comment, so the three always agree.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from app.api import authorize_repo
from app.budget import limits_with_overrides
from app.deps import OwnerDep, SessionDep, SettingsDep
from app.facts import PullNotFound, gather_facts
from app.render import render_comment
from app.report import PullRequestReport, build_report
from app.settings import Settings

router = APIRouter(tags=["pull requests"])
PATH = "/v1/repos/{owner}/{repo}/pulls/{number}"


def pull_report(
    session: Session, *, repo: str, number: int, settings: Settings, overrides: dict[str, Any] | None = None
) -> PullRequestReport:
    try:
        facts = gather_facts(session, repo=repo, number=number, public_url=str(settings.public_url))
    except PullNotFound:
        raise HTTPException(status_code=404, detail=f"no pull request {repo}#{number} is known") from None
    if overrides:
        try:
            limits = limits_with_overrides(facts.config.config, **overrides)
        except ValueError as error:
            raise HTTPException(status_code=422, detail=str(error)) from None
        facts = replace(facts, limits=limits)
    return build_report(facts)


@router.get(PATH, summary="Spend summary of a pull request")
def get_pull(
    owner: str, repo: str, number: int, caller: OwnerDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    full_name = authorize_repo(owner, repo, caller=caller)
    return pull_report(session, repo=full_name, number=number, settings=settings).summary_json()


@router.get(PATH + "/budget", summary="Budget verdict of a pull request")
def get_budget(
    owner: str,
    repo: str,
    number: int,
    caller: OwnerDep,
    session: SessionDep,
    settings: SettingsDep,
    max_cost: Annotated[Decimal | None, Query(ge=0, description="overrides max_cost_per_pr (USD)")] = None,
    max_cost_per_changed_line: Annotated[Decimal | None, Query(ge=0)] = None,
    max_tokens: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
    full_name = authorize_repo(owner, repo, caller=caller)
    overrides = {
        key: value
        for key, value in (
            ("max_cost", max_cost),
            ("max_cost_per_changed_line", max_cost_per_changed_line),
            ("max_tokens", max_tokens),
        )
        if value is not None
    }
    report = pull_report(session, repo=full_name, number=number, settings=settings, overrides=overrides)
    return report.budget_json()


@router.get(PATH + "/comment.md", summary="The PR comment as rendered now", response_class=PlainTextResponse)
def get_comment(
    owner: str, repo: str, number: int, caller: OwnerDep, session: SessionDep, settings: SettingsDep
) -> PlainTextResponse:
    full_name = authorize_repo(owner, repo, caller=caller)
    report = pull_report(session, repo=full_name, number=number, settings=settings)
    return PlainTextResponse(render_comment(report), media_type="text/markdown; charset=utf-8")
