//! The LLM brain: the `Dialog` contract answered by an OpenAI-compatible chat-completions API
//! (DeepSeek, Qwen, vLLM, Ollama, llama.cpp's server), grounded in the playbook and kept safe.
//!
//! Per caller turn ([`turn`]):
//! 1. the playbook's own conversation core reads the turn first (sans-IO, instant): it names the
//!    intent and mood for triage (Annotate), picks the reply language, and its answer is the
//!    fallback when the LLM is too slow. Its escalations and goodbyes are routed to the
//!    escalate and hang_up tools directly: a small model must not be the only thing standing
//!    between a caller who asked for a person and that person;
//! 2. lookups whose intents matched run before the LLM call (routed tool calls), and the
//!    playbook FAQ entries that match the turn are retrieved: both go into the prompt as FACTS;
//! 3. the completion streams in; [`chunker`] cuts it into sentences, [`guard`] drops any that
//!    leak the prompt or quote an invented figure, and each is sent as a Say at once;
//! 4. tool calls the model makes are executed; a lookup triggers one more (tool-less) round
//!    with its result in FACTS; a malformed call is logged and ignored;
//! 5. deadlines: a filler line when nothing was said after `filler_after_ms`, the playbook's
//!    answer after `reply_deadline_ms`; an LLM error: an apology and a handoff ("brain-error").
//!
//! Files: [`config`] (`[brain.llm]`), [`client`] (HTTP and HTTPS), [`tls`] (roots, `ca_file`), [`stream`] (SSE parsing), [`chunker`],
//! [`retrieval`] (BM25 over the FAQ), [`tools`] (tool specs, parsing, the [`Crm`] trait),
//! [`prompt`], [`guard`], [`memory`], [`turn`] (the per-call driver), [`service`] (gRPC).

pub mod chunker;
pub mod client;
pub mod config;
pub mod guard;
pub mod memory;
pub mod prompt;
pub mod retrieval;
pub mod service;
pub mod stream;
pub mod tls;
pub mod tools;
pub mod turn;

pub use client::{LlmClient, LlmError};
pub use config::{LlmConfig, LookupConfig, DEFAULT_API_KEY_ENV};
pub use service::{serve_llm, LlmBrain, LlmStartError};
pub use tools::{Crm, PlaybookCrm};
