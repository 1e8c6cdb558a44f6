//! Conversation tests in both languages, driven through the sans-IO core, and one real gRPC
//! round trip through the embedded server and the gateway's client.

use super::conversation::{Conversation, FALLBACK_INTENT};
use super::playbook::Playbook;
use crate::proto::dialog::{
    bot_action::Action, caller_event::Event, BargeIn, BotAction, CallEnd, CallStart, CallerEvent, Dtmf,
    Escalate, Hangup, Priority, Silence, Utterance,
};
use std::sync::OnceLock;

fn pb() -> &'static Playbook {
    static PB: OnceLock<Playbook> = OnceLock::new();
    PB.get_or_init(|| Playbook::embedded().expect("embedded playbook"))
}

fn start(lang: &str) -> CallStart {
    CallStart { call_id: "call-7".into(), caller: "13800138000".into(), language: lang.into(), ..Default::default() }
}

fn conv(lang: &str) -> Conversation<'static> {
    let mut c = Conversation::new(pb(), &start(lang));
    c.greeting();
    c
}

fn utter(text: &str, lang: &str) -> CallerEvent {
    CallerEvent {
        event: Some(Event::Utterance(Utterance {
            text: text.into(),
            is_final: true,
            confidence: 0.9,
            language: lang.into(),
            ..Default::default()
        })),
    }
}

fn ev(e: Event) -> CallerEvent {
    CallerEvent { event: Some(e) }
}

/// What one turn looked like, from the caller's and the gateway's point of view.
#[derive(Debug, Default)]
struct Turn {
    intent: String,
    sentiment: String,
    confidence: f32,
    slots: std::collections::HashMap<String, String>,
    said: String,
    language: String,
    escalate: Option<Escalate>,
    hangup: Option<Hangup>,
    set_language: Option<String>,
    /// The language of each Say chunk, in order.
    chunk_languages: Vec<String>,
}

fn turn(actions: Vec<BotAction>) -> Turn {
    let mut t = Turn::default();
    let mut lasts = 0;
    let mut seen_last = false;
    for a in actions {
        match a.action.expect("every action is set") {
            Action::Annotate(an) => {
                t.intent = an.intent;
                t.sentiment = an.sentiment;
                t.confidence = an.intent_confidence;
                t.slots = an.slots;
            }
            Action::Say(s) => {
                assert!(!seen_last, "a Say came after the chunk marked last");
                assert!(!s.text.contains('{') && !s.text.contains('*'), "unrendered text: {}", s.text);
                t.said.push_str(&s.text);
                t.said.push(' ');
                t.chunk_languages.push(s.language.clone());
                t.language = s.language;
                if s.last {
                    lasts += 1;
                    seen_last = true;
                }
            }
            Action::Escalate(e) => t.escalate = Some(e),
            Action::Hangup(h) => t.hangup = Some(h),
            Action::SetLanguage(l) => t.set_language = Some(l.language),
            other => panic!("unexpected action {other:?}"),
        }
    }
    if !t.said.is_empty() {
        assert_eq!(lasts, 1, "exactly one chunk must end the reply");
    }
    t
}

fn ask(c: &mut Conversation<'_>, text: &str, lang: &str) -> Turn {
    turn(c.on_event(&utter(text, lang)))
}

#[test]
fn greeting_in_the_fixed_language_or_in_both() {
    let t = turn(Conversation::new(pb(), &start("zh-CN")).greeting());
    assert!(t.said.contains("您好"), "{}", t.said);
    assert_eq!(t.language, "zh");
    let t = turn(Conversation::new(pb(), &start("en")).greeting());
    assert!(t.said.starts_with("Hello"), "{}", t.said);
    // Unknown language: the short opening in both, English first, one turn (only the final
    // chunk is `last`), far shorter than both greetings.
    let t = turn(Conversation::new(pb(), &start("")).greeting());
    let prompts = pb().prompts();
    let opening = prompts.opening.as_ref().expect("the built-in playbook has an opening");
    let (en, zh) = (opening.get("en"), opening.get("zh"));
    assert_eq!(t.said.replace(' ', ""), format!("{en}{zh}").replace(' ', ""), "{}", t.said);
    let both_greetings = prompts.greeting.get("en").len() + prompts.greeting.get("zh").len();
    assert!(t.said.len() < both_greetings, "{}", t.said);
}

