//! The two databases the records can live in, behind one small interface: the embedded SQLite
//! file (one box, the default) or a PostgreSQL server shared by many gateways. The tables come
//! from one set of migrations (refinery, `migrations/`), written in SQL both read, and every
//! statement in `schema` is written once, with `?N` parameters (turned into PostgreSQL's `$N`
//! here). Synchronous: only the writer thread and short-lived readers use it, never a thread
//! of the async runtime, which the blocking PostgreSQL client must not run on
//! ([`off_runtime`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

refinery::embed_migrations!("src/records/migrations");

/// Where the records are.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL (libpq's key=value strings are not taken, so a
    /// path can never be mistaken for one).
    Postgres(String),
}

impl Location {
    /// A PostgreSQL URL, or else a SQLite file path.
    pub fn parse(s: &str) -> Location {
        if is_postgres_url(s) {
            Location::Postgres(s.to_string())
        } else {
            Location::Sqlite(PathBuf::from(s))
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "{}", p.display()),
            // The password stays out of logs and error messages.
            Location::Postgres(url) => write!(f, "{}", without_password(url)),
        }
    }
}

impl std::str::FromStr for Location {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Location, Self::Err> {
        Ok(Location::parse(s))
    }
}

/// The name the gateway's sessions carry in PostgreSQL.
const APPLICATION: &str = "frontline";

pub fn is_postgres_url(s: &str) -> bool {
    s.starts_with("postgres://") || s.starts_with("postgresql://")
}

fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let (auth, host) = match rest.split_once('@') {
        Some((auth, host)) => (auth, host),
        None => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    #[error("migrating the tables: {0}")]
    Migration(#[from] refinery::Error),
}

/// PostgreSQL's own words ("relation ... does not exist", "password authentication failed"),
/// not only the client's "db error".
fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

impl DbError {
    /// The server went away (restart, network): the write can be tried again on a new
    /// connection. A statement the server refused, or a value that did not convert, is not
    /// retried.
    pub fn is_connection_lost(&self) -> bool {
        let DbError::Postgres(e) = self else { return false };
        if e.is_closed() {
            return true;
        }
        if let Some(db) = e.as_db_error() {
            // Class 08: connection exception; 57P0x: the server is shutting down or restarting.
            let code = db.code().code();
            return code.starts_with("08") || code.starts_with("57P0");
        }
        // Socket errors (refused, reset, timed out) reach us as an io::Error underneath.
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            if cause.is::<std::io::Error>() {
                return true;
            }
            source = cause.source();
        }
        false
    }
}

/// One value bound to a `?N` parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Text(&'a str),
    MaybeText(Option<&'a str>),
    Int(Option<i64>),
    Real(f64),
    Bool(Option<bool>),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(s: &'a str) -> Self {
        Value::Text(s)
    }
}

impl<'a> From<&'a String> for Value<'a> {
    fn from(s: &'a String) -> Self {
        Value::Text(s)
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(s: Option<&'a str>) -> Self {
        Value::MaybeText(s)
    }
}

impl From<u64> for Value<'_> {
    fn from(v: u64) -> Self {
        Value::Int(Some(v as i64))
    }
}

impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::Int(Some(i64::from(v)))
    }
}

impl From<Option<u64>> for Value<'_> {
    fn from(v: Option<u64>) -> Self {
        Value::Int(v.map(|v| v as i64))
    }
}

impl From<f32> for Value<'_> {
    fn from(v: f32) -> Self {
        Value::Real(f64::from(v))
    }
}

impl From<Option<bool>> for Value<'_> {
    fn from(v: Option<bool>) -> Self {
        Value::Bool(v)
    }
}

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Value::Text(s) => s.to_sql(),
            Value::MaybeText(s) => s.to_sql(),
            Value::Int(v) => v.to_sql(),
            Value::Real(v) => v.to_sql(),
            Value::Bool(v) => v.to_sql(),
        }
    }
}

impl Value<'_> {
    fn as_postgres(&self) -> &(dyn postgres::types::ToSql + Sync) {
        match self {
            Value::Text(s) => s,
            Value::MaybeText(s) => s,
            Value::Int(v) => v,
            Value::Real(v) => v,
            Value::Bool(v) => v,
        }
    }
}

