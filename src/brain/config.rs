//! The `[brain]` section: which brain the gateway talks to, and the embedded one's settings.

use super::llm::LlmConfig;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BrainConfig {
    /// URL of an external brain serving `frontline.dialog.v1.Dialog`. Empty: the embedded
    /// playbook brain, served by this process on `listen` and reached over real gRPC.
    pub url: String,
    /// Where the embedded brain listens. Loopback by default: it is not meant for other hosts.
    pub listen: SocketAddr,
    /// Playbook TOML for the embedded brain. Empty: the built-in telecom demo playbook.
    pub playbook: Option<PathBuf>,
    /// How long to wait for the brain at startup and for each reply before apologizing.
    pub connect_timeout_ms: u64,
    pub reply_timeout_ms: u64,
    /// The embedded brain: "playbook" (offline, the default) or "llm" (see [brain.llm]).
    pub kind: String,
    /// The LLM brain's server and bounds (used when kind = "llm", and by `frontline brain --llm-url`).
    pub llm: LlmConfig,
}

impl Default for BrainConfig {
    fn default() -> Self {
        BrainConfig {
            url: String::new(),
            listen: "127.0.0.1:50061".parse().expect("literal address"),
            playbook: None,
            connect_timeout_ms: 5000,
            reply_timeout_ms: 4000,
            kind: "playbook".to_string(),
            llm: LlmConfig::default(),
        }
    }
}
