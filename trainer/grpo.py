"""GRPO on execution rewards (issue 15, item 3): the adapter samples a group of test files per problem, each
file is scored by what it does (``trainer.corpus.reward``: mutants killed on the target, minus a penalty for
tests that fail on the real code), and the policy gradient raises the files that beat their group's mean.

One update per group (on-policy, so no ratio or clipping is needed), advantages normalised within a group,
a constant token normaliser (Dr. GRPO) and no KL term: the LoRA starts from a trained adapter and moves
little in the few steps a device session buys. Rewards run in child processes on the machine's CPU cores
while the GPU waits. Resumable: each call continues from ``OUT/state`` (saved after every step) until
``--steps`` are done, and ends with the adapter as it stands in ``OUT/adapter.gguf``.

    python -m trainer.grpo prepare --out .stage/grpo        # problems with a passing sample + their code
    python -m trainer.grpo train --base HF --init-adapter A.gguf --problems P.jsonl --root-base DIR --out RUN
"""

from __future__ import annotations

import argparse
import json
import random
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import MISSING, asdict, dataclass, replace
from pathlib import Path
from typing import Callable

from trainer.corpus.problems import REPO, Problem, assert_not_held_out, read_problems
from trainer.corpus.reward import FAIL_PENALTY, FileScore, score_files
from trainer.heldout import split_of

# Larger distributions stay out of the GRPO problem set: their code travels to the GPU machine per session.
MAX_ROOT_BYTES = 4 * 2**20


@dataclass
class GrpoConfig:
    """One GRPO run."""

    base: str  # HF folder of the base model
    init_adapter: str  # PEFT folder or GGUF LoRA adapter to start from
    problems: str  # problems.jsonl (as ``prepare`` writes it)
    out: str  # run folder: state, log, adapter, adapter.gguf
    root_base: str = "."  # problem roots are relative to this folder
    steps: int = 40
    problems_per_step: int = 16
    group: int = 8  # samples per problem
    learning_rate: float = 3e-5
    temperature: float = 0.9
    max_new_tokens: int = 384
    fail_penalty: float = FAIL_PENALTY
    all_pass_gate: bool = False  # no kill credit for a file with a failing test
    workers: int = 16  # reward child processes at once
    micro_batch: int = 4  # sequences per forward/backward (16 of 2 000 tokens ran out of 140 GB)
    time_limit: float = 520.0  # seconds: no step starts after this (each call makes one; the next resumes)
    reward_timeout: float = 60.0  # seconds per problem's child run
    seed: int = 1234


def group_advantages(rewards: list[float]) -> list[float]:
    """Rewards normalised within their group: (r - mean) / std; all zero when the group agrees."""
    mean = sum(rewards) / len(rewards)
    std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
    return [0.0] * len(rewards) if std < 1e-6 else [(r - mean) / std for r in rewards]


def prepare(out: Path, verdicts: list[Path], problems_path: Path, mbpp_verdicts: Path, mbpp_problems: Path,
            mbpp_count: int, seed: int = 1234) -> dict:
    """Pick the train-split problems where an earlier round had a passing sample (a group can differ only
    there): the PyPI targets whose package is small, and ``mbpp_count`` MBPP problems. Write
    ``problems.jsonl`` (roots relative to ``out/roots``) and ``roots.tar.gz`` holding their code."""
    passing = set()
    for path in verdicts + [mbpp_verdicts]:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("candidates_passing"):
                passing.add(row["task_id"])
    targets = [p for p in read_problems(problems_path) if p.target and p.task_id in passing]
    sizes = {root: sum(f.stat().st_size for f in (REPO / root).rglob("*") if f.is_file())
             for root in {p.root for p in targets}}
    targets = [p for p in targets if sizes[p.root] <= MAX_ROOT_BYTES]
    mbpp = [p for p in read_problems(mbpp_problems) if p.task_id in passing]
    rng = random.Random(seed)
    chosen = targets + rng.sample(mbpp, min(mbpp_count, len(mbpp)))
    chosen = [p for p in chosen if split_of(p.task_id) == "train"]
    assert_not_held_out(chosen)
    rng.shuffle(chosen)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tarfile.open(out / "roots.tar.gz", "w:gz") as tar:
        for root in sorted({p.root for p in chosen}):
            tar.add(REPO / root, arcname=Path(root).name,
                    filter=lambda info: None if "__pycache__" in info.name or ".dist-info" in info.name else info)
    for problem in chosen:
        rows.append(json.dumps({**asdict(problem), "root": Path(problem.root).name}))
    (out / "problems.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {"targets": sum(p.target is not None for p in chosen), "mbpp": sum(p.target is None for p in chosen),
            "roots": len({p.root for p in chosen}), "tar_bytes": (out / "roots.tar.gz").stat().st_size}


