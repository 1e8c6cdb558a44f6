//! Agents' phones that REGISTER here (RFC 3261 §10), so `registered:NAME` in `[handoff] agents`
//! rings wherever NAME's phone is today: a desk phone that moved, a softphone on a laptop.
//!
//! Only the agents of `[sip.auth] agents` may register, each as their own name and only after
//! digest authentication (checked by the edge before [`Registrar::register`]). One binding per
//! agent: the phone that registered last is the one rung. Bindings live in this gateway's
//! memory; phones refresh them well within their expiry, so a restarted gateway has them back
//! within one refresh interval.
//!
//! Sans-IO: the edge hands in the request's parts and the time, and sends the answer.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Expiry granted when a phone asks for none (RFC 3261 §10.2.1.1's default).
const DEFAULT_EXPIRES_SECS: u64 = 3600;
/// Shortest registration taken; shorter gets 423 with this as Min-Expires (a phone refreshing
/// every few seconds costs a hash per refresh and tells nothing more).
pub const MIN_EXPIRES_SECS: u64 = 60;
/// Longest registration granted: a phone that vanished without unregistering stops being rung
/// after this.
const MAX_EXPIRES_SECS: u64 = 7200;

/// What one REGISTER asked for.
#[derive(Debug, Default)]
pub struct Register<'a> {
    /// The user part of the To header: the name being registered.
    pub to_user: Option<&'a str>,
    /// The Contact header values, as sent.
    pub contacts: Vec<&'a str>,
    /// The Expires header, if any.
    pub expires: Option<u64>,
}

