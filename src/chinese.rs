//! Chinese script: whatever script text arrives in, the gateway matches and records Mandarin
//! in simplified characters.
//!
//! Whisper picks the script from its prompt and its training data, not from the speaker, so the
//! same sentence can come back in traditional characters; typed text and other brains can too.
//! The conversion is `fast2s`'s (a full character table, with the context rules for the
//! characters whose simplified form depends on the word), not a list of the words one
//! domain needs.

/// `text` with every traditional character in simplified form; everything else (Latin,
/// digits, punctuation, text already simplified) as it was.
pub fn to_simplified(text: &str) -> String {
    fast2s::convert(text)
}

#[cfg(test)]
mod tests {
    use super::to_simplified;

    #[test]
    fn traditional_text_comes_out_simplified_and_the_rest_is_untouched() {
        assert_eq!(to_simplified("我想查一下話費餘額"), "我想查一下话费余额");
        assert_eq!(to_simplified("我沒有聽清楚，請轉人工。"), "我没有听清楚，请转人工。");
        assert_eq!(to_simplified("已经是简体"), "已经是简体");
        assert_eq!(to_simplified("My 5G bill, please!"), "My 5G bill, please!");
        assert_eq!(to_simplified(""), "");
    }
}