def save_state(model, optimizer, step: int, state_dir: Path) -> None:
    """The adapter and the optimizer after ``step``, replaced atomically (a run resumes from here)."""
    import shutil

    import torch

    tmp = state_dir.with_name(state_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp / "adapter"))
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, tmp / "optimizer.pt")
    shutil.rmtree(state_dir, ignore_errors=True)
    tmp.rename(state_dir)


def train(config: GrpoConfig, score: Callable[[Problem, list[str | None]], list[FileScore] | None] | None = None,
          ) -> dict:
    """Run GRPO steps until ``config.steps`` are done or the time limit; save state, adapter and GGUF.

    ``score`` judges one problem's group of texts (default: the execution reward, ``score_files``)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainer.gguf_io import peft_adapter_dir, write_lora_gguf

    started = time.perf_counter()
    if score is None:
        def score(problem: Problem, texts: list[str | None]) -> list[FileScore] | None:
            return score_files(problem, texts, config.fail_penalty, config.reward_timeout, config.all_pass_gate)
    out = Path(config.out)
    state_dir = out / "state"
    out.mkdir(parents=True, exist_ok=True)
    problems = [replace(p, root=str(Path(config.root_base) / p.root)) for p in read_problems(Path(config.problems))]
    device = "cuda" if torch.cuda.is_available() else "cpu"
    tokenizer = AutoTokenizer.from_pretrained(config.base)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(config.base, dtype=dtype).to(device)
    start = state_dir / "adapter" if (state_dir / "adapter").is_dir() else \
        peft_adapter_dir(Path(config.init_adapter), out)
    model = PeftModel.from_pretrained(model, str(start), is_trainable=True)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate, betas=(0.9, 0.99), weight_decay=0.0)
    step = 0
    if (state_dir / "optimizer.pt").is_file():
        saved = torch.load(state_dir / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        step = saved["step"]
    log_path = out / "log.jsonl"
    if log_path.is_file():  # steps logged after the last saved state (a call that died) are done again
        kept = [line for line in log_path.read_text(encoding="utf-8").splitlines() if json.loads(line)["step"] <= step]
        log_path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    torch.manual_seed(config.seed + step)
    stop_ids = [i for i in (tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id) if i is not None]
    pool = ThreadPoolExecutor(max_workers=config.workers)
    while step < config.steps:
        first = step * config.problems_per_step
        batch = [problems[(first + i) % len(problems)] for i in range(config.problems_per_step)]
        timer = time.perf_counter()
        prompts = [tokenizer.apply_chat_template(p.messages(), add_generation_prompt=True, tokenize=False)
                   for p in batch]
        encoded = tokenizer(prompts, return_tensors="pt", padding=True).to(device)
        model.eval()
        with torch.no_grad():
            output = model.generate(**encoded, do_sample=True, temperature=config.temperature, top_p=1.0,
                                    max_new_tokens=config.max_new_tokens, num_return_sequences=config.group,
                                    eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id)
        prompt_len = encoded["input_ids"].shape[1]
        completions = output[:, prompt_len:]
        is_stop = torch.isin(completions, torch.tensor(stop_ids, device=completions.device))
        ended = is_stop.any(dim=1)
        first_stop = torch.where(ended, is_stop.int().argmax(dim=1), completions.shape[1] - 1)
        completion_mask = torch.arange(completions.shape[1], device=completions.device)[None, :] <= first_stop[:, None]
        texts = [tokenizer.decode(c, skip_special_tokens=True) if e else None
                 for c, e in zip(completions, ended.tolist())]
        generated_s = time.perf_counter() - timer

        timer = time.perf_counter()
        groups = [texts[i * config.group:(i + 1) * config.group] for i in range(len(batch))]
        scored = list(pool.map(lambda pg: score(*pg), zip(batch, groups)))
        reward_s = time.perf_counter() - timer

        advantages, rewards = [], []
        for scores in scored:
            values = [s.reward for s in scores] if scores else [0.0] * config.group
            rewards.extend(values)
            advantages.extend(group_advantages(values))  # an unjudged group's zeros: no gradient
        timer = time.perf_counter()
        model.train()
        prompt_mask = encoded["attention_mask"].repeat_interleave(config.group, dim=0)
        attention = torch.cat([prompt_mask, completion_mask.long()], dim=1)
        positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
        advantage = torch.tensor(advantages, device=device, dtype=torch.float32)
        rows = [i for i, a in enumerate(advantages) if a != 0.0]
        normaliser = len(advantages) * config.max_new_tokens  # Dr. GRPO: a constant, not each file's length
        optimizer.zero_grad(set_to_none=True)
        for begin in range(0, len(rows), config.micro_batch):
            index = torch.tensor(rows[begin:begin + config.micro_batch], device=device)
            logits = model(input_ids=output[index], attention_mask=attention[index],
                           position_ids=positions[index],
                           logits_to_keep=completions.shape[1] + 1).logits[:, :-1].float()
            logp = torch.log_softmax(logits, dim=-1).gather(-1, completions[index].unsqueeze(-1)).squeeze(-1)
            per_file = (logp * completion_mask[index]).sum(dim=1)
            loss = -(advantage[index] * per_file).sum() / normaliser
            loss.backward()
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, 1.0)) if rows else 0.0
        if rows:
            optimizer.step()
        train_s = time.perf_counter() - timer
        step += 1
        judged = [s for scores in scored if scores for s in scores]
        entry = {
            "step": step, "reward": sum(rewards) / len(rewards),
            "files_collected": sum(s.collected for s in judged) / max(len(judged), 1),
            "files_all_pass": sum(s.collected and not s.failed for s in judged) / max(len(judged), 1),
            "kill_share": sum(s.killed / s.mutants for s in judged if s.mutants) / max(sum(1 for s in judged if s.mutants), 1),
            "cut_at_limit": sum(t is None for t in texts) / len(texts),
            "groups_unjudged": sum(scores is None for scores in scored),
            "groups_flat": sum(1 for i in range(len(batch)) if not any(advantages[i * config.group:(i + 1) * config.group])),
            "new_tokens": int(completion_mask.sum()), "grad_norm": grad_norm,
            "seconds": {"generate": round(generated_s, 1), "reward": round(reward_s, 1), "train": round(train_s, 1)},
        }
        del output, completions, attention, positions
        save_state(model, optimizer, step, state_dir)  # every step: a call may die (memory, time) mid-way
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
        print(json.dumps(entry), flush=True)
        if time.perf_counter() - started > config.time_limit:
            break
    pool.shutdown()
    summary = {"steps_done": step, "steps": config.steps, "seconds_this_call": round(time.perf_counter() - started, 1),
               "config": asdict(config), "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
    if step:  # every call ends with the adapter as it stands (a session may not buy the next call)
        n_blocks = model.get_base_model().config.num_hidden_layers
        summary["adapter_gguf"] = str(write_lora_gguf(state_dir / "adapter", n_blocks, out / "adapter.gguf", "f16"))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.grpo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="the problem set and its code, to carry to the GPU machine")
    prep.add_argument("--out", type=Path, required=True)
    cache = REPO / "trainer" / "cache"
    prep.add_argument("--problems", type=Path, default=cache / "corpus-v2" / "problems.jsonl")
    prep.add_argument("--verdicts", type=Path, nargs="+",
                      default=[cache / "corpus-v2" / "verdicts.jsonl", cache / "corpus-v2-r2" / "verdicts.jsonl"])
    prep.add_argument("--mbpp-problems", type=Path, default=cache / "mbpp-r7" / "problems.jsonl")
    prep.add_argument("--mbpp-verdicts", type=Path, default=cache / "mbpp-r7" / "verdicts.jsonl")
    prep.add_argument("--mbpp", type=int, default=300, help="MBPP problems in the set")
    run = sub.add_parser("train", help="GRPO steps on the GPU (resumes from OUT/state)")
    for name, field in GrpoConfig.__dataclass_fields__.items():
        flag = "--" + name.replace("_", "-")
        if field.default is MISSING:
            run.add_argument(flag, required=True)
        elif isinstance(field.default, bool):
            run.add_argument(flag, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            run.add_argument(flag, type=type(field.default), default=field.default)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        print(json.dumps(prepare(args.out, args.verdicts, args.problems, args.mbpp_verdicts, args.mbpp_problems,
                                 args.mbpp)))
    else:
        config = GrpoConfig(**{k: getattr(args, k) for k in GrpoConfig.__dataclass_fields__})
        print(json.dumps(train(config), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
