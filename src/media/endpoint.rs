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
//!   words), or is cut at `max_utterance_ms`. The call may shorten or lengthen that wait for
//!   the utterance in progress ([`Endpointer::set_end_silence_ms`]) from what the caller has
//!   said so far: a complete question needs less, digits being read out need more.
//! - The first speech frame and an onset that turns out to be noise are reported too
//!   (`OnsetBegin` / `OnsetDropped`), so a bot that is talking can pause at once and resume
//!   if it was only a cough.

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
    /// The silence wait once the transcript so far is a complete question or request.
    pub complete_silence_ms: u32,
    /// The silence wait while the caller reads out digits or hesitates ("um", "嗯", "那个").
    pub hesitant_silence_ms: u32,
    /// New speech between two partial hypotheses while the caller talks; 0 turns streaming
    /// recognition off (and with it the transcript-driven waits).
    pub partial_interval_ms: u32,
    /// Silence after which the utterance so far is decoded as if it were final, so the
    /// transcript is ready (or nearly) when the silence wait runs out; 0 turns it off.
    pub early_decode_ms: u32,
    /// A caller who speaks again within this long of their last utterance's end, before
    /// hearing the reply to it, is going on with the same sentence (a pause mid-sentence cut
    /// it): the two are answered as one turn. 0 turns it off.
    pub continuation_ms: u32,
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
            // Whisper takes ~0.3 s for a short utterance on this class of CPU; the early
            // decode starts at 150 ms of silence, so a complete question ends at about the
            // moment its transcript is ready.
            complete_silence_ms: 300,
            hesitant_silence_ms: 1_200,
            partial_interval_ms: 600,
            early_decode_ms: 150,
            // Pauses at a comma run 0.3-0.8 s (Kokoro's Mandarin, and people thinking of the
            // next word); a caller answering the bot's reply starts after it has played for
            // a second or more.
            continuation_ms: 1_200,
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
    /// A speech frame after silence: maybe the start of an utterance, maybe a cough. Either
    /// `SpeechStart` or `OnsetDropped` follows.
    OnsetBegin { at_ms: u64 },
    /// The onset was a noise burst: too short, or cut by a gap.
    OnsetDropped,
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
    /// The silence wait for the utterance in progress; back to `cfg.end_silence_ms` at each start.
    end_silence_ms: u32,
}

impl Endpointer {
    pub fn new(cfg: EndpointConfig) -> Endpointer {
        let t = cfg.speech_threshold;
        Endpointer {
            cfg,
            continue_threshold: (t - 0.15).max(t * 0.5),
            state: State::Idle,
            end_silence_ms: cfg.end_silence_ms,
        }
    }

    /// Changes the silence wait of the utterance in progress. A wait that has already run out
    /// ends the utterance on the next frame.
    pub fn set_end_silence_ms(&mut self, ms: u32) {
        self.end_silence_ms = ms;
    }

    /// Silence since the last speech frame of the utterance in progress (None outside one).
    pub fn silence_ms(&self, now_ms: u64) -> Option<u64> {
        match self.state {
            State::Speaking { last_speech_ms, .. } => Some(now_ms.saturating_sub(last_speech_ms)),
            _ => None,
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
                    return self.try_start(now_ms).or(Some(EndpointEvent::OnsetBegin { at_ms: now_ms }));
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
                        return Some(EndpointEvent::OnsetDropped);
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
                if now_ms.saturating_sub(last) >= self.end_silence_ms as u64 {
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
                self.end_silence_ms = self.cfg.end_silence_ms;
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
            ..EndpointConfig::default()
        }
    }

    /// Feeds `(prob, duration_ms)` segments as 20 ms frames from t=0; returns (time, event).
    fn feed(ep: &mut Endpointer, segments: &[(f32, u64)]) -> Vec<(u64, EndpointEvent)> {
        let mut t = 0;
        let mut out = Vec::new();
        for &(p, dur) in segments {
            for _ in 0..dur / 20 {
                // Onsets are checked by their own test; the others follow utterances.
                if let Some(e) = ep.push(p, t).filter(|e| matches!(e, EndpointEvent::SpeechStart { .. } | EndpointEvent::SpeechEnd { .. })) {
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
    fn a_cough_is_an_onset_that_is_dropped_and_speech_is_an_onset_that_starts() {
        let mut ep = Endpointer::new(EndpointConfig { min_utterance_ms: 300, start_ms: 200, ..cfg() });
        let mut events = Vec::new();
        for (i, p) in [0.9f32; 10].iter().chain([0.0f32; 10].iter()).enumerate() {
            if let Some(e) = ep.push(*p, i as u64 * 20) {
                events.push((i as u64 * 20, e));
            }
        }
        // 200 ms of "speech" spanning less than the minimum; dropped once the gap exceeds 60 ms.
        assert_eq!(events, vec![(0, EndpointEvent::OnsetBegin { at_ms: 0 }), (260, EndpointEvent::OnsetDropped)]);
        let mut starts = Vec::new();
        for i in 0..20u64 {
            if let Some(e) = ep.push(0.9, 1000 + i * 20) {
                starts.push(e);
            }
        }
        assert_eq!(starts, vec![EndpointEvent::OnsetBegin { at_ms: 1000 }, EndpointEvent::SpeechStart { at_ms: 1000 }]);
    }

    #[test]
    fn the_silence_wait_can_change_mid_utterance_and_resets_for_the_next() {
        let mut ep = Endpointer::new(cfg()); // 600 ms wait
        let ev = feed(&mut ep, &[(0.9, 400)]);
        assert_eq!(ev.len(), 1);
        assert_eq!(ep.silence_ms(400), Some(20));
        ep.set_end_silence_ms(200);
        let mut end = None;
        for i in 0..40u64 {
            if let Some(e) = ep.push(0.0, 400 + i * 20) {
                end = Some((400 + i * 20, e));
                break;
            }
        }
        // Last speech frame at 380: ended 200 ms later, not 600.
        assert_eq!(end, Some((580, EndpointEvent::SpeechEnd { start_ms: 0, end_ms: 380 })));
        // The next utterance gets the configured wait again.
        let mut t = 2000;
        let mut end = None;
        for p in [0.9f32; 20].iter().chain([0.0f32; 50].iter()) {
            if let Some(EndpointEvent::SpeechEnd { end_ms, .. }) = ep.push(*p, t) {
                end = Some(t - end_ms);
            }
            t += 20;
        }
        assert_eq!(end, Some(600));
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
