#!/usr/bin/env bash
# Builds the release binary (the one profile everything uses: whisper is unusably slow in
# debug) and installs the models. Both steps skip work already done.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
if ! command -v cargo >/dev/null; then
  echo "build: cargo not found; install Rust with rustup (https://rustup.rs) and retry" >&2
  exit 1
fi
echo "build: cargo build --release (a clean build takes about 6 minutes on 2 cores)"
cargo build --release --locked --quiet
target/release/frontline models install --models "${FRONTLINE_MODELS:-models}"
# Every line known before a call, rendered once with the default voices: a gateway start then
# reads them from disk instead of spending minutes of CPU on Kokoro's Mandarin.
target/release/frontline models prerender --models "${FRONTLINE_MODELS:-models}"
