//! Text normalization and keyword matching for the playbook brain.
//!
//! Speech recognition output is noisy in ways that have nothing to do with meaning: whisper
//! writes "Bye.", "bye" or "BYE!" for the same word, sometimes uses traditional Chinese
//! characters, and may or may not punctuate. Both the playbook's keywords and the caller's words
//! go through the same [`normalize`] so that a designer writes "that's all" once and it matches
//! every spelling of it.
//!
//! Matching rules:
//! - a keyword containing Chinese characters matches as a plain substring (Chinese has no spaces
//!   between words);
//! - any other keyword matches whole words only ("no" must not fire inside "know");
//! - punctuation splits the text into clauses, and a keyword never spans two clauses, so
//!   "No, I want an agent." keeps its "No" away from "agent".

/// True for the CJK ideograph blocks whisper emits for Mandarin.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2A6DF)
}

/// True when the text contains at least one CJK ideograph.
pub fn has_cjk(s: &str) -> bool {
    s.chars().any(is_cjk)
}

/// Punctuation that ends a clause, in both ASCII and full-width forms.
fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | '!' | '?' | ';' | ':' | '\n' | '\r' | '。' | '，' | '！' | '？' | '；' | '：'
            | '、' | '…' | '—'
    )
}

/// Characters dropped without leaving a gap, so "don't" == "dont" and "wi-fi" == "wifi".
fn is_joiner(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | 'ʼ' | '-' | '‐' | '‑')
}

/// Normalizes text for matching: lowercase, simplified characters (the playbook is written in
/// simplified; a transcript or typed text may not be), full-width ASCII folded,
/// joiners dropped, other punctuation turned into spaces, spaces collapsed and trimmed. The result
/// is a list of clauses (never empty strings).
pub fn normalize(text: &str) -> Vec<String> {
    let mut clauses = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, clauses: &mut Vec<String>| {
        let t = cur.trim_end();
        if !t.is_empty() {
            clauses.push(t.to_string());
        }
        cur.clear();
    };
    for raw in crate::chinese::to_simplified(text).chars() {
        // Full-width ASCII variants (Ａ, ０, ？) fold onto ASCII first so one table covers both.
        let c = match raw as u32 {
            0xFF01..=0xFF5E => char::from_u32(raw as u32 - 0xFEE0).unwrap_or(raw),
            0x3000 => ' ',
            _ => raw,
        };
        if is_clause_break(c) {
            flush(&mut cur, &mut clauses);
        } else if is_joiner(c) {
            continue;
        } else if c.is_alphanumeric() {
            for l in c.to_lowercase() {
                cur.push(l);
            }
        } else if !cur.is_empty() && !cur.ends_with(' ') {
            // Whitespace and any other symbol separate words.
            cur.push(' ');
        }
    }
    flush(&mut cur, &mut clauses);
    clauses
}

/// Normalizes a keyword written by a designer: one clause, or None when nothing matchable is
/// left (a keyword of pure punctuation is a playbook error).
pub fn normalize_keyword(kw: &str) -> Option<String> {
    let clauses = normalize(kw);
    if clauses.is_empty() {
        None
    } else {
        Some(clauses.join(" "))
    }
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// Byte offsets of every place `kw` (already normalized) occurs in `clause`. Chinese keywords
/// match anywhere; other keywords only at word boundaries. Chinese characters count as a
/// boundary, so "查wifi" still matches "wifi".
pub fn find_all(clause: &str, kw: &str) -> Vec<usize> {
    let mut out = Vec::new();
    if kw.is_empty() {
        return out;
    }
    let cjk = has_cjk(kw);
    let mut from = 0;
    while let Some(pos) = clause[from..].find(kw) {
        let start = from + pos;
        let end = start + kw.len();
        let ok = cjk || {
            let before = clause[..start].chars().next_back();
            let after = clause[end..].chars().next();
            !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
        };
        if ok {
            out.push(start);
        }
        // Advance by one character, not one byte, to stay on a char boundary.
        from = start + clause[start..].chars().next().map_or(1, char::len_utf8);
    }
    out
}

/// How far a negation cue may stand before the keyword it negates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NegationWindow {
    /// For English-like keywords: words between the cue and the keyword.
    pub words: usize,
    /// For Chinese keywords: characters between the cue and the keyword.
    pub chars: usize,
}

