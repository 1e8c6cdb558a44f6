//! The agent's side of a browser-to-browser handoff: an agent signed in on the agent console
//! page (`[handoff] agents = ["console:alice"]`) is rung there, answers with a WebRTC offer,
//! and that peer becomes the call's agent leg, bridged by the call task exactly like a SIP
//! agent's RTP.
//!
//! - `GET /webrtc/agents/{name}/events` signs the page in (SSE of [`DeskEvent`]s)
//! - `POST /webrtc/agents/{name}/calls/{call_id}` answers a ring with an SDP offer
//!   (`201 Created`, the answer, a `Location` to DELETE to hang up)
//! - `POST /webrtc/agents/{name}/calls/{call_id}/decline` declines it

use super::desk::RingReply;
use super::peer::{PeerWatch, WebrtcEdge};
use super::{error, origin_allowed, sdp_body, with_cors};
use crate::call::events::call_ended;
use crate::call::{AgentDial, AgentDialer, AgentLeg, DialOutcome};
use crate::handoff::{valid_agent_name, AgentTarget, CONSOLE_SCHEME};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;

/// How long an answering agent's browser may take to connect before the caller goes to the
/// next agent (or the fallback); ICE and DTLS take well under a second on a LAN.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idle desk stream sends a comment: a closed tab is noticed when a write fails,
/// so this also bounds how long a vanished agent still looks signed in.
const DESK_KEEP_ALIVE: Duration = Duration::from_secs(5);

/// Rings console agents for the call task.
pub struct ConsoleDialer {
    pub edge: Arc<WebrtcEdge>,
}

fn failed(status: Option<u16>, reason: impl Into<String>) -> DialOutcome {
    DialOutcome::Failed { status, reason: reason.into() }
}

impl AgentDialer for ConsoleDialer {
    fn dial(&self, request: AgentDial) -> Pin<Box<dyn Future<Output = DialOutcome> + Send + '_>> {
        Box::pin(self.ring(request))
    }
}

impl ConsoleDialer {
    async fn ring(&self, request: AgentDial) -> DialOutcome {
        let AgentTarget::Console(agent) = AgentTarget::of(&request.target) else {
            return failed(None, format!("{} is not a console agent", request.target));
        };
        let desks = self.edge.desks();
        // Subscribed before ringing, so a caller who hangs up at once is not missed.
        let caller_left = call_ended(self.edge.services().events.subscribe(), request.call_id.clone());
        let reply = match desks.ring(agent, &request.call_id) {
            Ok(reply) => reply,
            Err(refused) => return failed(Some(refused.sip_status()), refused.to_string()),
        };
        tracing::info!(call_id = %request.call_id, agent = %request.target, "ringing console agent");
        let answered = tokio::select! {
            a = tokio::time::timeout(request.ring_timeout, reply) => a,
            () = caller_left => {
                // The agent's pages stop ringing for a caller who is gone.
                tracing::info!(call_id = %request.call_id, agent = %request.target, "the caller left while the agent rang: cancelled");
                desks.stop_ringing(agent, &request.call_id, "caller-left");
                return failed(None, "the caller left while the agent's desk rang");
            }
        };
        match answered {
            Err(_) => {
                desks.stop_ringing(agent, &request.call_id, "no-answer");
                failed(None, format!("no answer within {} s", request.ring_timeout.as_secs()))
            }
            Ok(Err(_)) => failed(None, "the agent's page went away while ringing"),
            Ok(Ok(RingReply::Declined)) => failed(Some(603), format!("console agent {agent} declined")),
            Ok(Ok(RingReply::Failed(why))) => failed(None, format!("console agent {agent} could not connect: {why}")),
            Ok(Ok(RingReply::Answering(connecting))) => match tokio::time::timeout(CONNECT_TIMEOUT + Duration::from_secs(1), connecting).await {
                Ok(Ok(Ok(leg))) => DialOutcome::Answered(leg),
                Ok(Ok(Err(why))) => failed(None, format!("console agent {agent} answered but could not connect: {why}")),
                _ => failed(None, format!("console agent {agent} answered but did not connect")),
            },
        }
    }
}

/// The agent name from the path, if it is one the configuration lists as `console:NAME`.
fn configured_agent(edge: &WebrtcEdge, name: &str) -> Result<(), Response> {
    if !valid_agent_name(name) {
        return Err(error(StatusCode::BAD_REQUEST, "an agent name is 1 to 64 letters, digits, '.', '_' or '-'"));
    }
    let target = format!("{CONSOLE_SCHEME}{name}");
    if !edge.services().settings.handoff.agents.contains(&target) {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("{name} is not a console agent here: add \"{target}\" to [handoff] agents in the gateway's config (or --agent {target})"),
        ));
    }
    Ok(())
}

