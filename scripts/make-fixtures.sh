#!/usr/bin/env bash
# Regenerates every synthesized speech fixture in audio-fixtures/ from text.
#
# Deterministic: Debian 12's espeak-ng 1.51 has no randomness, and sox runs with
# dither off (-D) so the same inputs always give byte-identical WAVs. Run it after
# changing a line below and commit the WAVs together with audio-fixtures/README.md.
#
# Output format (what the tests and the gateway's 16 kHz pipeline expect):
# 16 kHz, mono, 16-bit PCM WAV; espeak's own leading/trailing silence is trimmed and
# replaced with exactly 0.3 s before and 1.5 s after the speech, so a voice-activity
# endpointer sees a clear start and a clear end of the utterance.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/audio-fixtures"
mkdir -p "$out"

for tool in espeak-ng sox; do
  command -v "$tool" >/dev/null || { echo "make-fixtures: $tool missing; run scripts/setup.sh" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# synth NAME VOICE SPEED TEXT
synth() {
  local name="$1" voice="$2" speed="$3" text="$4"
  local raw="$tmp/$name.raw.wav"
  espeak-ng -v "$voice" -s "$speed" -w "$raw" "$text"
  # silence 1 ... trims leading quiet; reverse/silence/reverse trims trailing quiet;
  # pad then adds back a fixed amount. -D: no dither (keeps output reproducible).
  sox -D "$raw" -r 16000 -c 1 -b 16 -e signed-integer "$out/$name.wav" \
    silence 1 0.02 0.5% reverse silence 1 0.02 0.5% reverse pad 0.3 1.5
  printf 'make-fixtures: %-18s %5.2f s  %s\n' "$name.wav" "$(soxi -D "$out/$name.wav")" "$text"
}

# English (telecom IVR requests). The transcripts are listed in audio-fixtures/README.md.
synth en_balance en-us 150 "What is my account balance?"
synth en_data    en-us 150 "How much data do I have left this month?"
synth en_agent   en-us 150 "I want to speak to a real person."
synth en_cancel  en-us 150 "I want to cancel my contract."

# Mandarin. Debian's espeak-ng 1.51 reads Chinese characters wrongly (as English-ish
# pinyin with digits), but its cmn-latn-pinyin voice reads tone-numbered pinyin
# correctly. Syllables of one word are written together so they are spoken as one
# word (no pause between them), with tone sandhi applied by espeak. The 1.52 library
# (PyPI espeakng-loader) reading characters scored no better with whisper, so the
# fixtures need only the Debian package. Speeds were picked per sentence by measured
# whisper-base character error rate (see audio-fixtures/README.md).
synth zh_balance cmn-latn-pinyin 150 "wo3 xiang3 cha2yi2xia4 hua4fei4 yu2e2"            # 我想查一下话费余额
synth zh_data    cmn-latn-pinyin 120 "wo3 zhe4ge4yue4 hai2 sheng4 duo1shao3 liu2liang4"  # 我这个月还剩多少流量
synth zh_agent   cmn-latn-pinyin 150 "wo3 yao4 zhao3 ren2gong1 ke4fu2"                   # 我要找人工客服
