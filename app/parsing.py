"""Small, forgiving readers shared by the source parsers: numbers that may be strings, timestamps in the shapes
sources really send, JSON-or-NDJSON bodies. Pure."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson

from app.records import PayloadError


def fast_loads(data: bytes) -> Any:
    """orjson's decode (several times faster than json's), with json's answer, and its exact error, wherever orjson
    refuses what json reads (NaN, lone surrogates, a byte-order mark, UTF-16) or fails. One difference stays: an
    integer beyond 64 bits comes back as a float, which a caller reading numbers must check (`canonical`)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


# DESIGN §2 "Limits": token counts below 10^15, costs below 10^9 USD. One model call never comes near them: a
# larger value is a unit mistake or garbage, and would not fit the database's 64-bit columns (nano-dollars).
MAX_COUNT = 10**15 - 1
MAX_AMOUNT = Decimal(10**9)


def to_int(value: Any) -> int:
    """A token count: int, float or numeric string (OTLP sends 64-bit ints as strings). Missing is 0.

    Raises ValueError on negative or unreadable values so that the record is rejected with a reason.
    """
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError(f"expected a count, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"expected a whole count, got {value!r}")
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            raise ValueError(f"expected a count, got {value!r}") from None
    else:
        raise ValueError(f"expected a count, got {value!r}")
    if number < 0:
        raise ValueError(f"a count cannot be negative ({number})")
    if number > MAX_COUNT:
        raise ValueError(f"a count must be below 10^15 ({number})")
    return number


def to_decimal(value: Any) -> Decimal | None:
    """A money amount from a number or a decimal string; None when absent. Negative or non-finite is an error."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"expected an amount, got {value!r}")
    try:
        # str() first: Decimal(0.1) would carry the float's binary noise.
        amount = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"expected an amount, got {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"invalid amount {value!r}")
    if amount >= MAX_AMOUNT:
        raise ValueError(f"an amount must be below 10^9 USD ({value!r})")
    return amount


def to_datetime(value: Any) -> datetime:
    """RFC 3339 / ISO 8601 strings (naive ones are UTC), epoch seconds, milliseconds or nanoseconds."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a timestamp, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if text.replace(".", "", 1).isdigit():
            return to_datetime(float(text) if "." in text else int(text))
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"unreadable timestamp {value!r}") from None
        return as_utc_time(parsed, value)
    if isinstance(value, int | float):
        seconds = float(value)
        # Pick the unit by magnitude: seconds (~1.7e9), milliseconds (~1.7e12), microseconds, nanoseconds.
        for divisor in (1, 1e3, 1e6, 1e9):
            if seconds / divisor < 1e11:
                seconds /= divisor
                break
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"timestamp out of range {value!r}") from None
    raise ValueError(f"expected a timestamp, got {value!r}")


def as_utc_time(parsed: datetime, shown: Any) -> datetime:
    """A parsed time in UTC (naive is UTC). Always UTC: SQLite stores a datetime's wall-clock digits without its
    offset, so a "-08:00" time kept as such would be read back 8 hours early. A time at the edge of the calendar
    (`9999-12-31T23:00:00-05:00`) has no UTC form: that is a bad value, not a crash."""
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp out of range {shown!r}") from None


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PayloadError(f"body is not valid JSON: {error}") from None


def iter_json_lines(
    body: bytes, *, loads: Callable[[bytes], Any] = json.loads
) -> Iterator[tuple[int, Any | ValueError]]:
    """(index, value) for each non-blank line; a line that is not JSON yields a ValueError as its value,
    so the caller can reject that line by index and keep the rest."""
    index = 0
    for raw in body.splitlines():
        if not raw.strip():
            continue
        try:
            yield index, loads(raw)
        except json.JSONDecodeError as error:
            yield index, ValueError(f"line is not valid JSON: {error.msg}")
        except UnicodeDecodeError:
            yield index, ValueError("line is not valid UTF-8")
        index += 1


def transcript_lines(body: bytes) -> Iterator[tuple[int, Any]]:
    """(index, value) of a transcript body: JSON lines, or a JSON array of line objects. A line that is not JSON
    yields a ValueError value (reject it by index); a body of which no line reads at all is a PayloadError."""
    if not body.strip():
        raise PayloadError("body is empty")
    if body.lstrip()[:1] == b"[":
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if isinstance(data, list):
            yield from enumerate(data)
            return
    lines = list(iter_json_lines(body))
    if all(isinstance(value, ValueError) for _, value in lines):
        raise PayloadError("body is not JSON lines: no line could be read")
    yield from lines


def load_items(body: bytes, *, ndjson: bool, fast: bool = False) -> list[Any]:
    """A batch body as a list of items: a JSON array, {"records": [...]}/{"batch": [...]}/{"data": [...]}, one
    object, or NDJSON. A bad NDJSON line becomes a ValueError item so it can be rejected by index. `fast` decodes
    with `fast_loads` (see there for the one difference)."""
    if not body.strip():
        raise PayloadError("body is empty")
    loads: Callable[[bytes], Any] = fast_loads if fast else json.loads
    if ndjson:
        return [value for _, value in iter_json_lines(body, loads=loads)]
    try:
        data = loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        # Several objects one per line without the NDJSON content type: read it as NDJSON anyway.
        if body.lstrip()[:1] == b"{" and isinstance(error, json.JSONDecodeError) and error.msg == "Extra data":
            return [value for _, value in iter_json_lines(body, loads=loads)]
        raise PayloadError(f"body is not valid JSON: {error}") from None
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        for key in ("records", "batch", "data", "logs"):
            if isinstance(data.get(key), list):
                return list(data[key])
        return [data]
    raise PayloadError("expected a JSON array, an object, or NDJSON")


def dig(data: Any, *path: str) -> Any:
    """data[path[0]][path[1]]… or None when any step is missing or not a mapping."""
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
