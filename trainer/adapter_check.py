"""Check that a GGUF LoRA adapter does in llama.cpp what the PEFT adapter does in transformers.

For each prompt, the shift the adapter causes in the next-token logits is computed twice:
llama.cpp (base GGUF + adapter GGUF) minus llama.cpp (base GGUF), and PEFT (adapter on) minus
PEFT (adapter off). The two shift vectors must point the same way (cosine) and have the same size
(norm ratio). Tolerances:

* F32 base GGUF (the tiny test model): cosine >= 0.99 and ratio in [0.95, 1.05]; both sides run the
  same weights in float32, so only summation order differs.
* Q4_K_M base GGUF: cosine >= 0.90 and ratio in [0.8, 1.25]. The HF side runs the dequantized Q4
  weights in bf16/fp32 while llama.cpp multiplies quantized blocks with 8-bit-quantized
  activations; that noise is of the order of a few percent of the logits, while a correct adapter
  moves them coherently, so a wrong tensor name, transpose or scale drops the cosine far below 0.9.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOLERANCES = {"f32": (0.99, 0.95, 1.05), "q4": (0.90, 0.8, 1.25)}


@dataclass
class ShiftComparison:
    """Agreement of the logit shifts on one prompt."""

    cosine: float
    norm_ratio: float
    shift_norm_peft: float

    def within(self, kind: str) -> bool:
        min_cos, low, high = TOLERANCES[kind]
        return self.cosine >= min_cos and low <= self.norm_ratio <= high


def llama_last_logits(model_path: Path, token_ids: list[int], lora_path: Path | None = None) -> np.ndarray:
    """Next-token logits after ``token_ids`` from llama.cpp (optionally with a LoRA adapter)."""
    from llama_cpp import Llama

    llama = Llama(model_path=str(model_path), lora_path=str(lora_path) if lora_path else None,
                  n_ctx=max(512, len(token_ids) + 8), logits_all=True, n_threads=os.cpu_count(), verbose=False)
    llama.eval(token_ids)
    logits = np.array(llama.scores[llama.n_tokens - 1], dtype=np.float64)
    llama.close()
    return logits


def peft_last_logits(peft_model, token_ids: list[int], adapter: bool) -> np.ndarray:
    """Next-token logits after ``token_ids`` from the PEFT model, adapter on or off."""
    import contextlib

    import torch

    device = next(peft_model.parameters()).device
    ids = torch.tensor([token_ids], device=device)
    context = contextlib.nullcontext() if adapter else peft_model.disable_adapter()
    with torch.no_grad(), context:
        logits = peft_model(input_ids=ids).logits[0, -1]
    return logits.float().cpu().numpy().astype(np.float64)


def compare_shifts(base_gguf: Path, adapter_gguf: Path, peft_model, token_ids: list[int]) -> ShiftComparison:
    """Cosine and norm ratio between the llama.cpp and PEFT logit shifts on one prompt."""
    shift_llama = llama_last_logits(base_gguf, token_ids, adapter_gguf) - llama_last_logits(base_gguf, token_ids)
    shift_peft = peft_last_logits(peft_model, token_ids, True) - peft_last_logits(peft_model, token_ids, False)
    norm_llama, norm_peft = np.linalg.norm(shift_llama), np.linalg.norm(shift_peft)
    cosine = float(shift_llama @ shift_peft / (norm_llama * norm_peft)) if norm_llama and norm_peft else 0.0
    return ShiftComparison(cosine, float(norm_llama / norm_peft) if norm_peft else float("inf"), float(norm_peft))

