//! Per-source admission for new calls, sans-IO (the clock is passed in).
//!
//! The call slots are shared by everyone; without these limits one address sending INVITEs
//! as fast as it can takes every slot, and a caller from anywhere else hears 503 until the
//! flood's calls time out. Each source address gets a token bucket of call attempts per
//! second and a cap on the calls it holds at once; an optional list of trusted networks
//! (the trunks, PBXs or SBC in front of the gateway) refuses everyone else outright.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

/// A network in CIDR form ("10.0.0.0/8", "2001:db8::/32"; a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| format!("{s:?} is not an address or CIDR network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| format!("bad prefix length in {s:?}"))?,
            None => max,
        };
        Ok(Network { addr, prefix })
    }
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 caller on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// The limits, from `[sip]` in the configuration.
#[derive(Debug, Clone)]
pub struct Policy {
    /// New call attempts per second per source (the bucket refills at this rate).
    pub attempts_per_second: f64,
    /// Attempts a source may make at once before the rate applies.
    pub burst: f64,
    /// Calls one source may hold at once.
    pub calls_per_source: usize,
    /// When not empty, only these networks may call; others get 403.
    pub trusted: Vec<Network>,
}

/// Why a call attempt is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not in the trusted networks: 403.
    Untrusted,
    /// Too many attempts per second from this address: 503 + Retry-After.
    Rate,
    /// This address already holds its share of the call slots: 503 + Retry-After.
    Share { held: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Untrusted => write!(f, "source address is not a trusted signaling peer"),
            Refusal::Rate => write!(f, "too many call attempts from this address"),
            Refusal::Share { held } => write!(f, "this address already holds {held} calls, its share of the slots"),
        }
    }
}

#[derive(Debug)]
struct Source {
    tokens: f64,
    refilled: Instant,
    calls: usize,
}

/// Entries idle this long (and holding no call) are forgotten, so a scan of many addresses
/// cannot grow the table without bound.
const FORGET_AFTER_SECS: f64 = 60.0;

#[derive(Debug)]
struct State {
    sources: HashMap<IpAddr, Source>,
    last_sweep: Option<Instant>,
}

/// The per-source counters, shared by the SIP edge's tasks.
#[derive(Debug, Clone)]
pub struct Limiter {
    policy: Arc<Policy>,
    state: Arc<Mutex<State>>,
}

/// A call slot held by one source; dropping it (when the call ends) gives it back.
#[derive(Debug)]
pub struct Slot {
    ip: IpAddr,
    state: Arc<Mutex<State>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = state.sources.get_mut(&self.ip) {
            s.calls = s.calls.saturating_sub(1);
        }
    }
}

impl Limiter {
    pub fn new(policy: Policy) -> Self {
        Limiter { policy: Arc::new(policy), state: Arc::new(Mutex::new(State { sources: HashMap::new(), last_sweep: None })) }
    }

    /// Whether `ip` may signal at all.
    pub fn trusted(&self, ip: IpAddr) -> bool {
        self.policy.trusted.is_empty() || self.policy.trusted.iter().any(|n| n.contains(ip))
    }

