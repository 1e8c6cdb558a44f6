//! Browser callers over WebRTC: the caller page and WHIP-style signaling on the gateway's HTTP
//! port, Opus 48 kHz media, RFC 4733 keypad. Only the edge differs from a SIP call: the call
//! task, the brain, triage and handoff are shared.
//!
//! - `GET /` the caller page (`assets/caller/`, plain HTML and JS)
//! - `GET /webrtc/phone.js` the WebRTC line both pages use
//! - `GET /webrtc/config` the STUN/TURN servers the page should use
//! - `POST /webrtc/calls` an SDP offer (`application/sdp`) → `201 Created`, the answer, a
//!   `Location` to DELETE to hang up, and `X-Frontline-Call-Id` (the id in `/api/events`)
//! - `DELETE /webrtc/calls/{session}` hangs up (a caller's call or an agent's leg)
//! - `GET /webrtc/calls/{session}/events` the captions of that call only (SSE): the words said
//!   on it, the agent joining, the end. The session id is the key, so no page sees another
//!   caller's words.
//! - `/webrtc/agents/...` agents answering handed-over calls on the console page: see [`agent`]
//!
//! Candidates are not trickled: the answer carries them all (host candidates are immediate).

pub mod agent;
pub mod codec;
pub mod config;
pub mod desk;
mod driver;
pub mod offer;
mod peer;

pub use config::WebrtcConfig;
pub use offer::OfferError;
pub use peer::{CallError, WebrtcEdge};

use crate::call::events::CallEvent;
use crate::call::CallServices;
use crate::edge::RtpConfig;
use crate::web::console_auth::{self, ConsoleAuth};
use crate::web::sse_event;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use futures::stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

const PAGE_HTML: &str = include_str!("../../../assets/caller/index.html");
const PAGE_JS: &str = include_str!("../../../assets/caller/caller.js");
const PAGE_CSS: &str = include_str!("../../../assets/caller/caller.css");
/// The WebRTC line both pages use (the caller page and the agent console's desk).
const PHONE_JS: &str = include_str!("../../../assets/webrtc/phone.js");

/// Response header carrying the call id, so the page can follow its captions on the SSE feed.
pub const CALL_ID_HEADER: &str = "x-frontline-call-id";

/// The routes of the WebRTC edge, to merge into the gateway's HTTP router; the agents' desks
/// sit behind the console's sign-in (`auth`). With `[webrtc]` disabled only `/` remains,
/// redirecting to the agent console as before.
pub fn router(config: WebrtcConfig, rtp: RtpConfig, services: Arc<CallServices>, auth: ConsoleAuth) -> Router {
    if !config.enabled {
        return Router::new().route("/", get(|| async { Redirect::to("/console") }));
    }
    let edge = WebrtcEdge::new(config, rtp, services.clone());
    let dialer: Arc<dyn crate::call::AgentDialer> = Arc::new(agent::ConsoleDialer { edge: edge.clone() });
    if services.dialers.console.set(dialer).is_err() {
        tracing::warn!("a second WebRTC edge started; console agents are rung through the first");
    }
    Router::new()
        .route("/", get(|| async { asset(PAGE_HTML, "text/html; charset=utf-8") }))
        .route("/caller/caller.js", get(|| async { asset(PAGE_JS, "text/javascript; charset=utf-8") }))
        .route("/caller/caller.css", get(|| async { asset(PAGE_CSS, "text/css; charset=utf-8") }))
        .route("/webrtc/phone.js", get(|| async { asset(PHONE_JS, "text/javascript; charset=utf-8") }))
        .route("/webrtc/config", get(ice_config))
        .route("/webrtc/calls", axum::routing::post(post_offer).options(preflight))
        .route("/webrtc/calls/{session}", delete(delete_session).options(preflight))
        .route("/webrtc/calls/{session}/events", get(session_events))
        .merge(
            Router::new()
                .route("/webrtc/agents/{name}/events", get(agent::desk_events))
                .route("/webrtc/agents/{name}/calls/{call_id}", axum::routing::post(agent::answer).options(preflight))
                .route("/webrtc/agents/{name}/calls/{call_id}/decline", axum::routing::post(agent::decline).options(preflight))
                .route_layer(axum::middleware::from_fn_with_state(auth, console_auth::require)),
        )
        .with_state(edge)
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// What the origin policy says about one request.
#[derive(Debug, PartialEq, Eq)]
enum OriginVerdict {
    /// No Origin header (curl, tests, native apps) or the gateway's own page: no CORS headers.
    SameOrigin,
    /// The configured other origin: answer with CORS headers naming it.
    Cross,
    Refused,
}

/// Same-origin pages, the configured origin (or any, with "*") and clients that send no
/// Origin may use the API; other web pages may not. Checked on the server too, because a
/// cross-origin POST with a "simple" content type would skip the browser's preflight.
fn origin_verdict(allowed: &str, origin: Option<&str>, host: &str) -> OriginVerdict {
    let Some(origin) = origin else { return OriginVerdict::SameOrigin };
    if origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host) {
        return OriginVerdict::SameOrigin;
    }
    if allowed == "*" || (!allowed.is_empty() && allowed.trim_end_matches('/') == origin) {
        return OriginVerdict::Cross;
    }
    OriginVerdict::Refused
}

