//! The lines the gateway itself says (not the brain): filler, apology, and the handoff lines.
//! Listed in one place so startup can pre-synthesize them all (see `Tts::prewarm`): they
//! matter most exactly when something is slow or broken.

use crate::handoff::{line, LineKind};
use crate::speech::tts::Lang;

/// Said when the brain is slow to answer: never dead air.
pub fn filler(lang: &str) -> &'static str {
    if lang == "zh" {
        "请稍等。"
    } else {
        "One moment, please."
    }
}

/// Said when the brain is gone, before hanging up.
pub fn apology(lang: &str) -> &'static str {
    if lang == "zh" {
        "抱歉，系统暂时出现问题，请稍后再拨。再见。"
    } else {
        "Sorry, we are having technical difficulties. Please call again later. Goodbye."
    }
}

/// Said when the caller's words could not be recognized in time: they are asked to repeat,
/// instead of waiting on a stuck recognizer.
pub fn not_heard(lang: &str) -> &'static str {
    if lang == "zh" {
        "抱歉，我没有听清，请您再说一遍。"
    } else {
        "Sorry, I didn't catch that. Could you say it again?"
    }
}

/// Said instead of the brain's announcement of a transfer that triage overruled (the caller
/// only mentioned a person, or declined one): no transfer is promised that never comes.
pub fn transfer_withdrawn(lang: &str) -> &'static str {
    if lang == "zh" {
        "抱歉，我可能理解错了。请问您需要办理什么业务？"
    } else {
        "Sorry, I may have misunderstood. What can I help you with?"
    }
}

const HANDOFF_LINES: [LineKind; 6] =
    [LineKind::Bridging, LineKind::Hold, LineKind::NoAgent, LineKind::CallbackTaken, LineKind::BackToAi, LineKind::Goodbye];

/// Every fixed gateway line in both languages.
pub fn fixed_prompts() -> Vec<(Lang, &'static str)> {
    let mut out = Vec::new();
    for (lang, code) in [(Lang::En, "en"), (Lang::Zh, "zh")] {
        out.push((lang, filler(code)));
        out.push((lang, apology(code)));
        out.push((lang, not_heard(code)));
        out.push((lang, transfer_withdrawn(code)));
        out.extend(HANDOFF_LINES.iter().map(|&kind| (lang, line(kind, code))));
        out.extend(super::survey::lines(code).map(|l| (lang, l)));
    }
    out
}

/// Every line known before a call, in the order they are rendered ahead: the playbook's
/// greeting first (every caller hears it), then the gateway's own lines, then the rest of the
/// playbook's. With an external brain (no playbook here) only the gateway's own lines.
pub fn lines_known_ahead(playbook: Option<&crate::brain::playbook::Playbook>) -> Vec<(Lang, String)> {
    let playbook_lines: Vec<(Lang, &str)> =
        playbook.map(|p| p.spoken_lines()).unwrap_or_default().into_iter().filter_map(|(lang, line)| Some((lang.parse().ok()?, line))).collect();
    let greeting = playbook.map(|p| &p.prompts().greeting);
    let greetings = playbook_lines.iter().filter(|(lang, line)| greeting.is_some_and(|g| g.get(lang.as_str()) == *line));
    let mut seen = std::collections::HashSet::new();
    greetings
        .copied()
        .chain(fixed_prompts())
        .chain(playbook_lines.iter().copied())
        .filter(|&(lang, line)| seen.insert((lang, line)))
        .map(|(lang, line)| (lang, line.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_greeting_is_rendered_first_and_every_playbook_answer_is_known_ahead() {
        let playbook = crate::brain::playbook::Playbook::embedded().unwrap();
        let lines = lines_known_ahead(Some(&playbook));
        let greeting = playbook.prompts().greeting.get("en");
        assert!(lines[..2].iter().any(|(l, t)| *l == Lang::En && t == greeting), "{:?}", &lines[..2]);
        for intent in playbook.intents() {
            for lang in [Lang::En, Lang::Zh] {
                let answer = intent.answer.get(lang.as_str());
                assert!(lines.contains(&(lang, answer.to_string())), "{} in {lang}", intent.name);
            }
        }
        assert!(lines.contains(&(Lang::Zh, "请稍等。".to_string())));
        let unique: std::collections::HashSet<_> = lines.iter().collect();
        assert_eq!(unique.len(), lines.len(), "each line once");
        assert_eq!(lines_known_ahead(None).len(), fixed_prompts().len());
    }

    #[test]
    fn every_line_is_listed_once_per_language() {
        let all = fixed_prompts();
        assert_eq!(all.len(), 2 * (4 + HANDOFF_LINES.len() + super::super::survey::lines("en").len()));
        assert!(all.contains(&(Lang::Zh, super::super::survey::line(super::super::survey::SurveyLine::Question, "zh"))));
        assert!(all.contains(&(Lang::Zh, "请稍等。")));
        assert!(all.contains(&(Lang::En, line(LineKind::Hold, "en"))));
        assert!(all.iter().filter(|(l, _)| *l == Lang::Zh).all(|(_, t)| !t.is_ascii()));
    }
}
