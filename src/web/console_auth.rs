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

use crate::auth::{bearer, unix_now, Stamper, Tokens};
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
    /// Stamps the sign-in cookies; its key is drawn at start and never leaves the process.
    cookies: Stamper,
}

impl ConsoleAuth {
    pub fn new(tokens: Tokens) -> Self {
        ConsoleAuth { tokens, cookies: Stamper::random() }
    }

    /// The cookie value for a browser signed in with `token` at `issued` (unix seconds).
    fn session_cookie(&self, token: &str, issued: u64) -> String {
        self.cookies.stamp(token.as_bytes(), issued)
    }

    /// Whether a sign-in cookie was made by this process for a configured token, and is
    /// younger than its maximum age at `now` (unix seconds).
    fn cookie_is_valid(&self, value: &str, now: u64) -> bool {
        // Every configured token is tried, each compared in constant time, so the time taken
        // says nothing about which one matched, or how closely.
        let issued = self.tokens.iter().fold(None, |found, token| self.cookies.issued(value, token.as_bytes()).or(found));
        issued.is_some_and(|issued| issued <= now.saturating_add(60) && now.saturating_sub(issued) <= u64::from(COOKIE_MAX_AGE_SECS))
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
        assert!(!value.contains(token) && !value.contains(&crate::auth::hex_bytes(token.as_bytes())), "{value}");
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
        let removed = ConsoleAuth { tokens: Tokens::new(&["another".into()], None), cookies: auth.cookies.clone() };
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
}
