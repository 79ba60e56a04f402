#!/usr/bin/env bash
# Installs ragtrail and everything it needs into ./.venv on a fresh machine (idempotent).
# torch==2.13.0 goes first: it is the CPU wheel on disk; an unpinned torch would pull a CUDA build.
# llama-cpp-python has no wheel for this platform and compiles (about 7 minutes the first time).
#
# llama.cpp build: on a CPU with AVX-512 (F, BW, VL, VNNI, BF16, VBMI) it is built for those instructions
# (prompt prefill about 1.5x faster than the portable AVX2 build on this machine); elsewhere, or when the
# fast build fails its smoke test (load the model, generate a few tokens), the portable AVX2 build is
# installed. CMAKE_ARGS set by the caller always wins. (-DGGML_NATIVE=ON also turns on AMX, and that
# build segfaulted at model load here, so it is never used.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PORTABLE="-DGGML_NATIVE=OFF"
AVX512="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=ON \
-DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON"
LLAMA=$(grep -E '^llama-cpp-python==' configs/constraints.txt)

has_avx512() {
  local flag
  for flag in avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512vbmi avx_vnni; do
    grep -qw "$flag" /proc/cpuinfo 2>/dev/null || return 1
  done
  return 0
}

built_with_avx512() {
  .venv/bin/python -c "import sys, llama_cpp; sys.exit('AVX512 = 1' not in llama_cpp.llama_print_system_info().decode())" \
    2>/dev/null
}

smoke_test() {  # the embedded model loads and generates (a bad build segfaults here, not in a user's session)
  .venv/bin/python -c "
from rag.config import LLMConfig
from rag.llm import LlamaCppLLM
out = LlamaCppLLM(LLMConfig(n_ctx=512)).complete([{'role': 'user', 'content': 'Say OK.'}], max_tokens=4)
assert out.completion_tokens > 0, out
" >/dev/null 2>&1
}

reinstall_llama() {  # pip's wheel cache does not know CMAKE_ARGS: build afresh
  CMAKE_ARGS="$1" .venv/bin/python -m pip install -q --force-reinstall --no-deps --no-cache-dir "$LLAMA"
}

# The browser test (tests/rag/test_serve_browser.py) drives Debian's Chromium with Playwright, whose own browser
# download is not reachable here: install it when it is missing and this is root on a Debian-like system.
if command -v chromium >/dev/null 2>&1; then
  :
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; } \
    || echo "setup: could not install chromium; the browser test needs it (apt-get install -y chromium)" >&2
else
  echo "setup: chromium is missing and this is not root with apt-get: the browser test is skipped (in CI it fails)" \
    "until it is installed (sudo apt-get install -y chromium)" >&2
fi

[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
if [ -n "${CMAKE_ARGS:-}" ]; then
  .venv/bin/python -m pip install -q -c configs/constraints.txt -e '.[dev]'
  exit 0
fi
MARKER=.venv/.ragtrail-llama-portable  # left when the AVX-512 build failed here: do not try again
if has_avx512 && [ ! -e "$MARKER" ]; then
  fast=1
  if ! CMAKE_ARGS="$AVX512" .venv/bin/python -m pip install -q -c configs/constraints.txt -e '.[dev]'; then
    fast=0
  elif ! built_with_avx512; then
    echo "setup: building llama.cpp for AVX-512 (about 7 minutes)" >&2
    reinstall_llama "$AVX512" || fast=0
  fi
  if [ "$fast" = 1 ] && smoke_test; then
    exit 0
  fi
  echo "setup: the AVX-512 llama.cpp build failed (to build or its smoke test); installing the portable build" >&2
  touch "$MARKER" 2>/dev/null || true
  CMAKE_ARGS="$PORTABLE" .venv/bin/python -m pip install -q -c configs/constraints.txt -e '.[dev]'
  reinstall_llama "$PORTABLE"
  smoke_test || { echo "setup: the portable llama.cpp build fails its smoke test too" >&2; exit 1; }
else
  CMAKE_ARGS="$PORTABLE" .venv/bin/python -m pip install -q -c configs/constraints.txt -e '.[dev]'
fi
