//! The agent console: a plain web page (no build step; `assets/console/`) and the small JSON
//! and Server-Sent Events API it reads, served on the gateway's HTTP port (8080 by default).
//!
//! - `GET /console` the page (`/` is the WebRTC caller page: `crate::edge::webrtc`)
//! - `GET /api/calls` live and recently ended calls: stage, caller, handoff packet, transcript
//! - `GET /api/calls/{id}` one of them
//! - `GET /api/calls/{id}/handoff` the handoff packet (404 with a reason when there is none)
//! - `GET /api/calls/{id}/suggestions` suggested answers from the brain (501 when it has none)
//! - `GET /api/events` every [`CallEvent`] as it happens (SSE, event name = its `type`)
//! - `GET /console/report` the report page, over
//! - `GET /api/report?since=&until=&days=` `frontline report` over the records: the tables as
//!   HTML, the plots as SVG, and `frontline review`'s groups of what the playbook missed
//!
//! With `[http] console_tokens` set, `/api/...` and the agents' desks need a sign-in: see
//! [`crate::web::console_auth`].
//!
//! The WebRTC edge's routes (the caller page, signaling, the agents' desks) share this port:
//! `main` hands them to [`serve`] ready-made, so the console names no edge.
//!
//! The call list is a projection ([`view`]) of the live-call registry that the Ops API reads
//! too: one read model, so the console and Ops never disagree about a call. A handler copies
//! what it shows under the registry's lock (never held across an await).

pub mod config;
pub mod view;

pub use config::HttpConfig;
pub use view::{CallStage, CallView, NoHandoff};

use crate::call::registry::CallSnapshot;
use crate::call::CallServices;
use crate::dialog::DialogError;
use crate::metrics::MetricsConfig;
use crate::web::console_auth::{self, ConsoleAuth};
use crate::web::sse_event;
use axum::extract::{Path, Query, State};
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
use tokio::task::JoinHandle;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::BroadcastStream;

const PAGE_HTML: &str = include_str!("../../assets/console/index.html");
const PAGE_JS: &str = include_str!("../../assets/console/console.js");
const PAGE_CSS: &str = include_str!("../../assets/console/console.css");
const REPORT_HTML: &str = include_str!("../../assets/console/report.html");
const REPORT_JS: &str = include_str!("../../assets/console/report.js");

/// How often an idle event stream sends a comment, so proxies and browsers keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot serve the agent console on {addr}: {source} (is another gateway or web server using the port? set [http] listen in the config, or --http-port N; 0 picks a free port)")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

#[derive(Clone)]
struct App {
    services: Arc<CallServices>,
    /// `[metrics] enabled`: whether `/metrics` answers.
    metrics: bool,
    /// The replies that mean the AI did not understand, for the report's failed turns.
    fallback_replies: Arc<Vec<String>>,
}

/// Binds `addr` (so the caller knows the port even when it asked for 0) and serves the console,
/// with `edge_routes` (the WebRTC edge's) beside it, until the returned task is aborted.
pub async fn serve(
    addr: SocketAddr,
    services: Arc<CallServices>,
    auth: ConsoleAuth,
    metrics: &MetricsConfig,
    fallback_replies: Vec<String>,
    edge_routes: Router,
) -> Result<(SocketAddr, JoinHandle<()>), HttpError> {
    let (listener, local) = bind(addr).await?;
    let app = router(App { services, metrics: metrics.enabled, fallback_replies: Arc::new(fallback_replies) }, auth).merge(edge_routes);
    let task = tokio::spawn(async move {
        // The peer's address reaches the console's sign-in check (loopback-only without tokens).
        if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
            tracing::error!(error = %e, "agent console server stopped");
        }
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
        .route("/api/report", get(report))
        .route_layer(signed_in);
    let session = Router::new()
        .route("/console/session", get(console_auth::session).post(console_auth::sign_in).delete(console_auth::sign_out))
        .with_state(auth);
    Router::new()
        .route("/console", get(|| async { page(PAGE_HTML, "text/html; charset=utf-8") }))
        .route("/console/console.js", get(|| async { page(PAGE_JS, "text/javascript; charset=utf-8") }))
        .route("/console/console.css", get(|| async { page(PAGE_CSS, "text/css; charset=utf-8") }))
        .route("/console/report", get(|| async { page(REPORT_HTML, "text/html; charset=utf-8") }))
        .route("/console/report.js", get(|| async { page(REPORT_JS, "text/javascript; charset=utf-8") }))
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

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

#[derive(serde::Deserialize)]
struct ReportQuery {
    since: Option<String>,
    until: Option<String>,
    days: Option<u32>,
}

/// `frontline report` and `frontline review list` for the console: the same figures and groups
/// from the same records.
async fn report(State(app): State<App>, Query(q): Query<ReportQuery>) -> Response {
    use crate::records::cli::{build_report, missed_utterances, report_days};
    let today = (crate::clock::now_ms() / 86_400_000) as i64;
    let days = match report_days(q.since.as_deref(), q.until.as_deref(), q.days.unwrap_or(7), today) {
        Ok(days) => days,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let location = app.services.records.location().clone();
    let rules = crate::records::report::FailureRules { low_confidence: 0.5, fallback_replies: app.fallback_replies.to_vec() };
    // A database read: off the async workers.
    let built = tokio::task::spawn_blocking(move || {
        let (title, report) = build_report(&location, days, &rules)?;
        let missed = missed_utterances(&report);
        Ok::<_, crate::records::RecordError>((title.clone(), crate::records::report::html_of_markdown(&report.markdown(&title)), report.plots(), missed))
    })
    .await;
    match built {
        Ok(Ok((title, html, Ok(plots), missed))) => {
            let plots: Vec<_> = plots.into_iter().map(|(name, svg)| json!({ "name": name, "svg": svg })).collect();
            Json(json!({ "title": title, "html": html, "plots": plots, "missed": missed })).into_response()
        }
        Ok(Ok((_, _, Err(e), _))) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("drawing the plots: {e}")),
        Ok(Err(e)) => error(StatusCode::SERVICE_UNAVAILABLE, format!("the records cannot be read: {e}")),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("the report failed: {e}")),
    }
}

/// Live calls first (newest first), then the recently finished (newest first).
async fn list_calls(State(app): State<App>) -> Response {
    let calls: Vec<CallView> = app.services.live.list().into_iter().map(CallView::from).collect();
    Json(json!({ "calls": calls })).into_response()
}

fn unknown_call(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, NoHandoff::UnknownCall(id.to_string()).to_string())
}

async fn one_call(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.services.live.get(&id) {
        Some(call) => Json(CallView::from(call)).into_response(),
        None => unknown_call(&id),
    }
}

async fn handoff(State(app): State<App>, Path(id): Path<String>) -> Response {
    match app.services.live.get(&id) {
        Some(CallSnapshot { handoff: Some(packet), .. }) => Json(packet).into_response(),
        Some(_) => error(StatusCode::NOT_FOUND, NoHandoff::NotHandedOver(id).to_string()),
        None => unknown_call(&id),
    }
}

/// Caller lines sent with a suggestion request: the `Suggest` contract takes at most 50.
const SUGGEST_LINES: usize = 50;

async fn suggestions(State(app): State<App>, Path(id): Path<String>) -> Response {
    let Some(view) = app.services.live.get(&id) else { return unknown_call(&id) };
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
