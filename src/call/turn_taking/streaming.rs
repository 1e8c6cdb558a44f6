//! When to decode an utterance that is still in progress.
//!
//! Two kinds of decode run before the endpointer ends an utterance:
//! - partials, every `partial_interval_ms` of new audio while the caller talks: greedy and
//!   cheap, skipped by the pool when it is busy; they steer the silence wait (digits and
//!   fillers mean a longer one) and fix the utterance's language early;
//! - one early decode once `early_decode_ms` of silence has passed: a final-quality decode
//!   of everything said so far. If the caller stays silent it is the final transcript, so
//!   when the silence wait runs out nothing is left to decode; if they go on speaking it is
//!   dropped. Its text also decides how long that silence wait is.
//!
//! Time here is the listener's audio clock (ms of audio since the call started).

use crate::media::endpoint::EndpointConfig;

/// Silence short enough to be inside a word (two frames).
const TALKING_SILENCE_MS: u64 = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeKind {
    Partial,
    /// Decode as final the speech up to the last speech frame `speech_mark_ms`.
    Early { speech_mark_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct Streaming {
    partial_interval_ms: u64,
    early_decode_ms: u64,
    /// Audio length of the utterance when the last partial was asked for.
    last_partial_audio_ms: u64,
    partial_in_flight: bool,
    /// The speech mark the current early decode covers (requested or done).
    early_mark_ms: Option<u64>,
    early_in_flight: bool,
}

impl Streaming {
    pub fn new(cfg: &EndpointConfig) -> Streaming {
        Streaming {
            partial_interval_ms: u64::from(cfg.partial_interval_ms),
            early_decode_ms: u64::from(cfg.early_decode_ms),
            last_partial_audio_ms: 0,
            partial_in_flight: false,
            early_mark_ms: None,
            early_in_flight: false,
        }
    }

    /// A new utterance started: nothing decoded of it yet. Decodes still in flight for the
    /// previous one are the caller's to ignore.
    pub fn start(&mut self) {
        self.last_partial_audio_ms = 0;
        self.partial_in_flight = false;
        self.early_mark_ms = None;
        self.early_in_flight = false;
    }

    /// Called on every frame inside an utterance: `audio_ms` of it so far, `silence_ms` since
    /// its last speech frame at `speech_mark_ms`. Returns the decode to start now, if any.
    pub fn poll(&mut self, audio_ms: u64, silence_ms: u64, speech_mark_ms: u64) -> Option<DecodeKind> {
        if self.early_decode_ms > 0 && silence_ms >= self.early_decode_ms && !self.early_in_flight && self.early_mark_ms != Some(speech_mark_ms) {
            self.early_mark_ms = Some(speech_mark_ms);
            self.early_in_flight = true;
            return Some(DecodeKind::Early { speech_mark_ms });
        }
        // Only while the caller is audibly talking: a partial started in a pause could still
        // be decoding when the early decode is due, and the early one would wait behind it.
        let talking = silence_ms <= TALKING_SILENCE_MS;
        if self.partial_interval_ms > 0
            && talking
            && !self.partial_in_flight
            && audio_ms >= self.last_partial_audio_ms + self.partial_interval_ms
        {
            self.last_partial_audio_ms = audio_ms;
            self.partial_in_flight = true;
            return Some(DecodeKind::Partial);
        }
        None
    }

    /// A partial came back (or was skipped because the pool was busy).
    pub fn partial_done(&mut self) {
        self.partial_in_flight = false;
    }

    /// The early decode came back.
    pub fn early_done(&mut self) {
        self.early_in_flight = false;
    }

    /// Whether an early decode of speech up to `speech_mark_ms` is the final transcript of
    /// an utterance whose last speech frame is `end_ms`: nothing was said after it.
    pub fn early_covers(&self, end_ms: u64) -> bool {
        self.early_mark_ms == Some(end_ms)
    }

    pub fn early_pending(&self) -> bool {
        self.early_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EndpointConfig {
        EndpointConfig { partial_interval_ms: 600, early_decode_ms: 150, ..EndpointConfig::default() }
    }

    #[test]
    fn partials_are_paced_by_new_speech_and_one_at_a_time() {
        let mut s = Streaming::new(&cfg());
        s.start();
        let mut asked = Vec::new();
        for t in (20..=3000).step_by(20) {
            if let Some(d) = s.poll(t, 0, t) {
                asked.push((t, d));
                // The first partial takes 700 ms to come back; the rest are quick.
                if t != 600 {
                    s.partial_done();
                }
            }
            if t == 1300 {
                s.partial_done();
            }
        }
        let times: Vec<u64> = asked.iter().map(|(t, _)| *t).collect();
        // Nothing while the first is in flight; then one per 600 ms of audio from the last ask.
        assert_eq!(times, vec![600, 1320, 1920, 2520]);
        assert!(asked.iter().all(|(_, d)| *d == DecodeKind::Partial));
    }

    #[test]
    fn an_early_decode_starts_once_per_silence_and_is_final_only_if_nothing_followed() {
        let mut s = Streaming::new(&cfg());
        s.start();
        // Speech until 1000, then silence: early decode at 150 ms of silence, once.
        let mut early = Vec::new();
        for t in (1020..=1600).step_by(20) {
            if let Some(DecodeKind::Early { speech_mark_ms }) = s.poll(t + 1000, t - 1000, 1000) {
                early.push((t, speech_mark_ms));
            }
        }
        assert_eq!(early, vec![(1160, 1000)]);
        assert!(s.early_pending());
        s.early_done();
        assert!(s.early_covers(1000));
        // The caller went on until 2000: that decode is not the final; a new silence asks again.
        assert!(!s.early_covers(2000));
        assert_eq!(s.poll(3200, 160, 2000), Some(DecodeKind::Early { speech_mark_ms: 2000 }));
        // No partials during silence.
        s.early_done();
        assert_eq!(s.poll(9000, 400, 2000), None);
    }

    #[test]
    fn zero_turns_both_off() {
        let mut s = Streaming::new(&EndpointConfig { partial_interval_ms: 0, early_decode_ms: 0, ..EndpointConfig::default() });
        s.start();
        for t in (20..5000).step_by(20) {
            assert_eq!(s.poll(t, t % 1000, t), None);
        }
    }
}