#[test]
fn every_answer_intent_in_english() {
    let cases = [
        ("What's my BALANCE?", "balance", "forty-two yuan fifty"),
        ("why is my bill so high this month", "bill", "one hundred and fifty-six yuan"),
        ("How much data do I have left?", "data_left", "three point two gigabytes"),
        ("Can I buy a data pack?", "data_pack", "five gigabyte pack"),
        ("I'd like to change my plan.", "plans", "Smart one twenty-eight"),
        ("My internet is really slow", "broadband", "Is the light labelled L O S red?"),
        ("I'm travelling abroad next week, how does roaming work", "roaming", "twenty-eight yuan a day"),
        ("What are your opening hours?", "hours", "eight in the morning"),
    ];
    for (said, intent, expect) in cases {
        let mut c = conv("en");
        let t = ask(&mut c, said, "en");
        assert_eq!(t.intent, intent, "{said}");
        assert!(t.said.contains(expect), "{said} -> {}", t.said);
        assert_eq!(t.language, "en");
        assert!(t.confidence > 0.5 && t.confidence <= 1.0);
        assert!(t.escalate.is_none() && t.hangup.is_none());
    }
}

#[test]
fn every_answer_intent_in_mandarin() {
    let cases = [
        ("帮我查余额", "balance", "四十二元五角"),
        ("我的话费余额还有多少", "balance", "四十二元五角"),
        ("为什么扣这么多钱？", "bill", "一百五十六元"),
        ("我想看一下账单", "bill", "一百五十六元"),
        ("我还剩多少流量", "data_left", "三点二个G"),
        ("我想买个流量包", "data_pack", "五个G"),
        ("有什么便宜的套餐吗", "plans", "智享一百二十八元套餐"),
        ("宽带网速慢", "broadband", "红色的吗"),
        ("我要出国，漫游怎么收费", "roaming", "二十八元"),
        ("你们营业时间是几点", "hours", "早上八点"),
    ];
    for (said, intent, expect) in cases {
        let mut c = conv("zh");
        let t = ask(&mut c, said, "zh");
        assert_eq!(t.intent, intent, "{said}");
        assert!(t.said.contains(expect), "{said} -> {}", t.said);
        assert_eq!(t.language, "zh");
    }
}

#[test]
fn traditional_characters_and_untagged_language_still_match() {
    let mut c = conv("");
    // Whisper sometimes writes traditional characters and may leave the language empty.
    let t = ask(&mut c, "我想查一下餘額", "");
    assert_eq!(t.intent, "balance");
    assert_eq!(t.language, "zh");
    assert!(t.said.contains("四十二元五角"));
    // The caller switches to English mid-call: the bot follows.
    let t = ask(&mut c, "and my BILL?", "");
    assert_eq!(t.intent, "bill");
    assert_eq!(t.language, "en");
}

#[test]
fn more_specific_keyword_wins() {
    let mut c = conv("zh");
    assert_eq!(ask(&mut c, "流量包怎么买", "zh").intent, "data_pack");
    let mut c = conv("en");
    assert_eq!(ask(&mut c, "I need more data", "en").intent, "data_pack");
}

#[test]
fn asking_for_a_person_escalates_in_both_languages() {
    for (said, lang) in [
        ("I want to speak to an agent.", "en"),
        ("Representative!", "en"),
        ("Can I talk to a real person please", "en"),
        ("No, I want an agent", "en"),
        ("转人工", "zh"),
        ("我要人工服务", "zh"),
    ] {
        let mut c = conv(lang);
        let t = ask(&mut c, said, lang);
        assert_eq!(t.intent, "agent", "{said}");
        let e = t.escalate.unwrap_or_else(|| panic!("{said}: no escalation"));
        assert_eq!(e.reason, "explicit-request");
        assert_eq!(e.priority, Priority::Normal as i32);
        assert!(e.summary.contains("13800138000") && e.summary.contains(said.trim()), "{}", e.summary);
        assert!(!t.said.is_empty(), "the caller hears that they are being connected");
        assert!(c.escalated());
    }
}

