//! Where the CLI writes, with the database URL's password removed from every byte, and the
//! tables it prints.

use crate::report::{HistoryEntry, PlannedStep, Progress, Report, TableStatus};
use comfy_table::{presets, ContentArrangement, Table};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A writer the CLI and its progress callback share.
pub(super) type Sink = Arc<Mutex<Box<dyn Write + Send>>>;

/// stdout and stderr, redacting the URL's password.
#[derive(Clone)]
pub(super) struct Printer {
    stdout: Sink,
    stderr: Sink,
    /// The URLs whose passwords never reach the output.
    urls: Vec<String>,
    /// A progress line was started and not ended (a step is running).
    open_line: Arc<AtomicBool>,
}

fn write_to(sink: &Sink, text: &str) {
    if let Ok(mut sink) = sink.lock() {
        // A closed pipe (`| head`) is not the CLI's failure.
        let _ = sink.write_all(text.as_bytes());
        let _ = sink.flush();
    }
}

impl Printer {
    pub(super) fn new(stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>) -> Self {
        Printer {
            stdout: Arc::new(Mutex::new(stdout)),
            stderr: Arc::new(Mutex::new(stderr)),
            urls: Vec::new(),
            open_line: Arc::new(AtomicBool::new(false)),
        }
    }

    /// From now on, the password of `url` never reaches the output.
    pub(super) fn hide_password_of(&mut self, url: &str) {
        self.urls.push(url.to_string());
    }

    fn redact(&self, text: &str) -> String {
        self.urls.iter().fold(text.to_string(), |text, url| {
            crate::backend::redact_url_password(&text, url)
        })
    }

    /// A line on stdout.
    pub(super) fn out(&self, text: &str) {
        write_to(&self.stdout, &self.redact(&format!("{text}\n")));
    }

    /// A line on stderr, after ending a progress line left open.
    pub(super) fn err(&self, text: &str) {
        let newline = if self.open_line.swap(false, Ordering::Relaxed) {
            "\n"
        } else {
            ""
        };
        write_to(&self.stderr, &self.redact(&format!("{newline}{text}\n")));
    }

    /// Text on stderr exactly as given (clap's rendered messages end their own lines).
    pub(super) fn err_raw(&self, text: &str) {
        write_to(&self.stderr, &self.redact(text));
    }

    /// A `-v` log line on stderr, after ending a progress line left open, redacted like every
    /// other line.
    fn log(&self, text: &str) {
        let newline = if self.open_line.swap(false, Ordering::Relaxed) {
            "\n"
        } else {
            ""
        };
        write_to(&self.stderr, &self.redact(&format!("{newline}{text}")));
    }

    /// Where `-v`'s log lines go: this printer's stderr (see [`LogWriter`]).
    pub(super) fn log_writer(&self) -> LogWriter {
        LogWriter(self.clone())
    }

    /// Text on stdout exactly as given.
    pub(super) fn out_raw(&self, text: &str) {
        write_to(&self.stdout, &self.redact(text));
    }

    /// One JSON document on stdout. The password is taken out of its strings before it is
    /// written: in the written text a password's `\` or `"` is escaped, so it would no longer
    /// match, and a password of digits would blank numbers too (leaving no JSON).
    pub(super) fn json(&self, value: &serde_json::Value) {
        let value = self.redact_strings(value.clone());
        let text = serde_json::to_string_pretty(&value).unwrap_or_else(|e| {
            format!("{{\"ok\": false, \"error\": {{\"message\": \"cannot print JSON: {e}\"}}}}")
        });
        write_to(&self.stdout, &format!("{text}\n"));
    }

