//! What each command does with the manager, and the exit code it ends with.

use super::args::{Command, DownArgs, UpArgs};
use super::output::{self, Printer};
use super::{exit, exit_code};
use crate::drift::DriftReport;
use crate::error_json::error_json;
use crate::manager::Resolution;
use crate::report::{Report, TableStatus};
use crate::startup::Problem;
use crate::{Error, MigrationManager, Result};
use serde_json::json;

/// Runs a command that needs the database. `Ok` carries the exit code of a command that ran
/// and found something (`status --check`, `verify`).
pub(super) async fn execute(
    command: &Command,
    manager: &MigrationManager,
    printer: &Printer,
    json: bool,
    schema_drift: Option<&DriftReport>,
) -> Result<u8> {
    match command {
        Command::Status { check, .. } => {
            let statuses = manager.status().await?;
            let code = if *check {
                worst(&Problem::of_all(&statuses))
            } else {
                exit::OK
            };
            if json {
                printer.json(&json!({ "ok": code == exit::OK, "tables": statuses }));
            } else {
                printer.out(&output::status_table(&statuses));
            }
            Ok(code)
        }
        Command::Current => {
            let statuses = manager.status().await?;
            if json {
                let tables: Vec<_> = statuses
                    .iter()
                    .map(|s| json!({ "module": s.module, "table": s.table, "current": s.current }))
                    .collect();
                printer.json(&json!({ "ok": true, "tables": tables }));
            } else {
                printer.out(&output::current_table(&statuses));
            }
            Ok(exit::OK)
        }
        Command::History { limit } => {
            let entries = manager.history(*limit as usize).await?;
            if json {
                printer.json(&json!({ "ok": true, "history": entries }));
            } else if entries.is_empty() {
                printer.out("no history yet");
            } else {
                printer.out(&output::history_table(&entries));
            }
            Ok(exit::OK)
        }
        Command::Up(args) => up(manager, args, printer, json).await,
        Command::InstallFresh => {
            let report = manager.install_fresh().await?;
            Ok(print_report(printer, json, "install-fresh", &report))
        }
        Command::Down(args) => down(manager, args, printer, json).await,
        Command::Plan { to, tables } => {
            let mut request = manager.up().dry_run(true);
            if let Some(to) = to {
                request = request.target(to.clone());
            }
            for table in tables {
                request = request.table(table.clone());
            }
            let report = request.await?;
            if json {
                printer.json(&json!({ "ok": true, "planned": report.planned }));
            } else {
                printer.out(&output::plan_text(&report.planned));
            }
            Ok(exit::OK)
        }
        Command::Verify(_) => verify(manager, printer, json, schema_drift).await,
        Command::Stamp { table, version } => {
            manager.stamp(table, version).await?;
            done(
                printer,
                json,
                "stamp",
                table,
                &format!("recorded `{table}` at {version} without running anything"),
            )
        }
        Command::Unstamp { table } => {
            manager.unstamp(table).await?;
            done(
                printer,
                json,
                "unstamp",
                table,
                &format!(
                    "recorded `{table}`'s newest step as not applied, without running its down"
                ),
            )
        }
        Command::Repair {
            table,
            completed,
            rolled_back: _,
        } => repair(manager, table, *completed, printer, json).await,
        Command::AcceptChecksums { table } => {
            manager.accept_checksums(table).await?;
            done(
                printer,
                json,
                "accept-checksums",
                table,
                &format!("re-pinned the checksums of `{table}`'s applied steps to this binary's"),
            )
        }
        Command::New { .. } => Err(Error::Config(
            "`new` needs no database and is handled before connecting".to_string(),
        )),
    }
}

/// The worst problem's exit code: dirty, then drift or ahead, then pending.
fn worst(problems: &[Problem]) -> u8 {
    problems
        .iter()
        .map(|p| match p {
            Problem::Dirty { .. } => exit::DIRTY,
            Problem::Drift(_) | Problem::Ahead { .. } | Problem::Adopted { .. } => exit::DRIFT,
            _ => exit::PENDING,
        })
        .max()
        .unwrap_or(exit::OK)
}

fn done(printer: &Printer, json: bool, command: &str, table: &str, text: &str) -> Result<u8> {
    if json {
        printer.json(&json!({ "ok": true, "command": command, "table": table, "message": text }));
    } else {
        printer.out(text);
    }
    Ok(exit::OK)
}

