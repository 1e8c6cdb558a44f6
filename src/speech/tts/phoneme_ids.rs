//! Piper's text front end without I/O: the voice's `.onnx.json` (phoneme table, sample rate,
//! inference scales), clause splitting, and the IPA-string → model-input-id mapping.
//!
//! Piper voices are trained on espeak-ng IPA with clause punctuation kept, one id per Unicode
//! scalar, framed as `^ _ p1 _ p2 _ … pn _ $` (begin, pad after every symbol, end). The
//! upstream phonemizer gets the punctuation from a patched espeak-ng
//! (`espeak_TextToPhonemesWithTerminator`), which the stock 1.52 library lacks, so the text is
//! split into clauses here and each clause's punctuation is put back after its phonemes.

use std::collections::HashMap;

use serde::Deserialize;

/// Start-of-utterance symbol in every piper phoneme table.
const BOS: char = '^';
/// End-of-utterance symbol.
const EOS: char = '$';
/// Padding symbol, interleaved after every id (the models were trained that way).
const PAD: char = '_';
/// Punctuation that ends a clause and that piper voices have ids for.
const CLAUSE_PUNCTUATION: [char; 6] = [',', ';', ':', '.', '?', '!'];

/// What the runtime needs from a voice's `.onnx.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceConfig {
    pub sample_rate: u32,
    /// espeak-ng voice the model's phonemes were produced with ("en-us").
    pub espeak_voice: String,
    pub noise_scale: f32,
    pub length_scale: f32,
    pub noise_w: f32,
    ids: HashMap<char, Vec<i64>>,
    bos: Vec<i64>,
    eos: Vec<i64>,
    pad: Vec<i64>,
}

#[derive(Deserialize)]
struct RawConfig {
    audio: RawAudio,
    espeak: RawEspeak,
    #[serde(default)]
    inference: RawInference,
    phoneme_type: Option<String>,
    phoneme_id_map: HashMap<String, Vec<i64>>,
}

#[derive(Deserialize)]
struct RawAudio {
    sample_rate: u32,
}

#[derive(Deserialize)]
struct RawEspeak {
    voice: String,
}

/// Piper's own defaults, used when a voice file leaves them out.
#[derive(Deserialize)]
#[serde(default)]
struct RawInference {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

impl Default for RawInference {
    fn default() -> Self {
        RawInference { noise_scale: 0.667, length_scale: 1.0, noise_w: 0.8 }
    }
}

impl VoiceConfig {
    /// Parses a piper `.onnx.json`. Errors say what is wrong, for a message naming the file.
    pub fn from_json(text: &str) -> Result<VoiceConfig, String> {
        let raw: RawConfig = serde_json::from_str(text).map_err(|e| format!("not a piper voice config: {e}"))?;
        if let Some(kind) = raw.phoneme_type.as_deref() {
            if kind != "espeak" {
                return Err(format!("phoneme_type {kind:?} is not supported (only \"espeak\")"));
            }
        }
        if raw.audio.sample_rate == 0 {
            return Err("audio.sample_rate is 0".into());
        }
        let mut ids = HashMap::with_capacity(raw.phoneme_id_map.len());
        for (symbol, id) in raw.phoneme_id_map {
            let mut chars = symbol.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if !id.is_empty() => {
                    ids.insert(c, id);
                }
                _ => return Err(format!("phoneme_id_map entry {symbol:?} is not one symbol with ids")),
            }
        }
        let special = |c: char| ids.get(&c).cloned().ok_or_else(|| format!("phoneme_id_map lacks {c:?}"));
        Ok(VoiceConfig {
            sample_rate: raw.audio.sample_rate,
            espeak_voice: raw.espeak.voice,
            noise_scale: raw.inference.noise_scale,
            length_scale: raw.inference.length_scale,
            noise_w: raw.inference.noise_w,
            bos: special(BOS)?,
            eos: special(EOS)?,
            pad: special(PAD)?,
            ids,
        })
    }

    /// `[noise_scale, length_scale, noise_w]`, the model's `scales` input.
    pub fn scales(&self) -> [f32; 3] {
        [self.noise_scale, self.length_scale, self.noise_w]
    }

    /// Model input ids for a sentence's phonemes, and how many symbols had no id (skipped, as
    /// piper does: a stray symbol must not cost the whole sentence).
    pub fn ids(&self, phonemes: &str) -> (Vec<i64>, usize) {
        let mut out = Vec::with_capacity(2 * phonemes.chars().count() + 3);
        out.extend_from_slice(&self.bos);
        out.extend_from_slice(&self.pad);
        let mut skipped = 0;
        for c in phonemes.chars() {
            match self.ids.get(&c) {
                Some(id) => {
                    out.extend_from_slice(id);
                    out.extend_from_slice(&self.pad);
                }
                None => skipped += 1,
            }
        }
        out.extend_from_slice(&self.eos);
        (out, skipped)
    }
}

/// One clause of a sentence: its words, and the punctuation that ended it (if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause<'a> {
    pub text: &'a str,
    pub punctuation: Option<char>,
}

