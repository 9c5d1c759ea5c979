//! The host binary's migration commands (feature `cli`), built with one call:
//!
//! ```no_run
//! migrate::migrations! {}
//! # #[migrate::migration(table = "session", version = "1.0.0", irreversible)]
//! # async fn create_session(_: &mut migrate::Conn<'_>) -> migrate::Result<()> { Ok(()) }
//! fn main() -> std::process::ExitCode {
//!     migrate::cli::run([&MIGRATIONS])
//! }
//! ```
//!
//! `status [--check]`, `current`, `history [--limit N]`, `up [--to V] [--table T]... [--force]
//! [--dry-run]`, `down (--to V | -1 | --base) [--table T]... [--force] [--dry-run]`, `plan`,
//! `verify`, `stamp T V`, `unstamp T`, `repair T --completed|--rolled-back`,
//! `accept-checksums T`, `install-fresh` and `new T NAME [--sql DIR]`. The database is `--database-url` or
//! `DATABASE_URL`; its password never appears in any output. `--json` prints one JSON document
//! on stdout. The exit codes are in [`exit`] and under `--help`.
//!
//! A host that configures its manager (a baseline, say) uses [`Cli`]:
//! `Cli::new([&MIGRATIONS]).configure(|m| m.with_baseline("2.0.0")).run()`.

mod args;
mod commands;
mod fleet;
mod lazy;
mod output;

use crate::error::ErrorCategory;
use crate::registry::MigrationSet;
use crate::{Error, MigrationManager, Result};
use args::{Arguments, Command, ManagerFlags};
use clap::{CommandFactory, Parser};
use output::Printer;
use serde_json::json;
use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

/// The exit codes of the CLI.
pub mod exit {
    /// Success, or nothing to do.
    pub const OK: u8 = 0;
    /// A step failed, or another error (connection, database, I/O).
    pub const FAILED: u8 = 1;
    /// Usage: a bad argument (clap's own), or a table, version or target the migrations do not
    /// know.
    pub const USAGE: u8 = 2;
    /// Migrations are pending (`status --check`, `verify`).
    pub const PENDING: u8 = 3;
    /// Drift (an applied migration was edited) or the database is ahead of this binary.
    pub const DRIFT: u8 = 4;
    /// Another runner held the migration lock past the lock timeout.
    pub const LOCKED: u8 = 5;
    /// A table is dirty: a step started outside a transaction never finished.
    pub const DIRTY: u8 = 6;
    /// A step refused to run (`Error::blocked`): its reason and fix are printed, nothing of it
    /// was stamped, and the tables it did not hold back went on.
    pub const BLOCKED: u8 = 7;
}

/// The exit code for an error, by its [`ErrorCategory`].
pub fn exit_code(err: &Error) -> u8 {
    match err.category() {
        ErrorCategory::BadInput => exit::USAGE,
        ErrorCategory::Drift => exit::DRIFT,
        ErrorCategory::Locked => exit::LOCKED,
        ErrorCategory::Dirty => exit::DIRTY,
        ErrorCategory::Blocked => exit::BLOCKED,
        _ => exit::FAILED,
    }
}

/// Parses the process's arguments and runs the command over `sets`.
pub fn run(sets: impl IntoIterator<Item = &'static MigrationSet>) -> ExitCode {
    Cli::new(sets).run()
}

use crate::manager::Configure;

/// The CLI with the host's own configuration of its manager.
pub struct Cli {
    sets: Vec<&'static MigrationSet>,
    configure: Option<Configure>,
}

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("sets", &self.sets)
            .field("configure", &self.configure.is_some())
            .finish()
    }
}

impl Cli {
    /// The CLI over the migrations of `sets`.
    pub fn new(sets: impl IntoIterator<Item = &'static MigrationSet>) -> Self {
        Cli {
            sets: sets.into_iter().collect(),
            configure: None,
        }
    }

    /// Adjusts the manager after it is built and before any command runs:
    /// `.configure(|m| m.with_baseline("2.0.0"))`. Over a fleet it runs once per target.
    pub fn configure(
        mut self,
        configure: impl Fn(MigrationManager) -> Result<MigrationManager> + Send + Sync + 'static,
    ) -> Self {
        self.configure = Some(std::sync::Arc::new(configure));
        self
    }

    /// Runs with the process's arguments, stdout and stderr.
    pub fn run(self) -> ExitCode {
        let code = self.run_from(
            std::env::args_os(),
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
        );
        ExitCode::from(code)
    }

