//! Who may use the agent console's API and the agents' desks: whoever presents one of the
//! `[http] console_tokens`, as `Authorization: Bearer TOKEN` (scripts, curl) or in the HttpOnly
//! cookie the console page's sign-in sets (browsers: EventSource cannot send headers). With no
//! tokens configured the console answers only on the gateway's own machine (loopback): caller
//! transcripts and handoff packets never go to an unauthenticated request from the network.
//!
//! The cookie never holds the token itself: it holds the time of the sign-in and a MAC over that
//! time and the token, keyed by a secret this process draws at start. A copied cookie is no
//! token for the Ops API or for `Authorization` headers, it expires server-side after
//! [`COOKIE_MAX_AGE_SECS`] like the browser's copy, and it dies with the process: after a
//! restart the agents sign in again.
//!
//! - `GET /console/session` whether a sign-in is needed and whether this browser has one
//! - `POST /console/session` `{"token": "..."}` signs the browser in (sets the cookie)
//! - `DELETE /console/session` signs it out

use crate::auth::{bearer, constant_time_eq, Tokens};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};

const COOKIE: &str = "frontline_console";
/// A shift and then some: the agent signs in again the next day.
const COOKIE_MAX_AGE_SECS: u32 = 12 * 3600;

#[derive(Clone)]
pub struct ConsoleAuth {
    tokens: Tokens,
    /// Keys the sign-in cookies' MACs; drawn at start, never leaves the process.
    cookie_key: [u8; 32],
}

impl ConsoleAuth {
    pub fn new(tokens: Tokens) -> Self {
        ConsoleAuth { tokens, cookie_key: rand::random() }
    }

    /// The cookie value for a browser signed in with `token` at `issued` (unix seconds).
    fn session_cookie(&self, token: &str, issued: u64) -> String {
        format!("{issued}.{}", hex_bytes(&self.mac(token, issued)))
    }

    fn mac(&self, token: &str, issued: u64) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.cookie_key).expect("HMAC takes a key of any length");
        mac.update(&issued.to_be_bytes());
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether a sign-in cookie was made by this process for a configured token, and is
    /// younger than its maximum age at `now` (unix seconds).
    fn cookie_is_valid(&self, value: &str, now: u64) -> bool {
        let Some((issued, mac)) = value.split_once('.') else { return false };
        let (Ok(issued), Some(mac)) = (issued.parse::<u64>(), unhex_bytes(mac)) else { return false };
        if issued > now.saturating_add(60) || now.saturating_sub(issued) > u64::from(COOKIE_MAX_AGE_SECS) {
            return false;
        }
        // Every configured token is tried, each compared in constant time, so the time taken
        // says nothing about which one matched, or how closely.
        self.tokens.iter().fold(false, |ok, token| ok | constant_time_eq(&self.mac(token, issued), &mac))
    }

    /// No tokens configured: the console needs no sign-in, and answers only on this machine.
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether a request with these headers, from `peer`, may pass, and if not, why.
    pub fn check(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<(), &'static str> {
        if self.is_open() {
            return match peer {
                Some(ip) if ip.to_canonical().is_loopback() => Ok(()),
                _ => Err("no console token is configured, so the console answers only on the gateway's own machine: set [http] console_tokens (or FRONTLINE_CONSOLE_TOKEN) and sign in"),
            };
        }
        if let Some(token) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer) {
            return if self.tokens.accepts(token) { Ok(()) } else { Err("that console token is not valid here") };
        }
        match headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| cookie(v, COOKIE)) {
            None => Err("sign in on the console page, or send `Authorization: Bearer <token>` (one of [http] console_tokens)"),
            Some(value) if self.cookie_is_valid(value, unix_now()) => Ok(()),
            Some(_) => Err("the console sign-in has expired or the gateway restarted: sign in again"),
        }
    }
}

/// The address a request came from, when the server was started with connect info.
fn peer_of(request: &Request) -> Option<IpAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip())
}

/// `name`'s value in a Cookie header (`a=1; b=2`).
fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|pair| pair.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex_bytes(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn refused(why: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, Json(json!({ "error": why }))).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"frontline console\""));
    r
}

/// Middleware on the console's API and the desks: 401 with the reason unless signed in.
/// CORS preflights pass: browsers send them without credentials.
pub async fn require(State(auth): State<ConsoleAuth>, request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        return next.run(request).await;
    }
    match auth.check(request.headers(), peer_of(&request)) {
        Ok(()) => next.run(request).await,
        Err(why) => refused(why),
    }
}

