"""Pull request endpoints (DESIGN §9): the spend summary, the budget verdict and the comment.

The summary and the verdict are computed from the same facts the worker uses for the comment, so they always agree
with a refresh made now; `comment.md` is what the last refresh rendered and stored (what GitHub shows in App mode),
and `comment.live.md` renders it now.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import PlainTextResponse

from app.budget import limits_with_overrides
from app.deps import ERROR_RESPONSES, INVALID_INPUT_RESPONSE, PullNumber, RepoReaderDep, SessionDep, SettingsDep
from app.facts import PullNotFound, gather_facts, pending_usage, published
from app.people_view import visible_report
from app.render import render_comment
from app.report import PullRequestReport, build_report
from app.settings import Settings

router = APIRouter(tags=["pull requests"])
PATH = "/v1/repos/{owner}/{repo}/pulls/{number}"


def pull_report(
    session: SessionDep, *, repo: str, number: int, settings: Settings, overrides: dict[str, Any] | None = None
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
    return visible_report(build_report(facts), settings.dashboard_people)


@router.get(PATH, summary="Spend summary of a pull request", responses=ERROR_RESPONSES)
def get_pull(
    owner: str, repo: str, number: PullNumber, full_name: RepoReaderDep, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    summary = pull_report(session, repo=full_name, number=number, settings=settings).summary_json()
    last = published(session, repo=full_name, number=number)
    summary["published"] = {
        "generated_at": None if last.generated_at is None else last.generated_at.isoformat(),
        "comment_id": last.comment_id,
        "check_run": last.check_run_json(),
    }
    return summary


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
    # Counted before the spend is read: the other way round, a match committed between the two reads would show
    # the spend from before it next to nothing pending, and the Action would stop waiting one match too early.
    pending = pending_usage(session, repo=full_name, number=number)
    report = pull_report(session, repo=full_name, number=number, settings=settings, overrides=overrides)
    delivery = _delivery_state(session, repo=full_name, number=number, report=report, pending=pending)
    return {**report.budget_json(), **delivery}


def _delivery_state(
    session: SessionDep, *, repo: str, number: int, report: PullRequestReport, pending: int
) -> dict[str, Any]:
    """What the Action needs beyond the verdict: where the comment is, and whether usage is still being matched
    (records of the PR's head repository not yet examined), so it can wait for the last of it."""
    last = published(session, repo=repo, number=number)
    comment_url = report.pr.html_url or f"https://github.com/{repo}/pull/{number}"
    if last.comment_id is not None:
        comment_url += f"#issuecomment-{last.comment_id}"
    return {
        "number": number,
        "comment_url": comment_url,
        "details_url": report.details_url,
        "records": report.totals.records,
        "pending_records": int(pending),
    }


_MARKDOWN = {200: {"content": {"text/markdown": {"schema": {"type": "string"}}}}, **ERROR_RESPONSES}


@router.get(
    PATH + "/comment.md",
    summary="The PR comment as the last refresh rendered and stored it",
    response_class=PlainTextResponse,
    responses=_MARKDOWN,
)
def get_comment(
    owner: str, repo: str, number: PullNumber, full_name: RepoReaderDep, session: SessionDep, settings: SettingsDep
) -> PlainTextResponse:
    report = pull_report(session, repo=full_name, number=number, settings=settings)  # 404 for an unknown PR
    last = published(session, repo=full_name, number=number)
    if last.comment_body is None or last.generated_at is None:  # not refreshed yet: what it will show
        return _markdown(render_comment(report), rendered_at=report.generated_at.isoformat(), stored=False)
    return _markdown(last.comment_body, rendered_at=last.generated_at.isoformat(), stored=True)


@router.get(
    PATH + "/comment.live.md",
    summary="The PR comment rendered now from the current figures",
    response_class=PlainTextResponse,
    responses=_MARKDOWN,
)
def get_live_comment(
    owner: str, repo: str, number: PullNumber, full_name: RepoReaderDep, session: SessionDep, settings: SettingsDep
) -> PlainTextResponse:
    report = pull_report(session, repo=full_name, number=number, settings=settings)
    return _markdown(render_comment(report), rendered_at=report.generated_at.isoformat(), stored=False)


def _markdown(body: str, *, rendered_at: str, stored: bool) -> PlainTextResponse:
    headers = {"X-Tokentrail-Rendered-At": rendered_at, "X-Tokentrail-Stored": "true" if stored else "false"}
    return PlainTextResponse(body, media_type="text/markdown; charset=utf-8", headers=headers)
