//! What the caller hears during a handoff: short spoken lines and hold audio.

/// The moments of a handoff that need words. A fallback is two lines: [`LineKind::NoAgent`]
/// (the apology) then what happens next ([`LineKind::CallbackTaken`], [`LineKind::BackToAi`]
/// or [`LineKind::Goodbye`]), so the callback is written down between them and the caller is
/// only told it is taken once it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// Triage fired; said before ringing the agent.
    Bridging,
    /// Said now and then while the agent's phone rings, between stretches of hold audio.
    Hold,
    /// Nobody answered, every agent was busy, or none was reachable.
    NoAgent,
    /// The callback request is stored.
    CallbackTaken,
    /// The caller goes back to the AI.
    BackToAi,
    /// The call ends.
    Goodbye,
}

/// The line for `kind`, in Mandarin when `lang` is "zh", else in English.
pub fn line(kind: LineKind, lang: &str) -> &'static str {
    let zh = lang == "zh";
    match (kind, zh) {
        (LineKind::Bridging, false) => "Let me connect you with a colleague who can help. Please hold.",
        (LineKind::Bridging, true) => "我为您转接人工客服，请稍候。",
        (LineKind::Hold, false) => "Thank you for holding. A colleague will be with you shortly.",
        (LineKind::Hold, true) => "感谢您的耐心等待，客服人员马上为您服务。",
        (LineKind::NoAgent, false) => "Sorry, all our colleagues are busy right now.",
        (LineKind::NoAgent, true) => "抱歉，目前客服人员都在忙。",
        (LineKind::CallbackTaken, false) => {
            "We'll call you back at this number as soon as possible. Thank you for calling, goodbye."
        }
        (LineKind::CallbackTaken, true) => "我们已记录您的请求，会尽快按这个号码给您回电。感谢您的来电，再见。",
        (LineKind::BackToAi, false) => "In the meantime, I'll do my best to help you myself. What can I do for you?",
        (LineKind::BackToAi, true) => "我先继续为您服务。请问有什么可以帮您？",
        (LineKind::Goodbye, false) => "Please call again a little later. Thank you for calling, goodbye.",
        (LineKind::Goodbye, true) => "请您稍后再拨。感谢您的来电，再见。",
    }
}

const RATE: usize = 16_000;
/// Loop RMS: soft under speech, clearly not silence (a caller must never think the line died).
const TARGET_RMS_DBFS: f32 = -20.0;

/// About 4 s of hold audio at 16 kHz: a soft two-note chime (C5 then G4, twice), each note a
/// bell-like tone with a gentle attack, an exponential decay and a faded tail. Every note starts
/// and ends at zero, so the buffer loops without a click; generated here, so there is no audio
/// asset to ship or license.
pub fn hold_audio_16k() -> Vec<i16> {
    const NOTE_S: f32 = 1.0;
    const NOTES_HZ: [f32; 4] = [523.25, 392.0, 523.25, 392.0];
    let note_len = (NOTE_S * RATE as f32) as usize;
    let attack = RATE * 15 / 1000;
    let release = RATE * 60 / 1000;
    let mut out: Vec<f32> = Vec::with_capacity(note_len * NOTES_HZ.len());
    for &f in &NOTES_HZ {
        for n in 0..note_len {
            let t = n as f32 / RATE as f32;
            let w = std::f32::consts::TAU * f * t;
            // Fundamental plus a quieter octave that fades faster: a chime, not a beep.
            let tone = w.sin() + 0.3 * (2.0 * w).sin() * (-t / 0.25).exp();
            // Raised-cosine attack and release reach exactly zero at the note's edges.
            let edge = |k: usize, len: usize| 0.5 - 0.5 * (std::f32::consts::PI * k as f32 / len as f32).cos();
            let env = (-t / 0.6).exp()
                * if n < attack { edge(n, attack) } else { 1.0 }
                * if n + release >= note_len { edge(note_len - 1 - n, release) } else { 1.0 };
            out.push(tone * env);
        }
    }
    let rms = (out.iter().map(|x| x * x).sum::<f32>() / out.len() as f32).sqrt();
    let gain = 10f32.powf(TARGET_RMS_DBFS / 20.0) / rms;
    out.iter().map(|x| (x * gain * 32767.0).round().clamp(-32768.0, 32767.0) as i16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hold_audio_loops_without_a_click_at_a_comfortable_level() {
        let a = hold_audio_16k();
        assert!((3 * RATE..=5 * RATE).contains(&a.len()), "{} samples", a.len());
        let (first, last) = (a[0] as i32, a[a.len() - 1] as i32);
        assert!(first.abs() < 100 && last.abs() < 100 && (last - first).abs() < 100, "{first} {last}");
        let rms = (a.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt() / 32768.0;
        let db = 20.0 * rms.log10();
        assert!((-24.0..=-16.0).contains(&db), "{db} dBFS");
        let peak = a.iter().map(|&x| (x as i32).abs()).max().unwrap();
        assert!(peak < 26000, "peak {peak} would clip on G.711");
        // Not silence anywhere for long: every 250 ms window has audible energy.
        for w in a.chunks(RATE / 4) {
            let r = (w.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt() / 32768.0;
            assert!(20.0 * r.log10() > -45.0, "a near-silent stretch in the hold audio");
        }
        // Looping: the wrap-around step is no bigger than steps inside the audio.
        let max_step = a.windows(2).map(|w| (w[1] as i32 - w[0] as i32).abs()).max().unwrap();
        assert!((last - first).abs() <= max_step);
    }

    #[test]
    fn lines_follow_the_language_and_default_to_english() {
        assert_eq!(line(LineKind::Bridging, "zh"), "我为您转接人工客服，请稍候。");
        assert_eq!(line(LineKind::Bridging, "en"), "Let me connect you with a colleague who can help. Please hold.");
        assert_eq!(line(LineKind::NoAgent, "fr"), line(LineKind::NoAgent, "en"));
        for kind in [LineKind::Bridging, LineKind::Hold, LineKind::NoAgent, LineKind::CallbackTaken, LineKind::BackToAi, LineKind::Goodbye] {
            assert!(line(kind, "en").is_ascii());
            assert!(line(kind, "zh").chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)));
        }
    }
}
