//! What the agent console shows of a call: a projection of the live-call registry's snapshot
//! (`crate::call::registry`, the one read model Ops reads too), in the words an agent thinks
//! in. Sans-IO: a pure function of the snapshot.

use crate::call::registry::{CallSnapshot, CallState, LiveLine};
use crate::handoff::HandoffPacket;
use serde::Serialize;
use std::sync::Arc;

/// Where a call stands, as an agent thinks of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallStage {
    /// The AI is talking with the caller.
    Ai,
    /// Triage decided to hand over; an agent is being rung.
    HandingOver,
    /// An agent answered and is talking with the caller.
    Bridged,
    Ended,
}

impl CallStage {
    /// The call's state as the console names it: before the handoff the AI has the call,
    /// from answering on.
    pub fn of(state: CallState) -> CallStage {
        match state {
            CallState::Ringing | CallState::Answered | CallState::Ai => CallStage::Ai,
            CallState::HandingOver => CallStage::HandingOver,
            CallState::Bridged => CallStage::Bridged,
            CallState::Ended => CallStage::Ended,
        }
    }
}

/// One call as the console page reads it (`GET /api/calls`, `/api/calls/{id}`).
#[derive(Debug, Clone, Serialize)]
pub struct CallView {
    pub call_id: String,
    pub caller: String,
    pub callee: String,
    pub channel: String,
    pub stage: CallStage,
    /// The language the call is going on in, as last reported ("en", "zh"); empty until known.
    pub language: String,
    pub started_at_ms: u64,
    pub updated_at_ms: u64,
    /// The agent's URI once bridged.
    pub agent: Option<String>,
    pub handoff: Option<Arc<HandoffPacket>>,
    pub transcript: Vec<LiveLine>,
    /// Lines dropped from the front of `transcript` to bound a long call's memory.
    pub transcript_dropped: usize,
    pub end_reason: Option<String>,
    pub outcome: Option<String>,
}

impl From<CallSnapshot> for CallView {
    fn from(s: CallSnapshot) -> CallView {
        CallView {
            call_id: s.identity.call_id,
            caller: s.identity.caller,
            callee: s.identity.callee,
            channel: s.identity.channel,
            stage: CallStage::of(s.state),
            language: s.language,
            started_at_ms: s.started_at_ms,
            updated_at_ms: s.updated_at_ms,
            agent: s.agent,
            handoff: s.handoff,
            transcript: s.transcript,
            transcript_dropped: s.transcript_dropped,
            end_reason: s.end_reason,
            outcome: s.outcome,
        }
    }
}

