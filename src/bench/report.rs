//! Results as text: tables (Markdown, readable on a terminal too), notes, plots, and the
//! machine they were measured on.

use std::fmt::Write as _;
use std::path::Path;

/// Milliseconds as a table shows them.
pub fn ms(v: f64) -> String {
    format!("{v:.0}")
}

pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|s| s.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// A Markdown table with columns padded to line up in a terminal.
    pub fn markdown(&self) -> String {
        let cols = self.header.len();
        let width = |c: usize| {
            std::iter::once(&self.header).chain(&self.rows).map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0)
        };
        let widths: Vec<usize> = (0..cols).map(width).collect();
        let line = |cells: &[String]| {
            let mut s = String::from("|");
            for (c, w) in widths.iter().enumerate() {
                let cell = cells.get(c).map_or("", String::as_str);
                let _ = write!(s, " {cell}{} |", " ".repeat(w.saturating_sub(cell.chars().count())));
            }
            s + "\n"
        };
        let mut out = line(&self.header);
        out.push('|');
        for w in &widths {
            out.push_str(&format!("{}|", "-".repeat(w + 2)));
        }
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
        }
        out
    }
}

/// One benchmark's results.
pub struct Section {
    pub title: String,
    pub table: Table,
    pub notes: Vec<String>,
    /// (file name, SVG document)
    pub plots: Vec<(String, String)>,
}

impl Section {
    pub fn new(title: &str, table: Table) -> Section {
        Section { title: title.into(), table, notes: Vec::new(), plots: Vec::new() }
    }

    pub fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    pub fn plot(&mut self, file: &str, svg: String) {
        self.plots.push((file.into(), svg));
    }

    /// Markdown; plots are linked relative to the document (`plot_dir` from it).
    pub fn markdown(&self, plot_dir: &str) -> String {
        let mut s = format!("## {}\n\n{}\n", self.title, self.table.markdown());
        for n in &self.notes {
            s.push_str(&format!("{n}\n\n"));
        }
        for (file, _) in &self.plots {
            s.push_str(&format!("![{}]({plot_dir}/{file})\n\n", file.trim_end_matches(".svg").replace('_', " ")));
        }
        s
    }
}

fn first_line_value(path: &str, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    Some(line.split_once([':', '='])?.1.trim().trim_matches('"').to_string())
}

/// Where the figures were measured: CPU, cores, memory, OS, and how busy the machine was.
pub fn machine_description() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = first_line_value("/proc/cpuinfo", "model name").unwrap_or_else(|| "unknown CPU".into());
    let mem_gib = first_line_value("/proc/meminfo", "MemTotal")
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or("?".into(), |kib| format!("{:.1}", kib / 1024.0 / 1024.0));
    let os = first_line_value("/etc/os-release", "PRETTY_NAME").unwrap_or_else(|| "unknown OS".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "{cores} CPU cores (nproc) of {cpu}; {mem_gib} GiB RAM; {os}, Linux {}; load average at the start {}",
        kernel.trim(),
        load.join(" ")
    )
}

/// Writes each section's plots into `plot_dir` and, with `doc`, the whole Markdown report.
pub fn write(sections: &[Section], plot_dir: &Path, doc: Option<&Path>, header: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(plot_dir)?;
    for s in sections {
        for (file, svg) in &s.plots {
            std::fs::write(plot_dir.join(file), svg)?;
        }
    }
    if let Some(doc) = doc {
        // Links relative to the document, so the report renders wherever it is browsed.
        let rel = match (doc.parent(), plot_dir.strip_prefix(doc.parent().unwrap_or(Path::new("")))) {
            (Some(_), Ok(r)) => r.display().to_string(),
            _ => plot_dir.display().to_string(),
        };
        let mut text = header.to_string();
        for s in sections {
            text.push_str(&s.markdown(&rel));
        }
        std::fs::write(doc, text)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_line_up_and_sections_link_their_plots() {
        let mut t = Table::new(&["stage", "p50"]);
        t.row(vec!["transcript".into(), "312".into()]);
        assert_eq!(t.markdown(), "| stage      | p50 |\n|------------|-----|\n| transcript | 312 |\n");
        let mut s = Section::new("Latency", t);
        s.plot("latency_by_stage.svg", "<svg/>".into());
        assert!(s.markdown("benchmarks").contains("](benchmarks/latency_by_stage.svg)"));
        assert!(machine_description().contains("CPU cores"));
    }
}
