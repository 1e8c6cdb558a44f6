//! The embedded playbook brain: serves the `Dialog` gRPC contract from a TOML playbook.
//!
//! - [`playbook`]: loads and validates what a service designer writes (`assets/playbook.toml`);
//! - [`conversation`]: the sans-IO dialog core, one per call;
//! - [`server`]: the tonic service and [`serve_embedded`], one task per stream;
//! - [`suggest`]: sans-IO suggested answers for a human agent (the `Suggest` rpc);
//! - [`text`]: normalization and keyword matching shared by the above;
//! - [`llm`]: the LLM brain (an OpenAI-compatible API behind the same contract).
pub mod config;
pub mod conversation;
pub mod llm;
pub mod playbook;
pub mod review;
pub mod server;
pub(crate) mod sound;
pub mod suggest;
pub mod text;

pub use config::BrainConfig;
pub use conversation::Conversation;
pub use playbook::{Playbook, PlaybookError};
pub use suggest::{suggest, SuggestError};
pub use server::{default_addr, serve_embedded, serve_dialog, serve_embedded_with_shutdown, BrainError, PlaybookBrain};

#[cfg(test)]
mod tests;
