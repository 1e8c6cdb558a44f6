//! Suggested answers for a human agent, straight from the playbook (sans-IO).
//!
//! Once a call is handed over, the agent console asks the brain what the agent could say next.
//! The playbook already holds vetted answers with the caller's account facts filled in, so the
//! suggestions are those answers, ranked: the call's current intent first, then the intents
//! whose keywords match what the caller said most recently. No sockets or clocks here: the
//! gRPC handler in [`super::server`] validates nothing itself and only maps [`SuggestError`].

use super::playbook::{primary_language, Intent, IntentAction, Playbook, Text};
use super::text;
use crate::proto::dialog::{SuggestRequest, Suggestion};

/// At most this many suggestions: an agent glancing at a panel mid-call reads two or three.
pub const MAX_SUGGESTIONS: usize = 3;
/// A longer transcript is not "recent lines": the caller sent the whole call by mistake.
pub const MAX_TRANSCRIPT_LINES: usize = 50;
/// One recognized utterance is a few hundred characters at most; far more is not a caller line.
pub const MAX_LINE_CHARS: usize = 2000;

/// Score of the suggestion for the intent the request names: it is what the call is about.
const CURRENT_INTENT_SCORE: f32 = 1.0;
/// Each step back in the transcript keeps this share of a match's weight, so what the caller
/// said last outranks what they said three lines ago.
const RECENCY_DECAY: f32 = 0.8;
/// Scores of the greeting-level help shown before anything is known about the call.
const GREETING_SCORE: f32 = 0.5;
const TOPICS_SCORE: f32 = 0.25;

/// Why a request cannot be answered. Only limits the contract states: anything else
/// (an unknown intent or language, blank lines) still gets suggestions.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SuggestError {
    #[error("transcript has {lines} lines; send at most the last {max}")]
    TooManyLines { lines: usize, max: usize },
    #[error("transcript line {index} has {chars} characters; a caller line has at most {max}")]
    LineTooLong { index: usize, chars: usize, max: usize },
}

/// The language suggestions are written in: the request's, if the playbook speaks it; for an
/// empty tag the script of the latest caller line (Chinese characters cannot be English);
/// otherwise the playbook default.
pub fn suggestion_language(pb: &Playbook, language: &str, transcript: &[String]) -> String {
    let tagged = primary_language(language);
    if pb.supports(&tagged) {
        return tagged;
    }
    if language.trim().is_empty() {
        if let Some(last) = transcript.iter().rev().find(|l| !l.trim().is_empty()) {
            if text::has_cjk(last) && pb.supports("zh") {
                return "zh".to_string();
            }
        }
    }
    pb.default_language().to_string()
}

/// Ranks the playbook's answers for `req`, best first, at most [`MAX_SUGGESTIONS`].
///
/// Intents whose action is an escalation are never suggested: their answer is the bot's
/// "I'm connecting you to a colleague" line, and the agent reading the panel *is* that
/// colleague. A call about such an intent (a dispute) still gets the answers its transcript
/// points to (the bill), which is what the agent needs to talk about.
pub fn suggest(pb: &Playbook, req: &SuggestRequest) -> Result<Vec<Suggestion>, SuggestError> {
    if req.transcript.len() > MAX_TRANSCRIPT_LINES {
        return Err(SuggestError::TooManyLines { lines: req.transcript.len(), max: MAX_TRANSCRIPT_LINES });
    }
    if let Some((index, chars)) = req
        .transcript
        .iter()
        .map(|l| l.chars().count())
        .enumerate()
        .find(|(_, n)| *n > MAX_LINE_CHARS)
    {
        return Err(SuggestError::LineTooLong { index, chars, max: MAX_LINE_CHARS });
    }

    let lang = suggestion_language(pb, &req.language, &req.transcript);
    let mut out: Vec<Suggestion> = Vec::new();

    // 1. The call's current intent. "agent-declined" style names (the conversation reports a
    //    declined negatable intent that way) suggest the intent's "declined" line.
    let current = req.intent.trim();
    if let Some(it) = pb.intent(current).filter(|it| suggestible(it)) {
        push(&mut out, &it.answer, &lang, &it.name, CURRENT_INTENT_SCORE);
    } else if let Some(it) = current.strip_suffix("-declined").and_then(|base| pb.intent(base)) {
        if let Some(declined) = &it.declined {
            push(&mut out, declined, &lang, current, CURRENT_INTENT_SCORE);
        }
    }

    // 2. The intents the recent caller lines talk about.
    let mut ranked: Vec<(usize, f32)> = keyword_scores(pb, &req.transcript)
        .into_iter()
        .enumerate()
        .filter(|(i, s)| *s > 0.0 && suggestible(&pb.intents()[*i]))
        .collect();
    // Stable sort: equal scores keep the playbook's order, which the designer chose.
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (i, score) in ranked {
        let it = &pb.intents()[i];
        push(&mut out, &it.answer, &lang, &it.name, score);
    }

    // 3. Nothing known about the call yet: open the conversation and list what can be asked.
    if out.is_empty() && current.is_empty() && req.transcript.iter().all(|l| l.trim().is_empty()) {
        let p = pb.prompts();
        push(&mut out, &p.greeting, &lang, "greeting", GREETING_SCORE);
        push(&mut out, &p.fallback, &lang, "topics", TOPICS_SCORE);
    }
    Ok(out)
}

