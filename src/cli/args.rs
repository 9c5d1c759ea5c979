//! The command line: global options and one subcommand, as clap parses them.

use clap::{ArgGroup, Args, Parser, Subcommand};
use std::path::PathBuf;

/// The exit codes, printed under `--help`.
pub(super) const EXIT_CODES: &str = "\
Exit codes:
  0  success, or nothing to do
  1  a step failed, or another error (connection, database, I/O, a panic)
  2  usage: a bad argument, table, version or target
  3  migrations are pending (status --check, verify)
  4  drift: an applied migration was edited, or the database is ahead of this binary
  5  locked: another runner held the migration lock past the lock timeout
  6  dirty: a step started outside a transaction and never finished (see `repair`)
  7  blocked: a step refused to run until its data is fixed (the reason and fix are printed)
Over a fleet (--all-schemas, --targets), up, status and verify exit 0 when every target
succeeded and 1 otherwise; a bad argument or targets-file line still exits 2 (a targets
file that cannot be read, 1).";

/// What clap gives a bare `--schema`: a NUL, which no argument can hold, so that `--schema ""`
/// (an empty variable) is told apart from it.
pub(super) const BARE_SCHEMA: &str = "\0";

#[derive(Debug, Parser)]
#[command(
    about = "Runs and inspects this application's database migrations",
    after_help = EXIT_CODES,
    disable_version_flag = true
)]
pub(super) struct Arguments {
    /// The database (sqlite://file.db?mode=rwc, postgres://…, mysql://…). Never printed.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub(super) database_url: Option<String>,

    /// The PostgreSQL schema of the tracking tables and of `{{tables.x}}`. On `verify`, a
    /// bare `--schema` (no name) compares the live schema with what the migrations build
    /// instead (the same as `verify --schema-drift`).
    #[arg(long, global = true, num_args = 0..=1, default_missing_value = BARE_SCHEMA, value_name = "SCHEMA")]
    pub(super) schema: Option<String>,

    /// The tracking table (default: migrate_schema_versions).
    #[arg(long, global = true)]
    pub(super) tracking_table: Option<String>,

    /// A renamed table: LOGICAL=PHYSICAL (`session=my_sessions`); repeatable. Templates and
    /// the tracking rows use the physical name.
    #[arg(long = "table-name", global = true, value_name = "LOGICAL=PHYSICAL", value_parser = parse_table_name)]
    pub(super) table_names: Vec<(String, String)>,

    /// Another tool's version table (agno_schema_versions) to adopt as the starting state of
    /// tables this tool has no row for; only read, never written.
    #[arg(long, global = true, value_name = "TABLE")]
    pub(super) adopt_versions: Option<String>,

    /// The PostgreSQL server is behind a transaction-pooling proxy (PgBouncer,
    /// pool_mode = transaction): no prepared statement outlives its transaction, and runs lock
    /// a row instead of a session advisory lock.
    #[arg(long, global = true)]
    pub(super) transaction_pooling: bool,

    /// How long to wait for another runner's lock, in seconds (default 30).
    #[arg(long, global = true, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(super) lock_timeout: Option<std::time::Duration>,

    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub(super) json: bool,

    /// Log through tracing to stderr: -v info, -vv debug, -vvv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(super) verbose: u8,

    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Where every table stands: module, table, current, latest, pending, dirty.
    Status {
        /// Exit non-zero when anything is pending (3), drifted or ahead (4), or dirty (6).
        #[arg(long)]
        check: bool,
        #[command(flatten)]
        fleet: FleetArgs,
    },
    /// The current version of every table.
    Current,
    /// The newest rows of the migration history.
    History {
        /// How many rows (1 to 1,000,000: 0 would print "no history yet" over any history).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        limit: u32,
    },
    /// Applies pending migrations.
    Up(UpArgs),
    /// Installs an empty database: tables with a `fresh` function are created at that
    /// version in one step, then everything goes up to its head.
    InstallFresh,
    /// Reverts applied migrations: --to V, -1 (one step of one table), or --base.
    Down(DownArgs),
    /// What `up` would run, with the SQL of SQL-file steps. Changes nothing.
    Plan {
        /// The version to go to.
        #[arg(long, value_parser = parse_version)]
        to: Option<String>,
        /// Only these tables (repeatable; `module:table` for one module's).
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
    },
    /// The CI gate: the graph, checksums, dirty marks, pending steps, and whether the
    /// database is ahead; with --schema-drift (or a bare --schema), also whether the live schema
    /// is what the migrations build at its versions. Prints every problem; exits 6, 4 or 3 for
    /// the worst one (4 for schema drift).
    Verify(VerifyArgs),
    /// Records TABLE as being at VERSION without running anything.
    Stamp {
        /// The table.
        table: String,
        /// The version.
        #[arg(value_parser = parse_version)]
        version: String,
    },
    /// Records TABLE's newest step as not applied, without running its down.
    Unstamp {
        /// The table.
        table: String,
    },
    /// Settles a dirty mark after checking the schema by hand. Prints the mark first.
    #[command(group(ArgGroup::new("resolution").required(true).args(["completed", "rolled_back"])))]
    Repair {
        /// The table.
        table: String,
        /// The unfinished step's change is fully in place: record it as done.
        #[arg(long)]
        completed: bool,
        /// The unfinished step left nothing behind: record it as not run.
        #[arg(long)]
        rolled_back: bool,
    },
    /// Re-pins the recorded checksums of TABLE's applied steps to this binary's.
    AcceptChecksums {
        /// The table.
        table: String,
    },
    /// Scaffolds the next migration of TABLE: a Rust function (printed), or with --sql DIR a
    /// SQL file and its down in DIR.
    New {
        /// The table.
        table: String,
        /// What the migration does (`add email`).
        name: String,
        /// Write SQL files into this directory instead.
        #[arg(long, value_name = "DIR")]
        sql: Option<PathBuf>,
    },
}

