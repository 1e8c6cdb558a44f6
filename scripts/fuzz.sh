#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ (cargo-fuzz, libFuzzer, address sanitizer) for a bounded
# time each: FUZZ_SECONDS (default 30). A crash fails the run and leaves its input in
# fuzz/artifacts/<target>/; replay it with `cargo +nightly fuzz run <target> <file>` and make it
# a regression test before fixing. Seeds come from the repo's own SIP torture messages and a
# few hand-made packets; the corpus each run grows is kept in fuzz/corpus/ (not committed).
# Needs a nightly toolchain; cargo-fuzz is installed from crates.io when missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"
seconds="${FUZZ_SECONDS:-30}"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  echo "fuzz: SKIPPED: no nightly toolchain (install one with: rustup toolchain install nightly)" >&2
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz (crates.io)..."
  cargo install cargo-fuzz --locked
fi

# Seeds: each RFC 4475 torture message over UDP (first byte 0) and over TCP (1), and its SDP
# body; an RTP packet of each kind the gateway reads (PCMU, PCMA, a telephone-event).
python3 - <<'PY'
import pathlib, struct
root = pathlib.Path("..")
seeds = pathlib.Path("seeds")
for t in ["sip_message", "sdp_offer", "rtp_packet", "sip_info", "whip_offer", "opus_in"]:
    (seeds / t).mkdir(parents=True, exist_ok=True)
for msg in sorted((root / "tests" / "sip-torture").glob("*.sip")):
    raw = msg.read_bytes()
    (seeds / "sip_message" / f"{msg.stem}-udp").write_bytes(b"\0" + raw)
    (seeds / "sip_message" / f"{msg.stem}-tcp").write_bytes(b"\1" + raw)
    head, sep, body = raw.partition(b"\r\n\r\n")
    if sep and b"v=0" in body:
        (seeds / "sdp_offer" / msg.stem).write_bytes(body)
        (seeds / "whip_offer" / msg.stem).write_bytes(body)
def rtp(pt, payload, marker=False):
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, 1, 160, 0x1234) + payload
(seeds / "rtp_packet" / "pcmu").write_bytes(rtp(0, bytes(range(160))))
(seeds / "rtp_packet" / "pcma").write_bytes(rtp(8, bytes(range(160))))
(seeds / "rtp_packet" / "dtmf-5").write_bytes(rtp(101, bytes([5, 0x8a, 0x03, 0x20]), True))
(seeds / "sip_info" / "relay").write_bytes(b"application/dtmf-relay\nSignal=5\r\nDuration=160\r\n")
(seeds / "sip_info" / "bare").write_bytes(b"application/dtmf\n#")
# One 20 ms Opus frame of silence in each of a few sequence orders.
(seeds / "opus_in" / "silence").write_bytes(b"\x00\x01\x03\xf8\xff\xfe" + b"\x00\x02\x03\xf8\xff\xfe" + b"\x00\x05\x03\xf8\xff\xfe")
PY

targets=$(cargo +nightly fuzz list)
echo "fuzz: building the targets (nightly, address sanitizer)..."
cargo +nightly fuzz build
for t in $targets; do
  mkdir -p "corpus/$t"
  echo "fuzz: $t for ${seconds} s"
  # -rss_limit_mb: the whole gateway is linked in; a target's own allocations stay small.
  cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=4096 -print_final_stats=1 2>&1 |
    grep -E '^(stat::number_of_executed_units|stat::new_units_added|==[0-9]+==ERROR|SUMMARY|Done|thread .* panicked)' || true
  # A crash leaves an artifact: that is the failure (the grep above only trims the log).
  if compgen -G "artifacts/$t/*" >/dev/null; then
    echo "fuzz: $t FOUND A CRASH: $(ls artifacts/"$t")" >&2
    exit 1
  fi
done
echo "fuzz: every target ran ${seconds} s without a crash"
