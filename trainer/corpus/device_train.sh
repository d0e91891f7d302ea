#!/usr/bin/env bash
# On the GPU machine, once the 1.5B GGUF chunks (m15_*) and records.jsonl are in /root/acc: verify the
# GGUF, dequantize it once, QLoRA on the corpus (each run resumes from its last checkpoint), and return
# every run's logs and adapter in $OUT as one tar in 15 MiB parts (cat runs.tar.part_* | tar x).
#   RUNS="lr2e-4=2e-4 lr1e-4=1e-4"   runs as NAME=LR (LR empty: the config's); default: one run "corpus-run"
#   LIMIT=300                        seconds per run
#   CONFIG=trainer/configs/...toml   default: corpus-1.5b-qlora.toml
set -u
source "$(dirname "$0")/device_base.sh"
rm -rf /root/acc/out && mkdir -p /root/acc/out
for run in ${RUNS:-corpus-run=}; do
  name=${run%%=*}; lr=${run#*=}; dir=/root/acc/$name
  RESUME=""; [ -d "$dir/checkpoint" ] && RESUME="--resume"
  mkdir -p "/root/acc/out/$name"
  timeout "${LIMIT:-540}" python3 -m trainer --config "${CONFIG:-trainer/configs/corpus-1.5b-qlora.toml}" --base /root/acc/base15-hf \
    --data /root/acc/records.jsonl --output-dir "$dir" ${lr:+--learning-rate "$lr"} $RESUME 2>&1 \
    | grep -E "^(examples|step|eval|\{|  \"|\})|Error|error" | tee "/root/acc/out/$name/train.log"
  for f in summary.json loss_log.json loss.png adapter.gguf; do cp "$dir/$f" "/root/acc/out/$name/" 2>/dev/null; done
done
tar -C /root/acc/out -cf - . | split -b 15M - "$OUT/runs.tar.part_"
ls -la "$OUT"
