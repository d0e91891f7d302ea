"""URL slugs for product names."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^a-z0-9]+")


def slugify(name: str, max_length: int = 40) -> str:
    """'Blue Mug (Large)' -> 'blue-mug-large'; accents are dropped, length capped at a dash."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _NON_WORD.sub("-", ascii_name.lower()).strip("-")
    if len(slug) > max_length:
        slug = slug[:max_length].rsplit("-", 1)[0]
    return slug


def unique_slug(name: str, taken: set[str]) -> str:
    """A slug for ``name`` not in ``taken``: suffixes -2, -3, ... when needed."""
    base = slugify(name)
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"
