//! Digest authentication (RFC 3261 §22, RFC 7616) of new calls, when `[sip.auth] users` is
//! set, and of agents' phones registering, when `[sip.auth] agents` is: a request without valid
//! credentials gets 401 with a challenge, a wrong password 403.
//!
//! Sans-IO: [`Challenger::check`] takes the request's Authorization values and the time, and
//! says what to answer. Nonces are stamps ([`crate::auth::Stamper`]): the time of issue and a
//! MAC over it, so nothing is stored per challenge, a nonce from another gateway's key is
//! refused, and gateways behind one proxy take each other's nonces when they share
//! `nonce_secret`. The response hash is rsipstack's ([`verify_digest`]); responses already
//! taken are remembered for a nonce's lifetime, so a captured INVITE cannot be replayed.

use crate::auth::{unix_now, Stamper};
use rsipstack::dialog::authenticate::verify_digest;
use rsipstack::sip::headers::auth::{Algorithm, Qop, Scheme};
use rsipstack::sip::typed::{Authorization, WwwAuthenticate};
use rsipstack::sip::Method;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// The `[sip.auth]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The protection realm named in challenges (callers' credentials are for this realm).
    pub realm: String,
    /// User name → password of those allowed to call in. Empty (the default): INVITEs are not
    /// challenged; rely on `trusted_sources` and the per-source limits.
    pub users: BTreeMap<String, String>,
    /// Agent name → password of the agents' phones that may REGISTER here, to be rung as
    /// `registered:NAME` in `[handoff] agents`. Empty (the default): REGISTER is refused.
    pub agents: BTreeMap<String, String>,
    /// How long a challenge's nonce may be answered; an older one gets a fresh challenge
    /// with `stale=true`, which user agents answer without asking anyone.
    pub nonce_lifetime_secs: u64,
    /// Shared by the gateways behind one proxy, so a retried INVITE that lands on another
    /// node is taken. Empty: a key drawn at start (one node).
    pub nonce_secret: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            realm: "frontline".into(),
            users: BTreeMap::new(),
            agents: BTreeMap::new(),
            nonce_lifetime_secs: 300,
            nonce_secret: String::new(),
        }
    }
}

/// What to answer an INVITE or a REGISTER.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Valid credentials of this user.
    Accepted(String),
    /// 401 with this WWW-Authenticate value: no credentials for our realm, or a nonce that
    /// is not ours, expired or already used.
    Challenge(String),
    /// 403: credentials for a user we don't know, or the wrong password (which of the two is
    /// for the log only).
    Refused(&'static str),
}

pub struct Challenger {
    config: AuthConfig,
    nonces: Stamper,
    /// Responses taken, with the time they were taken: a second use is a replay.
    taken: Mutex<HashMap<String, u64>>,
}

/// Remembered responses, at most: past it the oldest half is forgotten (their replays then
/// need a nonce that has not expired, which bounds the window to the nonce lifetime anyway).
const MAX_TAKEN: usize = 20_000;

impl Challenger {
    /// None when neither users nor agents are configured; a bad section names its key.
    pub fn new(config: &AuthConfig) -> Result<Option<Challenger>, (&'static str, String)> {
        if config.users.is_empty() && config.agents.is_empty() {
            return Ok(None);
        }
        if config.realm.trim().is_empty() || config.realm.contains('"') {
            return Err(("sip.auth.realm", "must be a non-empty name without quotes (e.g. \"pbx.example.com\")".into()));
        }
        for (key, table) in [("sip.auth.users", &config.users), ("sip.auth.agents", &config.agents)] {
            if let Some((user, _)) = table.iter().find(|(user, password)| user.is_empty() || password.is_empty()) {
                return Err((key, format!("{user:?} needs a non-empty name and password")));
            }
        }
        if config.nonce_lifetime_secs < 10 {
            return Err(("sip.auth.nonce_lifetime_secs", "must be at least 10 seconds, so a caller has time to answer the challenge".into()));
        }
        let nonces = if config.nonce_secret.is_empty() { Stamper::random() } else { Stamper::from_secret(&config.nonce_secret) };
        Ok(Some(Challenger { config: config.clone(), nonces, taken: Mutex::new(HashMap::new()) }))
    }

    /// Whether agents' phones may REGISTER (`agents` set).
    pub fn registers_agents(&self) -> bool {
        !self.config.agents.is_empty()
    }

    /// Whether INVITEs are challenged (`users` set), not only REGISTERs.
    pub fn challenges_calls(&self) -> bool {
        !self.config.users.is_empty()
    }

