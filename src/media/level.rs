//! How loud a stretch of 16-bit audio is, and where the sound in a clip starts and ends.

/// Mean power in dB relative to full scale; -100 for digital silence.
pub fn loudness_dbfs(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return -100.0;
    }
    let power = pcm.iter().map(|&s| (s as f64 / 32768.0).powi(2)).sum::<f64>() / pcm.len() as f64;
    if power <= 1e-10 {
        -100.0
    } else {
        (10.0 * power.log10()) as f32
    }
}

/// Below this a 10 ms window is silence to [`trim_silence`]: far under the quietest speech
/// (Mandarin's sentence-final syllables, around -30 dBFS in a synthesized voice).
const SILENT_DBFS: f32 = -55.0;

/// The part of `pcm` (at `rate_hz`) from at most `lead_ms` before its first sound to at most
/// `tail_ms` after its last; an all-silent clip comes back empty.
pub fn trim_silence(pcm: &[i16], rate_hz: u32, lead_ms: u32, tail_ms: u32) -> &[i16] {
    let window = (rate_hz as usize / 100).max(1);
    let mut loud = pcm.chunks(window).enumerate().filter(|(_, w)| loudness_dbfs(w) > SILENT_DBFS).map(|(i, _)| i);
    let Some(first) = loud.next() else { return &[] };
    let last = loud.last().unwrap_or(first);
    let ms = |m: u32| m as usize * rate_hz as usize / 1000;
    let start = (first * window).saturating_sub(ms(lead_ms));
    let end = ((last + 1) * window + ms(tail_ms)).min(pcm.len());
    &pcm[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_is_minus_100_and_full_scale_is_near_zero() {
        assert_eq!(loudness_dbfs(&[0; 10]), -100.0);
        assert_eq!(loudness_dbfs(&[]), -100.0);
        assert!(loudness_dbfs(&[i16::MAX, i16::MIN].repeat(50)) > -0.1);
    }

    #[test]
    fn silent_ends_are_cut_to_what_was_asked_and_quiet_speech_is_kept() {
        // 16 kHz: 300 ms of silence, 200 ms of speech at -12 dBFS, 100 ms of a quiet final
        // syllable at -35 dBFS, 450 ms of silence with a little noise.
        let tone = |amp: f64, ms: usize| (0..16 * ms).map(|i| (amp * (i as f64 * 0.2).sin()) as i16).collect::<Vec<_>>();
        let mut clip = vec![0i16; 16 * 300];
        clip.extend(tone(8000.0, 200));
        clip.extend(tone(800.0, 100));
        clip.extend(tone(20.0, 450));
        let kept = trim_silence(&clip, 16_000, 30, 200);
        assert_eq!(kept.len(), 16 * (30 + 200 + 100 + 200), "30 ms lead, speech, the quiet syllable, 200 ms tail");
        assert_eq!(kept[16 * 30], clip[16 * 300], "it starts 30 ms before the speech");
        assert!(trim_silence(&vec![0i16; 1600], 16_000, 30, 200).is_empty());
        assert_eq!(trim_silence(&clip, 16_000, 1000, 1000).len(), clip.len(), "never past the clip's own ends");
    }
}
