//! What the latency benchmark's callers ask: requests the built-in playbook answers itself
//! (none asks for a person, so the AI keeps taking turns), written for the bench in both
//! languages and made at run time from templates and slots with a fresh offset each run, so
//! no run replays the same sentences and nothing in the gateway can be tuned to them. They are
//! spoken by voices other than the bot's: espeak-ng for English (the bot speaks with Piper),
//! Kokoro's jf_alpha for Mandarin (the bot speaks with jm_kumo).

use crate::speech::tts::Lang;

const ENGLISH: &[&str] = &[
    "Could you tell me how much credit is left on my phone?",
    "How much mobile data do I still have this month?",
    "Why was my bill so much higher in {month}?",
    "What does it cost to use my phone in {place}?",
    "Do you have a cheaper plan than the one I am on?",
    "Is there a network outage near me right now?",
    "My broadband has been really slow since {day}.",
    "What time do your shops open?",
    "I would like to check my account balance please.",
    "Can you explain the charges on my last bill?",
    "I am going to {place} next week, how much is roaming?",
    "How many gigabytes have I used so far?",
    "Can I get a data add-on for my trip to {place}?",
    "Tell me about the plans you offer for students.",
    "Was there an extra charge on my {month} bill?",
    "How much money is on my account today?",
    "Is the mobile network down in my town?",
    "The internet at home keeps dropping out since {day}.",
    "What are your opening hours on the weekend?",
    "How much data is left before my plan renews?",
    "Which plan would give me more data for the same price?",
    "Does my plan work when I travel to {place}?",
    "I want to know what I paid in {month}.",
    "Can you check whether my phone line has any credit?",
];

const MANDARIN: &[&str] = &[
    "请帮我查一下我的话费还剩多少。",
    "我这个月的流量还剩多少？",
    "为什么我{month}的账单这么高？",
    "我下周去{place}，漫游怎么收费？",
    "你们有没有便宜一点的套餐？",
    "我们这边现在是不是有网络故障？",
    "我家的宽带从{day}开始就特别慢。",
    "你们营业厅几点开门？",
    "我想查一下账户余额。",
    "帮我看看上个月的账单有哪些费用。",
    "在{place}用手机上网贵不贵？",
    "我已经用了多少流量了？",
    "去{place}之前能不能买个流量包？",
    "学生有没有优惠的套餐？",
    "我{month}的话费是不是多扣了？",
    "我今天账户里还有多少钱？",
    "我们这边的手机信号是不是出问题了？",
    "家里的网从{day}起老是断线。",
    "你们周末几点到几点上班？",
    "我的流量到月底还够用吗？",
    "同样的价钱有没有流量更多的套餐？",
    "我的卡在{place}能用吗？",
    "我想知道{month}一共交了多少钱。",
    "帮我看看我的号码还有没有余额。",
];

const MONTHS: &[&str] = &["January", "March", "May", "August", "October", "December"];
const MONTHS_ZH: &[&str] = &["一月", "三月", "五月", "八月", "十月", "十二月"];
const PLACES: &[&str] = &["Japan", "Thailand", "France", "Singapore", "Canada", "Australia"];
const PLACES_ZH: &[&str] = &["日本", "泰国", "法国", "新加坡", "香港", "澳大利亚"];
const DAYS: &[&str] = &["Monday", "yesterday", "last weekend", "Thursday"];
const DAYS_ZH: &[&str] = &["星期一", "昨天", "上周末", "前天"];

/// `count` requests in `lang`, starting at `offset` in the cycle of templates and slots: each
/// template in turn, its slots filled from a different position every time round.
pub fn requests(lang: Lang, count: usize, offset: usize) -> Vec<String> {
    let (templates, months, places, days) = match lang {
        Lang::En => (ENGLISH, MONTHS, PLACES, DAYS),
        Lang::Zh => (MANDARIN, MONTHS_ZH, PLACES_ZH, DAYS_ZH),
    };
    (offset..offset + count)
        .map(|i| {
            let round = i / templates.len();
            let pick = |list: &[&'static str]| list[(i + round) % list.len()];
            templates[i % templates.len()].replace("{month}", pick(months)).replace("{place}", pick(places)).replace("{day}", pick(days))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_four_different_requests_per_language_from_any_offset() {
        for lang in [Lang::En, Lang::Zh] {
            for offset in [0, 7, 1000] {
                let r = requests(lang, 24, offset);
                assert_eq!(r.len(), 24);
                let distinct: std::collections::BTreeSet<_> = r.iter().collect();
                assert!(distinct.len() >= 20, "{lang:?} from {offset}: {} distinct of {r:?}", distinct.len());
                assert!(r.iter().all(|s| !s.contains('{')), "unfilled slot in {r:?}");
            }
        }
        assert_ne!(requests(Lang::En, 24, 0), requests(Lang::En, 24, 5), "another offset, other sentences");
    }

    /// The built-in playbook answers every template itself: no request is a handoff, so the
    /// AI keeps taking the turns that are timed.
    #[test]
    fn the_playbook_answers_every_request_without_a_person() {
        let pb = crate::brain::Playbook::embedded().unwrap();
        for (lang, code) in [(Lang::En, "en"), (Lang::Zh, "zh")] {
            for text in requests(lang, 24, 3) {
                let mut c = crate::brain::conversation::Conversation::new(
                    &pb,
                    &crate::proto::dialog::CallStart { language: code.into(), ..Default::default() },
                );
                c.greeting();
                let actions = c.on_event(&crate::proto::dialog::CallerEvent {
                    event: Some(crate::proto::dialog::caller_event::Event::Utterance(crate::proto::dialog::Utterance {
                        text: text.clone(),
                        is_final: true,
                        confidence: 0.9,
                        language: code.into(),
                        ..Default::default()
                    })),
                });
                assert!(!c.escalated(), "{text:?} is handed to a person: {actions:?}");
                assert!(!actions.is_empty(), "{text:?} got no answer");
            }
        }
    }
}
