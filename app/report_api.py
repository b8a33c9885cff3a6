"""Outcome reports over HTTP (DESIGN §9): `GET /v1/repos/{owner}/{repo}/report` and `GET /v1/orgs/{owner}/report`.

The same `app.analytics` figures the dashboard shows, as JSON: money as decimal strings, dates ISO 8601.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from app.analytics import build_analytics
from app.db import utcnow
from app.deps import (
    ERROR_RESPONSES,
    INVALID_INPUT_RESPONSE,
    OwnerDep,
    RepoReaderDep,
    SessionDep,
    SettingsDep,
    Since,
    Until,
    own_owner,
)
from app.outcome_report import Scope
from app.outcome_sections import outcome_report_json
from app.periods import BadPeriod
from app.settings import Settings

router = APIRouter(tags=["reports"])


def _report(
    session: SessionDep, settings: Settings, *, scope: Scope, since: str | None, until: str | None
) -> dict[str, Any]:
    try:
        analytics = build_analytics(session, scope=scope, since=since, until=until, now=utcnow())
    except BadPeriod as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    return outcome_report_json(session, analytics, default=settings.dashboard_people)


@router.get(
    "/v1/repos/{owner}/{repo}/report",
    summary="Spend against outcomes in one repository",
    responses={401: ERROR_RESPONSES[401], 403: ERROR_RESPONSES[403], **INVALID_INPUT_RESPONSE},
)
def get_repo_report(
    owner: str,
    repo: str,
    full_name: RepoReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    since: Since = None,
    until: Until = None,
) -> dict[str, Any]:
    return _report(session, settings, scope=Scope(owner=owner.lower(), repo=full_name), since=since, until=until)


@router.get(
    "/v1/orgs/{owner}/report",
    summary="Spend against outcomes across an owner's repositories",
    responses={401: ERROR_RESPONSES[401], 403: ERROR_RESPONSES[403], **INVALID_INPUT_RESPONSE},
)
def get_owner_report(
    owner: str, caller: OwnerDep, session: SessionDep, settings: SettingsDep, since: Since = None, until: Until = None
) -> dict[str, Any]:
    return _report(session, settings, scope=Scope(owner=own_owner(owner, caller=caller)), since=since, until=until)
