//! `frontline report`: how the AI front line did over a range of days, from the records alone,
//! as tables (Markdown) and plots (SVG). Containment, handoffs by reason, satisfaction by
//! outcome and by intent, recognition confidence, and the turns where the AI failed.
//!
//! Sans-IO: [`Report::build`] takes rows read by `schema::report_data` and gives figures.

use super::Outcome;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One call in the range.
#[derive(Debug, Clone, Default)]
pub struct ReportCall {
    pub call_id: String,
    pub started_ms: u64,
    pub outcome: Option<Outcome>,
    pub intents: Vec<String>,
    /// The survey score, 1 to 5.
    pub survey: Option<u8>,
    /// The code of the triage decision that handed the call over (the first one).
    pub handoff_reason: Option<String>,
}

/// One caller turn of those calls.
#[derive(Debug, Clone, Default)]
pub struct ReportTurn {
    pub call_id: String,
    pub number: u32,
    pub heard: String,
    pub reply: String,
    pub language: String,
    pub confidence: f32,
}

/// One triage decision of those calls.
#[derive(Debug, Clone, Default)]
pub struct ReportDecision {
    pub call_id: String,
    pub turn: u32,
    pub code: String,
}

#[derive(Debug, Clone, Default)]
pub struct ReportData {
    pub calls: Vec<ReportCall>,
    pub turns: Vec<ReportTurn>,
    pub decisions: Vec<ReportDecision>,
}

/// What counts as the AI failing a turn.
#[derive(Debug, Clone)]
pub struct FailureRules {
    /// Turns recognized with a lower mean token probability than this.
    pub low_confidence: f32,
    /// The replies that mean "I did not understand" (the playbook's fallback lines, the
    /// gateway's "didn't catch that"), in every language.
    pub fallback_replies: Vec<String>,
}

/// Why a turn counts as failed, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    /// The reply was a fallback: the AI did not understand.
    Fallback,
    /// Triage saw the caller come back to the same thing again (a loop or a repeat).
    RepeatedIntent,
    /// The recognizer was unsure of the words.
    LowConfidence,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Fallback => "fallback",
            FailureKind::RepeatedIntent => "repeated intent",
            FailureKind::LowConfidence => "low confidence",
        }
    }
}

/// Triage codes that mean the caller came back to the same thing.
const REPEAT_CODES: [&str; 2] = ["ambiguity-intent-loop", "ambiguity-repeat"];
/// The latest failed turns listed by name.
const FAILED_TURNS_LISTED: usize = 15;

/// A failed turn, for the list.
#[derive(Debug, Clone)]
pub struct FailedTurn {
    pub call_id: String,
    pub turn: u32,
    pub kind: FailureKind,
    pub heard: String,
    pub language: String,
}

/// Average of a set of survey scores.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Satisfaction {
    pub answers: usize,
    pub sum: u32,
}

impl Satisfaction {
    fn add(&mut self, score: u8) {
        self.answers += 1;
        self.sum += u32::from(score);
    }

    pub fn average(&self) -> Option<f64> {
        (self.answers > 0).then(|| f64::from(self.sum) / self.answers as f64)
    }
}

#[derive(Debug, Clone, Default)]
pub struct DayFigures {
    pub calls: usize,
    pub contained: usize,
    pub escalated: usize,
    pub handled: usize,
    pub satisfaction: Satisfaction,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub calls: usize,
    pub by_outcome: BTreeMap<&'static str, usize>,
    /// Calls the AI took part in: all but the abandoned (and those still in progress).
    pub handled: usize,
    pub handoff_reasons: BTreeMap<String, usize>,
    pub satisfaction: Satisfaction,
    pub satisfaction_by_outcome: BTreeMap<&'static str, Satisfaction>,
    pub satisfaction_by_intent: BTreeMap<String, Satisfaction>,
    /// Confidence of caller turns per language, sorted.
    pub confidence: BTreeMap<String, Vec<f32>>,
    pub low_confidence: f32,
    pub turns: usize,
    pub failures: BTreeMap<FailureKind, usize>,
    /// Newest last.
    pub failed_turns: Vec<FailedTurn>,
    /// Keyed by day (days since 1970-01-01, UTC).
    pub days: BTreeMap<i64, DayFigures>,
}

