//! The handoff packet: everything an agent needs to pick the call up without asking the caller
//! to repeat themselves, as JSON (stored with the call, fetched by the console) and as SIP
//! headers on the INVITE to the agent.

use crate::triage::{Category, Escalation, Evidence};
use serde::Serialize;
use std::collections::BTreeMap;

/// One line of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TranscriptLine {
    pub turn: u32,
    /// "caller", "bot" or "agent".
    pub speaker: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct HandoffPacket {
    pub call_id: String,
    /// Caller number or URI user part.
    pub caller: String,
    /// The number the caller dialed.
    pub callee: String,
    /// The caller's id in the CRM, when the INVITE carried one (`[sip] customer_id_header`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    /// "en" or "zh": the language the conversation went on in.
    pub language: String,
    /// "sip", "webrtc", "chat".
    pub channel: String,
    pub transcript: Vec<TranscriptLine>,
    pub summary: String,
    /// The brain's latest intent.
    pub intent: String,
    /// What the brain collected (account number, amount, ...).
    pub slots: BTreeMap<String, String>,
    /// The brain's sentiment per turn, oldest first.
    pub sentiment_trend: Vec<String>,
    /// Triage category ("risk", "explicit", ...).
    pub reason: String,
    /// Triage reason code ("risk-dispute", ...).
    pub code: String,
    pub priority: String,
    pub evidence: Vec<Evidence>,
    pub created_at_ms: u64,
    /// The caller's earlier calls, newest first (`[records] history_days`): what they called
    /// about, how it ended, and one line of what they said.
    pub history: Vec<crate::records::PastCall>,
}

/// Longest encoded `X-Frontline-Summary`: enough for a paragraph, short enough that the INVITE
/// stays well under a UDP datagram with the SDP.
const SUMMARY_HEADER_MAX: usize = 512;
/// Longest encoded value of the other X-Frontline headers.
const SHORT_HEADER_MAX: usize = 128;
/// Call-IDs are opaque and must not be cut, but a hostile one must not blow up the INVITE.
const CALL_ID_HEADER_MAX: usize = 256;
/// RFC 7433 UUI payload, before hex encoding (ISDN interworking carries at most ~128-256 bytes).
const UUI_JSON_MAX: usize = 256;
/// Longest quote of the caller's last words in the extractive summary, in characters.
const QUOTE_MAX_CHARS: usize = 160;

impl HandoffPacket {
    /// Copies triage's decision into the packet: category, reason code, priority and evidence.
    pub fn set_escalation(&mut self, esc: &Escalation) {
        self.reason = esc.category.as_str().to_string();
        self.code = esc.code.clone();
        self.priority = esc.priority.as_str().to_string();
        self.evidence = esc.evidence.clone();
    }

    /// Writes a short, factual summary from the packet itself, for when the brain gave none
    /// (a summary already present is kept). In Mandarin when the call was, else in English; it
    /// states why the call was handed over, the intent, the collected slots, the sentiment trend
    /// and quotes the caller's own last words, so the agent can open with them.
    pub fn extractive_summary(&mut self) {
        if !self.summary.trim().is_empty() {
            return;
        }
        let zh = self.language == "zh";
        let category = Category::parse(&self.reason);
        let why = reason_phrase(category, zh);
        let code = if self.code.is_empty() { self.reason.as_str() } else { self.code.as_str() };
        let mut parts = Vec::new();
        parts.push(match (zh, self.priority.is_empty()) {
            (true, true) => format!("转人工原因：{why}（{code}）。"),
            (true, false) => format!("转人工原因：{why}（{code}，优先级 {}）。", self.priority),
            (false, true) => format!("Handed over because {why} ({code})."),
            (false, false) => format!("Handed over because {why} ({code}, priority {}).", self.priority),
        });
        // The caller's words come right after the reason: the Summary header is cut at 512
        // encoded bytes (about 55 Chinese characters) and they matter most to the agent.
        let caller_turns = self.transcript.iter().filter(|l| l.speaker == "caller").count();
        match self.transcript.iter().rev().find(|l| l.speaker == "caller" && !l.text.trim().is_empty()) {
            Some(last) => {
                let quote = truncate_chars(last.text.trim(), QUOTE_MAX_CHARS);
                parts.push(if zh {
                    format!("来电者（共 {caller_turns} 轮）最后说：“{quote}”。")
                } else {
                    format!("After {caller_turns} caller turn(s), the caller's last words: \"{quote}\".")
                });
            }
            None => parts.push(if zh { "来电者尚未说出可识别的话。".into() } else { "The caller has said nothing recognizable yet.".into() }),
        }
        if !self.intent.trim().is_empty() {
            parts.push(if zh { format!("意图：{}。", self.intent) } else { format!("Intent: {}.", self.intent) });
        }
        let slots: Vec<String> =
            self.slots.iter().filter(|(_, v)| !v.trim().is_empty()).map(|(k, v)| format!("{k}={v}")).collect();
        if !slots.is_empty() {
            parts.push(if zh { format!("已收集：{}。", slots.join("，")) } else { format!("Collected: {}.", slots.join(", ")) });
        }
        let trend = sentiment_trend(&self.sentiment_trend);
        if !trend.is_empty() {
            parts.push(if zh { format!("情绪：{trend}。") } else { format!("Sentiment: {trend}.") });
        }
        self.summary = parts.join(if zh { "" } else { " " });
    }

