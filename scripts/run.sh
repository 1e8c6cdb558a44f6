#!/usr/bin/env bash
# The README's first command: set up a fresh Debian 12 machine (system packages, models,
# release build) and start the gateway. Idempotent: on a warm machine it only starts it.
# Extra arguments go to `frontline serve` (e.g. --config frontline.toml --sip-port 5080).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh --gateway-only
scripts/build.sh
exec target/release/frontline serve "$@"