fn suggestible(it: &Intent) -> bool {
    !matches!(it.action, IntentAction::Escalate { .. })
}

/// Adds a suggestion unless the panel is full or it repeats an intent or a text already there.
fn push(out: &mut Vec<Suggestion>, t: &Text, lang: &str, intent: &str, score: f32) {
    let text = t.get(lang);
    if out.len() >= MAX_SUGGESTIONS || text.is_empty() || out.iter().any(|s| s.intent == intent || s.text == text) {
        return;
    }
    out.push(Suggestion { text: text.to_string(), intent: intent.to_string(), score });
}

/// One score per playbook intent (same order), 0 when no line mentions it. A line's match is
/// worth 0.5..0.9 by how much of the line the keyword covers (a keyword that is the whole line
/// is a clearer request than one word in a long complaint), times the recency decay. Negated
/// mentions of a negatable intent ("I don't want to leave") do not count.
fn keyword_scores(pb: &Playbook, transcript: &[String]) -> Vec<f32> {
    let mut scores = vec![0.0f32; pb.intents().len()];
    for (age, line) in transcript.iter().rev().enumerate() {
        let clauses = text::normalize(line);
        let total: usize = clauses.iter().map(|c| c.chars().filter(|ch| *ch != ' ').count()).sum();
        if total == 0 {
            continue;
        }
        let recency = RECENCY_DECAY.powi(age.min(i32::MAX as usize) as i32);
        for (i, it) in pb.intents().iter().enumerate() {
            let mut best = 0usize;
            for kw in &it.keywords {
                let len = kw.norm.chars().filter(|c| *c != ' ').count();
                if len <= best {
                    continue;
                }
                let hit = clauses.iter().any(|c| {
                    text::find_all(c, &kw.norm).into_iter().any(|at| {
                        !(it.negatable && text::is_negated(c, at, kw.cjk, pb.negation_cues(), pb.negation_window()))
                    })
                });
                if hit {
                    best = len;
                }
            }
            if best > 0 {
                let coverage = (best as f32 / total as f32).min(1.0);
                let score = (0.5 + 0.4 * coverage) * recency;
                scores[i] = scores[i].max(score);
            }
        }
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::OnceLock;

    fn pb() -> &'static Playbook {
        static PB: OnceLock<Playbook> = OnceLock::new();
        PB.get_or_init(|| Playbook::embedded().expect("embedded playbook"))
    }

    fn req(lang: &str, intent: &str, lines: &[&str]) -> SuggestRequest {
        SuggestRequest {
            call_id: "call-9".into(),
            language: lang.into(),
            intent: intent.into(),
            transcript: lines.iter().map(|l| l.to_string()).collect(),
        }
    }

    fn intents(s: &[Suggestion]) -> Vec<&str> {
        s.iter().map(|x| x.intent.as_str()).collect()
    }

    #[test]
    fn english_dispute_suggests_the_bill_breakdown_not_a_handoff_line() {
        let s = suggest(pb(), &req("en-US", "dispute", &["Why was I charged so much this month? I want a refund."])).unwrap();
        assert_eq!(intents(&s), ["bill"]);
        // The account facts are filled in, as the bot would have said them.
        assert!(s[0].text.contains("one hundred and fifty-six yuan"), "{}", s[0].text);
        assert!(s.iter().all(|x| !x.text.contains("connecting you")));
    }

    #[test]
    fn mandarin_dispute_about_a_charge_suggests_the_bill_in_mandarin() {
        let s = suggest(pb(), &req("zh", "dispute", &["为什么扣了我这么多钱？", "我要投诉，退钱！"])).unwrap();
        assert_eq!(intents(&s), ["bill"]);
        assert!(s[0].text.contains("一百五十六元"), "{}", s[0].text);
    }

    #[test]
    fn current_intent_comes_first_then_recent_topics_without_duplicates() {
        let s = suggest(pb(), &req("en", "bill", &["what's my balance", "and how much data do I have left", "my bill please"]))
            .unwrap();
        assert_eq!(intents(&s), ["bill", "data_left", "balance"]);
        assert_eq!(s[0].score, 1.0);
        assert!(s[1].score > s[2].score, "the later line ranks higher: {s:?}");
        assert!(s[1].text.contains("three point two gigabytes"), "{}", s[1].text);
    }

    #[test]
    fn mandarin_data_question_gets_data_answers_in_mandarin() {
        let s = suggest(pb(), &req("zh-CN", "", &["我的流量不够用了，还剩多少流量？"])).unwrap();
        let names = intents(&s);
        assert!(names.contains(&"data_left") && names.contains(&"data_pack"), "{names:?}");
        assert!(s.iter().any(|x| x.text.contains("三点二个G")), "{s:?}");
        assert!(s.iter().all(|x| text::has_cjk(&x.text)));
        assert!(s.len() <= MAX_SUGGESTIONS);
    }

    #[test]
    fn nothing_known_gives_greeting_level_help() {
        let s = suggest(pb(), &req("zh", "", &[])).unwrap();
        assert_eq!(intents(&s), ["greeting", "topics"]);
        assert!(s[0].text.contains("您好"), "{}", s[0].text);
        assert!(s[1].text.contains("账单"), "{}", s[1].text);
    }

    #[test]
    fn unknown_language_falls_back_to_the_default_and_empty_follows_the_script() {
        let s = suggest(pb(), &req("fr", "balance", &[])).unwrap();
        assert_eq!(intents(&s), ["balance"]);
        assert!(s[0].text.contains("forty-two yuan fifty"), "{}", s[0].text);
        let s = suggest(pb(), &req("", "", &["我想查余额"])).unwrap();
        assert!(s[0].text.contains("四十二元五角"), "{}", s[0].text);
    }

    #[test]
    fn a_negated_mention_is_not_a_topic() {
        // "goodbye" is negatable: "not goodbye yet" must not suggest closing the call.
        let s = suggest(pb(), &req("en", "", &["don't hang up, what about roaming"])).unwrap();
        assert_eq!(intents(&s), ["roaming"]);
    }

    #[test]
    fn declined_intent_suggests_its_declined_line() {
        let s = suggest(pb(), &req("en", "agent-declined", &[])).unwrap();
        assert_eq!(intents(&s), ["agent-declined"]);
        assert!(s[0].text.contains("keep helping you"), "{}", s[0].text);
    }

    #[test]
    fn unmatched_lines_give_no_suggestions_rather_than_noise() {
        let s = suggest(pb(), &req("en", "fallback", &["hmm, well, you know"])).unwrap();
        assert!(s.is_empty(), "{s:?}");
    }

    #[test]
    fn over_long_requests_are_rejected_with_the_limit() {
        let lines: Vec<String> = (0..=MAX_TRANSCRIPT_LINES).map(|i| format!("line {i}")).collect();
        let r = SuggestRequest { transcript: lines, ..Default::default() };
        let e = suggest(pb(), &r).unwrap_err();
        assert_eq!(e, SuggestError::TooManyLines { lines: 51, max: 50 });
        assert!(e.to_string().contains("at most the last 50"), "{e}");
        let r = SuggestRequest { transcript: vec!["ok".into(), "a".repeat(MAX_LINE_CHARS + 1)], ..Default::default() };
        assert!(matches!(suggest(pb(), &r), Err(SuggestError::LineTooLong { index: 1, .. })));
        // Exactly at the limit is fine.
        let r = SuggestRequest { transcript: vec!["bill".into(); MAX_TRANSCRIPT_LINES], ..Default::default() };
        assert_eq!(intents(&suggest(pb(), &r).unwrap()), ["bill"]);
    }
}
