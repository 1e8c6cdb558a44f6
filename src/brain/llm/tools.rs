//! The tools the LLM may call (OpenAI tools API), how their calls are parsed, and the CRM
//! interface that answers the business lookups (sans-IO).
//!
//! The contract's own actions (escalate, hang up, collect digits) become [`BotAction`]s; the
//! lookups configured in `[brain.llm.lookups]` are answered by a [`Crm`]: here the playbook's
//! demo account, in production an adapter to the operator's CRM with the same tool names.
//!
//! [`BotAction`]: crate::proto::dialog::BotAction

use super::config::LookupConfig;
use crate::brain::playbook::Playbook;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const ESCALATE: &str = "escalate";
pub const HANG_UP: &str = "hang_up";
pub const COLLECT_DIGITS: &str = "collect_digits";

/// A tool call the brain can act on.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolCall {
    Escalate { reason: String, summary: String },
    HangUp { reason: String },
    CollectDigits { max_digits: u32 },
    Lookup { name: String },
}

/// Why a tool call from the model was not usable; logged, and the conversation goes on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolCallError {
    #[error("unknown tool {0:?}")]
    UnknownTool(String),
    #[error("tool {tool}: arguments are not a JSON object: {args:?}")]
    BadArguments { tool: String, args: String },
}

/// The `tools` array of a chat-completions request.
pub fn tool_specs(lookups: &BTreeMap<String, LookupConfig>) -> Value {
    let mut tools = vec![
        function(
            ESCALATE,
            "Hand the caller to a human agent. Use when the caller asks for a person, is upset, or you cannot help.",
            json!({
                "reason": {"type": "string", "description": "short reason, e.g. caller-request, complaint, cannot-help"},
                "summary": {"type": "string", "description": "one paragraph for the agent: who called, what they want, what was said"}
            }),
            &["reason", "summary"],
        ),
        function(HANG_UP, "End the call after saying goodbye, when the caller is done.", json!({"reason": {"type": "string"}}), &[]),
        function(
            COLLECT_DIGITS,
            "Ask the caller to key in digits on the phone keypad (an account or order number).",
            json!({"max_digits": {"type": "integer"}}),
            &["max_digits"],
        ),
    ];
    for (name, l) in lookups {
        tools.push(function(name, &l.description, json!({}), &[]));
    }
    Value::Array(tools)
}

fn function(name: &str, description: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required}
        }
    })
}

/// Parses one call. Missing or mistyped optional arguments get defaults: a small model's
/// escalation without a summary is still an escalation.
pub fn parse_tool_call(name: &str, arguments: &str, lookups: &BTreeMap<String, LookupConfig>) -> Result<ToolCall, ToolCallError> {
    let name = name.trim();
    let args: Value = if arguments.trim().is_empty() {
        json!({})
    } else {
        serde_json::from_str(arguments).map_err(|_| ToolCallError::BadArguments { tool: name.to_string(), args: arguments.to_string() })?
    };
    if !args.is_object() {
        return Err(ToolCallError::BadArguments { tool: name.to_string(), args: arguments.to_string() });
    }
    let text = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").trim().to_string();
    match name {
        ESCALATE => Ok(ToolCall::Escalate { reason: text("reason"), summary: text("summary") }),
        HANG_UP => Ok(ToolCall::HangUp { reason: text("reason") }),
        COLLECT_DIGITS => {
            let n = args.get("max_digits").and_then(|v| v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())));
            Ok(ToolCall::CollectDigits { max_digits: n.unwrap_or(20).clamp(1, 32) as u32 })
        }
        n if lookups.contains_key(n) => Ok(ToolCall::Lookup { name: n.to_string() }),
        other => Err(ToolCallError::UnknownTool(other.to_string())),
    }
}

/// Small models often write a call as text instead of using the tools API:
/// `{"name": "balance", "arguments": {...}}`, possibly inside `<tool_call>` tags or a code
/// fence. Returns (name, arguments JSON) when the whole reply is such an object.
pub fn call_in_text(content: &str) -> Option<(String, String)> {
    let t = content.trim();
    let t = t.strip_prefix("<tool_call>").unwrap_or(t);
    let t = t.strip_suffix("</tool_call>").unwrap_or(t);
    let t = t.trim().trim_start_matches("```json").trim_start_matches("```").trim_end_matches("```").trim();
    if !t.starts_with('{') {
        return None;
    }
    let v: Value = serde_json::from_str(t).ok()?;
    let name = v.get("name").or_else(|| v.get("function")).and_then(Value::as_str)?;
    let args = v.get("arguments").or_else(|| v.get("parameters")).cloned().unwrap_or(json!({}));
    let args = match args {
        Value::String(s) => s,
        other => other.to_string(),
    };
    Some((name.to_string(), args))
}

