"""``python -m trainer --config FILE.toml``: the same as ``utgen train``."""

from .train import main

raise SystemExit(main())
