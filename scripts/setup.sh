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
# llama-cpp-python compiles llama.cpp (~5 min on 2 cores, once). A native build (GGML_NATIVE)
# targets this CPU's AMX and AVX-512 units, and its decode crashes with SIGSEGV in this sandbox;
# AVX2 code runs everywhere x86-64-v3 does.
if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
    -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    .venv/bin/python -m pip install --quiet --no-cache-dir 'llama-cpp-python>=0.3.30,<0.4'
fi
.venv/bin/python -m pip install --quiet -e '.[test]'
