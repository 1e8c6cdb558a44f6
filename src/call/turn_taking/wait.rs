//! How long a silence ends the caller's turn, from what they have said so far.
//!
//! A fixed wait is either too slow for "What is my balance?" or too quick for someone reading
//! out an account number with pauses between groups. The transcript so far tells them apart:
//! a sentence that ends as a question or a request is complete; a trailing filler ("um",
//! "嗯", "那个") or digits mean more is coming.

use crate::media::endpoint::EndpointConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// A complete question or request: answer soon.
    Complete,
    /// Digits or a hesitation at the end: the caller is not done.
    Hesitant,
    /// Nothing either way: the configured wait.
    Normal,
}

/// English fillers; compared as whole last words, case-insensitively.
const EN_FILLERS: &[&str] = &["um", "uh", "uhm", "umm", "erm", "er", "hmm", "mm", "so", "and", "but", "because", "or", "the", "a", "my", "to", "is"];
/// Mandarin fillers and words that cannot end a sentence.
const ZH_FILLERS: &[&str] = &["嗯", "呃", "额", "那个", "这个", "就是", "然后", "还有", "和", "跟", "我的", "是"];
/// Endings of a whole Mandarin request (whisper often writes one without punctuation): a
/// question particle, or the thing asked about as the last word ("我想查一下话费").
const ZH_COMPLETE_ENDINGS: &[&str] = &["吗", "呢", "吧", "么", "话费", "余额", "流量", "套餐", "宽带", "人工", "客服", "谢谢", "取消", "退款", "投诉"];

/// Classifies the transcript of an utterance so far.
pub fn classify(text: &str) -> WaitKind {
    let t = text.trim().trim_end_matches(['…', '-', '—']);
    if t.is_empty() {
        return WaitKind::Normal;
    }
    let last_char = t.chars().last().unwrap_or(' ');
    let body = t.trim_end_matches(|c: char| c.is_ascii_punctuation() || "，。？！、".contains(c));
    // Reading out a number: the last word is digits (or a spelled digit); commas and dashes
    // between groups say the same.
    let last_word = body.rsplit(|c: char| c.is_whitespace() || c == ',' || c == '，').next().unwrap_or("");
    let spelled = ["zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "一", "二", "三", "四", "五", "六", "七", "八", "九", "零", "幺"];
    let lw = last_word.to_lowercase();
    if !lw.is_empty() && (lw.chars().all(|c| c.is_ascii_digit() || c == '-') || spelled.contains(&lw.as_str()) || body.chars().last().is_some_and(|c| c.is_ascii_digit() || "零幺一二三四五六七八九".contains(c))) {
        return WaitKind::Hesitant;
    }
    if EN_FILLERS.contains(&lw.as_str()) || ZH_FILLERS.iter().any(|f| body.ends_with(f)) || last_char == ',' || last_char == '，' || t.ends_with("...") {
        return WaitKind::Hesitant;
    }
    if matches!(last_char, '?' | '？' | '!' | '！' | '.' | '。') || ZH_COMPLETE_ENDINGS.iter().any(|e| body.ends_with(e)) {
        return WaitKind::Complete;
    }
    WaitKind::Normal
}

/// The silence wait for an utterance whose transcript so far is `text`.
pub fn silence_wait(text: &str, cfg: &EndpointConfig) -> (WaitKind, u32) {
    let kind = classify(text);
    let ms = match kind {
        WaitKind::Complete => cfg.complete_silence_ms,
        WaitKind::Hesitant => cfg.hesitant_silence_ms,
        WaitKind::Normal => cfg.end_silence_ms,
    };
    (kind, ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_requests_are_complete() {
        for t in ["What is my balance?", "I want to cancel my contract.", "Give me an agent!", "我想查一下话费", "我的余额是多少？", "可以帮我取消吗", "查流量。"] {
            assert_eq!(classify(t), WaitKind::Complete, "{t}");
        }
    }

    #[test]
    fn digits_and_fillers_mean_more_is_coming() {
        for t in ["My account number is 4 5 6", "It's 138-0013", "five, six, seven", "I want to um", "Uh,", "So my bill is, uh", "我的号码是一三八", "嗯", "我想问一下那个", "My number is 555..."] {
            assert_eq!(classify(t), WaitKind::Hesitant, "{t}");
        }
    }

    #[test]
    fn other_text_keeps_the_configured_wait() {
        let cfg = EndpointConfig::default();
        for t in ["", "I would like", "我想"] {
            assert_eq!(silence_wait(t, &cfg), (WaitKind::Normal, cfg.end_silence_ms), "{t}");
        }
        assert_eq!(silence_wait("What is my balance?", &cfg).1, cfg.complete_silence_ms);
        assert_eq!(silence_wait("123", &cfg).1, cfg.hesitant_silence_ms);
    }
}
