"""Money at the storage boundary: Decimal USD <-> integer nano-dollars, and the JSON form (a decimal string)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

NANO = Decimal("1e-9")
_PER_USD = 10**9


def to_nanousd(amount: Decimal | None) -> int | None:
    if amount is None:
        return None
    return int((amount * _PER_USD).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_nanousd(value: int | None) -> Decimal | None:
    if value is None:
        return None
    return (Decimal(value) / _PER_USD).quantize(NANO)


def usd_str(value: Decimal | None) -> str | None:
    """A decimal string without exponent or needless trailing zeros ("12.48", "0.000225", "0")."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text
