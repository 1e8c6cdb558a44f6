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
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

/// Events buffered per watcher between the broadcast and its gRPC stream. Beyond this the
/// watcher's own socket is slow; the broadcast behind it then lags and the watcher is dropped.
const WATCH_BUFFER: usize = 64;
/// How long a dropped watcher's final status may wait for room in its stream.
const DROP_NOTICE_WAIT: Duration = Duration::from_secs(1);
/// Set on a control forwarded to the node that owns the call: that node answers it itself and
/// never forwards it again (two nodes that disagree about an owner cannot ping-pong).
const FORWARDED: &str = "x-frontline-forwarded-by";
/// How long a forwarded control may take, connection included.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(5);

/// A control command as the contract has it, kept to forward to the call's node.
enum Forward {
    Hangup(pb::HangupRequest),
    Escalate(pb::EscalateRequest),
    Say(pb::SayRequest),
}

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

    /// Runs the command on the call if it is live here; a call live on another node sharing
    /// the records goes to that node (`metadata`: the request's, whose token goes along).
    async fn control(&self, call_id: &str, command: Control, forward: Forward, metadata: &MetadataMap) -> Result<Response<pb::ControlResponse>, Status> {
        if call_id.trim().is_empty() {
            return Err(Status::invalid_argument("call_id: required"));
        }
        match self.services.live.control(call_id, command).await {
            Ok(result) => Ok(Response::new(pb::ControlResponse { result })),
            Err(ControlRefused::NotFound(id)) if metadata.get(FORWARDED).is_none() => self.forward(&id, forward, metadata).await,
            Err(ControlRefused::NotFound(id)) => Err(Status::not_found(format!("no live call {id:?}"))),
            Err(ControlRefused::NotNow(why)) => Err(Status::failed_precondition(why)),
        }
    }

    /// The call's node, from the records: the call must be in progress there, and the node up.
    async fn owner_of(&self, call_id: &str) -> Result<crate::records::NodeStatus, Status> {
        let (records, key) = (self.services.records.clone(), call_id.to_string());
        let (stored, nodes) = tokio::task::spawn_blocking(move || (records.get(&key), records.nodes()))
            .await
            .map_err(|e| Status::internal(format!("record store: {e}")))?;
        let not_found = || Status::not_found(format!("no live call {call_id:?}"));
        let record = stored.map_err(|e| Status::unavailable(format!("record store: {e}")))?.ok_or_else(not_found)?;
        if record.cdr.outcome.is_some() || record.cdr.node == self.services.records.node() {
            return Err(not_found());
        }
        let nodes = nodes.map_err(|e| Status::unavailable(format!("record store: {e}")))?;
        match nodes.into_iter().find(|n| n.node == record.cdr.node) {
            Some(node) if node.up && !node.ops_url.is_empty() => Ok(node),
            _ => Err(Status::unavailable(format!("call {call_id:?} is on node {:?}, which is not answering", record.cdr.node))),
        }
    }

    async fn forward(&self, call_id: &str, forward: Forward, metadata: &MetadataMap) -> Result<Response<pb::ControlResponse>, Status> {
        let node = self.owner_of(call_id).await?;
        let unavailable = |e: &dyn std::fmt::Display| Status::unavailable(format!("node {:?} ({}): {e}", node.node, node.ops_url));
        let endpoint = tonic::transport::Endpoint::from_shared(node.ops_url.clone()).map_err(|e| unavailable(&e))?;
        let channel = endpoint.connect_timeout(FORWARD_TIMEOUT).timeout(FORWARD_TIMEOUT).connect().await.map_err(|e| unavailable(&e))?;
        let mut client = crate::proto::ops::ops_client::OpsClient::new(channel);
        let me = self.services.records.node();
        tracing::info!(call_id, node = %node.node, "ops: control forwarded to the call's node");
        match forward {
            Forward::Hangup(m) => client.hangup(forwarded(m, metadata, me)).await,
            Forward::Escalate(m) => client.escalate(forwarded(m, metadata, me)).await,
            Forward::Say(m) => client.say(forwarded(m, metadata, me)).await,
        }
    }

    async fn stored_calls(&self, query: crate::records::CallFilter) -> Result<Vec<crate::records::CallSummary>, Status> {
        let records = self.services.records.clone();
        tokio::task::spawn_blocking(move || records.list(&query))
            .await
            .map_err(|e| Status::internal(format!("record store: {e}")))?
            .map_err(|e| Status::unavailable(format!("record store: {e}")))
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

/// `message` as this node sends it on: with the caller's token, marked as forwarded by `me`.
fn forwarded<T>(message: T, metadata: &MetadataMap, me: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = metadata.get("authorization") {
        request.metadata_mut().insert("authorization", token.clone());
    }
    let by = me.parse().unwrap_or_else(|_| tonic::metadata::MetadataValue::from_static("node"));
    request.metadata_mut().insert(FORWARDED, by);
    request
}

/// The next relayed event, or never when there is no relay.
async fn recv_relayed(
    relayed: &mut Option<broadcast::Receiver<crate::records::relay::RelayedEvent>>,
) -> Result<crate::records::relay::RelayedEvent, broadcast::error::RecvError> {
    match relayed {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// A watcher that fell behind is told so and dropped: it never slows a call down.
async fn drop_slow_watcher(tx: &mpsc::Sender<Result<pb::CallEvent, Status>>, missed: u64) {
    tracing::warn!(missed, "ops watcher too slow: dropped");
    let status = Status::resource_exhausted(format!("watcher fell {missed} events behind and was dropped; reconnect (GetCall fills the gap)"));
    let _ = tokio::time::timeout(DROP_NOTICE_WAIT, tx.send(Err(status))).await;
}

type EventStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::CallEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Ops for OpsService {
    async fn list_calls(&self, request: Request<pb::ListCallsRequest>) -> Result<Response<pb::ListCallsResponse>, Status> {
        let filter = CallFilter::parse(request.get_ref())?;
        // Live calls from the registry; finished ones from the durable records (which also
        // hold calls from before a restart).
        let me = self.services.records.node().to_string();
        let mut calls: Vec<pb::CallSummary> = self
            .services
            .live
            .list()
            .iter()
            .filter(|s| s.state != CallState::Ended && filter.matches(s.state, &s.identity.channel))
            .take(filter.limit)
            .map(|s| pb::CallSummary { node: me.clone(), ..convert::summary(s) })
            .collect();
        let channel = filter.channel.as_deref().unwrap_or("sip");
        // Other nodes' live calls: their records in progress (the state each is in lives on
        // its own node: they show as answered).
        if filter.cluster && calls.len() < filter.limit && filter.matches(CallState::Answered, channel) {
            let query = crate::records::CallFilter {
                limit: filter.limit - calls.len(),
                channel: filter.channel.clone(),
                in_progress: Some(true),
                not_node: Some(me.clone()),
                ..Default::default()
            };
            calls.extend(self.stored_calls(query).await?.iter().map(convert::stored_summary));
        }
        if calls.len() < filter.limit && filter.matches(CallState::Ended, channel) {
            let query = crate::records::CallFilter {
                limit: filter.limit - calls.len(),
                channel: filter.channel.clone(),
                in_progress: Some(false),
                node: (!filter.cluster).then(|| me.clone()),
                ..Default::default()
            };
            calls.extend(self.stored_calls(query).await?.iter().map(convert::stored_summary));
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
        let me = self.services.records.node().to_string();
        // Other nodes' events, when asked and the records are shared; never any otherwise.
        let mut relayed = if filter.cluster { self.services.records.cluster_events() } else { None };
        tracing::info!(call_id = %filter.call_id.as_deref().unwrap_or("*"), types = ?filter.types, cluster = relayed.is_some(), "ops watcher subscribed");
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        tokio::spawn(async move {
            loop {
                let passed = tokio::select! {
                    event = events.recv() => match event {
                        Ok(event) => filter.pass(&event, &me),
                        Err(broadcast::error::RecvError::Lagged(missed)) => return drop_slow_watcher(&tx, missed).await,
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                    event = recv_relayed(&mut relayed) => match event {
                        // This node's own events came through the local bus already.
                        Ok(event) if event.node == me => None,
                        Ok(event) => filter.pass_relayed(&event),
                        Err(broadcast::error::RecvError::Lagged(missed)) => return drop_slow_watcher(&tx, missed).await,
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                };
                if let Some(ev) = passed {
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
        let active_calls: u32 = totals.active_by_state.iter().filter(|(s, _)| **s != CallState::Ended).map(|(_, n)| *n).sum();
        let me = self.services.records.node().to_string();
        let records = self.services.records.clone();
        // The nodes are a nicety of the answer: a record store that cannot be read leaves them
        // out rather than failing the node's own figures.
        let nodes = match tokio::task::spawn_blocking(move || records.nodes()).await {
            Ok(Ok(nodes)) => nodes,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "ops GetStats: nodes not read from the records");
                Vec::new()
            }
            Err(_) => Vec::new(),
        };
        // This node's own figure is live; the others' are as of their last heartbeat.
        let cluster_active_calls =
            active_calls + nodes.iter().filter(|n| n.up && n.node != me).map(|n| n.active_calls).sum::<u32>();
        let nodes = nodes
            .into_iter()
            .map(|n| pb::NodeStatus {
                active_calls: if n.node == me { active_calls } else { n.active_calls },
                node: n.node,
                ops_url: n.ops_url,
                started_at_ms: n.started_ms,
                seen_at_ms: n.seen_ms,
                draining: n.draining,
                up: n.up,
            })
            .collect();
        let stats = pb::GetStatsResponse {
            active_by_state: totals.active_by_state.iter().map(|(s, n)| (s.as_str().to_string(), *n)).collect(),
            active_calls,
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
            node: me,
            nodes,
            cluster_active_calls,
        };
        Ok(Response::new(stats))
    }

    async fn hangup(&self, request: Request<pb::HangupRequest>) -> Result<Response<pb::ControlResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        let command = Control::Hangup { reason: req.reason.clone() };
        self.control(&req.call_id.clone(), command, Forward::Hangup(req), &metadata).await
    }

    async fn escalate(&self, request: Request<pb::EscalateRequest>) -> Result<Response<pb::ControlResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        let reason = if req.reason.trim().is_empty() { "supervisor request".to_string() } else { req.reason.clone() };
        self.control(&req.call_id.clone(), Control::Escalate { reason }, Forward::Escalate(req), &metadata).await
    }

    async fn say(&self, request: Request<pb::SayRequest>) -> Result<Response<pb::ControlResponse>, Status> {
        let (metadata, _, req) = request.into_parts();
        if req.text.trim().is_empty() {
            return Err(Status::invalid_argument("text: required"));
        }
        if !matches!(req.language.as_str(), "" | "en" | "zh") {
            return Err(Status::invalid_argument(format!("language: {:?}: use en or zh (or leave empty)", req.language)));
        }
        let language = Some(req.language.clone()).filter(|l| !l.is_empty());
        let command = Control::Say { text: req.text.clone(), language };
        self.control(&req.call_id.clone(), command, Forward::Say(req), &metadata).await
    }

    async fn set_draining(&self, request: Request<pb::SetDrainingRequest>) -> Result<Response<pb::SetDrainingResponse>, Status> {
        let on = request.get_ref().draining;
        self.services.set_draining(on);
        let active = self.services.active_calls() as u32;
        tracing::info!(draining = on, active_calls = active, "ops: draining set");
        Ok(Response::new(pb::SetDrainingResponse { draining: on, active_calls: active }))
    }
}
