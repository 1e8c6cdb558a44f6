//! `frontline chat` and `frontline eval triage`: the gateway's calls without audio.
//!
//! Each dialog is a call of the gateway's own `CallCore` (see [`call`]), with typed turns where
//! transcripts would be, the brain over the real gRPC contract (the embedded playbook brain on
//! a loopback port, or `--brain URL`), and triage inside the core as on a phone call: the
//! no-input prompt, clarifying questions, fillers and handoff lines all happen here too.
//! Service designers use it to try a playbook and triage settings; the eval scores triage
//! against a labelled set (`eval/`).
//!
//! Script format: JSON Lines, one dialog per line, see `eval/README.md`. Turns are numbered
//! from 0 (the index into `turns`).

mod call;
mod eval;

pub use eval::{score, EvalReport, LangScore};

use self::call::TextCall;
use crate::brain::{serve_embedded, BrainError, Playbook, PlaybookError};
use crate::call::config::CallSettings;
use crate::call::core::CallInfo;
use crate::config::{Config, ConfigError};
use crate::dialog::{DialogClient, DialogError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncBufReadExt;

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
    /// Place each dialog as a real SIP call (sipp, spoken by the gateway's voices) against a
    /// gateway started for the run, and print the speech figures next to the text ones.
    /// Needs root (sipp streams RTP over raw sockets) and a quiet machine.
    #[arg(long)]
    pub voice: bool,
    /// With --voice: calls at a time.
    #[arg(long, default_value_t = 4)]
    pub calls: usize,
    /// With --voice: how long the caller listens after each turn before the next.
    #[arg(long, default_value_t = 9_000)]
    pub reply_ms: u64,
    /// With --voice: silence before the first turn, while the greeting plays.
    #[arg(long, default_value_t = 9_000)]
    pub lead_ms: u64,
    /// Only the first N labelled dialogs of the file.
    #[arg(long)]
    pub limit: Option<usize>,
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
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
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

/// The brain, reached over gRPC, and the settings every simulated call is decided with.
pub struct Simulator {
    client: DialogClient,
    settings: Arc<CallSettings>,
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
    pub async fn start(playbook: Playbook, config: &Config) -> Result<Simulator, SimError> {
        let languages = playbook.languages().to_vec();
        let default_language = playbook.default_language().to_string();
        let (addr, server) = serve_embedded(playbook, crate::brain::default_addr()).await?;
        let client = DialogClient::connect(&format!("http://{addr}"), Duration::from_secs(5)).await?;
        Ok(Simulator { client, settings: call_settings(config), languages, default_language, _server: Some(server) })
    }

    /// Talks to the brain at `url`; the playbook only names the languages to offer.
    pub async fn connect(url: &str, playbook: &Playbook, config: &Config) -> Result<Simulator, SimError> {
        let client = DialogClient::connect(url, Duration::from_secs(5)).await?;
        Ok(Simulator {
            client,
            settings: call_settings(config),
            languages: playbook.languages().to_vec(),
            default_language: playbook.default_language().to_string(),
            _server: None,
        })
    }

    /// From the command line's `--playbook` and `--config`.
    pub async fn from_paths(playbook: Option<&Path>, config: Option<&Path>) -> Result<Simulator, SimError> {
        let pb = Playbook::load_or_embedded(playbook)?;
        Simulator::start(pb, &load_config(config)?).await
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

    /// Answers a call in `lang` from `caller`; the greeting has played.
    async fn answer(&self, id: &str, lang: &str, caller: &str) -> Result<TextCall, SimError> {
        let info = CallInfo {
            call_id: id.to_string(),
            caller: caller.to_string(),
            callee: "chat".into(),
            language: Some(lang.to_string()),
            ..CallInfo::default()
        };
        TextCall::start(&self.client, self.settings.clone(), info).await
    }

    /// Runs one scripted dialog to its end or its escalation.
    pub async fn run(&self, d: &Dialog, default_caller: &str) -> Result<Outcome, SimError> {
        let lang = self.language(d.lang.as_deref());
        let caller = d.caller.as_deref().unwrap_or(default_caller);
        let mut call = self.answer(&d.id, &lang, caller).await?;
        call.take_said();
        let mut replies = Vec::new();
        for (i, t) in d.turns.iter().enumerate() {
            if !call.is_open() {
                break;
            }
            call.turn(&self.client, i, t).await?;
            replies.push(call.take_said());
        }
        call.hang_up(&self.client).await;
        Ok(outcome(&call, &d.id, lang, replies))
    }
}

/// The settings a call of the gateway would have with this config.
fn call_settings(config: &Config) -> Arc<CallSettings> {
    // Typed words carry their language; no recognizer is pinned to English.
    Arc::new(CallSettings::new(config.call_sections(true)))
}

fn load_config(path: Option<&Path>) -> Result<Config, SimError> {
    Ok(match path {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    })
}

/// What the call came to.
fn outcome(call: &TextCall, id: &str, lang: String, replies: Vec<String>) -> Outcome {
    let e = call.escalation();
    Outcome {
        id: id.to_string(),
        lang,
        escalated_at: e.map(|(_, at)| *at),
        reason: e.map(|(e, _)| e.category.as_str().to_string()),
        code: e.map(|(e, _)| e.code.clone()),
        priority: e.map(|(e, _)| e.priority.as_str().to_string()),
        evidence: e.map(|(e, _)| e.evidence.iter().map(|v| call.evidence(v)).collect()).unwrap_or_default(),
        replies,
        overruled: call.overruled(),
        asked: call.asked(),
    }
}

/// `frontline chat`: a script, or typed turns from stdin.
pub async fn chat(args: ChatArgs) -> Result<(), SimError> {
    let sim = match &args.brain {
        Some(url) => {
            let pb = Playbook::load_or_embedded(args.playbook.as_deref())?;
            Simulator::connect(url, &pb, &load_config(args.config.as_deref())?).await?
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
    let mut call = sim.answer("chat-1", &lang, &args.caller).await?;
    write_line(&mut out, "Type what the caller says; /dtmf 0 presses a key, /silence 8000 stays silent, Ctrl-D ends.")?;
    write_line(&mut out, &format!("bot: {}", call.take_said()))?;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut i = 0;
    let mut replies = Vec::new();
    while call.is_open() {
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
        call.turn(&sim.client, i, &t).await?;
        let said = call.take_said();
        write_line(&mut out, &format!("bot: {said}"))?;
        replies.push(said);
        i += 1;
    }
    call.hang_up(&sim.client).await;
    write_line(&mut out, &show_escalation(&outcome(&call, "chat-1", lang, replies)))?;
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
    let dialogs = labelled(read_script(&args.file)?, args.limit);
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

/// The dialogs with an "expect", the first `limit` of them when given.
pub fn labelled(dialogs: Vec<Dialog>, limit: Option<usize>) -> Vec<Dialog> {
    dialogs.into_iter().filter(|d| d.expect.is_some()).take(limit.unwrap_or(usize::MAX)).collect()
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