    /// The verdict on a request with these Authorization header values, at `now` (unix s):
    /// a REGISTER is checked against the agents, anything else against the users.
    pub fn check<'a>(&self, method: &Method, authorizations: impl IntoIterator<Item = &'a str>, now: u64) -> Verdict {
        // A request may carry credentials for several realms (one per proxy on the way).
        let ours = authorizations
            .into_iter()
            .filter_map(|raw| Authorization::parse(raw).ok().map(|auth| (auth, raw)))
            .find(|(auth, _)| auth.scheme == Scheme::Digest && auth.realm == self.config.realm);
        let Some((auth, raw)) = ours else { return self.challenge(now, false) };
        let Some(issued) = self.nonces.issued(&auth.nonce, self.config.realm.as_bytes()) else {
            return self.challenge(now, false);
        };
        if issued > now.saturating_add(60) {
            return self.challenge(now, false);
        }
        let table = if *method == Method::Register { &self.config.agents } else { &self.config.users };
        let Some(password) = table.get(&auth.username) else {
            return Verdict::Refused("unknown user for this realm");
        };
        if !verify_digest(&auth, password, method, raw) {
            return Verdict::Refused("wrong credentials");
        }
        // Checked after the hash, so a stale nonce with the right password is `stale=true`
        // (the caller's phone retries on its own), and with the wrong one still a 403.
        if now.saturating_sub(issued) > self.config.nonce_lifetime_secs {
            return self.challenge(now, true);
        }
        let mut taken = self.taken.lock().unwrap_or_else(|e| e.into_inner());
        if taken.contains_key(&auth.response) {
            return self.challenge(now, false);
        }
        let lifetime = self.config.nonce_lifetime_secs;
        if taken.len() >= MAX_TAKEN {
            taken.retain(|_, at| now.saturating_sub(*at) <= lifetime);
        }
        if taken.len() >= MAX_TAKEN {
            let mut ages: Vec<u64> = taken.values().copied().collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            taken.retain(|_, at| *at > cut);
        }
        taken.insert(auth.response.clone(), now);
        Verdict::Accepted(auth.username)
    }

    /// A fresh challenge: MD5 (what every SIP phone and trunk speaks) with qop=auth.
    fn challenge(&self, now: u64, stale: bool) -> Verdict {
        let header = WwwAuthenticate {
            scheme: Scheme::Digest,
            realm: self.config.realm.clone(),
            nonce: self.nonces.stamp(self.config.realm.as_bytes(), now),
            stale: stale.then(|| "true".to_string()),
            algorithm: Some(Algorithm::Md5),
            qop: Some(Qop::Auth),
            ..Default::default()
        };
        Verdict::Challenge(header.to_string())
    }

    /// [`check`](Self::check) on a request, now.
    pub fn check_request(&self, request: &rsipstack::sip::Request) -> Verdict {
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|h| matches!(h, rsipstack::sip::Header::Authorization(_)))
            .map(|h| h.value().to_string())
            .collect();
        self.check(&request.method, values.iter().map(String::as_str), unix_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsipstack::dialog::authenticate::compute_digest;
    use rsipstack::sip::headers::auth::AuthQop;

    fn challenger() -> Challenger {
        let mut config = AuthConfig::default();
        config.users.insert("pbx1".into(), "s3cret".into());
        Challenger::new(&config).unwrap().unwrap()
    }

    fn nonce_of(v: &Verdict) -> String {
        let Verdict::Challenge(h) = v else { panic!("expected a challenge, got {v:?}") };
        WwwAuthenticate::parse(h).unwrap().nonce
    }

    /// Credentials as a phone would send them, with qop=auth.
    fn answer(user: &str, password: &str, nonce: &str, cnonce: &str) -> String {
        let uri = "sip:ivr@192.0.2.1:5060";
        let qop = AuthQop::Auth { cnonce: cnonce.into(), nc: 1 };
        let response = compute_digest(user, password, "frontline", nonce, &Method::Invite, uri, Algorithm::Md5, Some(&qop));
        format!("Digest username=\"{user}\", realm=\"frontline\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"{cnonce}\"")
    }

    #[test]
    fn an_invite_is_challenged_then_taken_with_the_right_password_only() {
        let c = challenger();
        let first = c.check(&Method::Invite, [], 1000);
        let Verdict::Challenge(header) = &first else { panic!("{first:?}") };
        assert!(header.starts_with("Digest realm=\"frontline\"") && header.contains("qop=\"auth\"") && header.contains("algorithm=MD5"), "{header}");
        let nonce = nonce_of(&first);
        assert_eq!(c.check(&Method::Invite, [answer("pbx1", "s3cret", &nonce, "a").as_str()], 1005), Verdict::Accepted("pbx1".into()));
        assert_eq!(c.check(&Method::Invite, [answer("pbx1", "guess", &nonce, "b").as_str()], 1005), Verdict::Refused("wrong credentials"));
        assert_eq!(c.check(&Method::Invite, [answer("mallory", "s3cret", &nonce, "c").as_str()], 1005), Verdict::Refused("unknown user for this realm"));
        // Credentials for another realm only, or garbage: challenged.
        let other = answer("pbx1", "s3cret", &nonce, "d").replace("realm=\"frontline\"", "realm=\"carrier\"");
        assert!(matches!(c.check(&Method::Invite, [other.as_str(), "Digest nonsense"], 1005), Verdict::Challenge(_)));
    }

    #[test]
    fn replayed_forged_and_stale_nonces_are_challenged_again() {
        let c = challenger();
        let nonce = nonce_of(&c.check(&Method::Invite, [], 1000));
        let good = answer("pbx1", "s3cret", &nonce, "x");
        assert!(matches!(c.check(&Method::Invite, [good.as_str()], 1001), Verdict::Accepted(_)));
        // The same response again (a captured INVITE): a fresh challenge, not a call.
        assert!(matches!(c.check(&Method::Invite, [good.as_str()], 1002), Verdict::Challenge(_)));
        // A nonce this gateway never issued.
        let forged = answer("pbx1", "s3cret", "1000.00ff", "y");
        assert!(matches!(c.check(&Method::Invite, [forged.as_str()], 1001), Verdict::Challenge(h) if !h.contains("stale")));
        // Past the lifetime with the right password: stale=true, so the phone retries alone.
        let late = answer("pbx1", "s3cret", &nonce, "z");
        assert!(matches!(c.check(&Method::Invite, [late.as_str()], 1000 + 301), Verdict::Challenge(h) if h.contains("stale=true")));
    }

    #[test]
    fn nodes_sharing_the_secret_take_each_others_nonces() {
        let mut config = AuthConfig { nonce_secret: "cluster".into(), ..AuthConfig::default() };
        config.users.insert("pbx1".into(), "s3cret".into());
        let (a, b) = (Challenger::new(&config).unwrap().unwrap(), Challenger::new(&config).unwrap().unwrap());
        let nonce = nonce_of(&a.check(&Method::Invite, [], 50));
        assert!(matches!(b.check(&Method::Invite, [answer("pbx1", "s3cret", &nonce, "n").as_str()], 55), Verdict::Accepted(_)));
        assert!(matches!(challenger().check(&Method::Invite, [answer("pbx1", "s3cret", &nonce, "n").as_str()], 55), Verdict::Challenge(_)));
    }

    #[test]
    fn agents_register_with_their_own_passwords_and_callers_are_not_challenged_for_them() {
        let mut config = AuthConfig::default();
        config.agents.insert("alice".into(), "desk".into());
        let c = Challenger::new(&config).unwrap().expect("agents alone make a challenger");
        assert!(!c.challenges_calls(), "agents only: calls come in unchallenged");
        let nonce = nonce_of(&c.check(&Method::Register, [], 10));
        let uri = "sip:192.0.2.1:5060";
        let qop = AuthQop::Auth { cnonce: "r".into(), nc: 1 };
        let response = compute_digest("alice", "desk", "frontline", &nonce, &Method::Register, uri, Algorithm::Md5, Some(&qop));
        let register = format!("Digest username=\"alice\", realm=\"frontline\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"r\"");
        assert_eq!(c.check(&Method::Register, [register.as_str()], 11), Verdict::Accepted("alice".into()));
        // An agent's password is no caller's, and a caller's no agent's.
        let mut both = config.clone();
        both.users.insert("pbx1".into(), "s3cret".into());
        let c = Challenger::new(&both).unwrap().unwrap();
        let nonce = nonce_of(&c.check(&Method::Invite, [], 10));
        assert_eq!(c.check(&Method::Register, [answer("pbx1", "s3cret", &nonce, "q").as_str()], 11), Verdict::Refused("unknown user for this realm"));
    }

    #[test]
    fn a_bad_section_names_its_key() {
        assert!(Challenger::new(&AuthConfig::default()).unwrap().is_none(), "no users: no challenge");
        let mut config = AuthConfig::default();
        config.users.insert("pbx1".into(), "".into());
        assert_eq!(Challenger::new(&config).err().unwrap().0, "sip.auth.users");
        config.users.insert("pbx1".into(), "x".into());
        config.realm = " ".into();
        assert_eq!(Challenger::new(&config).err().unwrap().0, "sip.auth.realm");
        let mut config = AuthConfig::default();
        config.agents.insert("".into(), "x".into());
        assert_eq!(Challenger::new(&config).err().unwrap().0, "sip.auth.agents");
    }
}