    /// Headers for the INVITE to the agent. Values are percent-encoded (RFC 3986 unreserved
    /// characters kept, every other UTF-8 byte as `%XX`), so Mandarin, quotes and line breaks
    /// survive any SIP stack; each is bounded, the summary to 512 encoded bytes. Intent,
    /// sentiment and summary are left out when empty. `User-to-User` (RFC 7433) carries a compact
    /// JSON `{call_id, reason, intent}` in hex for equipment that only forwards UUI.
    pub fn sip_headers(&self) -> Vec<(String, String)> {
        let code = if self.code.is_empty() { &self.reason } else { &self.code };
        let mut h = vec![
            ("X-Frontline-Call-Id".to_string(), encode_bounded(&self.call_id, CALL_ID_HEADER_MAX)),
            ("X-Frontline-Reason".to_string(), encode_bounded(code, SHORT_HEADER_MAX)),
        ];
        let sentiment = self.sentiment_trend.iter().rev().find(|s| !s.trim().is_empty()).map(String::as_str).unwrap_or("");
        for (name, value, max) in [
            ("X-Frontline-Customer-Id", self.customer_id.as_deref().unwrap_or(""), SHORT_HEADER_MAX),
            ("X-Frontline-Intent", self.intent.as_str(), SHORT_HEADER_MAX),
            ("X-Frontline-Sentiment", sentiment, SHORT_HEADER_MAX),
            ("X-Frontline-Summary", self.summary.as_str(), SUMMARY_HEADER_MAX),
        ] {
            if !value.trim().is_empty() {
                h.push((name.to_string(), encode_bounded(value.trim(), max)));
            }
        }
        h.push(("User-to-User".to_string(), format!("{};encoding=hex;purpose=call-context", hex(&self.uui_json()))));
        h
    }

    /// The packet with card and ID numbers masked wherever the caller's words reach it
    /// (transcript, summary, slots, evidence). Masking the serialized JSON instead would also
    /// hit numbers such as the 13-digit millisecond timestamp, and break the JSON.
    pub fn masked(&self, redaction: &crate::redact::RedactionConfig) -> HandoffPacket {
        let mask = |text: &str| crate::redact::redact(text, redaction).into_owned();
        let mut packet = self.clone();
        for line in &mut packet.transcript {
            line.text = mask(&line.text);
        }
        packet.summary = mask(&packet.summary);
        for value in packet.slots.values_mut() {
            *value = mask(value);
        }
        for evidence in &mut packet.evidence {
            evidence.text = mask(&evidence.text);
        }
        for past in &mut packet.history {
            past.summary = mask(&past.summary);
        }
        packet
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a packet of strings, numbers and maps always serializes")
    }

    /// The UUI payload, cut to [`UUI_JSON_MAX`] bytes by shortening the intent first, then the
    /// call id (the reason code is short and the most useful to routing equipment).
    fn uui_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Uui<'a> {
            call_id: &'a str,
            reason: &'a str,
            intent: &'a str,
        }
        let code = if self.code.is_empty() { &self.reason } else { &self.code };
        let (mut call_id, mut reason, mut intent) = (self.call_id.as_str(), code.as_str(), self.intent.as_str());
        loop {
            let json = serde_json::to_vec(&Uui { call_id, reason, intent }).expect("strings always serialize");
            if json.len() <= UUI_JSON_MAX {
                return json;
            }
            let over = json.len() - UUI_JSON_MAX;
            // Escapes can make a field longer in JSON than in UTF-8, hence the loop.
            let field = if !intent.is_empty() {
                &mut intent
            } else if !call_id.is_empty() {
                &mut call_id
            } else {
                &mut reason
            };
            let current: &str = field;
            *field = cut_bytes(current, current.len().saturating_sub(over));
        }
    }
}

