"""Readers of the values in a GitHub webhook payload. Pure.

Each reader takes what GitHub sent, whatever its type, and returns the value Tokentrail stores, or a neutral
default when the payload drifted (a missing key, a null, another type). A value of the right type that the
database column cannot hold (a pull request number of 2^40, a login of 500 characters) raises `Ignored` naming
the field: the delivery is then answered 200 "ignored" and never queued, since the worker's inserts would fail
on every retry.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from app.parsing import dig, to_datetime

# What the columns of app/github_models.py hold.
MAX_NUMBER = 2**31 - 1  # pull request numbers and diff counts: INTEGER
MIN_ID, MAX_ID = -(2**63), 2**63 - 1  # installation, account, repository and review ids: BIGINT
LOGIN_CHARS = 100
FULL_NAME_CHARS = 200
REF_CHARS = 255
URL_CHARS = 500
KIND_CHARS = 32  # an account type, a review state
SHA = re.compile(r"[0-9a-f]{40}")


class Ignored(Exception):  # a verdict, not an error
    """This delivery needs no work; the reason goes back to GitHub in the 200 answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def text(value: Any, default: str = "") -> str:
    # PostgreSQL text cannot hold NUL; a title or login carrying one must not fail the worker's inserts.
    return value.replace("\x00", "") if isinstance(value, str) else default


def fits(value: str, name: str, limit: int) -> str:
    """`value` (already as it will be stored), refused when longer than its column."""
    if len(value) > limit:
        raise Ignored(f"{name} is longer than {limit} characters")
    return value


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def ranged(value: Any, name: str, *, high: int, low: int = 1) -> int | None:
    """An integer, None when there is none; refused when outside `low..high`."""
    number = integer(value)
    if number is not None and not low <= number <= high:
        shown = f"{number} " if abs(number) < 10**30 else ""
        raise Ignored(f"{name} {shown}is outside {low}..{high}")
    return number


def github_id(value: Any, name: str) -> int | None:
    """One of GitHub's numeric ids; refused only when a BIGINT cannot hold it (GitHub's are positive, but any
    value the column holds is kept rather than lose the delivery)."""
    return ranged(value, name, low=MIN_ID, high=MAX_ID)


def sha(value: Any, name: str) -> str:
    """A commit SHA, lower-cased; "" when there is none."""
    found = text(value).lower()
    if found and not SHA.fullmatch(found):
        raise Ignored(f"{name} is not a 40-character hex SHA")
    return found


def items(value: Any) -> list[Any]:
    """A JSON array, or nothing: a drifted scalar or object must not be iterated."""
    return value if isinstance(value, list) else []


def full_name(repository: Any, name: str) -> str | None:
    """A repository object's `owner/name`, lower-cased; None when it has none."""
    found = text(dig(repository, "full_name") if isinstance(repository, dict) else None).lower()
    return fits(found, f"{name}.full_name", FULL_NAME_CHARS) if "/" in found else None


def moment(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return to_datetime(value)
    except ValueError:
        return None
