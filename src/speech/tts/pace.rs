//! Pacing a reply's synthesis against its playout. The caller hears nothing until the first
//! piece is made, and a gap whenever a piece is not ready when the one before it ends; so
//! each piece is cut, at a phrase boundary, to what the voice can make in time: the piece a
//! caller waits for in silence to a short opening phrase, every later one to what fits in the
//! audio already handed out and not yet played.
//!
//! Sans-IO: clock readings come in as arguments; the TTS worker drives it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::split::{phrase_prefix, weight, OPENING_TARGET_WEIGHT};

/// Of the audio still to play, the share the next piece's synthesis may take: the rest absorbs
/// the speed estimate's error and other calls' pieces synthesized in between.
const SAFETY: f64 = 0.7;
/// Weight of the newest measurement in a voice's running speed estimate.
const SPEED_SMOOTHING: f64 = 0.3;

/// What one reply has handed to playout so far, shared by its synthesis jobs (a brain's reply
/// comes as one job per message). A fresh one per reply.
#[derive(Clone, Default)]
pub struct ReplyPace(Arc<Mutex<HandedOut>>);

#[derive(Default)]
struct HandedOut {
    /// When the audio handed out so far will have played: playout runs from the first
    /// piece's arrival, each piece right after the one before or, when it came late, from its
    /// arrival. `None` until the first piece.
    playing_until: Option<Instant>,
}

impl ReplyPace {
    pub fn new() -> ReplyPace {
        ReplyPace::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HandedOut> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `secs` of audio went to playout at `now`.
    pub(super) fn handed_out(&self, secs: f64, now: Instant) {
        let mut h = self.lock();
        let from = h.playing_until.map_or(now, |until| until.max(now));
        h.playing_until = Some(from + Duration::from_secs_f64(secs.max(0.0)));
    }

    /// Seconds of handed-out audio still to play at `now`; `None` before the first piece.
    pub(super) fn audio_ahead(&self, now: Instant) -> Option<f64> {
        self.lock().playing_until.map(|until| until.saturating_duration_since(now).as_secs_f64())
    }
}

/// A voice's running synthesis speed: seconds of compute per unit of text weight.
#[derive(Default)]
pub(super) struct Speed(Option<f64>);

impl Speed {
    pub(super) fn record(&mut self, text: &str, secs: f64) {
        let w = weight(text);
        if w == 0 {
            return;
        }
        let now = secs / w as f64;
        self.0 = Some(self.0.map_or(now, |was| was + SPEED_SMOOTHING * (now - was)));
    }

    pub(super) fn secs_per_weight(&self) -> Option<f64> {
        self.0
    }
}

/// `text` split into the piece to synthesize now and the rest, when making all of it would
/// keep the caller in silence: with nothing ahead (`audio_ahead` None, the caller waiting),
/// the opening phrase; otherwise as much as the voice (`secs_per_weight`) makes in the audio
/// ahead. `None`: synthesize all of `text` (it fits, the speed is not known yet, or no phrase
/// boundary fits).
pub(super) fn next_piece(text: &str, audio_ahead: Option<f64>, secs_per_weight: Option<f64>) -> Option<(&str, &str)> {
    let budget = match (audio_ahead, secs_per_weight) {
        (None, _) => OPENING_TARGET_WEIGHT,
        (Some(_), None) => return None,
        // When the audio ahead has run out the next piece is an opening again.
        (Some(ahead), Some(spw)) => ((ahead * SAFETY / spw) as usize).max(OPENING_TARGET_WEIGHT),
    };
    // A piece up to a third over its budget is not worth a break in the voice.
    if weight(text) <= budget * 4 / 3 {
        return None;
    }
    phrase_prefix(text, budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZH: &str = "我查到您在三月三号缴费57元，"; // weight 26
    const EN: &str = "I can see a payment of 57 dollars from March the third, "; // weight 42

    #[test]
    fn a_caller_waiting_in_silence_hears_an_opening_phrase_first() {
        assert_eq!(next_piece(ZH, None, None), Some(("我查到您", "在三月三号缴费57元，")));
        assert_eq!(next_piece(EN, None, Some(0.005)), Some(("I can see a payment ", "of 57 dollars from March the third, ")));
        // Short enough already.
        assert_eq!(next_piece("您的余额是35元。", None, None), None);
    }

    #[test]
    fn later_pieces_are_cut_to_what_the_voice_makes_before_the_audio_ahead_runs_out() {
        // Kokoro on 2 cores: about 0.07 s of compute per unit of weight. 1.3 s ahead fits
        // weight 13, so the 26-weight clause is cut; 3 s ahead fits it whole.
        assert_eq!(next_piece(ZH, Some(1.3), Some(0.07)), Some(("我查到您", "在三月三号缴费57元，")));
        assert_eq!(next_piece(ZH, Some(3.0), Some(0.07)), None);
        // Piper is fast enough that the audio ahead always covers the next clause.
        assert_eq!(next_piece(EN, Some(1.0), Some(0.005)), None);
        // Speed not measured yet: nothing to go on, spoken as it is.
        assert_eq!(next_piece(ZH, Some(1.3), None), None);
        // The audio ahead ran out: an opening phrase again.
        assert_eq!(next_piece(ZH, Some(0.0), Some(0.07)), Some(("我查到您", "在三月三号缴费57元，")));
    }

    #[test]
    fn the_pace_counts_audio_handed_out_against_the_time_since_the_first() {
        let pace = ReplyPace::new();
        let t0 = Instant::now();
        assert_eq!(pace.audio_ahead(t0), None);
        pace.handed_out(1.5, t0);
        pace.handed_out(2.0, t0 + Duration::from_millis(800));
        let ahead = pace.audio_ahead(t0 + Duration::from_millis(1000)).unwrap();
        assert!((ahead - 2.5).abs() < 1e-9, "{ahead}");
        assert_eq!(pace.audio_ahead(t0 + Duration::from_secs(9)), Some(0.0));
        // A late piece plays from its arrival. Clones share the reply (one per brain message).
        pace.clone().handed_out(1.0, t0 + Duration::from_secs(9));
        let ahead = pace.audio_ahead(t0 + Duration::from_millis(9500)).unwrap();
        assert!((ahead - 0.5).abs() < 1e-6, "{ahead}");
    }

    #[test]
    fn speed_is_a_running_estimate_per_unit_of_weight() {
        let mut s = Speed::default();
        assert_eq!(s.secs_per_weight(), None);
        s.record(ZH, 2.6); // 0.1 per unit
        assert!((s.secs_per_weight().unwrap() - 0.1).abs() < 1e-9);
        s.record(ZH, 0.0);
        assert!((s.secs_per_weight().unwrap() - 0.07).abs() < 1e-9);
        s.record("。", 5.0); // nothing spoken: not a measurement
        assert!((s.secs_per_weight().unwrap() - 0.07).abs() < 1e-9);
    }
}
