//! Splitting a reply into sentence-sized pieces so the first one can be spoken while the rest is
//! still being synthesized.

/// Pieces shorter than this (letters/digits count 1, CJK ideographs 2) are merged into a
/// neighbour: speaking "OK." or "是，" alone adds a pause and odd prosody for no latency gain.
const MIN_WEIGHT: usize = 4;

/// Split `text` into sentence-like pieces, in order.
///
/// Pieces end after English `. ! ? ;` (when followed by a space, the end of text, a closing
/// quote or bracket, or Chinese text) and after Chinese `。！？；，` and line breaks. A period
/// inside a number (`3.5`), an address (`example.com`), an abbreviation (`Mr.`, `e.g.`) or an
/// initial (`J. Smith`) does not end a piece. Runs of punctuation and closing quotes stay with
/// the piece they end, and so does the whitespace after them, so the pieces concatenated give
/// back `text` exactly. Tiny fragments are merged into a neighbour. Text that is empty or only
/// whitespace yields no pieces.
pub fn split_sentences(text: &str) -> Vec<&str> {
    if text.trim().is_empty() {
        return Vec::new();
    }
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut ends: Vec<usize> = Vec::new(); // byte offsets where a piece ends
    let mut i = 0;
    while i < chars.len() {
        let (_, c) = chars[i];
        let next = chars.get(i + 1).map(|&(_, c)| c);
        let breaks = if is_cjk_terminator(c) || c == '\n' {
            true
        } else if matches!(c, '.' | '!' | '?' | ';') {
            let followed_ok = match next {
                None => true,
                Some(n) => n.is_whitespace() || is_closer(n) || is_terminator(n) || is_cjk(n),
            };
            followed_ok && !(c == '.' && period_is_not_an_end(&chars, i))
        } else {
            false
        };
        if !breaks {
            i += 1;
            continue;
        }
        // Swallow the rest of the punctuation run ("?!", "...", "。」"), then trailing spaces.
        let mut j = i + 1;
        while j < chars.len() && (is_terminator(chars[j].1) || is_closer(chars[j].1)) {
            j += 1;
        }
        while j < chars.len() && chars[j].1.is_whitespace() {
            j += 1;
        }
        let end = chars.get(j).map_or(text.len(), |&(b, _)| b);
        if end < text.len() {
            ends.push(end);
        }
        i = j;
    }
    ends.push(text.len());

    let mut pieces: Vec<&str> = Vec::with_capacity(ends.len());
    let mut start = 0;
    for end in ends {
        let piece = &text[start..end];
        if weight(piece) < MIN_WEIGHT && end < text.len() {
            continue; // keep `start`, so this fragment joins the next piece
        }
        pieces.push(piece);
        start = end;
    }
    // A tiny last piece is folded back into the one before it.
    if pieces.len() >= 2 && weight(pieces[pieces.len() - 1]) < MIN_WEIGHT {
        let last = pieces.pop().map_or(0, str::len);
        let prev = pieces.pop().unwrap_or("");
        let prev_start = prev.as_ptr() as usize - text.as_ptr() as usize;
        pieces.push(&text[prev_start..prev_start + prev.len() + last]);
    }
    pieces
}

/// A sentence heavier than this (about two seconds of English speech) is spoken in two pieces:
/// its first clause, then the rest.
const LONG_SENTENCE_WEIGHT: usize = 36;
/// The first clause must hold at least this much (three or four words), or it is not worth
/// the break in the voice.
const FIRST_CLAUSE_MIN_WEIGHT: usize = 10;

