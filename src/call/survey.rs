//! The post-call satisfaction survey: after the AI ends a contained call, or after the agent a
//! caller was handed to hangs up, the caller is asked to rate the call from 1 to 5 on the
//! keypad or in words, in their language. What the lines say and how an answer is read are
//! decided here; when it runs is the call core's business.
//!
//! Sans-IO: text in, a rating out.

use serde::{Deserialize, Serialize};

/// `[survey]` in frontline.toml.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SurveyConfig {
    /// Ask at all. Off by default: a survey adds about ten seconds to every call.
    pub enabled: bool,
    /// After the AI ends a call it contained (the brain said goodbye).
    pub after_ai: bool,
    /// After the agent a caller was handed to hangs up first.
    pub after_agent: bool,
    /// How long the caller has to answer once the question has played.
    pub answer_ms: u64,
}

impl Default for SurveyConfig {
    fn default() -> Self {
        SurveyConfig { enabled: false, after_ai: true, after_agent: true, answer_ms: 8000 }
    }
}

impl SurveyConfig {
    pub fn answer_duration(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.answer_ms)
    }

    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.enabled && self.answer_ms < 1000 {
            return Err(("survey.answer_ms", "must be at least 1000 (a caller needs time to press a key)".into()));
        }
        Ok(())
    }
}

/// How the caller answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnsweredBy {
    Keypad,
    Voice,
}

impl AnsweredBy {
    pub fn as_str(self) -> &'static str {
        match self {
            AnsweredBy::Keypad => "keypad",
            AnsweredBy::Voice => "voice",
        }
    }
}

/// A caller's rating, 1 (not at all satisfied) to 5 (very satisfied).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    pub score: u8,
    pub by: AnsweredBy,
}

/// The lines of the survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SurveyLine {
    Question,
    /// After an answer that is not a rating: once more, shorter.
    Again,
    Thanks,
    /// No answer in time.
    Goodbye,
}

/// `line` in Mandarin when `lang` is "zh", else in English.
pub fn line(line: SurveyLine, lang: &str) -> &'static str {
    match (line, lang == "zh") {
        (SurveyLine::Question, false) => {
            "Before you go: how satisfied are you with this call? Press or say a number from 1, not satisfied, to 5, very satisfied."
        }
        (SurveyLine::Question, true) => "挂机前请您为本次服务打分：请按键或说出一到五的数字，一分不满意，五分非常满意。",
        (SurveyLine::Again, false) => "Sorry, please press or say a number from 1 to 5.",
        (SurveyLine::Again, true) => "抱歉，请按键或说出一到五之间的数字。",
        (SurveyLine::Thanks, false) => "Thank you for your feedback. Goodbye.",
        (SurveyLine::Thanks, true) => "感谢您的评价，再见。",
        (SurveyLine::Goodbye, false) => "Thank you for calling. Goodbye.",
        (SurveyLine::Goodbye, true) => "感谢您的来电，再见。",
    }
}

/// Every survey line in `lang`, for rendering ahead.
pub fn lines(lang: &str) -> [&'static str; 4] {
    [SurveyLine::Question, SurveyLine::Again, SurveyLine::Thanks, SurveyLine::Goodbye].map(|k| line(k, lang))
}

/// A keypad answer: 1 to 5.
pub fn rating_from_key(digit: char) -> Option<u8> {
    digit.to_digit(10).filter(|d| (1..=5).contains(d)).map(|d| d as u8)
}

