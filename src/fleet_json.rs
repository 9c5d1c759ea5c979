//! A [`FleetReport`] as one JSON object: what the CLI's `--json` prints for a fleet and
//! `POST /migrations/all/up` answers.

use crate::error_json::error_json;
use crate::fleet::{FleetOutcome, FleetReport, TargetOutcome, TargetPanicked};
use serde_json::{json, Value};

/// Whether a fleet's JSON shows what a target's panic said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
// Each variant has one user, the CLI or the HTTP route, which are features of their own.
#[cfg_attr(not(all(feature = "cli", feature = "http")), allow(dead_code))]
pub(crate) enum Panics {
    /// The CLI's: the operator's own terminal.
    Shown,
    /// The HTTP route's: the answer goes to whoever holds the token.
    Hidden,
}

/// `{"ok", "outcome", "succeeded", "failed", "max_connections", "total_time_ms", "targets":
/// [{"target", "ok", "elapsed_ms", "report" | "tables" | "error" | "not_run"}]}`; "failed"
/// counts the targets not run (`--fail-fast`) too. With [`Panics::Hidden`] a target whose run
/// panicked says so without the panic's text (a migration's or a driver's words, which may
/// quote a secret), as the HTTP route's single runs do; the text is in the log.
pub(crate) fn fleet_json(report: &FleetReport, panics: Panics) -> Value {
    let targets: Vec<Value> = report
        .targets
        .iter()
        .map(|t| {
            let mut entry = json!({
                "target": t.target.to_string(),
                "ok": !t.failed(),
                "elapsed_ms": t.elapsed.as_secs_f64() * 1_000.0,
            });
            let (key, value) = match &t.outcome {
                TargetOutcome::Ran(run) => ("report", json!(run)),
                TargetOutcome::Read(tables) => ("tables", json!(tables)),
                TargetOutcome::Failed(err) if TargetPanicked::is(err) => {
                    let message = match panics {
                        Panics::Shown => err.to_string(),
                        Panics::Hidden => {
                            "its run panicked (the message is in the server's log)".to_string()
                        }
                    };
                    let kind =
                        json!({ "kind": "Panicked", "category": "other", "message": message });
                    ("error", kind)
                }
                TargetOutcome::Failed(err) => ("error", error_json(err)),
                TargetOutcome::NotRun => ("not_run", Value::Bool(true)),
            };
            if let Value::Object(map) = &mut entry {
                map.insert(key.to_string(), value);
            }
            entry
        })
        .collect();
    json!({
        "ok": report.outcome == FleetOutcome::AllSucceeded,
        "outcome": report.outcome.as_str(),
        "succeeded": report.succeeded(),
        "failed": report.targets.len() - report.succeeded(),
        "max_connections": report.max_connections,
        "total_time_ms": report.total_time.as_secs_f64() * 1_000.0,
        "targets": targets,
    })
}
