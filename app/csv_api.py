"""CSV exports (issue 15) over HTTP: `GET /v1/repos/{owner}/{repo}/report.csv` and `GET /v1/orgs/{owner}/report.csv`.

The same auth and period as the JSON report (`app.report_api`). `kind=pulls` (the default): one row per PR with
spend in the period; `kind=monthly`: spend by month, repository and agent, for finance. Cells a spreadsheet would
run as formulas are defused (`app.csv_export`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from app.csv_report import csv_export
from app.deps import (
    ERROR_RESPONSES,
    INVALID_INPUT_RESPONSE,
    OwnerDep,
    RepoReaderDep,
    SessionDep,
    SettingsDep,
    Since,
    Until,
    csv_response,
    own_owner,
)
from app.outcome_report import Scope
from app.periods import BadPeriod
from app.settings import Settings

router = APIRouter(tags=["reports"])
Kind = Annotated[Literal["pulls", "monthly"], Query(description="pulls: one row per PR; monthly: for finance")]
CSV_RESPONSES = {
    200: {"content": {"text/csv": {}}, "description": "CSV, UTF-8, CRLF line ends, one header row"},
    401: ERROR_RESPONSES[401],
    403: ERROR_RESPONSES[403],
    **INVALID_INPUT_RESPONSE,
}


def _csv(
    session: SessionDep, settings: Settings, *, scope: Scope, since: str | None, until: str | None, kind: str
) -> Response:
    try:
        name, text = csv_export(
            session, scope=scope, since=since, until=until, kind=kind, people=settings.dashboard_people
        )
    except BadPeriod as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    return csv_response(name, text)


@router.get("/v1/repos/{owner}/{repo}/report.csv", summary="The repository report as CSV", responses=CSV_RESPONSES)
def get_repo_report_csv(
    owner: str,
    repo: str,
    full_name: RepoReaderDep,
    session: SessionDep,
    settings: SettingsDep,
    since: Since = None,
    until: Until = None,
    kind: Kind = "pulls",
) -> Response:
    return _csv(
        session, settings, scope=Scope(owner=owner.lower(), repo=full_name), since=since, until=until, kind=kind
    )


@router.get("/v1/orgs/{owner}/report.csv", summary="The owner's report as CSV", responses=CSV_RESPONSES)
def get_owner_report_csv(
    owner: str,
    caller: OwnerDep,
    session: SessionDep,
    settings: SettingsDep,
    since: Since = None,
    until: Until = None,
    kind: Kind = "pulls",
) -> Response:
    return _csv(
        session, settings, scope=Scope(owner=own_owner(owner, caller=caller)), since=since, until=until, kind=kind
    )
