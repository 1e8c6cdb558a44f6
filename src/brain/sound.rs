//! Sound-alike matching: finds a trigger phrase (triage) or an intent's keyword (the playbook
//! brain) in what the recognizer wrote when it wrote something that *sounds* like it. Whisper
//! on 8 kHz phone audio turns "stolen" into "still in" and 投诉 into 投述, 宽带 into 宽待; an
//! exact matcher never sees those.
//!
//! - English: the phrase and a window of the caller's words (one word fewer to one more) are
//!   joined without spaces and reduced to a consonant key in the spirit of Metaphone ("phone was
//!   still in" and "phone was stolen" are both `FNWSTLN`). The same letters split differently
//!   ("re fund") are nearly exact; equal keys sound alike; keys one edit apart are a weak hint.
//! - Mandarin: each character's readings (toneless pinyin, every reading of a heteronym) are
//!   compared syllable by syllable, so homophones match (退宽 = 退款, 转任工 = 转人工). A looser
//!   pass folds the mergers common in southern speech and in the recognizer (zh/z, ch/c, sh/s,
//!   -ng/-n, n/l), so 投述 still finds 投诉. At least one character must be the keyword's own:
//!   a slip changes one character, not the whole word.
//!
//! The result is a *quality* in 0..1 (how much the hit looks like the keyword); triage weighs it
//! against the recognizer's confidence: a homophone the recognizer was sure of (我去试试 beside
//! 去世) is what the caller said.

use pinyin::ToPinyinMulti;

/// Quality of a hit whose letters equal the keyword's once spaces are ignored ("re fund").
pub(crate) const JOINED: f32 = 0.98;
/// Quality of a Mandarin homophone (every syllable shares a toneless reading).
pub(crate) const HOMOPHONE: f32 = 0.95;
/// Quality of a Mandarin near-homophone (equal after folding the common mergers).
pub(crate) const NEAR_HOMOPHONE: f32 = 0.8;
/// Quality of an English window with the keyword's consonant key.
pub(crate) const SAME_KEY: f32 = 0.75;
/// Quality of an English window whose key is one edit from the keyword's.
pub(crate) const NEAR_KEY: f32 = 0.5;

/// Shortest key that may match by sound: shorter ones ("court" = "cart" = "card") collide too often.
const MIN_KEY: usize = 4;
/// Shortest key that may match one edit away.
const MIN_NEAR_KEY: usize = 6;

/// What a keyword sounds like, prepared once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sound {
    En { words: usize, joined: String, key: String },
    Zh { chars: Vec<char>, readings: Vec<Vec<&'static str>> },
}

impl Sound {
    /// None for keywords too short to match by sound safely.
    pub(crate) fn of(norm: &str, cjk: bool) -> Option<Sound> {
        if cjk {
            let chars: Vec<char> = norm.chars().filter(|c| !c.is_whitespace()).collect();
            if chars.len() < 2 {
                return None;
            }
            let readings: Vec<Vec<&'static str>> = chars.iter().map(|c| readings(*c)).collect();
            // A digit or a Latin letter inside (12315) has no reading: exact only.
            if readings.iter().any(Vec::is_empty) {
                return None;
            }
            Some(Sound::Zh { chars, readings })
        } else {
            let joined: String = norm.chars().filter(char::is_ascii_alphabetic).collect();
            let key = en_key(&joined);
            if key.len() < MIN_KEY {
                return None;
            }
            Some(Sound::En { words: norm.split(' ').filter(|w| !w.is_empty()).count(), joined, key })
        }
    }
}

/// One sound-alike hit: the byte span in the clause and its quality.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SoundHit {
    pub start: usize,
    pub end: usize,
    pub quality: f32,
}

/// Sound-alike occurrences of `s` in a normalized `clause`, best per start, exact ones excluded
/// (the exact matcher reports those).
pub(crate) fn find(clause: &str, norm: &str, s: &Sound) -> Vec<SoundHit> {
    match s {
        Sound::En { words, joined, key } => find_en(clause, norm, *words, joined, key),
        Sound::Zh { chars, readings } => find_zh(clause, chars, readings),
    }
}

