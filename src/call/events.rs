//! What happens on calls, published for whoever watches: the agent console, logs, and later
//! the Ops API and metrics. A broadcast channel: a slow watcher misses events (it is told how
//! many), it never holds a call up.

use crate::handoff::HandoffPacket;
use serde::Serialize;
use tokio::sync::broadcast;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEvent {
    Started { call_id: String, caller: String, callee: String, channel: String, at_ms: u64 },
    /// Words said on the call: by the caller, the bot, or (after a handoff) the agent.
    Said { call_id: String, speaker: String, text: String, language: String, at_ms: u64 },
    /// Triage decided to hand the call over; the packet is what the agent should know.
    Escalated { call_id: String, packet: Box<HandoffPacket>, at_ms: u64 },
    /// The agent answered and the legs are bridged.
    Bridged { call_id: String, agent: String, at_ms: u64 },
    Ended { call_id: String, reason: String, outcome: String, at_ms: u64 },
}

impl CallEvent {
    pub fn call_id(&self) -> &str {
        match self {
            CallEvent::Started { call_id, .. }
            | CallEvent::Said { call_id, .. }
            | CallEvent::Escalated { call_id, .. }
            | CallEvent::Bridged { call_id, .. }
            | CallEvent::Ended { call_id, .. } => call_id,
        }
    }
}

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

pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
