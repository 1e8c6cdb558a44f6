//! Agents' phones that REGISTER here (RFC 3261 §10), so `registered:NAME` in `[handoff] agents`
//! rings wherever NAME's phone is today: a desk phone that moved, a softphone on a laptop.
//!
//! Only the agents of `[sip.auth] agents` may register, each as their own name and only after
//! digest authentication (checked by the edge before [`Registrar::register`]). One binding per
//! agent: the phone that registered last is the one rung. Bindings live in this gateway's
//! memory, and each change is also written to the call records ([`Change`]), so a restarted
//! gateway, or another gateway sharing the records database behind the proxy, rings the phone
//! where it last registered.
//!
//! Sans-IO: the edge hands in the request's parts and the time, and sends the answer and the
//! change.

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
    /// 200 OK, with the binding now in force (contact URI and seconds left), if any (RFC 3261
    /// §10.3 step 8: the current bindings, whatever the request changed), and what changed.
    Ok { bound: Option<(String, u64)>, change: Option<Change> },
    /// 423 Interval Too Brief, with this Min-Expires.
    IntervalTooBrief(u64),
    /// 400 with the reason.
    BadRequest(&'static str),
    /// 403 with the reason: registering a name other than one's own.
    Forbidden(&'static str),
}

/// What a REGISTER changed, for the records (times in unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The agent's phone is at `contact` from `at` until `expires_at`.
    Bound { contact: String, at: u64, expires_at: u64 },
    /// The agent's phone at `contact` (every phone: None) left at `at`.
    Removed { contact: Option<String>, at: u64 },
}

