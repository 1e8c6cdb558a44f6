//! `frontline calls list|show`: reads the records database directly (SQLite read-only, beside a
//! running gateway thanks to WAL, or the shared PostgreSQL), so it works whether the gateway is
//! up or not.

use super::{get_at, list_at, render_list, render_record, CallFilter, Location, Outcome};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum CallsCommand {
    /// Recent calls, newest first.
    List(ListArgs),
    /// One call's whole record: CDR, timeline, turns with latencies, triage decisions, packet.
    Show(ShowArgs),
}

#[derive(clap::Args)]
pub struct Source {
    /// TOML config whose records.url or records.path to read (default: the built-in default,
    /// var/records.db).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// The records database, a SQLite file or a postgres:// URL (overrides the config).
    #[arg(long)]
    records: Option<Location>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    source: Source,
    /// How many calls.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Only calls with this outcome: contained, escalated, abandoned, failed, interrupted.
    #[arg(long)]
    outcome: Option<String>,
    /// Only calls over this channel (sip, webrtc).
    #[arg(long)]
    channel: Option<String>,
}

#[derive(clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    source: Source,
    /// The call id (`frontline calls list` shows them).
    id: String,
}

/// Reads the `[records]` section of a config file (`None`: the built-in defaults). The caller
/// owns the configuration's format: the records layer only knows its own section.
pub type RecordsSection<'a> = &'a dyn Fn(Option<&std::path::Path>) -> anyhow::Result<super::RecordsConfig>;

impl Source {
    fn location(&self, section: RecordsSection) -> anyhow::Result<Location> {
        let location = match &self.records {
            Some(l) => l.clone(),
            None => section(self.config.as_deref())?.location(),
        };
        if let Location::Sqlite(path) = &location {
            if !path.exists() {
                anyhow::bail!("no call records at {} (run `frontline serve` first, or pass --records PATH|URL or --config FILE)", path.display());
            }
        }
        Ok(location)
    }
}


pub fn run(command: CallsCommand, section: RecordsSection) -> anyhow::Result<()> {
    match command {
        CallsCommand::List(args) => {
            let outcome = match args.outcome.as_deref() {
                None => None,
                Some(o) => Some(Outcome::parse(o).ok_or_else(|| {
                    anyhow::anyhow!("--outcome {o}: must be one of contained, escalated, abandoned, failed, interrupted")
                })?),
            };
            let filter = CallFilter { limit: args.limit, outcome, channel: args.channel, ..CallFilter::default() };
            let calls = list_at(&args.source.location(section)?, &filter)?;
            if args.source.json {
                println!("{}", serde_json::to_string_pretty(&calls)?);
            } else {
                print!("{}", render_list(&calls));
            }
        }
        CallsCommand::Show(args) => {
            let location = args.source.location(section)?;
            let Some(record) = get_at(&location, &args.id)? else {
                anyhow::bail!("no call {:?} in {location} (`frontline calls list` shows the ids)", args.id);
            };
            if args.source.json {
                println!("{}", serde_json::to_string_pretty(&record)?);
            } else {
                print!("{}", render_record(&record));
            }
        }
    }
    Ok(())
}
