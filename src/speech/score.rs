//! Scoring a recognizer against a reference: word error rate (English) and character error
//! rate (Mandarin). Shared by the tests and `frontline bench wer`, so both judge the same way.

/// Lower-cased words with punctuation removed ("Balance?" and "balance" are the same word;
/// "don't" becomes "dont" on both sides).
fn normalize_words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .filter(|c| *c != '\'' && *c != '\u{2019}')
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Characters that carry content: no whitespace, no punctuation (ASCII or CJK, full-width).
fn normalize_chars(text: &str) -> Vec<char> {
    text.to_lowercase().chars().filter(|c| c.is_alphanumeric()).collect()
}

/// Levenshtein distance between two token sequences (substitutions, insertions, deletions).
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// Edits and reference length, for pooling several utterances into one corpus-level rate
/// (the sum of edits over the sum of reference tokens, not a mean of per-clip rates).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCount {
    pub edits: usize,
    pub reference_len: usize,
}

impl ErrorCount {
    pub fn words(reference: &str, hypothesis: &str) -> ErrorCount {
        let r = normalize_words(reference);
        ErrorCount { edits: edit_distance(&r, &normalize_words(hypothesis)), reference_len: r.len() }
    }

    pub fn chars(reference: &str, hypothesis: &str) -> ErrorCount {
        let r = normalize_chars(reference);
        ErrorCount { edits: edit_distance(&r, &normalize_chars(hypothesis)), reference_len: r.len() }
    }

    /// Edits over reference tokens; an empty reference scores the hypothesis's length.
    pub fn rate(&self) -> f64 {
        self.edits as f64 / self.reference_len.max(1) as f64
    }

    pub fn add(&mut self, other: ErrorCount) {
        self.edits += other.edits;
        self.reference_len += other.reference_len;
    }
}

/// Word error rate: word edits needed to turn the reference into the hypothesis, divided by
/// the reference's word count, after lower-casing and stripping punctuation. 0.0 is perfect;
/// it can exceed 1.0 (insertions). An empty reference scores the hypothesis's word count.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    ErrorCount::words(reference, hypothesis).rate()
}

/// Character error rate for Chinese (and other unsegmented scripts): character edits over
/// the reference's character count, ignoring whitespace and punctuation.
pub fn char_error_rate(reference: &str, hypothesis: &str) -> f64 {
    ErrorCount::chars(reference, hypothesis).rate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wer_ignores_case_and_punctuation() {
        assert_eq!(word_error_rate("What is my account balance?", "what is my account balance"), 0.0);
        assert_eq!(word_error_rate("I want to speak to a real person.", " I want to speak, to a real person! "), 0.0);
        assert_eq!(word_error_rate("Don't hang up", "dont hang up"), 0.0);
    }

    #[test]
    fn wer_counts_each_kind_of_error() {
        // one substitution in five words
        assert!((word_error_rate("what is my account balance", "what is my count balance") - 0.2).abs() < 1e-9);
        // one deletion
        assert!((word_error_rate("what is my account balance", "what is account balance") - 0.2).abs() < 1e-9);
        // one insertion
        assert!((word_error_rate("what is my account balance", "what is my bank account balance") - 0.2).abs() < 1e-9);
        // nothing recognized: every word deleted
        assert_eq!(word_error_rate("what is my account balance", ""), 1.0);
        // insertions can push WER above 1
        assert_eq!(word_error_rate("yes", "yes yes yes"), 2.0);
        assert_eq!(word_error_rate("", ""), 0.0);
    }

    #[test]
    fn jfk_transcript_with_whisper_style_punctuation_scores_zero() {
        let reference = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";
        let hyp = " And so, my fellow Americans, ask not what your country can do for you; ask what you can do for your country!";
        assert_eq!(word_error_rate(reference, hyp), 0.0);
    }

    #[test]
    fn cer_ignores_chinese_and_ascii_punctuation_and_spaces() {
        assert_eq!(char_error_rate("我想查一下话费余额", "我想查一下话费余额。"), 0.0);
        assert_eq!(char_error_rate("我想查一下话费余额", "我想 查一下，话费余额？"), 0.0);
        assert_eq!(char_error_rate("我要转人工", "我要转人工!"), 0.0);
    }

    #[test]
    fn cer_counts_character_edits() {
        // one wrong character of nine (a homophone: 花 for 话)
        assert!((char_error_rate("我想查一下话费余额", "我想查一下花费余额") - 1.0 / 9.0).abs() < 1e-9);
        // two missing characters of five
        assert!((char_error_rate("我要转人工", "我要转") - 0.4).abs() < 1e-9);
        assert_eq!(char_error_rate("我要转人工", ""), 1.0);
    }

    #[test]
    fn counts_pool_over_clips() {
        let mut total = ErrorCount::words("a b c d", "a b c d");
        total.add(ErrorCount::words("e f", "e"));
        assert_eq!(total, ErrorCount { edits: 1, reference_len: 6 });
        assert!((total.rate() - 1.0 / 6.0).abs() < 1e-9);
    }
}