/// Why a call has no handoff packet to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoHandoff {
    #[error("no call {0} among the live and the last {kept} calls", kept = crate::call::registry::FINISHED_KEPT)]
    UnknownCall(String),
    #[error("call {0} has not been handed over to a person: the AI handled it")]
    NotHandedOver(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::events::CallEvent;
    use crate::call::registry::{CallIdentity, LiveCalls, MAX_LINES_PER_CALL};

    fn said(id: &str, speaker: &str, text: &str, language: &str, at: u64) -> CallEvent {
        CallEvent::Said { call_id: id.into(), speaker: speaker.into(), text: text.into(), language: language.into(), turn: 1, at_ms: at }
    }

    fn state(id: &str, state: &str, at: u64) -> CallEvent {
        CallEvent::State { call_id: id.into(), state: state.into(), at_ms: at }
    }

    fn escalated(id: &str, at: u64) -> CallEvent {
        let packet = HandoffPacket {
            call_id: id.into(),
            caller: "+15550100".into(),
            language: "en".into(),
            code: "explicit-request".into(),
            ..HandoffPacket::default()
        };
        CallEvent::Escalated { call_id: id.into(), packet: Box::new(packet), at_ms: at, decision: None }
    }

    fn ended(id: &str, at: u64) -> CallEvent {
        CallEvent::Ended { call_id: id.into(), reason: "caller-bye".into(), outcome: "escalated".into(), at_ms: at, summary: None }
    }

    fn view(live: &LiveCalls, id: &str) -> CallView {
        CallView::from(live.get(id).expect("the call is known"))
    }

    fn registry_with(id: &str) -> (Arc<LiveCalls>, crate::call::registry::LiveCallHandle) {
        let live = Arc::new(LiveCalls::new());
        let identity = CallIdentity { call_id: id.into(), caller: "+15550100".into(), callee: "ivr".into(), channel: "sip".into(), codec: "PCMU".into() };
        let (handle, _control) = live.register(identity);
        (live, handle)
    }

    #[test]
    fn a_handed_over_call_shows_its_packet_transcript_agent_and_end() {
        let (live, _handle) = registry_with("c1");
        live.observe(&state("c1", "ai", 1000));
        live.observe(&said("c1", "caller", "I want to speak to a real person.", "en", 2000));
        live.observe(&said("c1", "bot", "Connecting you now.", "", 2500));
        let v = view(&live, "c1");
        assert_eq!((v.stage, v.language.as_str(), v.caller.as_str()), (CallStage::Ai, "en", "+15550100"));
        assert!(v.handoff.is_none());

        live.observe(&escalated("c1", 2600));
        live.observe(&state("c1", "handing_over", 2600));
        let v = view(&live, "c1");
        assert_eq!(v.stage, CallStage::HandingOver);
        assert_eq!(v.handoff.as_ref().unwrap().code, "explicit-request");

        live.observe(&state("c1", "bridged", 5000));
        live.observe(&CallEvent::Bridged { call_id: "c1".into(), agent: "sip:agent@10.0.0.7".into(), at_ms: 5000 });
        live.observe(&said("c1", "agent", "Hi, this is Sam, how can I help?", "", 6000));
        let v = view(&live, "c1");
        assert_eq!(v.stage, CallStage::Bridged);
        assert_eq!(v.agent.as_deref(), Some("sip:agent@10.0.0.7"));
        let speakers: Vec<&str> = v.transcript.iter().map(|l| l.speaker.as_str()).collect();
        assert_eq!(speakers, ["caller", "bot", "agent"]);

        live.observe(&ended("c1", 9000));
        // A late bridge does not reopen it.
        live.observe(&CallEvent::Bridged { call_id: "c1".into(), agent: "sip:other@h".into(), at_ms: 8000 });
        let v = view(&live, "c1");
        assert_eq!((v.stage, v.outcome.as_deref()), (CallStage::Ended, Some("escalated")));
        assert_eq!(v.agent.as_deref(), Some("sip:agent@10.0.0.7"));
        // The packet stays fetchable after the call, for the agent's wrap-up.
        assert!(v.handoff.is_some());
    }

    #[test]
    fn a_long_transcript_keeps_its_latest_lines_and_counts_the_dropped() {
        let (live, _handle) = registry_with("c");
        for i in 0..MAX_LINES_PER_CALL + 5 {
            live.observe(&said("c", "caller", &format!("line {i}"), "en", i as u64));
        }
        let v = view(&live, "c");
        assert_eq!(v.transcript.len(), MAX_LINES_PER_CALL);
        assert_eq!(v.transcript_dropped, 5);
        assert_eq!(v.transcript[0].text, "line 5");
    }

    #[test]
    fn the_json_names_stage_packet_and_lines_as_the_page_reads_them() {
        let (live, _handle) = registry_with("c1");
        live.observe(&escalated("c1", 2));
        live.observe(&state("c1", "handing_over", 2));
        live.observe(&said("c1", "caller", "hello", "", 3));
        let json = serde_json::to_value(view(&live, "c1")).unwrap();
        assert_eq!(json["stage"], "handing_over");
        assert_eq!(json["language"], "en", "taken from the packet when no line named it");
        assert_eq!(json["handoff"]["code"], "explicit-request");
        assert_eq!(json["transcript"][0]["speaker"], "caller");
        assert_eq!(json["transcript"][0]["at_ms"], 3);
    }

    #[test]
    fn before_the_handoff_every_live_state_is_the_ai_stage() {
        assert_eq!(CallStage::of(CallState::Answered), CallStage::Ai);
        assert_eq!(CallStage::of(CallState::HandingOver), CallStage::HandingOver);
    }
}
