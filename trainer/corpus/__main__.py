"""``python -m trainer.corpus build`` — the whole corpus from scratch; or one stage at a time:

    python -m trainer.corpus problems            # MBPP + stdlib + PyPI problems -> problems.jsonl
        [--corpus v2]                            #   ... and whole pinned distributions (stats per source)
    python -m trainer.corpus sample --base HF    # candidate tests from the base model (GPU) -> samples.jsonl
        [--adapter PEFT_DIR|LORA.gguf]           #   ... or from base + a fine-tuned adapter (expert iteration)
    python -m trainer.corpus filter              # execution filter + mutation ranking -> records.jsonl
    python -m trainer.corpus round2 --base HF    # expert iteration: a sampler trained on DIR/records.jsonl,
                                                 #   sampled and filtered again -> DIR-r2/records.jsonl

``build --rounds 2 --base HF`` runs both rounds (the shipped adapter's corpus) in one command.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .problems import CORPORA, REPO, build_problems, problem_stats, write_problems

DEFAULT_DIR = REPO / "trainer" / "cache" / "corpus"
SAMPLER_CONFIG = REPO / "trainer" / "configs" / "corpus-1.5b-qlora-3ep.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.corpus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", choices=["problems", "sample", "filter", "round2", "build"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="working directory of the corpus")
    parser.add_argument("--corpus", choices=CORPORA, default="v1",
                        help="problems: v1 (the shipped adapter's) or v2 (v1 and whole pinned distributions)")
    parser.add_argument("--problems", type=Path, help="problems.jsonl (default: DIR/problems.jsonl)")
    parser.add_argument("--samples", type=Path, help="samples.jsonl (default: DIR/samples.jsonl)")
    parser.add_argument("--base", help="HF folder of the base model, for sampling")
    parser.add_argument("--adapter",
                        help="PEFT adapter folder or GGUF LoRA adapter, merged into the base for sampling "
                             "(expert iteration)")
    parser.add_argument("--per-problem", type=int, default=4, help="samples per problem")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--batch-tokens", type=int, default=131_072,
                        help="prompt tokens (times samples) per generation batch")
    parser.add_argument("--max-new-tokens", type=int, default=768,
                        help="token limit per sample (a sample that reaches it is skipped by the filter)")
    parser.add_argument("--time-limit", type=float, help="stop sampling after this many seconds (resumable)")
    parser.add_argument("--workers", type=int, default=2, help="parallel filter processes")
    parser.add_argument("--rounds", type=int, choices=[1, 2], default=1,
                        help="build: 2 adds the expert-iteration round (round2)")
    parser.add_argument("--round2-dir", type=Path, help="working directory of round 2 (default: DIR-r2)")
    parser.add_argument("--sampler-config", type=Path, default=SAMPLER_CONFIG,
                        help="trainer config of round 2's sampler (trained on round 1's records)")
    parser.add_argument("--round2-per-problem", type=int, default=8, help="round 2: samples per problem")
    parser.add_argument("--round2-max-new-tokens", type=int, default=384, help="round 2: token limit per sample")
    args = parser.parse_args(argv)
    if args.stage in ("sample", "round2", "build") and not args.base:
        parser.error(f"{args.stage} samples the model: it needs --base (an HF folder of the base model)")
    problems_path = args.problems or args.dir / "problems.jsonl"
    samples_path = args.samples or args.dir / "samples.jsonl"
    if args.stage in ("problems", "build"):
        problems = build_problems(args.dir, args.corpus)
        write_problems(problems, problems_path)
        stats = problem_stats(problems)
        (args.dir / "problem_stats.json").write_text(json.dumps(stats, indent=2) + "\n", encoding="utf-8")
        print(f"{len(problems)} problems ({stats['pypi_modules']} modules of {stats['pypi_distributions']} PyPI "
              f"distributions) -> {problems_path}, stats in {args.dir / 'problem_stats.json'}")
    if args.stage in ("sample", "build"):
        from .sample import sample

        stats = sample(problems_path, args.base, samples_path, samples=args.per_problem,
                       temperature=args.temperature, time_limit=args.time_limit,
                       adapter=args.adapter, batch_tokens=args.batch_tokens,
                       max_new_tokens=args.max_new_tokens)
        print(json.dumps(stats))
    if args.stage in ("filter", "build"):
        from .filter import filter_corpus

        stats = filter_corpus(problems_path, samples_path, args.dir, workers=args.workers)
        print(json.dumps(stats, indent=2))
    if args.stage == "round2" or (args.stage == "build" and args.rounds == 2):
        from .rounds import second_round

        round2_dir = args.round2_dir or args.dir.with_name(args.dir.name + "-r2")
        stats = second_round(problems_path, args.dir, round2_dir, args.base, args.sampler_config,
                             per_problem=args.round2_per_problem, max_new_tokens=args.round2_max_new_tokens,
                             temperature=args.temperature, batch_tokens=args.batch_tokens,
                             time_limit=args.time_limit, workers=args.workers)
        print(json.dumps(stats, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