/// Where an agent's phone registered, when, and until when (unix seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Binding {
    pub contact: String,
    pub at: u64,
    pub expires_at: u64,
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
        let ok = |bindings: &HashMap<String, Binding>, change| {
            let bound = bindings.get(user).filter(|b| b.expires_at > now).map(|b| (b.contact.clone(), b.expires_at - now));
            Answer::Ok { bound, change }
        };
        if request.contacts.is_empty() {
            // A query: what is bound now.
            return ok(&bindings, None);
        }
        if request.contacts.iter().any(|c| c.trim() == "*") {
            // RFC 3261 §10.2.2: "*" removes every binding, and only with Expires: 0.
            if request.contacts.len() > 1 || request.expires != Some(0) {
                return Answer::BadRequest("Contact: * goes alone and with Expires: 0");
            }
            bindings.remove(user);
            return ok(&bindings, Some(Change::Removed { contact: None, at: now }));
        }
        // One phone per agent: the last contact listed is the one kept.
        let Some((uri, own_expires)) = request.contacts.iter().rev().find_map(|c| parse_contact(c)) else {
            return Answer::BadRequest("Contact is not a SIP URI");
        };
        let asked = own_expires.or(request.expires).unwrap_or(DEFAULT_EXPIRES_SECS);
        if asked == 0 {
            // Another phone of the agent's may be bound here (or elsewhere): only this one goes.
            if bindings.get(user).is_some_and(|b| b.contact == uri) {
                bindings.remove(user);
            }
            return ok(&bindings, Some(Change::Removed { contact: Some(uri), at: now }));
        }
        if asked < MIN_EXPIRES_SECS {
            return Answer::IntervalTooBrief(MIN_EXPIRES_SECS);
        }
        let binding = Binding { contact: uri, at: now, expires_at: now + asked.min(MAX_EXPIRES_SECS) };
        bindings.insert(user.to_string(), binding.clone());
        ok(&bindings, Some(Change::Bound { contact: binding.contact, at: binding.at, expires_at: binding.expires_at }))
    }

    /// `user`'s phone as registered here, if its binding is still in force at `now`.
    pub fn binding_of(&self, user: &str, now: u64) -> Option<Binding> {
        let bindings = self.bindings.lock().unwrap_or_else(PoisonError::into_inner);
        bindings.get(user).filter(|b| b.expires_at > now).cloned()
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

/// Where to ring the agent at `now`: of this gateway's own binding and the one in the records
/// (written by whichever gateway the phone last registered or unregistered with, this one before
/// a restart included), the newer, if it is still in force. A phone that left through another
/// gateway is recorded with its binding ended, so it is not rung from here either.
pub fn ring_at(own: Option<Binding>, recorded: Option<Binding>, now: u64) -> Option<String> {
    let newest = match (own, recorded) {
        (Some(o), Some(r)) => if r.at > o.at { r } else { o },
        (o, r) => o.or(r)?,
    };
    (newest.expires_at > now).then_some(newest.contact)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register<'a>(to: &'a str, contacts: &[&'a str], expires: Option<u64>) -> Register<'a> {
        Register { to_user: Some(to), contacts: contacts.to_vec(), expires }
    }

    fn bound(contact: &str, secs: u64, change: Option<Change>) -> Answer {
        Answer::Ok { bound: Some((contact.into(), secs)), change }
    }

    fn contact_of(r: &Registrar, user: &str, now: u64) -> Option<String> {
        r.binding_of(user, now).map(|b| b.contact)
    }

    #[test]
    fn a_phone_registers_refreshes_moves_and_unregisters() {
        let r = Registrar::default();
        assert_eq!(contact_of(&r, "alice", 0), None);
        let answer = r.register("alice", &register("alice", &["<sip:alice@10.0.0.5:5062;transport=udp>;+sip.instance=\"<urn:uuid:1>\""], Some(600)), 1000);
        let first = "sip:alice@10.0.0.5:5062;transport=udp";
        assert_eq!(answer, bound(first, 600, Some(Change::Bound { contact: first.into(), at: 1000, expires_at: 1600 })));
        assert_eq!(contact_of(&r, "alice", 1599).as_deref(), Some(first));
        assert_eq!(contact_of(&r, "alice", 1600), None, "expired");
        // The contact's own expires wins over the header; the longest is capped.
        let moved = "sip:alice@10.0.0.6";
        let answer = r.register("alice", &register("alice", &["<sip:alice@10.0.0.6>;expires=99999"], Some(60)), 2000);
        assert_eq!(answer, bound(moved, MAX_EXPIRES_SECS, Some(Change::Bound { contact: moved.into(), at: 2000, expires_at: 2000 + MAX_EXPIRES_SECS })));
        // A query answers the binding in force and changes nothing.
        assert_eq!(r.register("alice", &register("alice", &[], None), 2100), bound(moved, MAX_EXPIRES_SECS - 100, None));
        // Expires 0 on another contact leaves the phone that moved there alone, and the 200
        // lists it (RFC 3261 §10.3); on its own, removes it.
        let old_gone = Some(Change::Removed { contact: Some("sip:alice@10.0.0.5:5062".into()), at: 2200 });
        assert_eq!(r.register("alice", &register("alice", &["<sip:alice@10.0.0.5:5062>"], Some(0)), 2200), bound(moved, MAX_EXPIRES_SECS - 200, old_gone));
        assert!(contact_of(&r, "alice", 2200).is_some());
        let answer = r.register("alice", &register("alice", &["sip:alice@10.0.0.6;expires=0"], None), 2200);
        assert_eq!(answer, Answer::Ok { bound: None, change: Some(Change::Removed { contact: Some(moved.into()), at: 2200 }) });
        assert_eq!(contact_of(&r, "alice", 2200), None);
    }

    #[test]
    fn bad_registrations_get_their_sip_answer() {
        let r = Registrar::default();
        assert_eq!(r.register("alice", &register("bob", &["<sip:x@10.0.0.1>"], None), 0), Answer::Forbidden("an agent registers only their own name"));
        assert_eq!(r.register("alice", &register("alice", &["<sip:x@10.0.0.1>"], Some(5)), 0), Answer::IntervalTooBrief(MIN_EXPIRES_SECS));
        assert!(matches!(r.register("alice", &register("alice", &["<mailto:x@example.com>"], None), 0), Answer::BadRequest(_)));
        assert!(matches!(r.register("alice", &register("alice", &["*"], Some(60)), 0), Answer::BadRequest(_)));
        let answer = r.register("alice", &register("alice", &["<sip:x@10.0.0.1>"], None), 0);
        assert_eq!(answer, bound("sip:x@10.0.0.1", DEFAULT_EXPIRES_SECS, Some(Change::Bound { contact: "sip:x@10.0.0.1".into(), at: 0, expires_at: DEFAULT_EXPIRES_SECS })));
        assert_eq!(r.register("alice", &register("alice", &["*"], Some(0)), 1), Answer::Ok { bound: None, change: Some(Change::Removed { contact: None, at: 1 }) });
        assert_eq!(contact_of(&r, "alice", 1), None);
    }

    #[test]
    fn the_phone_that_registered_last_anywhere_is_the_one_rung() {
        let at = |contact: &str, at: u64| Some(Binding { contact: contact.into(), at, expires_at: at + 600 });
        let ring = |c: &str| Some(c.to_string());
        // Moved and registered through another gateway since it registered here: the records win.
        assert_eq!(ring_at(at("sip:a@old", 10), at("sip:a@new", 20), 30), ring("sip:a@new"));
        // Registered here a moment ago, the write not in the records yet: this gateway's own.
        assert_eq!(ring_at(at("sip:a@new", 30), at("sip:a@old", 20), 31), ring("sip:a@new"));
        // Registered before this gateway restarted: only the records know.
        assert_eq!(ring_at(None, at("sip:a@before", 5), 100), ring("sip:a@before"));
        assert_eq!(ring_at(None, at("sip:a@before", 5), 605), None, "expired");
        // Unregistered through another gateway after registering here: nobody to ring.
        let left = Some(Binding { contact: "sip:a@old".into(), at: 40, expires_at: 40 });
        assert_eq!(ring_at(at("sip:a@old", 10), left, 41), None);
        assert_eq!(ring_at(None, None, 0), None);
    }
}
