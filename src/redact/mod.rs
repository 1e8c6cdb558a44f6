//! Masks card numbers and national ID numbers in text, whether the caller keyed them, said them
//! as digits ("4111 1111 ...") or as words ("four one one one ...", "四一一一...").
//!
//! Used wherever caller words leave the call: records, logs, the Ops API, and the prompt of an
//! external LLM. Sans-IO: a pure function over a string.
//!
//! A digit run only counts when it *is* a card or an ID by its own check digit (Luhn for cards,
//! ISO 7064 MOD 11-2 for the 18-character PRC resident ID), so an order number or a phone
//! number is left readable for the agent who needs it.

use serde::Deserialize;
use std::borrow::Cow;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// Master switch: off leaves every transcript as recognized.
    pub enabled: bool,
    /// Mask payment card numbers (13 to 19 digits with a valid Luhn check digit).
    pub cards: bool,
    /// Mask 18-character PRC resident ID numbers (valid MOD 11-2 check character).
    pub national_ids: bool,
    /// Digits left visible at the end of a masked number, so an agent can still confirm
    /// "the card ending 1111".
    pub keep_last: usize,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig { enabled: true, cards: true, national_ids: true, keep_last: 4 }
    }
}

/// One digit as it stands in the text: where it is and what it is worth (10 = the ID's "X").
#[derive(Debug, Clone, Copy)]
struct DigitToken {
    start: usize,
    end: usize,
    value: u8,
}

const ENGLISH_DIGITS: [(&str, u8); 11] = [
    ("zero", 0),
    ("oh", 0),
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("seven", 7),
    ("eight", 8),
    ("nine", 9),
];

fn char_digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        // Full-width digits, which Mandarin transcripts sometimes carry.
        '０'..='９' => Some((c as u32 - '０' as u32) as u8),
        '零' | '〇' => Some(0),
        '一' | '幺' => Some(1),
        '二' | '两' => Some(2),
        '三' => Some(3),
        '四' => Some(4),
        '五' => Some(5),
        '六' => Some(6),
        '七' => Some(7),
        '八' => Some(8),
        '九' => Some(9),
        _ => None,
    }
}

/// What may stand between the digits of one number: people group card numbers.
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '.' | ',' | '，' | '、' | '　')
}

