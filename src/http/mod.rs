//! The agent console: a plain web page (no build step; `assets/console/`) and the small JSON
//! and Server-Sent Events API it reads, served on the gateway's HTTP port (8080 by default).
//!
//! - `GET /console` the page (`/` is the WebRTC caller page: `crate::edge::webrtc`)
//! - `GET /api/calls` live and recently ended calls: stage, caller, handoff packet, transcript
//! - `GET /api/calls/{id}` one of them
//! - `GET /api/calls/{id}/handoff` the handoff packet (404 with a reason when there is none)
//! - `GET /api/calls/{id}/suggestions` suggested answers from the brain (501 when it has none)
//! - `GET /api/events` every [`CallEvent`] as it happens (SSE, event name = its `type`)
//!
//! With `[http] console_tokens` set, `/api/...` and the agents' desks need a sign-in: see
//! [`crate::web::console_auth`].
//!
//! The WebRTC edge's routes (the caller page, signaling, the agents' desks) share this port:
//! `main` hands them to [`serve`] ready-made, so the console names no edge.
//!
//! The call list lives in a [`ConsoleState`] owned by one task that follows `services.events`;
//! request handlers only ask that task, so no lock is ever held across a call's hot path.

pub mod config;
pub mod state;

pub use config::HttpConfig;
pub use state::{CallStage, CallView, ConsoleState, LiveLine, NoHandoff};

use crate::call::events::CallEvent;
use crate::call::CallServices;
use crate::dialog::DialogError;
use crate::metrics::MetricsConfig;
use crate::web::console_auth::{self, ConsoleAuth};
use crate::web::sse_event;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::stream::{Stream, StreamExt};
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

const PAGE_HTML: &str = include_str!("../../assets/console/index.html");
const PAGE_JS: &str = include_str!("../../assets/console/console.js");
const PAGE_CSS: &str = include_str!("../../assets/console/console.css");

/// How often an idle event stream sends a comment, so proxies and browsers keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot serve the agent console on {addr}: {source} (is another gateway or web server using the port? set [http] listen in the config, or --http-port N; 0 picks a free port)")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// A question for the task that owns the [`ConsoleState`].
enum Query {
    Calls(oneshot::Sender<serde_json::Value>),
    Call(String, oneshot::Sender<Option<CallView>>),
}

#[derive(Clone)]
struct App {
    services: Arc<CallServices>,
    queries: mpsc::Sender<Query>,
    /// `[metrics] enabled`: whether `/metrics` answers.
    metrics: bool,
}

/// Binds `addr` (so the caller knows the port even when it asked for 0), starts the task that
/// follows the calls, and serves the console, with `edge_routes` (the WebRTC edge's) beside
/// it, until the returned task is aborted.
pub async fn serve(
    addr: SocketAddr,
    services: Arc<CallServices>,
    auth: ConsoleAuth,
    metrics: &MetricsConfig,
    edge_routes: Router,
) -> Result<(SocketAddr, JoinHandle<()>), HttpError> {
    let (listener, local) = bind(addr).await?;

    // Subscribe before serving, so no call that starts after "ready" is missed.
    let events = services.events.subscribe();
    let (queries, query_rx) = mpsc::channel(64);
    let state_task = tokio::spawn(own_state(events, query_rx));

    let app = router(App { services, queries, metrics: metrics.enabled }, auth).merge(edge_routes);
    let task = tokio::spawn(async move {
        // The peer's address reaches the console's sign-in check (loopback-only without tokens).
        if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
            tracing::error!(error = %e, "agent console server stopped");
        }
        state_task.abort();
    });
    Ok((local, task))
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), HttpError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| HttpError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| HttpError::Bind { addr, source })?;
    Ok((listener, local))
}

fn router(app: App, auth: ConsoleAuth) -> Router {
    let signed_in = axum::middleware::from_fn_with_state(auth.clone(), console_auth::require);
    let api = Router::new()
        .route("/api/calls", get(list_calls))
        .route("/api/calls/{id}", get(one_call))
        .route("/api/calls/{id}/handoff", get(handoff))
        .route("/api/calls/{id}/suggestions", get(suggestions))
        .route("/api/events", get(events))
        .route_layer(signed_in);
    let session = Router::new()
        .route("/console/session", get(console_auth::session).post(console_auth::sign_in).delete(console_auth::sign_out))
        .with_state(auth);
    Router::new()
        .route("/console", get(|| async { page(PAGE_HTML, "text/html; charset=utf-8") }))
        .route("/console/console.js", get(|| async { page(PAGE_JS, "text/javascript; charset=utf-8") }))
        .route("/console/console.css", get(|| async { page(PAGE_CSS, "text/css; charset=utf-8") }))
        .route("/metrics", get(metrics))
        .merge(api)
        .with_state(app)
        .merge(session)
}

