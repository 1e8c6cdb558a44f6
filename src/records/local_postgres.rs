//! A throwaway PostgreSQL server on loopback, started from Debian's `postgresql` package for
//! tests and benchmarks (and stopped, with its files removed, when dropped). It is a real
//! server, not a stand-in: the records' PostgreSQL path is tested against what production runs.
//! PostgreSQL refuses to run as root, so as root the server runs as the `postgres` user the
//! package creates.

use anyhow::{bail, Context, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct LocalPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// `Some("postgres")` when this process is root.
    run_as: Option<&'static str>,
}

impl LocalPostgres {
    /// initdb + pg_ctl start on a free port of 127.0.0.1, trust authentication, fsync off.
    pub fn start() -> Result<LocalPostgres> {
        let bin = server_bin_dir()?;
        let root = std::fs::metadata("/proc/self").map(|m| m.uid() == 0).unwrap_or(false);
        let run_as = root.then_some("postgres");
        let dir = std::env::temp_dir().join(format!("frontline-pg-{}-{}", std::process::id(), crate::clock::now_ms() % 1_000_000_007));
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        if let Some(user) = run_as {
            let (uid, gid) = user_ids(user)?;
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).with_context(|| format!("chown {} to {user}", dir.display()))?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let server = LocalPostgres { dir, bin, port, run_as };
        let data = server.dir.join("data");
        server.run("initdb", &["-D", path(&data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"])?;
        server.start_again()?;
        Ok(server)
    }

    /// Connects as the superuser to the `postgres` database.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: sessions are cut, as in a database restart or crash).
    pub fn stop(&self) -> Result<()> {
        self.run("pg_ctl", &["-D", path(&self.dir.join("data")), "-m", "fast", "-w", "stop"])
    }

    /// Starts the stopped server again on the same port, with the same data.
    pub fn start_again(&self) -> Result<()> {
        let options = format!("-F -p {} -k {} -c listen_addresses=127.0.0.1", self.port, self.dir.display());
        let log = self.dir.join("server.log");
        self.run("pg_ctl", &["-D", path(&self.dir.join("data")), "-l", path(&log), "-o", &options, "-w", "-t", "60", "start"])
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<()> {
        let exe = self.bin.join(tool);
        let mut command = match self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = command.args(args).current_dir(&self.dir).output().with_context(|| format!("run {}", exe.display()))?;
        if !out.status.success() {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            bail!("{tool} {args:?} failed: {}{}\n{log}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", path(&self.dir.join("data")), "-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap_or_default()
}

/// The newest installed server's binaries (`/usr/lib/postgresql/<major>/bin`, Debian's layout).
fn server_bin_dir() -> Result<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin): &(u32, PathBuf)| bin.join("initdb").exists())
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!("no PostgreSQL server in /usr/lib/postgresql/*/bin (install Debian's postgresql package: scripts/setup.sh does)"),
    }
}

fn user_ids(user: &str) -> Result<(u32, u32)> {
    let id = |flag: &str| -> Result<u32> {
        let out = Command::new("id").args([flag, user]).output()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().with_context(|| format!("user {user} (install Debian's postgresql package)"))
    };
    Ok((id("-u")?, id("-g")?))
}
