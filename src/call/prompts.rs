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
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_listed_once_per_language() {
        let all = fixed_prompts();
        assert_eq!(all.len(), 2 * (4 + HANDOFF_LINES.len()));
        assert!(all.contains(&(Lang::Zh, "请稍等。")));
        assert!(all.contains(&(Lang::En, line(LineKind::Hold, "en"))));
        assert!(all.iter().filter(|(l, _)| *l == Lang::Zh).all(|(_, t)| !t.is_ascii()));
    }
}
