//! Cuts a token stream into speakable sentence chunks (sans-IO).
//!
//! Tokens arrive a few characters at a time; the caller should hear the first sentence while
//! the LLM is still writing the second, so a chunk is released as soon as its sentence is
//! complete. Markdown is stripped on the way (a speech synthesizer would read "asterisk"), and
//! the whole reply is bounded: past `max_chars` nothing more is released, and what was released
//! always ends at a sentence boundary.

/// A sentence with no end mark is still released at this length (at a comma or a space), so a
/// model that never punctuates cannot hold the caller in silence.
const MAX_CHUNK_CHARS: usize = 160;

#[derive(Debug)]
pub struct SpeechChunker {
    buf: String,
    max_chars: usize,
    released: usize,
    /// The reply hit `max_chars`: everything after is dropped.
    full: bool,
    /// Inside a ``` code block: dropped entirely.
    in_code: bool,
}

impl SpeechChunker {
    pub fn new(max_chars: usize) -> Self {
        SpeechChunker { buf: String::new(), max_chars, released: 0, full: false, in_code: false }
    }

    /// True once the length bound was reached: the caller may stop the LLM.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// Feeds a piece of text; returns the chunks it completed.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        if self.full {
            return Vec::new();
        }
        self.buf.push_str(delta);
        let mut out = Vec::new();
        while let Some(end) = self.boundary(false) {
            let sentence: String = self.buf.drain(..end).collect();
            if let Some(c) = self.release(&sentence) {
                out.push(c);
            }
            if self.full {
                break;
            }
        }
        out
    }

    /// The stream ended: the rest is the last chunk (if anything speakable is left).
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.buf);
        if self.full {
            return None;
        }
        self.release(&rest)
    }

    /// Byte index just past the first complete sentence in the buffer. A '.' only ends an
    /// English sentence when followed by whitespace (so "3.2" and "e.g" survive); at the end of
    /// the buffer the next token decides, unless `at_end`.
    fn boundary(&self, at_end: bool) -> Option<usize> {
        let b = &self.buf;
        let mut chars = b.char_indices().peekable();
        let mut len = 0;
        let mut last_soft = None;
        while let Some((i, c)) = chars.next() {
            len += 1;
            let next = chars.peek().map(|(_, n)| *n);
            let end = i + c.len_utf8();
            match c {
                '。' | '！' | '？' | '；' | '…' | '\n' => return Some(end),
                // "1. " opening a line is a list marker, not the end of a sentence.
                '.' if b[..i].rsplit('\n').next().is_some_and(|l| !l.trim().is_empty() && l.trim().chars().all(|d| d.is_ascii_digit())) => {}
                '.' | '!' | '?' | ';' => match next {
                    Some(n) if n.is_whitespace() || n == '"' || n == '\'' || n == ')' => return Some(end),
                    None if at_end => return Some(end),
                    _ => {}
                },
                '，' | '、' | ',' | ' ' => last_soft = Some(end),
                _ => {}
            }
            if len >= MAX_CHUNK_CHARS {
                return Some(last_soft.unwrap_or(end));
            }
        }
        None
    }

    /// Cleans one sentence and counts it against the bound.
    fn release(&mut self, sentence: &str) -> Option<String> {
        let text = self.speakable(sentence);
        if text.is_empty() {
            return None;
        }
        let n = text.chars().count();
        if self.released + n > self.max_chars {
            self.full = true;
            // Never say nothing: a first sentence longer than the bound is cut at its last space.
            if self.released == 0 {
                let cut: String = text.chars().take(self.max_chars).collect();
                let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(a, _)| a).trim_end_matches([',', '，']).to_string();
                self.released = self.max_chars;
                return Some(format!("{cut}."));
            }
            return None;
        }
        self.released += n + 1;
        Some(text)
    }

    fn speakable(&mut self, sentence: &str) -> String {
        let mut kept = String::new();
        for line in sentence.split_inclusive('\n') {
            if line.trim_start().starts_with("```") {
                self.in_code = !self.in_code;
                continue;
            }
            if !self.in_code {
                kept.push_str(line);
            }
        }
        strip_markdown(&kept)
    }
}

