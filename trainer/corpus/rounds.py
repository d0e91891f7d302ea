"""Expert iteration: a second corpus round sampled from a model fine-tuned on the first round's records.

Round 1 samples the base model; its filtered records train a sampler (the trainer's QLoRA, with a
sampler config); round 2 samples base + sampler, more samples per problem at a shorter token limit, and
goes through the same execution filter. Every step resumes: a finished sampler (``summary.json``) is
not trained again and problems already sampled are skipped.
"""

from __future__ import annotations

from pathlib import Path

from .filter import filter_corpus
from .sample import sample


def train_sampler(sampler_config: Path, base: str, records: Path, out_dir: Path) -> Path:
    """The PEFT adapter of a sampler trained on ``records`` (``out_dir/adapter``), trained unless finished."""
    from trainer.config import load_train_config
    from trainer.train import train

    if not (out_dir / "summary.json").is_file():
        config = load_train_config(sampler_config, base=str(Path(base).resolve()), data=[str(records.resolve())],
                                   output_dir=str(out_dir.resolve()))
        train(config, resume=True)
    return out_dir / "adapter"


def second_round(problems_path: Path, round1_dir: Path, round2_dir: Path, base: str, sampler_config: Path, *,
                 per_problem: int = 8, max_new_tokens: int = 384, temperature: float = 0.8,
                 batch_tokens: int = 131_072, time_limit: float | None = None, workers: int = 2) -> dict:
    """Round 2 into ``round2_dir``: the sampler (``round2_dir/sampler``), its samples, records and stats."""
    records = round1_dir / "records.jsonl"
    if not records.is_file():
        raise FileNotFoundError(f"{records}: round 2 trains its sampler on round 1's records; build round 1 first")
    round2_dir.mkdir(parents=True, exist_ok=True)
    adapter = train_sampler(sampler_config, base, records, round2_dir / "sampler")
    sample(problems_path, base, round2_dir / "samples.jsonl", samples=per_problem, temperature=temperature,
           max_new_tokens=max_new_tokens, batch_tokens=batch_tokens, time_limit=time_limit, adapter=str(adapter))
    return filter_corpus(problems_path, round2_dir / "samples.jsonl", round2_dir, workers=workers)
