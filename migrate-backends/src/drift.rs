//! The live drift check (feature `snapshot`): does this database's schema match what its
//! migrations build at the versions it records?
//!
//! The check reads the live database's versions (read-only: `status`), migrates a scratch
//! database from empty to exactly those versions, snapshots both from their catalogs (see
//! [`crate::snapshot`]) and diffs them. The scratch database is, unless one is given with
//! [`DriftCheck::scratch_url`]:
//!
//! - SQLite: a file in the temporary directory;
//! - PostgreSQL and MySQL/MariaDB: a database `migrate_drift_<pid>_<n>_<nanos>` created on the live
//!   database's server (the user needs the right to create databases), dropped afterwards.
//!
//! Nothing is written to the live database's schema. A live table with a dirty mark, or at a
//! version no linked migration declares, is refused: there is no "should be" to compare with.

use crate::connect::{connect_with, ConnectOptions};
use crate::snapshot::{snapshot, Schema, SchemaDiff};
use crate::DEFAULT_TRACKING_TABLE;
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::manager::MigrationManager;
use migrate_core::migration::MigrationSet;
use migrate_core::Version;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a host does to every manager it builds, applied to the live and the scratch manager
/// alike.
pub use migrate_core::manager::Configure;

/// Compares a live database with a scratch database migrated to the same versions.
///
/// ```no_run
/// # async fn demo(set: &'static migrate_core::migration::MigrationSet) -> migrate_core::error::Result<()> {
/// use migrate_backends::drift::DriftCheck;
/// let report = DriftCheck::new([set]).run("postgres://app@db/app").await?;
/// if !report.is_clean() {
///     eprintln!("{report}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DriftCheck {
    sets: Vec<&'static MigrationSet>,
    options: ConnectOptions,
    scratch_url: Option<String>,
    configure: Option<Configure>,
    ignored: Vec<String>,
}

impl fmt::Debug for DriftCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DriftCheck")
            .field("sets", &self.sets)
            .field("options", &self.options)
            .field(
                "scratch_url",
                &self
                    .scratch_url
                    .as_deref()
                    .map(|url| crate::url::redact_url_password(url, url)),
            )
            .field("configure", &self.configure.is_some())
            .field("ignored", &self.ignored)
            .finish()
    }
}

/// One table's version on the live database, which the scratch database was brought to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableVersion {
    /// The module.
    pub module: String,
    /// The logical table.
    pub table: String,
    /// Its version (`None`: nothing applied, so nothing built).
    pub version: Option<Version>,
}

/// What a drift check found.
#[derive(Debug, Clone)]
pub struct DriftReport {
    /// The versions compared at, per table.
    pub versions: Vec<TableVersion>,
    /// The scratch database, without credentials.
    pub scratch: String,
    /// From what the migrations build (the scratch database) to what the live database has:
    /// `added` is in the live database only, `removed` is missing from it.
    pub diff: SchemaDiff,
}

impl DriftReport {
    /// The live schema is what the migrations build, column order aside.
    pub fn is_clean(&self) -> bool {
        self.diff.is_empty_ignoring_moves()
    }
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at: Vec<String> = self
            .versions
            .iter()
            .filter_map(|t| t.version.as_ref().map(|v| format!("{}@{v}", t.table)))
            .collect();
        if self.diff.is_empty() {
            return write!(
                f,
                "the schema is what the migrations build at {}",
                if at.is_empty() {
                    "no version (nothing applied)".to_string()
                } else {
                    at.join(", ")
                }
            );
        }
        let count = self.diff.changes.len() + self.diff.moves.len();
        writeln!(
            f,
            "{count} difference(s) from what the migrations build at {} (scratch database {}) to the live schema:",
            at.join(", "),
            self.scratch
        )?;
        write!(f, "{}", self.diff.to_string().trim_end())
    }
}

impl DriftCheck {
    /// A drift check of the migrations of `sets`.
    pub fn new(sets: impl IntoIterator<Item = &'static MigrationSet>) -> Self {
        DriftCheck {
            sets: sets.into_iter().collect(),
            options: ConnectOptions::default(),
            scratch_url: None,
            configure: None,
            ignored: Vec::new(),
        }
    }