/// The pieces a reply is spoken in: [`split_sentences`], with each long sentence cut after its
/// first clause. Synthesis takes time in proportion to the audio it makes, and the caller waits
/// for the first piece only: "Your plan includes 20 GB of data, unlimited calls and 100 texts a
/// month." starts playing once "Your plan includes 20 GB of data, " is ready, and the rest is
/// synthesized while that plays. (Every long sentence is cut, not only the first of `text`: the
/// brain streams a reply as one sentence per message, and a line pre-rendered whole must be cut
/// the same way to be found in the cache.) A clause ends at a comma, colon or dash followed by a
/// space (never inside "1,000"); Chinese already splits at "，". The pieces concatenated give
/// back `text` exactly.
pub fn split_for_speech(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    for sentence in split_sentences(text) {
        match first_clause_end(sentence).filter(|_| weight(sentence) > LONG_SENTENCE_WEIGHT) {
            Some(cut) => pieces.extend([&sentence[..cut], &sentence[cut..]]),
            None => pieces.push(sentence),
        }
    }
    pieces
}

/// Byte offset just after the first clause of `sentence` (its punctuation and the space after
/// it), when both sides are worth speaking on their own.
fn first_clause_end(sentence: &str) -> Option<usize> {
    let chars: Vec<(usize, char)> = sentence.char_indices().collect();
    for (k, &(at, c)) in chars.iter().enumerate() {
        let spaced = chars.get(k + 1).is_some_and(|&(_, n)| n.is_whitespace());
        let clause_mark = matches!(c, ',' | ':' | '—' | '–' | '、' | '：') && (spaced || !c.is_ascii());
        if !clause_mark {
            continue;
        }
        let mut end = at + c.len_utf8();
        end += sentence[end..].len() - sentence[end..].trim_start().len();
        if weight(&sentence[..end]) >= FIRST_CLAUSE_MIN_WEIGHT && weight(&sentence[end..]) >= MIN_WEIGHT {
            return Some(end);
        }
    }
    None
}

/// Whether the '.' at `i` belongs to a number, initial or abbreviation rather than ending a
/// sentence. Only called when the '.' is followed by whitespace or the end, so "3.5" and
/// "example.com" never get here; this handles "Mr. Smith", "J. Smith", "approx. 3".
fn period_is_not_an_end(chars: &[(usize, char)], i: usize) -> bool {
    let mut k = i;
    while k > 0 && (chars[k - 1].1.is_alphanumeric() || chars[k - 1].1 == '.') {
        k -= 1;
    }
    let word: String = chars[k..i].iter().map(|&(_, c)| c).collect();
    if word.is_empty() {
        return false;
    }
    let single_initial = word.chars().count() == 1 && word.chars().all(|c| c.is_uppercase());
    const ABBREVIATIONS: &[&str] = &[
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "approx", "no",
        "inc", "ltd", "co", "dept", "est", "tel", "ext",
    ];
    let lower = word.to_lowercase();
    // "No." only abbreviates "number" when a digit follows ("No. 5"); otherwise it is a reply.
    if lower == "no" {
        return chars[i + 1..]
            .iter()
            .map(|&(_, c)| c)
            .find(|c| !c.is_whitespace())
            .is_some_and(|c| c.is_ascii_digit());
    }
    single_initial || ABBREVIATIONS.contains(&lower.as_str())
}

fn is_cjk_terminator(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '；' | '，' | '…')
}

fn is_terminator(c: char) -> bool {
    matches!(c, '.' | '!' | '?' | ';') || is_cjk_terminator(c)
}

fn is_closer(c: char) -> bool {
    matches!(
        c,
        '"' | '\'' | ')' | ']' | '}' | '”' | '’' | '」' | '』' | '）' | '】' | '》'
    )
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x2FA1F
        | 0x3000..=0x303F | 0xFF00..=0xFFEF)
}

