# Sourced by the device scripts: assemble the 1.5B GGUF from its chunks in /root/acc (once), check its
# sha256 (the result goes to $OUT/sha256.txt; a mismatch stops the caller) and dequantize it once to
# /root/acc/base15-hf for transformers.
export PYTHONPATH=/root/site:$PWD PYTHONUNBUFFERED=1
SHA=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
(cd /root/acc && { [ -f qwen15.gguf ] || { cat m15_* > qwen15.gguf && rm m15_*; }; } \
  && echo "$SHA  qwen15.gguf" | sha256sum -c -) | tee "$OUT/sha256.txt"
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
python3 -c "from pathlib import Path; from trainer.gguf_io import dequantize_gguf; \
dequantize_gguf(Path('/root/acc/qwen15.gguf'), Path('/root/acc/base15-hf'))" 2>&1 | tail -1
