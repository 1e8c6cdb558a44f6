//! Per-turn grounding: the playbook's answers as an FAQ, ranked against what the caller said
//! with BM25 (sans-IO).
//!
//! The LLM may only quote figures from the facts it is given; these entries are where prices,
//! plans and procedures come from. English is tokenized into words, Chinese into character
//! bigrams (no segmenter needed, and bigrams carry most of the meaning of short queries).

use crate::brain::playbook::{IntentAction, Playbook};
use crate::brain::text;
use std::collections::HashMap;

const K1: f32 = 1.2;
const B: f32 = 0.75;

/// One fact the LLM may use, in every playbook language.
#[derive(Debug, Clone)]
pub struct FaqEntry {
    pub intent: String,
    /// language → answer text
    pub text: Vec<(String, String)>,
    terms: HashMap<String, f32>,
    len: f32,
}

impl FaqEntry {
    pub fn text(&self, lang: &str) -> &str {
        self.text
            .iter()
            .find(|(l, _)| l == lang)
            .or_else(|| self.text.first())
            .map_or("", |(_, t)| t.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct Faq {
    entries: Vec<FaqEntry>,
    df: HashMap<String, f32>,
    avg_len: f32,
}

/// Terms of a text: lowercase words for alphabetic scripts, bigrams (and single characters,
/// for one-character queries) for Chinese.
pub fn terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for clause in text::normalize(s) {
        for word in clause.split(' ') {
            if text::has_cjk(word) {
                let chars: Vec<char> = word.chars().collect();
                for w in chars.windows(2) {
                    let gram: String = w.iter().collect();
                    if !CJK_STOP_BIGRAMS.contains(&gram.as_str()) {
                        out.push(gram);
                    }
                }
                if chars.len() == 1 {
                    out.push(word.to_string());
                }
            } else if word.chars().count() > 1 && !STOPWORDS.contains(&word) {
                out.push(word.to_string());
            }
        }
    }
    out
}

/// Bigrams of function words that would match answers by accident ("一个" in "换一个套餐").
const CJK_STOP_BIGRAMS: &[&str] = &["一个", "我想", "请问", "什么", "可以", "怎么", "一下", "您的", "我的", "还有"];

const STOPWORDS: &[&str] = &[
    "the", "a", "an", "is", "are", "to", "of", "and", "or", "my", "me", "i", "you", "your", "it", "in", "on", "for",
    "what", "how", "do", "does", "can", "please", "with", "this", "that", "be", "at", "im", "there", "anything",
    "else", "help", "would", "like",
];

impl Faq {
    /// Every answer the playbook gives (intents that answer, and their slot options), indexed
    /// by their keywords and their text in every language.
    pub fn from_playbook(pb: &Playbook) -> Faq {
        let mut entries = Vec::new();
        for it in pb.intents() {
            if it.action != IntentAction::Answer {
                continue;
            }
            let kw: Vec<&str> = it.keywords.iter().map(|k| k.norm.as_str()).collect();
            entries.push(entry(pb, &it.name, &kw, |l| it.answer.get(l).to_string()));
            if let Some(slot) = &it.slot {
                for o in &slot.options {
                    let mut kw = kw.clone();
                    kw.extend(o.keywords.iter().map(|k| k.norm.as_str()));
                    entries.push(entry(pb, &format!("{}:{}", it.name, o.value), &kw, |l| o.answer.get(l).to_string()));
                }
            }
        }
        let mut df: HashMap<String, f32> = HashMap::new();
        for e in &entries {
            for t in e.terms.keys() {
                *df.entry(t.clone()).or_default() += 1.0;
            }
        }
        let avg_len = entries.iter().map(|e| e.len).sum::<f32>() / entries.len().max(1) as f32;
        Faq { entries, df, avg_len }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The `k` best entries for `query`, best first; entries sharing no term are never returned.
    pub fn retrieve(&self, query: &str, k: usize) -> Vec<&FaqEntry> {
        let q = terms(query);
        let n = self.entries.len() as f32;
        let mut scored: Vec<(f32, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| {
                let mut s = 0.0;
                for t in &q {
                    let Some(tf) = e.terms.get(t) else { continue };
                    let df = self.df.get(t).copied().unwrap_or(0.0);
                    let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                    s += idf * tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * e.len / self.avg_len));
                }
                (s > 0.0).then_some((s, i))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored.into_iter().take(k).map(|(_, i)| &self.entries[i]).collect()
    }
}

fn entry(pb: &Playbook, intent: &str, keywords: &[&str], text_in: impl Fn(&str) -> String) -> FaqEntry {
    let text: Vec<(String, String)> = pb.languages().iter().map(|l| (l.clone(), text_in(l))).collect();
    let mut tf: HashMap<String, f32> = HashMap::new();
    // Keywords are what callers say: they weigh double against the answer's own words.
    for k in keywords {
        for t in terms(k) {
            *tf.entry(t).or_default() += 2.0;
        }
    }
    for (_, t) in &text {
        for t in terms(t) {
            *tf.entry(t).or_default() += 1.0;
        }
    }
    let len = tf.values().sum();
    FaqEntry { intent: intent.to_string(), text, terms: tf, len }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faq() -> Faq {
        Faq::from_playbook(&Playbook::embedded().unwrap())
    }

    #[test]
    fn finds_the_answer_for_english_and_chinese_questions() {
        let f = faq();
        assert!(f.len() > 5);
        assert_eq!(f.retrieve("how much does roaming cost when I travel abroad", 3)[0].intent, "roaming");
        assert_eq!(f.retrieve("我想换一个套餐", 3)[0].intent, "plans");
        assert_eq!(f.retrieve("my modem light is red", 3)[0].intent.split(':').next(), Some("broadband"));
    }

    #[test]
    fn unrelated_words_retrieve_nothing_and_k_bounds_the_list() {
        let f = faq();
        assert!(f.retrieve("zebra xylophone", 3).is_empty());
        assert!(f.retrieve("data plan bill balance roaming", 2).len() <= 2);
    }
}
