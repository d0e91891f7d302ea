"""Latency benchmark: seconds of model time per module and tokens/s on the example package.

    python -m eval.latency --model 1.5b          # writes eval/results/latency-1.5b.{json,md}

Runs the engine over every module of examples/shopkit (a temp copy; one attempt, no repair), so the
numbers are model time for one prompt per module, plus the validation wall time beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
from pathlib import Path

from pytest_utgen.config import load_config
from pytest_utgen.engine import Engine
from pytest_utgen.model_store import MODELS

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "shopkit"


def machine() -> str:
    """CPU model and core count, for the record."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def run(model: str, lora: str | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "shopkit"
        shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("utgen", "__pycache__"))
        config = load_config(project, {"model": model, "lora": lora, "max_attempts": 1, "reruns": 1})
        report = Engine(config, on_progress=print, select_all=True).run()
    rows = []
    for m in report.modules:
        rows.append({
            "module": m.module,
            "lines": len(Path(m.path.replace(str(project), str(EXAMPLE))).read_text().splitlines()),
            "model_seconds": round(m.model_seconds, 2),
            "total_seconds": round(m.seconds, 2),
            "prompt_tokens": m.prompt_tokens,
            "completion_tokens": m.completion_tokens,
            "decode_tokens_per_s": round(m.completion_tokens / m.model_seconds, 1) if m.model_seconds else None,
            "kept": m.tests_kept,
        })
    seconds = [r["model_seconds"] for r in rows]
    return {
        "command": f"python -m eval.latency --model {model} --lora {lora}",
        "machine": machine(),
        "model": report.model_id,
        "model_sha256": report.model_sha256,
        "modules": rows,
        "model_seconds_p50": statistics.median(seconds),
        "model_seconds_max": max(seconds),
        "created": report.created,
    }


def to_markdown(result: dict) -> str:
    lines = [
        f"# Latency: {result['model']}",
        "",
        f"Command: `{result['command']}`  ",
        f"Machine: {result['machine']}  ",
        f"Date: {result['created']}",
        "",
        "| module | lines | model s | total s | prompt tok | completion tok | tok/s (incl. prompt) | kept |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["modules"]:
        lines.append(
            f"| {r['module']} | {r['lines']} | {r['model_seconds']} | {r['total_seconds']} | {r['prompt_tokens']} "
            f"| {r['completion_tokens']} | {r['decode_tokens_per_s']} | {r['kept']} |"
        )
    lines += ["", f"Median model seconds per module: {result['model_seconds_p50']:.1f}; "
                  f"max {result['model_seconds_max']:.1f}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="1.5b")
    parser.add_argument("--lora", default="bundled", help="'bundled' (our adapter), 'none', or a GGUF path")
    parser.add_argument("--out", default=str(REPO / "eval" / "results"))
    args = parser.parse_args(argv)
    result = run(args.model, args.lora)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    label = args.model if args.model.lower() in MODELS else Path(args.model).stem
    name = f"latency-{label}" + ("" if args.lora == "none" else "-lora")
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{name}.md").write_text(to_markdown(result))
    print(to_markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