    /// How to connect (schema, tracking table, timeouts): used for both databases.
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.options = options;
        self
    }

    /// An empty database to migrate instead of one created and dropped by the check.
    pub fn scratch_url(mut self, url: impl Into<String>) -> Self {
        self.scratch_url = Some(url.into());
        self
    }

    /// Configures both managers the same way (`|m| m.with_table_name("session", "agno_sessions")`).
    /// A baseline means its steps are not run on the scratch database either.
    pub fn configure(
        mut self,
        configure: impl Fn(MigrationManager) -> Result<MigrationManager> + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(Arc::new(configure));
        self
    }

    /// A table to leave out of the comparison (another tool's version table, say), with what
    /// belongs to it: its columns, indexes and constraints, its triggers, and on PostgreSQL the
    /// sequences it owns (a `serial` or identity column's), its policies and its rules.
    pub fn ignore_table(mut self, table: impl Into<String>) -> Self {
        self.ignored.push(table.into());
        self
    }

    async fn manager(&self, url: &str) -> Result<MigrationManager> {
        let db = connect_with(url, &self.options).await?;
        let manager = MigrationManager::new(db, self.sets.iter().copied())?;
        match &self.configure {
            Some(configure) => configure(manager),
            None => Ok(manager),
        }
    }

    /// Runs the check against the live database at `live_url`.
    ///
    /// # Errors
    /// When a database cannot be reached or the scratch database cannot be made, when a live
    /// table is dirty or at a version no migration declares, or when a step fails on the
    /// scratch database.
    pub async fn run(&self, live_url: &str) -> Result<DriftReport> {
        if let Some(scratch) = &self.scratch_url {
            same_kind(live_url, scratch)?;
        }
        // The live schema is read right after its versions, and the versions again once the
        // scratch database is built: a deploy's run in between (the scratch build may take
        // minutes) would otherwise show its own changes as drift, at the old versions.
        let live = self.manager(live_url).await?;
        let versions = live_versions(&live).await?;
        let actual = self.without_ignored(
            snapshot(live_url, self.options.schema.as_deref(), self.tracking())
                .await
                .map_err(|e| {
                    within(
                        crate::url::redact_password(e, live_url),
                        "reading the live schema",
                    )
                })?,
        );
        let scratch = match &self.scratch_url {
            Some(url) => Scratch::Given(url.clone()),
            None => Scratch::create(live_url).await?,
        };
        let outcome = self.expected(scratch.url(), &versions).await;
        let scratch_server = crate::url::server(scratch.url());
        let dropped = scratch.remove().await;
        let expected = outcome?;
        dropped?;
        if live_versions(&live).await? != versions {
            return Err(Error::msg(
                "the live database's versions changed while the drift check ran (another \
                 runner migrated it): run the check again",
            ));
        }
        Ok(DriftReport {
            versions,
            scratch: scratch_server,
            diff: expected.diff(&actual),
        })
    }

    fn tracking(&self) -> &str {
        self.options
            .tracking_table
            .as_deref()
            .unwrap_or(DEFAULT_TRACKING_TABLE)
    }

    /// The schema the migrations build at `versions`, on the empty scratch database.
    async fn expected(&self, scratch_url: &str, versions: &[TableVersion]) -> Result<Schema> {
        let schema = self.options.schema.as_deref();
        let server = crate::url::server(scratch_url);
        let redacted = |e, doing: &str| within(crate::url::redact_password(e, scratch_url), doing);
        let empty = self.without_ignored(
            snapshot(scratch_url, schema, self.tracking())
                .await
                .map_err(|e| redacted(e, "reading the scratch database's schema"))?,
        );
        let scratch = self.manager(scratch_url).await?;
        let recorded = scratch.backend().read_state().await?;
        // An extension installed beforehand (one the migrations need and cannot create
        // without a superuser) is not a leftover; the PostgreSQL snapshot leaves out the
        // tables, views and types it brings.
        let mut found: Vec<String> = empty
            .object_names()
            .into_iter()
            .filter(|name| !name.starts_with("extension "))
            .collect();
        // A row with a version (or a mark) would make the scratch run skip its steps.
        if recorded
            .iter()
            .any(|row| row.version.is_some() || row.dirty.is_some())
        {
            found.push(format!("rows in the tracking table `{}`", self.tracking()));
        }
        if !found.is_empty() {
            return Err(Error::Config(format!(
                "the scratch database {server} is not empty ({}): the drift check needs an empty one",
                found.join(", ")
            )));
        }
        migrate_to(&scratch, versions)
            .await
            .map_err(|e| within(e, &format!("migrating the scratch database {server}")))?;
        drop(scratch);
        Ok(self.without_ignored(
            snapshot(scratch_url, schema, self.tracking())
                .await
                .map_err(|e| redacted(e, "reading the scratch database's schema"))?,
        ))
    }

    fn without_ignored(&self, mut schema: Schema) -> Schema {
        for table in &self.ignored {
            // Triggers, owned sequences, policies and rules are named `<table>.<name>`.
            let owned = |key: &str| {
                key.strip_prefix(table.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
            };
            schema.tables.remove(table);
            schema.triggers.retain(|key, _| !owned(key));
            schema.sequences.retain(|key, _| !owned(key));
            schema.other.retain(|key, _| match key.split_once(' ') {
                Some(("policy" | "rule", name)) => !owned(name),
                _ => true,
            });
        }
        schema
    }
}

