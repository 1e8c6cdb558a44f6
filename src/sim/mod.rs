//! `frontline chat` and `frontline eval triage`: the call pipeline without audio.
//!
//! A typed or scripted turn goes exactly where a recognized utterance goes on a call: to the
//! brain over the real gRPC contract (the embedded playbook brain on a loopback port, reached
//! through [`DialogClient`]) and to the same [`Triage`] policy, fed the brain's annotations and
//! escalation proposals. Service designers use it to try a playbook and triage settings; the
//! eval scores triage against a labelled set (`eval/`).
//!
//! Script format: JSON Lines, one dialog per line, see `eval/README.md`. Turns are numbered
//! from 0 (the index into `turns`).

mod eval;

pub use eval::{score, EvalReport, LangScore};

use crate::brain::{serve_embedded, BrainError, Playbook, PlaybookError};
use crate::config::{Config, ConfigError};
use crate::dialog::{DialogClient, DialogError, DialogStream};
use crate::proto::dialog::{
    bot_action::Action, caller_event::Event, CallEnd, CallStart, Channel, Dtmf, Silence, Utterance,
};
use crate::triage::{Decision, Escalation, Triage, TriageConfig, UtteranceInput};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

/// How long one brain action may take before the simulator gives up on the dialog.
const ACTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Interactive mode only: how long to wait after a reply for an escalate/hang-up that follows it.
const SETTLE: Duration = Duration::from_millis(150);

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Playbook(#[from] PlaybookError),
    #[error(transparent)]
    Brain(#[from] BrainError),
    #[error(transparent)]
    Dialog(#[from] DialogError),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}:{line}: {message}")]
    Script { path: PathBuf, line: usize, message: String },
    #[error("dialog {id:?}: the brain sent nothing for {} ms", ACTION_TIMEOUT.as_millis())]
    Timeout { id: String },
    #[error("cannot write the output: {0}")]
    Write(std::io::Error),
}

/// `frontline chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct ChatArgs {
    /// JSON Lines of dialogs to run instead of typing turns (see eval/README.md).
    #[arg(long)]
    pub script: Option<PathBuf>,
    /// Print one JSON object per dialog instead of a readable transcript.
    #[arg(long)]
    pub json: bool,
    /// Language of the conversation (en or zh); a dialog's own "lang" wins in a script.
    #[arg(long)]
    pub lang: Option<String>,
    /// Playbook TOML for the brain; default: the built-in telecom demo.
    #[arg(long)]
    pub playbook: Option<PathBuf>,
    /// Config file whose [triage] table to use; default: the built-in defaults.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Caller number (for VIP numbers).
    #[arg(long, default_value = "13800138000")]
    pub caller: String,
    /// Talk to this brain (e.g. `frontline brain --llm-url ...` at http://127.0.0.1:50061)
    /// instead of a playbook brain started for the chat.
    #[arg(long, value_name = "URL")]
    pub brain: Option<String>,
}

/// `frontline eval triage FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Labelled JSON Lines (each dialog with "expect").
    pub file: PathBuf,
    #[arg(long)]
    pub playbook: Option<PathBuf>,
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Also print each dialog that was scored wrong.
    #[arg(long)]
    pub verbose: bool,
    /// Write the confusion table (labelled reason by outcome, per language) to this file.
    #[arg(long, value_name = "PATH")]
    pub confusion: Option<PathBuf>,
}

/// One caller turn of a script.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TurnInput {
    Text(String),
    Dtmf(DtmfTurn),
    Silence(SilenceTurn),
    Utterance(UtteranceTurn),
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DtmfTurn {
    pub dtmf: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceTurn {
    pub silence_ms: u32,
}

/// An utterance with the recognizer's side information, to exercise confidence and shouting.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UtteranceTurn {
    pub text: String,
    #[serde(default)]
    pub confidence: Option<f32>,
    #[serde(default)]
    pub loudness_dbfs: Option<f32>,
    #[serde(default)]
    pub silence_before_ms: Option<u32>,
    /// The recognizer's other readings of the same audio (n-best or segment alternatives).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub escalate_at: Option<u32>,
    #[serde(default)]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Dialog {
    pub id: String,
    #[serde(default)]
    pub lang: Option<String>,
    #[serde(default)]
    pub caller: Option<String>,
    pub turns: Vec<TurnInput>,
    #[serde(default)]
    pub expect: Option<Expect>,
    /// Free text for the author of the set (why this dialog is a trap); ignored.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvidenceOut {
    pub turn: u32,
    pub trigger: String,
    pub text: String,
}

