//! Who may use the agent console's API and the agents' desks: whoever presents one of the
//! `[http] console_tokens`, as `Authorization: Bearer TOKEN` (scripts, curl) or in the HttpOnly
//! cookie the console page's sign-in sets (browsers: EventSource cannot send headers). With no
//! tokens configured the console answers only on the gateway's own machine (loopback): caller
//! transcripts and handoff packets never go to an unauthenticated request from the network.
//!
//! - `GET /console/session` whether a sign-in is needed and whether this browser has one
//! - `POST /console/session` `{"token": "..."}` signs the browser in (sets the cookie)
//! - `DELETE /console/session` signs it out

use crate::auth::{bearer, Tokens};
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
}

impl ConsoleAuth {
    pub fn new(tokens: Tokens) -> Self {
        ConsoleAuth { tokens }
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
        let from_header = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(bearer).map(str::to_string);
        let from_cookie = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| cookie(v, COOKIE)).and_then(unhex);
        match from_header.or(from_cookie) {
            None => Err("sign in on the console page, or send `Authorization: Bearer <token>` (one of [http] console_tokens)"),
            Some(t) if self.tokens.accepts(&t) => Ok(()),
            Some(_) => Err("that console token is not valid here"),
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

// The token goes into the cookie hex-encoded: a token may hold characters a cookie may not.
fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
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
    let cookie = format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={COOKIE_MAX_AGE_SECS}", hex(token.trim()));
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
        let auth = ConsoleAuth::new(Tokens::new(&["s3cret; with=odd chars".into()], None));
        let token = "s3cret; with=odd chars";
        let remote = Some(IpAddr::from([203, 0, 113, 9]));
        assert!(auth.check(&headers(&[(header::AUTHORIZATION, &format!("Bearer {token}"))]), remote).is_ok());
        let cookie = format!("theme=dark; {COOKIE}={}; x=1", hex(token));
        assert!(auth.check(&headers(&[(header::COOKIE, &cookie)]), remote).is_ok());
        assert!(auth.check(&headers(&[]), remote).unwrap_err().contains("sign in"));
        assert!(auth.check(&headers(&[(header::AUTHORIZATION, "Bearer nope")]), remote).unwrap_err().contains("not valid"));
        assert!(auth.check(&headers(&[(header::COOKIE, &format!("{COOKIE}=zz"))]), remote).is_err());
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
        for s in ["", "abc", "汉字; =x"] {
            assert_eq!(unhex(&hex(s)).as_deref(), Some(s));
        }
        assert_eq!(unhex("0"), None);
    }
}
