//! The gRPC side of the LLM brain: startup checks, one task per `Converse` stream, `Suggest`.

use super::client::{LlmClient, LlmError};
use super::config::LlmConfig;
use super::retrieval::Faq;
use super::stream::{CompletionAccumulator, SseData};
use super::tools::{Crm, PlaybookCrm};
use super::turn::Call;
use crate::brain::conversation::Conversation;
use crate::brain::playbook::Playbook;
use crate::brain::server::{next_event, read_start, serve_dialog, BrainError};
use crate::brain::suggest::{suggest, suggestion_language, MAX_SUGGESTIONS};
use crate::proto::dialog::{
    caller_event::Event,
    dialog_server::{Dialog, DialogServer},
    BotAction, CallerEvent, SuggestReply, SuggestRequest, Suggestion,
};
use crate::redact::RedactionConfig;
use serde_json::json;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

const ACTIONS_BUFFER: usize = 32;
/// Kept from the caller's Suggest deadline to answer with the playbook's suggestions.
const SUGGEST_MARGIN: Duration = Duration::from_millis(300);

/// A `grpc-timeout` header value: digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(v: &str) -> Option<Duration> {
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Why the LLM brain cannot start; names the setting to fix.
#[derive(Debug, thiserror::Error)]
#[error("{key}: {message}")]
pub struct LlmStartError {
    pub key: String,
    pub message: String,
}

fn start_error(key: &str, message: impl Into<String>) -> LlmStartError {
    LlmStartError { key: key.to_string(), message: message.into() }
}

/// What every call of the brain shares (read-only).
pub(super) struct Shared {
    pub(super) cfg: LlmConfig,
    pub(super) redaction: RedactionConfig,
    pub(super) playbook: Arc<Playbook>,
    pub(super) faq: Faq,
    pub(super) crm: Arc<dyn Crm>,
    pub(super) client: LlmClient,
}

impl Shared {
    /// A whole completion, content and tool calls (for summaries and suggestions).
    pub(super) async fn complete(&self, body: serde_json::Value) -> Result<CompletionAccumulator, LlmError> {
        let mut stream = self.client.stream(body).await?;
        let mut acc = CompletionAccumulator::default();
        while let Some(ev) = stream.next().await {
            match ev? {
                SseData::Done => break,
                SseData::Json(j) => {
                    acc.apply(&j).map_err(|e| LlmError::Protocol(e.to_string()))?;
                }
            }
        }
        Ok(acc)
    }
}

/// The `Dialog` service answered by an LLM.
#[derive(Clone)]
pub struct LlmBrain {
    shared: Arc<Shared>,
}

impl LlmBrain {
    /// Checks the settings and probes the server (`GET /models`): a wrong URL, key or model
    /// fails here, naming the setting, instead of on the first call.
    pub async fn start(cfg: LlmConfig, redaction: RedactionConfig, playbook: Playbook) -> Result<LlmBrain, LlmStartError> {
        let playbook = Arc::new(playbook);
        let crm: Arc<dyn Crm> = Arc::new(PlaybookCrm::new(playbook.clone(), cfg.lookups.clone()));
        Self::start_with_crm(cfg, redaction, playbook, crm).await
    }

    /// Like [`LlmBrain::start`], with lookups answered by `crm` (a real CRM adapter).
    pub async fn start_with_crm(
        cfg: LlmConfig,
        redaction: RedactionConfig,
        playbook: Arc<Playbook>,
        crm: Arc<dyn Crm>,
    ) -> Result<LlmBrain, LlmStartError> {
        cfg.validate().map_err(|(k, m)| start_error(k, m))?;
        let ca_file = (!cfg.ca_file.is_empty()).then(|| std::path::Path::new(&cfg.ca_file));
        let tls = super::tls::client_config(ca_file).map_err(|e| start_error("brain.llm.ca_file", e.to_string()))?;
        let key = cfg.api_key();
        let timeout = Duration::from_millis(cfg.connect_timeout_ms);
        let client = LlmClient::new(&cfg.url, key.clone(), timeout, tls);
        let models = client.models(timeout).await.map_err(|e| match &e {
            LlmError::Status { status: 401 | 403, .. } => start_error(
                &format!("brain.llm.api_key_env ({})", cfg.api_key_env),
                format!("the LLM server refused the key{}: {e}", if key.is_none() { " (the variable is not set)" } else { "" }),
            ),
            LlmError::Connect { message, .. } if super::tls::is_certificate_error(message) => start_error(
                "brain.llm.url / brain.llm.ca_file",
                format!(
                    "{e}; the server's certificate is not trusted: for a private CA or a self-signed server set brain.llm.ca_file to its CA certificate (PEM){}, and check that the URL's host name is the one in the certificate",
                    if cfg.ca_file.is_empty() { "" } else { " (the one set does not sign it)" }
                ),
            ),
            _ => start_error("brain.llm.url (--llm-url)", format!("{e}; check the address and that it ends in /v1")),
        })?;
        if !models.contains(&cfg.model) {
            return Err(start_error("brain.llm.model (--model)", format!("{:?} is not served at {}; it serves {models:?}", cfg.model, cfg.url)));
        }
        let faq = Faq::from_playbook(&playbook);
        // Every configured lookup must be answerable, or the model would be offered a broken tool.
        for name in cfg.lookups.keys() {
            crm.lookup(name, playbook.default_language())
                .map_err(|e| start_error(&format!("brain.llm.lookups.{name}"), format!("{e} (playbook {})", playbook.origin())))?;
        }
        tracing::info!(url = %cfg.url, model = %cfg.model, faq_entries = faq.len(), lookups = cfg.lookups.len(), "llm brain ready");
        Ok(LlmBrain { shared: Arc::new(Shared { cfg, redaction, playbook, faq, crm, client }) })
    }