#[test]
fn declining_a_person_does_not_escalate() {
    for (said, lang) in [
        ("I don't need an agent.", "en"),
        ("i do not want to talk to a real person", "en"),
        ("不用转人工", "zh"),
        ("我不需要人工服务", "zh"),
    ] {
        let mut c = conv(lang);
        let t = ask(&mut c, said, lang);
        assert!(t.escalate.is_none(), "{said} escalated");
        assert_eq!(t.intent, "agent-declined", "{said}");
        assert!(!t.said.is_empty());
        assert!(!c.escalated());
    }
    // Declining one thing while asking another answers the other.
    let mut c = conv("zh");
    let t = ask(&mut c, "不用转人工，我想查余额", "zh");
    assert_eq!(t.intent, "balance");
    assert!(t.escalate.is_none());
    let mut c = conv("en");
    let t = ask(&mut c, "I don't need an agent, just my balance", "en");
    assert_eq!(t.intent, "balance");
    assert!(t.escalate.is_none());
}

#[test]
fn goodbye_says_goodbye_then_hangs_up() {
    for (said, lang, expect) in [
        ("Bye!", "en", "Goodbye"),
        ("OK, that's all. Thanks", "en", "Goodbye"),
        ("好的，再见", "zh", "再见"),
        ("没有了，谢谢", "zh", "再见"),
        ("不用了再见", "zh", "再见"),
    ] {
        let mut c = conv(lang);
        let t = ask(&mut c, said, lang);
        assert_eq!(t.intent, "goodbye", "{said}");
        assert!(t.said.contains(expect), "{said} -> {}", t.said);
        assert_eq!(t.hangup.expect("hangup").reason, "caller-goodbye");
        assert!(c.is_finished());
        // After hanging up the bot says nothing more.
        assert!(c.on_event(&utter("hello?", lang)).is_empty());
    }
    // "Don't hang up" is not a goodbye.
    let mut c = conv("en");
    let t = ask(&mut c, "please don't hang up", "en");
    assert!(t.hangup.is_none());
    assert!(!c.is_finished());
}

#[test]
fn repeated_misunderstanding_goes_to_a_person() {
    for (lang, nonsense) in [("en", "purple elephants dancing"), ("zh", "今天天气怎么样")] {
        let mut c = conv(lang);
        let max = pb().max_fallbacks();
        for i in 1..max {
            let t = ask(&mut c, nonsense, lang);
            assert_eq!(t.intent, FALLBACK_INTENT);
            assert!(t.escalate.is_none(), "escalated after only {i} misses");
            let expect = if lang == "en" { "Sorry, I didn't catch that" } else { "抱歉，我没有听清楚" };
            assert!(t.said.contains(expect), "{}", t.said);
        }
        let t = ask(&mut c, nonsense, lang);
        let e = t.escalate.expect("escalation after N misses");
        assert_eq!(e.reason, "no-understanding");
        assert!(e.summary.contains(nonsense));
    }
}

#[test]
fn an_understood_turn_resets_the_miss_count() {
    let mut c = conv("en");
    for _ in 1..pb().max_fallbacks() {
        ask(&mut c, "blah blah", "en");
    }
    assert_eq!(ask(&mut c, "balance", "en").intent, "balance");
    let t = ask(&mut c, "blah blah", "en");
    assert!(t.escalate.is_none());
}

#[test]
fn a_sentence_the_caller_went_on_with_counts_as_one_turn() {
    // Pieces of one sentence said with pauses: each piece alone is a miss, and the gateway
    // sends each next one whole with `continues`. No handoff for that, and the whole
    // sentence (not its pieces) is what the agent would be told.
    for (lang, pieces) in [("en", ["If the purple", "If the purple elephants", "If the purple elephants dance"]), ("zh", ["今天", "今天天气", "今天天气怎么样"])] {
        let mut c = conv(lang);
        for (i, piece) in pieces.iter().enumerate() {
            let mut event = utter(piece, lang);
            if let Some(Event::Utterance(u)) = event.event.as_mut() {
                u.continues = i > 0;
            }
            let t = turn(c.on_event(&event));
            assert_eq!(t.intent, FALLBACK_INTENT, "{piece}");
            assert!(t.escalate.is_none(), "{lang}: escalated on piece {i} of one sentence");
        }
        // The sentence was one miss: the handoff comes at the playbook's count of separate ones.
        for _ in 2..pb().max_fallbacks() {
            assert!(ask(&mut c, pieces[2], lang).escalate.is_none());
        }
        let e = ask(&mut c, pieces[2], lang).escalate.expect("max_fallbacks separate misses hand over");
        assert!(e.summary.contains(pieces[2]) && !e.summary.contains(&format!("\"{}\"", pieces[0])), "{}", e.summary);
    }
}

