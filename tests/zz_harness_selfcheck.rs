// TEMPORARY self-check of tests/common (removed before hand-off).
mod common;
use common::*;
use std::time::{Duration, Instant};

#[test]
fn sipp_against_nothing_fails() {
    let port = free_udp_port();
    let t = Instant::now();
    let r = run_sipp_with(&sipp_scenario("uac_g729_488.xml"), port, SippOptions { timeout: Duration::from_secs(40), ..Default::default() });
    eprintln!("took {:?}\n{}", t.elapsed(), r.report());
    assert!(!r.success());
}

#[test]
fn sipp_unfilled_placeholder_panics() {
    let r = std::panic::catch_unwind(|| run_sipp(&sipp_scenario("uac_stream.xml"), 5060, &[("PT", "0")]));
    assert!(r.is_err());
}

#[test]
fn baresip_caller_hears_agent() {
    let agent = BaresipAgent::start(&fixture("en_agent.wav"));
    let call = run_baresip_call_with(agent.sip_port(), &fixture("en_balance.wav"), BaresipCallOptions { user: "agent".into(), hangup_after: Duration::from_secs(6), ..Default::default() });
    eprintln!("killed={} status={:?}\ncaller log tail:\n{}", call.killed, call.status, call.log.replace("    [", "\n["));
    assert!(call.established());
    let heard = call.heard();
    let d = wav_duration(heard);
    let db = wav_rms_dbfs(heard);
    eprintln!("heard {} {:?} {db:.1} dBFS; agent heard {:?}", heard.display(), d, agent.heard_wav());
    std::fs::copy(heard, "/tmp/fx/heard.wav").unwrap();
    assert!(db > -40.0);
    let ah = agent.heard_wav().expect("agent recorded");
    std::fs::copy(&ah, "/tmp/fx/agent_heard.wav").unwrap();
}

fn transcribe(ctx: &whisper_rs::WhisperContext, wav: &std::path::Path, lang: &str) -> String {
    let mut r = hound::WavReader::open(wav).unwrap();
    let s: Vec<f32> = r.samples::<i16>().map(|x| x.unwrap() as f32 / 32768.0).collect();
    let mut st = ctx.create_state().unwrap();
    let mut p = whisper_rs::FullParams::new(whisper_rs::SamplingStrategy::Greedy { best_of: 1 });
    p.set_language(Some(lang));
    if lang == "zh" { p.set_initial_prompt("以下是普通话的句子。"); }
    p.set_print_progress(false); p.set_print_realtime(false); p.set_print_special(false); p.set_print_timestamps(false);
    st.full(p, &s).unwrap();
    (0..st.full_n_segments()).map(|i| st.get_segment(i).unwrap().to_str_lossy().unwrap().into_owned()).collect::<Vec<_>>().join("")
}

#[test]
fn fixtures_recognized() {
    let ctx = whisper_rs::WhisperContext::new_with_params("models/ggml-base.bin", whisper_rs::WhisperContextParameters::default()).unwrap();
    for (f, lang, reftext) in [
        ("en_balance.wav", "en", "What is my account balance?"),
        ("en_data.wav", "en", "How much data do I have left this month?"),
        ("en_agent.wav", "en", "I want to speak to a real person."),
        ("en_cancel.wav", "en", "I want to cancel my contract."),
        ("zh_balance.wav", "zh", "我想查一下话费余额"),
        ("zh_data.wav", "zh", "我这个月还剩多少流量"),
        ("zh_agent.wav", "zh", "我要转人工"),
    ] { for dir in std::env::var("FX_DIRS").unwrap_or("audio-fixtures".into()).split(':') {
        let p = std::path::PathBuf::from(dir).join(f);
        if !p.exists() { continue; }
        let t = transcribe(&ctx, &p, lang);
        let score = if lang == "zh" { char_error_rate(reftext, &t) } else { word_error_rate(reftext, &t) };
        eprintln!("RESULT {dir} {f}: {t:?} err={score:.2}");
    }}
    for extra in ["/tmp/fx/heard.wav"] {
        let tmp = std::path::Path::new("/tmp/fx/heard16.wav");
        if std::path::Path::new(extra).exists() { to_16k_wav(std::path::Path::new(extra), tmp); eprintln!("RESULT {extra}: {:?}", transcribe(&ctx, tmp, "en")); }
    }
    let jfk = real_fixture("jfk.wav");
    let t = transcribe(&ctx, &jfk, "en");
    eprintln!("RESULT jfk: {t:?} wer={:.2}", word_error_rate(&real_transcript("jfk.wav"), &t));
}

#[test]
fn zh_candidates() {
    let ctx = whisper_rs::WhisperContext::new_with_params("models/ggml-base.bin", whisper_rs::WhisperContextParameters::default()).unwrap();
    let mut rows = vec![];
    for e in std::fs::read_dir("/tmp/fx/cand").unwrap().flatten() {
        let p = e.path();
        if p.extension().map_or(true, |x| x != "wav") { continue; }
        let reftext = std::fs::read_to_string(p.with_extension("txt")).unwrap();
        let t = transcribe(&ctx, &p, "zh");
        rows.push(format!("CAND {:.2} {} {:?} ref={}", char_error_rate(reftext.trim(), &t), p.file_name().unwrap().to_string_lossy(), t, reftext.trim()));
    }
    rows.sort();
    for r in rows { eprintln!("{r}"); }
}
