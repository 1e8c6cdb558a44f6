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

impl ReportArgs {
    /// The config file given with --config.
    pub fn config_path(&self) -> Option<&std::path::Path> {
        self.source.config.as_deref()
    }
}

impl Source {
    fn location(&self, section: RecordsSection) -> anyhow::Result<Location> {
        let location = match &self.records {
            Some(l) => l.clone(),
            None => section(self.config.as_deref())?.location(),
        };
        existing(location)
    }
}

/// `location`, or the fix when it is a SQLite file that does not exist (yet): a reader must not
/// create an empty database where the gateway keeps none.
pub fn existing(location: Location) -> anyhow::Result<Location> {
    if let Location::Sqlite(path) = &location {
        if !path.exists() {
            anyhow::bail!("no call records at {} (run `frontline serve` first, or pass --records PATH|URL or --config FILE)", path.display());
        }
    }
    Ok(location)
}


#[derive(clap::Args)]
pub struct ReportArgs {
    #[command(flatten)]
    source: Source,
    /// First day (UTC, YYYY-MM-DD); default: `--days` before --until.
    #[arg(long)]
    since: Option<String>,
    /// Last day, included (UTC, YYYY-MM-DD); default: today.
    #[arg(long)]
    until: Option<String>,
    /// Days covered when --since is not given.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Write report.md and the plots (SVG) into this folder as well as printing the tables.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A caller turn recognized with less confidence than this counts as failed.
    #[arg(long, default_value_t = 0.5)]
    low_confidence: f32,
}

/// The replies that mean "not understood": the playbook's fallbacks and the gateway's own, in
/// every language (for the report's failed turns and the trainer's review).
pub fn fallback_replies(playbook: Option<&std::path::Path>) -> anyhow::Result<Vec<String>> {
    let playbook = crate::brain::playbook::Playbook::load_or_embedded(playbook)?;
    let prompts = playbook.prompts();
    Ok(prompts
        .fallback
        .all()
        .chain(prompts.no_understanding.all())
        .chain(["en", "zh"].map(crate::call::prompts::not_heard))
        .map(str::to_string)
        .collect())
}

/// The days a report covers (days since 1970-01-01, UTC, both included): `until` (default
/// `today`) and `since` (default `days` before it), or why they make no range.
pub fn report_days(since: Option<&str>, until: Option<&str>, days: u32, today: i64) -> Result<(i64, i64), String> {
    use super::report::{date, parse_date};
    let until = until.map(parse_date).transpose()?.unwrap_or(today);
    let since = since.map(parse_date).transpose()?.unwrap_or(until - i64::from(days.max(1)) + 1);
    if since > until {
        return Err(format!("since {} is after until {}", date(since), date(until)));
    }
    Ok((since, until))
}

/// The report over those days, from the records at `location`, with its title.
pub fn build_report(location: &Location, (since, until): (i64, i64), rules: &super::report::FailureRules) -> Result<(String, super::report::Report), super::RecordError> {
    use super::report::{date, Report};
    let to_ms = |d: i64| u64::try_from(d).unwrap_or(0) * 86_400_000;
    let data = super::report_data_at(location, to_ms(since), to_ms(until + 1))?;
    Ok((format!("Calls from {} to {} (UTC), {location}", date(since), date(until)), Report::build(&data, rules)))
}

/// The trainer's view of a report's days: what callers said that the playbook answered with a
/// fallback, grouped by similarity (`frontline review list` and the console's report page).
/// Only fallbacks count: a turn is a fallback whatever its confidence, so any report's rules
/// give the same groups.
pub fn missed_utterances(report: &super::report::Report) -> Vec<crate::brain::review::Group> {
    use super::report::FailureKind;
    use crate::brain::review::{group, Miss};
    let misses = report
        .failed_turns
        .iter()
        .filter(|f| f.kind == FailureKind::Fallback)
        .map(|f| Miss { call_id: f.call_id.clone(), turn: f.turn, heard: f.heard.clone(), language: f.language.clone() })
        .collect();
    group(misses)
}

/// `frontline report`: tables (and with --out, report.md and SVG plots) from the records.
/// `fallback_replies` are the replies that mean the AI did not understand (the playbook's).
pub fn report(args: ReportArgs, section: RecordsSection, fallback_replies: Vec<String>) -> anyhow::Result<()> {
    let today = (crate::clock::now_ms() / 86_400_000) as i64;
    let days = report_days(args.since.as_deref(), args.until.as_deref(), args.days, today).map_err(|e| anyhow::anyhow!("--since/--until: {e}"))?;
    let location = args.source.location(section)?;
    let rules = super::report::FailureRules { low_confidence: args.low_confidence, fallback_replies };
    let (title, report) = build_report(&location, days, &rules)?;
    let markdown = report.markdown(&title);
    print!("{markdown}");
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
        };
        let plots = report.plots().map_err(|e| anyhow::anyhow!("{e}"))?;
        let images: String = plots.iter().map(|(name, _)| format!("\n![{name}]({name})\n")).collect();
        write("report.md", &format!("{markdown}\n## Plots\n{images}"))?;
        for (name, svg) in &plots {
            write(name, svg)?;
        }
        eprintln!("report: {} and {} plots in {}", "report.md", plots.len(), dir.display());
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_covers_the_days_asked_for_or_says_why_not() {
        let day = |s| super::super::report::parse_date(s).unwrap();
        let today = day("2026-12-07");
        assert_eq!(report_days(None, None, 7, today), Ok((day("2026-12-01"), today)));
        assert_eq!(report_days(Some("2026-11-30"), Some("2026-12-02"), 7, today), Ok((day("2026-11-30"), day("2026-12-02"))));
        assert_eq!(report_days(None, Some("2026-12-02"), 1, today), Ok((day("2026-12-02"), day("2026-12-02"))));
        assert!(report_days(Some("2026-12-05"), Some("2026-12-01"), 7, today).unwrap_err().contains("after"));
        assert!(report_days(Some("yesterday"), None, 7, today).unwrap_err().contains("YYYY-MM-DD"));
    }
}
