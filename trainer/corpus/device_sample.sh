#!/usr/bin/env bash
# On the GPU machine, once the 1.5B GGUF chunks (m15_*) and corpus-problems.jsonl are in /root/acc:
# verify the GGUF, dequantize it once, sample candidate tests (resumable), return them in $OUT.
#   ADAPTER=/root/acc/RUN/adapter   sample from base + this PEFT adapter (expert iteration); default: base
#   SAMPLES=samples.jsonl           output file in /root/acc (returned gzipped)
#   PER_PROBLEM=4  LIMIT=480        samples per problem; seconds after which no new batch starts
#   MAX_NEW_TOKENS=768 BATCH_TOKENS=131072   token limit per sample; prompt tokens x samples per batch
set -u
source "$(dirname "$0")/device_base.sh"
SAMPLES=${SAMPLES:-samples.jsonl}
python3 -m trainer.corpus sample --problems /root/acc/corpus-problems.jsonl --samples "/root/acc/$SAMPLES" \
  --base /root/acc/base15-hf ${ADAPTER:+--adapter "$ADAPTER"} --per-problem "${PER_PROBLEM:-4}" \
  --batch-tokens "${BATCH_TOKENS:-131072}" --max-new-tokens "${MAX_NEW_TOKENS:-768}" --time-limit "${LIMIT:-480}" 2>&1 | grep -vE "Warning|warn" | tail -n 30 | tee "$OUT/sample.log"
gzip -c "/root/acc/$SAMPLES" > "$OUT/$SAMPLES.gz"