/// The page's sign-in: events for this agent until the page closes the stream.
pub(super) async fn desk_events(State(edge): State<Arc<WebrtcEdge>>, Path(name): Path<String>, headers: HeaderMap) -> Response {
    let origin = match origin_allowed(&edge, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    if let Err(r) = configured_agent(&edge, &name) {
        return with_cors(r, origin);
    }
    tracing::info!(agent = %name, "console agent signed in");
    let events = ReceiverStream::new(edge.desks().sign_in(&name)).map(|ev| Ok::<_, std::convert::Infallible>(crate::web::sse_event(&ev)));
    let r = Sse::new(events).keep_alive(KeepAlive::new().interval(DESK_KEEP_ALIVE).text("keep-alive")).into_response();
    with_cors(r, origin)
}

pub(super) async fn decline(State(edge): State<Arc<WebrtcEdge>>, Path((name, call_id)): Path<(String, String)>, headers: HeaderMap) -> Response {
    let origin = match origin_allowed(&edge, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let r = match configured_agent(&edge, &name) {
        Err(r) => r,
        Ok(()) => match edge.desks().take_ring(&name, &call_id, "declined") {
            Some(reply) => {
                let _ = reply.send(RingReply::Declined);
                tracing::info!(%call_id, agent = %name, "console agent declined");
                StatusCode::OK.into_response()
            }
            None => not_ringing(&name, &call_id),
        },
    };
    with_cors(r, origin)
}

fn not_ringing(name: &str, call_id: &str) -> Response {
    error(StatusCode::CONFLICT, format!("call {call_id} is not ringing for {name}: it was taken on another page, the ring time ran out, or the caller left"))
}

/// The agent picks up: the page's offer becomes the agent leg of the ringing call.
pub(super) async fn answer(State(edge): State<Arc<WebrtcEdge>>, Path((name, call_id)): Path<(String, String)>, headers: HeaderMap, body: Bytes) -> Response {
    let origin = match origin_allowed(&edge, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let r = match configured_agent(&edge, &name).and_then(|()| sdp_body(&headers, &body)) {
        Err(r) => r,
        Ok(offer) => match edge.desks().take_ring(&name, &call_id, "answered") {
            None => not_ringing(&name, &call_id),
            Some(reply) => connect_agent(&edge, &name, &call_id, offer, reply).await,
        },
    };
    with_cors(r, origin)
}

async fn connect_agent(edge: &Arc<WebrtcEdge>, name: &str, call_id: &str, offer: &str, reply: oneshot::Sender<RingReply>) -> Response {
    let peer = match edge.connect(offer).await {
        Ok(peer) => peer,
        Err(e) => {
            let _ = reply.send(RingReply::Failed(e.to_string()));
            return error(e.http_status(), e.to_string());
        }
    };
    let (connected_tx, connected_rx) = oneshot::channel();
    if reply.send(RingReply::Answering(connected_rx)).is_err() {
        // The ring time ran out while the connection was being set up.
        let _ = peer.pc.close().await;
        return not_ringing(name, call_id);
    }
    edge.desks().on_call(name, call_id);
    let (session, close_rx) = edge.open_session(call_id);
    let grace = Duration::from_millis(edge.config().disconnect_grace_ms);
    let watch = PeerWatch::new(peer.news, format!("{call_id}/agent {name}"), grace);
    let (hangup_tx, hangup_rx) = mpsc::channel(1);
    let (ended_tx, ended_rx) = oneshot::channel();
    let leg = AgentLeg { media: peer.media, media_events: peer.media_events, hangup: hangup_tx, ended: ended_rx, codec: "opus".into() };
    let run = AgentLegRun { edge: edge.clone(), agent: name.to_string(), call_id: call_id.to_string(), session: session.clone(), pc: peer.pc, watch, close: close_rx };
    tokio::spawn(run.connect_then_run(leg, connected_tx, hangup_rx, ended_tx));
    tracing::info!(%call_id, agent = %name, "console agent answered");
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/sdp".to_string()), (header::LOCATION, format!("/webrtc/calls/{session}"))],
        peer.sdp,
    )
        .into_response()
}

/// The agent's leg once answered: hands it to the call when the browser has connected, then
/// ends it from whichever side goes first: the agent's hang-up (DELETE), the agent's browser
/// going away, or the call task releasing the agent (the caller left).
struct AgentLegRun {
    edge: Arc<WebrtcEdge>,
    agent: String,
    call_id: String,
    session: String,
    pc: Arc<dyn webrtc::peer_connection::PeerConnection>,
    watch: PeerWatch,
    close: mpsc::Receiver<()>,
}

impl AgentLegRun {
    async fn connect_then_run(
        mut self,
        leg: AgentLeg,
        connected: oneshot::Sender<Result<AgentLeg, String>>,
        mut released: mpsc::Receiver<()>,
        ended: oneshot::Sender<String>,
    ) {
        let connecting = tokio::select! {
            c = tokio::time::timeout(CONNECT_TIMEOUT, self.watch.connected()) => c.unwrap_or(Err("webrtc-timeout")),
            _ = self.close.recv() => Err("hangup"),
        };
        let reason = match connecting {
            Ok(()) => match connected.send(Ok(leg)) {
                Ok(()) => {
                    let reason = tokio::select! {
                        _ = released.recv() => "caller-side-ended".to_string(),
                        _ = self.close.recv() => "agent-hangup".to_string(),
                        gone = self.watch.gone() => format!("agent-{gone}"),
                    };
                    let _ = ended.send(reason.clone());
                    reason
                }
                // The caller's side stopped waiting (the caller left, or gave up on us).
                Err(_) => "caller-side-ended".to_string(),
            },
            Err(why) => {
                tracing::warn!(call_id = %self.call_id, agent = %self.agent, reason = why, "console agent answered but never connected");
                let _ = connected.send(Err(why.to_string()));
                format!("agent-{why}")
            }
        };
        tracing::info!(call_id = %self.call_id, agent = %self.agent, %reason, "console agent leg ended");
        self.edge.desks().call_over(&self.agent, &self.call_id, &reason);
        self.edge.close_session(&self.session);
        if let Err(e) = self.pc.close().await {
            tracing::debug!(call_id = %self.call_id, error = %e, "closing the agent's peer connection failed");
        }
    }
}
