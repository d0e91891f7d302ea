#!/usr/bin/env bash
# On the GPU machine, once /root/acc holds the 1.5B GGUF chunks (m15_*), grpo/ (python -m trainer.grpo
# prepare) and the adapter to start from, with mutmut's wheels in /root/site: GRPO steps on the execution
# reward (resumable: each call continues the run), the log and the GGUF adapter as it stands to $OUT, the
# adapter in 15 MiB parts (cat adapter.gguf.part_* > adapter.gguf).
#   INIT=/root/acc/v2self.gguf  STEPS=40  LIMIT=480 (seconds after which no step starts)  LR=4e-5
#   PENALTY=0.5 (reward lost per share of a file's tests that fail on the real code)
#   GATE=1 (no kill credit for a file with a failing test)
set -u
source "$(dirname "$0")/corpus/device_base.sh"
[ -d /root/acc/grpo/roots ] || { mkdir -p /root/acc/grpo/roots && tar -xzf /root/acc/grpo/roots.tar.gz -C /root/acc/grpo/roots; }
python3 -m trainer.grpo train --base /root/acc/base15-hf --init-adapter "${INIT:-/root/acc/v2self.gguf}" \
  --problems /root/acc/grpo/problems.jsonl --root-base /root/acc/grpo/roots --out /root/acc/grpo-run \
  --steps "${STEPS:-40}" --time-limit "${LIMIT:-480}" --learning-rate "${LR:-4e-5}" \
  --fail-penalty "${PENALTY:-0.5}" $([ "${GATE:-0}" = 1 ] && echo --all-pass-gate) 2>&1 \
  | grep -vE "Warning|warn" | tee "$OUT/grpo.log"
cp /root/acc/grpo-run/log.jsonl /root/acc/grpo-run/summary.json "$OUT/" 2>/dev/null
[ -f /root/acc/grpo-run/adapter.gguf ] && split -b 15M /root/acc/grpo-run/adapter.gguf "$OUT/adapter.gguf.part_"
ls -la "$OUT"