    /// `value` with every string (and object key) redacted; numbers, booleans and `null`
    /// as they are.
    fn redact_strings(&self, value: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match value {
            Value::String(text) => Value::String(self.redact(&text)),
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .map(|item| self.redact_strings(item))
                    .collect(),
            ),
            Value::Object(fields) => Value::Object(
                fields
                    .into_iter()
                    .map(|(key, item)| (self.redact(&key), self.redact_strings(item)))
                    .collect(),
            ),
            other => other,
        }
    }

    /// The progress callback of a run: `[k/n] up module:table@version (name) … 3.2 ms` on
    /// stderr, the line started as the step starts and ended as it ends.
    pub(super) fn progress(&self) -> impl Fn(&Progress) + Send + Sync + 'static {
        let printer = self.clone();
        move |p: &Progress| match p.finished {
            None => {
                printer.open_line.store(true, Ordering::Relaxed);
                write_to(
                    &printer.stderr,
                    &format!("[{}/{}] {} {} … ", p.index, p.total, p.direction, p.step),
                );
            }
            Some(took) => {
                printer.open_line.store(false, Ordering::Relaxed);
                write_to(&printer.stderr, &format!("{}\n", millis(took)));
            }
        }
    }
}

pub(super) fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1_000.0)
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::ASCII_BORDERS_ONLY_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    table
}

fn or_dash(value: Option<String>) -> String {
    value.unwrap_or_else(|| "-".to_string())
}

/// The `status` table; a `note` column appears when a table has drift, is ahead, disagrees
/// with an adopted version table, or has a resumable step that the next `up` resumes.
pub(super) fn status_table(statuses: &[TableStatus]) -> String {
    let notes = statuses.iter().any(|s| {
        s.drift.is_some()
            || s.unknown_version.is_some()
            || !s.linked
            || s.adoption.is_some()
            || s.resumes
    });
    let mut header = vec!["module", "table", "current", "latest", "pending", "dirty"];
    if notes {
        header.push("note");
    }
    let mut out = table(&header);
    for s in statuses {
        let mut row = vec![
            s.module.clone(),
            s.table.clone(),
            or_dash(s.current.as_ref().map(ToString::to_string)),
            if s.linked {
                s.latest.to_string()
            } else {
                "-".to_string()
            },
            s.pending.to_string(),
            or_dash(s.dirty.as_ref().map(|d| {
                format!(
                    "{} {} ({}) since {}",
                    d.direction, d.version, d.name, d.since
                )
            })),
        ];
        if notes {
            let mut note = Vec::new();
            if let Some(drift) = &s.drift {
                note.push(if drift.never_applied() {
                    format!(
                        "drift: {} has no run recorded, below applied steps",
                        drift.step.version
                    )
                } else {
                    format!("drift: {} edited after it ran", drift.step.version)
                });
            }
            if let Some(version) = &s.unknown_version {
                note.push(format!("ahead: {version} is unknown to this binary"));
            } else if !s.linked {
                note.push("ahead: table unknown to this binary".to_string());
            }
            if let Some(conflict) = &s.adoption {
                note.push(match &conflict.current {
                    Some(current) => format!(
                        "adopted: `{}` records {}, `{}` {current}",
                        conflict.from, conflict.adopted, conflict.tracking
                    ),
                    None => format!(
                        "adopted: `{}` records {}, no release of this table's migrations",
                        conflict.from, conflict.adopted
                    ),
                });
            }
            if s.resumes {
                note.push("resumes: the next up runs the cut-off step on".to_string());
            }
            row.push(note.join("; "));
        }
        out.add_row(row);
    }
    out.to_string()
}

/// The `current` table.
pub(super) fn current_table(statuses: &[TableStatus]) -> String {
    let mut out = table(&["module", "table", "current"]);
    for s in statuses {
        out.add_row(vec![
            s.module.clone(),
            s.table.clone(),
            or_dash(s.current.as_ref().map(ToString::to_string)),
        ]);
    }
    out.to_string()
}

