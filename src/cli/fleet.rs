//! `up`, `status` and `verify` over a fleet (`--all-schemas`, `--targets FILE`).

use super::args::{Arguments, Command, FleetArgs};
use super::output::Printer;
use super::{exit, Configure};
use crate::fleet::{Fleet, FleetOutcome, FleetReport, TargetOutcome};
use crate::fleet_json::{fleet_json, Panics};
use crate::registry::MigrationSet;
use crate::{Error, Result};

/// The fleet options of a command, if it runs over a fleet.
pub(super) fn fleet_of(command: &Command) -> Option<&FleetArgs> {
    options_of(command).filter(|fleet| fleet.is_fleet())
}

/// The fleet options a command takes, whether or not it names a fleet.
fn options_of(command: &Command) -> Option<&FleetArgs> {
    match command {
        Command::Up(args) => Some(&args.fleet),
        Command::Status { fleet, .. } => Some(fleet),
        Command::Verify(verify) => Some(&verify.fleet),
        _ => None,
    }
}

/// The option of a fleet that `command` gives without naming a fleet, if any: it would be
/// ignored, and an operator who forgot `--targets` would believe a fleet ran.
pub(super) fn stray_fleet_option(command: &Command) -> Option<&'static str> {
    let fleet = options_of(command).filter(|fleet| !fleet.is_fleet())?;
    if fleet.concurrency.is_some() {
        Some("--concurrency")
    } else if fleet.fail_fast {
        Some("--fail-fast")
    } else {
        None
    }
}

/// Runs the command over the fleet and prints one line per target and a summary; exits 0
/// when every target succeeded, 1 otherwise.
pub(super) async fn run(
    sets: &[&'static MigrationSet],
    configure: Option<Configure>,
    arguments: &Arguments,
    fleet_args: &FleetArgs,
    printer: &Printer,
) -> Result<u8> {
    if arguments.schema_drift() {
        return Err(Error::Config(
            "verify --schema-drift checks one database, not a fleet: run it per target".into(),
        ));
    }
    if arguments.schema.is_some() && !arguments.bare_schema() {
        return Err(Error::Config(
            "--schema does not combine with --all-schemas or --targets: each target names its own schema".into(),
        ));
    }
    if let Command::Up(up) = &arguments.command {
        if up.to.is_some() || !up.tables.is_empty() || up.force || up.dry_run {
            return Err(Error::Config(
                "--to, --table, --force and --dry-run do not combine with --all-schemas or --targets: a fleet goes up to every head".into(),
            ));
        }
    }
    let flags = arguments.manager_flags()?;
    flags.check_tables(sets)?;
    let mut fleet = Fleet::new(sets.iter().copied())
        .connect_options(arguments.connect_options())
        .fail_fast(fleet_args.fail_fast)
        .configure(move |manager| flags.apply(manager, configure.as_ref()));
    if let Some(n) = fleet_args.concurrency {
        fleet = fleet.concurrency(usize::from(n));
    }
    if let Some(path) = &fleet_args.targets {
        fleet = fleet.targets_file(path)?;
    }
    // Settings no target can take (a bad tracking table, transaction pooling for SQLite)
    // are refused before anything connects (exit 2), as for one database, instead of
    // failing every target after connecting to it.
    fleet.check()?;
    if fleet_args.all_schemas {
        let url = arguments.database_url.as_deref().ok_or_else(|| {
            Error::Config("--all-schemas needs the server: pass --database-url URL".into())
        })?;
        migrate_backends::checked_dialect(url, &arguments.connect_options())?;
        fleet = fleet
            .all_schemas(url, fleet_args.schema_like.as_deref())
            .await?;
    }
    // No target at all is a mistake in the arguments (a `--schema-like` that matches nothing,
    // an empty targets file), not a fleet that succeeded.
    if fleet.target_list().is_empty() {
        return Err(Error::Config(match &fleet_args.schema_like {
            Some(pattern) => format!("no schema of the server matches --schema-like {pattern}"),
            None => "the fleet has no targets: --targets names an empty file, or --all-schemas found only PostgreSQL's own schemas".into(),
        }));
    }
    let (what, report) = match &arguments.command {
        Command::Up(_) => ("up", fleet.up().await),
        // `status --check` gates like `verify`: a target with anything pending, dirty,
        // drifted or ahead fails, and the fleet exits 1.
        Command::Verify(_) => ("verify", fleet.verify().await),
        Command::Status { check: true, .. } => ("status --check", fleet.verify().await),
        _ => ("status", fleet.status().await),
    };
    if arguments.json {
        printer.json(&fleet_json(&report, Panics::Shown));
    } else {
        printer.out(&text(what, &report));
    }
    Ok(match report.outcome {
        FleetOutcome::AllSucceeded => exit::OK,
        _ => exit::FAILED,
    })
}

/// Why a table needs an operator, as `status` would say it; `None` when it does not.
fn attention(table: &crate::report::TableStatus) -> Option<&'static str> {
    if table.dirty.is_some() {
        Some("dirty")
    } else if table.drift.is_some() {
        Some("drift")
    } else if table.unknown_version.is_some() || !table.linked {
        Some("ahead")
    } else if table.adoption.is_some() {
        Some("adopted version disagrees")
    } else {
        None
    }
}

fn text(what: &str, report: &FleetReport) -> String {
    let mut out = String::new();
    for t in &report.targets {
        let line = match &t.outcome {
            TargetOutcome::Ran(run) if run.applied.is_empty() => {
                format!("ok      {}: up to date", t.target)
            }
            TargetOutcome::Ran(run) => format!(
                "ok      {}: {} step(s) applied",
                t.target,
                run.applied.len()
            ),
            TargetOutcome::Read(tables) => {
                let pending: usize = tables.iter().map(|s| s.pending).sum();
                // `status` reads without judging (its exit code is 0), but a table that
                // needs an operator is named: "ok" alone hid a dirty or drifted target.
                let attention: Vec<String> = tables
                    .iter()
                    .filter_map(|s| attention(s).map(|why| format!("{} ({why})", s.table)))
                    .collect();
                let (label, attention) = if attention.is_empty() {
                    ("ok     ", String::new())
                } else {
                    (
                        "ATTEND ",
                        format!("; needs attention: {}", attention.join(", ")),
                    )
                };
                format!(
                    "{label} {}: {} table(s), {pending} step(s) pending{attention}",
                    t.target,
                    tables.len()
                )
            }
            TargetOutcome::Failed(err) => format!("FAILED  {}: {err}", t.target),
            TargetOutcome::NotRun => format!("skipped {}: not run (--fail-fast)", t.target),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(&format!(
        "fleet {what}: {} of {} targets succeeded ({}) in {:.1} s, at most {} connections",
        report.succeeded(),
        report.targets.len(),
        report.outcome.as_str().replace('_', " "),
        report.total_time.as_secs_f64(),
        report.max_connections
    ));
    out
}
