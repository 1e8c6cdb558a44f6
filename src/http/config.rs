//! The `[http]` section: the port of the agent console and its API.

use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address the agent console (HTTP) listens on. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Tokens that open the agent console's API and the agents' desks (FRONTLINE_CONSOLE_TOKEN
    /// adds one). Empty: open only to this machine (loopback). The caller page stays public.
    pub console_tokens: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig { listen: "0.0.0.0:8080".parse().expect("literal address"), console_tokens: Vec::new() }
    }
}
