//! Voice activity detection on 16 kHz frames, with the `earshot` neural VAD.
//!
//! earshot scores 16 ms windows (256 samples); the gateway moves 20 ms frames (320 samples).
//! `Vad` carries the remainder between calls in a fixed buffer, so each 20 ms frame yields one
//! or two earshot scores and no allocation happens per frame.

use earshot::Detector;

/// Samples per earshot window (16 ms at 16 kHz).
const WINDOW: usize = 256;

/// Speech probability for a stream of 16 kHz mono audio. One per call (it keeps context).
pub struct Vad {
    // Boxed: the detector keeps ~8 KiB of state, too much to move around on the stack.
    detector: Box<Detector>,
    pending: [i16; WINDOW],
    pending_len: usize,
    last: f32,
}

impl Default for Vad {
    fn default() -> Self {
        Self::new()
    }
}

impl Vad {
    pub fn new() -> Vad {
        Vad {
            detector: Detector::default_boxed(),
            pending: [0; WINDOW],
            pending_len: 0,
            last: 0.0,
        }
    }

    /// Scores one frame (normally 20 ms = 320 samples; any length works) and returns the speech
    /// probability in [0, 1]: the mean of the earshot windows completed by this frame, or the
    /// previous score when the frame completed none.
    pub fn frame(&mut self, pcm: &[i16]) -> f32 {
        let mut sum = 0.0f32;
        let mut n = 0u32;
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (WINDOW - self.pending_len).min(rest.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&rest[..take]);
            self.pending_len += take;
            rest = &rest[take..];
            if self.pending_len == WINDOW {
                let p = self.detector.predict_i16(&self.pending);
                // earshot reports -1 only for a wrong window size, which cannot happen here;
                // clamp anyway so a caller's threshold logic never sees it.
                sum += p.clamp(0.0, 1.0);
                n += 1;
                self.pending_len = 0;
            }
        }
        if n > 0 {
            self.last = sum / n as f32;
        }
        self.last
    }

    /// Forgets the audio context (e.g. after the far end was put on hold).
    pub fn reset(&mut self) {
        self.detector.reset();
        self.pending_len = 0;
        self.last = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Synthesized speech from espeak-ng, resampled to 16 kHz in the test (linear
    /// interpolation is plenty for a VAD). None where espeak-ng is not installed.
    fn espeak_16k(text: &str) -> Option<Vec<i16>> {
        let dir = tempfile::tempdir().ok()?;
        let path = dir.path().join("speech.wav");
        let status = std::process::Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&path)
            .arg(text)
            .status()
            .ok()?;
        if !status.success() {
            return None;
        }
        let mut reader = hound::WavReader::open(&path).ok()?;
        let rate = reader.spec().sample_rate as f64;
        let src: Vec<i16> = reader.samples::<i16>().filter_map(Result::ok).collect();
        let n_out = (src.len() as f64 * 16000.0 / rate) as usize;
        Some(
            (0..n_out)
                .map(|i| {
                    let x = i as f64 * rate / 16000.0;
                    let j = x as usize;
                    let f = x - j as f64;
                    let a = src[j.min(src.len() - 1)] as f64;
                    let b = src[(j + 1).min(src.len() - 1)] as f64;
                    (a + (b - a) * f) as i16
                })
                .collect(),
        )
    }

    #[test]
    fn silence_and_quiet_noise_score_low() {
        let mut vad = Vad::new();
        let silence = [0i16; 320];
        // earshot's floor on digital silence is around 0.2: well under the 0.5 speech line.
        for _ in 0..50 {
            let p = vad.frame(&silence);
            assert!(p < 0.35, "silence scored {p}");
        }
        // Faint white noise (deterministic LCG), -50 dBFS or so.
        let mut x: u32 = 1;
        let mut frame = [0i16; 320];
        let mut max = 0.0f32;
        for _ in 0..100 {
            for s in frame.iter_mut() {
                x = x.wrapping_mul(1664525).wrapping_add(1013904223);
                *s = ((x >> 16) as i16) / 300;
            }
            max = max.max(vad.frame(&frame));
        }
        assert!(max < 0.5, "noise scored {max}");
    }

    #[test]
    fn speech_scores_high() {
        let Some(speech) = espeak_16k("Hello, I would like to check the balance of my account, please.") else {
            eprintln!("espeak-ng not available; skipping the speech half of the VAD test");
            return;
        };
        let mut vad = Vad::new();
        let mut probs = Vec::new();
        for chunk in speech.chunks_exact(320) {
            probs.push(vad.frame(chunk));
        }
        // Frames with energy are speech; most of them must be detected as such.
        let loud: Vec<f32> = speech
            .chunks_exact(320)
            .zip(&probs)
            .filter(|(c, _)| {
                let e: f64 = c.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / 320.0;
                e.sqrt() > 1000.0
            })
            .map(|(_, &p)| p)
            .collect();
        assert!(loud.len() > 50, "only {} loud frames", loud.len());
        let high = loud.iter().filter(|&&p| p >= 0.5).count();
        assert!(
            high as f32 >= 0.7 * loud.len() as f32,
            "{high} of {} speech frames scored >= 0.5",
            loud.len()
        );
    }

    #[test]
    fn spoken_sentence_then_silence_is_one_utterance() {
        use crate::media::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
        let Some(speech) = espeak_16k("My internet has been down since this morning, can you help?") else {
            eprintln!("espeak-ng not available; skipping");
            return;
        };
        let mut audio = vec![0i16; 16000]; // 1 s of silence first
        let speech_from_ms = 1000u64;
        let speech_to_ms = speech_from_ms + speech.len() as u64 / 16;
        audio.extend_from_slice(&speech);
        audio.extend(std::iter::repeat_n(0i16, 32000));
        let mut vad = Vad::new();
        let mut ep = Endpointer::new(EndpointConfig::default());
        let mut events = Vec::new();
        for (k, frame) in audio.chunks_exact(320).enumerate() {
            let now = k as u64 * 20;
            if let Some(e) = ep.push(vad.frame(frame), now) {
                if !matches!(e, EndpointEvent::OnsetBegin { .. } | EndpointEvent::OnsetDropped) {
                    events.push(e);
                }
            }
        }
        assert_eq!(events.len(), 2, "{events:?}");
        let EndpointEvent::SpeechStart { at_ms } = events[0] else { panic!("{events:?}") };
        let EndpointEvent::SpeechEnd { start_ms, end_ms } = events[1] else { panic!("{events:?}") };
        assert_eq!(at_ms, start_ms);
        // The utterance covers the speech, give or take the synthesizer's own leading and
        // trailing quiet.
        assert!(start_ms >= speech_from_ms && start_ms <= speech_from_ms + 300, "start {start_ms}");
        assert!(end_ms + 400 >= speech_to_ms && end_ms <= speech_to_ms + 200, "end {end_ms} vs {speech_to_ms}");
    }

    #[test]
    fn odd_frame_sizes_are_bridged() {
        let mut vad = Vad::new();
        // 100-sample pieces complete a window every 2-3 calls; no panic, scores stay in range.
        for _ in 0..100 {
            let p = vad.frame(&[0i16; 100]);
            assert!((0.0..=1.0).contains(&p));
        }
        assert!((0.0..=1.0).contains(&vad.frame(&[])));
    }
}
