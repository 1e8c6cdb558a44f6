//! The trainer's view (`frontline review`): the caller utterances the playbook did not
//! understand, grouped by similarity, and a group turned into keywords of an intent (or a new
//! FAQ intent), written into the playbook file with its comments and layout kept.
//!
//! Sans-IO: utterances in, groups out; playbook text in, playbook text out. The command line
//! reads the records and validates the edited playbook before it writes it.

use super::text::normalize;
use std::collections::BTreeSet;

/// Two utterances belong together from this overlap of their words (or, in Chinese, of their
/// character pairs) on: the share of the shorter one's found in the other.
const SAME_GROUP: f64 = 0.55;

/// One utterance the playbook answered with its fallback.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Miss {
    pub call_id: String,
    pub turn: u32,
    pub heard: String,
    pub language: String,
}

/// Misses that say much the same thing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Group {
    pub misses: Vec<Miss>,
    /// What the group has in common, normalized as the playbook matches keywords: the words
    /// every member says, in the first one's order, else the shortest member.
    pub phrase: String,
}

/// What is compared: words, or character pairs in Chinese (which has no spaces).
fn features(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for clause in normalize(text) {
        for word in clause.split_whitespace() {
            let chars: Vec<char> = word.chars().collect();
            if chars.iter().any(|c| !c.is_ascii()) && chars.len() > 1 {
                out.extend(chars.windows(2).map(|w| w.iter().collect::<String>()));
            } else {
                out.insert(word.to_string());
            }
        }
    }
    out
}

fn similarity(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let smaller = a.len().min(b.len());
    if smaller == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / smaller as f64
}

/// Groups `misses` (oldest first): each joins the first group of its language whose first
/// member it resembles enough, else starts one. Biggest groups first; equal sizes keep the
/// order they were first seen in, so the numbering is the same on every run over the same
/// records.
pub fn group(misses: Vec<Miss>) -> Vec<Group> {
    let mut groups: Vec<(BTreeSet<String>, Vec<Miss>)> = Vec::new();
    for miss in misses {
        let f = features(&miss.heard);
        if f.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(first, members)| members[0].language == miss.language && similarity(first, &f) >= SAME_GROUP) {
            Some((_, members)) => members.push(miss),
            None => groups.push((f, vec![miss])),
        }
    }
    let mut groups: Vec<Group> = groups.into_iter().map(|(_, misses)| Group { phrase: common_phrase(&misses), misses }).collect();
    groups.sort_by(|a, b| b.misses.len().cmp(&a.misses.len()));
    groups
}

/// The words every member says, in the first member's order; the shortest member when they
/// share none (Chinese: the shortest member).
fn common_phrase(misses: &[Miss]) -> String {
    let norm = |m: &Miss| normalize(&m.heard).join(" ");
    let shortest = misses.iter().map(norm).min_by_key(|s| s.chars().count()).unwrap_or_default();
    if misses.iter().any(|m| !m.heard.is_ascii()) {
        return shortest;
    }
    let first = norm(&misses[0]);
    let others: Vec<BTreeSet<String>> = misses[1..].iter().map(|m| norm(m).split_whitespace().map(str::to_string).collect()).collect();
    let common: Vec<&str> = first.split_whitespace().filter(|w| others.iter().all(|o| o.contains(*w))).collect();
    if common.is_empty() {
        shortest
    } else {
        common.join(" ")
    }
}

/// `playbook` (TOML text) with `phrase` added to the `language` keywords of intent `intent`;
/// when there is no such intent and `answers` (language, text) are given, a new intent with
/// them (an FAQ entry). Comments, order and layout of the rest are kept. The result is not
/// validated here: the caller parses it as a playbook before writing it.
pub fn add_keyword(playbook: &str, intent: &str, language: &str, phrase: &str, answers: &[(String, String)]) -> Result<String, String> {
    use toml_edit::{value, Array, DocumentMut, Item, Table};
    let phrase = phrase.trim();
    if phrase.is_empty() {
        return Err("the phrase to add is empty".into());
    }
    let mut doc: DocumentMut = playbook.parse().map_err(|e| format!("the playbook is not valid TOML: {e}"))?;
    let intents = doc
        .get_mut("intents")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or("the playbook has no [[intents]]")?;
    let existing = intents.iter().position(|t| t.get("name").and_then(Item::as_str) == Some(intent));
    if let Some(table) = existing.and_then(|i| intents.get_mut(i)) {
        let keywords = table.entry("keywords").or_insert_with(|| {
            let mut t = Table::new();
            t.set_dotted(true);
            Item::Table(t)
        });
        let list = keywords
            .as_table_like_mut()
            .ok_or_else(|| format!("intent {intent:?}: keywords is not a table of languages"))?
            .entry(language)
            .or_insert(value(Array::new()));
        let array = list.as_array_mut().ok_or_else(|| format!("intent {intent:?}: keywords.{language} is not a list"))?;
        if array.iter().any(|v| v.as_str() == Some(phrase)) {
            return Err(format!("intent {intent:?} already has the keyword {phrase:?}"));
        }
        array.push(phrase);
    } else {
        if answers.is_empty() {
            return Err(format!("no intent {intent:?} in the playbook: name an existing one, or give --answer LANG=TEXT to add it as a new one"));
        }
        intents.push(new_intent(intent, language, phrase, answers));
    }
    Ok(doc.to_string())
}

