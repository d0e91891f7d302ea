"""shopkit: carts, prices, stock and slugs for a small web shop."""
