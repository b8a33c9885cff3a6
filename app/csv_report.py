"""One CSV export of a scope and period (issue 15), as the API (`app.csv_api`) and the pages' download links
(`app.dashboard`) serve it: the file name and its text. Raises `periods.BadPeriod` for an unreadable period."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.analytics import default_period
from app.csv_export import to_csv
from app.csv_rows import MONTHLY_HEADER, PULL_HEADER, monthly_rows, pull_rows
from app.db import utcnow
from app.outcome_report import Scope
from app.people_view import PeopleMode
from app.periods import check_period, parse_bound
from app.visibility import people_shown


def csv_export(
    session: Session, *, scope: Scope, since: str | None, until: str | None, kind: str, people: PeopleMode
) -> tuple[str, str]:
    """(file name, CSV text); `kind` is "pulls" or "monthly"; `people` is the server's default."""
    start, end = parse_bound(since, end=False), parse_bound(until, end=True)
    period = check_period(default_period(session, scope, now=utcnow(), since=start, until=end))
    if kind == "monthly":
        text = to_csv(MONTHLY_HEADER, monthly_rows(session, scope=scope, period=period))
    else:
        shown = people_shown(session, scope=scope, default=people)
        text = to_csv(PULL_HEADER, pull_rows(session, scope=scope, period=period, people=shown))
    name = f"tokentrail-{scope.label.replace('/', '-')}-{kind}-{period.since.date()}-{period.until.date()}.csv"
    return name, text