impl Report {
    pub fn build(data: &ReportData, rules: &FailureRules) -> Report {
        let mut r = Report { calls: data.calls.len(), low_confidence: rules.low_confidence, ..Report::default() };
        for call in &data.calls {
            let outcome = call.outcome.map_or("in progress", Outcome::as_str);
            *r.by_outcome.entry(outcome).or_default() += 1;
            let handled = !matches!(call.outcome, None | Some(Outcome::Abandoned));
            let day = r.days.entry((call.started_ms / 86_400_000) as i64).or_default();
            day.calls += 1;
            day.handled += usize::from(handled);
            day.contained += usize::from(call.outcome == Some(Outcome::Contained));
            day.escalated += usize::from(call.outcome == Some(Outcome::Escalated));
            if handled {
                r.handled += 1;
            }
            if call.outcome == Some(Outcome::Escalated) {
                let reason = call.handoff_reason.clone().unwrap_or_else(|| "(no triage decision)".into());
                *r.handoff_reasons.entry(reason).or_default() += 1;
            }
            if let Some(score) = call.survey {
                r.satisfaction.add(score);
                day.satisfaction.add(score);
                r.satisfaction_by_outcome.entry(outcome).or_default().add(score);
                let intents: Vec<&str> = if call.intents.is_empty() { vec!["(none)"] } else { call.intents.iter().map(String::as_str).collect() };
                for intent in intents {
                    r.satisfaction_by_intent.entry(intent.to_string()).or_default().add(score);
                }
            }
        }
        let repeats: std::collections::HashSet<(&str, u32)> =
            data.decisions.iter().filter(|d| REPEAT_CODES.contains(&d.code.as_str())).map(|d| (d.call_id.as_str(), d.turn)).collect();
        let is_fallback = |reply: &str| {
            let reply = reply.trim();
            !reply.is_empty() && rules.fallback_replies.iter().any(|f| !f.trim().is_empty() && reply.starts_with(f.trim()))
        };
        for turn in data.turns.iter().filter(|t| !t.heard.trim().is_empty() && !t.heard.starts_with("DTMF ")) {
            r.turns += 1;
            r.confidence.entry(if turn.language.is_empty() { "?".into() } else { turn.language.clone() }).or_default().push(turn.confidence);
            let kind = if is_fallback(&turn.reply) {
                Some(FailureKind::Fallback)
            } else if repeats.contains(&(turn.call_id.as_str(), turn.number)) {
                Some(FailureKind::RepeatedIntent)
            } else if turn.confidence < rules.low_confidence {
                Some(FailureKind::LowConfidence)
            } else {
                None
            };
            if let Some(kind) = kind {
                *r.failures.entry(kind).or_default() += 1;
                r.failed_turns.push(FailedTurn {
                    call_id: turn.call_id.clone(),
                    turn: turn.number,
                    kind,
                    heard: turn.heard.clone(),
                    language: turn.language.clone(),
                });
            }
        }
        for values in r.confidence.values_mut() {
            values.sort_by(f32::total_cmp);
        }
        r
    }

    /// Contained calls among those the AI handled.
    pub fn containment(&self) -> Option<f64> {
        (self.handled > 0).then(|| *self.by_outcome.get("contained").unwrap_or(&0) as f64 / self.handled as f64)
    }

