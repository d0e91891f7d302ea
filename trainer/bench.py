"""Training throughput and peak VRAM at a fixed sequence length, for LoRA (bf16) and QLoRA (nf4).

    python -m trainer.bench --base HF_DIR --name 1.5b --seq 2048 --steps 6 --out bench.json

``--base`` is an HF model folder; with ``--random-init`` a folder holding only config.json is
enough (weights are drawn at random: memory and speed depend on the shapes, not the values).
Each step is one micro-batch of ``seq`` tokens, every position labelled (the loss worst case),
through the same ChunkedLMLoss, gradient checkpointing and LoRA targets as training.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from .config import TrainConfig
from .train import ChunkedLMLoss, build_model


def materialise_random(config_dir: Path, target: Path) -> Path:
    """Save a randomly initialised bf16 model with the config in ``config_dir``."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(config_dir))
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(target))
    return target


def bench_one(base: Path, quantization: str, seq: int, steps: int, warmup: int = 2) -> dict:
    """tokens/s and peak allocated VRAM for ``steps`` optimizer steps of one ``seq``-token micro-batch."""
    config = TrainConfig(base=str(base), data=["-"], quantization=quantization, dtype="bf16")
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = build_model(config, base, device_map={"": 0})
    wrapper = ChunkedLMLoss(model, config.loss_chunk_tokens).cuda().train()
    optimizer = torch.optim.AdamW([p for p in wrapper.parameters() if p.requires_grad], lr=1e-4)
    vocab = model.get_base_model().config.vocab_size
    ids = torch.randint(0, vocab, (1, seq), device="cuda")
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()}
    for index in range(warmup + steps):
        if index == warmup:
            torch.cuda.synchronize()
            started = time.perf_counter()
        loss = wrapper(**batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - started
    result = {
        "quantization": quantization,
        "seq": seq,
        "steps": steps,
        "tokens_per_second": round(steps * seq / elapsed, 1),
        "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 3),
        "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3),
        "last_loss": round(float(loss.detach()), 4),
        "trainable_params": sum(p.numel() for p in wrapper.parameters() if p.requires_grad),
    }
    del wrapper, model, optimizer
    torch.cuda.empty_cache()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--random-init", action="store_true")
    parser.add_argument("--modes", default="qlora,lora")
    parser.add_argument("--seq", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    base = args.base
    if args.random_init:
        base = materialise_random(args.base, Path(tempfile.mkdtemp(prefix="bench-random-")))
    rows = []
    for mode in args.modes.split(","):
        row = bench_one(base, "nf4" if mode == "qlora" else "none", args.seq, args.steps)
        row.update(model=args.name, mode=mode, weights="random init (same config)" if args.random_init else "real",
                   gpu=torch.cuda.get_device_name(0), torch=torch.__version__)
        print(json.dumps(row), flush=True)
        rows.append(row)
    existing = json.loads(args.out.read_text()) if args.out.exists() else []
    args.out.write_text(json.dumps(existing + rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
