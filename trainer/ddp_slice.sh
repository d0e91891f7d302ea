#!/usr/bin/env bash
# On a 2-GPU device machine (issue 15, item 4): the same fixed-step training slice with `accelerate launch`
# on 1 process and on 2 (DDP), at the same effective batch; summaries and loss logs go to $OUT.
#   WEIGHTS=random (default): the 1.5B's shapes with random weights, LoRA in bf16 on MBPP records; needs
#     .stage/rand15 (config + tokenizer of the 1.5B, from its GGUF) and .stage/mbpp_records.jsonl.
#   WEIGHTS=real: the real 1.5B (its GGUF chunks m15_* and records.jsonl staged in /root/acc, as for
#     trainer/corpus/device_train.sh), QLoRA as the v2 runs (trainer/configs/ddp-slice-v2-1.5b.toml).
set -u
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpus.txt"
if [ "${WEIGHTS:-random}" = real ]; then
  source "$(dirname "$0")/corpus/device_base.sh"
  base=/root/acc/base15-hf config=trainer/configs/ddp-slice-v2-1.5b.toml data=(--data /root/acc/records.jsonl)
  per_step=2  # micro-batches of 8 per optimizer step on one GPU: 16 sequences
else
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
  base=/root/rand15-hf config=trainer/configs/ddp-slice-1.5b.toml data=()
  per_step=4  # micro-batches of 4 per optimizer step on one GPU: 16 sequences
fi
for n in 1 2; do
  accumulation=$((per_step / n))
  timeout 240 accelerate launch --num_processes "$n" --num_machines 1 --mixed_precision no --dynamo_backend no \
    $([ "$n" -gt 1 ] && echo --multi_gpu) -m trainer --config "$config" "${data[@]}" \
    --base "$base" --output-dir "/root/ddp$n" --gradient-accumulation "$accumulation" 2>&1 \
    | grep -E "^(examples|step|\{|  \"|\})|Error|error" | tee "$OUT/train-$n-gpu.log"
  cp "/root/ddp$n/summary.json" "$OUT/summary-$n-gpu.json"
  cp "/root/ddp$n/loss_log.json" "$OUT/loss-$n-gpu.json"
done
ls -la "$OUT"
