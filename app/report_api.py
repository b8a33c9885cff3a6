"""Outcome reports over HTTP (DESIGN §9): `GET /v1/repos/{owner}/{repo}/report` and `GET /v1/orgs/{owner}/report`.

The same `app.analytics` figures the dashboard shows, as JSON: money as decimal strings, dates ISO 8601.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.orm import Session

from app.analytics import default_period, gather_analytics
from app.db import utcnow
from app.deps import ERROR_RESPONSES, INVALID_INPUT_RESPONSE, OwnerDep, RepoReaderDep, SessionDep
from app.outcome_report import Analytics, Scope, analytics_json

router = APIRouter(tags=["reports"])
MAX_PERIOD = timedelta(days=5 * 366)
# Bounds outside these days are mistakes (or probes): refused before any date arithmetic can leave the calendar.
FIRST_DAY, END_DAY = date(2000, 1, 1), date(2100, 1, 1)
BOUND_HELP = "RFC 3339 date-time, or a date (YYYY-MM-DD: `since` from its start, `until` through its end)"
Since = Annotated[str | None, Query(max_length=40, description=f"inclusive; {BOUND_HELP}")]
Until = Annotated[str | None, Query(max_length=40, description=f"exclusive; {BOUND_HELP}")]


class BadPeriod(ValueError):
    pass


def parse_bound(text: str | None, *, end: bool) -> datetime | None:
    """A period bound from a query string. A bare date is a whole day: `until=2026-11-30` includes the 30th."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadPeriod(f"not a date or an RFC 3339 date-time: {text!r}") from None
    moment = utc_bound(moment, text=text)
    return moment + timedelta(days=1) if len(text) == 10 and end else moment


def utc_bound(moment: datetime, *, text: str) -> datetime:
    """A period bound in UTC (no offset given: UTC), or BadPeriod when it lies outside FIRST_DAY … END_DAY."""
    if not FIRST_DAY <= moment.date() < END_DAY:
        # Checked on the day as written, before converting to UTC: 0001-01-01T00:00+01:00 is before year 1 in UTC.
        raise BadPeriod(f"{text!r} is out of range: a period lies between {FIRST_DAY} and {END_DAY}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def build_analytics(session: Session, *, scope: Scope, since: str | None, until: str | None) -> Analytics:
    """The report of `scope` over the requested period (default: the last 30 days, or the data's last 30 days).
    Raises BadPeriod for an unreadable, empty, reversed or over-long period."""
    start, end = parse_bound(since, end=False), parse_bound(until, end=True)
    period = default_period(session, scope, now=utcnow(), since=start, until=end)
    if period.since >= period.until:
        raise BadPeriod("`since` must be before `until`")
    if period.until - period.since > MAX_PERIOD:
        raise BadPeriod("the period may span at most five years")
    return gather_analytics(session, scope=scope, period=period)


def _report(session: Session, *, scope: Scope, since: str | None, until: str | None) -> dict[str, Any]:
    try:
        return analytics_json(build_analytics(session, scope=scope, since=since, until=until))
    except BadPeriod as error:
        raise HTTPException(status_code=422, detail=str(error)) from None


@router.get(
    "/v1/repos/{owner}/{repo}/report",
    summary="Spend against outcomes in one repository",
    responses={401: ERROR_RESPONSES[401], 403: ERROR_RESPONSES[403], **INVALID_INPUT_RESPONSE},
)
def get_repo_report(
    owner: str, repo: str, full_name: RepoReaderDep, session: SessionDep, since: Since = None, until: Until = None
) -> dict[str, Any]:
    return _report(session, scope=Scope(owner=owner.lower(), repo=full_name), since=since, until=until)


@router.get(
    "/v1/orgs/{owner}/report",
    summary="Spend against outcomes across an owner's repositories",
    responses={401: ERROR_RESPONSES[401], 403: ERROR_RESPONSES[403], **INVALID_INPUT_RESPONSE},
)
def get_owner_report(
    owner: str, caller: OwnerDep, session: SessionDep, since: Since = None, until: Until = None
) -> dict[str, Any]:
    if owner.lower() != caller:
        raise HTTPException(status_code=403, detail=f"this token belongs to {caller}, not {owner.lower()}")
    return _report(session, scope=Scope(owner=caller), since=since, until=until)
