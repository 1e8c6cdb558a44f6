//! Cuts a recording into the utterances a call would have heard: the same VAD and endpointer
//! that run on live audio, applied to a whole 16 kHz file at once.
//!
//! Whisper decodes at most 30 s at a time, and a recording that mixes languages or holds long
//! pauses is decoded worse in one piece than utterance by utterance (it may stop after the
//! first few words). `frontline transcribe` uses this to read a recorded call the way the
//! gateway reads a caller.

use std::ops::Range;

use super::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
use super::vad::Vad;

const SAMPLES_PER_MS: usize = 16;
const FRAME: usize = 20 * SAMPLES_PER_MS;

/// The sample ranges of each utterance in `pcm` (16 kHz mono), in order, each widened by the
/// endpointer's preroll in front and by its silence wait behind (clamped to the file), so
/// first and last syllables stay whole. Speech still going at the end of the file counts.
pub fn utterances(pcm: &[i16], cfg: EndpointConfig) -> Vec<Range<usize>> {
    let mut vad = Vad::new();
    let mut endpointer = Endpointer::new(cfg);
    let widen = |start_ms: u64, end_ms: u64| {
        let start = (start_ms.saturating_sub(cfg.preroll_ms as u64) as usize) * SAMPLES_PER_MS;
        let end = ((end_ms + 20 + cfg.end_silence_ms as u64) as usize * SAMPLES_PER_MS).min(pcm.len());
        start..end
    };
    let mut found = Vec::new();
    let mut open: Option<u64> = None;
    for (i, frame) in pcm.chunks(FRAME).enumerate() {
        let now_ms = (i * 20) as u64;
        match endpointer.push(vad.frame(frame), now_ms) {
            Some(EndpointEvent::SpeechStart { at_ms }) => open = Some(at_ms),
            Some(EndpointEvent::SpeechEnd { start_ms, end_ms }) => {
                open = None;
                found.push(widen(start_ms, end_ms));
            }
            _ => {}
        }
    }
    if let Some(start_ms) = open {
        found.push(widen(start_ms, (pcm.len() / SAMPLES_PER_MS) as u64));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn silence_holds_no_utterance() {
        assert!(utterances(&vec![0; 16_000 * 3], EndpointConfig::default()).is_empty());
    }

    #[test]
    fn a_long_pause_separates_two_utterances_and_each_keeps_its_edges() {
        let said = crate::media::wav::read_16k_mono(Path::new("audio-fixtures/en_balance.wav")).expect("fixture");
        let pause = vec![0i16; 16_000 * 2];
        let file: Vec<i16> = [said.as_slice(), &pause, &said].concat();
        let cuts = utterances(&file, EndpointConfig::default());
        assert_eq!(cuts.len(), 2, "two utterances in {cuts:?}");
        assert!(cuts[0].end <= cuts[1].start, "in order, without overlap: {cuts:?}");
        // The same words are cut the same way wherever they are in the file (within 0.25 s),
        // and the last cut runs to the end of the file.
        let second_copy = said.len() + pause.len();
        assert!(cuts[1].start.abs_diff(second_copy + cuts[0].start) <= 4_000, "{cuts:?}, second copy at {second_copy}");
        assert!(cuts[0].end.abs_diff(cuts[1].end - second_copy) <= 4_000, "{cuts:?}, second copy at {second_copy}");
    }
}
