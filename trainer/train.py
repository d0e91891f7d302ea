"""QLoRA / LoRA training with a chunked loss, early stopping, checkpoints and resume; DDP via accelerate.

    python -m trainer --config FILE.toml [--resume] [--max-steps N]
    accelerate launch -m trainer --config FILE.toml      # several GPUs, no code change
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from .config import TrainConfig, load_train_config
from .data import load_examples, tokenize_all


class ChunkedLMLoss(torch.nn.Module):
    """Mean next-token loss over the labelled positions, computed ``chunk`` positions at a time.

    The full (sequence x 151k vocabulary) logits are never materialised: the hidden states of the
    labelled positions go through the LM head in chunks, each under activation checkpointing, so
    at most one chunk of logits is alive in forward or backward. Wrapping the PEFT model in this
    module keeps DDP working: its forward is the one DDP hooks.
    """

    def __init__(self, peft_model, chunk: int = 512):
        super().__init__()
        self.peft_model = peft_model
        self.chunk = chunk

    def _causal_lm(self):
        return self.peft_model.get_base_model()

    def _chunk_loss(self, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self._causal_lm().lm_head(hidden).float()
        return F.cross_entropy(logits, labels, reduction="sum")

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        hidden = self._causal_lm().model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        shift_labels = labels[:, 1:]
        mask = shift_labels != -100
        selected = hidden[:, :-1][mask]
        targets = shift_labels[mask]
        total = selected.new_zeros((), dtype=torch.float32)
        for start in range(0, targets.numel(), self.chunk):
            piece_h, piece_y = selected[start : start + self.chunk], targets[start : start + self.chunk]
            if torch.is_grad_enabled():
                total = total + checkpoint(self._chunk_loss, piece_h, piece_y, use_reentrant=False)
            else:
                total = total + self._chunk_loss(piece_h, piece_y)
        return total / max(targets.numel(), 1)


def resolve_base(config: TrainConfig) -> Path:
    """An HF folder for the base: as given, or dequantized once from a GGUF file."""
    base = Path(config.base)
    if base.suffix == ".gguf":
        from .gguf_io import dequantize_gguf

        return dequantize_gguf(base, Path(config.output_dir) / "base-hf", config.dtype)
    return base


def build_model(config: TrainConfig, base_dir: Path, device_map=None):
    """The base model (nf4 via bitsandbytes, or bf16/fp32) with LoRA adapters on the projections."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    dtype = torch.bfloat16 if config.dtype == "bf16" else torch.float32
    kwargs: dict = {"dtype": dtype}
    if config.quantization == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
        kwargs["device_map"] = device_map or "auto"
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), **kwargs)
    model.config.use_cache = False
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if config.init_adapter:
        from peft import PeftModel

        from .gguf_io import peft_adapter_dir

        start = peft_adapter_dir(Path(config.init_adapter), Path(config.output_dir), config.lora_dropout)
        return PeftModel.from_pretrained(model, str(start), is_trainable=True)
    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def collate(items: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a micro-batch: pad tokens get attention 0 and label -100."""
    width = max(len(i["input_ids"]) for i in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        n = len(item["input_ids"])
        ids[row, :n] = torch.tensor(item["input_ids"])
        labels[row, :n] = torch.tensor(item["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def lr_lambda(schedule: str, warmup: int, total: int):
    """Linear warmup, then cosine or linear decay to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        progress = (step - warmup) / max(total - warmup, 1)
        progress = min(progress, 1.0)
        return 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress

    return factor


def evaluate(wrapper, items: list[dict], pad_id: int, device) -> float:
    """Mean loss over ``items`` (token-weighted per example)."""
    wrapper.eval()
    losses = []
    with torch.no_grad():
        for item in items:
            batch = {k: v.to(device) for k, v in collate([item], pad_id).items()}
            losses.append(float(wrapper(**batch)))
    wrapper.train()
    return sum(losses) / max(len(losses), 1)


def plot_losses(log: dict, target: Path) -> None:
    """PNG of train and validation loss against optimizer steps (skipped where matplotlib is absent)."""
    try:
        import matplotlib
    except ImportError:
        print(f"matplotlib is not installed: no {target.name}; plot {target.with_suffix('.json')} later")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if log["train"]:
        ax.plot([p["step"] for p in log["train"]], [p["loss"] for p in log["train"]], label="train")
    if log["val"]:
        ax.plot([p["step"] for p in log["val"]], [p["loss"] for p in log["val"]], marker="o", label="validation")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)