/// The `history` table.
pub(super) fn history_table(entries: &[HistoryEntry]) -> String {
    let mut out = table(&[
        "id",
        "module",
        "table",
        "version",
        "name",
        "direction",
        "outcome",
        "started",
        "took",
        "error",
    ]);
    for e in entries {
        out.add_row(vec![
            e.id.to_string(),
            e.module.clone(),
            e.table.clone(),
            e.version.clone(),
            e.name.clone(),
            e.direction.to_string(),
            e.outcome.to_string(),
            e.started_at.to_string(),
            or_dash(e.execution_time.map(millis)),
            or_dash(e.error.clone()),
        ]);
    }
    out.to_string()
}

/// The steps of a dry run, each followed by its SQL when it is a SQL-file step.
pub(super) fn plan_text(steps: &[PlannedStep]) -> String {
    if steps.is_empty() {
        return "nothing to do".to_string();
    }
    let mut text = String::new();
    for (i, step) in steps.iter().enumerate() {
        text.push_str(&format!(
            "{:>3}. {} {}{}\n",
            i + 1,
            step.direction,
            step.step,
            if step.transactional {
                ""
            } else {
                " [no transaction, journalled]"
            }
        ));
        if let Some(sql) = &step.sql {
            for line in sql.trim_end().lines() {
                text.push_str(&format!("       | {line}\n"));
            }
        }
    }
    text.trim_end().to_string()
}

/// What a run did, for people.
pub(super) fn report_text(what: &str, report: &Report) -> String {
    let mut text = run_text(what, report);
    for refusal in &report.blocked {
        text.push_str(&format!(
            "\nblocked {} ({}): {}\n  fix: {}",
            refusal.step, refusal.direction, refusal.reason, refusal.fix
        ));
    }
    // Tables a release target left alone say so; tables already there are not news.
    for skipped in &report.skipped {
        if skipped.reason != crate::report::SkipReason::AlreadyThere {
            text.push_str(&format!(
                "\nskipped {}:{}: {}",
                skipped.module, skipped.table, skipped.reason
            ));
        }
    }
    text
}

fn run_text(what: &str, report: &Report) -> String {
    use crate::report::ReportStatus;
    match report.status {
        ReportStatus::DryRun => format!(
            "{what} (dry run, nothing changed): {} step(s)\n{}",
            report.planned.len(),
            plan_text(&report.planned)
        ),
        ReportStatus::UpToDate => format!("{what}: up to date, nothing to do"),
        _ => {
            let mut out = table(&["direction", "step", "took"]);
            for a in &report.applied {
                out.add_row(vec![
                    a.direction.to_string(),
                    a.step.to_string(),
                    millis(a.execution_time),
                ]);
            }
            format!(
                "{what}: {} step(s) in {}\n{out}",
                report.applied.len(),
                millis(report.total_time)
            )
        }
    }
}

/// The `-v` subscriber's writer: each formatted event (the fmt layer writes one at a time) on
/// the printer's stderr, with the URLs' passwords removed.
#[derive(Clone)]
pub(super) struct LogWriter(Printer);

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.log(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> LogWriter {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::Printer;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// A writer whose bytes the test reads back.
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_loses_the_password_in_its_strings_and_stays_json() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let mut printer =
            Printer::new(Box::new(Shared(written.clone())), Box::new(std::io::sink()));
        printer.hide_password_of(r"postgres://app:pa\ss1@db/app");
        printer.hide_password_of("postgres://app:1234@db/app");
        printer.json(&serde_json::json!({
            "message": r"cannot parse postgres://app:pa\ss1@db/app",
            "other": "postgres://app:1234@db/app",
            "id": 1234,
            "total_time_ms": 0.41234,
        }));
        let text = String::from_utf8(written.lock().expect("buffer").clone()).expect("UTF-8");
        let parsed: serde_json::Value =
            serde_json::from_str(&text).expect("still one JSON document");
        assert!(!text.contains("ss1"), "{text}");
        assert!(
            !parsed["other"].as_str().is_some_and(|s| s.contains("1234")),
            "{text}"
        );
        assert_eq!(parsed["id"], 1234, "{text}");
        assert_eq!(parsed["total_time_ms"], 0.41234, "{text}");
    }
}
