//! Conversation memory per call, bounded (sans-IO).
//!
//! The last `max_turns` exchanges are kept verbatim for the prompt; older ones are folded into
//! an extractive summary (the caller's own words, shortened), itself bounded, so a long call
//! never grows the prompt past what the model can take or the latency budget allows.
//!
//! Memory holds what the caller actually experienced, not what the brain meant to say: keypad
//! presses and silences are turns too (the bot answered them), and a reply the caller cut off
//! keeps only the part they heard, so the model does not build on words the caller never got.

use std::collections::VecDeque;

/// Bound of the folded summary, in characters.
const SUMMARY_CHARS: usize = 400;
/// Each folded caller line keeps at most this many characters.
const LINE_CHARS: usize = 80;

/// How the caller took their turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Speech,
    Keypad,
    /// The caller said nothing (the bot reprompted).
    Silence,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    pub input: Input,
    /// The caller's words, or a bracketed note of the keys pressed or of the silence.
    pub caller: String,
    /// What the caller heard of the bot's reply.
    pub bot: String,
    /// The caller spoke over the reply: `bot` is only the part they heard.
    pub cut_off: bool,
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

    /// Records a finished spoken exchange, folding the oldest one into the summary when full.
    pub fn push(&mut self, caller: &str, bot: &str) {
        self.record(Input::Speech, caller.trim().to_string(), bot);
    }

    /// Records keys pressed on the keypad and the bot's answer to them.
    pub fn push_keypad(&mut self, digits: &str, bot: &str) {
        self.record(Input::Keypad, format!("[pressed on the keypad: {}]", digits.trim()), bot);
    }

    /// Records a silence the bot answered (a reprompt, or the goodbye).
    pub fn push_silence(&mut self, duration_ms: u32, bot: &str) {
        let secs = (duration_ms as f32 / 1000.0).round() as u32;
        self.record(Input::Silence, format!("[the caller said nothing for {secs} seconds]"), bot);
    }

    /// The caller spoke over the latest reply after hearing `heard` of it (the gateway's
    /// BargeIn.heard_text): the rest is forgotten. Before any exchange (during the greeting)
    /// there is nothing to correct.
    pub fn cut_off(&mut self, heard: &str) {
        if let Some(last) = self.turns.back_mut() {
            last.bot = heard.trim().to_string();
            last.cut_off = true;
        }
    }

    /// The caller went on with the sentence of the last exchange before hearing its reply
    /// (`Utterance.continues`): `whole` replaces it, so the model sees the sentence once and
    /// not a reply the caller never heard.
    pub fn continued(&mut self, whole: &str) {
        if self.turns.back().is_some_and(|t| t.input == Input::Speech && whole.trim().starts_with(t.caller.as_str())) {
            self.turns.pop_back();
        }
    }

    /// True when some remembered reply was cut off (the prompt then says how to read it).
    pub fn has_cut_off(&self) -> bool {
        self.turns.iter().any(|t| t.cut_off)
    }

    fn record(&mut self, input: Input, caller: String, bot: &str) {
        self.turns.push_back(Exchange { input, caller, bot: bot.trim().to_string(), cut_off: false });
        while self.turns.len() > self.max_turns {
            if let Some(old) = self.turns.pop_front() {
                self.fold(&old);
            }
        }
    }

    fn fold(&mut self, old: &Exchange) {
        // A silence says nothing about what the call is about.
        if old.caller.is_empty() || old.input == Input::Silence {
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
        out.extend(self.turns.iter().filter(|t| !t.caller.is_empty() && t.input != Input::Silence).map(|t| t.caller.clone()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_the_caller_went_on_with_replaces_its_first_piece() {
        let mut m = Memory::new(4);
        m.push("What is my balance?", "It is 20 dollars.");
        m.push("If I cancel", "Sorry, I did not catch that.");
        m.continued("If I cancel now, is there a fee?");
        m.continued("Something else entirely");
        let callers: Vec<&str> = m.turns().map(|t| t.caller.as_str()).collect();
        assert_eq!(callers, ["What is my balance?"], "only the piece it goes on with is dropped");
    }

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

    #[test]
    fn a_cut_off_reply_keeps_only_what_the_caller_heard() {
        let mut m = Memory::new(4);
        m.cut_off("Welcome to"); // during the greeting: nothing remembered to correct
        assert_eq!(m.turns().count(), 0);
        m.push("what is my balance", "Your balance is forty-two yuan. Would you like to top up? We have offers.");
        assert!(!m.has_cut_off());
        m.cut_off(" Your balance is forty-two yuan. ");
        let last = m.turns().last().unwrap();
        assert_eq!(last.bot, "Your balance is forty-two yuan.");
        assert!(last.cut_off && m.has_cut_off());
        assert!(!last.bot.contains("top up"));
        // Cut off before a word was heard: the caller was told nothing.
        m.push("and my data", "You have three gigabytes left.");
        m.cut_off("");
        assert_eq!(m.turns().last().unwrap().bot, "");
        // The next exchange is whole again.
        m.push("thanks", "You're welcome.");
        assert!(!m.turns().last().unwrap().cut_off);
    }

    #[test]
    fn keypad_and_silence_are_turns_but_only_keys_reach_the_caller_lines() {
        let mut m = Memory::new(2);
        m.push_keypad(" 2 ", "Your bill is ready.");
        m.push_silence(5400, "Are you still there?");
        let turns: Vec<&Exchange> = m.turns().collect();
        assert_eq!((turns[0].input, turns[0].caller.as_str()), (Input::Keypad, "[pressed on the keypad: 2]"));
        assert_eq!(turns[0].bot, "Your bill is ready.");
        assert_eq!((turns[1].input, turns[1].caller.as_str()), (Input::Silence, "[the caller said nothing for 5 seconds]"));
        assert_eq!(m.caller_lines(), vec!["[pressed on the keypad: 2]".to_string()]);
        // Folded: the keys go into the summary, the silence does not.
        m.push("hello", "Hi.");
        m.push("bye", "Goodbye.");
        assert_eq!(m.summary(), "[pressed on the keypad: 2]");
    }
}