    /// The report as Markdown. `title` names the range.
    pub fn markdown(&self, title: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# {title}\n");
        let pct = |n: usize, of: usize| if of == 0 { "-".to_string() } else { format!("{:.1} %", 100.0 * n as f64 / of as f64) };
        let avg = |s: &Satisfaction| s.average().map_or("-".to_string(), |a| format!("{a:.2}"));

        let _ = writeln!(out, "## Calls\n");
        let _ = writeln!(
            out,
            "{} calls; the AI handled {} (all but those abandoned before a word and those still in progress). \
             **Containment: {}** (contained / handled).\n",
            self.calls,
            self.handled,
            self.containment().map_or("-".into(), |c| format!("{:.1} %", 100.0 * c))
        );
        let _ = writeln!(out, "| outcome | calls | share |\n|---|---|---|");
        for (outcome, n) in &self.by_outcome {
            let _ = writeln!(out, "| {outcome} | {n} | {} |", pct(*n, self.calls));
        }

        let _ = writeln!(out, "\n## Handoffs by reason\n");
        if self.handoff_reasons.is_empty() {
            let _ = writeln!(out, "No call was handed to a person.");
        } else {
            let _ = writeln!(out, "| reason | calls | share of handled calls |\n|---|---|---|");
            for (reason, n) in sorted_by_count(&self.handoff_reasons) {
                let _ = writeln!(out, "| {reason} | {n} | {} |", pct(n, self.handled));
            }
        }

        let _ = writeln!(out, "\n## Satisfaction (survey, 1 to 5)\n");
        let _ = writeln!(
            out,
            "{} answers from {} handled calls ({}); average **{}**.\n",
            self.satisfaction.answers,
            self.handled,
            pct(self.satisfaction.answers, self.handled),
            avg(&self.satisfaction)
        );
        if self.satisfaction.answers > 0 {
            let _ = writeln!(out, "| by outcome | answers | average |\n|---|---|---|");
            for (outcome, s) in &self.satisfaction_by_outcome {
                let _ = writeln!(out, "| {outcome} | {} | {} |", s.answers, avg(s));
            }
            let _ = writeln!(out, "\n| by intent | answers | average |\n|---|---|---|");
            for (intent, s) in &self.satisfaction_by_intent {
                let _ = writeln!(out, "| {intent} | {} | {} |", s.answers, avg(s));
            }
        }

        let _ = writeln!(out, "\n## Recognition confidence\n");
        let _ = writeln!(out, "Whisper's mean token probability of each caller turn (keypad turns left out).\n");
        let _ = writeln!(out, "| language | turns | p10 | p50 | below {:.2} |\n|---|---|---|---|---|", self.low_confidence);
        for (language, values) in &self.confidence {
            let below = values.iter().filter(|c| **c < self.low_confidence).count();
            let _ = writeln!(out, "| {language} | {} | {:.2} | {:.2} | {} |", values.len(), quantile(values, 0.1), quantile(values, 0.5), pct(below, values.len()));
        }

        let _ = writeln!(out, "\n## Turns the AI failed\n");
        let _ = writeln!(out, "| kind | turns | share of caller turns |\n|---|---|---|");
        for kind in [FailureKind::Fallback, FailureKind::RepeatedIntent, FailureKind::LowConfidence] {
            let n = self.failures.get(&kind).copied().unwrap_or(0);
            let _ = writeln!(out, "| {} | {n} | {} |", kind.as_str(), pct(n, self.turns));
        }
        if !self.failed_turns.is_empty() {
            let _ = writeln!(out, "\nThe latest (`frontline calls show CALL` has the whole call):\n");
            let _ = writeln!(out, "| call | turn | kind | the caller said |\n|---|---|---|---|");
            let skip = self.failed_turns.len().saturating_sub(FAILED_TURNS_LISTED);
            for f in &self.failed_turns[skip..] {
                let _ = writeln!(out, "| {} | {} | {} | {} |", f.call_id, f.turn, f.kind.as_str(), f.heard.replace('|', "/"));
            }
        }

        let _ = writeln!(out, "\n## By day (UTC)\n");
        let _ = writeln!(out, "| day | calls | contained | escalated | containment | satisfaction |\n|---|---|---|---|---|---|");
        for (day, d) in &self.days {
            let _ = writeln!(out, "| {} | {} | {} | {} | {} | {} |", date(*day), d.calls, d.contained, d.escalated, pct(d.contained, d.handled), avg(&d.satisfaction));
        }
        out
    }