#[test]
fn broadband_slot_flow_in_both_languages() {
    let mut c = conv("en");
    ask(&mut c, "my wifi keeps dropping", "en");
    let t = ask(&mut c, "Yes, it's red.", "en");
    assert_eq!(t.intent, "broadband");
    assert_eq!(t.slots.get("modem_light").map(String::as_str), Some("red"));
    assert!(t.said.contains("fiber signal is lost"), "{}", t.said);
    assert_eq!(c.slots().get("modem_light").map(String::as_str), Some("red"));

    let mut c = conv("zh");
    ask(&mut c, "宽带上不了网", "zh");
    let t = ask(&mut c, "不是红色的", "zh");
    assert_eq!(t.slots.get("modem_light").map(String::as_str), Some("not-red"));
    assert!(t.said.contains("断电"), "{}", t.said);

    let mut c = conv("en");
    ask(&mut c, "broadband problem", "en");
    let t = ask(&mut c, "no it's not red", "en");
    assert_eq!(t.slots.get("modem_light").map(String::as_str), Some("not-red"));
}

#[test]
fn slot_question_is_repeated_then_abandoned_for_a_new_intent() {
    let mut c = conv("en");
    ask(&mut c, "internet is down", "en");
    let t = ask(&mut c, "hmm let me see", "en");
    assert_eq!(t.intent, FALLBACK_INTENT);
    assert!(t.said.contains("L O S light"), "the question is asked again: {}", t.said);
    // The caller changes the subject: answer it.
    let t = ask(&mut c, "what's my balance", "en");
    assert_eq!(t.intent, "balance");
    // The slot is no longer pending: "yes" is not read as an answer to the modem question.
    assert_eq!(ask(&mut c, "yes", "en").intent, FALLBACK_INTENT);
}

#[test]
fn keypad_menu_and_zero_for_an_agent() {
    let mut c = conv("en");
    let t = turn(c.on_event(&ev(Event::Dtmf(Dtmf { digits: "1".into(), duration_ms: 80 }))));
    assert_eq!(t.intent, "balance");
    assert_eq!(t.confidence, 1.0);
    let t = turn(c.on_event(&ev(Event::Dtmf(Dtmf { digits: "7".into(), duration_ms: 80 }))));
    assert!(t.said.contains("Press one"), "{}", t.said);
    // The slot flow takes digits too.
    turn(c.on_event(&ev(Event::Dtmf(Dtmf { digits: "4".into(), duration_ms: 80 }))));
    let t = turn(c.on_event(&ev(Event::Dtmf(Dtmf { digits: "2".into(), duration_ms: 80 }))));
    assert_eq!(t.slots.get("modem_light").map(String::as_str), Some("not-red"));
    let t = turn(c.on_event(&ev(Event::Dtmf(Dtmf { digits: "0".into(), duration_ms: 80 }))));
    assert_eq!(t.escalate.expect("0 escalates").reason, "explicit-request");

    let mut c = conv("zh");
    let t = turn(c.on_event(&ev(Event::Dtmf(Dtmf { digits: "7".into(), duration_ms: 80 }))));
    assert!(t.said.contains("请按"), "menu in the caller's language: {}", t.said);
}

#[test]
fn silence_reprompts_then_hangs_up() {
    let mut c = conv("zh");
    for _ in 0..pb().max_silences() {
        let t = turn(c.on_event(&ev(Event::Silence(Silence { duration_ms: 8000 }))));
        assert!(t.said.contains("您还在吗"), "{}", t.said);
        assert!(t.hangup.is_none());
    }
    let t = turn(c.on_event(&ev(Event::Silence(Silence { duration_ms: 8000 }))));
    assert_eq!(t.hangup.expect("hangup after silences").reason, "silence");
    assert!(t.said.contains("再见"));
}