fn find_en(clause: &str, norm: &str, n: usize, joined: &str, key: &str) -> Vec<SoundHit> {
    // Words with their byte spans.
    let mut words: Vec<(usize, usize)> = Vec::new();
    let mut start = None;
    for (i, c) in clause.char_indices().chain(std::iter::once((clause.len(), ' '))) {
        match (c == ' ', start) {
            (true, Some(s)) => {
                words.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for first in 0..words.len() {
        let mut best: Option<SoundHit> = None;
        for len in n.saturating_sub(1).max(1)..=n + 1 {
            let Some(&(_, end)) = words.get(first + len - 1) else { break };
            let begin = words[first].0;
            let window = &clause[begin..end];
            if window == norm {
                continue;
            }
            let letters: String = window.chars().filter(char::is_ascii_alphabetic).collect();
            // A window far longer or shorter than the keyword is another phrase.
            if letters.is_empty() || letters.len() * 2 < joined.len() || letters.len() > joined.len() * 2 {
                continue;
            }
            let quality = if letters == joined {
                JOINED
            } else {
                let k = en_key(&letters);
                if k == key {
                    SAME_KEY
                } else if key.len() >= MIN_NEAR_KEY && k.starts_with(&key[..1]) && edit_distance(&k, key) == 1 {
                    NEAR_KEY
                } else {
                    continue;
                }
            };
            if best.is_none_or(|b| quality > b.quality) {
                best = Some(SoundHit { start: begin, end, quality });
            }
        }
        out.extend(best);
    }
    out
}

fn find_zh(clause: &str, kw: &[char], kw_readings: &[Vec<&'static str>]) -> Vec<SoundHit> {
    let chars: Vec<(usize, char)> = clause.char_indices().collect();
    let mut out = Vec::new();
    if chars.len() < kw.len() {
        return out;
    }
    for first in 0..=chars.len() - kw.len() {
        let window = &chars[first..first + kw.len()];
        let same = window.iter().zip(kw).filter(|((_, c), k)| c == *k).count();
        if same == kw.len() || same == 0 {
            continue;
        }
        let mut quality = HOMOPHONE;
        for ((_, c), want) in window.iter().zip(kw_readings) {
            let have = readings(*c);
            if have.iter().any(|h| want.contains(h)) {
                continue;
            }
            if have.iter().any(|h| want.iter().any(|w| fold(h) == fold(w))) {
                quality = NEAR_HOMOPHONE;
                continue;
            }
            quality = 0.0;
            break;
        }
        if quality > 0.0 {
            let (start, _) = window[0];
            let (last, c) = window[window.len() - 1];
            out.push(SoundHit { start, end: last + c.len_utf8(), quality });
        }
    }
    out
}

/// Every toneless reading of a character (empty for anything that is not a Han character).
fn readings(c: char) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = match c.to_pinyin_multi() {
        Some(m) => m.into_iter().map(|p| p.plain()).collect(),
        None => Vec::new(),
    };
    out.dedup();
    out
}

/// A syllable with the mergers folded: zh/ch/sh → z/c/s, n- → l-, -ng → -n.
fn fold(syllable: &str) -> String {
    let s = syllable.replace("zh", "z").replace("ch", "c").replace("sh", "s");
    let s = match s.strip_prefix('n') {
        Some(rest) if !rest.is_empty() => format!("l{rest}"),
        _ => s,
    };
    match s.strip_suffix("ng") {
        Some(rest) if rest.len() > 1 => format!("{rest}n"),
        _ => s,
    }
}

/// A consonant key for lowercase English letters, in the spirit of Metaphone: vowels dropped
/// after the first letter, letters that sound alike folded (c/k/q, s/z, f/v/ph, d/t, soft g/j),
/// silent letters dropped (the k of "kn", gh, h after a consonant), repeats collapsed.
pub(crate) fn en_key(letters: &str) -> String {
    let c: Vec<char> = letters.chars().filter(char::is_ascii_alphabetic).map(|c| c.to_ascii_lowercase()).collect();
    let at = |i: usize| c.get(i).copied().unwrap_or('\0');
    let vowel = |ch: char| matches!(ch, 'a' | 'e' | 'i' | 'o' | 'u');
    let soft = |ch: char| matches!(ch, 'e' | 'i' | 'y');
    let mut out = String::new();
    let mut i = 0;
    if matches!((at(0), at(1)), ('k' | 'g' | 'p', 'n') | ('w', 'r')) {
        i = 1;
    }
    while i < c.len() {
        let (ch, next) = (c[i], at(i + 1));
        let mut skip = 0;
        let code: &str = match ch {
            _ if vowel(ch) && i == 0 => "A",
            _ if vowel(ch) => "",
            'b' => {
                if i + 1 == c.len() && i > 0 && c[i - 1] == 'm' {
                    ""
                } else {
                    "B"
                }
            }
            'c' if next == 'h' => {
                skip = 1;
                "X"
            }
            'c' if soft(next) => "S",
            'c' | 'k' | 'q' => "K",
            'd' if next == 'g' && soft(at(i + 2)) => {
                skip = 1;
                "J"
            }
            't' if next == 'h' => {
                skip = 1;
                "0"
            }
            'd' | 't' => "T",
            'g' if next == 'h' => {
                skip = 1;
                if i == 0 {
                    "K"
                } else {
                    ""
                }
            }
            'g' if soft(next) => "J",
            'g' => "K",
            'h' if i == 0 && vowel(next) => "H",
            'h' => "",
            'p' if next == 'h' => {
                skip = 1;
                "F"
            }
            'p' => "P",
            'f' | 'v' => "F",
            's' if next == 'h' => {
                skip = 1;
                "X"
            }
            's' | 'z' => "S",
            'w' if vowel(next) => "W",
            'y' if vowel(next) => "Y",
            'w' | 'y' => "",
            'x' => "KS",
            'j' => "J",
            'l' => "L",
            'm' => "M",
            'n' => "N",
            'r' => "R",
            _ => "",
        };
        for k in code.chars() {
            if !out.ends_with(k) {
                out.push(k);
            }
        }
        i += 1 + skip;
    }
    out
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, y) in b.iter().enumerate() {
            cur.push((prev[j] + usize::from(x != y)).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(clause: &str, kw: &str) -> Vec<SoundHit> {
        let norm = crate::brain::text::normalize_keyword(kw).unwrap();
        let s = Sound::of(&norm, crate::brain::text::has_cjk(&norm)).unwrap();
        find(clause, &norm, &s)
    }

    #[test]
    fn english_keys_fold_what_a_phone_line_blurs() {
        assert_eq!(en_key("stolen"), en_key("stillin"));
        assert_eq!(en_key("complaint"), en_key("compliant"));
        assert_eq!(en_key("realperson"), en_key("realparson"));
        assert_eq!(en_key("agent"), en_key("ageand"));
        assert_eq!(en_key("phone"), "FN");
        assert_ne!(en_key("stolen"), en_key("stable"));
        assert_eq!(edit_distance("KMPLNT", "KMPLMNT"), 1);
    }

    #[test]
    fn english_phrases_are_found_in_what_whisper_wrote() {
        let h = hits("my phone was still in an hour ago", "phone was stolen");
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(&"my phone was still in an hour ago"[h[0].start..h[0].end], "phone was still in");
        assert_eq!(h[0].quality, SAME_KEY);
        assert_eq!(hits("i want a re fund", "refund")[0].quality, JOINED);
        assert_eq!(hits("whats the complement of my plan", "complaint")[0].quality, NEAR_KEY);
        // The exact word is the exact matcher's, and an unrelated sentence matches nothing.
        assert!(hits("my phone was stolen", "phone was stolen").is_empty());
        assert!(hits("how much data do i have left", "phone was stolen").is_empty());
        assert!(hits("whats my balance", "complaint").is_empty());
    }

    #[test]
    fn short_keys_do_not_match_by_sound() {
        assert!(Sound::of("court", false).is_none());
        assert!(Sound::of("died", false).is_none());
        assert!(Sound::of("人", true).is_none());
        assert!(Sound::of("12315", true).is_none());
    }

    #[test]
    fn mandarin_homophones_match_by_reading() {
        let h = hits("我要退宽", "退款");
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].quality, HOMOPHONE);
        assert_eq!(&"我要退宽"[h[0].start..h[0].end], "退宽");
        assert_eq!(hits("转任工", "转人工")[0].quality, HOMOPHONE);
        assert_eq!(hits("我要投述你们", "投诉")[0].quality, NEAR_HOMOPHONE);
        // 投资 is not 投诉; two homophones sharing no character are another word.
        assert!(hits("投资理财", "投诉").is_empty());
        assert!(hits("退款", "退款").is_empty());
    }
}