/// `err` with what the check was doing, for a database error (the others name their step or
/// setting already).
fn within(err: Error, doing: &str) -> Error {
    match err {
        Error::Database(e) => Error::Database(e.context(format!("drift check, {doing}"))),
        other => other,
    }
}

/// Refuses a scratch database of another kind than the live one: every type would differ.
fn same_kind(live_url: &str, scratch_url: &str) -> Result<()> {
    let kind = |url: &str| match url.split(':').next().unwrap_or_default() {
        "postgresql" => "postgres".to_string(),
        "mariadb" => "mysql".to_string(),
        scheme => scheme.to_string(),
    };
    let (live, scratch) = (kind(live_url), kind(scratch_url));
    if live == scratch {
        return Ok(());
    }
    Err(Error::Config(format!(
        "the scratch database is `{scratch}:` and the live one `{live}:`: the drift check \
         compares two databases of one kind (and, for equal formatting, one server version)"
    )))
}

/// Every table's version on the live database; a dirty or unknown one is refused.
async fn live_versions(live: &MigrationManager) -> Result<Vec<TableVersion>> {
    let mut versions = Vec::new();
    for status in live.status().await? {
        if let Some(unknown) = &status.unknown_version {
            return Err(Error::Config(format!(
                "`{}` table `{}` is at {unknown}, which no linked migration declares: there is no schema to compare it with",
                status.module, status.table
            )));
        }
        if let Some(mark) = &status.dirty {
            return Err(Error::Config(format!(
                "`{}` table `{}` has a dirty mark ({mark:?}): settle it with `repair` before checking the schema",
                status.module, status.table
            )));
        }
        versions.push(TableVersion {
            module: status.module,
            table: status.table,
            version: status.current,
        });
    }
    Ok(versions)
}

/// Brings the scratch database to `versions`, in the order `up` runs steps (so `after` edges
/// hold), one run per stretch of one table's steps.
async fn migrate_to(scratch: &MigrationManager, versions: &[TableVersion]) -> Result<()> {
    let wanted: BTreeMap<(&str, &str), &Version> = versions
        .iter()
        .filter_map(|t| {
            t.version
                .as_ref()
                .map(|v| ((t.module.as_str(), t.table.as_str()), v))
        })
        .collect();
    let mut stretch: Option<(String, Version)> = None;
    for info in scratch.pending().await? {
        let step = &info.step;
        let Some(target) = wanted.get(&(step.module.as_str(), step.table.as_str())) else {
            continue;
        };
        if step.version > **target {
            continue;
        }
        let table = format!("{}:{}", step.module, step.table);
        if let Some((current, _)) = &stretch {
            if *current != table {
                run_stretch(scratch, stretch.take()).await?;
            }
        }
        stretch = Some((table, step.version.clone()));
    }
    run_stretch(scratch, stretch).await
}

async fn run_stretch(scratch: &MigrationManager, stretch: Option<(String, Version)>) -> Result<()> {
    if let Some((table, version)) = stretch {
        scratch
            .up()
            .table(table)
            .target(version.to_string())
            .await?;
    }
    Ok(())
}

/// The scratch database: given, or made for the check and removed after it.
enum Scratch {
    Given(String),
    #[cfg(feature = "sqlite")]
    File {
        url: String,
        path: std::path::PathBuf,
    },
    Database {
        url: String,
        admin_url: String,
        name: String,
        dialect: Dialect,
    },
}