fn reason_phrase(category: Option<Category>, zh: bool) -> &'static str {
    match (category, zh) {
        (Some(Category::Explicit), false) => "the caller asked for a person",
        (Some(Category::Explicit), true) => "来电者要求人工服务",
        (Some(Category::Emotion), false) => "the caller is upset",
        (Some(Category::Emotion), true) => "来电者情绪激动",
        (Some(Category::Ambiguity), false) => "the AI could not resolve the request",
        (Some(Category::Ambiguity), true) => "AI 未能理解或解决来电者的问题",
        (Some(Category::Risk), false) => "the request needs a person's judgement",
        (Some(Category::Risk), true) => "来电者的诉求需要人工判断",
        (Some(Category::Other), false) | (None, false) => "of a routing rule",
        (Some(Category::Other), true) | (None, true) => "路由规则",
    }
}

/// "neutral → annoyed → angry": consecutive repeats collapsed, empty entries skipped.
fn sentiment_trend(trend: &[String]) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in trend.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        if out.last() != Some(&s) {
            out.push(s);
        }
    }
    out.join(" → ")
}

/// At most `max` characters (not bytes: Mandarin must not be cut mid-character), with "…" when cut.
fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 percent-encoding: unreserved characters kept, every other byte of the UTF-8 as `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`percent_encode`] (also accepts lowercase hex); `None` for a broken `%`
/// escape or bytes that are not UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-encodes whole characters until `max` encoded bytes; a cut value ends with an encoded
/// "…" so the agent sees it was shortened.
fn encode_bounded(s: &str, max: usize) -> String {
    let full = percent_encode(s);
    if full.len() <= max {
        return full;
    }
    let ellipsis = percent_encode("…");
    let mut out = String::new();
    let mut buf = [0u8; 4];
    for c in s.chars() {
        let enc = percent_encode(c.encode_utf8(&mut buf));
        if out.len() + enc.len() + ellipsis.len() > max {
            break;
        }
        out.push_str(&enc);
    }
    out.push_str(&ellipsis);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::triage::Priority;

    fn packet(lang: &str) -> HandoffPacket {
        let zh = lang == "zh";
        let mut p = HandoffPacket {
            call_id: "a84b4c76e66710@pc33.example.com".into(),
            caller: "+8613800138000".into(),
            callee: "4001".into(),
            language: lang.into(),
            channel: "sip".into(),
            intent: "billing_dispute".into(),
            sentiment_trend: vec!["neutral".into(), "neutral".into(), "angry".into()],
            created_at_ms: 1_700_000_000_000,
            ..Default::default()
        };
        p.slots.insert("amount".into(), "20".into());
        let lines: [(&str, &str); 3] = if zh {
            [("caller", "为什么多扣了我二十块？"), ("bot", "我来帮您查一下账单。"), ("caller", "我根本没有订这个业务，必须退给我。")]
        } else {
            [("caller", "Why was I charged twenty more?"), ("bot", "Let me check your bill."), ("caller", "I never ordered this service, refund me now.")]
        };
        for (i, (speaker, text)) in lines.iter().enumerate() {
            p.transcript.push(TranscriptLine { turn: i as u32, speaker: speaker.to_string(), text: text.to_string() });
        }
        p.set_escalation(&Escalation {
            category: Category::Risk,
            code: "risk-unordered".into(),
            priority: Priority::High,
            turn: 2,
            evidence: vec![Evidence { turn: 2, trigger: "risk-unordered: 没有订".into(), text: "我根本没有订这个业务".into() }],
        });
        p
    }

    #[test]
    fn extractive_summary_states_the_reason_and_quotes_the_caller() {
        let mut p = packet("en");
        p.extractive_summary();
        let s = &p.summary;
        assert!(s.contains("risk-unordered") && s.contains("judgement"), "{s}");
        assert!(s.contains("\"I never ordered this service, refund me now.\""), "{s}");
        assert!(s.contains("billing_dispute") && s.contains("amount=20") && s.contains("neutral → angry"), "{s}");

        let mut p = packet("zh");
        p.extractive_summary();
        assert!(p.summary.contains("需要人工判断") && p.summary.contains("risk-unordered"), "{}", p.summary);
        assert!(p.summary.contains("“我根本没有订这个业务，必须退给我。”"), "{}", p.summary);

        let mut p = packet("en");
        p.summary = "Brain summary.".into();
        p.extractive_summary();
        assert_eq!(p.summary, "Brain summary.");
    }

    #[test]
    fn a_long_quote_is_cut_on_a_character_boundary() {
        let mut p = packet("zh");
        p.transcript.push(TranscriptLine { turn: 3, speaker: "caller".into(), text: "退".repeat(500) });
        p.extractive_summary();
        assert!(p.summary.contains(&format!("{}…", "退".repeat(QUOTE_MAX_CHARS))));
    }

    #[test]
    fn mandarin_summary_header_is_ascii_and_decodes_back() {
        let mut p = packet("zh");
        p.summary = "来电者称未订购增值业务却被扣费二十元，要求退款，情绪激动。".into();
        let headers = p.sip_headers();
        let summary = &headers.iter().find(|(k, _)| k == "X-Frontline-Summary").unwrap().1;
        assert!(summary.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b';' && b != b','), "{summary}");
        assert_eq!(percent_decode(summary).as_deref(), Some(p.summary.as_str()));
        let get = |k: &str| percent_decode(&headers.iter().find(|(n, _)| n == k).unwrap().1).unwrap();
        assert_eq!(get("X-Frontline-Reason"), "risk-unordered");
        assert_eq!(get("X-Frontline-Sentiment"), "angry");
        assert_eq!(get("X-Frontline-Intent"), "billing_dispute");
        assert_eq!(get("X-Frontline-Call-Id"), p.call_id);

        // The extractive Mandarin summary is longer than the header allows: the cut one is
        // still valid UTF-8, a prefix of the summary, and keeps the caller's words.
        p.summary.clear();
        p.extractive_summary();
        let cut = percent_decode(&p.sip_headers().iter().find(|(k, _)| k == "X-Frontline-Summary").unwrap().1).unwrap();
        assert!(p.summary.starts_with(cut.trim_end_matches('…')));
        assert!(cut.contains("我根本没有订这个业务"), "{cut}");
    }

    #[test]
    fn header_lengths_are_bounded_and_cut_values_still_decode() {
        let mut p = packet("zh");
        p.summary = "客户非常生气，\"要求\"退款; ".repeat(200);
        p.intent = "x".repeat(1000);
        p.call_id = "c".repeat(5000);
        for (name, value) in p.sip_headers() {
            let max = match name.as_str() {
                "X-Frontline-Summary" => SUMMARY_HEADER_MAX,
                "X-Frontline-Call-Id" => CALL_ID_HEADER_MAX,
                "User-to-User" => 2 * UUI_JSON_MAX + ";encoding=hex;purpose=call-context".len(),
                _ => SHORT_HEADER_MAX,
            };
            assert!(value.len() <= max, "{name}: {} > {max}", value.len());
            if matches!(name.as_str(), "X-Frontline-Summary" | "X-Frontline-Intent" | "X-Frontline-Call-Id") {
                let decoded = percent_decode(&value).expect("valid UTF-8 after a cut");
                assert!(decoded.ends_with('…'), "{name}: {decoded}");
            }
        }
    }

    #[test]
    fn uui_is_hex_of_compact_json() {
        for p in [packet("zh"), HandoffPacket { intent: "意图".repeat(300), ..packet("zh") }] {
            let headers = p.sip_headers();
            let uui = &headers.iter().find(|(k, _)| k == "User-to-User").unwrap().1;
            let (hex_part, params) = uui.split_once(';').unwrap();
            assert_eq!(params, "encoding=hex;purpose=call-context");
            assert!(hex_part.len() % 2 == 0 && hex_part.bytes().all(|b| b.is_ascii_hexdigit()));
            let bytes: Vec<u8> =
                (0..hex_part.len()).step_by(2).map(|i| u8::from_str_radix(&hex_part[i..i + 2], 16).unwrap()).collect();
            assert!(bytes.len() <= UUI_JSON_MAX);
            let v: serde_json::Value = serde_json::from_slice(&bytes).expect("UUI is JSON");
            assert_eq!(v["call_id"], p.call_id.as_str());
            assert_eq!(v["reason"], "risk-unordered");
            assert!(p.intent.starts_with(v["intent"].as_str().unwrap()));
        }
    }

    #[test]
    fn json_carries_the_context_and_evidence() {
        let p = packet("en");
        let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(v["reason"], "risk");
        assert_eq!(v["priority"], "high");
        assert_eq!(v["slots"]["amount"], "20");
        assert_eq!(v["transcript"][2]["speaker"], "caller");
        assert_eq!(v["evidence"][0]["turn"], 2);
        assert_eq!(v["evidence"][0]["trigger"], "risk-unordered: 没有订");
    }

    #[test]
    fn percent_codec_round_trips_and_rejects_garbage() {
        let s = "Hi: 你好 100% a+b=c\r\n";
        let e = percent_encode(s);
        assert!(e.is_ascii() && !e.contains(' '));
        assert_eq!(percent_decode(&e).as_deref(), Some(s));
        assert_eq!(percent_encode("A-z_0.9~"), "A-z_0.9~");
        assert_eq!(percent_decode("%E4%BD"), None);
        assert_eq!(percent_decode("%G0"), None);
        assert_eq!(percent_decode("abc%4"), None);
    }
}
