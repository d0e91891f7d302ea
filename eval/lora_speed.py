"""Prompt and decode speed of the 1.5B with and without the bundled adapter, and with weight repacking off.

    python -m eval.lora_speed [--tokens 200]

llama.cpp repacks Q4_K weights into a faster CPU layout (the CPU_REPACK buffer), but a LoRA adapter cannot
be applied to repacked tensors, so with the adapter loaded those tensors stay in the plain layout ("lora for
'blk.N...' cannot use buft 'CPU_REPACK', fallback to CPU"). This prints decode tokens/s for: the stock model,
the stock model with repacking off, and the model with the adapter, on the same prompt: prompt tokens/s of
the first call (nothing cached), decode tokens/s of a second call whose prompt is already in the KV cache.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pytest_utgen.generate import LlamaCppBackend
from pytest_utgen.model_store import resolve_lora, resolve_model
from pytest_utgen.prompt import build_messages

from .latency import machine

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "shopkit" / "src" / "shopkit" / "pricing.py"


def rates(model: Path, lora: Path | None, tokens: int) -> tuple[int, float, float]:
    """Prompt tokens, prompt tokens/s (cold cache) and decode tokens/s (prompt cached) of one prompt."""
    backend = LlamaCppBackend(model, "speed", lora)
    messages = build_messages(EXAMPLE.read_text(), "shopkit.pricing")
    backend.count_tokens("")  # loads the model and repacks its weights: not timed
    started = time.perf_counter()
    first = backend.complete(messages, 1)
    prompt_rate = first.prompt_tokens / (time.perf_counter() - started)
    started = time.perf_counter()
    completion = backend.complete(messages, tokens)
    return first.prompt_tokens, prompt_rate, completion.completion_tokens / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--variant", choices=["stock", "stock-no-repack", "adapter"])
    args = parser.parse_args(argv)
    if args.variant is None:  # each variant in its own process: llama.cpp's model params are process state
        import subprocess

        print(f"machine: {machine()}; 1.5B Q4_K_M")
        for variant in ("stock", "stock-no-repack", "adapter"):
            subprocess.run([sys.executable, "-m", "eval.lora_speed", "--variant", variant,
                            "--tokens", str(args.tokens)], check=True)
        return 0
    if args.variant == "stock-no-repack":
        import llama_cpp.llama_cpp as low_level  # the module Llama() reads its defaults from

        defaults = low_level.llama_model_default_params

        def no_repack():
            params = defaults()
            params.use_extra_bufts = False  # what the adapter forces on its tensors
            return params

        low_level.llama_model_default_params = no_repack
    lora = resolve_lora("bundled", "1.5b") if args.variant == "adapter" else None
    prompt_tokens, prompt_rate, decode_rate = rates(resolve_model("1.5b").path, lora, args.tokens)
    print(f"  {args.variant:16s} prompt {prompt_rate:5.1f} tok/s ({prompt_tokens} tokens), "
          f"decode {decode_rate:5.1f} tok/s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