/// Removes markdown a synthesizer would read out: emphasis, headings, list markers, code ticks,
/// links (the link text stays), and collapses whitespace.
pub fn strip_markdown(s: &str) -> String {
    let mut t = s.trim().to_string();
    // Leading list markers and heading marks: "- ", "* ", "1. ", "## ".
    loop {
        let before = t.len();
        t = t.trim_start_matches(['#', '>']).trim_start().to_string();
        for m in ["- ", "* ", "+ ", "• "] {
            if let Some(r) = t.strip_prefix(m) {
                t = r.to_string();
            }
        }
        let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && digits < 3 && t[digits..].starts_with(". ") {
            t = t[digits + 2..].to_string();
        }
        if t.len() == before {
            break;
        }
    }
    // [text](url) → text
    let mut out = String::with_capacity(t.len());
    let mut rest = t.as_str();
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        match after.find("](").and_then(|close| after[close + 2..].find(')').map(|end| (close, close + 2 + end))) {
            Some((close, end)) => {
                out.push_str(&rest[..open]);
                out.push_str(&after[..close]);
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    let out: String = out.chars().filter(|c| !matches!(c, '*' | '_' | '`' | '#' | '|' | '~')).collect();
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(c: &mut SpeechChunker, tokens: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        for t in tokens {
            out.extend(c.push(t));
        }
        out.extend(c.finish());
        out
    }

    #[test]
    fn releases_each_sentence_as_soon_as_it_is_complete() {
        let mut c = SpeechChunker::new(400);
        assert!(c.push("Your balance is").is_empty());
        assert!(c.push(" forty yuan.").is_empty(), "a '.' at the end waits for the next token");
        assert_eq!(c.push(" Anything"), vec!["Your balance is forty yuan."]);
        assert_eq!(feed(&mut c, &[" else?"]), vec!["Anything else?"]);
    }

    #[test]
    fn chinese_punctuation_cuts_and_decimals_do_not() {
        let mut c = SpeechChunker::new(400);
        let out = feed(&mut c, &["您的余额是", "四十二元。还有", "什么可以帮您？", "You have 3.2 GB left. ", "Bye"]);
        assert_eq!(out, vec!["您的余额是四十二元。", "还有什么可以帮您？", "You have 3.2 GB left.", "Bye"]);
    }

    #[test]
    fn markdown_is_not_spoken() {
        let mut c = SpeechChunker::new(400);
        let out = feed(&mut c, &["## Plans\n", "- **Smart** plan: see [our site](http://x.y).\n", "```\ncode();\n```\n", "1. Call us."]);
        assert_eq!(out, vec!["Plans", "Smart plan: see our site.", "Call us."]);
    }

    #[test]
    fn an_oversized_reply_is_cut_at_a_sentence_boundary() {
        let mut c = SpeechChunker::new(50);
        let out = feed(&mut c, &["One two three four five. ", "Six seven eight nine ten. ", "Eleven twelve thirteen. "]);
        assert_eq!(out, vec!["One two three four five.", "Six seven eight nine ten."]);
        assert!(c.is_full());
        let mut c = SpeechChunker::new(50);
        let out = feed(&mut c, &["One two three four five six seven eight nine ten eleven twelve thirteen fourteen."]);
        assert_eq!(out.len(), 1);
        assert!(out[0].chars().count() <= 51 && out[0].ends_with('.'), "{out:?}");
        assert!(c.is_full());
    }

    #[test]
    fn a_sentence_without_end_marks_is_still_released() {
        let mut c = SpeechChunker::new(1000);
        let long = "word, ".repeat(40);
        let out = c.push(&long);
        assert!(!out.is_empty() && out[0].chars().count() <= MAX_CHUNK_CHARS);
    }
}
