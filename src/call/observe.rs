//! The observers of call events. The core emits each event once; this is the one place that
//! hands it to everyone who keeps something of it: the durable record, the metrics, the log,
//! the live-call read model (Ops and the console) and the broadcast bus (Ops watchers, the
//! console page, a caller's own page). A new event is added to `CallEvent` and emitted by the
//! core; each observer below decides whether it cares (the matches are exhaustive, so the
//! compiler points at every observer that must decide).

use super::events::{CallEvent, CallEvents};
use super::registry::LiveCalls;
use crate::handoff::AgentTarget;
use crate::records::{CallEnd, Cdr, DecisionRecord, Outcome, RecordStore, StateChange};
use std::sync::Arc;

/// Everyone who watches calls.
#[derive(Clone)]
pub struct Observers {
    pub records: RecordStore,
    pub live: Arc<LiveCalls>,
    pub bus: CallEvents,
}

impl Observers {
    /// Hands `event` to every observer. The record comes first and, for the end of a call,
    /// is committed (bounded wait) before anyone else hears that the call ended.
    pub async fn emit(&self, event: CallEvent) {
        record(&self.records, &event).await;
        count(&event);
        log(&event);
        self.live.observe(&event);
        relay(&self.records, &event);
        self.bus.publish(event);
    }
}

/// The other gateways sharing the records database hear of the event too (Ops watchers with
/// the cluster scope), in the same JSON the local watchers get.
fn relay(records: &RecordStore, event: &CallEvent) {
    if !records.is_shared() {
        return;
    }
    if let Ok(json) = serde_json::to_string(event) {
        records.publish_event(event.call_id(), event.kind(), event.at_ms(), json);
    }
}

/// The durable record: the CDR row in progress at the start, turns, decisions and the packet as
/// they happen (handed to the writer thread), and the final CDR committed at the end.
async fn record(records: &RecordStore, event: &CallEvent) {
    match event {
        CallEvent::Started { call_id, caller, callee, channel, at_ms, setup } => {
            let setup = setup.as_deref().cloned().unwrap_or_default();
            records.begin(Cdr {
                call_id: call_id.clone(),
                sip_call_id: setup.sip_call_id,
                caller: caller.clone(),
                callee: callee.clone(),
                channel: channel.clone(),
                codec: setup.codec,
                started_at_ms: *at_ms,
                recording: setup.recording,
                customer_id: setup.customer_id.unwrap_or_default(),
                ..Cdr::default()
            });
        }
        CallEvent::Turn { call_id, turn, .. } => records.turn(call_id, turn),
        CallEvent::Escalated { call_id, packet, decision, at_ms } => {
            if let Some(decision) = decision {
                records.decision(call_id, DecisionRecord::of(decision, *at_ms));
            }
            let masked = records.handoff(call_id, packet);
            tracing::info!(call_id = %call_id, packet = %masked, "handoff packet");
        }
        CallEvent::Ended { call_id, reason, outcome, at_ms, summary } => {
            let summary = summary.as_deref().cloned().unwrap_or_default();
            let mut timeline: Vec<StateChange> =
                summary.timeline.iter().map(|(state, at)| StateChange { state: state.clone(), at_ms: *at }).collect();
            timeline.push(StateChange { state: "ended".into(), at_ms: *at_ms });
            let (stats, jitter) = (&summary.media, summary.media.jitter);
            let media = serde_json::json!({
                "packets_sent": stats.packets_sent, "packets_received": stats.packets_received,
                "packets_ignored": stats.packets_ignored, "packets_lost": jitter.lost, "late": jitter.late,
                "concealed": jitter.concealed, "jitter_ms": jitter.jitter_ms,
            });
            let end = CallEnd {
                call_id: call_id.clone(),
                ended_at_ms: *at_ms,
                outcome: Outcome::parse(outcome).unwrap_or(Outcome::Failed),
                reason: reason.clone(),
                timeline,
                media: Some(media),
                intents: summary.intents.clone(),
                summary: summary.summary.clone(),
                survey: summary.survey,
            };
            match records.finish(end).await {
                Ok(()) => {}
                // The outage itself was logged once, by the records writer.
                Err(e @ crate::records::RecordError::Queued) => tracing::warn!(call_id = %call_id, error = %e, "call record queued"),
                Err(e) => tracing::error!(call_id = %call_id, error = %e, "call record not committed"),
            }
        }
        // Signs of life: after a kill -9 the call's duration ends at the last of them.
        CallEvent::State { call_id, at_ms, .. }
        | CallEvent::Said { call_id, at_ms, .. }
        | CallEvent::NoInput { call_id, at_ms, .. }
        | CallEvent::AgentDialed { call_id, at_ms, .. }
        | CallEvent::Bridged { call_id, at_ms, .. }
        | CallEvent::BrainFailed { call_id, at_ms, .. }
        | CallEvent::Recognized { call_id, at_ms, .. } => records.touch(call_id, *at_ms),
    }
}

