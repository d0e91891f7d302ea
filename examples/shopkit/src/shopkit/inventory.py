"""Stock levels with reservations."""

from __future__ import annotations


class OutOfStock(Exception):
    """Raised when a reservation asks for more than is available."""


class Inventory:
    """On-hand stock per SKU, minus what is reserved for open orders."""

    def __init__(self, stock: dict[str, int] | None = None) -> None:
        self._on_hand = dict(stock or {})
        self._reserved: dict[str, int] = {}

    def restock(self, sku: str, quantity: int) -> None:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self._on_hand[sku] = self._on_hand.get(sku, 0) + quantity

    def available(self, sku: str) -> int:
        return self._on_hand.get(sku, 0) - self._reserved.get(sku, 0)

    def reserve(self, sku: str, quantity: int) -> None:
        if quantity > self.available(sku):
            raise OutOfStock(f"{sku}: {quantity} requested, {self.available(sku)} available")
        self._reserved[sku] = self._reserved.get(sku, 0) + quantity

    def release(self, sku: str, quantity: int) -> None:
        held = self._reserved.get(sku, 0)
        if quantity > held:
            raise ValueError(f"{sku}: only {held} reserved")
        self._reserved[sku] = held - quantity

    def ship(self, sku: str, quantity: int) -> None:
        self.release(sku, quantity)
        self._on_hand[sku] -= quantity

    def low_stock(self, threshold: int = 5) -> list[str]:
        return sorted(sku for sku in self._on_hand if self.available(sku) < threshold)