    /// Admits one new call attempt from `ip` at `now`: a slot to hold for the call's life,
    /// or why not. A refused attempt still spends a token, so a flood stays refused.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> Result<Slot, Refusal> {
        // A poisoned lock only means another task panicked mid-update of plain counters.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let source = self.spend_token(&mut state, ip, now)?;
        if source.calls >= self.policy.calls_per_source {
            return Err(Refusal::Share { held: source.calls });
        }
        source.calls += 1;
        Ok(Slot { ip, state: self.state.clone() })
    }

    /// One request from `ip` at `now` that holds no call (a REGISTER): it spends a token
    /// from the same bucket as call attempts, so one address cannot flood with those either.
    pub fn attempt(&self, ip: IpAddr, now: Instant) -> Result<(), Refusal> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        self.spend_token(&mut state, ip, now).map(|_| ())
    }

    fn spend_token<'s>(&self, state: &'s mut State, ip: IpAddr, now: Instant) -> Result<&'s mut Source, Refusal> {
        if !self.trusted(ip) {
            return Err(Refusal::Untrusted);
        }
        let p = &self.policy;
        if state.last_sweep.is_none_or(|t| now.duration_since(t).as_secs_f64() > FORGET_AFTER_SECS) {
            state.sources.retain(|_, s| s.calls > 0 || now.duration_since(s.refilled).as_secs_f64() < FORGET_AFTER_SECS);
            state.last_sweep = Some(now);
        }
        let source = state.sources.entry(ip).or_insert(Source { tokens: p.burst, refilled: now, calls: 0 });
        let elapsed = now.saturating_duration_since(source.refilled).as_secs_f64();
        source.tokens = (source.tokens + elapsed * p.attempts_per_second).min(p.burst);
        source.refilled = now;
        if source.tokens < 1.0 {
            return Err(Refusal::Rate);
        }
        source.tokens -= 1.0;
        Ok(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy() -> Policy {
        Policy { attempts_per_second: 2.0, burst: 4.0, calls_per_source: 3, trusted: Vec::new() }
    }

    #[test]
    fn a_flood_from_one_address_leaves_the_others_alone() {
        let l = Limiter::new(policy());
        let t0 = Instant::now();
        let mut held = Vec::new();
        let mut refused = Vec::new();
        for i in 0..50 {
            match l.admit(ip("192.0.2.7"), t0 + Duration::from_millis(i * 10)) {
                Ok(slot) => held.push(slot),
                Err(r) => refused.push(r),
            }
        }
        assert_eq!(held.len(), 3, "the flooder gets its share and no more");
        assert_eq!(refused[0], Refusal::Share { held: 3 });
        assert!(refused.contains(&Refusal::Rate), "and then the rate limit: {refused:?}");
        // Another address is untouched by all of it.
        assert!(l.admit(ip("198.51.100.1"), t0 + Duration::from_millis(500)).is_ok());
    }

    #[test]
    fn slots_come_back_when_calls_end_and_tokens_refill() {
        let l = Limiter::new(policy());
        let t0 = Instant::now();
        let a = ip("2001:db8::1");
        let slots: Vec<Slot> = (0..3).map(|_| l.admit(a, t0).unwrap()).collect();
        assert_eq!(l.admit(a, t0).unwrap_err(), Refusal::Share { held: 3 });
        assert_eq!(l.admit(a, t0).unwrap_err(), Refusal::Rate, "4 attempts spent the burst");
        drop(slots);
        assert_eq!(l.admit(a, t0).unwrap_err(), Refusal::Rate);
        assert!(l.admit(a, t0 + Duration::from_millis(600)).is_ok(), "refilled at 2/s");
    }

    #[test]
    fn registrations_spend_the_same_tokens_and_hold_no_slot() {
        let l = Limiter::new(policy());
        let t0 = Instant::now();
        let a = ip("192.0.2.8");
        for _ in 0..4 {
            assert_eq!(l.attempt(a, t0), Ok(()));
        }
        assert_eq!(l.attempt(a, t0), Err(Refusal::Rate), "a REGISTER flood is refused past the burst");
        assert_eq!(l.admit(a, t0).unwrap_err(), Refusal::Rate, "and it spent the calls' tokens too");
        let later = t0 + Duration::from_secs(2);
        let slots: Vec<Slot> = (0..3).map(|_| l.admit(a, later).unwrap()).collect();
        assert_eq!(slots.len(), 3, "registrations held no call slot");
    }

    #[test]
    fn trusted_networks_refuse_everyone_else() {
        let mut p = policy();
        p.trusted = vec!["10.0.0.0/8".parse().unwrap(), "2001:db8::/32".parse().unwrap(), "192.0.2.9".parse().unwrap()];
        let l = Limiter::new(p);
        let t0 = Instant::now();
        assert!(l.admit(ip("10.200.3.4"), t0).is_ok());
        assert!(l.admit(ip("::ffff:10.1.1.1"), t0).is_ok(), "IPv4-mapped");
        assert!(l.admit(ip("2001:db8:5::1"), t0).is_ok());
        assert!(l.admit(ip("192.0.2.9"), t0).is_ok());
        assert_eq!(l.admit(ip("192.0.2.10"), t0).unwrap_err(), Refusal::Untrusted);
        assert_eq!(l.admit(ip("11.0.0.1"), t0).unwrap_err(), Refusal::Untrusted);
        assert!("10.0.0.0/33".parse::<Network>().is_err());
        assert!("pbx.example.com".parse::<Network>().is_err());
        assert!("0.0.0.0/0".parse::<Network>().unwrap().contains(ip("203.0.113.5")));
    }
}
