//! Scoring triage against labelled dialogs.
//!
//! A dialog expected to escalate at turn E counts as right when triage escalated at E or E+1
//! (the caller may need one more sentence to make themselves clear); earlier is premature and
//! counts as a false positive, later or never is a miss. Precision is right / escalated,
//! recall is right / expected, per language and per reason (a dialog counts for a reason's
//! precision when triage gave that reason, for its recall when the label names it; right needs
//! the reason too). Turn accuracy is the share of expected escalations triage made at all that
//! came at the expected turn or the next. The confusion table crosses the labelled reason
//! (or none) with what triage did.

use super::{Dialog, Outcome};
use crate::triage::Category;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Counts for one language.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LangScore {
    pub dialogs: u32,
    /// Dialogs labelled to escalate.
    pub expected: u32,
    /// Dialogs triage escalated.
    pub escalated: u32,
    /// Escalated at the expected turn or the next.
    pub correct: u32,
    /// ... of which with the expected reason.
    pub reason_right: u32,
    /// Escalated before the expected turn.
    pub premature: u32,
    /// Escalated more than one turn after the expected one.
    pub late: u32,
    /// Expected, never escalated.
    pub missed: u32,
    /// Escalated a dialog that should have stayed with the AI.
    pub false_alarm: u32,
    /// Per expected reason: (expected, caught at the right turn, caught with the right reason).
    pub by_reason: BTreeMap<&'static str, (u32, u32, u32)>,
    /// Expected escalations that triage made at any turn.
    pub escalated_expected: u32,
    /// Per reason triage gave: escalations with it.
    pub given: BTreeMap<&'static str, u32>,
    /// Per reason: escalations with it, at the right turn, that the label expected with it.
    pub given_right: BTreeMap<&'static str, u32>,
    /// (labelled reason or "none", outcome: a reason, "none", or "wrong-turn") -> dialogs.
    pub confusion: BTreeMap<(&'static str, &'static str), u32>,
}

impl LangScore {
    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.escalated)
    }
    pub fn recall(&self) -> f64 {
        ratio(self.correct, self.expected)
    }
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

impl LangScore {
    /// Share of expected escalations triage made that came at the expected turn or the next.
    pub fn turn_accuracy(&self) -> f64 {
        ratio(self.correct, self.escalated_expected)
    }

    /// (precision, recall, F1) for one reason.
    pub fn reason_prf(&self, reason: Category) -> (f64, f64, f64) {
        let r = reason.as_str();
        let right = self.given_right.get(r).copied().unwrap_or(0);
        let p = ratio(right, self.given.get(r).copied().unwrap_or(0));
        let rec = ratio(right, self.by_reason.get(r).map_or(0, |e| e.0));
        (p, rec, if p + rec == 0.0 { 0.0 } else { 2.0 * p * rec / (p + rec) })
    }
}

/// Column and row labels of the confusion table.
const CONFUSION_LABELS: [&str; 7] = ["none", "explicit", "emotion", "ambiguity", "risk", "other", "wrong-turn"];

fn ratio(a: u32, b: u32) -> f64 {
    // Nothing to find and nothing claimed is a perfect score, not a division by zero.
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

#[derive(Debug, Clone, Default)]
pub struct EvalReport {
    /// Per language, plus "all".
    pub langs: BTreeMap<String, LangScore>,
    /// One line per dialog scored wrong, for tuning.
    pub wrong: Vec<String>,
}

impl EvalReport {
    pub fn get(&self, lang: &str) -> Option<&LangScore> {
        self.langs.get(lang)
    }

    /// The printed table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<5} {:>7} {:>8} {:>9} {:>7} {:>9} {:>5} {:>6} {:>11} {:>9} {:>6} {:>6} {:>9}",
            "lang", "dialogs", "expected", "escalated", "correct", "premature", "late", "missed", "false-alarm",
            "precision", "recall", "F1", "reason-ok"
        );
        for (lang, l) in &self.langs {
            let _ = writeln!(
                s,
                "{:<5} {:>7} {:>8} {:>9} {:>7} {:>9} {:>5} {:>6} {:>11} {:>9.3} {:>6.3} {:>6.3} {:>6}/{:<2}",
                lang, l.dialogs, l.expected, l.escalated, l.correct, l.premature, l.late, l.missed, l.false_alarm,
                l.precision(), l.recall(), l.f1(), l.reason_right, l.correct
            );
        }
        let _ = writeln!(s, "\nper reason (expected / caught at the right turn / with the right reason):");
        for (lang, l) in &self.langs {
            let cells: Vec<String> = Category::ALL
                .iter()
                .map(|c| {
                    let (e, c2, r) = l.by_reason.get(c.as_str()).copied().unwrap_or_default();
                    format!("{}={e}/{c2}/{r}", c.as_str())
                })
                .collect();
            let _ = writeln!(s, "{:<5} {}", lang, cells.join("  "));
        }
        let _ = writeln!(s, "\nper reason: precision / recall / F1 (right turn and right reason); turn accuracy:");
        for (lang, l) in &self.langs {
            let cells: Vec<String> = Category::ALL
                .iter()
                .filter(|c| l.by_reason.contains_key(c.as_str()) || l.given.contains_key(c.as_str()))
                .map(|c| {
                    let (p, r, f) = l.reason_prf(*c);
                    format!("{} {p:.2}/{r:.2}/{f:.2}", c.as_str())
                })
                .collect();
            let _ = writeln!(s, "{:<5} {}  | turn accuracy {:.3} ({}/{})", lang, cells.join("  "), l.turn_accuracy(), l.correct, l.escalated_expected);
        }
        s
    }

    /// The confusion table: per language, labelled reason (rows) by outcome (columns).
    pub fn confusion_table(&self) -> String {
        let mut s = String::new();
        for (lang, l) in &self.langs {
            let _ = writeln!(s, "[{lang}] expected \\ got");
            let _ = write!(s, "{:<10}", "");
            for c in CONFUSION_LABELS {
                let _ = write!(s, " {c:>10}");
            }
            let _ = writeln!(s);
            for row in &CONFUSION_LABELS[..6] {
                let _ = write!(s, "{row:<10}");
                for col in CONFUSION_LABELS {
                    let _ = write!(s, " {:>10}", l.confusion.get(&(*row, col)).copied().unwrap_or(0));
                }
                let _ = writeln!(s);
            }
            let _ = writeln!(s);
        }
        s
    }
}

