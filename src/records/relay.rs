//! Call events between gateways that share a PostgreSQL records database, through
//! PostgreSQL's own LISTEN/NOTIFY (no broker of our own): each node NOTIFYs its call events
//! (through the records writer, in order, off the call path), and every node LISTENs, so an
//! Ops watcher on any node can follow every node's calls. With SQLite there is one node and
//! nothing to relay.

use postgres::fallible_iterator::FallibleIterator;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::broadcast;

/// The NOTIFY channel.
pub const CHANNEL: &str = "frontline_call_events";
/// PostgreSQL refuses NOTIFY payloads from 8000 bytes; a bigger event goes without its details.
const PAYLOAD_LIMIT: usize = 7900;
/// Events held for cluster watchers that are slow to read (they are dropped beyond, as local
/// watchers are).
const BUFFER: usize = 1024;

/// A call event as another node (or this one) published it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelayedEvent {
    pub node: String,
    pub call_id: String,
    /// The event's type (started, state, turn, ended, ...).
    pub kind: String,
    pub at_ms: u64,
    /// The event's own fields as JSON; `{}` when they were too big to relay.
    pub json: String,
}

impl RelayedEvent {
    /// The NOTIFY payload: the whole event, or without its details when too big.
    pub fn payload(&self) -> String {
        let whole = serde_json::to_string(self).unwrap_or_default();
        if whole.len() < PAYLOAD_LIMIT {
            return whole;
        }
        serde_json::to_string(&RelayedEvent { json: "{}".into(), ..self.clone() }).unwrap_or_default()
    }
}

/// This node's end of the relay: the events every node published, as they arrive.
pub struct Relay {
    events: broadcast::Sender<RelayedEvent>,
    /// The listener thread runs while this lives.
    _alive: Arc<()>,
}

impl Relay {
    /// Starts the listener: a thread with its own session that LISTENs, reconnecting (backing
    /// off to 5 s) when the database goes away.
    pub fn listen(url: String) -> Relay {
        let (events, _) = broadcast::channel(BUFFER);
        let alive = Arc::new(());
        let (tx, weak) = (events.clone(), Arc::downgrade(&alive));
        let spawned = std::thread::Builder::new().name("records-events".into()).spawn(move || listen_loop(&url, &tx, &weak));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cluster events: listener thread not started");
        }
        Relay { events, _alive: alive }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RelayedEvent> {
        self.events.subscribe()
    }
}

fn listen_loop(url: &str, tx: &broadcast::Sender<RelayedEvent>, alive: &Weak<()>) {
    let mut backoff = Duration::from_millis(200);
    while alive.strong_count() > 0 {
        if let Err(e) = listen_once(url, tx, alive) {
            tracing::warn!(error = %e, "cluster events: listening session lost; reconnecting");
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }
}

/// One session: LISTEN, then hand on every notification until the session fails (Err) or the
/// relay is dropped (Ok).
fn listen_once(url: &str, tx: &broadcast::Sender<RelayedEvent>, alive: &Weak<()>) -> Result<(), String> {
    let mut client = super::db::connect(url, "frontline-events").map_err(|e| e.to_string())?;
    client.batch_execute(&format!("LISTEN {CHANNEL}")).map_err(|e| e.to_string())?;
    tracing::info!("cluster events: listening");
    while alive.strong_count() > 0 {
        // Wakes at least every second to notice a dropped relay.
        {
            let mut notifications = client.notifications();
            let mut batch = notifications.timeout_iter(Duration::from_secs(1));
            while let Some(n) = batch.next().map_err(|e| e.to_string())? {
                match serde_json::from_str::<RelayedEvent>(n.payload()) {
                    // No receiver (no cluster watcher right now) is not an error.
                    Ok(event) => drop(tx.send(event)),
                    Err(e) => tracing::debug!(error = %e, "cluster events: a payload that is not an event, ignored"),
                }
            }
        }
        if client.is_closed() {
            return Err("the session was closed".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_too_big_to_notify_goes_without_its_details() {
        let event = RelayedEvent { node: "gw-a".into(), call_id: "c1".into(), kind: "turn".into(), at_ms: 1, json: "x".repeat(9000) };
        let payload = event.payload();
        assert!(payload.len() < PAYLOAD_LIMIT, "{}", payload.len());
        let back: RelayedEvent = serde_json::from_str(&payload).unwrap();
        assert_eq!((back.call_id.as_str(), back.kind.as_str(), back.json.as_str()), ("c1", "turn", "{}"));
    }
}
