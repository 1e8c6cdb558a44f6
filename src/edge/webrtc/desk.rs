//! Agents who answer in the browser: who is signed in on the agent console, who is ringing,
//! who is on a call. A registry of channels and no sockets, so its rules are tested directly.
//!
//! A console page signs an agent in by holding an event stream open (`sign_in`): the agent is
//! present while at least one page listens, the way a SIP phone is reachable while registered.
//! A handoff rings every page of that agent (`ring`); the first page to answer or decline takes
//! the ring (`take_ring`) and the others are told it stopped. An agent rings for one call at a
//! time and takes no ring while on a call (486 Busy Here in SIP's terms).

use crate::call::AgentLeg;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use tokio::sync::{mpsc, oneshot};

/// Events a signed-in page is sent, as JSON on its event stream (the event name is `type`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeskEvent {
    /// First on every stream: the agent is signed in, and what they are busy with.
    Ready { agent: String, ringing: Option<String>, on_call: Option<String> },
    /// A caller is being handed over to this agent: answer or decline.
    Ring { call_id: String },
    /// The ring is over without this page: another page took it, the ring time ran out, or the
    /// page's answer failed.
    RingStopped { call_id: String, reason: String },
    /// The agent's call ended; `reason` says from which side.
    Ended { call_id: String, reason: String },
}

/// How the agent answered a ring.
pub enum RingReply {
    /// The agent picked up; the leg follows once their browser has connected (ICE and DTLS),
    /// or why it could not. The caller hears hold audio until then, never dead air.
    Answering(oneshot::Receiver<Result<AgentLeg, String>>),
    Declined,
    /// The page answered, but its offer could not be negotiated.
    Failed(String),
}

/// Why an agent cannot be rung now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RingRefused {
    #[error("console agent {0} is not signed in")]
    Offline(String),
    #[error("console agent {agent} is busy with call {call_id}")]
    Busy { agent: String, call_id: String },
}

impl RingRefused {
    /// The SIP status an agent phone would have answered (480 Temporarily Unavailable, 486 Busy
    /// Here), so logs and records read the same for both kinds of agent.
    pub fn sip_status(&self) -> u16 {
        match self {
            RingRefused::Offline(_) => 480,
            RingRefused::Busy { .. } => 486,
        }
    }
}

/// Events a page may fall behind on before it is dropped (it then reconnects and is sent
/// `Ready` again, which says everything that matters).
const PAGE_BUFFER: usize = 32;

#[derive(Default)]
struct Desk {
    /// One sender per console page signed in as this agent.
    pages: Vec<mpsc::Sender<DeskEvent>>,
    ringing: Option<Ring>,
    on_call: Option<String>,
}

struct Ring {
    call_id: String,
    reply: oneshot::Sender<RingReply>,
}

impl Desk {
    /// Sends to every listening page, forgetting the closed ones and any too far behind.
    fn tell(&mut self, event: DeskEvent) {
        self.pages.retain(|page| page.try_send(event.clone()).is_ok());
    }

    fn present(&mut self) -> bool {
        self.pages.retain(|page| !page.is_closed());
        !self.pages.is_empty()
    }
}

#[derive(Default)]
pub struct Desks {
    /// Used as it is when a panic elsewhere poisoned the lock (see the SIP edge's routes).
    desks: Mutex<HashMap<String, Desk>>,
}

impl Desks {
    fn with<R>(&self, agent: &str, f: impl FnOnce(&mut Desk) -> R) -> R {
        let mut desks = self.desks.lock().unwrap_or_else(PoisonError::into_inner);
        f(desks.entry(agent.to_string()).or_default())
    }

    /// Signs a page in as `agent`: its stream of [`DeskEvent`]s, starting with `Ready`. The
    /// agent is signed out when the last such stream is dropped.
    pub fn sign_in(&self, agent: &str) -> mpsc::Receiver<DeskEvent> {
        let (tx, rx) = mpsc::channel(PAGE_BUFFER);
        self.with(agent, |desk| {
            let ringing = desk.ringing.as_ref().map(|r| r.call_id.clone());
            let ready = DeskEvent::Ready { agent: agent.to_string(), ringing, on_call: desk.on_call.clone() };
            let _ = tx.try_send(ready);
            desk.pages.push(tx);
        });
        rx
    }

    /// Whether any page is signed in as `agent` (the gateway asks through [`Desks::ring`]).
    #[cfg(test)]
    fn signed_in(&self, agent: &str) -> bool {
        self.with(agent, Desk::present)
    }

    /// Rings `agent` for `call_id`; the receiver gets the page's answer. A call that is still
    /// ringing elsewhere is refused as busy, so two callers never race for one agent.
    pub fn ring(&self, agent: &str, call_id: &str) -> Result<oneshot::Receiver<RingReply>, RingRefused> {
        self.with(agent, |desk| {
            if !desk.present() {
                return Err(RingRefused::Offline(agent.to_string()));
            }
            let busy_with = desk.on_call.clone().or_else(|| desk.ringing.as_ref().filter(|r| !r.reply.is_closed()).map(|r| r.call_id.clone()));
            if let Some(call_id) = busy_with {
                return Err(RingRefused::Busy { agent: agent.to_string(), call_id });
            }
            let (reply, rx) = oneshot::channel();
            desk.ringing = Some(Ring { call_id: call_id.to_string(), reply });
            desk.tell(DeskEvent::Ring { call_id: call_id.to_string() });
            Ok(rx)
        })
    }