    /// The plots, as (file name, SVG).
    pub fn plots(&self) -> Result<Vec<(&'static str, String)>, String> {
        use crate::bench::plot::{bars_svg, Bars};
        let days: Vec<String> = self.days.keys().map(|d| date(*d)).collect();
        let column = |f: fn(&DayFigures) -> usize| self.days.values().map(|d| f(d) as f64).collect::<Vec<f64>>();
        let outcomes = bars_svg(&Bars {
            title: "Calls per day by outcome",
            y_label: "calls",
            categories: days,
            series: vec![
                ("contained".into(), column(|d| d.contained)),
                ("escalated".into(), column(|d| d.escalated)),
                ("other".into(), column(|d| d.calls - d.contained - d.escalated)),
            ],
            targets: Vec::new(),
        })?;
        let reasons: Vec<(String, usize)> = sorted_by_count(&self.handoff_reasons);
        let handoffs = bars_svg(&Bars {
            title: "Handoffs by reason",
            y_label: "calls",
            categories: reasons.iter().map(|(r, _)| r.clone()).collect(),
            series: vec![("calls".into(), reasons.iter().map(|(_, n)| *n as f64).collect())],
            targets: Vec::new(),
        })?;
        let satisfaction = bars_svg(&Bars {
            title: "Average satisfaction by intent (1 to 5)",
            y_label: "score",
            categories: self.satisfaction_by_intent.keys().cloned().collect(),
            series: vec![("average".into(), self.satisfaction_by_intent.values().map(|s| s.average().unwrap_or(0.0)).collect())],
            targets: self.satisfaction.average().map(|a| ("all calls".to_string(), a)).into_iter().collect(),
        })?;
        Ok(vec![("outcomes_by_day.svg", outcomes), ("handoff_reasons.svg", handoffs), ("satisfaction_by_intent.svg", satisfaction)])
    }
}

