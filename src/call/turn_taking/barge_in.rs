//! Barge-in with a debounce and a reversible pause.
//!
//! The bot's voice pauses on the caller's first speech frame, so the stop reaches the wire
//! within a frame or two of their onset. Whether it was speech is only known later: the
//! endpointer confirms an utterance after `start_ms` of speech spanning `min_utterance_ms`
//! (a cough or a click is shorter), or drops the onset. Dropped: the reply resumes where it
//! paused. Confirmed: the reply is flushed and the brain is told how much was heard.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceAction {
    /// Hold the reply where it is (`MediaCommand::Pause`).
    Pause,
    /// It was a noise: go on playing (`MediaCommand::Resume`).
    Resume,
    /// Real speech: drop the rest of the reply and tell the brain.
    Stop,
}

#[derive(Debug, Default, Clone)]
pub struct BargeIn {
    paused: bool,
}

impl BargeIn {
    /// The first speech frame. `interruptible`: the bot is saying something the caller may cut.
    /// Pauses even if it believes it already has: `Pause` is idempotent, and a flush by
    /// someone else (a handoff) may have ended an earlier pause.
    pub fn on_onset(&mut self, interruptible: bool) -> Option<VoiceAction> {
        self.paused |= interruptible;
        interruptible.then_some(VoiceAction::Pause)
    }

    /// The onset was noise.
    pub fn on_noise(&mut self) -> Option<VoiceAction> {
        std::mem::take(&mut self.paused).then_some(VoiceAction::Resume)
    }

    /// The onset is an utterance. A reply that started after the pause (not paused) but is
    /// interruptible is stopped too.
    pub fn on_speech(&mut self, interruptible: bool) -> Option<VoiceAction> {
        let was_paused = std::mem::take(&mut self.paused);
        (was_paused || interruptible).then_some(VoiceAction::Stop)
    }

    /// The reply ended or was replaced: nothing is paused any more.
    pub fn reset(&mut self) {
        self.paused = false;
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }
}

/// Splits a chunk of reply text at the point the caller had heard `fraction` (0..1) of its
/// audio: (heard, unheard). Cut at a word boundary for spaced text (English), at a character
/// for Mandarin; a word the caller heard half of counts as unheard.
pub fn heard_split(text: &str, fraction: f32) -> (String, String) {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let f = fraction.clamp(0.0, 1.0);
    let mut cut = ((n as f32) * f).floor() as usize;
    if cut < n && text.contains(' ') {
        // Back up to the start of the word being spoken.
        while cut > 0 && !chars[cut - 1].is_whitespace() {
            cut -= 1;
        }
    }
    let heard: String = chars[..cut].iter().collect();
    let unheard: String = chars[cut..].iter().collect();
    (heard.trim().to_string(), unheard.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cough_pauses_and_resumes_and_speech_stops() {
        let mut b = BargeIn::default();
        assert_eq!(b.on_onset(true), Some(VoiceAction::Pause));
        assert!(b.is_paused());
        assert_eq!(b.on_onset(true), Some(VoiceAction::Pause), "pausing twice is harmless");
        assert_eq!(b.on_noise(), Some(VoiceAction::Resume));
        assert_eq!(b.on_noise(), None);
        assert_eq!(b.on_onset(true), Some(VoiceAction::Pause));
        assert_eq!(b.on_speech(true), Some(VoiceAction::Stop));
        assert!(!b.is_paused());
    }

    #[test]
    fn a_reply_that_may_not_be_interrupted_is_never_paused() {
        let mut b = BargeIn::default();
        assert_eq!(b.on_onset(false), None);
        assert_eq!(b.on_noise(), None);
        assert_eq!(b.on_speech(false), None);
        // Silence from the bot: speech is just speech.
        assert_eq!(b.on_onset(false), None);
        assert_eq!(b.on_speech(false), None);
    }

    #[test]
    fn heard_text_is_cut_where_the_audio_stopped() {
        assert_eq!(heard_split("Your balance is twelve dollars.", 0.0), ("".into(), "Your balance is twelve dollars.".into()));
        // 40% of 31 chars = 12: inside "balance is" → back to the start of "is".
        assert_eq!(heard_split("Your balance is twelve dollars.", 0.45), ("Your balance".into(), "is twelve dollars.".into()));
        assert_eq!(heard_split("Your balance is twelve dollars.", 1.0), ("Your balance is twelve dollars.".into(), "".into()));
        assert_eq!(heard_split("您的余额是十二元。", 0.5), ("您的余额".into(), "是十二元。".into()));
    }
}