def train(config: TrainConfig, resume: bool = False) -> dict:
    """Run training; returns the summary written to ``output_dir/summary.json``."""
    from accelerate import Accelerator
    from transformers import AutoTokenizer

    random.seed(config.seed)
    torch.manual_seed(config.seed)
    out = Path(config.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(gradient_accumulation_steps=config.gradient_accumulation)
    base_dir = resolve_base(config)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    splits = load_examples(config.data, config.subset, config.tests_per_task)
    train_items, dropped_train = tokenize_all(splits["train"], tokenizer, config.max_length)
    val_items, dropped_val = tokenize_all(splits["val"], tokenizer, config.max_length)
    if config.eval_examples is not None:
        val_items = val_items[: config.eval_examples]
    if not train_items:
        raise ValueError("no training examples left after tokenization")
    accelerator.print(
        f"examples: train {len(train_items)} (dropped {dropped_train} > {config.max_length} tokens), "
        f"val {len(val_items)} (dropped {dropped_val}), test {len(splits['test'])}"
    )

    device_map = {"": accelerator.process_index} if torch.cuda.is_available() else None
    model = build_model(config, base_dir, device_map)
    wrapper = ChunkedLMLoss(model, config.loss_chunk_tokens)
    if config.quantization == "none":
        wrapper.to(accelerator.device)
    params = [p for p in wrapper.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(
        train_items, batch_size=config.micro_batch_size, shuffle=True, generator=generator,
        collate_fn=lambda items: collate(items, pad_id),
    )
    per_epoch = math.ceil(len(loader) / config.gradient_accumulation / accelerator.num_processes)
    total_steps = config.max_steps or per_epoch * config.epochs
    warmup = max(1, int(total_steps * config.warmup_ratio))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(config.lr_schedule, warmup, total_steps))
    # The scheduler stays out of prepare(): accelerate would step it once per process on every optimizer
    # step, running the schedule num_processes times too fast on several GPUs.
    wrapper, optimizer, loader = accelerator.prepare(wrapper, optimizer, loader)
    accelerator.register_for_checkpointing(scheduler)

    state_path = out / "trainer_state.json"
    log = {"train": [], "val": []}
    step, best, bad_evals, start_epoch, skip_batches = 0, float("inf"), 0, 0, 0
    if resume and (out / "checkpoint").is_dir() and state_path.is_file():
        accelerator.load_state(str(out / "checkpoint"))
        saved = json.loads(state_path.read_text())
        step, best, bad_evals = saved["step"], saved["best"], saved["bad_evals"]
        start_epoch, skip_batches, log = saved["epoch"], saved["batches_in_epoch"], saved["log"]
        accelerator.print(f"resumed at step {step}")

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    wrapper.train()
    started, tokens, running, stop, skipped_steps = time.perf_counter(), 0, [], False, 0
    for epoch in range(start_epoch, config.epochs):
        epoch_loader = accelerator.skip_first_batches(loader, skip_batches) if skip_batches else loader
        for batch_index, batch in enumerate(epoch_loader, start=skip_batches):
            with accelerator.accumulate(wrapper):
                loss = wrapper(**batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    grad_norm = accelerator.clip_grad_norm_(params, 1.0)
                    if not torch.isfinite(torch.as_tensor(grad_norm)):
                        skipped_steps += 1
                        optimizer.zero_grad()
                optimizer.step()
                if accelerator.sync_gradients:
                    scheduler.step()
                optimizer.zero_grad()
            tokens += int(batch["attention_mask"].sum())
            running.append(float(accelerator.gather(loss.detach().reshape(1)).mean()))  # every process's batch
            if not accelerator.sync_gradients:
                continue
            step += 1
            log["train"].append({"step": step, "loss": sum(running) / len(running), "lr": scheduler.get_last_lr()[0]})
            running = []
            if val_items and (step % config.eval_every == 0 or step == total_steps):
                val_loss = evaluate(accelerator.unwrap_model(wrapper), val_items, pad_id, accelerator.device)
                log["val"].append({"step": step, "loss": val_loss})
                accelerator.print(f"step {step}: train {log['train'][-1]['loss']:.4f} val {val_loss:.4f}")
                if val_loss < best:
                    best, bad_evals = val_loss, 0
                    if accelerator.is_main_process:
                        accelerator.unwrap_model(wrapper).peft_model.save_pretrained(str(out / "adapter"))
                else:
                    bad_evals += 1
                    stop = bad_evals >= config.early_stopping_patience
            if step % config.save_every == 0 or stop or step >= total_steps:
                accelerator.save_state(str(out / "checkpoint"))
                if accelerator.is_main_process:
                    state_path.write_text(json.dumps({
                        "step": step, "best": best, "bad_evals": bad_evals, "epoch": epoch,
                        "batches_in_epoch": batch_index + 1, "log": log,
                    }))
            if stop or step >= total_steps:
                break
        skip_batches = 0
        if stop or step >= total_steps:
            break
    elapsed = time.perf_counter() - started
    tokens = int(accelerator.gather(torch.tensor([tokens], device=accelerator.device)).sum())

    summary = {
        "config": asdict(config),
        "steps": step,
        "best_val_loss": best if best != float("inf") else None,
        "early_stopped": stop,
        "skipped_non_finite_steps": skipped_steps,
        "examples": {"train": len(train_items), "val": len(val_items), "test": len(splits["test"]),
                     "dropped_too_long": dropped_train + dropped_val},
        "seconds": elapsed,
        "tokens_per_second": tokens / elapsed if elapsed else None,  # all processes together
        "peak_vram_gib": torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None,
        "processes": accelerator.num_processes,
    }
    if accelerator.is_main_process:
        if not (out / "adapter").is_dir():
            accelerator.unwrap_model(wrapper).peft_model.save_pretrained(str(out / "adapter"))
        (out / "loss_log.json").write_text(json.dumps(log, indent=2))
        plot_losses(log, out / "loss.png")
        if config.export_gguf:
            from .gguf_io import write_lora_gguf

            n_blocks = accelerator.unwrap_model(wrapper).peft_model.get_base_model().config.num_hidden_layers
            summary["adapter_gguf"] = str(write_lora_gguf(out / "adapter", n_blocks, out / "adapter.gguf",
                                                              config.adapter_dtype))
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    accelerator.wait_for_everyone()
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--resume", action="store_true", help="continue from output_dir/checkpoint")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--gradient-accumulation", type=int,
                        help="override the config's (e.g. halve it on 2 GPUs to keep the effective batch)")
    parser.add_argument("--output-dir", type=Path)
    parser.add_argument("--base", type=Path, help="override the config's base (HF folder or GGUF)")
    parser.add_argument("--data", type=Path, action="append", help="override the config's data (repeatable)")
    args = parser.parse_args(argv)
    config = load_train_config(
        args.config,
        max_steps=args.max_steps,
        learning_rate=args.learning_rate,
        gradient_accumulation=args.gradient_accumulation,
        output_dir=str(args.output_dir.resolve()) if args.output_dir else None,
        base=str(args.base.resolve()) if args.base else None,
        data=[str(d.resolve()) for d in args.data] if args.data else None,
    )
    summary = train(config, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps({k: v for k, v in summary.items() if k != "config"}, indent=2))
    return 0
