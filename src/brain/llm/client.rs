//! A thin client for an OpenAI-compatible chat-completions API: the startup probe
//! (`GET /models`) and streaming completions (`POST /chat/completions`, server-sent events).
//! All parsing lives in [`super::stream`]; this file only moves bytes.

use super::stream::{SseData, SseParser};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("cannot reach the LLM server at {url}: {message}")]
    Connect { url: String, message: String },
    #[error("the LLM server answered {status} to {url}: {body}")]
    Status { url: String, status: u16, body: String },
    #[error("the LLM server's reply broke off: {0}")]
    Body(String),
    #[error("the LLM server did not answer within {0} ms")]
    Timeout(u64),
    #[error("{0}")]
    Protocol(String),
}

#[derive(Clone)]
pub struct LlmClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    base: String,
    key: Option<String>,
}

impl std::fmt::Debug for LlmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("LlmClient").field("base", &self.base).field("key", &self.key.as_ref().map(|_| "***")).finish()
    }
}

impl LlmClient {
    /// `base` is the API root ending in /v1, http or https; `tls` verifies https servers
    /// (see [`super::tls::client_config`]).
    pub fn new(base: &str, key: Option<String>, connect_timeout: Duration, tls: rustls::ClientConfig) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_connect_timeout(Some(connect_timeout));
        // Tokens are small writes the caller is waiting for.
        conn.set_nodelay(true);
        // The TLS layer wraps the TCP connector, which must then accept https URLs too.
        conn.enforce_http(false);
        let conn = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().wrap_connector(conn);
        let http = Client::builder(TokioExecutor::new()).build(conn);
        LlmClient { http, base: base.trim_end_matches('/').to_string(), key }
    }

    fn request(&self, method: hyper::Method, path: &str, body: Option<&Value>) -> Result<hyper::Request<Full<Bytes>>, LlmError> {
        let url = format!("{}{path}", self.base);
        let mut b = hyper::Request::builder().method(method).uri(&url).header("accept", "application/json, text/event-stream");
        if let Some(k) = &self.key {
            b = b.header("authorization", format!("Bearer {k}"));
        }
        let body = match body {
            Some(v) => {
                b = b.header("content-type", "application/json");
                Full::new(Bytes::from(v.to_string()))
            }
            None => Full::new(Bytes::new()),
        };
        b.body(body).map_err(|e| LlmError::Connect { url, message: e.to_string() })
    }

    async fn send(&self, req: hyper::Request<Full<Bytes>>) -> Result<hyper::Response<Incoming>, LlmError> {
        let url = req.uri().to_string();
        let resp = self.http.request(req).await.map_err(|e| {
            // The interesting part of a hyper error is in its source chain.
            let mut message = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                message = format!("{message}: {s}");
                src = s.source();
            }
            LlmError::Connect { url: url.clone(), message }
        })?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let body: String = String::from_utf8_lossy(&body).chars().take(300).collect();
            return Err(LlmError::Status { url, status, body });
        }
        Ok(resp)
    }

    /// The model ids the server lists (`GET /models`).
    pub async fn models(&self, timeout: Duration) -> Result<Vec<String>, LlmError> {
        let work = async {
            let resp = self.send(self.request(hyper::Method::GET, "/models", None)?).await?;
            let body = resp.into_body().collect().await.map_err(|e| LlmError::Body(e.to_string()))?.to_bytes();
            let v: Value = serde_json::from_slice(&body)
                .map_err(|_| LlmError::Protocol(format!("{}/models did not return JSON: is this an OpenAI-compatible /v1 URL?", self.base)))?;
            let ids = v
                .get("data")
                .and_then(Value::as_array)
                .map(|d| d.iter().filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_string)).collect())
                .ok_or_else(|| LlmError::Protocol(format!("{}/models has no `data` list: is this an OpenAI-compatible /v1 URL?", self.base)))?;
            Ok(ids)
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| LlmError::Timeout(timeout.as_millis() as u64))?
    }

    /// Starts a streaming completion; `body` is the request without `stream`.
    pub async fn stream(&self, mut body: Value) -> Result<CompletionStream, LlmError> {
        body["stream"] = Value::Bool(true);
        let resp = self.send(self.request(hyper::Method::POST, "/chat/completions", Some(&body))?).await?;
        Ok(CompletionStream { body: resp.into_body(), sse: SseParser::default(), pending: VecDeque::new(), ended: false })
    }
}

/// The events of one streaming completion.
pub struct CompletionStream {
    body: Incoming,
    sse: SseParser,
    pending: VecDeque<SseData>,
    ended: bool,
}

impl CompletionStream {
    /// The next event; `None` once the body ended (with or without `[DONE]`).
    pub async fn next(&mut self) -> Option<Result<SseData, LlmError>> {
        loop {
            if let Some(d) = self.pending.pop_front() {
                return Some(Ok(d));
            }
            if self.ended {
                return None;
            }
            match self.body.frame().await {
                None => self.ended = true,
                Some(Err(e)) => {
                    self.ended = true;
                    return Some(Err(LlmError::Body(e.to_string())));
                }
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.pending.extend(self.sse.push(data));
                    }
                }
            }
        }
    }
}