/// An intent table: its name, one keyword, its answers (an FAQ entry).
fn new_intent(intent: &str, language: &str, phrase: &str, answers: &[(String, String)]) -> toml_edit::Table {
    use toml_edit::{value, Array, Item, Table};
    let mut table = Table::new();
    table.insert("name", value(intent));
    let mut keywords = Table::new();
    keywords.set_dotted(true);
    keywords.insert(language, value(Array::from_iter([phrase])));
    table.insert("keywords", Item::Table(keywords));
    let mut answer = Table::new();
    answer.set_dotted(true);
    for (lang, text) in answers {
        answer.insert(lang, value(text.as_str()));
    }
    table.insert("answer", Item::Table(answer));
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    fn miss(id: &str, heard: &str, language: &str) -> Miss {
        Miss { call_id: id.into(), turn: 1, heard: heard.into(), language: language.into() }
    }

    #[test]
    fn similar_utterances_group_and_the_biggest_group_comes_first() {
        let groups = group(vec![
            miss("a", "Can I pause my line while I'm abroad?", "en"),
            miss("b", "My router is on fire.", "en"),
            miss("c", "Can I pause my line for a month?", "en"),
            miss("d", "can I pause my line", "en"),
            miss("e", "我想暂停我的号码", "zh"),
            miss("f", "我想暂停号码一个月", "zh"),
            miss("g", "", "en"),
        ]);
        let ids: Vec<Vec<&str>> = groups.iter().map(|g| g.misses.iter().map(|m| m.call_id.as_str()).collect()).collect();
        assert_eq!(ids, [vec!["a", "c", "d"], vec!["e", "f"], vec!["b"]]);
        assert_eq!(groups[0].phrase, "can i pause my line");
        assert_eq!(groups[1].phrase, "我想暂停我的号码");
    }

    const PLAYBOOK: &str = r#"# The demo playbook.
[[intents]]
name = "balance"
# What callers say.
keywords.en = ["balance", "credit left"]
keywords.zh = ["余额"]
answer.en = "Your balance is 5 dollars."
answer.zh = "您的余额是5元。"
"#;

    #[test]
    fn a_phrase_joins_an_intent_and_the_comments_stay() {
        let edited = add_keyword(PLAYBOOK, "balance", "en", "money on my account", &[]).unwrap();
        assert!(edited.contains(r#"keywords.en = ["balance", "credit left", "money on my account"]"#), "{edited}");
        assert!(edited.contains("# What callers say.") && edited.starts_with("# The demo playbook."), "{edited}");
        assert!(add_keyword(&edited, "balance", "en", "money on my account", &[]).unwrap_err().contains("already"));
        assert!(add_keyword(PLAYBOOK, "roaming", "en", "abroad", &[]).unwrap_err().contains("--answer"));
    }

    #[test]
    fn a_new_intent_is_an_faq_entry_with_its_answers() {
        let answers = [("en".to_string(), "You can pause your line for up to 3 months.".to_string()), ("zh".to_string(), "您可以停机保号最长三个月。".to_string())];
        let edited = add_keyword(PLAYBOOK, "pause_line", "en", "pause my line", &answers).unwrap();
        let parsed: toml::Value = toml::from_str(&edited).unwrap();
        let new = &parsed["intents"][1];
        assert_eq!(new["name"].as_str(), Some("pause_line"));
        assert_eq!(new["keywords"]["en"][0].as_str(), Some("pause my line"));
        assert_eq!(new["answer"]["zh"].as_str(), Some("您可以停机保号最长三个月。"));
    }
}
