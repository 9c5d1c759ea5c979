//! Throwaway databases for tests (feature `testing`): a SQLite file in a temporary directory, or
//! a fresh database on a PostgreSQL or MariaDB server that the tests start themselves from the
//! installed binaries (`initdb`/`pg_ctl`, `mariadb-install-db`/`mariadbd`), once per test
//! process, on a free loopback port, torn down when the process ends.
//!
//! - `MIGRATE_TEST_POSTGRES_URL` / `MIGRATE_TEST_MYSQL_URL` point the tests at a server you
//!   already have instead (the user needs the right to create databases; test databases are
//!   named `migrate_test_*`).
//! - A backend whose server cannot be had is reported on stderr as
//!   `SKIPPED: postgres (initdb not found)`, and its tests pass without running. With
//!   `MIGRATE_TEST_REQUIRE_ALL=1` (as in CI) it is an error instead.

mod mariadb;
mod pgbouncer;
mod postgres;
mod process;
mod round_trip;
mod stairway;

pub use crate::snapshot;
pub use crate::snapshot::{snapshot, Schema, SchemaDiff};
pub use pgbouncer::PgBouncer;
pub use postgres::PostgresServer;
pub use round_trip::{
    assert_single_heads, block_on, fresh_against_upgrade, round_trip, round_trip_with, RoundTrip,
    RoundTripOptions,
};
pub use stairway::{CheckFn, DataCheck, Phase, Problem, Stairway, StairwayFailure, StairwayReport};

use migrate_core::backend::MigrationBackend;
use migrate_core::error::{Error, Result};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A database the tests can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// SQLite, in a temporary file.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL/MariaDB.
    MySql,
}

impl Backend {
    /// Every backend.
    pub const ALL: [Backend; 3] = [Backend::Sqlite, Backend::Postgres, Backend::MySql];

    /// `sqlite`, `postgres` or `mysql`.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
            Backend::MySql => "mysql",
        }
    }
}

/// The admin URL of each server, started on first use.
fn server(backend: Backend) -> &'static std::result::Result<String, String> {
    static POSTGRES: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    static MYSQL: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    match backend {
        Backend::Postgres => {
            POSTGRES.get_or_init(|| match std::env::var("MIGRATE_TEST_POSTGRES_URL") {
                Ok(url) if !url.is_empty() => Ok(url),
                _ => postgres::start(),
            })
        }
        Backend::MySql => MYSQL.get_or_init(|| match std::env::var("MIGRATE_TEST_MYSQL_URL") {
            Ok(url) if !url.is_empty() => Ok(url),
            _ => mariadb::start(),
        }),
        Backend::Sqlite => {
            static SQLITE: std::result::Result<String, String> = Ok(String::new());
            &SQLITE
        }
    }
}

/// Whether `MIGRATE_TEST_REQUIRE_ALL=1` forbids skipping.
pub fn require_all() -> bool {
    std::env::var("MIGRATE_TEST_REQUIRE_ALL").is_ok_and(|v| v == "1" || v == "true")
}

/// A server that cannot be had: an error under `MIGRATE_TEST_REQUIRE_ALL=1`, else reported
/// on stderr as skipped (once per backend).
fn unavailable(backend: Backend, why: &str) -> Result<()> {
    if require_all() {
        return Err(Error::Config(format!(
            "{} is required (MIGRATE_TEST_REQUIRE_ALL=1) but unavailable: {why}",
            backend.name()
        )));
    }
    report_skip(backend, why);
    Ok(())
}

fn report_skip(backend: Backend, why: &str) {
    report_skip_once(backend.name(), why);
}

/// `SKIPPED: what (why)` on the process's stderr, once per `what`.
fn report_skip_once(what: &str, why: &str) {
    static REPORTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let first = REPORTED.lock().map_or(true, |mut reported| {
        let first = !reported.iter().any(|r| r == what);
        if first {
            reported.push(what.to_string());
        }
        first
    });
    if first {
        // Straight to the process's stderr: the test harness captures eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "\nSKIPPED: {what} ({why}); set MIGRATE_TEST_REQUIRE_ALL=1 to make this a failure\n"
        );
    }
}

