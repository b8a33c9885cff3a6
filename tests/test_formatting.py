"""app.formatting: how numbers, money, shares and times are written for people and for JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from app.formatting import (
    decimal_str,
    format_pct,
    format_tokens,
    format_usd,
    format_when,
    pluralize,
    usd_json,
)

# --- for people ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("12.48", "$12.48"),
        ("1234.5", "$1,234.50"),
        ("12.485", "$12.49"),
        ("0", "$0.00"),
        ("0.5", "$0.50"),
        ("0.555", "$0.555"),
        ("0.0116", "$0.0116"),
        ("0.011649", "$0.0116"),
        ("0.0290", "$0.029"),
        ("0.000000123", "$0.000000123"),
        ("0.9999", "$1.00"),
        ("-3", "-$3.00"),
    ],
)
def test_format_usd(value: str, text: str) -> None:
    assert format_usd(Decimal(value)) == text


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0"),
        (312, "312"),
        (1000, "1 k"),
        (1500, "1.5 k"),
        (12_345, "12.3 k"),
        (950_000, "950 k"),
        (999_999, "1 M"),
        (8_200_000, "8.2 M"),
        (50_000_000, "50 M"),
        (1_234_567_890, "1.2 B"),
    ],
)
def test_format_tokens(count: int, text: str) -> None:
    assert format_tokens(count) == text


@pytest.mark.parametrize(
    ("fraction", "text"),
    [("0", "0 %"), ("0.001", "<1 %"), ("0.71", "71 %"), ("0.999", "99 %"), ("1", "100 %"), ("1.248", "125 %")],
)
def test_format_pct(fraction: str, text: str) -> None:
    assert format_pct(Decimal(fraction)) == text


def test_pluralize_and_when() -> None:
    assert (pluralize(1, "call"), pluralize(1234, "call"), pluralize(2, "push", "pushes")) == (
        "1 call",
        "1,234 calls",
        "2 pushes",
    )
    moment = datetime(2026, 11, 30, 15, 2, tzinfo=timezone(timedelta(hours=1)))
    assert format_when(moment) == format_when(moment.astimezone(UTC)) == "2026-11-30 14:02 UTC"
    naive = datetime(2026, 11, 30, 14, 2, tzinfo=UTC).replace(tzinfo=None)  # as SQLite hands a stored time back
    assert format_when(naive) == "2026-11-30 14:02 UTC"


def test_json_money() -> None:
    assert (decimal_str(Decimal("1E+1")), decimal_str(Decimal("12.480")), decimal_str(None)) == ("10", "12.48", None)
    assert usd_json(Decimal("0.00022500000000000002")) == "0.000225"
    assert usd_json(Decimal(0)) == "0"
