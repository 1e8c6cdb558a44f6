//! What the two web faces of the gateway share, the agent console (`crate::http`) and the
//! WebRTC edge (`crate::edge::webrtc`): they run on one HTTP port, sign agents in the same way
//! and stream events the same way. Kept below both, so neither has to name the other.

pub mod console_auth;

pub use console_auth::ConsoleAuth;

use axum::response::sse::Event;
use serde_json::json;

/// An event as SSE: JSON data, named by its `type` tag (call events on the console, desk
/// events and captions on the WebRTC edge).
pub fn sse_event(ev: &impl serde::Serialize) -> Event {
    let value = serde_json::to_value(ev).unwrap_or_else(|e| json!({ "type": "error", "error": e.to_string() }));
    let name = value.get("type").and_then(|t| t.as_str()).unwrap_or("message").to_string();
    Event::default().event(name).data(value.to_string())
}
