"""Money at the storage boundary: Decimal USD <-> integer nano-dollars (how it is written out: app.formatting)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from app.formatting import NANO

_PER_USD = 10**9


def to_nanousd(amount: Decimal | None) -> int | None:
    if amount is None:
        return None
    return int((amount * _PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_nanousd(value: int | None) -> Decimal | None:
    if value is None:
        return None
    return (Decimal(value) / _PER_USD).quantize(NANO)
