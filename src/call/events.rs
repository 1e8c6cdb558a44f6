//! What happens on calls, as typed events. The call core emits each event once; everything that
//! cares subscribes (see `call::observe`): the call record, metrics, the live-call read model
//! behind Ops and the console, the log, and the broadcast bus that the console, Ops
//! `WatchEvents` and a caller's own page read. A slow bus reader misses events (it is told how
//! many), it never holds a call up.

use crate::handoff::HandoffPacket;
use crate::records::TurnSummary;
use crate::triage::Escalation;
use serde::Serialize;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEvent {
    Started {
        call_id: String,
        caller: String,
        callee: String,
        channel: String,
        at_ms: u64,
        /// The SIP Call-ID (or the WebRTC session id) and the codec: for the record.
        #[serde(skip)]
        setup: Option<Box<CallSetup>>,
    },
    /// The call moved to another stage (ai, handing_over, bridged).
    State { call_id: String, state: String, at_ms: u64 },
    /// Words said on the call: by the caller, the bot, a supervisor, or (after a handoff) the agent.
    Said { call_id: String, speaker: String, text: String, language: String, turn: u32, at_ms: u64 },
    /// A caller turn is over (its reply went out, or it was cut short): words and latencies.
    Turn { call_id: String, turn: TurnSummary, at_ms: u64 },
    /// The caller had the floor and said nothing for `silence_ms`; `count` in this call so far.
    NoInput { call_id: String, count: u32, silence_ms: u32, at_ms: u64 },
    /// Triage decided to hand the call over; the packet is what the agent should know.
    Escalated {
        call_id: String,
        packet: Box<HandoffPacket>,
        at_ms: u64,
        /// The decision with its evidence, for the record.
        #[serde(skip)]
        decision: Option<Box<Escalation>>,
    },
    /// How one call to an agent went: "answered", the SIP status, or "none".
    AgentDialed { call_id: String, agent: String, result: String, at_ms: u64 },
    /// The agent answered and the legs are bridged.
    Bridged { call_id: String, agent: String, at_ms: u64 },
    /// The brain failed (unreachable, stream broken, too slow): the caller hears an apology.
    BrainFailed { call_id: String, reason: String, at_ms: u64 },
    /// One utterance recognized: how much faster than real time whisper ran.
    Recognized { call_id: String, audio_ms: u32, decode_ms: u32, at_ms: u64 },
    Ended {
        call_id: String,
        reason: String,
        outcome: String,
        at_ms: u64,
        /// Media counters, the state timeline and the call's totals, for the record and the log.
        #[serde(skip)]
        summary: Option<Box<EndSummary>>,
    },
}

/// What the record keeps from a call's start beyond what watchers see.
#[derive(Debug, Clone, Default)]
pub struct CallSetup {
    pub sip_call_id: String,
    pub codec: String,
    pub recording: Option<String>,
    /// The caller's CRM id, from the INVITE (`[sip] customer_id_header`).
    pub customer_id: Option<String>,
}

/// How a call ended, in detail.
#[derive(Debug, Clone, Default)]
pub struct EndSummary {
    pub turns: u32,
    pub duration_ms: u64,
    pub escalation: Option<String>,
    pub failure: Option<String>,
    /// Each stage the call entered, with when (ms since the epoch).
    pub timeline: Vec<(String, u64)>,
    pub media: crate::media::session::MediaStats,
    /// The brain's topic intents, first first (`brain::conversation::is_topic`).
    pub intents: Vec<String>,
    /// The caller's first words: one line of what they came for.
    pub summary: String,
    /// The caller's answer to the satisfaction survey, when asked and answered.
    pub survey: Option<crate::call::survey::Rating>,
}

