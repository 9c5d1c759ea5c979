//! The statements on the step path, prepared once per configuration and run with bound
//! parameters, so that each is parsed once per connection (sqlx caches the prepared statement):
//! re-parsing a literal upsert per step costs more than the round trip it saves.
//!
//! Every statement takes its values from one list ([`Values`]) by name; a statement's
//! placeholders are numbered in the order they appear, so one template serves every dialect.

use migrate_core::{Dialect, Outcome, StepRecord, Timestamp};
use std::sync::Arc;

/// One bound value.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(Option<String>),
    Int(Option<i64>),
}

/// The names a template may use, in the order of [`Values`].
const NAMES: [&str; 16] = [
    "module",
    "table",
    "new_version",
    "new_checksum",
    "expected",
    "now",
    "step_version",
    "name",
    "step_checksum",
    "direction",
    "outcome",
    "started_at",
    "finished_at",
    "execution_us",
    "error",
    "dirty_since",
];

/// The values of one step's statements, indexed like [`NAMES`].
pub(crate) struct Values(pub(crate) Vec<Param>);

impl Values {
    pub(crate) fn new(
        r: &StepRecord<'_>,
        outcome: Outcome,
        started_at: Timestamp,
        execution_us: Option<i64>,
        error: Option<&str>,
    ) -> Values {
        let text = |v: &str| Param::Text(Some(v.to_string()));
        let opt = |v: Option<&str>| Param::Text(v.map(str::to_string));
        Values(vec![
            text(r.module),
            text(r.table),
            opt(r.new_version),
            opt(r.new_checksum),
            opt(r.expected),
            Param::Int(Some(Timestamp::now().as_micros())),
            text(r.version),
            text(r.name),
            text(r.checksum),
            text(r.direction.as_str()),
            text(outcome.as_str()),
            Param::Int(Some(started_at.as_micros())),
            Param::Int(execution_us.map(|us| started_at.as_micros() + us)),
            Param::Int(execution_us),
            opt(error),
            Param::Int(Some(started_at.as_micros())),
        ])
    }
}

/// A prepared statement: its text and, per placeholder, the index of its value.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub(crate) sql: Arc<str>,
    pub(crate) params: Vec<usize>,
}

/// Turns `$(name)` markers into the dialect's placeholders.
fn stmt(dialect: Dialect, template: &str) -> Stmt {
    let mut sql = String::with_capacity(template.len());
    let mut params = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("$(") {
        sql.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let name = &after[..end];
        let index = NAMES.iter().position(|n| *n == name).unwrap_or_else(|| {
            panic!("unknown parameter `{name}` in a built-in statement template")
        });
        params.push(index);
        match dialect {
            Dialect::Postgres => sql.push_str(&format!("${}", params.len())),
            Dialect::MySql => sql.push('?'),
            _ => sql.push_str(&format!("?{}", params.len())),
        }
        rest = after.get(end + 1..).unwrap_or("");
    }
    sql.push_str(rest);
    Stmt {
        sql: sql.into(),
        params,
    }
}

/// The step-path statements of one tracking-table configuration.
#[derive(Debug, Clone)]
pub(crate) struct StepSql {
    /// A transactional step's tracking writes: move the state row (compare-and-set) and insert
    /// the history row. The statement at `record_cas` affects one row, or none on a race.
    pub(crate) record: Vec<Stmt>,
    pub(crate) record_cas: usize,
    /// A journalled step's start: the dirty mark (same compare-and-set) and a "started" row.
    pub(crate) start: Vec<Stmt>,
    pub(crate) start_cas: usize,
    /// A journalled step's end: the state row moved, the dirty mark cleared, the row finished.
    pub(crate) finish: Vec<Stmt>,
    /// One history row (a failed transactional step).
    pub(crate) history: Stmt,
    /// Finishes a journalled step's history row only (it failed: the mark stays).
    pub(crate) history_finish: Stmt,
}