fn print_report(printer: &Printer, json: bool, what: &str, report: &Report) -> u8 {
    if json {
        printer.json(&json!({ "ok": true, "report": report }));
    } else {
        printer.out(&output::report_text(what, report));
    }
    exit::OK
}

async fn up(
    manager: &MigrationManager,
    args: &UpArgs,
    printer: &Printer,
    json: bool,
) -> Result<u8> {
    let mut request = manager
        .up()
        .force(args.force)
        .dry_run(args.dry_run)
        .on_progress(printer.progress());
    if let Some(to) = &args.to {
        request = request.target(to.clone());
    }
    for table in &args.tables {
        request = request.table(table.clone());
    }
    let report = request.await?;
    Ok(print_report(printer, json, "up", &report))
}

async fn down(
    manager: &MigrationManager,
    args: &DownArgs,
    printer: &Printer,
    json: bool,
) -> Result<u8> {
    let mut request = manager
        .down()
        .force(args.force)
        .dry_run(args.dry_run)
        .on_progress(printer.progress());
    for table in &args.tables {
        request = request.table(table.clone());
    }
    if args.base {
        request = request.to_base();
    } else if let Some(to) = &args.to {
        request = request.target(to.clone());
    } else if args.one {
        // One step, counted under the lock: a step another runner applies while this one
        // waits is the one reverted, not one more.
        let table = one_step_table(manager, &args.tables).await?;
        request = request.steps(1);
        if args.tables.is_empty() {
            request = request.table(table);
        }
    }
    let report = request.await?;
    Ok(print_report(printer, json, "down", &report))
}

/// Whether `name` (`table` or `module:table`) names this module's table.
fn names(name: &str, module: &str, table: &str) -> bool {
    match name.split_once(':') {
        Some((m, t)) => m == module && t == table,
        None => name == table,
    }
}

/// For `down -1`: the one selected table (as `module:table`), which must have a step applied.
/// The table is chosen from the linked graph; the database is read once.
async fn one_step_table(manager: &MigrationManager, tables: &[String]) -> Result<String> {
    let linked: Vec<(&str, &str)> = manager.graph().tables().collect();
    let selected: Vec<&(&str, &str)> = match tables {
        [] => linked.iter().collect(),
        [name] => linked.iter().filter(|(m, t)| names(name, m, t)).collect(),
        _ => Vec::new(),
    };
    let [&(module, table)] = selected.as_slice() else {
        // A name that is no table is the usual `UnknownTable`, listing the known ones.
        if let [name] = tables {
            manager.current_version(name).await?;
        }
        let known: Vec<String> = linked.iter().map(|(m, t)| format!("{m}:{t}")).collect();
        return Err(Error::Config(format!(
            "down -1 reverts one step of exactly one table: name it with --table ({}), once",
            known.join(", ")
        )));
    };
    let applied = manager
        .applied()
        .await?
        .into_iter()
        .any(|m| m.step.module == module && m.step.table == table);
    if !applied {
        return Err(Error::Config(format!(
            "down -1: `{module}` table `{table}` has nothing applied"
        )));
    }
    Ok(format!("{module}:{table}"))
}

async fn verify(
    manager: &MigrationManager,
    printer: &Printer,
    json: bool,
    schema_drift: Option<&DriftReport>,
) -> Result<u8> {
    // The graph was validated when the manager was built: a broken one never gets here.
    let statuses = manager.status().await?;
    let problems = Problem::of_all(&statuses);
    let mut code = worst(&problems);
    let schema_differs = schema_drift.is_some_and(|report| !report.is_clean());
    if schema_differs {
        code = code.max(exit::DRIFT);
    }
    if json {
        let listed: Vec<_> = problems
            .iter()
            .map(|p| json!({ "kind": p.kind(), "message": p.to_string() }))
            .collect();
        let mut document = json!({
            "ok": problems.is_empty() && !schema_differs,
            "migrations": manager.graph().len(),
            "tables": statuses.len(),
            "problems": listed,
        });
        if let Some(report) = schema_drift {
            document["schema"] = json!({
                "clean": report.is_clean(),
                "versions": report.versions.iter().map(|t| json!({
                    "module": t.module, "table": t.table, "version": t.version,
                })).collect::<Vec<_>>(),
                "differences": report.diff.changes,
                "moved_columns": report.diff.moves.iter().map(|m| json!({
                    "column": m.column, "from": m.from, "to": m.to,
                })).collect::<Vec<_>>(),
            });
        }
        printer.json(&document);
        return Ok(code);
    }
    if problems.is_empty() {
        printer.out(&format!(
            "ok: {} migration(s) on {} table(s); the graph is valid, no drift, nothing dirty, nothing pending, nothing ahead",
            manager.graph().len(),
            statuses.len()
        ));
    } else {
        printer.out(&format!("{} problem(s):", problems.len()));
        for problem in &problems {
            printer.out(&format!("  - {problem}"));
        }
    }
    if let Some(report) = schema_drift {
        let verdict = if report.is_clean() {
            "ok"
        } else {
            "schema drift"
        };
        printer.out(&format!("{verdict}: {report}"));
    }
    Ok(code)
}

