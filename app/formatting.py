"""How Tokentrail writes numbers, money, shares, counts and times, for people (the comment, the check run, the
pages) and for JSON. Pure; `register_filters` gives both Jinja environments the same filters.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

NANO = Decimal("1e-9")
DASH = "—"  # an unknown or absent value


# -- for people -------------------------------------------------------------------------------------------------


def format_usd(value: Decimal) -> str:
    """$12.48, $1,234.50; below $1 three significant digits ($0.0116, $0.50); $0.00."""
    sign, value = ("-" if value < 0 else ""), abs(value)
    if value >= 1 or value == 0:
        return f"{sign}${value.quantize(Decimal('0.01'), ROUND_HALF_UP):,}"
    places = max(2, 2 - value.adjusted())  # adjusted() is the exponent of the first significant digit
    text = f"{value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP):f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{sign}${whole}.{frac}"


def usd_or_dash(value: Decimal | None) -> str:
    return DASH if value is None else format_usd(value)


def format_tokens(count: int) -> str:
    """312, 950 k, 8.2 M, 50 M, 1.2 B: three significant digits at most, no trailing '.0'."""
    if count < 1000:
        return str(count)
    for scale, unit in ((10**3, "k"), (10**6, "M"), (10**9, "B"), (10**12, "T")):
        scaled = Decimal(count) / scale
        shown = scaled.quantize(Decimal(1) if scaled >= 100 else Decimal("0.1"), ROUND_HALF_UP)
        if shown < 1000 or unit == "T":
            return f"{shown.normalize():f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_pct(fraction: Decimal) -> str:
    """0.71 → '71 %'. Never '100 %' below the limit nor '0 %' for some use, which would mislead at the edges."""
    pct = (fraction * 100).quantize(Decimal(1), ROUND_HALF_UP)
    if fraction < 1 and pct >= 100:
        pct = (fraction * 100).quantize(Decimal(1), ROUND_FLOOR)
    if fraction > 0 and pct == 0:
        return "<1 %"
    return f"{pct} %"


def pluralize(count: int, singular: str, plural: str | None = None) -> str:
    """ "1 call", "1,234 calls"."""
    return f"{count:,} {singular if count == 1 else plural or singular + 's'}"


def as_utc(value: datetime) -> datetime:
    """A stored time in UTC (SQLite hands back naive datetimes; everything Tokentrail stores is UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_when(value: datetime) -> str:
    """2026-11-30 14:02 UTC."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M UTC")


def register_filters(env: Any, *, text: Callable[[Any], Any]) -> None:
    """The filters the comment's and the pages' templates share; `text` makes a user string safe for the output
    (markdown escaping for the comment; the pages autoescape HTML)."""
    env.filters.update(
        usd=usd_or_dash,
        per_line=lambda value: f"{usd_or_dash(value)}/line",
        tokens=format_tokens,
        pct=format_pct,
        count=lambda value: f"{value:,}",
        pluralize=pluralize,
        when=format_when,
        day=lambda value: value.isoformat(),
        sha=lambda sha: text((sha or "")[:7]),
        ratio=lambda value: f"{value}×",
        or_dash=lambda value: DASH if value in (None, "") else value,
    )


# -- for JSON ----------------------------------------------------------------------------------------------------


def decimal_str(value: Decimal | None) -> str | None:
    """A decimal string without exponent or needless trailing zeros ("12.48", "0.000225", "0")."""
    if value is None:
        return None
    return format(value.normalize(), "f")


def usd_json(value: Decimal) -> str:
    """Money in JSON: rounded to storage precision (nano-dollars), so sums of stored costs stay exact and computed
    ones stay short."""
    return decimal_str(value.quantize(NANO)) or "0"


def per_line_json(value: Decimal | None) -> str | None:
    """Cost per changed line for JSON: four decimals, more for tiny values so three significant digits remain."""
    if value is None:
        return None
    if value == 0:
        return "0"
    places = max(4, 2 - value.adjusted())
    return decimal_str(value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP))