/// Splits `text` into runs of digits that belong to one spoken or written number.
fn digit_runs(text: &str) -> Vec<Vec<DigitToken>> {
    let mut runs = Vec::new();
    let mut run: Vec<DigitToken> = Vec::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < text.len() {
        let c = text[i..].chars().next().unwrap_or(' ');
        let width = c.len_utf8();
        if let Some(value) = char_digit(c) {
            run.push(DigitToken { start: i, end: i + width, value });
            i += width;
            continue;
        }
        if (c == 'X' || c == 'x') && run.len() == 17 {
            // The ID's check character; only meaningful as the 18th.
            let next_is_alpha = text[i + 1..].chars().next().is_some_and(|n| n.is_alphanumeric());
            if !next_is_alpha {
                run.push(DigitToken { start: i, end: i + 1, value: 10 });
                i += 1;
                continue;
            }
        }
        if c.is_ascii_alphabetic() {
            let word_end = text[i..].find(|ch: char| !ch.is_ascii_alphabetic()).map_or(text.len(), |n| i + n);
            let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphabetic();
            let word = text[i..word_end].to_ascii_lowercase();
            if let Some(&(_, value)) = ENGLISH_DIGITS.iter().find(|(w, _)| *w == word).filter(|_| starts_word) {
                run.push(DigitToken { start: i, end: word_end, value });
            } else if !run.is_empty() {
                runs.push(std::mem::take(&mut run));
            }
            i = word_end;
            continue;
        }
        if !is_separator(c) && !run.is_empty() {
            runs.push(std::mem::take(&mut run));
        }
        i += width;
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = d as u32;
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// GB 11643: weights 2^(17-i) mod 11 over the first 17 digits; the check value maps through
/// (12 - sum mod 11) mod 11, where 10 is written "X".
fn resident_id_valid(digits: &[u8]) -> bool {
    if digits.len() != 18 || digits[..17].iter().any(|&d| d > 9) {
        return false;
    }
    let sum: u32 = digits[..17].iter().enumerate().map(|(i, &d)| d as u32 * ((1u32 << (17 - i)) % 11)).sum();
    (12 - sum % 11) % 11 == digits[17] as u32
}

/// Which window of a run is a card or an ID, if any: the whole run, or (when a caller ran
/// the number on into other digits) any window of the right length.
fn sensitive_span(run: &[DigitToken], config: &RedactionConfig) -> Option<(usize, usize)> {
    let values: Vec<u8> = run.iter().map(|t| t.value).collect();
    for len in (13..=run.len().min(19)).rev() {
        for start in 0..=run.len() - len {
            let window = &values[start..start + len];
            if config.national_ids && len == 18 && resident_id_valid(window) {
                return Some((start, start + len));
            }
            if config.cards && window.iter().all(|&d| d <= 9) && luhn_valid(window) {
                return Some((start, start + len));
            }
        }
    }
    None
}

/// The text with card and ID numbers masked ('*' per digit, the last `keep_last` kept).
/// Borrowed when nothing needed masking, which is nearly always.
pub fn redact<'a>(text: &'a str, config: &RedactionConfig) -> Cow<'a, str> {
    if !config.enabled || (!config.cards && !config.national_ids) {
        return Cow::Borrowed(text);
    }
    let mut masked: Vec<DigitToken> = Vec::new();
    for run in digit_runs(text).into_iter().filter(|r| r.len() >= 13) {
        if let Some((start, end)) = sensitive_span(&run, config) {
            let visible_from = end.saturating_sub(config.keep_last).max(start);
            masked.extend_from_slice(&run[start..visible_from]);
        }
    }
    if masked.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for token in masked {
        out.push_str(&text[at..token.start]);
        out.push('*');
        at = token.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(text: &str) -> String {
        redact(text, &RedactionConfig::default()).into_owned()
    }

    #[test]
    fn card_numbers_are_masked_but_the_last_four() {
        assert_eq!(on("my card is 4111 1111 1111 1111 thanks"), "my card is **** **** **** 1111 thanks");
        assert_eq!(on("4111-1111-1111-1111"), "****-****-****-1111");
        assert_eq!(on("卡号4111111111111111。"), "卡号************1111。");
    }

    #[test]
    fn spoken_digits_are_masked_as_words() {
        let said = "it's four one one one one one one one one one one one one one one one";
        assert_eq!(on(said), "it's * * * * * * * * * * * * one one one one");
        assert_eq!(on("四一一一一一一一一一一一一一一一"), "************一一一一");
    }

    #[test]
    fn resident_ids_are_masked_with_their_check_character() {
        // A well-known sample ID with a valid MOD 11-2 check character "X".
        assert_eq!(on("身份证号11010519491231002X"), "身份证号**************002X");
        assert_eq!(on("ID 11010519491231002x."), "ID **************002x.");
    }

    #[test]
    fn other_numbers_stay_readable() {
        // A phone number, an order number failing Luhn, a balance.
        for text in ["call 13800138000", "order 1234567890123", "balance is 42.50 yuan", "one of the two plans"] {
            assert_eq!(on(text), text);
            assert!(matches!(redact(text, &RedactionConfig::default()), Cow::Borrowed(_)));
        }
    }

    #[test]
    fn switches_are_honoured() {
        let off = RedactionConfig { enabled: false, ..RedactionConfig::default() };
        assert_eq!(redact("4111 1111 1111 1111", &off), "4111 1111 1111 1111");
        let ids_only = RedactionConfig { cards: false, ..RedactionConfig::default() };
        assert_eq!(redact("4111 1111 1111 1111", &ids_only), "4111 1111 1111 1111");
        let all = RedactionConfig { keep_last: 0, ..RedactionConfig::default() };
        assert_eq!(redact("4111111111111111", &all), "****************");
    }

    #[test]
    fn words_containing_digit_names_are_not_digits() {
        assert_eq!(on("someone tone phone"), "someone tone phone");
    }
}