/// Counts the distance units in a gap: each Chinese character is one unit, each other word is one.
pub fn gap_units(gap: &str) -> (usize, usize) {
    let chars = gap.chars().filter(|c| is_cjk(*c)).count();
    let words = gap
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .count();
    (words, chars)
}

/// True when one of `cues` (normalized) stands close enough before `start` in `clause` to negate
/// the keyword found there ("不用转人工", "I don't need an agent").
pub fn is_negated(clause: &str, start: usize, kw_is_cjk: bool, cues: &[String], win: NegationWindow) -> bool {
    let prefix = &clause[..start];
    cues.iter().any(|cue| {
        find_all(prefix, cue).into_iter().any(|at| {
            let gap = &prefix[at + cue.len()..];
            // "不用了" / "不要了" closes the decline on its own ("不用了，再见" without the comma):
            // what follows 了 is a new thought, not the object of the negation.
            if gap.starts_with('了') {
                return false;
            }
            let (words, chars) = gap_units(gap);
            if kw_is_cjk {
                chars + words <= win.chars
            } else {
                words + chars <= win.words
            }
        })
    })
}

/// Splits a reply into spoken chunks at sentence ends, so the first sentence can be synthesized
/// while the rest is still on its way. ASCII sentence ends only split before whitespace, so
/// "Mr. Li" style abbreviations followed by a space do split but "3.2" never does.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        cur.push(c);
        let end = match c {
            '。' | '！' | '？' => true,
            '.' | '!' | '?' => chars.peek().is_none_or(|n| n.is_whitespace()),
            _ => false,
        };
        if end {
            let t = cur.trim();
            if !t.is_empty() {
                out.push(t.to_string());
            }
            cur.clear();
        }
    }
    let t = cur.trim();
    if !t.is_empty() {
        out.push(t.to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_case_and_punctuation_do_not_matter() {
        assert_eq!(normalize("  That's ALL, thanks!! "), vec!["thats all", "thanks"]);
        assert_eq!(normalize("Wi-Fi   is\tdown"), vec!["wifi is down"]);
    }

    #[test]
    fn chinese_is_simplified_and_split_on_fullwidth_punctuation() {
        assert_eq!(normalize("我想查一下餘額，謝謝！"), vec!["我想查一下余额", "谢谢"]);
        assert_eq!(normalize("查ＷＩＦＩ"), vec!["查wifi"]);
    }

    #[test]
    fn words_match_only_at_boundaries() {
        assert!(find_all("i know", "no").is_empty());
        assert_eq!(find_all("no i want an agent", "agent"), vec![13]);
        assert_eq!(find_all("查wifi密码", "wifi"), vec![3]);
        assert_eq!(find_all("话费余额", "余额"), vec![6]);
    }

    #[test]
    fn negation_needs_a_nearby_cue_in_the_same_clause() {
        let cues: Vec<String> = ["dont", "不用", "不要"].iter().map(|s| s.to_string()).collect();
        let w = NegationWindow { words: 4, chars: 3 };
        let c = "i dont need an agent";
        assert!(is_negated(c, find_all(c, "agent")[0], false, &cues, w));
        let c = "i want an agent";
        assert!(!is_negated(c, find_all(c, "agent")[0], false, &cues, w));
        let c = "不用转人工";
        assert!(is_negated(c, find_all(c, "转人工")[0], true, &cues, w));
        let c = "不用了再见";
        assert!(!is_negated(c, find_all(c, "再见")[0], true, &cues, w));
    }

    #[test]
    fn sentences_split_for_streaming() {
        assert_eq!(sentences("Hello there. Your balance is 3.2 yuan! Bye"), vec!["Hello there.", "Your balance is 3.2 yuan!", "Bye"]);
        assert_eq!(sentences("您好。请问有什么可以帮您？"), vec!["您好。", "请问有什么可以帮您？"]);
    }
}