    pub fn into_service(self) -> DialogServer<Self> {
        DialogServer::new(self)
    }
}

async fn drive(shared: Arc<Shared>, mut inbound: Streaming<CallerEvent>, tx: mpsc::Sender<Result<BotAction, Status>>) {
    let Some(start) = read_start(&mut inbound, &tx).await else { return };
    let playbook = shared.playbook.clone();
    let conv = Conversation::new(&playbook, &start);
    let mut call = Call::new(shared.clone(), conv, start.call_id.clone(), tx);
    if call.greet().await.is_err() {
        return;
    }
    while let Some(ev) = next_event(&mut inbound, &start.call_id).await {
        let ended = matches!(ev.event, Some(Event::End(_)));
        if call.on_event(&ev).await.is_err() || ended {
            break;
        }
    }
    tracing::debug!(call_id = %start.call_id, "llm brain: stream closed");
}

#[tonic::async_trait]
impl Dialog for LlmBrain {
    type ConverseStream = ReceiverStream<Result<BotAction, Status>>;

    async fn converse(&self, request: Request<Streaming<CallerEvent>>) -> Result<Response<Self::ConverseStream>, Status> {
        let (tx, rx) = mpsc::channel(ACTIONS_BUFFER);
        tokio::spawn(drive(self.shared.clone(), request.into_inner(), tx));
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    /// The LLM's suggestions, grounded in the FAQ; the playbook's when the LLM fails or is slow
    /// (an agent's panel must never stay empty because a model is down).
    async fn suggest(&self, request: Request<SuggestRequest>) -> Result<Response<SuggestReply>, Status> {
        // The caller's own deadline (the gateway gives Suggest two seconds): the playbook's
        // answer must still arrive in time when the LLM does not.
        let asked = request.metadata().get("grpc-timeout").and_then(|v| v.to_str().ok()).and_then(parse_grpc_timeout);
        let req = request.into_inner();
        let s = &self.shared;
        // The playbook's checks are the contract's limits; its answers are the fallback.
        let fallback = suggest(&s.playbook, &req).map_err(|e| Status::invalid_argument(e.to_string()))?;
        let lang = suggestion_language(&s.playbook, &req.language, &req.transcript);
        let lines: Vec<String> = req
            .transcript
            .iter()
            .rev()
            .take(s.cfg.memory_turns)
            .rev()
            .map(|l| if s.cfg.redact { crate::redact::redact(l, &s.redaction).into_owned() } else { l.clone() })
            .collect();
        let query = lines.join(" ");
        let facts: Vec<String> = s.faq.retrieve(&query, s.cfg.faq_entries).iter().map(|e| e.text(&lang).to_string()).collect();
        let body = json!({
            "model": s.cfg.model,
            "messages": super::prompt::suggest_request(&lines, &facts, &lang),
            "temperature": s.cfg.temperature,
            "seed": s.cfg.seed,
            "max_tokens": 120,
        });
        let budget = match asked {
            Some(t) => t.saturating_sub(SUGGEST_MARGIN),
            None => Duration::from_millis(s.cfg.filler_after_ms),
        };
        let text = match tokio::time::timeout(budget, s.complete(body)).await {
            Ok(Ok(t)) => t.content,
            Ok(Err(e)) => {
                tracing::warn!(call_id = %req.call_id, error = %e, "llm brain: suggestions failed; the playbook's instead");
                return Ok(Response::new(SuggestReply { suggestions: fallback }));
            }
            Err(_) => {
                tracing::warn!(call_id = %req.call_id, "llm brain: suggestions too slow; the playbook's instead");
                return Ok(Response::new(SuggestReply { suggestions: fallback }));
            }
        };
        let mut suggestions: Vec<Suggestion> = Vec::new();
        for line in text.lines() {
            let t = super::chunker::strip_markdown(line);
            let t = t.trim_matches(|c: char| c == '"' || c.is_whitespace()).to_string();
            if t.chars().count() < 4 || suggestions.iter().any(|x| x.text == t) || super::guard::ungrounded_figure(&t, &facts.join("\n")).is_some() {
                continue;
            }
            let score = 1.0 - suggestions.len() as f32 * 0.1;
            suggestions.push(Suggestion { text: t, intent: req.intent.clone(), score });
            if suggestions.len() == MAX_SUGGESTIONS {
                break;
            }
        }
        if suggestions.is_empty() {
            suggestions = fallback;
        }
        Ok(Response::new(SuggestReply { suggestions }))
    }
}

/// Serves the LLM brain on `addr` (port 0 picks one); returns the bound address and the task.
pub async fn serve_llm(
    brain: LlmBrain,
    addr: SocketAddr,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, JoinHandle<Result<(), BrainError>>), BrainError> {
    serve_dialog(brain.into_service(), addr, shutdown, "llm brain").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_in_every_unit_and_garbage_does_not() {
        assert_eq!(parse_grpc_timeout("2000m"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("1500000u"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_grpc_timeout(""), None);
        assert_eq!(parse_grpc_timeout("12x"), None);
        assert_eq!(parse_grpc_timeout("m"), None);
    }
}