impl CallEvent {
    pub fn call_id(&self) -> &str {
        match self {
            CallEvent::Started { call_id, .. }
            | CallEvent::State { call_id, .. }
            | CallEvent::Said { call_id, .. }
            | CallEvent::Turn { call_id, .. }
            | CallEvent::NoInput { call_id, .. }
            | CallEvent::Escalated { call_id, .. }
            | CallEvent::AgentDialed { call_id, .. }
            | CallEvent::Bridged { call_id, .. }
            | CallEvent::BrainFailed { call_id, .. }
            | CallEvent::Recognized { call_id, .. }
            | CallEvent::Ended { call_id, .. } => call_id,
        }
    }

    pub fn at_ms(&self) -> u64 {
        match self {
            CallEvent::Started { at_ms, .. }
            | CallEvent::State { at_ms, .. }
            | CallEvent::Said { at_ms, .. }
            | CallEvent::Turn { at_ms, .. }
            | CallEvent::NoInput { at_ms, .. }
            | CallEvent::Escalated { at_ms, .. }
            | CallEvent::AgentDialed { at_ms, .. }
            | CallEvent::Bridged { at_ms, .. }
            | CallEvent::BrainFailed { at_ms, .. }
            | CallEvent::Recognized { at_ms, .. }
            | CallEvent::Ended { at_ms, .. } => *at_ms,
        }
    }

    /// The `type` of its JSON form.
    pub fn kind(&self) -> &'static str {
        match self {
            CallEvent::Started { .. } => "started",
            CallEvent::State { .. } => "state",
            CallEvent::Said { .. } => "said",
            CallEvent::Turn { .. } => "turn",
            CallEvent::NoInput { .. } => "no_input",
            CallEvent::Escalated { .. } => "escalated",
            CallEvent::AgentDialed { .. } => "agent_dialed",
            CallEvent::Bridged { .. } => "bridged",
            CallEvent::BrainFailed { .. } => "brain_failed",
            CallEvent::Recognized { .. } => "recognized",
            CallEvent::Ended { .. } => "ended",
        }
    }
}

/// Every event type, as [`CallEvent::kind`] names them (Ops filters by these).
pub const EVENT_KINDS: [&str; 11] =
    ["started", "state", "said", "turn", "no_input", "escalated", "agent_dialed", "bridged", "brain_failed", "recognized", "ended"];

/// The publishing side, shared by every call.
#[derive(Clone)]
pub struct CallEvents {
    tx: broadcast::Sender<CallEvent>,
}

impl Default for CallEvents {
    fn default() -> Self {
        Self::new()
    }
}

impl CallEvents {
    pub fn new() -> Self {
        // Enough for a few seconds of a busy gateway; a watcher further behind is told it lagged.
        let (tx, _) = broadcast::channel(1024);
        CallEvents { tx }
    }

    pub fn publish(&self, event: CallEvent) {
        // No watcher is not an error.
        let _ = self.tx.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<CallEvent> {
        self.tx.subscribe()
    }
}

/// Resolves when `call_id` ends (never, if the event bus closes first). Subscribe before the
/// wait begins, so an end that comes at once is not missed.
pub async fn call_ended(mut events: broadcast::Receiver<CallEvent>, call_id: String) {
    loop {
        match events.recv().await {
            Ok(CallEvent::Ended { call_id: ended, .. }) if ended == call_id => return,
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
        }
    }
}

pub use crate::clock::now_ms;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_and_matches_the_json_type() {
        let ev = CallEvent::NoInput { call_id: "c".into(), count: 1, silence_ms: 6000, at_ms: 9 };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["type"], ev.kind());
        assert!(EVENT_KINDS.contains(&ev.kind()));
        let started = CallEvent::Started {
            call_id: "c".into(),
            caller: "+1".into(),
            callee: "ivr".into(),
            channel: "sip".into(),
            at_ms: 1,
            setup: Some(Box::new(CallSetup { recording: Some("/var/x.wav".into()), ..CallSetup::default() })),
        };
        let json = serde_json::to_string(&started).unwrap();
        assert!(!json.contains("x.wav"), "the record's details stay off the bus's JSON: {json}");
    }
}
