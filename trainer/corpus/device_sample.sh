#!/usr/bin/env bash
# On the GPU machine, once the 1.5B GGUF chunks (m15_*) and corpus-problems.jsonl are in /root/acc:
# verify the GGUF, dequantize it once, sample candidate tests (resumable), return them in $OUT.
set -u
source "$(dirname "$0")/device_base.sh"
python3 -m trainer.corpus sample --problems /root/acc/corpus-problems.jsonl --samples /root/acc/samples.jsonl \
  --base /root/acc/base15-hf --time-limit "${LIMIT:-480}" 2>&1 | grep -vE "Warning|warn" | tail -n 30 | tee "$OUT/sample.log"
gzip -c /root/acc/samples.jsonl > "$OUT/samples.jsonl.gz"
