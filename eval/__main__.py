"""``python -m eval``: the same as ``utgen eval``."""

from .harness import main

raise SystemExit(main())