/// A fresh database for one test. SQLite files are removed when it is dropped; server
/// databases go with the throwaway server, and on a server you supply
/// (`MIGRATE_TEST_*_URL`) they stay, named `migrate_test_<pid>_<run>_<n>` (drop them with
/// the server's own tools).
#[derive(Debug)]
pub struct TestDatabase {
    backend: Backend,
    url: String,
    dir: Option<PathBuf>,
}

impl TestDatabase {
    /// A fresh database on `backend`; `Ok(None)` when its server cannot be had (reported as
    /// skipped), or an error instead under `MIGRATE_TEST_REQUIRE_ALL=1`.
    pub async fn create(backend: Backend) -> Result<Option<TestDatabase>> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Unique across runs too: a server you supply keeps them (a container's test binary
        // often has the same process id at every run).
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos() ^ (t.as_secs() as u32));
        let name = format!("migrate_test_{}_{run:08x}_{n}", std::process::id());
        let enabled = match backend {
            Backend::Sqlite => cfg!(feature = "sqlite"),
            Backend::Postgres => cfg!(feature = "postgres"),
            Backend::MySql => cfg!(feature = "mysql"),
        };
        if !enabled {
            // Before a server is started for nothing.
            return Err(Error::Config(format!(
                "a {} test database needs migrate's `{}` feature",
                backend.name(),
                backend.name()
            )));
        }
        if backend == Backend::Sqlite {
            let dir = tempfile::Builder::new()
                .prefix(&format!("{name}_"))
                .tempdir()
                .map(tempfile::TempDir::keep)
                .map_err(|source| Error::Io {
                    operation: "create a temporary directory in",
                    path: std::env::temp_dir(),
                    source,
                })?;
            let path = dir.join("test.db");
            // Created the way applications open it (WAL), so that later connections never
            // have to switch the journal mode while another one holds a lock.
            #[cfg(feature = "sqlite")]
            match crate::sqlite::SqliteDb::open(&path).await {
                Ok(db) => db.close().await,
                Err(err) => {
                    // The directory was kept for the database: nothing owns it now.
                    let _ = std::fs::remove_dir_all(&dir);
                    return Err(err);
                }
            }
            let url = format!("sqlite://{}?mode=rwc", path.display());
            return Ok(Some(TestDatabase {
                backend,
                url,
                dir: Some(dir),
            }));
        }
        let admin = match server(backend) {
            Ok(url) => url.clone(),
            Err(why) => return unavailable(backend, why).map(|()| None),
        };
        let create = format!("CREATE DATABASE {}", dialect(backend).quote_ident(&name));
        let executor = crate::connect(&admin).await?;
        drop(executor);
        crate::admin::execute_on(&admin, &create).await?;
        let url = crate::url::with_database(&admin, &name).ok_or_else(|| {
            Error::Config(format!("cannot name database {name} in the server URL"))
        })?;
        Ok(Some(TestDatabase {
            backend,
            url,
            dir: None,
        }))
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The SQLite file, for SQLite.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join("test.db"))
    }

    /// A new executor on this database.
    pub async fn executor(&self) -> Result<Box<dyn MigrationBackend>> {
        crate::connect(&self.url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn dialect(backend: Backend) -> migrate_core::dialect::Dialect {
    match backend {
        Backend::Sqlite => migrate_core::dialect::Dialect::Sqlite,
        Backend::Postgres => migrate_core::dialect::Dialect::Postgres,
        Backend::MySql => migrate_core::dialect::Dialect::MySql,
    }
}

/// `err`'s text, and each cause in its source chain on a line of its own (a step's failure
/// names the step, and only its cause says what the database refused).
pub(crate) fn with_causes(err: &migrate_core::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    text
}