/// How much speech a piece holds, roughly in syllables.
fn weight(piece: &str) -> usize {
    piece
        .chars()
        .map(|c| {
            if is_cjk(c) && c.is_alphanumeric() {
                2
            } else {
                usize::from(c.is_alphanumeric())
            }
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::split_for_speech;
    use super::split_sentences as split;

    #[test]
    fn a_long_sentence_is_spoken_from_its_first_clause() {
        let t = "Your plan includes 20 GB of data, unlimited calls and 1,000 texts a month. Anything else?";
        let p = split_for_speech(t);
        assert_eq!(p, vec!["Your plan includes 20 GB of data, ", "unlimited calls and 1,000 texts a month. ", "Anything else?"]);
        assert_eq!(p.concat(), t);
        // A short sentence, a short first clause, or no clause mark: sentences as before.
        for t in [
            "Your balance is 42 yuan. Anything else?",
            "Sure, I can help you with the roaming packages we have for travel in Asia this year.",
            "The fee of 1,000 yuan is charged when the contract ends before its twelfth month is over.",
        ] {
            assert_eq!(split_for_speech(t), split(t), "{t}");
        }
        // Mandarin: the split at "，" already makes short pieces; a long clause list is cut at "、".
        let t = "您的套餐包含每月三十个G的国内流量、五百分钟通话和一百条短信。";
        assert_eq!(split_for_speech(t), vec!["您的套餐包含每月三十个G的国内流量、", "五百分钟通话和一百条短信。"]);
    }

    #[test]
    fn english_sentences_split_at_end_punctuation_and_rejoin() {
        let t = "Your balance is 3.5 dollars. Would you like to pay now? Great! Let me check; one moment.";
        let p = split(t);
        assert_eq!(
            p,
            vec![
                "Your balance is 3.5 dollars. ",
                "Would you like to pay now? ",
                "Great! ",
                "Let me check; ",
                "one moment."
            ]
        );
        assert_eq!(p.concat(), t);
    }

    #[test]
    fn chinese_splits_at_full_width_punctuation_including_comma() {
        let t = "您好，请问有什么可以帮您？您的话费余额是三十五元。还需要别的吗？";
        let p = split(t);
        assert_eq!(
            p,
            vec![
                "您好，",
                "请问有什么可以帮您？",
                "您的话费余额是三十五元。",
                "还需要别的吗？"
            ]
        );
        assert_eq!(p.concat(), t);
    }

    #[test]
    fn numbers_addresses_abbreviations_and_initials_do_not_split() {
        for t in [
            "The rate is 3.5 percent and the fee is 1,000.25 dollars.",
            "Visit example.com for details.",
            "Mr. Smith and Dr. Jones will call you back.",
            "Ask for J. Smith in billing.",
            "Please hold, e.g. for a minute.",
            "It is plan No. 5 on the list.",
        ] {
            assert_eq!(split(t), vec![t], "{t}");
        }
    }

    #[test]
    fn tiny_fragments_merge_with_a_neighbour() {
        assert_eq!(
            split("OK. I will transfer you now."),
            vec!["OK. I will transfer you now."]
        );
        assert_eq!(split("是，我帮您查一下。"), vec!["是，我帮您查一下。"]);
        // A tiny tail joins the previous piece instead of being spoken alone.
        assert_eq!(
            split("Let me transfer you now. Bye!"),
            vec!["Let me transfer you now. Bye!"]
        );
        assert_eq!(
            split("No. That is not right."),
            vec!["No. That is not right."]
        );
    }

    #[test]
    fn punctuation_runs_quotes_and_mixed_scripts() {
        let t = "Really?! \"Yes, it is done.\" 好的。Thanks for calling...";
        let p = split(t);
        assert_eq!(
            p,
            vec![
                "Really?! ",
                "\"Yes, it is done.\" ",
                "好的。",
                "Thanks for calling..."
            ]
        );
        assert_eq!(p.concat(), t);
    }

    #[test]
    fn empty_and_whitespace_give_no_pieces_and_unpunctuated_text_is_one() {
        assert!(split("").is_empty());
        assert!(split("  \n ").is_empty());
        assert_eq!(split("hello there"), vec!["hello there"]);
        assert_eq!(
            split("  Hi there, how are you"),
            vec!["  Hi there, how are you"]
        );
    }
}
