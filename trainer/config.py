"""The training configuration: one dataclass, read from a TOML file."""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class TrainConfig:
    """Every knob of a run. Paths are relative to the config file's directory."""

    base: str
    data: list[str]
    output_dir: str = "runs/default"
    subset: int = 20_000
    tests_per_task: int = 1
    max_length: int = 2048
    quantization: str = "nf4"
    dtype: str = "bf16"
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))
    learning_rate: float = 2e-4
    lr_schedule: str = "cosine"
    warmup_ratio: float = 0.04
    weight_decay: float = 0.0
    epochs: int = 2
    max_steps: int | None = None
    micro_batch_size: int = 1
    gradient_accumulation: int = 16
    gradient_checkpointing: bool = True
    loss_chunk_tokens: int = 512
    eval_every: int = 50
    eval_examples: int | None = None
    early_stopping_patience: int = 3
    save_every: int = 100
    seed: int = 0
    export_gguf: bool = True
    # Start the LoRA weights from this adapter (a PEFT folder or a GGUF adapter, e.g. the shipped one)
    # instead of zeros: continued training. Its rank and alpha replace lora_r and lora_alpha.
    init_adapter: str | None = None
    adapter_dtype: str = "f16"

    def validate(self) -> None:
        """Raise ValueError for settings no run could use."""
        if self.quantization not in ("nf4", "none"):
            raise ValueError(f"quantization must be 'nf4' or 'none', got {self.quantization!r}")
        if self.dtype not in ("bf16", "fp32"):
            raise ValueError(f"dtype must be 'bf16' or 'fp32', got {self.dtype!r}")
        if self.lr_schedule not in ("cosine", "linear"):
            raise ValueError(f"lr_schedule must be 'cosine' or 'linear', got {self.lr_schedule!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if self.micro_batch_size < 1 or self.gradient_accumulation < 1:
            raise ValueError("micro_batch_size and gradient_accumulation must be >= 1")
        if self.adapter_dtype not in ("f32", "f16"):
            raise ValueError(f"adapter_dtype must be 'f32' or 'f16', got {self.adapter_dtype!r}")
        if not self.data:
            raise ValueError("data must name at least one source")


def load_train_config(path: Path, **overrides) -> TrainConfig:
    """Read a TOML config (a flat table, or a [train] table); relative paths resolve next to it."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    raw = raw.get("train", raw)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{path}: unknown settings {sorted(unknown)}")
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(raw.get("data"), str):
        raw["data"] = [raw["data"]]
    base_dir = path.resolve().parent

    def anchor(value: str) -> str:
        if value.startswith("hub:") or Path(value).is_absolute():
            return value
        return str((base_dir / value).resolve())

    raw["base"] = anchor(raw["base"])
    raw["data"] = [anchor(d) for d in raw.get("data", [])]
    raw["output_dir"] = anchor(raw.get("output_dir", TrainConfig.output_dir))
    if raw.get("init_adapter"):
        raw["init_adapter"] = anchor(raw["init_adapter"])
    config = TrainConfig(**raw)
    config.validate()
    return config
