#!/usr/bin/env bash
# On the GPU machine, after the 1.5B GGUF chunks (m15_*) are in /root/acc: verify, dequantize,
# benchmark 0.5B/1.5B x LoRA/QLoRA at 2048 tokens, run QLoRA on MBPP records, return results in $OUT.
set -u
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1
LR=${LR:-5e-4} STEPS=${STEPS:-24}
(cd /root/acc && cat m15_* > qwen15.gguf && rm m15_* && sha256sum qwen15.gguf) | tee "$OUT/sha256.txt"
python3 -c "from pathlib import Path; from trainer.gguf_io import dequantize_gguf; \
dequantize_gguf(Path('/root/acc/qwen15.gguf'), Path('/root/acc/base15-hf'))" 2>&1 | tail -1
python3 -m trainer.bench --base /root/acc/base15-hf --name 1.5b --seq 2048 --steps 3 --out "$OUT/bench.json" 2>&1 | grep -E '^\{|Error'
python3 -m trainer.bench --base /root/acc/qwen05-config --random-init --name 0.5b --seq 2048 --steps 3 \
  --out "$OUT/bench.json" 2>&1 | grep -E '^\{|Error'
bash trainer/lr_sweep.sh trainer/configs/mbpp-1.5b-qlora.toml /root/acc/base15-hf /root/acc/mbpp_records.jsonl "$STEPS" "$LR"
split -b 15M "/root/acc/lr$LR/adapter.gguf" "$OUT/adapter.gguf.part_"
ls -la "$OUT"
