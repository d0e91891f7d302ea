"""A shopping cart holding quantities of SKUs."""

from __future__ import annotations


class Cart:
    """Quantities by SKU; quantities are positive integers."""

    def __init__(self) -> None:
        self._items: dict[str, int] = {}

    def add(self, sku: str, quantity: int = 1) -> None:
        if quantity <= 0:
            raise ValueError("quantity must be positive")
        self._items[sku] = self._items.get(sku, 0) + quantity

    def remove(self, sku: str, quantity: int = 1) -> None:
        if sku not in self._items:
            raise KeyError(sku)
        left = self._items[sku] - quantity
        if left > 0:
            self._items[sku] = left
        else:
            del self._items[sku]

    def quantity(self, sku: str) -> int:
        return self._items.get(sku, 0)

    def total_items(self) -> int:
        return sum(self._items.values())

    def skus(self) -> list[str]:
        return sorted(self._items)
