//! The `[sip]` section: how the SIP edge listens, answers and limits its callers.

use super::digest::AuthConfig;
use super::limits::Policy;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    /// Address SIP listens on, for both UDP and TCP.
    pub listen: SocketAddr,
    /// Address written into SDP and Contact. Empty: the local address that routes to the caller.
    pub public_ip: Option<IpAddr>,
    /// Value of the User-Agent / Server header.
    pub user_agent: String,
    /// Ring time before answering (180 Ringing, then 200 OK after this many milliseconds).
    pub answer_delay_ms: u64,
    /// New calls one source address may start per second, in bursts of up to twice this;
    /// faster attempts get 503 + Retry-After.
    pub max_attempts_per_second: f64,
    /// Calls one source address may hold at once; 0 means half of calls.max_concurrent (at
    /// least 1). Behind a single trunk or SBC, raise it to calls.max_concurrent.
    pub max_calls_per_source: usize,
    /// When not empty, the only networks allowed to call in or send requests outside a call
    /// (the trunks, PBXs or SBC), as addresses or CIDR ("10.0.0.0/8"); every other source gets
    /// 403. Requests inside a call are not judged (an agent phone may be anywhere).
    pub trusted_sources: Vec<String>,
    /// The INVITE header that carries the caller's id in the contact center's CRM (e.g.
    /// "X-Customer-Id", set by the PBX or SBC after an IVR lookup). Empty: callers are known
    /// by their number only.
    pub customer_id_header: String,
    /// Digest authentication of new calls (`[sip.auth]`); off while no users are listed.
    pub auth: AuthConfig,
}

impl SipConfig {
    /// The per-source limits, with the defaults resolved against `max_concurrent`.
    pub fn source_policy(&self, max_concurrent: usize) -> Result<Policy, (&'static str, String)> {
        if !(self.max_attempts_per_second > 0.0 && self.max_attempts_per_second.is_finite()) {
            return Err(("sip.max_attempts_per_second", "must be a positive number".into()));
        }
        let trusted = self
            .trusted_sources
            .iter()
            .map(|s| s.parse())
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| ("sip.trusted_sources", e))?;
        let calls_per_source = match self.max_calls_per_source {
            0 => (max_concurrent / 2).max(1),
            n => n,
        };
        Ok(Policy {
            attempts_per_second: self.max_attempts_per_second,
            burst: (self.max_attempts_per_second * 2.0).max(1.0),
            calls_per_source,
            trusted,
        })
    }
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            listen: "0.0.0.0:5060".parse().expect("literal address"),
            public_ip: None,
            user_agent: concat!("frontline/", env!("CARGO_PKG_VERSION")).to_string(),
            answer_delay_ms: 0,
            max_attempts_per_second: 10.0,
            max_calls_per_source: 0,
            trusted_sources: Vec::new(),
            customer_id_header: String::new(),
            auth: AuthConfig::default(),
        }
    }
}
