import pytest

from shopkit.cart import Cart


def test_add_and_quantity():
    cart = Cart()
    cart.add("mug", 2)
    cart.add("mug")
    assert cart.quantity("mug") == 3
    assert cart.total_items() == 3


def test_remove_all_deletes_sku():
    cart = Cart()
    cart.add("mug", 2)
    cart.remove("mug", 2)
    assert cart.skus() == []


def test_add_rejects_zero():
    with pytest.raises(ValueError):
        Cart().add("mug", 0)
