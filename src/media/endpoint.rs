//! Endpointing: turns per-frame speech probabilities into utterance start and end events,
//! sans-IO (time is the frame's millisecond timestamp).
//!
//! - An utterance starts once `start_ms` of speech frames have been seen without a gap longer
//!   than [`ONSET_GAP_MS`], spanning at least `min_utterance_ms`: coughs and clicks don't
//!   start one, and no utterance shorter than the minimum is ever reported, so every
//!   `SpeechStart` is followed by exactly one `SpeechEnd`.
//! - While speaking, a lower threshold applies (hysteresis), so soft word endings and
//!   unvoiced consonants don't count as silence.
//! - It ends after `end_silence_ms` without speech (the hangover that bridges pauses between
//!   words), or is cut at `max_utterance_ms`.

/// Frame duration the probabilities describe.
const FRAME_MS: u64 = 20;
/// Longest silence tolerated inside a not-yet-confirmed onset.
pub const ONSET_GAP_MS: u64 = 60;

/// Also the `[endpointing]` table of the config file (`frontline.toml` documents each key).
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    /// Probability at or above which a frame is speech.
    pub speech_threshold: f32,
    /// Speech needed before an utterance starts.
    pub start_ms: u32,
    /// Silence after the last speech frame that ends an utterance.
    pub end_silence_ms: u32,
    /// Shortest utterance reported (from its first to its last speech frame, inclusive).
    pub min_utterance_ms: u32,
    /// An utterance is ended here even if the caller keeps talking.
    pub max_utterance_ms: u32,
    /// Audio the caller should keep from before `SpeechStart::at_ms` so the first syllable
    /// reaches recognition whole. The endpointer only carries it; see [`Endpointer::config`].
    pub preroll_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            speech_threshold: 0.5,
            // 200 ms of speech before an utterance (and a barge-in) starts: a click or a
            // cough is shorter.
            start_ms: 200,
            end_silence_ms: 700,
            min_utterance_ms: 300,
            max_utterance_ms: 15_000,
            preroll_ms: 200,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointEvent {
    /// An utterance is confirmed. `at_ms` is the time of its first speech frame (the event
    /// itself comes `start_ms` or so later).
    SpeechStart { at_ms: u64 },
    /// The utterance is over: `start_ms` as in `SpeechStart`, `end_ms` the time of the last
    /// speech frame.
    SpeechEnd { start_ms: u64, end_ms: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Idle,
    /// Speech seen but not yet enough to start.
    Onset { first_ms: u64, last_speech_ms: u64, speech_ms: u64 },
    Speaking { start_ms: u64, last_speech_ms: u64 },
}

/// The endpointing state machine. One per call.
#[derive(Debug, Clone)]
pub struct Endpointer {
    cfg: EndpointConfig,
    continue_threshold: f32,
    state: State,
}

impl Endpointer {
    pub fn new(cfg: EndpointConfig) -> Endpointer {
        let t = cfg.speech_threshold;
        Endpointer {
            cfg,
            continue_threshold: (t - 0.15).max(t * 0.5),
            state: State::Idle,
        }
    }

    pub fn config(&self) -> &EndpointConfig {
        &self.cfg
    }

    /// Whether an utterance is in progress (between `SpeechStart` and `SpeechEnd`).
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speaking { .. })
    }

    /// Drops any utterance in progress without an event (e.g. the call was put on hold).
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Feeds the speech probability of the 20 ms frame at `now_ms` (frames in time order).
    pub fn push(&mut self, prob: f32, now_ms: u64) -> Option<EndpointEvent> {
        match self.state {
            State::Idle => {
                if prob >= self.cfg.speech_threshold {
                    self.state = State::Onset {
                        first_ms: now_ms,
                        last_speech_ms: now_ms,
                        speech_ms: FRAME_MS,
                    };
                    return self.try_start(now_ms);
                }
                None
            }
            State::Onset {
                first_ms,
                last_speech_ms,
                speech_ms,
            } => {
                if prob >= self.cfg.speech_threshold {
                    self.state = State::Onset {
                        first_ms,
                        last_speech_ms: now_ms,
                        speech_ms: speech_ms + FRAME_MS,
                    };
                    self.try_start(now_ms)
                } else {
                    if now_ms.saturating_sub(last_speech_ms) > ONSET_GAP_MS {
                        // A noise burst, not the start of speech.
                        self.state = State::Idle;
                    }
                    None
                }
            }
            State::Speaking {
                start_ms,
                last_speech_ms,
            } => {
                let last = if prob >= self.continue_threshold {
                    now_ms
                } else {
                    last_speech_ms
                };
                if now_ms.saturating_sub(start_ms) + FRAME_MS >= self.cfg.max_utterance_ms as u64 {
                    self.state = State::Idle;
                    return Some(EndpointEvent::SpeechEnd { start_ms, end_ms: last });
                }
                if now_ms.saturating_sub(last) >= self.cfg.end_silence_ms as u64 {
                    self.state = State::Idle;
                    return Some(EndpointEvent::SpeechEnd { start_ms, end_ms: last });
                }
                self.state = State::Speaking {
                    start_ms,
                    last_speech_ms: last,
                };
                None
            }
        }
    }

    fn try_start(&mut self, now_ms: u64) -> Option<EndpointEvent> {
        if let State::Onset {
            first_ms,
            last_speech_ms,
            speech_ms,
        } = self.state
        {
            let span = now_ms.saturating_sub(first_ms) + FRAME_MS;
            if speech_ms >= self.cfg.start_ms as u64 && span >= self.cfg.min_utterance_ms as u64 {
                self.state = State::Speaking {
                    start_ms: first_ms,
                    last_speech_ms,
                };
                return Some(EndpointEvent::SpeechStart { at_ms: first_ms });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> EndpointConfig {
        EndpointConfig {
            speech_threshold: 0.5,
            start_ms: 100,
            end_silence_ms: 600,
            min_utterance_ms: 100,
            max_utterance_ms: 15_000,
            preroll_ms: 200,
        }
    }

    /// Feeds `(prob, duration_ms)` segments as 20 ms frames from t=0; returns (time, event).
    fn feed(ep: &mut Endpointer, segments: &[(f32, u64)]) -> Vec<(u64, EndpointEvent)> {
        let mut t = 0;
        let mut out = Vec::new();
        for &(p, dur) in segments {
            for _ in 0..dur / 20 {
                if let Some(e) = ep.push(p, t) {
                    out.push((t, e));
                }
                t += 20;
            }
        }
        out
    }

    #[test]
    fn silence_produces_nothing() {
        let mut ep = Endpointer::new(cfg());
        assert!(feed(&mut ep, &[(0.01, 10_000)]).is_empty());
    }

    #[test]
    fn one_utterance_starts_and_ends_with_the_right_times() {
        let mut ep = Endpointer::new(cfg());
        let ev = feed(&mut ep, &[(0.0, 1000), (0.9, 1200), (0.05, 2000)]);
        assert_eq!(
            ev,
            vec![
                // Confirmed after 100 ms of speech, dated at its first frame.
                (1080, EndpointEvent::SpeechStart { at_ms: 1000 }),
                // Last speech frame at 2180; ended 600 ms later.
                (2780, EndpointEvent::SpeechEnd { start_ms: 1000, end_ms: 2180 }),
            ]
        );
        assert!(!ep.in_speech());
    }

    #[test]
    fn pauses_between_words_do_not_end_the_utterance() {
        let mut ep = Endpointer::new(cfg());
        let ev = feed(
            &mut ep,
            &[(0.9, 400), (0.1, 400), (0.8, 300), (0.2, 500), (0.9, 200), (0.0, 1000)],
        );
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert_eq!(ev[1].1, EndpointEvent::SpeechEnd { start_ms: 0, end_ms: 1780 });
    }

    #[test]
    fn hysteresis_keeps_soft_speech_inside_an_utterance() {
        let mut ep = Endpointer::new(cfg());
        // 0.4 is below the start threshold but above the continue threshold (0.35).
        let ev = feed(&mut ep, &[(0.9, 200), (0.4, 1000), (0.0, 1000)]);
        assert_eq!(ev[1].1, EndpointEvent::SpeechEnd { start_ms: 0, end_ms: 1180 });
        // ... but 0.4 alone never starts one.
        let mut ep = Endpointer::new(cfg());
        assert!(feed(&mut ep, &[(0.4, 3000)]).is_empty());
    }

    #[test]
    fn short_noises_do_not_start_an_utterance() {
        let mut ep = Endpointer::new(cfg());
        // 60 ms clicks separated by 200 ms of silence never add up to a start.
        let mut segs = Vec::new();
        for _ in 0..20 {
            segs.push((0.95, 60));
            segs.push((0.0, 200));
        }
        assert!(feed(&mut ep, &segs).is_empty());
    }

    #[test]
    fn utterances_shorter_than_the_minimum_are_never_reported() {
        let mut ep = Endpointer::new(EndpointConfig {
            min_utterance_ms: 300,
            ..cfg()
        });
        // 200 ms of speech: enough for start_ms, not for the minimum length.
        assert!(feed(&mut ep, &[(0.9, 200), (0.0, 2000)]).is_empty());
        // 400 ms is reported, starting when the minimum is reached.
        let ev = feed(&mut ep, &[(0.9, 400), (0.0, 1000)]);
        assert_eq!(ev[0], (280, EndpointEvent::SpeechStart { at_ms: 0 }));
        assert_eq!(ev[1].1, EndpointEvent::SpeechEnd { start_ms: 0, end_ms: 380 });
    }

    #[test]
    fn endless_speech_is_cut_at_the_maximum() {
        let mut ep = Endpointer::new(EndpointConfig {
            max_utterance_ms: 5000,
            ..cfg()
        });
        let ev = feed(&mut ep, &[(0.9, 12_000)]);
        let ends: Vec<_> = ev
            .iter()
            .filter_map(|(t, e)| match e {
                EndpointEvent::SpeechEnd { start_ms, end_ms } => Some((*t, *start_ms, *end_ms)),
                _ => None,
            })
            .collect();
        // Cut every 5 s; speech goes on, so a new utterance follows each cut.
        assert_eq!(ends[0], (4980, 0, 4980));
        assert!(ends.len() >= 2);
        let starts = ev.iter().filter(|(_, e)| matches!(e, EndpointEvent::SpeechStart { .. })).count();
        assert_eq!(starts, ends.len() + 1);
    }

    #[test]
    fn reset_drops_the_utterance() {
        let mut ep = Endpointer::new(cfg());
        feed(&mut ep, &[(0.9, 500)]);
        assert!(ep.in_speech());
        ep.reset();
        assert!(!ep.in_speech());
        assert_eq!(ep.push(0.0, 5000), None);
    }
}
