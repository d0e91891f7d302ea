#!/usr/bin/env bash
# On the GPU machine, once the 1.5B GGUF chunks (m15_*) and corpus-problems.jsonl are in /root/acc:
# verify the GGUF, dequantize it once, sample candidate tests (resumable), return them in $OUT.
set -u
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1
SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
cd /root/acc
if [ ! -f qwen15.gguf ]; then cat m15_* > qwen15.gguf && rm m15_*; fi
echo "$SHA  qwen15.gguf" | sha256sum -c - | tee "$OUT/sha256.txt" || exit 1
cd - >/dev/null
python3 -c "from pathlib import Path; from trainer.gguf_io import dequantize_gguf; \
dequantize_gguf(Path('/root/acc/qwen15.gguf'), Path('/root/acc/base15-hf'))" 2>&1 | tail -1
python3 -m trainer.corpus sample --problems /root/acc/corpus-problems.jsonl --samples /root/acc/samples.jsonl \
  --base /root/acc/base15-hf --time-limit "${LIMIT:-480}" 2>&1 | grep -vE "Warning|warn" | tail -n 30 | tee "$OUT/sample.log"
gzip -c /root/acc/samples.jsonl > "$OUT/samples.jsonl.gz"