    /// A page answers or declines: the ring's reply channel, if `call_id` is still ringing for
    /// `agent`. Every page is told the ring stopped (the answering one ignores it).
    pub fn take_ring(&self, agent: &str, call_id: &str, why: &str) -> Option<oneshot::Sender<RingReply>> {
        self.with(agent, |desk| {
            if desk.ringing.as_ref().map(|r| r.call_id.as_str()) != Some(call_id) {
                return None;
            }
            let ring = desk.ringing.take()?;
            desk.tell(DeskEvent::RingStopped { call_id: call_id.to_string(), reason: why.to_string() });
            Some(ring.reply)
        })
    }

    /// The dialer gave up ringing (ring time over): pages stop showing the call.
    pub fn stop_ringing(&self, agent: &str, call_id: &str, reason: &str) {
        drop(self.take_ring(agent, call_id, reason));
    }

    /// The agent is now talking on `call_id`.
    pub fn on_call(&self, agent: &str, call_id: &str) {
        self.with(agent, |desk| desk.on_call = Some(call_id.to_string()));
    }

    /// The agent's call ended: free for the next ring.
    pub fn call_over(&self, agent: &str, call_id: &str, reason: &str) {
        self.with(agent, |desk| {
            if desk.on_call.as_deref() == Some(call_id) {
                desk.on_call = None;
            }
            desk.tell(DeskEvent::Ended { call_id: call_id.to_string(), reason: reason.to_string() });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(rx: &mut mpsc::Receiver<DeskEvent>) -> DeskEvent {
        rx.try_recv().expect("an event")
    }

    #[test]
    fn an_agent_is_present_while_a_page_listens() {
        let desks = Desks::default();
        assert_eq!(desks.ring("alice", "c1").err().expect("refused"), RingRefused::Offline("alice".into()));
        let mut page = desks.sign_in("alice");
        assert_eq!(next(&mut page), DeskEvent::Ready { agent: "alice".into(), ringing: None, on_call: None });
        assert!(desks.signed_in("alice"));
        drop(page);
        assert!(!desks.signed_in("alice"));
        assert_eq!(desks.ring("alice", "c1").err().expect("refused").sip_status(), 480);
    }

    #[test]
    fn every_page_rings_and_the_first_to_answer_takes_the_call() {
        let desks = Desks::default();
        let (mut a, mut b) = (desks.sign_in("alice"), desks.sign_in("alice"));
        next(&mut a);
        next(&mut b);
        let mut reply = desks.ring("alice", "c1").unwrap();
        assert_eq!(next(&mut a), DeskEvent::Ring { call_id: "c1".into() });
        assert_eq!(next(&mut b), DeskEvent::Ring { call_id: "c1".into() });
        // A second caller finds alice busy while she rings.
        assert_eq!(desks.ring("alice", "c2").err().expect("refused").sip_status(), 486);
        // Page a declines; page b's answer is too late.
        let taken = desks.take_ring("alice", "c1", "declined").expect("still ringing");
        assert!(desks.take_ring("alice", "c1", "answered").is_none());
        assert_eq!(next(&mut b), DeskEvent::RingStopped { call_id: "c1".into(), reason: "declined".into() });
        assert!(taken.send(RingReply::Declined).is_ok());
        assert!(matches!(reply.try_recv(), Ok(RingReply::Declined)));
        // Free again: the next caller rings.
        assert!(desks.ring("alice", "c2").is_ok());
    }

    #[test]
    fn an_agent_on_a_call_is_busy_until_it_ends() {
        let desks = Desks::default();
        let mut page = desks.sign_in("bob");
        next(&mut page);
        let _reply = desks.ring("bob", "c1").unwrap();
        next(&mut page);
        let _sender = desks.take_ring("bob", "c1", "answered").unwrap();
        desks.on_call("bob", "c1");
        assert_eq!(desks.ring("bob", "c2").err().expect("refused"), RingRefused::Busy { agent: "bob".into(), call_id: "c1".into() });
        // A page opened now learns bob is on c1.
        let mut late = desks.sign_in("bob");
        assert_eq!(next(&mut late), DeskEvent::Ready { agent: "bob".into(), ringing: None, on_call: Some("c1".into()) });
        desks.call_over("bob", "c1", "caller-hangup");
        assert_eq!(next(&mut late), DeskEvent::Ended { call_id: "c1".into(), reason: "caller-hangup".into() });
        assert!(desks.ring("bob", "c2").is_ok());
    }

    #[test]
    fn a_ring_the_dialer_gave_up_on_stops_on_every_page_and_frees_the_agent() {
        let desks = Desks::default();
        let mut page = desks.sign_in("carol");
        next(&mut page);
        let reply = desks.ring("carol", "c1").unwrap();
        next(&mut page);
        desks.stop_ringing("carol", "c1", "no-answer");
        assert_eq!(next(&mut page), DeskEvent::RingStopped { call_id: "c1".into(), reason: "no-answer".into() });
        assert!(desks.take_ring("carol", "c1", "answered").is_none(), "an answer after the ring time finds nothing");
        drop(reply);
        assert!(desks.ring("carol", "c2").is_ok());
        // Events serialize as the page reads them.
        let json = serde_json::to_value(DeskEvent::RingStopped { call_id: "c1".into(), reason: "no-answer".into() }).unwrap();
        assert_eq!(json["type"], "ring_stopped");
    }
}
