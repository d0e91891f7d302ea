#!/usr/bin/env bash
# On the GPU machine: install carried wheels into /root/site (kept while the machine stays warm).
set -e
mkdir -p /root/acc
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /root/site .whl/*.whl
fi
[ -d .stage ] && cp -r .stage/. /root/acc/
ls -la /root/acc | tail -n +2