/// Prometheus scrape: see `crate::metrics` for the names.
async fn metrics(State(app): State<App>) -> Response {
    if !app.metrics {
        return (StatusCode::NOT_FOUND, "metrics are off ([metrics] enabled = false)").into_response();
    }
    let body = crate::metrics::render(&crate::metrics::install(), &app.services);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    // The page is embedded in the binary: a new gateway version must not be served from a
    // browser's stale cache.
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// The one owner of the console state: folds events in, answers queries.
async fn own_state(mut events: broadcast::Receiver<CallEvent>, mut queries: mpsc::Receiver<Query>) {
    let mut state = ConsoleState::new();
    loop {
        tokio::select! {
            // Events first: a query answered right after an event must already reflect it.
            biased;
            ev = events.recv() => match ev {
                Ok(ev) => state.apply(&ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "agent console fell behind the call events");
                    state.note_missed(n);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            q = queries.recv() => match q {
                Some(Query::Calls(reply)) => {
                    let _ = reply.send(json!({ "calls": state.calls(), "missed_events": state.missed_events() }));
                }
                Some(Query::Call(id, reply)) => {
                    let _ = reply.send(state.call(&id).cloned());
                }
                None => return,
            },
        }
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn state_gone() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "the console's call list is not running (the gateway is shutting down)")
}

async fn ask_call(app: &App, id: String) -> Result<Option<CallView>, Response> {
    let (tx, rx) = oneshot::channel();
    app.queries.send(Query::Call(id, tx)).await.map_err(|_| state_gone())?;
    rx.await.map_err(|_| state_gone())
}

async fn list_calls(State(app): State<App>) -> Response {
    let (tx, rx) = oneshot::channel();
    if app.queries.send(Query::Calls(tx)).await.is_err() {
        return state_gone();
    }
    match rx.await {
        Ok(v) => Json(v).into_response(),
        Err(_) => state_gone(),
    }
}

fn unknown_call(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, NoHandoff::UnknownCall(id.to_string()).to_string())
}

async fn one_call(State(app): State<App>, Path(id): Path<String>) -> Response {
    match ask_call(&app, id.clone()).await {
        Ok(Some(view)) => Json(view).into_response(),
        Ok(None) => unknown_call(&id),
        Err(r) => r,
    }
}

async fn handoff(State(app): State<App>, Path(id): Path<String>) -> Response {
    match ask_call(&app, id.clone()).await {
        Ok(Some(CallView { handoff: Some(packet), .. })) => Json(packet).into_response(),
        Ok(Some(_)) => error(StatusCode::NOT_FOUND, NoHandoff::NotHandedOver(id).to_string()),
        Ok(None) => unknown_call(&id),
        Err(r) => r,
    }
}

/// Caller lines sent with a suggestion request: the `Suggest` contract takes at most 50.
const SUGGEST_LINES: usize = 50;

async fn suggestions(State(app): State<App>, Path(id): Path<String>) -> Response {
    let view = match ask_call(&app, id.clone()).await {
        Ok(Some(view)) => view,
        Ok(None) => return unknown_call(&id),
        Err(r) => return r,
    };
    let intent = view.handoff.as_ref().map(|p| p.intent.as_str()).unwrap_or("");
    let caller_lines: Vec<String> = view.transcript.iter().filter(|l| l.speaker == "caller").map(|l| l.text.clone()).collect();
    let recent = &caller_lines[caller_lines.len().saturating_sub(SUGGEST_LINES)..];
    match app.services.brain.suggest(&id, &view.language, intent, recent).await {
        Ok(list) => {
            let list: Vec<serde_json::Value> =
                list.iter().map(|s| json!({ "text": s.text, "intent": s.intent, "score": s.score })).collect();
            Json(json!({ "call_id": id, "suggestions": list })).into_response()
        }
        Err(e @ DialogError::Unsupported { .. }) => {
            error(StatusCode::NOT_IMPLEMENTED, format!("suggestions are not available from this brain: {e}"))
        }
        Err(e @ DialogError::Unreachable { .. }) => error(StatusCode::GATEWAY_TIMEOUT, e.to_string()),
        Err(e) => error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

/// Every call event as SSE. A subscriber too slow for the bus gets `event: lagged` with how
/// many it missed, and goes on with the next events (the page then reloads the call list).
async fn events(State(app): State<App>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = BroadcastStream::new(app.services.events.subscribe()).map(|item| {
        Ok(match item {
            Ok(ev) => sse_event(&ev),
            Err(BroadcastStreamRecvError::Lagged(n)) => Event::default().event("lagged").data(json!({ "missed": n }).to_string()),
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_taken_port_is_an_error_naming_the_address_and_the_fix() {
        let (_held, addr) = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let err = bind(addr).await.unwrap_err().to_string();
        assert!(err.contains(&addr.to_string()) && err.contains("--http-port"), "{err}");
    }
}
