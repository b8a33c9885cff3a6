"""Report periods from query strings (`since`, `until`): parsed, kept inside the calendar, checked. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from app.outcome_report import Period

MAX_PERIOD = timedelta(days=5 * 366)
# Bounds outside these days are mistakes (or probes): refused before any date arithmetic can leave the calendar.
FIRST_DAY, END_DAY = date(2000, 1, 1), date(2100, 1, 1)
BOUND_HELP = "RFC 3339 date-time, or a date (YYYY-MM-DD: `since` from its start, `until` through its end)"


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


def check_period(period: Period) -> Period:
    """The period, or BadPeriod when it is empty, reversed or longer than five years."""
    if period.since >= period.until:
        raise BadPeriod("`since` must be before `until`")
    if period.until - period.since > MAX_PERIOD:
        raise BadPeriod("the period may span at most five years")
    return period