#[test]
fn speaking_resets_the_silence_count() {
    let mut c = conv("en");
    for _ in 0..pb().max_silences() {
        c.on_event(&ev(Event::Silence(Silence { duration_ms: 8000 })));
    }
    ask(&mut c, "balance", "en");
    let t = turn(c.on_event(&ev(Event::Silence(Silence { duration_ms: 8000 }))));
    assert!(t.hangup.is_none());
}

#[test]
fn a_preview_utterance_gets_words_only_and_changes_nothing() {
    let mut c = conv("en");
    let utterance = |is_final| CallerEvent {
        event: Some(Event::Utterance(Utterance { text: "I want an agent".into(), is_final, language: "en".into(), confidence: 0.9, ..Default::default() })),
    };
    let preview = c.on_event(&utterance(false));
    assert!(!preview.is_empty());
    for a in &preview {
        match &a.action {
            Some(Action::Say(s)) => assert!(s.preview && !s.text.is_empty(), "{s:?}"),
            other => panic!("a preview may only carry words: {other:?}"),
        }
    }
    assert!(!c.escalated(), "a preview must not commit the escalation");
    // The final is answered in full, with the same words, not marked as a preview.
    let finals = c.on_event(&utterance(true));
    let said: Vec<_> = finals.iter().filter_map(|a| match &a.action { Some(Action::Say(s)) => Some(s.clone()), _ => None }).collect();
    let previewed: Vec<_> = preview.iter().filter_map(|a| match &a.action { Some(Action::Say(s)) => Some(s.text.clone()), _ => None }).collect();
    assert_eq!(said.iter().map(|s| s.text.clone()).collect::<Vec<_>>(), previewed);
    assert!(said.iter().all(|s| !s.preview));
    assert!(c.escalated());
}

#[test]
fn barge_in_is_noted_for_the_agent() {
    let mut c = conv("en");
    ask(&mut c, "why is my bill so high", "en");
    let heard = "Your May bill was one hundred and fifty-six yuan.";
    assert!(c
        .on_event(&ev(Event::BargeIn(BargeIn { heard_text: heard.into(), unheard_text: "That is...".into() })))
        .is_empty());
    let t = ask(&mut c, "This is ridiculous, I want a refund!", "en");
    assert_eq!(t.intent, "dispute");
    assert_eq!(t.sentiment, "angry");
    let e = t.escalate.expect("refund goes to a person");
    assert_eq!(e.reason, "risk-dispute");
    assert_eq!(e.priority, Priority::High as i32);
    assert!(e.summary.contains(heard), "{}", e.summary);
    assert!(e.summary.contains("bill, dispute"), "{}", e.summary);
}

#[test]
fn sentiment_is_reported() {
    let mut c = conv("zh");
    assert_eq!(ask(&mut c, "太离谱了，为什么扣这么多", "zh").sentiment, "angry");
    assert_eq!(ask(&mut c, "好的谢谢，查一下余额", "zh").sentiment, "positive");
    let mut c = conv("en");
    assert_eq!(ask(&mut c, "balance", "en").sentiment, "neutral");
}

#[test]
fn after_handoff_the_caller_is_kept_informed() {
    let mut c = conv("en");
    ask(&mut c, "agent", "en");
    let t = ask(&mut c, "hello? agent?", "en");
    assert!(t.escalate.is_none(), "a second escalation is not sent");
    assert!(t.said.contains("connecting you"), "{}", t.said);
    // Questions while waiting are still answered.
    assert_eq!(ask(&mut c, "what's my balance", "en").intent, "balance");
}

#[test]
fn call_end_finishes_the_conversation() {
    let mut c = conv("en");
    assert!(c.on_event(&ev(Event::End(CallEnd { reason: "caller-hangup".into() }))).is_empty());
    assert!(c.is_finished());
    assert!(c.on_event(&utter("balance", "en")).is_empty());
}