/// Splits a sentence at clause punctuation followed by whitespace or the end, so "35.5" and
/// "1,000" stay whole. Clauses with no letters or digits are dropped (their punctuation kept
/// on the previous clause is not worth a pause of its own).
pub fn split_clauses(sentence: &str) -> Vec<Clause<'_>> {
    let mut clauses = Vec::new();
    let mut start = 0;
    let mut chars = sentence.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let at_boundary = chars.peek().is_none_or(|&(_, next)| next.is_whitespace());
        if CLAUSE_PUNCTUATION.contains(&c) && at_boundary {
            push_clause(&mut clauses, &sentence[start..i], Some(c));
            start = i + c.len_utf8();
        }
    }
    push_clause(&mut clauses, &sentence[start..], None);
    clauses
}

fn push_clause<'a>(clauses: &mut Vec<Clause<'a>>, text: &'a str, punctuation: Option<char>) {
    let text = text.trim();
    if text.chars().any(char::is_alphanumeric) {
        clauses.push(Clause { text, punctuation });
    }
}

/// Joins the clauses' IPA into the string piper was trained on: phonemes, the clause's
/// punctuation, one space between clauses. espeak marks words read in another language with
/// "(fr)"…"(en)" flags; they are not phonemes and are removed.
pub fn join_clause_phonemes(clauses: &[(String, Option<char>)]) -> String {
    let mut out = String::new();
    for (ipa, punctuation) in clauses {
        let ipa = strip_language_flags(ipa.trim());
        if ipa.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&ipa);
        if let Some(p) = punctuation {
            out.push(*p);
        }
    }
    out
}

fn strip_language_flags(ipa: &str) -> String {
    let mut out = String::with_capacity(ipa.len());
    let mut depth = 0usize;
    for c in ipa.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"{
        "audio": {"sample_rate": 22050},
        "espeak": {"voice": "en-us"},
        "inference": {"noise_scale": 0.5, "length_scale": 1.1, "noise_w": 0.7},
        "phoneme_type": "espeak",
        "phoneme_id_map": {"_": [0], "^": [1], "$": [2], " ": [3], ",": [8], ".": [10],
                           "?": [13], "h": [20], "a": [14], "ɪ": [74], "ˈ": [120]}
    }"#;

    #[test]
    fn ids_are_framed_and_padded_like_piper() {
        let cfg = VoiceConfig::from_json(SMALL).unwrap();
        let (ids, skipped) = cfg.ids("hˈaɪ.");
        assert_eq!(ids, vec![1, 0, 20, 0, 120, 0, 14, 0, 74, 0, 10, 0, 2]);
        assert_eq!(skipped, 0);
        assert_eq!(cfg.scales(), [0.5, 1.1, 0.7]);
        assert_eq!((cfg.sample_rate, cfg.espeak_voice.as_str()), (22050, "en-us"));
    }

    #[test]
    fn unknown_symbols_are_skipped_and_counted() {
        let cfg = VoiceConfig::from_json(SMALL).unwrap();
        let (ids, skipped) = cfg.ids("hŋa");
        assert_eq!(ids, vec![1, 0, 20, 0, 14, 0, 2]);
        assert_eq!(skipped, 1);
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        assert!(VoiceConfig::from_json("{}").unwrap_err().contains("not a piper voice config"));
        let no_pad = SMALL.replace(r#""_": [0], "#, "");
        assert!(VoiceConfig::from_json(&no_pad).unwrap_err().contains("'_'"));
        let two_chars = SMALL.replace(r#""h": [20]"#, r#""hh": [20]"#);
        assert!(VoiceConfig::from_json(&two_chars).unwrap_err().contains("\"hh\""));
        let other = SMALL.replace(r#""phoneme_type": "espeak""#, r#""phoneme_type": "text""#);
        assert!(VoiceConfig::from_json(&other).unwrap_err().contains("not supported"));
    }

    #[test]
    fn clauses_split_at_punctuation_but_not_inside_numbers() {
        let got = split_clauses("Your bill is 35.5 dollars, or 1,000 yen; pay now?");
        let texts: Vec<_> = got.iter().map(|c| (c.text, c.punctuation)).collect();
        assert_eq!(
            texts,
            vec![("Your bill is 35.5 dollars", Some(',')), ("or 1,000 yen", Some(';')), ("pay now", Some('?'))]
        );
        assert_eq!(split_clauses("Hello")[0], Clause { text: "Hello", punctuation: None });
        assert!(split_clauses(" ... ").is_empty());
    }

    #[test]
    fn clause_phonemes_join_with_punctuation_and_lose_language_flags() {
        let joined = join_clause_phonemes(&[
            ("həlˈoʊ".into(), Some(',')),
            ("(fr)bɔ̃ʒˈuʁ(en) ðˈɛɹ".into(), Some('.')),
            ("".into(), Some('!')),
        ]);
        assert_eq!(joined, "həlˈoʊ, bɔ̃ʒˈuʁ ðˈɛɹ.");
    }
}
