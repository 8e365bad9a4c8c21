#!/usr/bin/env bash
# Creates ./.venv and installs townsquare with its test extras (idempotent; fast when done before).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
# torch first, pinned: this machine carries the CPU wheel of 2.13.0; a bare range would let pip
# fetch a multi-GB CUDA build. (A dependency: the default embedder's one-time ONNX export, and training.)
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -e '.[test]'
