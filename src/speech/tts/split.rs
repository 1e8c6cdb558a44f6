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

/// The piece a caller waits for in silence is cut at a phrase boundary near this weight
/// (about 1.3 s of speech). Synthesis time grows with the audio made: on 2 cores Kokoro takes
/// about 2 s for a 4 s Mandarin clause and Piper about 0.2 s for a 3.5 s English one.
pub const OPENING_TARGET_WEIGHT: usize = 12;

/// `text` cut in two at the phrase boundary that best fits `target` (its opening part weighs
/// 0.5× to 1.5× `target`, and the rest is worth speaking on its own): the most natural kind of
/// boundary first, then the one nearest the target. A phrase may end before "of", "to",
/// "which", a preposition or an adverb, never after "the", a number or 的, never before a
/// measure word or a particle. `None` when there is no such boundary.
pub fn phrase_prefix(text: &str, target: usize) -> Option<(&str, &str)> {
    let (lo, hi) = (target / 2, target * 3 / 2);
    phrase_boundaries(text)
        .into_iter()
        .filter(|&(at, _)| (lo..=hi).contains(&weight(&text[..at])) && weight(&text[at..]) >= 2 * MIN_WEIGHT)
        .max_by_key(|&(at, quality)| (quality, std::cmp::Reverse(weight(&text[..at]).abs_diff(target))))
        .map(|(at, _)| text.split_at(at))
}

/// Where `text` may be cut between two phrases: (byte offset, quality), quality 3 after a
/// punctuation mark, 2 before a word that starts a phrase, 1 between two words that do not
/// hold together. Chinese text is cut between jieba words, by their part of speech; other
/// text between words separated by spaces, only after punctuation or before a word that
/// starts a phrase: without parts of speech "your own | phone" looks like "the phone | to".
fn phrase_boundaries(text: &str) -> Vec<(usize, u8)> {
    if text.chars().any(|c| is_cjk(c) && c.is_alphanumeric()) {
        chinese_phrase_boundaries(text)
    } else {
        spaced_phrase_boundaries(text)
    }
}

/// Words that bind to the word after them: a phrase never ends on one.
const BINDS_FORWARD_EN: &[&str] = &[
    "a", "an", "the", "your", "my", "our", "their", "his", "her", "its", "this", "these", "those",
    "of", "to", "for", "with", "from", "on", "in", "at", "by", "into", "about", "per", "as", "than",
    "within", "without", "through", "during", "between", "over", "under", "after", "before",
    "until", "since", "via", "like", "near", "across", "around", "against", "toward", "towards",
    "and", "or", "but", "is", "are", "was", "were", "be", "been", "will", "would", "can", "could",
    "should", "may", "might", "must", "have", "has", "had", "do", "does", "did", "not", "no", "i",
    "you", "we", "they", "he", "she", "it", "i'm", "you're", "we're", "it's", "that's", "there's",
    "let's", "i'll", "we'll", "very", "more", "most", "each", "every", "some", "any", "all", "so",
    "if", "when", "which", "that", "who", "mister", "miss", "mr.", "mrs.", "ms.", "dr.",
];
/// Words a new phrase starts with.
const STARTS_PHRASE_EN: &[&str] = &[
    "and", "but", "or", "so", "which", "that", "who", "where", "because", "since", "while", "when",
    "if", "then", "to", "for", "with", "from", "on", "in", "at", "by", "of", "before", "after",
    "until", "unless", "though", "although", "once",
];

fn spaced_phrase_boundaries(text: &str) -> Vec<(usize, u8)> {
    let words: Vec<(usize, &str)> = text
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
        .collect();
    let bare = |w: &str| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '.').to_lowercase();
    words
        .windows(2)
        .filter_map(|pair| {
            let ((_, prev), (at, next)) = (pair[0], pair[1]);
            let quality = if prev.ends_with([',', ';', ':', '—', '–']) {
                3
            } else if BINDS_FORWARD_EN.contains(&bare(prev).as_str()) || prev.chars().any(|c| c.is_ascii_digit()) {
                return None; // "the | bill", "57 | dollars"
            } else if STARTS_PHRASE_EN.contains(&bare(next).as_str()) {
                2
            } else {
                return None;
            };
            Some((at, quality))
        })
        .collect()
}

