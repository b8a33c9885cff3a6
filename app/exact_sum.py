"""`exact_sum(column)`: SUM of a non-negative integer column that neither overflows nor rounds, on both databases.

Limits (DESIGN §2) keep each record's cost below 10^18 nano-dollars and each token count below 10^15, but a sum of
ten such records passes 2^63. PostgreSQL's SUM of a bigint is an exact `numeric`; SQLite's SUM raises "integer
overflow" (and TOTAL rounds through a float). So on SQLite the sum is taken in two parts, above and below 10^9,
each far from overflowing, and joined as decimal text with the carry applied; Python reads either back as an int.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import GenericFunction

_SPLIT = 1_000_000_000
MAX_BIGINT = 2**63 - 1  # the largest value a BIGINT column holds, on both databases


class WholeNumber(sa.types.TypeDecorator[int]):
    """An integer that may arrive as text (SQLite's two-part sum) or `numeric` (PostgreSQL's SUM)."""

    impl = sa.String  # no result processing of its own: the value arrives as the driver read it
    cache_ok = True

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> int | None:
        if value is None:
            return None
        return int(Decimal(str(value)))


class exact_sum(GenericFunction[int]):
    type = WholeNumber()
    inherit_cache = True


@compiles(exact_sum)
def _sum(element: exact_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"SUM({compiler.process(element.clauses, **kw)})"


@compiles(exact_sum, "sqlite")
def _two_part_sum(element: exact_sum, compiler: SQLCompiler, **kw: Any) -> str:
    value = compiler.process(element.clauses, **kw)
    high = f"SUM(({value}) / {_SPLIT})"
    low = f"SUM(({value}) % {_SPLIT})"
    # Fixed-width digits, so that ORDER BY the text is ORDER BY the number; the sum of no rows stays NULL.
    return (
        f"CASE WHEN {low} IS NULL THEN NULL ELSE printf('%019d%09d', {high} + {low} / {_SPLIT}, {low} % {_SPLIT}) END"
    )
