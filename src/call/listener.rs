//! Listening to one side of a call: VAD and endpointing over 20 ms frames, collecting each
//! utterance's audio with a little pre-roll. Sans-IO: the clock is the audio itself (20 ms a
//! frame), so tests drive it with a recording and no timers.

use crate::media::level::loudness_dbfs;
use crate::media::endpoint::{EndpointConfig, EndpointEvent, Endpointer};
use crate::media::session::FRAME_16K;
use crate::media::vad::Vad;
use std::collections::VecDeque;

const FRAME_MS: u64 = 20;
/// Audio kept after the last speech frame, so whisper hears a natural ending.
const TAIL_MS: u64 = 200;

/// What one side said, as the recognizer should hear it.
#[derive(Debug)]
pub struct Utterance {
    pub audio: Vec<i16>,
    /// From the first to the last speech frame.
    pub speech_ms: u32,
    /// Audio time since the last speech frame: the endpointer's silence wait. The wall-clock
    /// end of speech is this long before now.
    pub ended_ms_ago: u64,
    /// Mean loudness of the utterance, for the shouting cue in triage.
    pub loudness_dbfs: f32,
    /// The listener's clock at the last speech frame (see [`Listener::speech_mark_ms`]).
    pub end_ms: u64,
}

#[derive(Debug)]
pub enum Heard {
    /// A first speech frame: maybe speech, maybe a cough (pause the bot here).
    Onset,
    /// The onset was a noise burst, not an utterance.
    Noise,
    /// Speech confirmed (barge-in point).
    Started,
    Finished(Utterance),
}

pub struct Listener {
    vad: Vad,
    endpointer: Endpointer,
    preroll_ms: u64,
    /// Frames kept from before a confirmed start: the endpointer confirms speech up to
    /// max(start_ms, min_utterance_ms) after its first frame.
    ring: VecDeque<(u64, Box<[i16; FRAME_16K]>)>,
    ring_ms: u64,
    utterance: Option<Vec<i16>>,
    now_ms: u64,
}

impl Listener {
    pub fn new(config: EndpointConfig) -> Listener {
        let confirm_ms = u64::from(config.start_ms.max(config.min_utterance_ms));
        Listener {
            vad: Vad::new(),
            endpointer: Endpointer::new(config),
            preroll_ms: u64::from(config.preroll_ms),
            ring: VecDeque::new(),
            ring_ms: confirm_ms + u64::from(config.preroll_ms) + 2 * FRAME_MS,
            utterance: None,
            now_ms: 0,
        }
    }

    /// The audio of the utterance in progress so far (with its pre-roll), if one is.
    pub fn utterance_audio(&self) -> Option<&[i16]> {
        self.utterance.as_deref()
    }

    /// Silence since the last speech frame of the utterance in progress.
    pub fn silence_ms(&self) -> Option<u64> {
        self.endpointer.silence_ms(self.now_ms)
    }

    /// The listener's clock (ms of audio heard) at the last speech frame of the utterance in
    /// progress: identifies "everything said up to here" for an early decode.
    pub fn speech_mark_ms(&self) -> Option<u64> {
        self.silence_ms().map(|s| self.now_ms - s)
    }

    /// Changes the silence wait of the utterance in progress (see `turn_taking::wait`).
    pub fn set_end_silence_ms(&mut self, ms: u32) {
        self.endpointer.set_end_silence_ms(ms);
    }

    pub fn config(&self) -> &EndpointConfig {
        self.endpointer.config()
    }

    pub fn push(&mut self, frame: Box<[i16; FRAME_16K]>) -> Option<Heard> {
        self.now_ms += FRAME_MS;
        let prob = self.vad.frame(&frame[..]);
        let event = self.endpointer.push(prob, self.now_ms);
        if let Some(buf) = self.utterance.as_mut() {
            buf.extend_from_slice(&frame[..]);
        }
        self.ring.push_back((self.now_ms, frame));
        while self.ring.front().is_some_and(|(t, _)| *t + self.ring_ms < self.now_ms) {
            self.ring.pop_front();
        }
        match event? {
            EndpointEvent::OnsetBegin { .. } => Some(Heard::Onset),
            EndpointEvent::OnsetDropped => Some(Heard::Noise),
            EndpointEvent::SpeechStart { at_ms } => {
                // A frame stamped t holds (t-20, t]; keep those reaching back to the pre-roll.
                let from = at_ms.saturating_sub(self.preroll_ms);
                let mut buf = Vec::with_capacity(16_000 * 5);
                for (t, f) in &self.ring {
                    if *t > from {
                        buf.extend_from_slice(&f[..]);
                    }
                }
                self.utterance = Some(buf);
                Some(Heard::Started)
            }
            EndpointEvent::SpeechEnd { start_ms, end_ms } => {
                let mut audio = self.utterance.take()?;
                let tail_ms = self.now_ms.saturating_sub(end_ms);
                let cut_ms = tail_ms.saturating_sub(TAIL_MS);
                audio.truncate(audio.len().saturating_sub(cut_ms as usize * 16));
                Some(Heard::Finished(Utterance {
                    loudness_dbfs: loudness_dbfs(&audio),
                    audio,
                    speech_ms: end_ms.saturating_sub(start_ms) as u32,
                    ended_ms_ago: tail_ms,
                    end_ms,
                }))
            }
        }
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn frames(path: &str) -> Vec<Box<[i16; FRAME_16K]>> {
        let pcm = crate::media::wav::read_16k_mono(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        pcm.chunks_exact(FRAME_16K).map(|c| Box::new(<[i16; FRAME_16K]>::try_from(c).unwrap())).collect()
    }

    #[test]
    fn a_spoken_question_becomes_one_utterance_with_its_first_syllable() {
        // 0.3 s of silence, the question (~1.6 s), 1.5 s of silence.
        let mut listener = Listener::new(EndpointConfig::default());
        let mut started = 0;
        let mut utterances = Vec::new();
        for f in frames("audio-fixtures/en_balance.wav") {
            match listener.push(f) {
                Some(Heard::Started) => started += 1,
                Some(Heard::Finished(u)) => utterances.push(u),
                Some(Heard::Onset | Heard::Noise) | None => {}
            }
        }
        assert_eq!(started, 1);
        assert_eq!(utterances.len(), 1);
        let u = &utterances[0];
        assert!((1200..2200).contains(&u.speech_ms), "speech_ms {}", u.speech_ms);
        // Pre-roll + speech + 200 ms tail: the audio is longer than the speech itself.
        let audio_ms = u.audio.len() as u32 / 16;
        assert!(audio_ms >= u.speech_ms + 200 && audio_ms <= u.speech_ms + 700, "audio {audio_ms} ms for {} ms of speech", u.speech_ms);
        assert_eq!(u.ended_ms_ago, 700, "the endpointer's silence wait");
        assert!(u.loudness_dbfs > -40.0 && u.loudness_dbfs < 0.0, "{}", u.loudness_dbfs);
    }

    #[test]
    fn silence_is_not_speech() {
        let mut listener = Listener::new(EndpointConfig::default());
        for _ in 0..200 {
            assert!(listener.push(Box::new([0; FRAME_16K])).is_none());
        }
        assert_eq!(listener.now_ms, 4000);
    }
}
