//! `frontline bench first-audio`: how long the caller waits, once a reply's text is known, for
//! its first audio, on replies the voice has never said (nothing cached).
//!
//! Two figures per reply, each on its own fresh reply so neither finds the other's audio in the
//! cache: the first sentence synthesized in one piece (how replies were spoken before clause
//! streaming), and the first piece of [`Tts::synthesize_stream`] (what a call waits for now).
//! Replies are made at run time from templates written for this bench, not from the playbook,
//! with amounts, names and places filled in, so no reply repeats and none was tuned on.

use crate::bench::report::{ms, Section, Table};
use crate::bench::stats::Summary;
use crate::bench::BenchEnv;
use crate::config::Config;
use crate::speech::models::ModelDir;
use crate::speech::tts::{split_sentences, Lang, ReplyPace, Tts};
use anyhow::Result;
use std::time::Instant;

// Every first clause holds a number that changes with each reply, so no first piece is ever
// found in the cache.
const ENGLISH: &[&str] = &[
    "Your {p} plan includes {n} gigabytes of data, unlimited national calls and {m} text messages every month.",
    "I can see a payment of {a} dollars from {d}, which reached your account the same afternoon.",
    "The travel pass for {c} costs {a} dollars a week, and it covers data, calls and texts while you are there.",
    "About {a} dollars will be due on your next bill, which comes out on {d} and includes taxes.",
    "Dial {n} from your own phone to change your voicemail code, then follow the prompts and pick four new digits.",
    "Ticket {n} is booked for {d} between nine and noon, so please make sure someone is home to let {w} in.",
    "The early exit fee would be {a} dollars this month, since your contract started on {d} last year.",
    "I have added a credit of {a} dollars for the outage in {c}, and it will show on your next statement.",
];

const MANDARIN: &[&str] = &[
    "您的{p}套餐每月包含{n}个G的流量、{m}分钟国内通话和一百条短信。",
    "我查到您在{d}缴费{a}元，当天下午已经到账，您可以放心使用。",
    "去{c}的漫游包每周{a}元，包含流量、通话和短信，落地后自动生效。",
    "您下一期账单预计{a}元左右，在{d}出账，已经包含税费。",
    "维修单{n}号已经约好{d}上午九点到十二点上门，{w}会提前给您打电话。",
    "我已经为您补偿{a}元话费，因为{c}的网络故障，下个月的账单上会显示。",
];

const PLANS: &[&str] = &["Silver", "Family", "Student", "Traveller", "Gold"];
const PLANS_ZH: &[&str] = &["畅享", "家庭", "校园", "商务", "青春"];
const PLACES: &[&str] = &["Japan", "Thailand", "France", "Brazil", "Canada", "Kenya"];
const PLACES_ZH: &[&str] = &["日本", "泰国", "法国", "新加坡", "澳大利亚", "海南"];
const DATES: &[&str] = &["March the third", "the twelfth of May", "July the ninth", "October the twenty-first"];
const DATES_ZH: &[&str] = &["三月三号", "五月十二号", "七月九号", "十月二十一号"];
const NAMES: &[&str] = &["Mister Okafor", "Miss Lindqvist", "Ravi", "Sofia"];
const NAMES_ZH: &[&str] = &["王先生", "李女士", "赵师傅", "陈小姐"];

/// The `i`-th reply in `lang`: a template with its slots filled from `i`, never the same twice.
fn reply(lang: Lang, i: usize) -> String {
    let pick = |list: &[&str]| list[(i / 3 + i) % list.len()].to_string();
    let (templates, plans, places, dates, names) = match lang {
        Lang::En => (ENGLISH, PLANS, PLACES, DATES, NAMES),
        Lang::Zh => (MANDARIN, PLANS_ZH, PLACES_ZH, DATES_ZH, NAMES_ZH),
    };
    templates[i % templates.len()]
        .replace("{p}", &pick(plans))
        .replace("{c}", &pick(places))
        .replace("{d}", &pick(dates))
        .replace("{w}", &pick(names))
        .replace("{n}", &(5 + i * 7 % 95).to_string())
        .replace("{m}", &(100 + i * 37 % 900).to_string())
        .replace("{a}", &format!("{}", 12 + i * 13 % 240))
}