pub async fn session(State(auth): State<ConsoleAuth>, request: Request) -> Response {
    let signed_in = auth.check(request.headers(), peer_of(&request)).is_ok();
    Json(json!({ "open": auth.is_open(), "signed_in": signed_in })).into_response()
}

#[derive(Deserialize)]
pub struct SignIn {
    token: String,
}

pub async fn sign_in(State(auth): State<ConsoleAuth>, body: Result<Json<SignIn>, axum::extract::rejection::JsonRejection>) -> Response {
    let Ok(Json(SignIn { token })) = body else {
        return (StatusCode::BAD_REQUEST, Json(json!({ "error": "POST {\"token\": \"...\"} as application/json" }))).into_response();
    };
    if auth.is_open() {
        return StatusCode::NO_CONTENT.into_response();
    }
    if !auth.tokens.accepts(token.trim()) {
        return refused("that console token is not valid here");
    }
    let value = auth.session_cookie(token.trim(), unix_now());
    let cookie = format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_SECS}");
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

pub async fn sign_out() -> Response {
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"))]).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(k.clone(), v.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_token_opens_the_console_as_bearer_or_cookie() {
        let token = "s3cret; with=odd chars";
        let auth = ConsoleAuth::new(Tokens::new(&[token.into(), "other".into()], None));
        let remote = Some(IpAddr::from([203, 0, 113, 9]));
        assert!(auth.check(&headers(&[(header::AUTHORIZATION, &format!("Bearer {token}"))]), remote).is_ok());
        let value = auth.session_cookie(token, unix_now());
        let cookie = format!("theme=dark; {COOKIE}={value}; x=1");
        assert!(auth.check(&headers(&[(header::COOKIE, &cookie)]), remote).is_ok());
        assert!(auth.check(&headers(&[]), remote).unwrap_err().contains("sign in"));
        assert!(auth.check(&headers(&[(header::AUTHORIZATION, "Bearer nope")]), remote).unwrap_err().contains("not valid"));
        assert!(auth.check(&headers(&[(header::COOKIE, &format!("{COOKIE}=zz"))]), remote).is_err());
    }

    #[test]
    fn the_cookie_holds_no_token_and_opens_nothing_elsewhere() {
        let token = "s3cret-token";
        let auth = ConsoleAuth::new(Tokens::new(&[token.into()], None));
        let now = unix_now();
        let value = auth.session_cookie(token, now);
        assert!(!value.contains(token) && !value.contains(&hex_bytes(token.as_bytes())), "{value}");
        // Not a bearer token, and not a cookie another gateway process would take.
        let remote = Some(IpAddr::from([203, 0, 113, 9]));
        assert!(auth.check(&headers(&[(header::AUTHORIZATION, &format!("Bearer {value}"))]), remote).is_err());
        let restarted = ConsoleAuth::new(Tokens::new(&[token.into()], None));
        assert!(!restarted.cookie_is_valid(&value, now));
        // Expired, from the future, or with its time edited: refused.
        assert!(auth.cookie_is_valid(&value, now + u64::from(COOKIE_MAX_AGE_SECS)));
        assert!(!auth.cookie_is_valid(&value, now + u64::from(COOKIE_MAX_AGE_SECS) + 1));
        assert!(!auth.cookie_is_valid(&auth.session_cookie(token, now + 3600), now));
        let (_, mac) = value.split_once('.').unwrap();
        assert!(!auth.cookie_is_valid(&format!("{}.{mac}", now + 100), now + 200));
        // A token taken out of the configuration signs its browsers out.
        let removed = ConsoleAuth { tokens: Tokens::new(&["another".into()], None), cookie_key: auth.cookie_key };
        assert!(!removed.cookie_is_valid(&value, now));
    }

    #[test]
    fn without_tokens_the_console_answers_only_on_this_machine() {
        let auth = ConsoleAuth::new(Tokens::default());
        assert!(auth.is_open());
        for local in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(auth.check(&HeaderMap::new(), Some(local.parse().unwrap())).is_ok(), "{local}");
        }
        for remote in [Some("192.0.2.7".parse().unwrap()), Some("2001:db8::1".parse().unwrap()), None] {
            let why = auth.check(&HeaderMap::new(), remote).unwrap_err();
            assert!(why.contains("console_tokens"), "{why}");
        }
    }

    #[test]
    fn hex_round_trips() {
        for b in [&b""[..], b"abc", "汉字; =x".as_bytes()] {
            assert_eq!(unhex_bytes(&hex_bytes(b)).as_deref(), Some(b));
        }
        assert_eq!(unhex_bytes("0"), None);
        assert_eq!(unhex_bytes("zz"), None);
    }
}
