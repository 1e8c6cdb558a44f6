//! Conversation memory per call, bounded (sans-IO).
//!
//! The last `max_turns` exchanges are kept verbatim for the prompt; older ones are folded into
//! an extractive summary (the caller's own words, shortened), itself bounded, so a long call
//! never grows the prompt past what the model can take or the latency budget allows.

use std::collections::VecDeque;

/// Bound of the folded summary, in characters.
const SUMMARY_CHARS: usize = 400;
/// Each folded caller line keeps at most this many characters.
const LINE_CHARS: usize = 80;

#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub caller: String,
    pub bot: String,
}

#[derive(Debug)]
pub struct Memory {
    max_turns: usize,
    turns: VecDeque<Exchange>,
    summary: String,
}

impl Memory {
    pub fn new(max_turns: usize) -> Self {
        Memory { max_turns: max_turns.max(1), turns: VecDeque::new(), summary: String::new() }
    }

    /// Records a finished exchange, folding the oldest one into the summary when full.
    pub fn push(&mut self, caller: &str, bot: &str) {
        self.turns.push_back(Exchange { caller: caller.trim().to_string(), bot: bot.trim().to_string() });
        while self.turns.len() > self.max_turns {
            if let Some(old) = self.turns.pop_front() {
                self.fold(&old);
            }
        }
    }

    fn fold(&mut self, old: &Exchange) {
        if old.caller.is_empty() {
            return;
        }
        let line: String = old.caller.chars().take(LINE_CHARS).collect();
        if !self.summary.is_empty() {
            self.summary.push_str(" | ");
        }
        self.summary.push_str(&line);
        // Keep the most recent part: drop whole lines from the front.
        while self.summary.chars().count() > SUMMARY_CHARS {
            match self.summary.find(" | ") {
                Some(i) => self.summary.drain(..i + 3),
                None => self.summary.drain(..),
            };
        }
    }

    pub fn turns(&self) -> impl Iterator<Item = &Exchange> {
        self.turns.iter()
    }

    /// Earlier caller lines, oldest first, or "" when nothing was folded yet.
    pub fn summary(&self) -> &str {
        &self.summary
    }

    /// The caller's lines of the whole call as far as memory reaches: for handoff summaries.
    pub fn caller_lines(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if !self.summary.is_empty() {
            out.push(format!("earlier: {}", self.summary));
        }
        out.extend(self.turns.iter().filter(|t| !t.caller.is_empty()).map(|t| t.caller.clone()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_recent_turns_and_folds_older_ones_within_bounds() {
        let mut m = Memory::new(2);
        for i in 0..50 {
            m.push(&format!("caller line number {i} {}", "x".repeat(100)), "ok");
        }
        assert_eq!(m.turns().count(), 2);
        assert!(m.summary().chars().count() <= SUMMARY_CHARS);
        assert!(m.summary().contains("number 47"), "{}", m.summary());
        assert!(!m.summary().contains("number 3 "));
        assert_eq!(m.caller_lines().len(), 3);
    }
}