/// The answer to a REGISTER.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// 200 OK, with the binding now in force (contact URI and seconds left), if any.
    Ok(Option<(String, u64)>),
    /// 423 Interval Too Brief, with this Min-Expires.
    IntervalTooBrief(u64),
    /// 400 with the reason.
    BadRequest(&'static str),
    /// 403 with the reason: registering a name other than one's own.
    Forbidden(&'static str),
}

#[derive(Debug, Clone)]
struct Binding {
    contact: String,
    expires_at: u64,
}

#[derive(Debug, Default)]
pub struct Registrar {
    bindings: Mutex<HashMap<String, Binding>>,
}

impl Registrar {
    /// Handles a REGISTER from the authenticated agent `user` at `now` (unix seconds).
    pub fn register(&self, user: &str, request: &Register, now: u64) -> Answer {
        if request.to_user.is_some_and(|to| to != user) {
            return Answer::Forbidden("an agent registers only their own name");
        }
        let mut bindings = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
        if request.contacts.is_empty() {
            // A query: what is bound now.
            return Answer::Ok(bindings.get(user).filter(|b| b.expires_at > now).map(|b| (b.contact.clone(), b.expires_at - now)));
        }
        if request.contacts.iter().any(|c| c.trim() == "*") {
            // RFC 3261 §10.2.2: "*" removes every binding, and only with Expires: 0.
            if request.contacts.len() > 1 || request.expires != Some(0) {
                return Answer::BadRequest("Contact: * goes alone and with Expires: 0");
            }
            bindings.remove(user);
            return Answer::Ok(None);
        }
        // One phone per agent: the last contact listed is the one kept.
        let Some((uri, own_expires)) = request.contacts.iter().rev().find_map(|c| parse_contact(c)) else {
            return Answer::BadRequest("Contact is not a SIP URI");
        };
        let asked = own_expires.or(request.expires).unwrap_or(DEFAULT_EXPIRES_SECS);
        if asked == 0 {
            if bindings.get(user).is_some_and(|b| b.contact == uri) {
                bindings.remove(user);
            }
            return Answer::Ok(None);
        }
        if asked < MIN_EXPIRES_SECS {
            return Answer::IntervalTooBrief(MIN_EXPIRES_SECS);
        }
        let granted = asked.min(MAX_EXPIRES_SECS);
        bindings.insert(user.to_string(), Binding { contact: uri.clone(), expires_at: now + granted });
        Answer::Ok(Some((uri, granted)))
    }

    /// Where `user`'s phone can be rung at `now`, if it is registered.
    pub fn contact_of(&self, user: &str, now: u64) -> Option<String> {
        let bindings = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
        bindings.get(user).filter(|b| b.expires_at > now).map(|b| b.contact.clone())
    }
}

/// A Contact value's URI and its own `expires` parameter. In `<uri>;params` the parameters
/// after `>` are the header's; without brackets everything after the first `;` is.
fn parse_contact(value: &str) -> Option<(String, Option<u64>)> {
    let value = value.trim();
    let (uri, params) = match value.find('<') {
        Some(open) => {
            let close = open + value[open..].find('>')?;
            (&value[open + 1..close], &value[close + 1..])
        }
        None => value.split_once(';').unwrap_or((value, "")),
    };
    let uri = uri.trim();
    let scheme_ok = uri.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("sip:")) || uri.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("sips:"));
    if !scheme_ok || rsipstack::sip::Uri::try_from(uri).is_err() {
        return None;
    }
    let expires = params
        .split(';')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("expires"))
        .and_then(|(_, v)| v.trim().parse().ok());
    Some((uri.to_string(), expires))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register<'a>(to: &'a str, contacts: &[&'a str], expires: Option<u64>) -> Register<'a> {
        Register { to_user: Some(to), contacts: contacts.to_vec(), expires }
    }

    #[test]
    fn a_phone_registers_refreshes_moves_and_unregisters() {
        let r = Registrar::default();
        assert_eq!(r.contact_of("alice", 0), None);
        let answer = r.register("alice", &register("alice", &["<sip:alice@10.0.0.5:5062;transport=udp>;+sip.instance=\"<urn:uuid:1>\""], Some(600)), 1000);
        assert_eq!(answer, Answer::Ok(Some(("sip:alice@10.0.0.5:5062;transport=udp".into(), 600))));
        assert_eq!(r.contact_of("alice", 1599).as_deref(), Some("sip:alice@10.0.0.5:5062;transport=udp"));
        assert_eq!(r.contact_of("alice", 1600), None, "expired");
        // The contact's own expires wins over the header; the longest is capped.
        assert_eq!(r.register("alice", &register("alice", &["<sip:alice@10.0.0.6>;expires=99999"], Some(60)), 2000), Answer::Ok(Some(("sip:alice@10.0.0.6".into(), MAX_EXPIRES_SECS))));
        // A query answers the binding in force.
        assert_eq!(r.register("alice", &register("alice", &[], None), 2100), Answer::Ok(Some(("sip:alice@10.0.0.6".into(), MAX_EXPIRES_SECS - 100))));
        // Expires 0 on another contact leaves the phone that moved there alone; on its own, removes it.
        assert_eq!(r.register("alice", &register("alice", &["<sip:alice@10.0.0.5:5062>"], Some(0)), 2200), Answer::Ok(None));
        assert!(r.contact_of("alice", 2200).is_some());
        assert_eq!(r.register("alice", &register("alice", &["sip:alice@10.0.0.6;expires=0"], None), 2200), Answer::Ok(None));
        assert_eq!(r.contact_of("alice", 2200), None);
    }

    #[test]
    fn bad_registrations_get_their_sip_answer() {
        let r = Registrar::default();
        assert_eq!(r.register("alice", &register("bob", &["<sip:x@10.0.0.1>"], None), 0), Answer::Forbidden("an agent registers only their own name"));
        assert_eq!(r.register("alice", &register("alice", &["<sip:x@10.0.0.1>"], Some(5)), 0), Answer::IntervalTooBrief(MIN_EXPIRES_SECS));
        assert!(matches!(r.register("alice", &register("alice", &["<mailto:x@example.com>"], None), 0), Answer::BadRequest(_)));
        assert!(matches!(r.register("alice", &register("alice", &["*"], Some(60)), 0), Answer::BadRequest(_)));
        assert_eq!(r.register("alice", &register("alice", &["<sip:x@10.0.0.1>"], None), 0), Answer::Ok(Some(("sip:x@10.0.0.1".into(), DEFAULT_EXPIRES_SECS))));
        assert_eq!(r.register("alice", &register("alice", &["*"], Some(0)), 1), Answer::Ok(None));
        assert_eq!(r.contact_of("alice", 1), None);
    }
}
