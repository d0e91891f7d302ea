"""``python -m trainer --config FILE.toml``: QLoRA fine-tuning (from a checkout)."""

from .train import main

raise SystemExit(main())
