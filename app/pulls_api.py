"""Pull request endpoints (DESIGN §9): the spend summary, the budget verdict and the rendered comment.

Each answer is computed from the same facts the worker uses for the comment, so the three always agree.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session

from app.budget import limits_with_overrides
from app.deps import ERROR_RESPONSES, INVALID_INPUT_RESPONSE, PullNumber, RepoReaderDep, SessionDep, SettingsDep
from app.facts import PullNotFound, gather_facts
from app.render import render_comment
from app.report import PullRequestReport, build_report
from app.settings import Settings
from app.tables import PULLS, USAGE

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


@router.get(PATH, summary="Spend summary of a pull request", responses=ERROR_RESPONSES)
def get_pull(
    owner: str, repo: str, number: PullNumber, full_name: RepoReaderDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    return pull_report(session, repo=full_name, number=number, settings=settings).summary_json()


@router.get(
    PATH + "/budget",
    summary="Budget verdict of a pull request",
    responses={**ERROR_RESPONSES, **INVALID_INPUT_RESPONSE},
)
def get_budget(
    owner: str,
    repo: str,
    number: PullNumber,
    full_name: RepoReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    max_cost: Annotated[Decimal | None, Query(ge=0, description="overrides max_cost_per_pr (USD)")] = None,
    max_cost_per_changed_line: Annotated[Decimal | None, Query(ge=0)] = None,
    max_tokens: Annotated[int | None, Query(ge=0)] = None,
) -> dict[str, Any]:
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
    return {**report.budget_json(), **_delivery_state(session, repo=full_name, number=number, report=report)}


def _delivery_state(session: Session, *, repo: str, number: int, report: PullRequestReport) -> dict[str, Any]:
    """What the Action needs beyond the verdict: where the comment is, and whether usage is still being matched
    (records of the PR's head repository not yet examined), so it can wait for the last of it."""
    pull = session.execute(
        sa.select(PULLS.c.comment_id, PULLS.c.head_repo).where(PULLS.c.repo == repo, PULLS.c.number == number)
    ).one()
    comment_url = report.pr.html_url or f"https://github.com/{repo}/pull/{number}"
    if pull.comment_id is not None:
        comment_url += f"#issuecomment-{pull.comment_id}"
    pending = session.execute(
        sa.select(sa.func.count()).where(USAGE.c.repo.in_({repo, pull.head_repo or repo}), USAGE.c.matched_at.is_(None))
    ).scalar_one()
    return {
        "number": number,
        "comment_url": comment_url,
        "details_url": report.details_url,
        "records": report.totals.records,
        "pending_records": int(pending),
    }


@router.get(
    PATH + "/comment.md",
    summary="The PR comment as rendered now",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}, **ERROR_RESPONSES},
)
def get_comment(
    owner: str, repo: str, number: PullNumber, full_name: RepoReaderDep, session: SessionDep, settings: SettingsDep
) -> PlainTextResponse:
    report = pull_report(session, repo=full_name, number=number, settings=settings)
    return PlainTextResponse(render_comment(report), media_type="text/markdown; charset=utf-8")
