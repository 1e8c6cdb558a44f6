//! Server-sent events of a streaming chat completion, parsed without I/O.
//!
//! [`SseParser`] turns body bytes into `data:` payloads (events may be split anywhere, even in
//! the middle of a UTF-8 character); [`CompletionAccumulator`] turns payloads into content
//! deltas and assembles tool calls, which arrive as fragments keyed by index.

use serde_json::Value;

#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
}

/// One server-sent event's data.
#[derive(Debug, Clone, PartialEq)]
pub enum SseData {
    Json(String),
    Done,
}

impl SseParser {
    /// Feeds body bytes; returns the data of every event completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseData> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        // Events end with a blank line; accept \n\n and \r\n\r\n.
        while let Some((end, sep)) = find_event_end(&self.buf) {
            let event: Vec<u8> = self.buf.drain(..end + sep).collect();
            let event = String::from_utf8_lossy(&event[..end]);
            let mut data = String::new();
            for line in event.lines() {
                if let Some(d) = line.strip_prefix("data:") {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(d.strip_prefix(' ').unwrap_or(d));
                }
            }
            match data.trim() {
                "" => {}
                "[DONE]" => out.push(SseData::Done),
                d => out.push(SseData::Json(d.to_string())),
            }
        }
        out
    }
}

fn find_event_end(b: &[u8]) -> Option<(usize, usize)> {
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(c)) => Some(if a.0 <= c.0 { a } else { c }),
        (a, c) => a.or(c),
    }
}

/// A tool call assembled from its streamed fragments.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RawToolCall {
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Default)]
pub struct CompletionAccumulator {
    pub content: String,
    pub tool_calls: Vec<RawToolCall>,
    pub finish_reason: Option<String>,
}

/// A payload the server sent that is not a completion chunk.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the LLM server sent {0}")]
pub struct ChunkError(pub String);

impl CompletionAccumulator {
    /// Applies one `data:` payload; returns the content it added (may be empty).
    pub fn apply(&mut self, json: &str) -> Result<String, ChunkError> {
        let v: Value = serde_json::from_str(json).map_err(|_| ChunkError(format!("a payload that is not JSON: {json:.200}")))?;
        if let Some(e) = v.get("error") {
            return Err(ChunkError(format!("an error: {e}")));
        }
        let Some(choice) = v.get("choices").and_then(|c| c.get(0)) else {
            // Usage-only chunks have no choices.
            return Ok(String::new());
        };
        if let Some(r) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(r.to_string());
        }
        // Streaming chunks carry `delta`; a server that ignores `stream` sends one `message`.
        let delta = choice.get("delta").or_else(|| choice.get("message"));
        let Some(delta) = delta else { return Ok(String::new()) };
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (pos, c) in calls.iter().enumerate() {
                let i = c.get("index").and_then(Value::as_u64).map_or(pos, |i| i as usize).min(16);
                if self.tool_calls.len() <= i {
                    self.tool_calls.resize(i + 1, RawToolCall::default());
                }
                let f = c.get("function");
                if let Some(n) = f.and_then(|f| f.get("name")).and_then(Value::as_str) {
                    self.tool_calls[i].name.push_str(n);
                }
                match f.and_then(|f| f.get("arguments")) {
                    Some(Value::String(a)) => self.tool_calls[i].arguments.push_str(a),
                    Some(Value::Null) | None => {}
                    Some(other) => self.tool_calls[i].arguments.push_str(&other.to_string()),
                }
            }
        }
        let text = delta.get("content").and_then(Value::as_str).unwrap_or("").to_string();
        self.content.push_str(&text);
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_are_reassembled() {
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"lo 你好\"}}]}\r\n\r\ndata: [DONE]\n\n";
        let bytes = body.as_bytes();
        let mut p = SseParser::default();
        let mut acc = CompletionAccumulator::default();
        let mut done = false;
        for piece in bytes.chunks(3) {
            for d in p.push(piece) {
                match d {
                    SseData::Json(j) => {
                        acc.apply(&j).unwrap();
                    }
                    SseData::Done => done = true,
                }
            }
        }
        assert!(done);
        assert_eq!(acc.content, "Hello 你好");
    }

    #[test]
    fn tool_call_fragments_are_joined_by_index() {
        let mut acc = CompletionAccumulator::default();
        acc.apply(r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","function":{"name":"escalate","arguments":"{\"reason\":"}}]}}]}"#).unwrap();
        acc.apply(r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"x\"}"}}]},"finish_reason":"tool_calls"}]}"#).unwrap();
        assert_eq!(acc.tool_calls, vec![RawToolCall { name: "escalate".into(), arguments: "{\"reason\":\"x\"}".into() }]);
        assert_eq!(acc.finish_reason.as_deref(), Some("tool_calls"));
        assert!(acc.apply("not json").is_err());
        assert!(acc.apply(r#"{"error":{"message":"model not found"}}"#).is_err());
    }
}
