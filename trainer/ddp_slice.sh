#!/usr/bin/env bash
# On a 2-GPU device machine (issue 15, item 4): the same fixed-step training slice with `accelerate launch`
# on 1 process and on 2 (DDP), at the same effective batch; summaries and loss logs go to $OUT.
# Needs .stage/rand15 (config + tokenizer of the 1.5B, from its GGUF) and .stage/mbpp_records.jsonl.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpus.txt"
python3 - <<'PY'
import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
torch.manual_seed(0)
config = AutoConfig.from_pretrained(".stage/rand15")
model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
model.save_pretrained("/root/rand15-hf")
AutoTokenizer.from_pretrained(".stage/rand15").save_pretrained("/root/rand15-hf")
print("random model saved:", sum(p.numel() for p in model.parameters()) / 1e6, "M parameters")
PY
for n in 1 2; do
  accumulation=$((4 / n))
  timeout 240 accelerate launch --num_processes "$n" --num_machines 1 --mixed_precision no --dynamo_backend no \
    $([ "$n" -gt 1 ] && echo --multi_gpu) -m trainer --config trainer/configs/ddp-slice-1.5b.toml \
    --base /root/rand15-hf --output-dir "/root/ddp$n" --gradient-accumulation "$accumulation" 2>&1 \
    | grep -E "^(examples|step|\{|  \"|\})|Error|error" | tee "$OUT/train-$n-gpu.log"
  cp "/root/ddp$n/summary.json" "$OUT/summary-$n-gpu.json"
  cp "/root/ddp$n/loss_log.json" "$OUT/loss-$n-gpu.json"
done
ls -la "$OUT"
