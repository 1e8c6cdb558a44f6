//! Synthesized audio kept for lines that are said again and again (greeting, hold, bridging,
//! filler, apology, and the playbook's fixed replies), so they play with no synthesis delay.
//!
//! Keyed by (voice, language, sentence text): changing the voice or the speaking rate must not
//! replay old audio. Lines filled at startup are pinned; everything else is least-recently-used
//! within a budget of samples, so a chatty LLM brain cannot grow the cache without bound.

use std::collections::HashMap;
use std::sync::Arc;

use super::Lang;

/// The cache's identity of one line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Which voice produced it, e.g. "piper:en_US-joe-medium" or "espeak:en-us@165".
    pub voice: Arc<str>,
    pub lang: Lang,
    /// The sentence, trimmed (the trailing space a sentence splitter leaves does not matter).
    pub text: String,
}

impl CacheKey {
    pub fn new(voice: Arc<str>, lang: Lang, text: &str) -> CacheKey {
        CacheKey { voice, lang, text: text.trim().to_string() }
    }
}

struct Entry {
    pcm: Arc<[i16]>,
    pinned: bool,
    last_used: u64,
}

/// A bounded map from line to 16 kHz audio. Not thread-safe by itself (the owner wraps it).
pub struct AudioCache {
    entries: HashMap<CacheKey, Entry>,
    /// Samples the unpinned entries may hold together.
    budget_samples: usize,
    unpinned_samples: usize,
    clock: u64,
    pub hits: u64,
    pub misses: u64,
}

impl AudioCache {
    pub fn new(budget_samples: usize) -> AudioCache {
        AudioCache { entries: HashMap::new(), budget_samples, unpinned_samples: 0, clock: 0, hits: 0, misses: 0 }
    }

    pub fn get(&mut self, key: &CacheKey) -> Option<Arc<[i16]>> {
        self.clock += 1;
        match self.entries.get_mut(key) {
            Some(entry) => {
                entry.last_used = self.clock;
                self.hits += 1;
                Some(entry.pcm.clone())
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Stores a line. `pinned` lines (the known prompts) are never evicted; others are dropped
    /// oldest-first once the budget is exceeded. A line larger than the whole budget is not
    /// kept: it would only evict everything else.
    pub fn insert(&mut self, key: CacheKey, pcm: Arc<[i16]>, pinned: bool) {
        if !pinned && pcm.len() > self.budget_samples {
            return;
        }
        self.clock += 1;
        let entry = Entry { pcm, pinned, last_used: self.clock };
        if let Some(old) = self.entries.remove(&key) {
            if !old.pinned {
                self.unpinned_samples -= old.pcm.len();
            }
        }
        if !pinned {
            self.unpinned_samples += entry.pcm.len();
        }
        self.entries.insert(key, entry);
        while self.unpinned_samples > self.budget_samples {
            // Linear scan: the cache holds at most a few hundred lines and inserts are rare
            // next to the seconds of synthesis that produced them.
            let oldest = self
                .entries
                .iter()
                .filter(|(_, e)| !e.pinned)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone());
            let Some(oldest) = oldest else { break };
            if let Some(e) = self.entries.remove(&oldest) {
                self.unpinned_samples -= e.pcm.len();
            }
        }
    }

    /// Drops every line that is not pinned: what was said at run time, not the prompts.
    pub fn forget_unpinned(&mut self) {
        self.entries.retain(|_, e| e.pinned);
        self.unpinned_samples = 0;
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Samples held by all entries (pinned included): the cache's memory is twice this in bytes.
    pub fn samples(&self) -> usize {
        self.entries.values().map(|e| e.pcm.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> CacheKey {
        CacheKey::new("espeak:en-us@165".into(), Lang::En, text)
    }

    fn pcm(n: usize) -> Arc<[i16]> {
        vec![1i16; n].into()
    }

    #[test]
    fn hit_returns_the_same_audio_and_keys_ignore_outer_whitespace() {
        let mut c = AudioCache::new(100);
        c.insert(key("Hello. "), pcm(10), false);
        assert_eq!(c.get(&key("Hello.")).unwrap().len(), 10);
        assert!(c.get(&key("Goodbye.")).is_none());
        assert_eq!((c.hits, c.misses), (1, 1));
    }

    #[test]
    fn voice_and_language_are_part_of_the_key() {
        let mut c = AudioCache::new(100);
        c.insert(key("Hi."), pcm(10), false);
        assert!(c.get(&CacheKey::new("piper:en_US-joe-medium".into(), Lang::En, "Hi.")).is_none());
        assert!(c.get(&CacheKey::new("espeak:en-us@165".into(), Lang::Zh, "Hi.")).is_none());
    }

    #[test]
    fn least_recently_used_goes_first_and_pinned_lines_stay() {
        let mut c = AudioCache::new(30);
        c.insert(key("pinned"), pcm(50), true);
        c.insert(key("a"), pcm(10), false);
        c.insert(key("b"), pcm(10), false);
        c.insert(key("c"), pcm(10), false);
        c.get(&key("a")); // a is now more recent than b
        c.insert(key("d"), pcm(10), false);
        assert!(c.get(&key("b")).is_none(), "b was least recently used");
        for k in ["pinned", "a", "c", "d"] {
            assert!(c.get(&key(k)).is_some(), "{k}");
        }
        assert_eq!(c.samples(), 80);
    }

    #[test]
    fn a_line_larger_than_the_budget_is_not_kept_and_replacing_keeps_the_count_right() {
        let mut c = AudioCache::new(30);
        c.insert(key("huge"), pcm(31), false);
        assert!(c.is_empty());
        c.insert(key("a"), pcm(20), false);
        c.insert(key("a"), pcm(25), false);
        assert_eq!((c.len(), c.samples()), (1, 25));
    }
}
