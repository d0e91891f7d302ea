#!/usr/bin/env bash
# On the GPU machine, once the 1.5B GGUF chunks (m15_*) and records.jsonl are in /root/acc: verify the
# GGUF, dequantize it once, QLoRA on the corpus (resumes from its last checkpoint), return results in $OUT.
set -u
source "$(dirname "$0")/device_base.sh"
RESUME=""; [ -d /root/acc/corpus-run/checkpoint ] && RESUME="--resume"
timeout "${LIMIT:-540}" python3 -m trainer --config trainer/configs/corpus-1.5b-qlora.toml --base /root/acc/base15-hf \
  --data /root/acc/records.jsonl --output-dir /root/acc/corpus-run $RESUME 2>&1 \
  | grep -E "^(examples|step|eval|\{|  \"|\})|Error|error" | tee "$OUT/train.log"
for f in summary.json loss_log.json loss.png; do cp "/root/acc/corpus-run/$f" "$OUT/" 2>/dev/null; done
[ -f /root/acc/corpus-run/adapter.gguf ] && split -b 15M /root/acc/corpus-run/adapter.gguf "$OUT/adapter.gguf.part_"
ls -la "$OUT"