/// A spoken answer, as the recognizer wrote it: one number from 1 to 5 ("4", "four", "I'd say
/// four", "五分", "打五分"), or a plain verdict ("very satisfied", "非常满意", "不满意").
/// `None` when it holds no rating or more than one number ("between three and four").
pub fn rating_from_words(text: &str) -> Option<u8> {
    let lower = text.to_lowercase();
    let mut found: Vec<u8> = Vec::new();
    // Digits and Mandarin numerals, one character each; a longer number is no rating.
    let chars: Vec<char> = lower.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let n = match c {
            '1'..='9' | '0' => c.to_digit(10).map(|d| d as u8),
            '一' => Some(1),
            '二' | '两' => Some(2),
            '三' => Some(3),
            '四' => Some(4),
            '五' => Some(5),
            '六' | '七' | '八' | '九' | '十' | '零' => Some(0),
            _ => None,
        };
        let Some(n) = n else { continue };
        let neighbour_is_number = |j: Option<usize>| j.and_then(|j| chars.get(j)).is_some_and(|c| c.is_ascii_digit() || "一二两三四五六七八九十零百".contains(*c));
        // "一下", "一点", "一些" are not numbers; neither is a digit inside a longer number.
        let next = chars.get(i + 1).copied();
        if c == '一' && next.is_some_and(|n| "下点些直般样起共定".contains(n)) {
            continue;
        }
        if neighbour_is_number(i.checked_sub(1)) || neighbour_is_number(Some(i + 1)) {
            return None;
        }
        found.push(n);
    }
    const WORDS: [(&str, u8); 5] = [("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5)];
    for word in lower.split(|c: char| !c.is_alphanumeric()) {
        if let Some(&(_, n)) = WORDS.iter().find(|(w, _)| *w == word) {
            found.push(n);
        } else if ["six", "seven", "eight", "nine", "ten", "zero"].contains(&word) {
            found.push(0);
        }
    }
    match found.as_slice() {
        [n] if (1..=5).contains(n) => return Some(*n),
        [] => {}
        _ => return None,
    }
    verdict(&lower)
}

/// A rating said as a verdict instead of a number. Longest phrases first, so "very
/// dissatisfied" is not read as "satisfied".
fn verdict(lower: &str) -> Option<u8> {
    const VERDICTS: &[(&str, u8)] = &[
        ("非常不满意", 1),
        ("very dissatisfied", 1),
        ("very unsatisfied", 1),
        ("not satisfied at all", 1),
        ("terrible", 1),
        ("不太满意", 2),
        ("不满意", 2),
        ("dissatisfied", 2),
        ("unsatisfied", 2),
        ("not satisfied", 2),
        ("not happy", 2),
        ("一般", 3),
        ("还行", 3),
        ("neutral", 3),
        ("so-so", 3),
        ("非常满意", 5),
        ("很满意", 5),
        ("very satisfied", 5),
        ("excellent", 5),
        ("满意", 4),
        ("satisfied", 4),
        ("not good", 2),
        ("good", 4),
    ];
    VERDICTS.iter().find(|(phrase, _)| lower.contains(phrase)).map(|&(_, n)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_one_to_five_rate_and_others_do_not() {
        assert_eq!(rating_from_key('1'), Some(1));
        assert_eq!(rating_from_key('5'), Some(5));
        for k in ['0', '6', '9', '*', '#'] {
            assert_eq!(rating_from_key(k), None, "{k}");
        }
    }

    #[test]
    fn a_spoken_number_or_verdict_is_a_rating_in_both_languages() {
        for (said, want) in [
            ("Five.", 5),
            ("4", 4),
            ("I'd say four, thanks.", 4),
            ("Um, three I guess", 3),
            ("One!", 1),
            ("五分。", 5),
            ("打四分吧", 4),
            ("3分", 3),
            ("两分", 2),
            ("Very satisfied.", 5),
            ("very dissatisfied", 1),
            ("Not satisfied.", 2),
            ("非常满意", 5),
            ("不满意。", 2),
            ("还行吧，一般。", 3),
        ] {
            assert_eq!(rating_from_words(said), Some(want), "{said}");
        }
    }

    #[test]
    fn words_without_one_clear_rating_are_not_a_rating() {
        for said in [
            "",
            "Hello?",
            "Between three and four.",
            "Ten out of ten",
            "My number is 13800138000",
            "我想再问一下话费",
            "七分",
            "what",
        ] {
            assert_eq!(rating_from_words(said), None, "{said}");
        }
    }

    #[test]
    fn every_line_exists_in_both_languages_and_mandarin_is_mandarin() {
        for lang in ["en", "zh"] {
            for text in lines(lang) {
                assert!(!text.is_empty());
                assert_eq!(lang == "zh", text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)), "{text}");
            }
        }
    }
}