/// Chinese words a new phrase starts with, beside prepositions, conjunctions and adverbs.
const STARTS_PHRASE_ZH: &[&str] = &["已经", "可以", "会", "将", "正在", "需要", "请", "能"];
/// Particles that end the word before them, whatever jieba tagged them.
const PARTICLES_ZH: &[&str] = &["的", "了", "吗", "呢", "吧", "啊", "地", "得", "着", "过"];

fn chinese_phrase_boundaries(text: &str) -> Vec<(usize, u8)> {
    let words = super::zh_g2p::tagged_words(text);
    let is_mark = |w: &str| !w.chars().any(char::is_alphanumeric);
    words
        .windows(2)
        .filter_map(|pair| {
            let ((ps, pe, ptag), (ns, ne, ntag)) = (pair[0], pair[1]);
            let (prev, next) = (&text[ps..pe], &text[ns..ne]);
            if is_mark(next) {
                return None; // punctuation stays with the words it ends
            }
            if is_mark(prev) {
                return Some((ns, 3));
            }
            let next_holds = PARTICLES_ZH.contains(&next) || ["u", "y", "f", "q", "k", "m"].iter().any(|t| ntag.starts_with(t));
            // A preposition, conjunction, adverb or 的 binds to what follows it (a number to
            // its measure word: see `next_holds`).
            let prev_binds = ["p", "c", "d", "uj", "uv", "ud"].iter().any(|t| ptag.starts_with(t))
                || STARTS_PHRASE_ZH.contains(&prev) // 会, 可以, 请: they lead the phrase they start
                || (prev.is_ascii() && next.is_ascii());
            if next_holds || prev_binds {
                return None;
            }
            let starts = STARTS_PHRASE_ZH.contains(&next) || ["p", "c", "d"].iter().any(|t| ntag.starts_with(t)) || ptag == "ul";
            Some((ns, if starts { 2 } else { 1 }))
        })
        .collect()
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

/// How much speech a piece holds: letters and digits count 1, CJK ideographs 2 (about nine
/// to a second of speech in either language).
pub fn weight(piece: &str) -> usize {
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
    fn a_phrase_is_cut_where_speech_may_pause_near_the_target() {
        use super::phrase_prefix;
        for (t, target, want) in [
            ("I can see a payment of 57 dollars from March the third, ", 12, ("I can see a payment ", "of 57 dollars from March the third, ")),
            ("Dial 45 from your own phone to change your voicemail code, ", 16, ("Dial 45 from your own phone ", "to change your voicemail code, ")),
            ("Please make sure that the technician can get into the building on Thursday morning. ", 12, ("Please make sure ", "that the technician can get into the building on Thursday morning. ")),
            ("我查到您在三月三号缴费57元，", 12, ("我查到您", "在三月三号缴费57元，")),
            // A topic and its comment are two phrases.
            ("您的话费余额是三十五元。", 12, ("您的话费余额", "是三十五元。")),
            ("维修单25号已经约好五月十二号上午九点到十二点上门，", 24, ("维修单25号已经约好五月十二号", "上午九点到十二点上门，")),
        ] {
            assert_eq!(phrase_prefix(t, target), Some(want), "{t}");
        }
        // No boundary near the target: not cut (words without a phrase start, one long word).
        assert_eq!(phrase_prefix("Dial 45 from your own phone to change your voicemail code, ", 12), None);
        assert_eq!(phrase_prefix("Supercalifragilisticexpialidocious-antidisestablishmentarianism", 12), None);
        // Never after "the", "your", a number, 的, 在 or an adverb; never before a measure word or 的.
        for t in [
            "Please make sure that the technician has access to the building on Thursday morning. ",
            "Your new router will arrive within three working days by courier. ",
            "您的畅享套餐每月包含二十个G的国内流量和五百分钟通话、",
            "维修单25号已经约好五月十二号上午九点到十二点上门，",
            "我们会在二十四小时之内给您回电话。",
        ] {
            for target in [8, 12, 16, 24, 32] {
                let Some((head, tail)) = phrase_prefix(t, target) else { continue };
                assert_eq!(format!("{head}{tail}"), t);
                let last = head.split_whitespace().last().unwrap_or("").to_lowercase();
                assert!(!["the", "your", "to", "and", "by", "within"].contains(&last.as_str()), "{head} | {tail}");
                assert!(!head.ends_with(['的', '在', '和', '会']) && !head.ends_with("已经"), "{head} | {tail}");
                assert!(!head.ends_with(|c: char| c.is_ascii_digit()), "{head} | {tail}");
                assert!(!tail.starts_with(['的', '个', '号', '了']), "{head} | {tail}");
            }
        }
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
