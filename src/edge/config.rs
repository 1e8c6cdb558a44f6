//! The `[rtp]` section: the media sockets both edges open for a call.

use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RtpConfig {
    /// Inclusive range of UDP ports for per-call RTP sockets.
    pub port_min: u16,
    pub port_max: u16,
    /// Hang up when no RTP has arrived for this long (a caller that vanished without a BYE).
    pub timeout_secs: u64,
}

impl RtpConfig {
    /// How long a call's media may stay silent on the wire before the call is hung up.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }
}

impl Default for RtpConfig {
    fn default() -> Self {
        RtpConfig { port_min: 20000, port_max: 29999, timeout_secs: 30 }
    }
}