/// `verify`'s options.
#[derive(Debug, Args, Default)]
pub(super) struct VerifyArgs {
    /// Also compare the live schema, read from the catalog, with a scratch database migrated
    /// to the same versions (SQLite: a temporary file; PostgreSQL and MariaDB: a database
    /// created on the same server and dropped after).
    #[arg(long)]
    pub(super) schema_drift: bool,
    /// With --schema-drift (refused without it): an empty database to migrate instead of
    /// creating one.
    #[arg(long, value_name = "URL")]
    pub(super) scratch_url: Option<String>,
    #[command(flatten)]
    pub(super) fleet: FleetArgs,
}

/// Running over a fleet instead of one database.
#[derive(Debug, Args, Default)]
pub(super) struct FleetArgs {
    /// Every schema of the --database-url server but PostgreSQL's own and `public`.
    #[arg(long, conflicts_with = "targets")]
    pub(super) all_schemas: bool,
    /// With --all-schemas: only schemas matching this SQL LIKE pattern (`tenant\_%`; `_` is a wildcard).
    #[arg(long, value_name = "PATTERN", requires = "all_schemas")]
    pub(super) schema_like: Option<String>,
    /// The targets, one per line: `URL` or `URL SCHEMA` (a `#` at a line's start or after a
    /// space starts a comment; a target named twice is refused).
    #[arg(long, value_name = "FILE")]
    pub(super) targets: Option<PathBuf>,
    /// How many targets run at once (default 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(super) concurrency: Option<u16>,
    /// Start no new target after the first failure.
    #[arg(long)]
    pub(super) fail_fast: bool,
}

impl FleetArgs {
    /// Whether the command runs over a fleet.
    pub(super) fn is_fleet(&self) -> bool {
        self.all_schemas || self.targets.is_some()
    }
}

#[derive(Debug, Args)]
pub(super) struct UpArgs {
    /// The version to go to (default: every table's latest).
    #[arg(long, value_parser = parse_version)]
    pub(super) to: Option<String>,
    /// Only these tables (repeatable; `module:table` for one module's).
    #[arg(long = "table", value_name = "TABLE")]
    pub(super) tables: Vec<String>,
    /// Re-run steps whatever the tracking table says (recovery only).
    #[arg(long)]
    pub(super) force: bool,
    /// Print the plan, with the SQL of SQL-file steps, and change nothing.
    #[arg(long)]
    pub(super) dry_run: bool,
    #[command(flatten)]
    pub(super) fleet: FleetArgs,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["to", "one", "base"])))]
pub(super) struct DownArgs {
    /// The version to go down to.
    #[arg(long, value_parser = parse_version)]
    pub(super) to: Option<String>,
    /// One step down (Alembic's `downgrade -1`); needs exactly one table. Not with `--force`,
    /// which ignores the recorded version the step counts from.
    #[arg(short = '1', conflicts_with = "force")]
    pub(super) one: bool,
    /// Revert every step, first ones included.
    #[arg(long)]
    pub(super) base: bool,
    /// Only these tables (repeatable; `module:table` for one module's).
    #[arg(long = "table", value_name = "TABLE")]
    pub(super) tables: Vec<String>,
    /// Revert every step above the target, recorded or not (recovery only).
    #[arg(long)]
    pub(super) force: bool,
    /// Print the plan, with the SQL of SQL-file steps, and change nothing.
    #[arg(long)]
    pub(super) dry_run: bool,
}

