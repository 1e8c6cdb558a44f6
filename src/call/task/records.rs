//! The call task's side of the durable record, the recording and the metrics: each hook is
//! called where the event happens in the task, and hands the work off (records and WAV to their
//! writer threads, metrics to atomic counters), so none of it waits on a disk.

use super::CallTask;
use crate::call::registry::TurnSummary;
use crate::call::turn::Turn;
use crate::call::CallServices;
use crate::handoff::HandoffPacket;
use crate::media::session::MediaStats;
use crate::records::recording::CallRecording;
use crate::records::{CallEnd, Cdr, DecisionRecord, Outcome, StateChange};
use crate::speech::stt::Transcript;
use crate::triage::Escalation;

/// Starts the call's WAV when recording is on. A failure (disk full, folder gone) is logged
/// and the call goes on unrecorded.
pub(super) fn start_recording(services: &CallServices, call_id: &str) -> Option<CallRecording> {
    let config = &services.config.recording;
    if !config.enabled {
        return None;
    }
    match CallRecording::start(config, call_id) {
        Ok(r) => Some(r),
        Err(e) => {
            metrics::counter!("frontline_recording_errors_total").increment(1);
            tracing::error!(call_id, dir = %config.dir.display(), error = %e, "cannot record the call; it goes on unrecorded");
            None
        }
    }
}

/// A turn is over (its reply went out, or it was cut short): stored, and its latencies counted.
pub(super) fn turn_done(services: &CallServices, call_id: &str, turn: &Turn) {
    let summary = TurnSummary::of(turn);
    let stages = [
        ("transcript", summary.transcript_ms),
        ("brain", summary.brain_ms),
        ("tts", summary.tts_ms),
        ("first_rtp", summary.first_rtp_ms),
    ];
    for (stage, ms) in stages {
        if let Some(ms) = ms {
            metrics::histogram!("frontline_turn_stage_seconds", "stage" => stage).record(ms as f64 / 1000.0);
        }
    }
    services.records.turn(call_id, &summary);
}

impl CallTask {
    /// The record's row, in progress, as soon as the call starts.
    pub(super) fn record_start(&self) {
        self.services.records.begin(Cdr {
            call_id: self.call_id.clone(),
            sip_call_id: self.sip_call_id.clone(),
            caller: self.caller.clone(),
            callee: self.callee.clone(),
            channel: format!("{:?}", self.channel).to_lowercase(),
            codec: self.codec.clone(),
            started_at_ms: crate::call::events::now_ms().saturating_sub(self.started.elapsed().as_millis() as u64),
            recording: self.recording.as_ref().map(|r| r.path().display().to_string()),
            ..Cdr::default()
        });
    }

    /// Recognition speed of one utterance: how much faster than real time whisper ran.
    pub(super) fn record_recognition(&self, transcript: &Transcript) {
        if transcript.audio_ms > 0 {
            metrics::histogram!("frontline_recognition_rtf").record(f64::from(transcript.decode_ms) / f64::from(transcript.audio_ms));
        }
    }

    /// Triage's decision, its evidence, and the packet the agent gets: into the record (and the
    /// log, masked).
    pub(super) fn store_packet(&self, esc: &Escalation, packet: &HandoffPacket) {
        metrics::counter!("frontline_escalations_total", "reason" => esc.code.clone()).increment(1);
        self.services.records.decision(&self.call_id, DecisionRecord::of(esc, crate::call::events::now_ms()));
        let masked = self.services.records.handoff(&self.call_id, packet);
        tracing::info!(call_id = %self.call_id, packet = %masked, "handoff packet");
    }

    /// The final CDR, committed before the call is reported as ended. Bounded: a stuck disk
    /// delays the end by at most the store's wait, and is counted as a write error.
    pub(super) async fn record_end(&self, outcome: &str, reason: &str, stats: &MediaStats) {
        metrics::counter!("frontline_calls_total", "outcome" => outcome.to_string()).increment(1);
        let jitter = stats.jitter;
        metrics::counter!("frontline_rtp_packets_lost_total").increment(jitter.lost);
        metrics::counter!("frontline_rtp_packets_received_total").increment(jitter.received);
        let expected = jitter.received + jitter.lost;
        if expected > 0 {
            metrics::histogram!("frontline_rtp_loss_ratio").record(jitter.lost as f64 / expected as f64);
            metrics::histogram!("frontline_rtp_jitter_ms").record(f64::from(jitter.jitter_ms));
        }
        let ended_at_ms = crate::call::events::now_ms();
        let mut timeline: Vec<StateChange> = self
            .services
            .live
            .get(&self.call_id)
            .map(|s| s.timeline.iter().map(|(state, at_ms)| StateChange { state: state.as_str().into(), at_ms: *at_ms }).collect())
            .unwrap_or_default();
        // The registry enters "ended" after the call is reported; the record has it now.
        timeline.push(StateChange { state: crate::call::registry::CallState::Ended.as_str().into(), at_ms: ended_at_ms });
        let media = serde_json::json!({
            "packets_sent": stats.packets_sent, "packets_received": stats.packets_received,
            "packets_ignored": stats.packets_ignored, "packets_lost": jitter.lost, "late": jitter.late,
            "concealed": jitter.concealed, "jitter_ms": jitter.jitter_ms,
        });
        let end = CallEnd {
            call_id: self.call_id.clone(),
            ended_at_ms,
            outcome: Outcome::parse(outcome).unwrap_or(Outcome::Failed),
            reason: reason.to_string(),
            timeline,
            media: Some(media),
        };
        if let Err(e) = self.services.records.finish(end).await {
            tracing::error!(call_id = %self.call_id, error = %e, "call record not committed");
        }
    }
}
