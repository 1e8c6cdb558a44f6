//! The record of one turn and its per-stage timings (sans-IO: instants are passed in).

use std::time::Instant;

/// One caller utterance and the bot's reply to it, with when each stage finished.
///
/// The stages are the ones the latency budget is made of: end of the caller's speech →
/// transcript → first reply text from the brain → first synthesized audio → first RTP packet
/// of the reply on the wire.
#[derive(Debug, Clone)]
pub struct Turn {
    pub number: u32,
    pub heard: String,
    pub language: String,
    pub confidence: f32,
    pub speech_ms: u32,
    pub speech_end: Instant,
    pub transcript_at: Option<Instant>,
    pub brain_first_at: Option<Instant>,
    pub tts_first_at: Option<Instant>,
    pub rtp_first_at: Option<Instant>,
    pub reply: String,
    pub reply_complete: bool,
    /// Mean loudness of the caller's utterance (the shouting cue in triage).
    pub loudness_dbfs: Option<f32>,
    /// Silence before the caller started speaking.
    pub silence_before_ms: u32,
    logged: bool,
}

/// Milliseconds from the end of the caller's speech to each stage.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StageTimings {
    pub transcript_ms: Option<u64>,
    pub brain_ms: Option<u64>,
    pub tts_ms: Option<u64>,
    pub first_rtp_ms: Option<u64>,
}

impl Turn {
    pub fn new(number: u32, speech_end: Instant, speech_ms: u32) -> Turn {
        Turn {
            number,
            heard: String::new(),
            language: String::new(),
            confidence: 0.0,
            speech_ms,
            speech_end,
            transcript_at: None,
            brain_first_at: None,
            tts_first_at: None,
            rtp_first_at: None,
            reply: String::new(),
            reply_complete: false,
            loudness_dbfs: None,
            silence_before_ms: 0,
            logged: false,
        }
    }

    pub fn on_reply_text(&mut self, text: &str, last: bool, at: Instant) {
        self.brain_first_at.get_or_insert(at);
        if !text.is_empty() {
            if !self.reply.is_empty() {
                self.reply.push(' ');
            }
            self.reply.push_str(text.trim());
        }
        self.reply_complete |= last;
    }

    pub fn on_audio_synthesized(&mut self, at: Instant) {
        self.tts_first_at.get_or_insert(at);
    }

    pub fn on_first_packet(&mut self, at: Instant) {
        self.rtp_first_at.get_or_insert(at);
    }

    pub fn timings(&self) -> StageTimings {
        let since = |t: Option<Instant>| t.map(|t| t.saturating_duration_since(self.speech_end).as_millis() as u64);
        StageTimings {
            transcript_ms: since(self.transcript_at),
            brain_ms: since(self.brain_first_at),
            tts_ms: since(self.tts_first_at),
            first_rtp_ms: since(self.rtp_first_at),
        }
    }

    /// Marks the turn logged; true if it was not logged before. For turns cut short (a new
    /// utterance superseded them, or the call ended) that must still leave their line.
    /// The turn as the record and the Ops API show it.
    pub fn summary(&self) -> crate::records::TurnSummary {
        let t = self.timings();
        crate::records::TurnSummary {
            number: self.number,
            heard: self.heard.clone(),
            reply: self.reply.clone(),
            language: self.language.clone(),
            confidence: self.confidence,
            speech_ms: self.speech_ms,
            transcript_ms: t.transcript_ms,
            brain_ms: t.brain_ms,
            tts_ms: t.tts_ms,
            first_rtp_ms: t.first_rtp_ms,
        }
    }

    pub fn mark_logged(&mut self) -> bool {
        !std::mem::replace(&mut self.logged, true)
    }

    /// True once, when the whole reply text is known and its first packet has left, or when
    /// the reply is complete without any audio: the moment the turn's log line can be written.
    pub fn take_ready_to_log(&mut self) -> bool {
        let audio_done = self.rtp_first_at.is_some() || (self.reply_complete && self.reply.is_empty());
        if !self.logged && self.reply_complete && audio_done {
            self.logged = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timings_are_measured_from_the_end_of_speech() {
        let t0 = Instant::now();
        let mut turn = Turn::new(1, t0, 1500);
        turn.transcript_at = Some(t0 + Duration::from_millis(300));
        turn.on_reply_text("Your balance is", false, t0 + Duration::from_millis(320));
        turn.on_reply_text("ten dollars.", true, t0 + Duration::from_millis(400));
        turn.on_audio_synthesized(t0 + Duration::from_millis(380));
        assert!(!turn.take_ready_to_log(), "no packet out yet");
        turn.on_first_packet(t0 + Duration::from_millis(410));
        turn.on_first_packet(t0 + Duration::from_millis(999));
        assert!(turn.take_ready_to_log());
        assert!(!turn.take_ready_to_log(), "logged once");
        assert!(!turn.mark_logged(), "already logged");
        assert_eq!(turn.reply, "Your balance is ten dollars.");
        assert_eq!(
            turn.timings(),
            StageTimings { transcript_ms: Some(300), brain_ms: Some(320), tts_ms: Some(380), first_rtp_ms: Some(410) }
        );
    }

    #[test]
    fn a_silent_reply_is_logged_when_complete() {
        let mut turn = Turn::new(2, Instant::now(), 800);
        turn.on_reply_text("", true, Instant::now());
        assert!(turn.take_ready_to_log());
    }
}