    /// Runs with the given arguments (the first is the program name) and writers, and returns
    /// the exit code: what [`run`](Self::run) does, for tests and for hosts that embed the
    /// commands in a CLI of their own.
    pub fn run_from<I, T>(
        self,
        args: I,
        stdout: Box<dyn Write + Send>,
        stderr: Box<dyn Write + Send>,
    ) -> u8
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let mut printer = Printer::new(stdout, stderr);
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        // Every URL given, before anything is printed: a usage error quotes the argument it
        // could not place (a URL typed without `--database-url`), password and all.
        for arg in &args {
            if let Some(text) = arg.to_str().filter(|a| a.contains("://")) {
                printer.hide_password_of(text);
            }
        }
        let arguments = match Arguments::try_parse_from(&args) {
            Ok(arguments) => arguments,
            Err(err) => {
                let text = err.render().to_string();
                if err.use_stderr() {
                    printer.err_raw(&text);
                    // `--json` promises one document on stdout, a usage error included.
                    if args.iter().any(|a| a == "--json") {
                        print_usage_json(&printer, &err);
                    }
                } else {
                    printer.out_raw(&text);
                }
                return u8::try_from(err.exit_code()).unwrap_or(exit::USAGE);
            }
        };
        if let Some(url) = &arguments.database_url {
            printer.hide_password_of(url);
        }
        if let Command::Verify(verify) = &arguments.command {
            if let Some(url) = &verify.scratch_url {
                printer.hide_password_of(url);
            }
        }
        let _logging = logging(arguments.verbose, &printer);
        if let Command::New { table, name, sql } = &arguments.command {
            return scaffold(table, name, sql.as_deref(), &printer, arguments.json);
        }
        if arguments.empty_schema() {
            let err = Arguments::command().error(
                clap::error::ErrorKind::InvalidValue,
                "--schema \"\" names no schema (an empty or unset variable?); give a name, or a bare --schema for `verify`'s schema comparison",
            );
            return usage_error(&printer, &err, arguments.json);
        }
        if arguments.bare_schema() && !matches!(arguments.command, Command::Verify(_)) {
            let err = Arguments::command().error(
                clap::error::ErrorKind::InvalidValue,
                "--schema needs a name (the PostgreSQL schema); a bare --schema is only `verify`'s schema comparison",
            );
            return usage_error(&printer, &err, arguments.json);
        }
        if let Command::Verify(verify) = &arguments.command {
            if verify.scratch_url.is_some() && !arguments.schema_drift() {
                // A CI job written so would believe it compared the schema.
                let err = Arguments::command().error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "--scratch-url is for verify's schema comparison: give --schema-drift (or a bare --schema) with it",
                );
                return usage_error(&printer, &err, arguments.json);
            }
        }
        if let Some(option) = fleet::stray_fleet_option(&arguments.command) {
            let err = Arguments::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                format!("{option} is for a fleet: give --targets FILE or --all-schemas with it"),
            );
            return usage_error(&printer, &err, arguments.json);
        }
        if let Some(fleet) = fleet::fleet_of(&arguments.command) {
            let sets = self.sets.clone();
            let outcome = crate::blocking::outside_runtime("migrate::cli::Cli::run")
                .and_then(|()| crate::blocking::new_runtime())
                .and_then(|runtime| {
                    runtime.block_on(fleet::run(
                        &sets,
                        self.configure,
                        &arguments,
                        fleet,
                        &printer,
                    ))
                });
            return match outcome {
                Ok(code) => code,
                Err(err) => commands::report_error(&err, &printer, arguments.json),
            };
        }
        let Some(url) = arguments.database_url.clone() else {
            let err = Arguments::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "this command needs a database: pass --database-url URL or set DATABASE_URL",
            );
            return usage_error(&printer, &err, arguments.json);
        };
        // A migration that panics fails the command (exit 1, with `--json` one document)
        // instead of ending the process with Rust's 101 and nothing on stdout; the lock was
        // released and the step rolled back on the way out.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.execute(&arguments, &url, &printer)
        }))
        .unwrap_or_else(|payload| {
            let message = crate::fleet::panic_text(&*payload);
            Err(crate::Error::msg(format!("the run panicked: {message}")))
        });
        match outcome {
            Ok(code) => code,
            Err(err) => commands::report_error(&err, &printer, arguments.json),
        }
    }

    fn execute(self, arguments: &Arguments, url: &str, printer: &Printer) -> Result<u8> {
        crate::blocking::outside_runtime("migrate::cli::Cli::run")?;
        let runtime = crate::blocking::new_runtime()?;
        let options = arguments.connect_options();
        let flags = arguments.manager_flags()?;
        flags.check_tables(&self.sets)?;
        // Connected on first use: the command's tables and versions are checked first.
        let db = lazy::LazyBackend::new(url, &options)?;
        runtime.block_on(async {
            let manager = flags.apply(
                MigrationManager::new(db, self.sets.iter().copied())?,
                self.configure.as_ref(),
            )?;
            let drift = if !arguments.schema_drift() {
                None
            } else if comparable(&manager).await? {
                Some(self.drift_check(arguments, flags.clone()).run(url).await?)
            } else {
                printer.err("schema comparison skipped: the database is dirty, or records a version this binary does not know");
                None
            };
            commands::execute(
                &arguments.command,
                &manager,
                printer,
                arguments.json,
                drift.as_ref(),
            )
            .await
        })
    }
}