/// A name no other check of this process uses.
fn scratch_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "migrate_drift_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl Scratch {
    async fn create(live_url: &str) -> Result<Scratch> {
        let scheme = live_url.split(':').next().unwrap_or_default();
        let name = scratch_name();
        let dialect = match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                let url = format!("sqlite://{}?mode=rwc", path.display());
                return Ok(Scratch::File { url, path });
            }
            "postgres" | "postgresql" => migrate_core::dialect::Dialect::Postgres,
            "mysql" | "mariadb" => migrate_core::dialect::Dialect::MySql,
            _ => {
                return Err(Error::Config(format!(
                    "no drift check for URL scheme `{scheme}:` (features: sqlite, postgres, mysql)"
                )))
            }
        };
        // Named before it is created, so that a URL that cannot name it creates nothing.
        let url = crate::url::with_database(live_url, &name).ok_or_else(|| {
            Error::Config(format!(
                "cannot name the scratch database in {}",
                crate::url::server(live_url)
            ))
        })?;
        if dialect == migrate_core::dialect::Dialect::MySql && !names_a_database(live_url) {
            return Err(Error::Config(format!(
                "the drift check needs a database in the URL ({}): the scratch database takes its \
                 character set and collation",
                crate::url::server(live_url)
            )));
        }
        let quoted = dialect.quote_ident(&name);
        let create = match dialect {
            // With the live database's default character set and collation, which every
            // table and text column that names none takes: the server's defaults (a bare
            // `CREATE DATABASE`) would show each of them as changed.
            migrate_core::dialect::Dialect::MySql => format!(
                "SELECT CONCAT('CREATE DATABASE {quoted} CHARACTER SET ', \
                 DEFAULT_CHARACTER_SET_NAME, ' COLLATE ', DEFAULT_COLLATION_NAME) INTO @migrate_create \
                 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = DATABASE(); \
                 PREPARE migrate_create FROM @migrate_create; EXECUTE migrate_create; \
                 DEALLOCATE PREPARE migrate_create"
            ),
            _ => format!("CREATE DATABASE {quoted}"),
        };
        if let Err(e) = crate::admin::execute_on(live_url, &create).await {
            // The server's answer (a missing right, a lost connection), not the caller's
            // input: a database error, not a usage one.
            return Err(scratch_failure(crate::url::redact_url_password(
                &format!(
                    "cannot create the scratch database `{name}` on {}: {e}; give an empty database with a scratch URL (`--scratch-url`) instead",
                    crate::url::server(live_url)
                ),
                live_url,
            )));
        }
        Ok(Scratch::Database {
            url,
            admin_url: live_url.to_string(),
            name,
            dialect,
        })
    }

    fn url(&self) -> &str {
        match self {
            Scratch::Given(url) | Scratch::Database { url, .. } => url,
            #[cfg(feature = "sqlite")]
            Scratch::File { url, .. } => url,
        }
    }

    async fn remove(self) -> Result<()> {
        match self {
            Scratch::Given(_) => Ok(()),
            #[cfg(feature = "sqlite")]
            Scratch::File { path, .. } => {
                // The database, SQLite's files beside it, and the run lock's.
                let lock = crate::sqlite::LOCK_FILE_SUFFIX;
                for suffix in ["", "-wal", "-shm", "-journal", lock] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
                Ok(())
            }
            Scratch::Database {
                admin_url,
                name,
                dialect,
                ..
            } => drop_database(&admin_url, &name, dialect).await,
        }
    }
}

async fn drop_database(admin_url: &str, name: &str, dialect: Dialect) -> Result<()> {
    let quoted = dialect.quote_ident(name);
    let mut dropped = Ok(());
    if dialect == Dialect::Postgres {
        // `WITH (FORCE)` ends sessions left on it; PostgreSQL before 13 drops without it.
        let forced = format!("DROP DATABASE IF EXISTS {quoted} WITH (FORCE)");
        dropped = crate::admin::execute_on(admin_url, &forced).await;
    }
    if dialect != Dialect::Postgres || dropped.is_err() {
        dropped =
            crate::admin::execute_on(admin_url, &format!("DROP DATABASE IF EXISTS {quoted}")).await;
    }
    dropped.map_err(|e| {
        scratch_failure(crate::url::redact_url_password(
            &format!(
                "the drift check could not drop its scratch database `{name}` on {}: {e}",
                crate::url::server(admin_url)
            ),
            admin_url,
        ))
    })
}

/// A scratch database the server would not create or drop: a database error (category
/// `Other`, the CLI's exit 1), since only the server's rights or state can change the answer.
fn scratch_failure(message: String) -> Error {
    Error::Database(migrate_core::error::DatabaseError::message(message))
}

/// Whether a server URL names a database (`scheme://host/db`, not `scheme://host/`).
fn names_a_database(url: &str) -> bool {
    url.split_once("://")
        .map(|(_, rest)| &rest[..rest.find(['?', '#']).unwrap_or(rest.len())])
        .and_then(|rest| rest.split_once('/'))
        .is_some_and(|(_, database)| !database.is_empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_names_a_database_or_not() {
        assert!(super::names_a_database("mysql://u:p@h:3306/app?x=1"));
        assert!(!super::names_a_database("mysql://u:p@h:3306/"));
        assert!(!super::names_a_database("mysql://u:p@h:3306"));
        assert!(!super::names_a_database("mysql://u:p@h:3306/?x=/y"));
    }
}