/// One column of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Cell {
    pub fn int(&self) -> Option<i64> {
        match self {
            Cell::Int(v) => Some(*v),
            Cell::Real(v) => Some(*v as i64),
            _ => None,
        }
    }

    pub fn real(&self) -> f64 {
        match self {
            Cell::Real(v) => *v,
            Cell::Int(v) => *v as f64,
            _ => 0.0,
        }
    }

    pub fn text(&self) -> Option<String> {
        match self {
            Cell::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

pub type Row = Vec<Cell>;

pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres { client: postgres::Client, url: String },
}

impl Db {
    /// The writer's connection, with the tables migrated to the newest version.
    pub fn open_writer(location: &Location) -> Result<Db, DbError> {
        let mut db = match location {
            Location::Sqlite(path) => Db::Sqlite(open_sqlite_writer(path)?),
            Location::Postgres(url) => Db::Postgres { client: connect(url, APPLICATION)?, url: url.clone() },
        };
        db.migrate()?;
        Ok(db)
    }

    /// A reader: SQLite read-only (WAL lets it run beside the writer), or a new PostgreSQL
    /// session.
    pub fn open_reader(location: &Location) -> Result<Db, DbError> {
        Ok(match location {
            Location::Sqlite(path) => {
                use rusqlite::OpenFlags;
                let conn = rusqlite::Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
                conn.busy_timeout(Duration::from_secs(2))?;
                Db::Sqlite(conn)
            }
            Location::Postgres(url) => Db::Postgres { client: connect(url, APPLICATION)?, url: url.clone() },
        })
    }

    fn migrate(&mut self) -> Result<(), DbError> {
        match self {
            Db::Sqlite(conn) => {
                migrations::runner().run(conn)?;
            }
            Db::Postgres { client, .. } => {
                migrations::runner().run(client)?;
            }
        }
        Ok(())
    }

    /// A new session after the old one was lost.
    pub fn reconnect(&mut self) -> Result<(), DbError> {
        if let Db::Postgres { client, url } = self {
            *client = connect(url, APPLICATION)?;
        }
        Ok(())
    }

    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(conn) => Ok(conn.execute(sql, rusqlite::params_from_iter(params.iter()))? as u64),
            Db::Postgres { client, .. } => {
                let params: Vec<_> = params.iter().map(Value::as_postgres).collect();
                Ok(client.execute(postgres_sql(sql).as_str(), &params)?)
            }
        }
    }

    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        match self {
            Db::Sqlite(conn) => {
                let mut stmt = conn.prepare(sql)?;
                let columns = stmt.column_count();
                let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |row| {
                    (0..columns).map(|i| Ok(sqlite_cell(row.get_ref(i)?))).collect::<rusqlite::Result<Row>>()
                })?;
                Ok(rows.collect::<rusqlite::Result<Vec<Row>>>()?)
            }
            Db::Postgres { client, .. } => {
                let params: Vec<_> = params.iter().map(Value::as_postgres).collect();
                let rows = client.query(postgres_sql(sql).as_str(), &params)?;
                rows.iter().map(|row| (0..row.len()).map(|i| postgres_cell(row, i)).collect()).collect()
            }
        }
    }

    /// Runs `body` in one transaction: all of it is written, or none.
    pub fn transaction<T>(&mut self, body: impl FnOnce(&mut Db) -> Result<T, DbError>) -> Result<T, DbError> {
        self.batch("BEGIN")?;
        match body(self) {
            Ok(v) => {
                self.batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                // A lost connection has rolled back already; the first error is the one to report.
                let _ = self.batch("ROLLBACK");
                Err(e)
            }
        }
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(conn) => conn.execute_batch(sql)?,
            Db::Postgres { client, .. } => client.batch_execute(sql)?,
        }
        Ok(())
    }

    /// The larger of two or more values (SQLite's two-argument MAX, PostgreSQL's GREATEST).
    pub fn greatest(&self, args: &[&str]) -> String {
        let name = match self {
            Db::Sqlite(_) => "MAX",
            Db::Postgres { .. } => "GREATEST",
        };
        format!("{name}({})", args.join(", "))
    }
}

/// Runs `work` where the blocking PostgreSQL client may run: on this thread, or, when this
/// thread belongs to an async runtime (which the client's own runtime may not nest in), on a
/// short-lived thread of its own while this one waits.
pub fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|s| match s.spawn(work).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// A session for `application` (how `pg_stat_activity` names it).
pub fn connect(url: &str, application: &str) -> Result<postgres::Client, DbError> {
    let mut config: postgres::Config = url.parse()?;
    // A server that is down must not hang start-up or the writer's retries.
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    config.application_name(application);
    Ok(config.connect(postgres::NoTls)?)
}

/// WAL (readers never block the writer, and a commit is one append to the log);
/// synchronous=NORMAL in WAL still survives a process crash (only a power loss may lose the
/// last commits).
fn open_sqlite_writer(path: &Path) -> Result<rusqlite::Connection, DbError> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(path = %path.display(), mode, "call records: WAL mode unavailable");
    }
    conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
    // Databases from before `active_ms` existed (and before migrations) get the column first,
    // so the first migration's IF NOT EXISTS finds the table it describes.
    let has_calls = conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'calls'")?.exists([])?;
    let has_active = conn.prepare("SELECT 1 FROM pragma_table_info('calls') WHERE name = 'active_ms'")?.exists([])?;
    if has_calls && !has_active {
        conn.execute_batch("ALTER TABLE calls ADD COLUMN active_ms INTEGER;")?;
    }
    Ok(conn)
}

/// `?N` → `$N`, outside quoted strings.
fn postgres_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn sqlite_cell(v: rusqlite::types::ValueRef) -> Cell {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(r) => Cell::Real(r),
        ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

fn postgres_cell(row: &postgres::Row, i: usize) -> Result<Cell, DbError> {
    use postgres::types::Type;
    let ty = row.columns()[i].type_().clone();
    let cell = if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?.map(|v| Cell::Int(v.into()))
    } else if ty == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i)?.map(Cell::Real)
    } else if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i)?.map(|b| Cell::Int(b.into()))
    } else {
        row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
    };
    Ok(cell.unwrap_or(Cell::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_become_dollar_numbers_outside_strings() {
        assert_eq!(postgres_sql("SELECT ?1, '?2' WHERE a = ?12"), "SELECT $1, '?2' WHERE a = $12");
    }

    #[test]
    fn a_url_picks_postgresql_and_anything_else_is_a_file() {
        assert_eq!(Location::parse("postgres://gw@db/calls"), Location::Postgres("postgres://gw@db/calls".into()));
        assert_eq!(Location::parse("var/records.db"), Location::Sqlite("var/records.db".into()));
        assert_eq!(Location::parse("postgresql://gw:secret@db:5432/calls").to_string(), "postgresql://gw:***@db:5432/calls");
    }
}