impl Cli {
    /// `verify --schema-drift`: the same sets, connection options and manager configuration as
    /// the live manager, on a scratch database; another tool's adopted version table is not
    /// part of the comparison.
    fn drift_check(&self, arguments: &Arguments, flags: ManagerFlags) -> crate::drift::DriftCheck {
        let configure = self.configure.clone();
        let mut check = crate::drift::DriftCheck::new(self.sets.iter().copied())
            .connect_options(arguments.connect_options())
            .configure(move |manager| flags.apply(manager, configure.as_ref()));
        if let Command::Verify(verify) = &arguments.command {
            if let Some(url) = &verify.scratch_url {
                check = check.scratch_url(url.clone());
            }
        }
        if let Some(adopted) = &arguments.adopt_versions {
            check = check.ignore_table(adopted.clone());
        }
        check
    }
}

/// Whether the live database has versions to compare a scratch database at: a dirty mark or a
/// version this binary does not know leaves none, and `verify` reports those (exit 6 or 4)
/// without the comparison, instead of failing as a usage error.
async fn comparable(manager: &MigrationManager) -> Result<bool> {
    let statuses = manager.status().await?;
    Ok(statuses
        .iter()
        .all(|t| t.dirty.is_none() && t.unknown_version.is_none()))
}

/// A usage error the CLI finds itself: clap's message on stderr, and with `--json` the error
/// document on stdout too; exit 2.
fn usage_error(printer: &Printer, err: &clap::Error, json: bool) -> u8 {
    printer.err_raw(&err.render().to_string());
    if json {
        print_usage_json(printer, err);
    }
    exit::USAGE
}

/// `{"ok": false, "error": {"kind": "Usage", "category": "bad_input", "message"}}`.
fn print_usage_json(printer: &Printer, err: &clap::Error) {
    // clap's message runs to its first blank line (then come the usage and a hint).
    let rendered = err.render().to_string();
    let message: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.trim().is_empty())
        .map(str::trim)
        .collect();
    let message = message.join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    printer.json(&json!({
        "ok": false,
        "error": { "kind": "Usage", "category": "bad_input", "message": message },
    }));
}

/// `new`: needs no database.
fn scaffold(
    table: &str,
    name: &str,
    sql: Option<&std::path::Path>,
    printer: &Printer,
    json: bool,
) -> u8 {
    // The table a SQL file is for is its directory's `sql_dir!`; the name given is still
    // checked, as for a function (one the tracking tables can keep, no `module:table`, no
    // case-only twin of a declared table), so that it is refused here rather than at the macro
    // or the graph.
    let result = match (sql, crate::scaffold::check_new_table(table)) {
        (_, Err(problem)) => Err(problem),
        (Some(dir), Ok(())) => crate::scaffold::new_sql(dir, name).map(|(up, down)| {
            if json {
                // As text: a path that is not UTF-8 has no JSON string (serde_json would fail).
                let (up, down) = (up.display().to_string(), down.display().to_string());
                printer.json(&json!({ "ok": true, "table": table, "up": up, "down": down }));
            } else {
                printer.out(&format!(
                    "created {}\ncreated {}",
                    up.display(),
                    down.display()
                ));
            }
        }),
        (None, Ok(())) => crate::scaffold::new_rust(table, name).map(|source| {
            if json {
                printer.json(&json!({ "ok": true, "table": table, "source": source }));
            } else {
                printer.out(&source);
            }
        }),
    };
    match result {
        Ok(()) => exit::OK,
        Err(err) => commands::report_error(&err, printer, json),
    }
}

/// `-v`: the tracing events (info, then debug, then trace) on the CLI's stderr, redacted like
/// its other output, for as long as the guard lives: this library's and the host's own (its
/// migrations'), not sqlx's, which at `-vv` quote every statement with its values and some of
/// whose warnings quote connection parameters. A host (or a test) whose subscriber is this
/// thread's default, global or scoped, keeps it.
fn logging(verbose: u8, printer: &Printer) -> Option<tracing::subscriber::DefaultGuard> {
    use tracing_subscriber::fmt::writer::MakeWriterExt;
    let level = match verbose {
        0 => return None,
        1 => tracing::Level::INFO,
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    let none_yet = tracing::dispatcher::get_default(|current| {
        current.is::<tracing::subscriber::NoSubscriber>()
    });
    if !none_yet {
        return None;
    }
    let ours = |meta: &tracing::Metadata<'_>| {
        let crate_name = meta.target().split("::").next().unwrap_or_default();
        !crate_name.starts_with("sqlx")
    };
    let subscriber = tracing_subscriber::fmt()
        .with_writer(printer.log_writer().with_filter(ours))
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .finish();
    Some(tracing::subscriber::set_default(subscriber))
}
