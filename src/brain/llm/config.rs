//! The `[brain.llm]` table: which OpenAI-compatible server the LLM brain talks to, and the
//! bounds it keeps (time, length, memory).

use serde::Deserialize;
use std::collections::BTreeMap;

/// The environment variable holding the API key unless `api_key_env` names another one.
pub const DEFAULT_API_KEY_ENV: &str = "FRONTLINE_LLM_API_KEY";

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL of the chat-completions API, ending in /v1 (e.g. "http://127.0.0.1:8000/v1").
    pub url: String,
    /// Model name as the server knows it (its /v1/models list).
    pub model: String,
    /// Extra trusted CA certificates (PEM) for an https `url` whose certificate is not signed by
    /// a public CA: a private CA or a self-signed server. Empty: Mozilla's roots only.
    pub ca_file: String,
    /// Environment variable that holds the API key; unset or empty: no Authorization header.
    pub api_key_env: String,
    /// Startup probe (GET /v1/models) and connection timeout.
    pub connect_timeout_ms: u64,
    /// No spoken chunk by then: the caller hears a filler line while the LLM keeps going.
    pub filler_after_ms: u64,
    /// No complete reply by then: the playbook's answer for the turn is said instead.
    pub reply_deadline_ms: u64,
    /// A reply is cut at the last sentence boundary before this many characters.
    pub max_reply_chars: usize,
    /// Token cap per completion (a second bound on length and time).
    pub max_tokens: u32,
    pub temperature: f32,
    /// Sent as `seed` so a temperature-0 run repeats itself.
    pub seed: u64,
    /// Recent caller/bot turns kept verbatim; older ones are folded into a short summary.
    pub memory_turns: usize,
    /// FAQ entries retrieved from the playbook per turn and put into the prompt.
    pub faq_entries: usize,
    /// Mask card and ID numbers (per [redaction]) before caller words are sent to the LLM.
    pub redact: bool,
    /// Offer the tools to the model on every turn (tool_choice "auto"). Small models call tools
    /// at random; false keeps only the routed tool calls (see src/brain/llm/mod.rs).
    pub model_tools: bool,
    /// Business lookups offered as tools: tool name → what it answers and which demo account
    /// fields (the playbook's [account.<lang>]) answer it. A CRM adapter answers the same names.
    pub lookups: BTreeMap<String, LookupConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LookupConfig {
    /// Tool description the model reads.
    pub description: String,
    /// Playbook intents whose words route straight to this lookup (run before the LLM call).
    #[serde(default)]
    pub intents: Vec<String>,
    /// Account fields that answer it.
    pub fields: Vec<String>,
}

fn lookup(description: &str, intents: &[&str], fields: &[&str]) -> LookupConfig {
    LookupConfig {
        description: description.to_string(),
        intents: intents.iter().map(|s| s.to_string()).collect(),
        fields: fields.iter().map(|s| s.to_string()).collect(),
    }
}

impl Default for LlmConfig {
    fn default() -> Self {
        let lookups = [
            ("balance", lookup("The caller's prepaid balance.", &["balance"], &["balance"])),
            (
                "bill_items",
                lookup(
                    "The caller's last bill: total and items.",
                    &["bill"],
                    &["bill_month", "bill_total", "bill_plan", "bill_pack", "bill_roaming"],
                ),
            ),
            ("data_left", lookup("Mobile data left this month.", &["data_left"], &["data_left", "data_total", "data_reset"])),
            ("plans", lookup("The caller's plan and the data pack on offer.", &["plans", "data_pack"], &["plan_name", "plan_price", "pack_offer"])),
            ("outage_status", lookup("Known network or broadband outages at the caller's address.", &["broadband"], &["outage"])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        LlmConfig {
            url: String::new(),
            model: String::new(),
            ca_file: String::new(),
            api_key_env: DEFAULT_API_KEY_ENV.to_string(),
            connect_timeout_ms: 3000,
            filler_after_ms: 2500,
            reply_deadline_ms: 7000,
            max_reply_chars: 400,
            max_tokens: 160,
            temperature: 0.3,
            seed: 42,
            memory_turns: 6,
            faq_entries: 3,
            redact: true,
            model_tools: false,
            lookups,
        }
    }
}

impl LlmConfig {
    /// Checks what serde cannot; the error is (key, problem).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let bad = |k: &'static str, m: &str| Err((k, m.to_string()));
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return bad("brain.llm.url", "set the chat-completions base URL, e.g. \"http://127.0.0.1:8000/v1\" (--llm-url)");
        }
        if !self.ca_file.is_empty() && !self.url.starts_with("https://") {
            return bad("brain.llm.ca_file", "only used for an https url; remove it, or use https:// in brain.llm.url");
        }
        if self.model.trim().is_empty() {
            return bad("brain.llm.model", "name the model the server serves (--model; see the server's /v1/models)");
        }
        if self.filler_after_ms == 0 || self.reply_deadline_ms <= self.filler_after_ms {
            return bad("brain.llm.reply_deadline_ms", "need 0 < filler_after_ms < reply_deadline_ms");
        }
        if self.max_reply_chars < 40 {
            return bad("brain.llm.max_reply_chars", "at least 40: one spoken sentence");
        }
        if self.memory_turns == 0 {
            return bad("brain.llm.memory_turns", "at least 1");
        }
        for (name, l) in &self.lookups {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return bad("brain.llm.lookups", &format!("tool name {name:?}: use letters, digits and _"));
            }
            if l.fields.is_empty() {
                return bad("brain.llm.lookups", &format!("{name}.fields: list at least one account field"));
            }
        }
        Ok(())
    }

    /// The API key from `api_key_env`, if set.
    pub fn api_key(&self) -> Option<String> {
        std::env::var(&self.api_key_env).ok().filter(|k| !k.trim().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_needs_an_https_url() {
        let https = LlmConfig { url: "https://llm.example/v1".into(), model: "m".into(), ca_file: "ca.pem".into(), ..LlmConfig::default() };
        assert_eq!(https.validate(), Ok(()));
        let http = LlmConfig { url: "http://127.0.0.1:8000/v1".into(), ..https };
        assert_eq!(http.validate().unwrap_err().0, "brain.llm.ca_file");
    }
}