async fn repair(
    manager: &MigrationManager,
    table: &str,
    completed: bool,
    printer: &Printer,
    json: bool,
) -> Result<u8> {
    let migrations = manager.migrations();
    let resolution = if completed {
        Resolution::Completed
    } else {
        Resolution::RolledBack
    };
    // An unknown name, or a bare one that two modules share, goes straight to resolve_dirty,
    // which refuses it naming the tables before anything is read or described.
    let mut modules: Vec<&str> = migrations
        .iter()
        .filter(|m| names(table, &m.step.module, &m.step.table))
        .map(|m| m.step.module.as_str())
        .collect();
    modules.sort_unstable();
    modules.dedup();
    if modules.len() > 1 {
        manager.resolve_dirty(table, resolution).await?;
    }
    let known = !modules.is_empty();
    let statuses = if known {
        manager.status().await?
    } else {
        Vec::new()
    };
    let marks: Vec<&TableStatus> = statuses
        .iter()
        .filter(|s| s.dirty.is_some() && names(table, &s.module, &s.table))
        .collect();
    // A known table without a mark would be "repaired" of nothing: say so instead.
    if marks.is_empty() && known {
        return Err(Error::Config(format!(
            "`{table}` has no dirty mark: nothing to repair"
        )));
    }
    let mut described = Vec::new();
    for status in &marks {
        if let Some(mark) = &status.dirty {
            let step = migrations
                .iter()
                .find(|m| {
                    m.step.module == status.module
                        && m.step.table == status.table
                        && m.step.version.to_string() == mark.version
                })
                .map(|m| {
                    format!(
                        "{} declared at {}, {}",
                        m.step,
                        m.location,
                        if m.transactional {
                            "transactional"
                        } else {
                            "outside a transaction (journalled)"
                        }
                    )
                })
                .unwrap_or_else(|| "a step this binary does not declare".to_string());
            described.push(json!({
                "module": status.module,
                "table": status.table,
                "mark": mark,
                "step": step,
            }));
            if !json {
                printer.out(&format!(
                    "`{}` table `{}` is dirty: {} step {} ({}) started at {} and never finished\n  the step: {step}",
                    status.module, status.table, mark.direction, mark.version, mark.name, mark.since
                ));
            }
        }
    }
    manager.resolve_dirty(table, resolution).await?;
    let what = if completed {
        "recorded the step as completed"
    } else {
        "recorded the step as rolled back"
    };
    if json {
        printer.json(&json!({ "ok": true, "command": "repair", "table": table, "dirty": described, "message": what }));
    } else {
        printer.out(&format!("repaired `{table}`: {what}"));
    }
    Ok(exit::OK)
}

/// How a failed command ends: the error on stderr (and as JSON on stdout with `--json`), and
/// the exit code of its category.
pub(super) fn report_error(err: &Error, printer: &Printer, json: bool) -> u8 {
    if let Error::Blocked {
        report: Some(report),
        ..
    } = err
    {
        if !json {
            let what = report
                .blocked
                .first()
                .map_or("up", |b| b.direction.as_str());
            printer.out(&super::output::report_text(what, report));
        }
    }
    let mut text = format!("error: {err}");
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    printer.err(&text);
    if json {
        printer.json(&json!({ "ok": false, "error": error_json(err) }));
    }
    exit_code(err)
}
