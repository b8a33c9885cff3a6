"""CSV for spreadsheets and finance (issue 15). Pure.

Every text cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
return: a PR title such as `=HYPERLINK(...)` is attacker-controlled) is prefixed with `'` and quoted, so it
shows as the text it is (OWASP "CSV injection"). Numbers are written as numbers and never guarded: they are ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import TypeAlias

Cell: TypeAlias = str | int | Decimal | bool | None
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def guard_cell(value: Cell) -> str:
    """One cell as text: numbers plainly, booleans as true/false, None empty, text defused."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value else "0"
    if isinstance(value, int):
        return str(value)
    text = value.replace("\x00", "")
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _field(value: Cell) -> str:
    text = guard_cell(value)
    guarded = isinstance(value, str) and text != value.replace("\x00", "")
    if guarded or any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    """RFC 4180 text (CRLF line ends); a defused cell is always quoted, other cells only when they must be."""
    lines = [",".join(_field(name) for name in header)]
    lines += [",".join(_field(value) for value in row) or '""' for row in rows]  # an empty line is no row
    return "\r\n".join(lines) + "\r\n"