/// The report's Markdown as HTML, for the console's report page. The tables hold what callers
/// said: any HTML in the text is shown as text, never passed through.
pub fn html_of_markdown(markdown: &str) -> String {
    use pulldown_cmark::{Event, Options, Parser};
    let events = Parser::new_ext(markdown, Options::ENABLE_TABLES).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

fn sorted_by_count(counts: &BTreeMap<String, usize>) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = counts.iter().map(|(k, n)| (k.clone(), *n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Nearest-rank quantile of sorted values.
fn quantile(sorted: &[f32], q: f64) -> f32 {
    crate::stats::percentile(sorted, q).unwrap_or(f32::NAN)
}

/// "YYYY-MM-DD" of a day count since 1970-01-01.
pub fn date(day: i64) -> String {
    let (y, m, d) = super::text::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of "YYYY-MM-DD", or why not.
pub fn parse_date(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not a date: write YYYY-MM-DD");
    let mut parts = s.trim().splitn(3, '-');
    let mut next = || parts.next().and_then(|p| p.parse::<i64>().ok()).ok_or_else(bad);
    let (y, m, d) = (next()?, next()?, next()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil, the inverse of `civil_from_days`.
    let yy = if m <= 2 { y - 1 } else { y };
    let (era, yoe) = (yy.div_euclid(400), yy.rem_euclid(400));
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    if super::text::civil_from_days(days) != (y, m as u32, d as u32) {
        return Err(bad()); // 2026-02-30
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str, day: i64, outcome: Outcome, intents: &[&str], survey: Option<u8>, reason: Option<&str>) -> ReportCall {
        ReportCall {
            call_id: id.into(),
            started_ms: day as u64 * 86_400_000 + 3_600_000,
            outcome: Some(outcome),
            intents: intents.iter().map(|s| s.to_string()).collect(),
            survey,
            handoff_reason: reason.map(str::to_string),
        }
    }

    fn turn(call: &str, number: u32, heard: &str, reply: &str, confidence: f32) -> ReportTurn {
        ReportTurn { call_id: call.into(), number, heard: heard.into(), reply: reply.into(), language: "en".into(), confidence }
    }

    #[test]
    fn containment_handoffs_satisfaction_and_failed_turns_add_up() {
        let day = parse_date("2026-12-07").unwrap();
        let data = ReportData {
            calls: vec![
                call("a", day, Outcome::Contained, &["balance"], Some(5), None),
                call("b", day, Outcome::Contained, &["balance", "roaming"], Some(4), None),
                call("c", day, Outcome::Escalated, &["bill"], Some(2), Some("risk-dispute")),
                call("d", day + 1, Outcome::Escalated, &[], None, Some("ambiguity-intent-loop")),
                call("e", day + 1, Outcome::Abandoned, &[], None, None),
            ],
            turns: vec![
                turn("a", 1, "what's my balance", "Your balance is 5 dollars.", 0.9),
                turn("c", 1, "I was charged twice", "Sorry, I didn't understand. Could you say that another way?", 0.8),
                turn("d", 1, "the thing with the", "Your plan is Silver.", 0.3),
                turn("d", 2, "no the thing", "Your plan is Silver.", 0.8),
                turn("d", 3, "DTMF 0", "", 1.0),
            ],
            decisions: vec![ReportDecision { call_id: "d".into(), turn: 2, code: "ambiguity-intent-loop".into() }],
        };
        let rules = FailureRules { low_confidence: 0.5, fallback_replies: vec!["Sorry, I didn't understand.".into()] };
        let r = Report::build(&data, &rules);
        assert_eq!((r.calls, r.handled), (5, 4), "the abandoned call was never handled");
        assert_eq!(r.containment(), Some(0.5));
        assert_eq!(r.handoff_reasons.get("risk-dispute"), Some(&1));
        assert_eq!(r.satisfaction.average(), Some(11.0 / 3.0));
        assert_eq!(r.satisfaction_by_intent["balance"].average(), Some(4.5));
        assert_eq!(r.satisfaction_by_outcome["escalated"].average(), Some(2.0));
        assert_eq!(r.turns, 4, "keypad turns are not recognition");
        let kinds: Vec<(&str, u32, FailureKind)> = r.failed_turns.iter().map(|f| (f.call_id.as_str(), f.turn, f.kind)).collect();
        assert_eq!(kinds, [("c", 1, FailureKind::Fallback), ("d", 1, FailureKind::LowConfidence), ("d", 2, FailureKind::RepeatedIntent)]);
        assert_eq!(r.days.len(), 2);

        let md = r.markdown("Calls from 2026-12-07 to 2026-12-08");
        assert!(md.contains("**Containment: 50.0 %**"), "{md}");
        assert!(md.contains("| risk-dispute | 1 | 25.0 % |"), "{md}");
        assert!(md.contains("| balance | 2 | 4.50 |"), "{md}");
        assert!(md.contains("| fallback | 1 | 25.0 % |"), "{md}");
        assert!(md.contains("| c | 1 | fallback | I was charged twice |"), "{md}");
        assert!(md.contains("| 2026-12-07 | 3 | 2 | 1 | 66.7 % | 3.67 |"), "{md}");
        let plots = r.plots().unwrap();
        assert_eq!(plots.len(), 3);
        for (name, svg) in plots {
            assert!(svg.starts_with("<svg") && svg.contains("</svg>"), "{name}");
        }
    }

    #[test]
    fn an_empty_range_reports_nothing_without_dividing_by_zero() {
        let r = Report::build(&ReportData::default(), &FailureRules { low_confidence: 0.5, fallback_replies: Vec::new() });
        assert_eq!(r.containment(), None);
        let md = r.markdown("nothing");
        assert!(md.contains("0 calls") && md.contains("No call was handed"), "{md}");
        assert!(r.plots().is_ok());
    }

    #[test]
    fn the_html_has_the_tables_and_shows_a_callers_markup_as_text() {
        let data = ReportData {
            calls: vec![call("c1", 20_000, Outcome::Contained, &["bill"], None, None)],
            turns: vec![turn("c1", 1, "<script>alert(1)</script> <b>my bill</b>", "Sorry, I didn't catch that.", 0.9)],
            decisions: vec![],
        };
        let rules = FailureRules { low_confidence: 0.5, fallback_replies: vec!["Sorry, I didn't catch that.".into()] };
        let html = html_of_markdown(&Report::build(&data, &rules).markdown("Calls"));
        assert!(html.contains("<h1>Calls</h1>") && html.contains("<strong>Containment: 100.0 %</strong>"), "{html}");
        assert!(html.contains("<table>") && html.contains("<td>fallback</td>"), "{html}");
        assert!(!html.contains("<script>") && !html.contains("<b>"), "markup from a caller passed through: {html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
    }

    #[test]
    fn dates_parse_and_print_back() {
        assert_eq!(parse_date("1970-01-01"), Ok(0));
        assert_eq!(date(parse_date("2026-12-07").unwrap()), "2026-12-07");
        assert_eq!(date(parse_date("2024-02-29").unwrap()), "2024-02-29");
        for bad in ["2026-02-30", "2026-13-01", "yesterday", "2026-12"] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