/// The origin to name in CORS headers (none for same-origin), or the 403 for a refused one.
fn origin_allowed(edge: &WebrtcEdge, headers: &HeaderMap) -> Result<Option<HeaderValue>, Response> {
    let origin = headers.get(header::ORIGIN);
    let origin_str = origin.map(|o| o.to_str().unwrap_or("\u{fffd}"));
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    match origin_verdict(&edge.config().allowed_origin, origin_str, host) {
        OriginVerdict::SameOrigin => Ok(None),
        OriginVerdict::Cross => Ok(origin.cloned()),
        OriginVerdict::Refused => Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "origin {:?} may not place calls here; set [webrtc] allowed_origin to it in the gateway's config",
                origin_str.unwrap_or_default()
            ),
        )),
    }
}

fn with_cors(mut r: Response, origin: Option<HeaderValue>) -> Response {
    if let Some(o) = origin {
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o);
        h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("location, x-frontline-call-id, retry-after"));
        h.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    r
}

async fn preflight(State(edge): State<Arc<WebrtcEdge>>, headers: HeaderMap) -> Response {
    match origin_allowed(&edge, &headers) {
        Ok(origin) => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, DELETE, OPTIONS"));
            h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("content-type"));
            with_cors(r, origin)
        }
        Err(r) => r,
    }
}

async fn ice_config(State(edge): State<Arc<WebrtcEdge>>) -> Response {
    let cfg = edge.config();
    let servers = if cfg.ice_servers.is_empty() {
        json!([])
    } else {
        json!([{ "urls": cfg.ice_servers, "username": cfg.turn_username, "credential": cfg.turn_credential }])
    };
    Json(json!({ "iceServers": servers })).into_response()
}

impl CallError {
    /// The HTTP answer to an offer that got no call.
    fn http_status(&self) -> StatusCode {
        match self {
            CallError::Refused(_) => StatusCode::SERVICE_UNAVAILABLE,
            CallError::Offer(OfferError::Malformed(_)) | CallError::Negotiation(_) => StatusCode::BAD_REQUEST,
            CallError::Offer(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CallError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The SDP offer in a POST body: 415 unless it is `application/sdp`, 400 unless it is text.
fn sdp_body<'a>(headers: &HeaderMap, body: &'a Bytes) -> Result<&'a str, Response> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.to_ascii_lowercase().starts_with("application/sdp") {
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("POST the SDP offer as application/sdp (got {content_type:?})")));
    }
    std::str::from_utf8(body).map_err(|_| error(StatusCode::BAD_REQUEST, "malformed SDP offer: the body is not UTF-8"))
}

async fn post_offer(State(edge): State<Arc<WebrtcEdge>>, headers: HeaderMap, body: Bytes) -> Response {
    let origin = match origin_allowed(&edge, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let text = match sdp_body(&headers, &body) {
        Ok(t) => t,
        Err(r) => return with_cors(r, origin),
    };
    let r = match edge.answer(text).await {
        Ok(answer) => {
            let location = format!("/webrtc/calls/{}", answer.session);
            (
                StatusCode::CREATED,
                [(header::CONTENT_TYPE, "application/sdp".to_string()), (header::LOCATION, location), (header::HeaderName::from_static(CALL_ID_HEADER), answer.call_id)],
                answer.sdp,
            )
                .into_response()
        }
        Err(e) => {
            let status = e.http_status();
            tracing::info!(error = %e, status = status.as_u16(), "webrtc offer refused");
            let mut r = error(status, e.to_string());
            if let CallError::Refused(_) = e {
                let retry = edge.services().calls.retry_after_secs.to_string();
                r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_str(&retry).expect("digits"));
            }
            r
        }
    };
    with_cors(r, origin)
}