/// Answers business lookups. A real deployment implements this over its CRM; the demo answers
/// from the playbook's account table.
pub trait Crm: Send + Sync {
    /// The facts for `tool` in `lang`, as short spoken phrases.
    fn lookup(&self, tool: &str, lang: &str) -> Result<String, CrmError>;
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CrmError {
    #[error("no lookup named {0:?}")]
    Unknown(String),
    #[error("lookup {tool}: no data for field {field:?}")]
    Missing { tool: String, field: String },
}

/// The demo CRM: the playbook's `[account.<lang>]` values.
pub struct PlaybookCrm {
    playbook: Arc<Playbook>,
    lookups: BTreeMap<String, LookupConfig>,
}

impl PlaybookCrm {
    pub fn new(playbook: Arc<Playbook>, lookups: BTreeMap<String, LookupConfig>) -> Self {
        PlaybookCrm { playbook, lookups }
    }
}

impl Crm for PlaybookCrm {
    fn lookup(&self, tool: &str, lang: &str) -> Result<String, CrmError> {
        let l = self.lookups.get(tool).ok_or_else(|| CrmError::Unknown(tool.to_string()))?;
        let lang = if self.playbook.supports(lang) { lang } else { self.playbook.default_language() };
        let mut parts = Vec::new();
        for f in &l.fields {
            let v = self
                .playbook
                .account_field(lang, f)
                .ok_or_else(|| CrmError::Missing { tool: tool.to_string(), field: f.clone() })?;
            parts.push(format!("{}: {v}", f.replace('_', " ")));
        }
        Ok(parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::brain::llm::LlmConfig;

    #[test]
    fn parses_the_contract_tools_and_the_configured_lookups() {
        let l = LlmConfig::default().lookups;
        assert_eq!(
            parse_tool_call("escalate", r#"{"reason":"complaint","summary":"wants a refund"}"#, &l),
            Ok(ToolCall::Escalate { reason: "complaint".into(), summary: "wants a refund".into() })
        );
        assert_eq!(parse_tool_call("escalate", "", &l), Ok(ToolCall::Escalate { reason: String::new(), summary: String::new() }));
        assert_eq!(parse_tool_call("collect_digits", r#"{"max_digits":"6"}"#, &l), Ok(ToolCall::CollectDigits { max_digits: 6 }));
        assert_eq!(parse_tool_call("balance", "{}", &l), Ok(ToolCall::Lookup { name: "balance".into() }));
        let specs = tool_specs(&l);
        assert_eq!(specs.as_array().unwrap().len(), 3 + l.len());
    }

    #[test]
    fn malformed_calls_are_errors_not_panics() {
        let l = LlmConfig::default().lookups;
        assert!(matches!(parse_tool_call("transfer_money", "{}", &l), Err(ToolCallError::UnknownTool(_))));
        assert!(matches!(parse_tool_call("escalate", "{\"reason\":", &l), Err(ToolCallError::BadArguments { .. })));
        assert!(matches!(parse_tool_call("escalate", "[1,2]", &l), Err(ToolCallError::BadArguments { .. })));
    }

    #[test]
    fn a_call_written_as_text_is_recognized() {
        assert_eq!(
            call_in_text("<tool_call>\n{\"name\": \"balance\", \"arguments\": {}}\n</tool_call>"),
            Some(("balance".into(), "{}".into()))
        );
        assert_eq!(call_in_text("Your balance is fine."), None);
    }

    #[test]
    fn the_demo_crm_answers_from_the_playbook_account() {
        let pb = Arc::new(Playbook::embedded().unwrap());
        let crm = PlaybookCrm::new(pb, LlmConfig::default().lookups);
        assert!(crm.lookup("balance", "en").unwrap().contains("forty-two yuan fifty"));
        assert!(crm.lookup("balance", "zh").unwrap().contains("四十二元五角"));
        assert!(crm.lookup("outage_status", "en").unwrap().contains("outage"));
        assert!(matches!(crm.lookup("nope", "en"), Err(CrmError::Unknown(_))));
    }
}
