//! The `[webrtc]` section of the configuration file.

use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebrtcConfig {
    /// Serve the caller page at `/` and accept WHIP-style offers at `/webrtc/calls`.
    pub enabled: bool,
    /// The one web origin (scheme://host:port) whose pages may place calls from another origin
    /// (CORS). Empty: only the gateway's own caller page. "*": any origin.
    pub allowed_origin: String,
    /// STUN and TURN server URLs ("stun:stun.example.com:3478", "turn:turn.example.com:3478"),
    /// used by the gateway and handed to the caller page, for deployments behind NAT.
    pub ice_servers: Vec<String>,
    /// Credentials for the turn: URLs above (empty: none).
    pub turn_username: String,
    pub turn_credential: String,
    /// Local UDP addresses the gateway gathers ICE candidates on. 0.0.0.0 expands to every
    /// non-loopback interface; list 127.0.0.1:0 too for browsers on the same host.
    pub udp_bind: Vec<SocketAddr>,
    /// How long ICE may stay disconnected (the browser went quiet) before the call ends.
    pub disconnect_grace_ms: u64,
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        WebrtcConfig {
            enabled: true,
            allowed_origin: String::new(),
            ice_servers: Vec::new(),
            turn_username: String::new(),
            turn_credential: String::new(),
            udp_bind: vec!["0.0.0.0:0".parse().expect("literal address"), "127.0.0.1:0".parse().expect("literal address")],
            disconnect_grace_ms: 3000,
        }
    }
}

impl WebrtcConfig {
    /// The key and the reason when a value cannot work.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(bad) = self.ice_servers.iter().find(|u| !(u.starts_with("stun:") || u.starts_with("turn:") || u.starts_with("turns:"))) {
            return Err(("webrtc.ice_servers", format!("{bad:?} is not a stun:, turn: or turns: URL")));
        }
        if self.udp_bind.is_empty() {
            return Err(("webrtc.udp_bind", "list at least one address, e.g. [\"0.0.0.0:0\"]".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::WebrtcConfig;

    #[test]
    fn ice_server_urls_must_be_stun_or_turn() {
        assert!(WebrtcConfig::default().validate().is_ok());
        let bad = WebrtcConfig { ice_servers: vec!["stun:ok.example:3478".into(), "https://nope.example".into()], ..Default::default() };
        let (key, message) = bad.validate().unwrap_err();
        assert_eq!(key, "webrtc.ice_servers");
        assert!(message.contains("https://nope.example"), "{message}");
        let none = WebrtcConfig { udp_bind: vec![], ..Default::default() };
        assert_eq!(none.validate().unwrap_err().0, "webrtc.udp_bind");
    }
}