/// What a dialog came to: one JSON line of `frontline chat --script --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outcome {
    pub id: String,
    pub lang: String,
    pub escalated_at: Option<u32>,
    /// The category: explicit, emotion, ambiguity, risk, other.
    pub reason: Option<String>,
    /// The reason code, e.g. "risk-dispute".
    pub code: Option<String>,
    pub priority: Option<String>,
    pub evidence: Vec<EvidenceOut>,
    /// The bot's reply to each turn that was played.
    pub replies: Vec<String>,
    /// Brain proposals triage overruled.
    pub overruled: Vec<EvidenceOut>,
    /// Clarifying questions asked: the trigger that was unsure, and the question.
    pub asked: Vec<EvidenceOut>,
}

/// Reads a JSON Lines script; blank lines and lines starting with `//` are skipped.
pub fn read_script(path: &Path) -> Result<Vec<Dialog>, SimError> {
    let text = std::fs::read_to_string(path).map_err(|source| SimError::Read { path: path.to_owned(), source })?;
    parse_script(&text, path)
}

pub fn parse_script(text: &str, path: &Path) -> Result<Vec<Dialog>, SimError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let bad = |message: String| SimError::Script { path: path.to_owned(), line: i + 1, message };
        let d: Dialog = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if let Some(r) = d.expect.as_ref().and_then(|e| e.reason.as_deref()) {
            if crate::triage::Category::parse(r).is_none() {
                return Err(bad(format!("expect.reason {r:?}: use explicit, emotion, ambiguity, risk or other")));
            }
        }
        out.push(d);
    }
    Ok(out)
}

/// The brain and triage, wired as on a call.
pub struct Simulator {
    client: DialogClient,
    triage: Arc<TriageConfig>,
    languages: Vec<String>,
    default_language: String,
    /// The playbook brain started for this simulator; None for an external brain.
    _server: Option<tokio::task::JoinHandle<Result<(), BrainError>>>,
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if let Some(s) = &self._server {
            s.abort();
        }
    }
}

impl Simulator {
    /// Serves `playbook` on a free loopback port and connects to it over gRPC.
    pub async fn start(playbook: Playbook, triage: TriageConfig) -> Result<Simulator, SimError> {
        let languages = playbook.languages().to_vec();
        let default_language = playbook.default_language().to_string();
        let (addr, server) = serve_embedded(playbook, crate::brain::default_addr()).await?;
        let client = DialogClient::connect(&format!("http://{addr}"), Duration::from_secs(5)).await?;
        Ok(Simulator { client, triage: Arc::new(triage), languages, default_language, _server: Some(server) })
    }

    /// Talks to the brain at `url`; the playbook only names the languages to offer.
    pub async fn connect(url: &str, playbook: &Playbook, triage: TriageConfig) -> Result<Simulator, SimError> {
        let client = DialogClient::connect(url, Duration::from_secs(5)).await?;
        Ok(Simulator {
            client,
            triage: Arc::new(triage),
            languages: playbook.languages().to_vec(),
            default_language: playbook.default_language().to_string(),
            _server: None,
        })
    }

    /// From the command line's `--playbook` and `--config`.
    pub async fn from_paths(playbook: Option<&Path>, config: Option<&Path>) -> Result<Simulator, SimError> {
        let pb = Playbook::load_or_embedded(playbook)?;
        let triage = match config {
            Some(p) => Config::load(p)?.triage,
            None => TriageConfig::default(),
        };
        Simulator::start(pb, triage).await
    }

    /// A supported language, or the playbook's default with a log line.
    pub fn language(&self, asked: Option<&str>) -> String {
        match asked {
            None | Some("") => self.default_language.clone(),
            Some(l) if self.languages.iter().any(|s| s == l) => l.to_string(),
            Some(l) => {
                tracing::warn!(language = l, fallback = %self.default_language, "unknown language, using the default");
                self.default_language.clone()
            }
        }
    }

    async fn open(&self, id: &str, lang: &str, caller: &str) -> Result<Session, SimError> {
        let stream = self
            .client
            .open(CallStart {
                call_id: id.to_string(),
                caller: caller.to_string(),
                callee: "chat".into(),
                language: lang.to_string(),
                channel: Channel::Text as i32,
                metadata: Default::default(),
            })
            .await?;
        let mut s = Session {
            id: id.to_string(),
            stream,
            triage: Triage::new(self.triage.clone(), caller),
            escalation: None,
            ended: false,
            greeting: String::new(),
            asked: Vec::new(),
        };
        if let Decision::Escalate(e) = s.triage.on_call_start() {
            s.escalation = Some(e);
        }
        s.greeting = s.reply_until_last().await?;
        Ok(s)
    }

