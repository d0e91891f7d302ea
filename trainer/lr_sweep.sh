#!/usr/bin/env bash
# LR sweep on the device: short QLoRA runs, one per learning rate; summaries and loss logs to $OUT.
# usage: trainer/lr_sweep.sh CONFIG BASE DATA STEPS LR...
set -u
config=$1 base=$2 data=$3 steps=$4; shift 4
for lr in "$@"; do
  python3 -m trainer --config "$config" --base "$base" --data "$data" --output-dir "/root/acc/lr$lr" \
    --max-steps "$steps" --learning-rate "$lr" 2>&1 | grep -E "^(examples|step|\{|  \"|\})|Error|error" | tee "$OUT/lr$lr.log"
  cp "/root/acc/lr$lr/summary.json" "$OUT/summary-lr$lr.json" 2>/dev/null
  cp "/root/acc/lr$lr/loss_log.json" "$OUT/loss-lr$lr.json" 2>/dev/null
done
