"""Prices in integer cents: discounts, tax and rounding."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def apply_discount(cents: int, percent: float) -> int:
    """Price after a percentage discount, rounded half up to a cent."""
    if cents < 0:
        raise ValueError("price cannot be negative")
    if not 0 <= percent <= 100:
        raise ValueError("discount must be between 0 and 100")
    discounted = Decimal(cents) * (Decimal(100) - Decimal(str(percent))) / Decimal(100)
    return int(discounted.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def add_tax(cents: int, rate: float) -> int:
    """Price with tax at ``rate`` (0.2 for 20 %), rounded half up."""
    if rate < 0:
        raise ValueError("tax rate cannot be negative")
    taxed = Decimal(cents) * (Decimal(1) + Decimal(str(rate)))
    return int(taxed.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def bulk_price(unit_cents: int, quantity: int) -> int:
    """Total for ``quantity`` units: 10 % off from 10 units, 20 % off from 50."""
    if quantity < 0:
        raise ValueError("quantity cannot be negative")
    total = unit_cents * quantity
    if quantity >= 50:
        return apply_discount(total, 20)
    if quantity >= 10:
        return apply_discount(total, 10)
    return total


def format_price(cents: int, currency: str = "EUR") -> str:
    """'12.50 EUR' for 1250; negative amounts get a leading minus."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d} {currency}"