    /// Runs one scripted dialog to its end or its escalation.
    pub async fn run(&self, d: &Dialog, default_caller: &str) -> Result<Outcome, SimError> {
        let lang = self.language(d.lang.as_deref());
        let caller = d.caller.as_deref().unwrap_or(default_caller);
        let mut s = self.open(&d.id, &lang, caller).await?;
        let mut replies = Vec::new();
        let mut last = 0;
        for (i, t) in d.turns.iter().enumerate() {
            if s.escalation.is_some() || s.ended {
                break;
            }
            last = i as u32;
            let r = s.turn(i as u32, t, None).await?;
            replies.push(r);
        }
        s.finish(last).await?;
        Ok(s.outcome(lang, replies))
    }
}

/// One dialog on one `Converse` stream.
struct Session {
    id: String,
    stream: DialogStream,
    triage: Triage,
    escalation: Option<Escalation>,
    /// The brain hung up.
    ended: bool,
    greeting: String,
    /// Clarifying questions triage asked, in order.
    asked: Vec<EvidenceOut>,
}

impl Session {
    async fn next(&mut self) -> Result<Option<Action>, SimError> {
        match tokio::time::timeout(ACTION_TIMEOUT, self.stream.next_action()).await {
            Err(_) => Err(SimError::Timeout { id: self.id.clone() }),
            Ok(None) => Ok(None),
            Ok(Some(a)) => Ok(a?.action),
        }
    }

    fn note(&mut self, d: Decision) {
        match d {
            Decision::Escalate(e) => {
                self.escalation.get_or_insert(e);
            }
            Decision::Clarify(c) => {
                self.triage.clarification_asked(c.turn);
                let trigger = c.evidence.first().map(|e| e.trigger.clone()).unwrap_or_default();
                self.asked.push(EvidenceOut { turn: c.turn, trigger, text: c.question });
            }
            Decision::Continue | Decision::AlreadyEscalated => {}
        }
    }

    async fn reply_until_last(&mut self) -> Result<String, SimError> {
        let mut text = String::new();
        while let Some(a) = self.next().await? {
            if let Action::Say(s) = a {
                push_reply(&mut text, &s.text);
                if s.last {
                    break;
                }
            }
        }
        Ok(text)
    }

    /// Plays one turn: the brain's actions left over from the previous turn (an escalate or a
    /// hang-up follows the reply it belongs to), triage's own reading of this turn, then the
    /// brain's annotation and reply. `settle` waits briefly for actions that follow the reply.
    async fn turn(&mut self, i: u32, t: &TurnInput, settle: Option<Duration>) -> Result<String, SimError> {
        let event = match t {
            TurnInput::Text(text) => utterance_event(text, 1.0),
            TurnInput::Utterance(u) => utterance_event(&u.text, u.confidence.unwrap_or(1.0)),
            TurnInput::Dtmf(d) => Event::Dtmf(Dtmf { digits: d.dtmf.trim().to_string(), duration_ms: 100 }),
            TurnInput::Silence(s) => Event::Silence(Silence { duration_ms: s.silence_ms }),
        };
        if matches!(&event, Event::Dtmf(d) if d.digits.is_empty()) {
            return Ok(String::new());
        }
        self.stream.send(event).await?;
        let mut reply = String::new();
        let mut annotated = false;
        let asked_before = self.asked.len();
        loop {
            let Some(a) = self.next().await? else {
                self.ended = true;
                break;
            };
            match a {
                Action::Escalate(e) => {
                    let at = if annotated { i } else { i.saturating_sub(1) };
                    let d = self.triage.on_brain_escalate(at, &e.reason, &e.summary);
                    self.note(d);
                }
                Action::Hangup(_) => {
                    self.ended = true;
                    if !annotated {
                        // The brain hung up after the previous turn; this one was never heard.
                        return Ok(String::new());
                    }
                }
                Action::Annotate(a) => {
                    if !annotated {
                        annotated = true;
                        let d = self.own(i, t);
                        self.note(d);
                    }
                    let d = self.triage.on_brain(i, &a.intent, &a.sentiment);
                    self.note(d);
                }
                Action::Say(s) => {
                    push_reply(&mut reply, &s.text);
                    if s.last && annotated {
                        break;
                    }
                }
                Action::Transfer(_) | Action::CollectDigits(_) => {}
            }
        }
        // On a call the gateway asks triage's question instead of the brain's answer.
        if self.escalation.is_none() && self.asked.len() > asked_before {
            if let Some(q) = self.asked.last() {
                reply = q.text.clone();
            }
        }
        if let Some(wait) = settle {
            while !self.ended {
                match tokio::time::timeout(wait, self.stream.next_action()).await {
                    Err(_) => break,
                    Ok(None) => self.ended = true,
                    Ok(Some(a)) => match a?.action {
                        Some(Action::Escalate(e)) => {
                            let d = self.triage.on_brain_escalate(i, &e.reason, &e.summary);
                            self.note(d);
                        }
                        Some(Action::Hangup(_)) => self.ended = true,
                        _ => {}
                    },
                }
            }
        }
        Ok(reply)
    }

