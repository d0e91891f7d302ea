"""Candidate test files: several samples per problem from the base model (or the base model with a
PEFT LoRA adapter merged in, for expert iteration), batched through transformers.

Runs where a GPU is (the device tool); resumable: problems already in the output file are skipped, so
a time-limited call can be continued by the next one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def done_task_ids(path: Path) -> set[str]:
    """Problems that already have samples in ``path``."""
    if not path.is_file():
        return set()
    return {json.loads(line)["task_id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()}


def sample(
    problems_path: Path,
    base: str,
    out_path: Path,
    samples: int = 4,
    temperature: float = 0.8,
    top_p: float = 0.95,
    max_new_tokens: int = 768,
    prompts_per_batch: int = 128,
    batch_tokens: int = 131_072,
    time_limit: float | None = None,
    seed: int = 1234,
    adapter: str | None = None,
) -> dict:
    """Append ``samples`` completions per problem to ``out_path``; returns counts and throughput.

    A batch holds at most ``prompts_per_batch`` prompts and ``batch_tokens`` prompt tokens (all samples).
    After ``time_limit`` seconds no new batch starts (each call makes progress; rerun to continue).
    ``adapter``: a PEFT adapter folder (the trainer's ``OUTPUT_DIR/adapter``) or a GGUF LoRA adapter (the
    shipped one; converted next to ``out_path``), merged into the base.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
    if adapter:
        from peft import PeftModel

        from trainer.gguf_io import peft_adapter_dir

        peft_dir = peft_adapter_dir(Path(adapter), out_path.parent)
        model = PeftModel.from_pretrained(model, str(peft_dir)).merge_and_unload()
    model.to(device).eval()
    stop_ids = [i for i in (tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.eos_token_id) if i is not None]
    not_generated = torch.tensor(stop_ids + [tokenizer.pad_token_id], device=device)
    done = done_task_ids(out_path)
    rows = [json.loads(line) for line in problems_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    todo = [r for r in rows if r["task_id"] not in done]
    texts = {r["task_id"]: tokenizer.apply_chat_template(r["messages"], add_generation_prompt=True, tokenize=False)
             for r in todo}
    todo.sort(key=lambda r: len(texts[r["task_id"]]))
    lengths = {r["task_id"]: len(tokenizer(texts[r["task_id"]])["input_ids"]) for r in todo}
    new_tokens = 0
    generated = 0
    start = 0
    while start < len(todo):
        end = start + 1
        while (end < len(todo) and end - start < prompts_per_batch
               and (end + 1 - start) * samples * lengths[todo[end]["task_id"]] <= batch_tokens):
            end += 1
        batch, start = todo[start:end], end
        encoded = tokenizer([texts[r["task_id"]] for r in batch], return_tensors="pt", padding=True).to(device)
        with torch.no_grad():
            output = model.generate(**encoded, do_sample=True, temperature=temperature, top_p=top_p,
                                    max_new_tokens=max_new_tokens, num_return_sequences=samples,
                                    eos_token_id=stop_ids, pad_token_id=tokenizer.pad_token_id)
        completions = output[:, encoded["input_ids"].shape[1]:]
        generated_tokens = (~torch.isin(completions, not_generated)).sum(dim=1).tolist()
        with open(out_path, "a", encoding="utf-8") as handle:
            for index, row in enumerate(batch):
                for k in range(samples):
                    row_index = index * samples + k
                    count = generated_tokens[row_index]
                    new_tokens += count
                    text = tokenizer.decode(completions[row_index], skip_special_tokens=True)
                    handle.write(json.dumps({"task_id": row["task_id"], "sample": k, "text": text,
                                             "tokens": count, "max_new_tokens": max_new_tokens}) + "\n")
        generated += len(batch)
        print(f"sampled {generated}/{len(todo)} problems, {new_tokens} tokens, "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        if time_limit is not None and time.perf_counter() - started > time_limit:
            break
    seconds = time.perf_counter() - started
    return {"problems_sampled": generated, "problems_left": len(todo) - generated, "new_tokens": new_tokens,
            "seconds": round(seconds, 1), "tokens_per_s": round(new_tokens / seconds, 1),
            "samples": samples, "temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens,
            "adapter": adapter, "device": torch.cuda.get_device_name() if device == "cuda" else "cpu"}
