//! Scoring triage against labelled dialogs.
//!
//! A dialog expected to escalate at turn E counts as right when triage escalated at E or E+1
//! (the caller may need one more sentence to make themselves clear); earlier is premature and
//! counts as a false positive, later or never is a miss. Precision is right / escalated,
//! recall is right / expected, per language.

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
        s
    }
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