    /// Triage's own detectors for turn `i`.
    fn own(&mut self, i: u32, t: &TurnInput) -> Decision {
        match t {
            TurnInput::Text(text) => self.triage.on_utterance(&UtteranceInput {
                turn: i,
                text,
                language: "",
                confidence: 1.0,
                loudness_dbfs: None,
                silence_before_ms: 0,
            }),
            TurnInput::Utterance(u) => self.triage.on_utterance_heard(
                &UtteranceInput {
                    turn: i,
                    text: &u.text,
                    language: "",
                    confidence: u.confidence.unwrap_or(1.0),
                    loudness_dbfs: u.loudness_dbfs,
                    silence_before_ms: u.silence_before_ms.unwrap_or(0),
                },
                &u.alternatives,
            ),
            TurnInput::Dtmf(d) => {
                let mut out = Decision::Continue;
                for c in d.dtmf.trim().chars() {
                    out = self.triage.on_dtmf(i, c);
                    if !matches!(out, Decision::Continue) {
                        break;
                    }
                }
                out
            }
            TurnInput::Silence(s) => self.triage.on_silence(i, s.silence_ms),
        }
    }

    /// Ends the call and collects what the brain still had to say about the last turn.
    async fn finish(&mut self, last_turn: u32) -> Result<(), SimError> {
        self.stream.send(Event::End(CallEnd { reason: "caller-hangup".into() })).await.ok();
        while let Some(a) = self.next().await? {
            if let Action::Escalate(e) = a {
                let d = self.triage.on_brain_escalate(last_turn, &e.reason, &e.summary);
                self.note(d);
            }
        }
        Ok(())
    }

    fn outcome(&self, lang: String, replies: Vec<String>) -> Outcome {
        let e = self.escalation.as_ref();
        let ev = |v: &crate::triage::Evidence| EvidenceOut { turn: v.turn, trigger: v.trigger.clone(), text: v.text.clone() };
        Outcome {
            id: self.id.clone(),
            lang,
            escalated_at: e.map(|e| e.turn),
            reason: e.map(|e| e.category.as_str().to_string()),
            code: e.map(|e| e.code.clone()),
            priority: e.map(|e| e.priority.as_str().to_string()),
            evidence: e.map(|e| e.evidence.iter().map(ev).collect()).unwrap_or_default(),
            replies,
            overruled: self.triage.overruled().iter().map(ev).collect(),
            asked: self.asked.clone(),
        }
    }
}

fn push_reply(buf: &mut String, chunk: &str) {
    // Chinese sentences join without a space; English ones need one.
    if !buf.is_empty() && !crate::brain::text::has_cjk(chunk) {
        buf.push(' ');
    }
    buf.push_str(chunk);
}

fn utterance_event(text: &str, confidence: f32) -> Event {
    Event::Utterance(Utterance {
        text: text.to_string(),
        is_final: true,
        confidence,
        language: String::new(),
        timings: None,
        turn: 0,
    })
}

/// `frontline chat`: a script, or typed turns from stdin.
pub async fn chat(args: ChatArgs) -> Result<(), SimError> {
    let sim = match &args.brain {
        Some(url) => {
            let pb = Playbook::load_or_embedded(args.playbook.as_deref())?;
            let triage = match &args.config {
                Some(p) => Config::load(p)?.triage,
                None => TriageConfig::default(),
            };
            Simulator::connect(url, &pb, triage).await?
        }
        None => Simulator::from_paths(args.playbook.as_deref(), args.config.as_deref()).await?,
    };
    let mut out = std::io::stdout();
    if let Some(path) = &args.script {
        for mut d in read_script(path)? {
            if d.lang.is_none() {
                d.lang = args.lang.clone();
            }
            let o = sim.run(&d, &args.caller).await?;
            if args.json {
                let line = serde_json::to_string(&o).map_err(|e| SimError::Write(e.into()))?;
                write_line(&mut out, &line)?;
            } else {
                write_line(&mut out, &format!("== {} ({})", o.id, o.lang))?;
                for (i, (t, r)) in d.turns.iter().zip(&o.replies).enumerate() {
                    write_line(&mut out, &format!("[{i}] caller: {}", show_turn(t)))?;
                    write_line(&mut out, &format!("[{i}] bot:    {r}"))?;
                }
                write_line(&mut out, &show_escalation(&o))?;
            }
        }
        return Ok(());
    }
    interactive(&sim, &args).await
}