#[test]
fn replies_are_split_into_sentence_chunks() {
    let mut c = conv("en");
    let actions = c.on_event(&utter("balance", "en"));
    let says: Vec<_> = actions
        .iter()
        .filter_map(|a| match &a.action {
            Some(Action::Say(s)) => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert!(says.len() >= 2, "{says:?}");
    assert!(says[..says.len() - 1].iter().all(|s| !s.last));
    assert!(says.last().unwrap().last);
    // The annotation comes first, so the gateway knows the intent before the audio starts.
    assert!(matches!(actions[0].action, Some(Action::Annotate(_))));
}

#[tokio::test]
async fn grpc_round_trip_through_the_embedded_server() {
    use crate::dialog::DialogClient;
    use std::time::Duration;

    let (addr, server) = super::serve_embedded(pb().clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .expect("bind");
    assert!(addr.ip().is_loopback() && addr.port() != 0);
    let client = DialogClient::connect(&format!("http://{addr}"), Duration::from_secs(2)).await.expect("connect");
    let mut stream = client.open(start("en")).await.expect("open");

    let mut greeting = String::new();
    loop {
        match stream.next_action().await.expect("greeting").expect("action").action {
            Some(Action::Say(s)) => {
                greeting.push_str(&s.text);
                if s.last {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(greeting.starts_with("Hello, thanks for calling"), "{greeting}");

    stream
        .send(Event::Utterance(Utterance {
            text: "What's my balance?".into(),
            is_final: true,
            confidence: 0.93,
            language: "en".into(),
            turn: 1,
            ..Default::default()
        }))
        .await
        .expect("send");
    let mut intent = String::new();
    let mut reply = String::new();
    loop {
        match stream.next_action().await.expect("reply").expect("action").action {
            Some(Action::Annotate(a)) => intent = a.intent,
            Some(Action::Say(s)) => {
                reply.push_str(&s.text);
                if s.last {
                    break;
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(intent, "balance");
    assert!(reply.contains("Your balance is forty-two yuan fifty."), "{reply}");

    stream.send(Event::Utterance(Utterance { text: "bye".into(), is_final: true, ..Default::default() })).await.unwrap();
    let mut hung_up = false;
    while let Some(a) = stream.next_action().await {
        if let Some(Action::Hangup(h)) = a.unwrap().action {
            assert_eq!(h.reason, "caller-goodbye");
            hung_up = true;
            break;
        }
    }
    assert!(hung_up);
    server.abort();
}

#[tokio::test]
async fn grpc_stream_must_start_with_start() {
    use crate::proto::dialog::dialog_client::DialogClient as Raw;
    let (addr, server) = super::serve_embedded(pb().clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut raw = Raw::connect(format!("http://{addr}")).await.unwrap();
    let first = utter("balance", "en");
    let mut resp = raw.converse(tokio_stream::iter(vec![first])).await.unwrap().into_inner();
    let status = resp.message().await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    server.abort();
}

#[test]
fn thanks_alone_is_answered_and_is_no_misunderstanding() {
    for (lang, data, thanks, answer) in [
        ("en", "How much data do I have left?", "Great, thank you.", "You're welcome"),
        ("zh", "我还剩多少流量？", "好的，谢谢。", "不客气"),
    ] {
        let mut c = conv(lang);
        ask(&mut c, data, lang);
        // Thanks between misunderstandings does not let them add up to a handoff (three in a
        // row hand over in this playbook).
        ask(&mut c, "blorp frobnicate", lang);
        ask(&mut c, "blorp frobnicate", lang);
        let t = ask(&mut c, thanks, lang);
        assert_eq!(t.intent, "thanks", "{thanks}");
        assert!(t.said.contains(answer), "{thanks} -> {}", t.said);
        assert!(t.escalate.is_none());
        let t = ask(&mut c, "blorp frobnicate", lang);
        assert_eq!(t.intent, FALLBACK_INTENT);
        assert!(t.escalate.is_none(), "the miss after the thanks is the first of a new run");
    }
}

#[test]
fn a_declined_escalation_leaves_the_conversation_with_the_brain() {
    use crate::proto::dialog::{caller_event::Event, CallerEvent, EscalationDeclined};
    let mut c = conv("en");
    let t = ask(&mut c, "Can I speak to an agent?", "en");
    assert!(t.escalate.is_some());
    let declined = CallerEvent { event: Some(Event::Declined(EscalationDeclined { reason: "explicit-request".into() })) };
    assert!(c.on_event(&declined).is_empty(), "nothing to say: the gateway asked the caller");
    // A thanks is answered as thanks, not with "you are being connected".
    let t = ask(&mut c, "Thank you.", "en");
    assert!(t.said.contains("You're welcome"), "{}", t.said);
    // And a new request for a person is proposed again.
    assert!(ask(&mut c, "I want to talk to a real person.", "en").escalate.is_some());
}

#[test]
fn a_caller_heard_in_the_wrong_language_is_offered_and_takes_theirs_by_keypad() {
    // Language detected per utterance (none fixed at the start): a miss in English is followed
    // by the Mandarin keypad hint, spoken in Mandarin, in the same turn.
    let mut c = conv("");
    let t = ask(&mut c, "purple elephants dancing", "en");
    assert_eq!(t.intent, FALLBACK_INTENT);
    assert!(t.said.contains("Sorry, I didn't catch that"), "{}", t.said);
    assert!(t.said.contains("普通话服务请按八"), "{}", t.said);
    assert_eq!(t.chunk_languages.first().map(String::as_str), Some("en"));
    assert_eq!(t.chunk_languages.last().map(String::as_str), Some("zh"), "the hint is said in its own language");
    // And the other way round.
    let t = ask(&mut c, "今天天气怎么样", "zh");
    assert!(t.said.contains("For English, press nine"), "{}", t.said);
    // The key fixes the language: the gateway is told, the greeting is said again in it, and
    // the misses heard in the wrong language no longer count towards a handoff.
    let t = turn(c.on_event(&ev(Event::Dtmf(Dtmf { digits: "8".into(), duration_ms: 80 }))));
    assert_eq!(t.set_language.as_deref(), Some("zh"));
    assert_eq!(t.intent, "language");
    assert!(t.said.contains("您好"), "{}", t.said);
    assert_eq!(c.language(), "zh");
    for i in 1..pb().max_fallbacks() {
        let t = ask(&mut c, "今天天气怎么样", "zh");
        assert!(t.escalate.is_none(), "escalated after {i} misses in the chosen language");
        // The language is chosen: no more hints.
        assert!(!t.said.contains("press nine"), "{}", t.said);
    }
}

#[test]
fn language_keys_are_checked_against_languages_and_intent_keys() {
    let with = |keys: &str| pb_source().replace(r#"language_keys = { "8" = "zh", "9" = "en" }"#, keys);
    let err = Playbook::from_toml_str(&with(r#"language_keys = { "1" = "zh" }"#)).unwrap_err().to_string();
    assert!(err.contains("settings.language_keys.\"1\"") && err.contains("balance"), "{err}");
    let err = Playbook::from_toml_str(&with(r#"language_keys = { "8" = "fr" }"#)).unwrap_err().to_string();
    assert!(err.contains("settings.language_keys.\"8\"") && err.contains("fr"), "{err}");
    let err = Playbook::from_toml_str(&with(r#"language_keys = { "8x" = "zh" }"#)).unwrap_err().to_string();
    assert!(err.contains("keypad keys"), "{err}");
    assert!(Playbook::from_toml_str(&with("")).is_ok(), "language keys are optional");
}

fn pb_source() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/playbook.toml")).expect("assets/playbook.toml")
}

#[test]
fn a_mandarin_keyword_the_recognizer_wrote_in_homophones_is_still_understood() {
    let mut c = conv("zh");
    // 宽带 written as 宽待 (both kuan dai): the broadband answer, not "didn't catch that".
    let t = ask(&mut c, "宽待老是断线", "zh");
    assert_eq!(t.intent, "broadband");
    // Words written right win over a homophone elsewhere in the sentence.
    let t = ask(&mut c, "我想查一下余额，宽待的事以后再说", "zh");
    assert_eq!(t.intent, "balance");
    // A homophone never hands over or hangs up: 转任工 is left to triage's clarifying question.
    let mut c = conv("zh");
    let t = ask(&mut c, "转任工", "zh");
    assert!(t.escalate.is_none(), "{t:?}");
}
