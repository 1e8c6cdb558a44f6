#!/usr/bin/env bash
# The README's second command: set up a fresh Debian 12 machine the same way as run.sh,
# then run the whole test suite: unit tests of the sans-IO cores and integration tests that
# call the real gateway with real SIP peers (sipp, baresip) and real whisper.
# Idempotent. Extra arguments go to `cargo test` (e.g. a test name filter).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
scripts/build.sh
# Integration tests start whole gateways (each loads whisper) and real peers, and judge what
# a caller hears: run one at a time, so no test's media clock competes with another's
# recognizer for the 2 cores (two at a time made the Mandarin call flaky under load).
cargo test --release --locked -- --test-threads="${FRONTLINE_TEST_THREADS:-1}" "$@"
# A whole run (no filter) also fuzzes every parser of network input for a bounded time
# (scripts/fuzz.sh, FUZZ_SECONDS per target): a crash fails it.
if [ $# -eq 0 ]; then
  scripts/fuzz.sh
fi