fn label(reason: Option<&str>) -> &'static str {
    reason.and_then(Category::parse).map_or("none", Category::as_str)
}

/// Scores outcomes against their dialogs' expectations.
pub fn score(pairs: &[(Dialog, Outcome)]) -> EvalReport {
    let mut r = EvalReport::default();
    for (d, o) in pairs {
        let Some(exp) = &d.expect else { continue };
        for key in [o.lang.as_str(), "all"] {
            let l = r.langs.entry(key.to_string()).or_default();
            l.dialogs += 1;
            if o.escalated_at.is_some() {
                l.escalated += 1;
            }
            let reason_ok = exp.reason.is_none() || exp.reason == o.reason;
            let on_time = matches!((exp.escalate_at, o.escalated_at), (Some(e), Some(p)) if p == e || p == e + 1);
            let expected_label = if exp.escalate_at.is_some() { label(exp.reason.as_deref()) } else { "none" };
            let got_label = match (exp.escalate_at, o.escalated_at) {
                (_, None) => "none",
                (Some(_), Some(_)) if !on_time => "wrong-turn",
                _ => label(o.reason.as_deref()),
            };
            *l.confusion.entry((expected_label, got_label)).or_default() += 1;
            if o.escalated_at.is_some() {
                let given = label(o.reason.as_deref());
                *l.given.entry(given).or_default() += 1;
                if on_time && given == expected_label {
                    *l.given_right.entry(given).or_default() += 1;
                }
                if exp.escalate_at.is_some() {
                    l.escalated_expected += 1;
                }
            }
            match (exp.escalate_at, o.escalated_at) {
                (None, None) => {}
                (None, Some(_)) => l.false_alarm += 1,
                (Some(_), None) => l.missed += 1,
                (Some(e), Some(p)) if p < e => l.premature += 1,
                (Some(e), Some(p)) if p > e + 1 => l.late += 1,
                (Some(_), Some(_)) => {
                    l.correct += 1;
                    if reason_ok {
                        l.reason_right += 1;
                    }
                }
            }
            if let Some(e) = exp.escalate_at {
                l.expected += 1;
                let reason = exp.reason.as_deref().and_then(Category::parse).map_or("unlabelled", Category::as_str);
                let entry = l.by_reason.entry(reason).or_default();
                entry.0 += 1;
                if o.escalated_at.is_some_and(|p| p == e || p == e + 1) {
                    entry.1 += 1;
                    if reason_ok {
                        entry.2 += 1;
                    }
                }
            }
        }
        let timing_ok = match (exp.escalate_at, o.escalated_at) {
            (None, None) => true,
            (Some(e), Some(p)) => p == e || p == e + 1,
            _ => false,
        };
        let reason_ok = exp.escalate_at.is_none() || exp.reason.is_none() || exp.reason == o.reason;
        if !timing_ok || !reason_ok {
            r.wrong.push(format!(
                "WRONG {}: expected {:?}/{:?}, got {:?}/{:?} ({:?}) evidence {:?}",
                d.id,
                exp.escalate_at,
                exp.reason,
                o.escalated_at,
                o.reason,
                o.code,
                o.evidence.iter().map(|e| format!("{}@{}", e.trigger, e.turn)).collect::<Vec<_>>()
            ));
        }
    }
    r
}