impl StepSql {
    pub(crate) fn new(dialect: Dialect, state: &str, history: &str) -> StepSql {
        let s = |t: &str| stmt(dialect, t);
        let insert_history = format!(
            "INSERT INTO {history} (module, table_name, version, name, checksum, direction, outcome, \
             started_at, finished_at, execution_us, error)"
        );
        let history_values = "$(module), $(table), $(step_version), $(name), $(step_checksum), \
             $(direction), $(outcome), $(started_at), $(finished_at), $(execution_us), $(error)";
        let history_row = s(&format!("{insert_history} VALUES ({history_values})"));
        let clear =
            "dirty_version = NULL, dirty_name = NULL, dirty_direction = NULL, dirty_since = NULL";
        let columns = "module, table_name, version, checksum, dirty_version, dirty_name, \
                       dirty_direction, dirty_since, updated_at";
        let (record, record_cas, start, start_cas) = match dialect {
            Dialect::MySql => {
                // No conditional upsert: make sure the row exists, then move it conditionally.
                let ensure = s(&format!(
                    "INSERT IGNORE INTO {state} (module, table_name, updated_at) VALUES ($(module), $(table), $(now))"
                ));
                let cas =
                    "module = $(module) AND table_name = $(table) AND version <=> $(expected) \
                           AND dirty_version IS NULL";
                let moved = s(&format!(
                    "UPDATE {state} SET version = $(new_version), checksum = $(new_checksum), {clear}, \
                     updated_at = $(now) WHERE {cas}"
                ));
                let marked = s(&format!(
                    "UPDATE {state} SET dirty_version = $(step_version), dirty_name = $(name), \
                     dirty_direction = $(direction), dirty_since = $(dirty_since), updated_at = $(now) WHERE {cas}"
                ));
                (
                    vec![ensure.clone(), moved, history_row.clone()],
                    1,
                    vec![ensure, marked, history_row.clone()],
                    1,
                )
            }
            _ => {
                let cas =
                    "WHERE s.version IS NOT DISTINCT FROM $(expected) AND s.dirty_version IS NULL";
                let moved = format!(
                    "INSERT INTO {state} AS s ({columns}) VALUES ($(module), $(table), $(new_version), \
                     $(new_checksum), NULL, NULL, NULL, NULL, $(now)) ON CONFLICT (module, table_name) \
                     DO UPDATE SET version = excluded.version, checksum = excluded.checksum, {clear}, \
                     updated_at = excluded.updated_at {cas}"
                );
                let marked = format!(
                    "INSERT INTO {state} AS s ({columns}) VALUES ($(module), $(table), NULL, NULL, \
                     $(step_version), $(name), $(direction), $(dirty_since), $(now)) \
                     ON CONFLICT (module, table_name) DO UPDATE SET dirty_version = excluded.dirty_version, \
                     dirty_name = excluded.dirty_name, dirty_direction = excluded.dirty_direction, \
                     dirty_since = excluded.dirty_since, updated_at = excluded.updated_at {cas}"
                );
                if dialect == Dialect::Postgres {
                    // One statement: the history row is inserted only if the state row moved.
                    let both = |upsert: &str| {
                        s(&format!(
                            "WITH moved AS ({upsert} RETURNING 1) {insert_history} SELECT {history_values} FROM moved"
                        ))
                    };
                    (vec![both(&moved)], 0, vec![both(&marked)], 0)
                } else {
                    (
                        vec![s(&moved), history_row.clone()],
                        0,
                        vec![s(&marked), history_row.clone()],
                        0,
                    )
                }
            }
        };
        let finish_state = s(&format!(
            "UPDATE {state} SET version = $(new_version), checksum = $(new_checksum), {clear}, \
             updated_at = $(now) WHERE module = $(module) AND table_name = $(table)"
        ));
        let history_finish = s(&format!(
            "UPDATE {history} SET outcome = $(outcome), finished_at = $(finished_at), \
             execution_us = $(execution_us), error = $(error) WHERE module = $(module) \
             AND table_name = $(table) AND version = $(step_version) AND direction = $(direction) \
             AND outcome = 'started' AND started_at = $(started_at)"
        ));
        StepSql {
            record,
            record_cas,
            start,
            start_cas,
            finish: vec![finish_state, history_finish.clone()],
            history: history_row,
            history_finish,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_dialect() {
        let sqlite = stmt(
            Dialect::Sqlite,
            "a = $(module) AND b = $(table) AND c = $(module)",
        );
        assert_eq!(&*sqlite.sql, "a = ?1 AND b = ?2 AND c = ?3");
        assert_eq!(sqlite.params, [0, 1, 0]);
        let pg = stmt(Dialect::Postgres, "x = $(now)");
        assert_eq!(&*pg.sql, "x = $1");
        let mysql = stmt(Dialect::MySql, "x = $(now), y = $(error)");
        assert_eq!(&*mysql.sql, "x = ?, y = ?");
        assert_eq!(mysql.params, [5, 14]);
    }

    #[test]
    fn every_dialect_builds_its_statements() {
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
            let sql = StepSql::new(dialect, "\"s\"", "\"h\"");
            assert!(sql.record_cas < sql.record.len());
            assert!(sql.start_cas < sql.start.len());
            assert!(sql.record.iter().all(|s| !s.sql.contains("$(")));
        }
        assert_eq!(
            StepSql::new(Dialect::Postgres, "s", "h").record.len(),
            1,
            "one round trip"
        );
    }
}
