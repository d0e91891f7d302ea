"""``python -m eval``: the evaluation harness (from a checkout)."""

from .harness import main

raise SystemExit(main())