/// A semver version (a leading `v` allowed), checked while parsing so that a typo is a usage
/// error.
fn parse_version(text: &str) -> Result<String, String> {
    let bare = text.trim().strip_prefix('v').unwrap_or(text.trim());
    crate::Version::parse(bare)
        .map(|_| text.to_string())
        .map_err(|e| format!("not a semver version (MAJOR.MINOR.PATCH): {e}"))
}

impl Arguments {
    /// The connection options the global flags set.
    pub(super) fn connect_options(&self) -> crate::ConnectOptions {
        let mut options = crate::ConnectOptions::new();
        // A bare `--schema` is `verify`'s schema comparison, not a schema name.
        options.schema = self.schema.clone().filter(|s| s != BARE_SCHEMA);
        options.tracking_table = self.tracking_table.clone();
        options.lock_timeout = self.lock_timeout;
        options.transaction_pooling = self.transaction_pooling;
        options
    }

    /// Whether `verify` compares the live schema: `--schema-drift`, or a bare `--schema`.
    pub(super) fn schema_drift(&self) -> bool {
        match &self.command {
            Command::Verify(verify) => verify.schema_drift || self.bare_schema(),
            _ => false,
        }
    }

    /// `--schema` given without a name.
    pub(super) fn bare_schema(&self) -> bool {
        self.schema.as_deref() == Some(BARE_SCHEMA)
    }

    /// `--schema ""` (a variable that was empty or unset): a mistake, never the comparison.
    pub(super) fn empty_schema(&self) -> bool {
        self.schema.as_deref() == Some("")
    }

    /// The manager options the global flags set, applied after the host's own `configure`.
    /// `--table-name` and `--adopt-versions`, checked before anything connects: one logical
    /// table renamed twice is refused rather than the last one winning.
    pub(super) fn manager_flags(&self) -> crate::Result<ManagerFlags> {
        for (i, (logical, physical)) in self.table_names.iter().enumerate() {
            if let Some((_, first)) = self.table_names[..i].iter().find(|(l, _)| l == logical) {
                return Err(crate::Error::Config(format!(
                    "--table-name renames `{logical}` twice: to `{first}` and to `{physical}`"
                )));
            }
        }
        Ok(ManagerFlags {
            table_names: self.table_names.clone(),
            adopt_versions: self.adopt_versions.clone(),
        })
    }
}

/// `--table-name` and `--adopt-versions`, owned, so that a fleet applies them per target.
#[derive(Debug, Clone)]
pub(super) struct ManagerFlags {
    table_names: Vec<(String, String)>,
    adopt_versions: Option<String>,
}

impl ManagerFlags {
    /// Refuses a `--table-name` whose logical table the migrations of `sets` do not know,
    /// before anything connects (the manager would refuse it too, once the database was
    /// opened). The graph is built for it only when a table is renamed.
    pub(super) fn check_tables(
        &self,
        sets: &[&'static crate::registry::MigrationSet],
    ) -> crate::Result<()> {
        if self.table_names.is_empty() {
            return Ok(());
        }
        let graph = crate::__private::Graph::build(sets.iter().copied())?;
        match self
            .table_names
            .iter()
            .find(|(logical, _)| !graph.has_table(logical))
        {
            Some((logical, _)) => Err(graph.unknown_table(logical)),
            None => Ok(()),
        }
    }

    /// `manager` with the host's `configure` (if any), then these flags.
    pub(super) fn apply(
        &self,
        mut manager: crate::MigrationManager,
        configure: Option<&super::Configure>,
    ) -> crate::Result<crate::MigrationManager> {
        if let Some(configure) = configure {
            manager = configure(manager)?;
        }
        for (logical, physical) in &self.table_names {
            manager = manager.with_table_name(logical, physical)?;
        }
        if let Some(table) = &self.adopt_versions {
            manager = manager.with_adopted_versions(table)?;
        }
        Ok(manager)
    }
}

/// `session=my_sessions`, both sides non-empty.
fn parse_table_name(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((logical, physical)) if !logical.trim().is_empty() && !physical.trim().is_empty() => {
            Ok((logical.trim().to_string(), physical.trim().to_string()))
        }
        _ => Err(format!(
            "`{text}` is not LOGICAL=PHYSICAL (for example session=my_sessions)"
        )),
    }
}

fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    std::time::Duration::try_from_secs_f64(seconds)
        .map_err(|_| format!("`{text}` is not a usable number of seconds"))
}
