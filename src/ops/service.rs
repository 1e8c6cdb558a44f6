//! The `frontline.ops.v1.Ops` service: reads the live-call registry and the event broadcast,
//! and sends control commands to call tasks. Never holds a call up: reads copy snapshots,
//! watchers read a broadcast that drops them rather than wait.

use super::convert::{self, CallFilter, EventFilter};
use crate::call::registry::{percentile, CallState, Control, ControlRefused, TurnSummary};
use crate::call::CallServices;
use crate::proto::ops as pb;
use crate::proto::ops::ops_server::Ops;
use crate::speech::config::SpeechConfig;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Events buffered per watcher between the broadcast and its gRPC stream. Beyond this the
/// watcher's own socket is slow; the broadcast behind it then lags and the watcher is dropped.
const WATCH_BUFFER: usize = 64;
/// How long a dropped watcher's final status may wait for room in its stream.
const DROP_NOTICE_WAIT: Duration = Duration::from_secs(1);

pub struct OpsService {
    services: Arc<CallServices>,
    /// The `[speech]` section, for the recognizer's model and workers.
    speech: SpeechConfig,
    started: Instant,
}

impl OpsService {
    pub fn new(services: Arc<CallServices>, speech: SpeechConfig) -> OpsService {
        OpsService { services, speech, started: Instant::now() }
    }

    async fn control(&self, call_id: &str, command: Control) -> Result<Response<pb::ControlResponse>, Status> {
        if call_id.trim().is_empty() {
            return Err(Status::invalid_argument("call_id: required"));
        }
        match self.services.live.control(call_id, command).await {
            Ok(result) => Ok(Response::new(pb::ControlResponse { result })),
            Err(ControlRefused::NotFound(id)) => Err(Status::not_found(format!("no live call {id:?}"))),
            Err(ControlRefused::NotNow(why)) => Err(Status::failed_precondition(why)),
        }
    }

    fn models(&self) -> pb::ModelInfo {
        let speech = &self.speech;
        let path = speech.whisper_path().map(|p| p.display().to_string()).unwrap_or_default();
        pb::ModelInfo {
            recognizer: format!("whisper {}", speech.model),
            recognizer_path: path,
            multilingual: self.services.stt.is_multilingual(),
            recognizer_workers: speech.workers as u32,
            synthesizer: "espeak-ng".into(),
            brain: self.services.brain.url().to_string(),
        }
    }
}

type EventStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::CallEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Ops for OpsService {
    async fn list_calls(&self, request: Request<pb::ListCallsRequest>) -> Result<Response<pb::ListCallsResponse>, Status> {
        let filter = CallFilter::parse(request.get_ref())?;
        // Live calls from the registry; finished ones from the durable records (which also
        // hold calls from before a restart).
        let mut calls: Vec<pb::CallSummary> = self
            .services
            .live
            .list()
            .iter()
            .filter(|s| s.state != CallState::Ended && filter.matches(s.state, &s.identity.channel))
            .take(filter.limit)
            .map(convert::summary)
            .collect();
        let room = filter.limit - calls.len();
        if room > 0 && filter.matches(CallState::Ended, filter.channel.as_deref().unwrap_or("sip")) {
            let records = self.services.records.clone();
            let query = crate::records::CallFilter { limit: room, channel: filter.channel.clone(), in_progress: Some(false), ..Default::default() };
            let finished = tokio::task::spawn_blocking(move || records.list(&query))
                .await
                .map_err(|e| Status::internal(format!("record store: {e}")))?
                .map_err(|e| Status::unavailable(format!("record store: {e}")))?;
            calls.extend(finished.iter().map(convert::stored_summary));
        }
        Ok(Response::new(pb::ListCallsResponse { calls }))
    }

    async fn get_call(&self, request: Request<pb::GetCallRequest>) -> Result<Response<pb::GetCallResponse>, Status> {
        let id = request.get_ref().call_id.trim();
        if id.is_empty() {
            return Err(Status::invalid_argument("call_id: required"));
        }
        let snapshot = self.services.live.get(id);
        if let Some(live) = snapshot.as_ref().filter(|s| s.state != CallState::Ended) {
            return Ok(Response::new(pb::GetCallResponse { call: Some(convert::record(live)) }));
        }
        // Ended: the durable record is the reference; the registry's recent copy covers a
        // record not written (a failing disk is reported at run time, calls go on).
        let (records, key) = (self.services.records.clone(), id.to_string());
        let stored = tokio::task::spawn_blocking(move || records.get(&key))
            .await
            .map_err(|e| Status::internal(format!("record store: {e}")))?;
        match (stored, snapshot) {
            (Ok(Some(record)), recent) => {
                let mut call = convert::stored_record(&record);
                // The store keeps turns; the recent copy also has the supervisor's and the
                // agent's lines.
                if let Some(recent) = recent {
                    call.transcript = convert::record(&recent).transcript;
                }
                Ok(Response::new(pb::GetCallResponse { call: Some(call) }))
            }
            (_, Some(recent)) => Ok(Response::new(pb::GetCallResponse { call: Some(convert::record(&recent)) })),
            (Ok(None), None) => Err(Status::not_found(format!("no call {id:?}"))),
            (Err(e), None) => Err(Status::unavailable(format!("record store: {e}"))),
        }
    }

    type WatchEventsStream = EventStream;

    async fn watch_events(&self, request: Request<pb::WatchEventsRequest>) -> Result<Response<EventStream>, Status> {
        let filter = EventFilter::parse(request.get_ref())?;
        let mut events = self.services.events.subscribe();
        tracing::info!(call_id = %filter.call_id.as_deref().unwrap_or("*"), types = ?filter.types, "ops watcher subscribed");
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        tokio::spawn(async move {
            loop {
                let event = match events.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "ops watcher too slow: dropped");
                        let status = Status::resource_exhausted(format!(
                            "watcher fell {missed} events behind and was dropped; reconnect (GetCall fills the gap)"
                        ));
                        let _ = tokio::time::timeout(DROP_NOTICE_WAIT, tx.send(Err(status))).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if let Some(ev) = filter.pass(&event) {
                    // Waiting here is the watcher's own back-pressure: calls publish into the
                    // broadcast, which never waits for us.
                    if tx.send(Ok(ev)).await.is_err() {
                        return; // the watcher hung up
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn get_stats(&self, _request: Request<pb::GetStatsRequest>) -> Result<Response<pb::GetStatsResponse>, Status> {
        let totals = self.services.live.totals();
        let finished = totals.finished;
        let share = |n: u64| if finished == 0 { 0.0 } else { n as f64 / finished as f64 };
        let outcome = |name: &str| totals.outcomes.get(name).copied().unwrap_or(0);
        let stage = |pick: fn(&TurnSummary) -> Option<u64>| {
            let mut values: Vec<u64> = totals.recent_turns.iter().filter_map(pick).collect();
            Some(pb::LatencyPercentiles {
                p50_ms: percentile(&mut values, 50) as u32,
                p90_ms: percentile(&mut values, 90) as u32,
                p99_ms: percentile(&mut values, 99) as u32,
            })
        };
        let stats = pb::GetStatsResponse {
            active_by_state: totals.active_by_state.iter().map(|(s, n)| (s.as_str().to_string(), *n)).collect(),
            active_calls: totals.active_by_state.iter().filter(|(s, _)| **s != CallState::Ended).map(|(_, n)| *n).sum(),
            draining: self.services.is_draining(),
            calls_finished: finished,
            containment_rate: share(outcome("contained")),
            escalation_rate: share(outcome("escalated")),
            escalation_rate_by_reason: totals.escalations.iter().map(|(code, n)| (code.clone(), share(*n))).collect(),
            outcomes: totals.outcomes.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            first_rtp: stage(|t| t.first_rtp_ms),
            transcript: stage(|t| t.transcript_ms),
            brain: stage(|t| t.brain_ms),
            tts: stage(|t| t.tts_ms),
            turns_sampled: totals.recent_turns.len() as u32,
            recognition_queue_depth: self.services.stt.queue_depth() as u32,
            models: Some(self.models()),
            uptime_ms: self.started.elapsed().as_millis() as u64,
        };
        Ok(Response::new(stats))
    }

    async fn hangup(&self, request: Request<pb::HangupRequest>) -> Result<Response<pb::ControlResponse>, Status> {
        let req = request.into_inner();
        self.control(&req.call_id, Control::Hangup { reason: req.reason }).await
    }

    async fn escalate(&self, request: Request<pb::EscalateRequest>) -> Result<Response<pb::ControlResponse>, Status> {
        let req = request.into_inner();
        let reason = if req.reason.trim().is_empty() { "supervisor request".to_string() } else { req.reason };
        self.control(&req.call_id, Control::Escalate { reason }).await
    }

    async fn say(&self, request: Request<pb::SayRequest>) -> Result<Response<pb::ControlResponse>, Status> {
        let req = request.into_inner();
        if req.text.trim().is_empty() {
            return Err(Status::invalid_argument("text: required"));
        }
        if !matches!(req.language.as_str(), "" | "en" | "zh") {
            return Err(Status::invalid_argument(format!("language: {:?}: use en or zh (or leave empty)", req.language)));
        }
        let language = Some(req.language).filter(|l| !l.is_empty());
        self.control(&req.call_id, Control::Say { text: req.text, language }).await
    }

    async fn set_draining(&self, request: Request<pb::SetDrainingRequest>) -> Result<Response<pb::SetDrainingResponse>, Status> {
        let on = request.get_ref().draining;
        self.services.set_draining(on);
        let active = self.services.active_calls() as u32;
        tracing::info!(draining = on, active_calls = active, "ops: draining set");
        Ok(Response::new(pb::SetDrainingResponse { draining: on, active_calls: active }))
    }
}