pub fn first_audio(env: &BenchEnv) -> Result<Section> {
    let config = Config::default();
    let tts = Tts::new(config.tts.tts_config(&ModelDir::new(env.repo.join("models"))))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let per_language = if env.quick { 8 } else { 24 };
    let mut table = Table::new(&[
        "language",
        "voice",
        "replies",
        "whole first sentence p50 ms",
        "p95",
        "first streamed piece p50 ms",
        "p95",
        "max",
        "first piece audio p50 s",
        "stall p50 ms",
        "max",
    ]);
    for lang in [Lang::En, Lang::Zh] {
        // The first synthesis of a voice loads and warms its model: not a caller's wait.
        rt.block_on(tts.synthesize(&reply(lang, 1000), lang))?;
        let (mut whole, mut streamed, mut piece_audio, mut stalls) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in 0..per_language {
            let before = reply(lang, 2 * i);
            let first = split_sentences(&before).first().map_or(String::new(), |s| s.to_string());
            // Every reply is unseen, its opening words too (templates share them).
            tts.forget_spoken();
            let t = Instant::now();
            rt.block_on(tts.synthesize(&first, lang))?;
            whole.push(t.elapsed().as_secs_f64() * 1000.0);

            let after = reply(lang, 2 * i + 1);
            tts.forget_spoken();
            let t = Instant::now();
            let mut chunks = tts.synthesize_stream(&after, lang, &ReplyPace::new());
            // Playout as a call does it: from the first piece's arrival, each piece right after
            // the one before, or when it arrives if it is late (the caller hears a stall).
            let (mut playing_until, mut stall, mut pieces) = (None::<f64>, 0.0, Vec::new());
            while let Some(chunk) = rt.block_on(chunks.recv()).transpose()? {
                let arrived = t.elapsed().as_secs_f64() * 1000.0;
                let audio_ms = chunk.pcm_16k.len() as f64 / 16.0;
                let start = match playing_until {
                    None => {
                        streamed.push(arrived);
                        piece_audio.push(audio_ms / 1000.0);
                        arrived
                    }
                    Some(until) => {
                        stall += (arrived - until).max(0.0);
                        arrived.max(until)
                    }
                };
                playing_until = Some(start + audio_ms);
                pieces.push(chunk.text);
            }
            stalls.push(stall);
            eprintln!(
                "bench first-audio: {lang:?} {:.0} ms whole, {:.0} ms streamed, {stall:.0} ms stalled: {}",
                whole[whole.len() - 1],
                streamed.last().unwrap_or(&f64::NAN),
                pieces.join(" | ")
            );
        }
        let (w, s, a, st) = (Summary::of(&whole), Summary::of(&streamed), Summary::of(&piece_audio), Summary::of(&stalls));
        // The voice that actually spoke ("auto" picks the neural one when it is installed).
        let voice = match lang {
            Lang::En if tts.piper().is_some() => "piper".to_string(),
            Lang::Zh if tts.kokoro().is_some() => format!("kokoro {}", config.tts.kokoro_voice),
            _ => "espeak-ng".to_string(),
        };
        let cell = |s: Option<Summary>, f: fn(&Summary) -> f64| s.as_ref().map_or("-".into(), |s| ms(f(s)));
        table.row(vec![
            lang.as_str().into(),
            voice,
            per_language.to_string(),
            cell(w, |s| s.p50),
            cell(w, |s| s.p95),
            cell(s, |s| s.p50),
            cell(s, |s| s.p95),
            cell(s, |s| s.max),
            a.map_or("-".into(), |a| format!("{:.2}", a.p50)),
            cell(st, |s| s.p50),
            cell(st, |s| s.max),
        ]);
    }
    let mut section = Section::new("Time to first audio of an unseen reply", table);
    section.note(format!(
        "From the reply's text to its first synthesized audio, one reply at a time on an idle voice (no other call \
         synthesizing); each reply made at run time from templates written for the bench (not the playbook) and \
         never repeated, so nothing comes from the cache. \"Whole first sentence\" is how replies were spoken before \
         clause streaming; \"first streamed piece\" is what a call waits for now (a long sentence is cut after its \
         first clause, see `split_for_speech`, and pieces not yet made are cut at phrase boundaries to what the \
         voice makes before the audio ahead runs out, the first to a short opening phrase, see `speech::tts::pace`). \"Stall\" is the silence inside a reply once it has started: a piece that \
         arrives after the one before it has finished playing. Load average at the start: {}.",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    ));
    Ok(section)
}
