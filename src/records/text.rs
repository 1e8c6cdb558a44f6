//! `frontline calls list` and `frontline calls show` as text a person reads.

use super::{CallRecord, CallSummary, Cdr};
use std::fmt::Write;

fn time(ms: Option<u64>) -> String {
    let Some(ms) = ms else { return "-".into() };
    let secs = ms / 1000;
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, d) = civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn duration(cdr: &Cdr) -> String {
    match cdr.ended_at_ms {
        Some(end) => format!("{:.1}s", end.saturating_sub(cdr.started_at_ms) as f64 / 1000.0),
        None => "-".into(),
    }
}

fn outcome(cdr: &Cdr) -> &'static str {
    cdr.outcome.map(|o| o.as_str()).unwrap_or("in-progress")
}

pub fn render_list(calls: &[CallSummary]) -> String {
    let mut out = format!("{:<38} {:<21} {:<12} {:>7} {:>5} {:<20} {}\n", "CALL", "STARTED", "OUTCOME", "LENGTH", "TURNS", "CALLER", "REASON");
    for c in calls {
        let reason = match &c.escalation {
            Some(code) => format!("{} (escalation: {code})", c.cdr.reason),
            None => c.cdr.reason.clone(),
        };
        let _ = writeln!(
            out,
            "{:<38} {:<21} {:<12} {:>7} {:>5} {:<20} {}",
            c.cdr.call_id,
            time(Some(c.cdr.started_at_ms)),
            outcome(&c.cdr),
            duration(&c.cdr),
            c.turns,
            c.cdr.caller,
            reason
        );
    }
    out
}

pub fn render_record(r: &CallRecord) -> String {
    let c = &r.cdr;
    let mut out = String::new();
    let _ = writeln!(out, "call      {}  (SIP Call-ID {})", c.call_id, c.sip_call_id);
    let _ = writeln!(out, "from      {}  to {}  over {} ({})", c.caller, c.callee, c.channel, c.codec);
    let _ = writeln!(out, "started   {}  answered {}  ended {}  ({})", time(Some(c.started_at_ms)), time(c.answered_at_ms), time(c.ended_at_ms), duration(c));
    let _ = writeln!(out, "outcome   {}: {}", outcome(c), c.reason);
    if !c.node.is_empty() {
        let _ = writeln!(out, "node      {}", c.node);
    }
    if let Some(path) = &c.recording {
        let _ = writeln!(out, "recording {path}");
    }
    if !r.cdr.customer_id.is_empty() {
        let _ = writeln!(out, "customer  {}", r.cdr.customer_id);
    }
    if let Some(rating) = r.survey {
        let _ = writeln!(out, "survey    {}/5 ({})", rating.score, rating.by.as_str());
    }
    if !r.intents.is_empty() {
        let _ = writeln!(out, "about     {}", r.intents.join(", "));
    }
    if !r.timeline.is_empty() {
        let states: Vec<String> =
            r.timeline.iter().map(|s| format!("{} +{:.1}s", s.state, s.at_ms.saturating_sub(c.started_at_ms) as f64 / 1000.0)).collect();
        let _ = writeln!(out, "timeline  {}", states.join(" → "));
    }
    let _ = writeln!(out, "\nturns ({})", r.turns.len());
    for t in &r.turns {
        let ms = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "-".into());
        // Turn 0 is the greeting: nobody spoke before it.
        if t.heard.is_empty() {
            let _ = writeln!(out, "  #{} bot: {}", t.number, t.reply);
        } else {
            let _ = writeln!(out, "  #{} [{} {:.2}] caller: {}\n      bot: {}", t.number, t.language, t.confidence, t.heard, t.reply);
        }
        let _ = writeln!(
            out,
            "      latency ms: transcript {} brain {} tts {} first-rtp {}",
            ms(t.transcript_ms), ms(t.brain_ms), ms(t.tts_ms), ms(t.first_rtp_ms)
        );
    }
    if !r.decisions.is_empty() {
        let _ = writeln!(out, "\ntriage decisions");
        for d in &r.decisions {
            let _ = writeln!(out, "  turn {}: escalate ({} / {}, priority {}) evidence {}", d.turn, d.category, d.code, d.priority, d.evidence);
        }
    }
    if let Some(packet) = &r.handoff_packet {
        let _ = writeln!(out, "\nhandoff packet\n{}", serde_json::to_string_pretty(packet).unwrap_or_default());
    }
    if let Some(media) = &r.media {
        let _ = writeln!(out, "\nmedia     {media}");
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates_are_gregorian() {
        assert_eq!(super::time(Some(0)), "1970-01-01 00:00:00Z");
        assert_eq!(super::time(Some(1_795_000_000_000)), "2026-11-18 11:06:40Z");
    }
}