/// Prometheus counters and histograms (atomics: never a wait).
fn count(event: &CallEvent) {
    match event {
        CallEvent::Turn { turn, .. } => {
            // Spoken turns only: keypad turns and the greeting carry no recognition.
            if !turn.heard.trim().is_empty() && !turn.heard.starts_with("DTMF ") {
                metrics::histogram!("frontline_recognition_confidence").record(f64::from(turn.confidence));
            }
            let stages = [("transcript", turn.transcript_ms), ("brain", turn.brain_ms), ("tts", turn.tts_ms), ("first_rtp", turn.first_rtp_ms)];
            for (stage, ms) in stages {
                if let Some(ms) = ms {
                    metrics::histogram!("frontline_turn_stage_seconds", "stage" => stage).record(ms as f64 / 1000.0);
                }
            }
        }
        CallEvent::Recognized { audio_ms, decode_ms, .. } if *audio_ms > 0 => {
            metrics::histogram!("frontline_recognition_rtf").record(f64::from(*decode_ms) / f64::from(*audio_ms));
        }
        CallEvent::NoInput { .. } => metrics::counter!("frontline_no_input_total").increment(1),
        CallEvent::Escalated { decision: Some(d), .. } => {
            metrics::counter!("frontline_escalations_total", "reason" => d.code.clone()).increment(1);
        }
        CallEvent::AgentDialed { agent, result, .. } => {
            let kind = match AgentTarget::of(agent) {
                AgentTarget::Sip(_) => "sip",
                AgentTarget::Console(_) => "console",
                AgentTarget::Registered(_) => "registered",
            };
            metrics::counter!("frontline_agent_dials_total", "kind" => kind, "result" => result.clone()).increment(1);
        }
        CallEvent::BrainFailed { .. } => metrics::counter!("frontline_brain_errors_total").increment(1),
        CallEvent::Ended { outcome, summary, .. } => {
            metrics::counter!("frontline_calls_total", "outcome" => outcome.clone()).increment(1);
            if let Some(rating) = summary.as_ref().and_then(|s| s.survey) {
                metrics::counter!("frontline_survey_answers_total", "outcome" => outcome.clone()).increment(1);
                metrics::counter!("frontline_survey_score_total", "outcome" => outcome.clone()).increment(u64::from(rating.score));
            }
            if let Some(summary) = summary {
                let jitter = summary.media.jitter;
                metrics::counter!("frontline_rtp_packets_lost_total").increment(jitter.lost);
                metrics::counter!("frontline_rtp_packets_received_total").increment(jitter.received);
                let expected = jitter.received + jitter.lost;
                if expected > 0 {
                    metrics::histogram!("frontline_rtp_loss_ratio").record(jitter.lost as f64 / expected as f64);
                    metrics::histogram!("frontline_rtp_jitter_ms").record(f64::from(jitter.jitter_ms));
                }
            }
        }
        CallEvent::Started { .. }
        | CallEvent::State { .. }
        | CallEvent::Said { .. }
        | CallEvent::Recognized { .. }
        | CallEvent::Escalated { .. }
        | CallEvent::Bridged { .. } => {}
    }
}

/// The structured lines a person running the gateway reads to follow each call.
fn log(event: &CallEvent) {
    match event {
        CallEvent::Started { call_id, caller, callee, channel, setup, .. } => {
            let setup = setup.as_deref().cloned().unwrap_or_default();
            tracing::info!(call_id, sip_call_id = %setup.sip_call_id, caller, callee, codec = %setup.codec, channel, "call started");
        }
        CallEvent::State { call_id, state, .. } => tracing::debug!(call_id, state, "call state"),
        CallEvent::Said { call_id, speaker, text, .. } if speaker != "bot" => {
            tracing::info!(call_id, speaker, text, "transcript");
        }
        CallEvent::Said { .. } => {}
        CallEvent::Turn { call_id, turn, .. } => tracing::info!(
            call_id, turn = turn.number, language = %turn.language, heard = %turn.heard, reply = %turn.reply,
            confidence = turn.confidence, speech_ms = turn.speech_ms,
            transcript_ms = turn.transcript_ms.unwrap_or(0), brain_ms = turn.brain_ms.unwrap_or(0),
            tts_ms = turn.tts_ms.unwrap_or(0), first_rtp_ms = turn.first_rtp_ms.unwrap_or(0),
            "turn"
        ),
        CallEvent::NoInput { call_id, count, silence_ms, .. } => tracing::info!(call_id, count, silence_ms, "no input from the caller"),
        CallEvent::Escalated { call_id, decision: Some(esc), .. } => {
            let evidence = serde_json::to_string(&esc.evidence).unwrap_or_default();
            tracing::info!(
                call_id, category = esc.category.as_str(), code = %esc.code, priority = esc.priority.as_str(),
                turn = esc.turn, evidence = %evidence, "escalation"
            );
        }
        CallEvent::Escalated { .. } => {}
        CallEvent::AgentDialed { call_id, agent, result, .. } => tracing::info!(call_id, agent, result, "agent dialed"),
        // The core logs the bridge itself, with the decision-to-bridge time.
        CallEvent::Bridged { .. } => {}
        CallEvent::BrainFailed { call_id, reason, .. } => tracing::warn!(call_id, reason, "brain failed: apologizing"),
        CallEvent::Recognized { .. } => {}
        CallEvent::Ended { call_id, reason, outcome, summary, .. } => {
            let s = summary.as_deref().cloned().unwrap_or_default();
            tracing::info!(
                call_id, reason, outcome, turns = s.turns, duration_ms = s.duration_ms,
                escalation = s.escalation.as_deref().unwrap_or(""), failure = s.failure.as_deref().unwrap_or(""),
                packets_sent = s.media.packets_sent, packets_received = s.media.packets_received,
                packets_ignored = s.media.packets_ignored, packets_lost = s.media.jitter.lost,
                "call ended"
            );
        }
    }
}
