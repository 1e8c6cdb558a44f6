//! What the bot is saying right now: which chunks are queued and playing, so a barge-in can
//! tell the brain exactly what the caller heard, and the core knows when a reply is over.

use crate::call::turn_taking::heard_split;
use crate::media::session::FRAME_16K;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct BotVoice {
    pub speaking: bool,
    pub interruptible: bool,
    /// The whole reply is queued (the speaker reported its end).
    pub fully_queued: bool,
    last_tag: Option<u64>,
    /// Text of each queued chunk by tag, to tell the brain what the caller actually heard.
    chunks: BTreeMap<u64, String>,
    heard: Vec<String>,
    /// Audio length of each queued chunk by tag.
    durations: BTreeMap<u64, Duration>,
    /// The chunk on the wire and when it started; for the part of it the caller heard.
    playing: Option<(u64, Instant)>,
    /// Time the playing chunk spent paused (a barge-in onset that proved to be noise).
    pub paused_for: Duration,
    pub paused_at: Option<Instant>,
}

impl BotVoice {
    /// A reply starts.
    pub fn speaking(interruptible: bool) -> BotVoice {
        BotVoice { speaking: true, interruptible, ..BotVoice::default() }
    }

    pub fn on_queued(&mut self, tag: u64, text: String, samples: usize) {
        self.chunks.insert(tag, text);
        self.durations.insert(tag, Duration::from_millis((samples / (FRAME_16K / 20)) as u64));
    }

    /// Whether any audio of this reply reached the media driver.
    pub fn has_audio(&self) -> bool {
        !self.durations.is_empty()
    }

    pub fn on_playout_started(&mut self, tag: u64, at: Instant) {
        self.playing = Some((tag, at));
        self.paused_for = Duration::ZERO;
    }

    /// The chunk's text, once it has played whole.
    pub fn on_playout_finished(&mut self, tag: u64) -> Option<String> {
        let text = self.chunks.remove(&tag)?;
        self.heard.push(text.clone());
        Some(text)
    }

    /// Whether `tag` was the reply's last audio.
    pub fn reply_done(&self, tag: u64) -> bool {
        self.fully_queued && self.last_tag == Some(tag)
    }

    /// The speaker queued the whole reply; true when it has also finished playing (or had no
    /// audio at all).
    pub fn on_reply_queued(&mut self, last_tag: Option<u64>) -> bool {
        self.fully_queued = true;
        self.last_tag = last_tag.or(self.last_tag);
        self.last_tag.is_none() || self.chunks.is_empty()
    }

    /// (heard, unheard) at a barge-in at `now`: finished chunks were heard whole; of the one on
    /// the wire, the part played before the pause (or now); the rest was not heard.
    pub fn heard_split(&self, now: Instant) -> (String, String) {
        let stopped_at = self.paused_at.unwrap_or(now);
        let mut heard = self.heard.clone();
        let mut unheard = Vec::new();
        for (tag, text) in &self.chunks {
            match self.playing {
                Some((playing, started)) if playing == *tag => {
                    let total = self.durations.get(tag).copied().unwrap_or_default();
                    let played = stopped_at.saturating_duration_since(started).saturating_sub(self.paused_for);
                    let fraction = if total.is_zero() { 0.0 } else { played.as_secs_f32() / total.as_secs_f32() };
                    let (h, u) = heard_split(text, fraction);
                    heard.extend((!h.is_empty()).then_some(h));
                    unheard.extend((!u.is_empty()).then_some(u));
                }
                _ => unheard.push(text.clone()),
            }
        }
        (heard.join(" "), unheard.join(" "))
    }
}