async fn delete_session(State(edge): State<Arc<WebrtcEdge>>, Path(session): Path<String>, headers: HeaderMap) -> Response {
    let origin = match origin_allowed(&edge, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let r = if edge.hang_up(&session) {
        StatusCode::OK.into_response()
    } else {
        error(StatusCode::NOT_FOUND, "no such WebRTC session (already ended?)")
    };
    with_cors(r, origin)
}

async fn session_events(State(edge): State<Arc<WebrtcEdge>>, Path(session): Path<String>, headers: HeaderMap) -> Response {
    let origin = match origin_allowed(&edge, &headers) {
        Ok(o) => o,
        Err(r) => return r,
    };
    let Some(call_id) = edge.session_call(&session) else {
        return with_cors(error(StatusCode::NOT_FOUND, "no such WebRTC session (already ended?)"), origin);
    };
    let events = BroadcastStream::new(edge.services().events.subscribe()).filter_map(move |item| {
        let event = match item {
            Ok(ev) if ev.call_id() == call_id => caption(&ev),
            // A page too slow for the event bus misses captions, never the call itself.
            _ => None,
        };
        std::future::ready(event.map(Ok::<_, std::convert::Infallible>))
    });
    let r = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    with_cors(r, origin)
}

/// What a caller's page may see of its own call: the words, that an agent joined (not who,
/// nor the triage packet, which are for the agent), and the end.
fn caption(ev: &CallEvent) -> Option<Event> {
    match ev {
        CallEvent::Said { .. } | CallEvent::Ended { .. } => Some(sse_event(ev)),
        CallEvent::Bridged { call_id, at_ms, .. } => Some(Event::default().event("bridged").data(json!({ "call_id": call_id, "at_ms": at_ms }).to_string())),
        CallEvent::Started { .. }
        | CallEvent::State { .. }
        | CallEvent::Turn { .. }
        | CallEvent::NoInput { .. }
        | CallEvent::Escalated { .. }
        | CallEvent::AgentDialed { .. }
        | CallEvent::BrainFailed { .. }
        | CallEvent::Recognized { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{caption, origin_verdict, OriginVerdict::*};
    use crate::call::events::CallEvent;

    #[test]
    fn a_caller_page_sees_its_words_but_not_the_agents_packet() {
        let said = CallEvent::Said { call_id: "c1".into(), speaker: "bot".into(), text: "Hello".into(), language: "en".into(), turn: 1, at_ms: 1 };
        assert!(caption(&said).is_some());
        let escalated = CallEvent::Escalated { call_id: "c1".into(), packet: Box::default(), at_ms: 2, decision: None };
        assert!(caption(&escalated).is_none());
        let bridged = CallEvent::Bridged { call_id: "c1".into(), agent: "sip:7001@pbx".into(), at_ms: 3 };
        assert!(caption(&bridged).is_some());
    }

    #[test]
    fn the_gateways_own_page_and_non_browsers_may_call() {
        assert_eq!(origin_verdict("", None, "gw:8080"), SameOrigin);
        assert_eq!(origin_verdict("", Some("http://gw:8080"), "gw:8080"), SameOrigin);
        assert_eq!(origin_verdict("", Some("https://gw:8080"), "gw:8080"), SameOrigin);
    }

    #[test]
    fn other_sites_need_the_configured_origin() {
        assert_eq!(origin_verdict("", Some("http://evil.example"), "gw:8080"), Refused);
        assert_eq!(origin_verdict("https://shop.example", Some("https://shop.example"), "gw:8080"), Cross);
        assert_eq!(origin_verdict("https://shop.example/", Some("https://shop.example"), "gw:8080"), Cross);
        assert_eq!(origin_verdict("https://shop.example", Some("http://shop.example"), "gw:8080"), Refused);
        assert_eq!(origin_verdict("*", Some("http://anything.example"), "gw:8080"), Cross);
    }
}