async fn interactive(sim: &Simulator, args: &ChatArgs) -> Result<(), SimError> {
    let mut out = std::io::stdout();
    let lang = sim.language(args.lang.as_deref());
    let mut s = sim.open("chat-1", &lang, &args.caller).await?;
    write_line(&mut out, "Type what the caller says; /dtmf 0 presses a key, /silence 8000 stays silent, Ctrl-D ends.")?;
    write_line(&mut out, &format!("bot: {}", s.greeting))?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut i = 0u32;
    let mut replies = Vec::new();
    while s.escalation.is_none() && !s.ended {
        let Some(line) = lines.next_line().await.map_err(SimError::Write)? else {
            break;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let t = if let Some(d) = line.strip_prefix("/dtmf ") {
            TurnInput::Dtmf(DtmfTurn { dtmf: d.trim().to_string() })
        } else if let Some(ms) = line.strip_prefix("/silence ").and_then(|m| m.trim().parse().ok()) {
            TurnInput::Silence(SilenceTurn { silence_ms: ms })
        } else {
            TurnInput::Text(line.to_string())
        };
        let r = s.turn(i, &t, Some(SETTLE)).await?;
        write_line(&mut out, &format!("bot: {r}"))?;
        replies.push(r);
        i += 1;
    }
    s.finish(i.saturating_sub(1)).await?;
    let o = s.outcome(lang, replies);
    write_line(&mut out, &show_escalation(&o))?;
    Ok(())
}

fn show_turn(t: &TurnInput) -> String {
    match t {
        TurnInput::Text(s) => s.clone(),
        TurnInput::Utterance(u) => u.text.clone(),
        TurnInput::Dtmf(d) => format!("[keypad {}]", d.dtmf),
        TurnInput::Silence(s) => format!("[silent {} ms]", s.silence_ms),
    }
}

fn show_escalation(o: &Outcome) -> String {
    match (&o.escalated_at, &o.code) {
        (Some(t), Some(code)) => {
            let ev: Vec<String> = o.evidence.iter().map(|e| format!("turn {}: {} ({:?})", e.turn, e.trigger, e.text)).collect();
            format!(
                "-> ESCALATE at turn {t}: {} / {code}, priority {}\n   evidence: {}",
                o.reason.as_deref().unwrap_or(""),
                o.priority.as_deref().unwrap_or(""),
                ev.join("; ")
            )
        }
        _ => "-> no escalation".to_string(),
    }
}

fn write_line(out: &mut impl std::io::Write, s: &str) -> Result<(), SimError> {
    writeln!(out, "{s}").map_err(SimError::Write)
}

/// `frontline eval triage FILE`: runs every dialog and prints the score table.
pub async fn eval_triage(args: EvalArgs) -> Result<(), SimError> {
    let sim = Simulator::from_paths(args.playbook.as_deref(), args.config.as_deref()).await?;
    let dialogs = read_script(&args.file)?;
    let report = run_eval(&sim, &dialogs).await?;
    let mut out = std::io::stdout();
    write_line(&mut out, &format!("triage eval: {} ({} dialogs)", args.file.display(), dialogs.len()))?;
    write_line(&mut out, &report.table())?;
    if let Some(path) = &args.confusion {
        std::fs::write(path, report.confusion_table()).map_err(SimError::Write)?;
        write_line(&mut out, &format!("confusion table written to {}", path.display()))?;
    }
    if args.verbose {
        for w in &report.wrong {
            write_line(&mut out, w)?;
        }
    }
    Ok(())
}

/// Runs and scores labelled dialogs (those without "expect" are skipped).
pub async fn run_eval(sim: &Simulator, dialogs: &[Dialog]) -> Result<EvalReport, SimError> {
    let mut pairs = Vec::new();
    for d in dialogs.iter().filter(|d| d.expect.is_some()) {
        let o = sim.run(d, "13800138000").await?;
        pairs.push((d.clone(), o));
    }
    Ok(score(&pairs))
}

#[cfg(test)]
mod tests;
