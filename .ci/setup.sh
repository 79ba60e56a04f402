#!/usr/bin/env bash
# Installs ragtrail and everything it needs into ./.venv on a fresh machine (idempotent).
# torch==2.13.0 goes first: it is the CPU wheel on disk; an unpinned torch would pull a CUDA build.
# llama-cpp-python has no wheel for this platform and compiles (about 7 minutes the first time;
# pip's wheel cache makes later installs fast).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q torch==2.13.0
CMAKE_ARGS=${CMAKE_ARGS:-"-DGGML_NATIVE=OFF"} .venv/bin/python -m pip install -q -c configs/constraints.txt -e '.[dev]'
