//! The statements a backend runs, as each database's module writes them, compiled once per
//! tracking-table configuration into prepared statements with bound parameters.
//!
//! A statement's template names its values with `$(name)` markers; [`compile`] turns each marker
//! into the database's placeholder ([`Driver::placeholder`]) and remembers which value it binds,
//! so that one list of values ([`Values`]) serves every statement and every database.
//! This file holds no SQL: the text of every statement is in `sqlite.rs`, `postgres.rs` and
//! `mysql.rs`, and in `portable.rs` where all three write it the same way.

use crate::driver::Driver;
use migrate_core::backend::StepRecord;
use migrate_core::dialect::Dialect;
use migrate_core::step::Outcome;
use migrate_core::table_names::{history_table, lock_table};
use migrate_core::time::Timestamp;
use std::sync::Arc;

/// The default name of the state table; the history table is `<name>_history`.
pub const DEFAULT_TRACKING_TABLE: &str = "migrate_schema_versions";

/// A value a statement can bind, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bind {
    Module,
    Table,
    NewVersion,
    NewChecksum,
    Expected,
    Now,
    StepVersion,
    StepName,
    StepChecksum,
    Direction,
    Outcome,
    StartedAt,
    StartedAtUtc,
    FinishedAt,
    ExecutionUs,
    Error,
    DirtySince,
    Schema,
    Column,
    ResumedSince,
}

const NAMES: [(Bind, &str); 20] = [
    (Bind::Module, "module"),
    (Bind::Table, "table"),
    (Bind::NewVersion, "new_version"),
    (Bind::NewChecksum, "new_checksum"),
    (Bind::Expected, "expected"),
    (Bind::Now, "now"),
    (Bind::StepVersion, "step_version"),
    (Bind::StepName, "name"),
    (Bind::StepChecksum, "step_checksum"),
    (Bind::Direction, "direction"),
    (Bind::Outcome, "outcome"),
    (Bind::StartedAt, "started_at"),
    (Bind::StartedAtUtc, "started_at_utc"),
    (Bind::FinishedAt, "finished_at"),
    (Bind::ExecutionUs, "execution_us"),
    (Bind::Error, "error"),
    (Bind::DirtySince, "dirty_since"),
    (Bind::Schema, "schema"),
    (Bind::Column, "column"),
    (Bind::ResumedSince, "resumed_since"),
];

/// One bound value.
#[derive(Debug, Clone)]
pub(crate) enum Param {
    Text(Option<String>),
    Int(Option<i64>),
}

/// The values of one call's statements, by [`Bind`].
#[derive(Debug, Clone)]
pub(crate) struct Values(Vec<Param>);

impl Values {
    pub(crate) fn new() -> Values {
        Values(vec![Param::Text(None); NAMES.len()])
    }

    pub(crate) fn text(mut self, name: Bind, value: Option<&str>) -> Values {
        self.0[name as usize] = Param::Text(value.map(str::to_string));
        self
    }

    pub(crate) fn int(mut self, name: Bind, value: Option<i64>) -> Values {
        self.0[name as usize] = Param::Int(value);
        self
    }

    pub(crate) fn get(&self, index: usize) -> Option<&Param> {
        self.0.get(index)
    }

    /// The text bound to `name`, if it is text and set.
    pub(crate) fn text_of(&self, name: Bind) -> Option<&str> {
        match self.0.get(name as usize) {
            Some(Param::Text(Some(text))) => Some(text),
            _ => None,
        }
    }

    /// The values of one step's tracking writes.
    pub(crate) fn step(
        r: &StepRecord<'_>,
        outcome: Outcome,
        started_at: Timestamp,
        execution_us: Option<i64>,
        error: Option<&str>,
    ) -> Values {
        Values::new()
            .text(Bind::Module, Some(r.module))
            .text(Bind::Table, Some(r.table))
            .text(Bind::NewVersion, r.new_version)
            .text(Bind::NewChecksum, r.new_checksum)
            .text(Bind::Expected, r.expected)
            .int(Bind::Now, Some(Timestamp::now().as_micros()))
            .text(Bind::StepVersion, Some(r.version))
            .text(Bind::StepName, Some(r.name))
            .text(Bind::StepChecksum, Some(r.checksum))
            .text(Bind::Direction, Some(r.direction.as_str()))
            .text(Bind::Outcome, Some(outcome.as_str()))
            .int(Bind::StartedAt, Some(started_at.as_micros()))
            .text(Bind::StartedAtUtc, Some(&started_at.to_string()))
            .int(
                Bind::FinishedAt,
                execution_us.map(|us| started_at.as_micros() + us),
            )
            .int(Bind::ExecutionUs, execution_us)
            // PostgreSQL refuses a NUL in text, and the write that records a failure or a
            // refusal (and clears a refusal's mark) must not fail for its message: a NUL is
            // kept as U+FFFD, on every database alike.
            .text(
                Bind::Error,
                error.map(|e| e.replace('\0', "\u{FFFD}")).as_deref(),
            )
            .int(Bind::DirtySince, Some(started_at.as_micros()))
            .int(Bind::ResumedSince, r.resumes.map(|since| since.as_micros()))
    }
}

/// A prepared statement: its text and, per placeholder, the index of the value it binds.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub(crate) sql: Arc<str>,
    pub(crate) params: Vec<usize>,
    /// Where each placeholder is in `sql` (byte offset and length), for writing values in.
    pub(crate) placeholders: Vec<(usize, usize)>,
    /// How many statements `sql` holds (a list's answers are counted by it: `deferred`).
    pub(crate) statements: usize,
}

/// A transactional step's tracking writes as statements prepared on the session (SQL
/// `PREPARE`, which outlives transactions), so that running one, the `COMMIT` and the next
/// step's `BEGIN` go in one simple-protocol exchange with the values written in, while the
/// server keeps its plan. Two statements: one for a table's later steps (its state row holds a
/// version) and one for its first step (the row may not exist yet). A lost compare-and-set
/// makes the history row's outcome NULL, which its `NOT NULL` refuses: the exchange stops
/// before its `COMMIT` ([`Driver::is_lost_race`](crate::driver::Driver::is_lost_race)).
#[derive(Debug, Clone)]
pub(crate) struct SessionRecord {
    /// The name of the later steps' statement, which the kept connection remembers once the
    /// session holds both.
    pub(crate) name: Arc<str>,
    /// Lists which of the two statements the session holds, one name per row.
    pub(crate) exists: String,
    /// Each statement's name and its `PREPARE name AS ...`.
    pub(crate) prepare: Vec<(String, String)>,
    /// `EXECUTE name(...); COMMIT; BEGIN` for a table's later steps, for `literal_sql`.
    pub(crate) run: Stmt,
    /// The same for a table's first step.
    pub(crate) run_first: Stmt,
}

impl SessionRecord {
    /// The statements `later` and `first` prepared under names that stand for their text
    /// (executors with other tracking tables can share a session), and their run lists.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn new<DB: Driver>(later: &str, first: &str, begin_next: &str) -> SessionRecord {
        use std::hash::{Hash, Hasher};
        let (later, first) = (compile::<DB>(later), compile::<DB>(first));
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        later.sql.hash(&mut hasher);
        first.sql.hash(&mut hasher);
        let name = format!(
            "{}{:016x}",
            migrate_core::error::SESSION_STATEMENT_PREFIX,
            hasher.finish()
        );
        let first_name = format!("{name}_first");
        let run = |name: &str, stmt: &Stmt| {
            let args: Vec<String> = stmt
                .params
                .iter()
                .map(|&i| format!("$({})", NAMES.get(i).map_or("", |(_, n)| *n)))
                .collect();
            compile::<DB>(&format!(
                "EXECUTE {name}({}); COMMIT; {begin_next}",
                args.join(", ")
            ))
        };
        SessionRecord {
            name: name.as_str().into(),
            exists: format!(
                "SELECT name FROM pg_prepared_statements WHERE name IN ('{name}', '{first_name}')"
            ),
            run: run(&name, &later),
            run_first: run(&first_name, &first),
            prepare: vec![
                (name.clone(), format!("PREPARE {name} AS {}", later.sql)),
                (
                    first_name.clone(),
                    format!("PREPARE {first_name} AS {}", first.sql),
                ),
            ],
        }
    }

    /// The run list of a step: `run` when its table's state row holds a version, else
    /// `run_first`.
    pub(crate) fn run_for(&self, has_version: bool) -> &Stmt {
        if has_version {
            &self.run
        } else {
            &self.run_first
        }
    }
}

/// Turns the `$(name)` markers of a template into `DB`'s placeholders.
pub(crate) fn compile<DB: Driver>(template: &str) -> Stmt {
    let mut sql = String::with_capacity(template.len());
    let mut params = Vec::new();
    let mut placeholders = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("$(") {
        sql.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let name = &after[..end];
        // Templates are this crate's own; a unit test proves every marker is known.
        let index = NAMES
            .iter()
            .position(|(_, n)| *n == name)
            .unwrap_or(NAMES.len());
        params.push(index);
        let placeholder = DB::placeholder(params.len());
        placeholders.push((sql.len(), placeholder.len()));
        sql.push_str(&placeholder);
        rest = after.get(end + 1..).unwrap_or("");
    }
    sql.push_str(rest);
    Stmt {
        statements: statement_count(&sql),
        sql: sql.into(),
        params,
        placeholders,
    }
}

/// How many statements `sql` (one of this crate's templates) holds: its semicolons outside
/// quotes, plus one.
fn statement_count(sql: &str) -> usize {
    let mut quote = None;
    let mut count = 1;
    for c in sql.chars() {
        match (quote, c) {
            (None, '\'' | '"' | '`') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, ';') => count += 1,
            _ => {}
        }
    }
    count
}

/// The quoted names of one tracking-table configuration, for the databases' templates.
#[derive(Debug, Clone)]
pub struct TrackingNames {
    /// The quoted schema, if any (PostgreSQL).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) schema: Option<String>,
    /// The quoted, possibly schema-qualified, state table.
    pub(crate) state: String,
    /// The quoted, possibly schema-qualified, history table.
    pub(crate) history: String,
    /// The quoted name of the history table's index (never qualified).
    #[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
    pub(crate) history_index: String,
    /// The quoted, possibly schema-qualified, lock table (PostgreSQL's lock-table mode).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) lock_table: String,
}

/// `table` quoted, and qualified with `schema` when there is one.
pub(crate) fn qualify(dialect: Dialect, schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", dialect.quote_ident(s), dialect.quote_ident(table)),
        None => dialect.quote_ident(table),
    }
}

impl TrackingNames {
    pub(crate) fn new(dialect: Dialect, schema: Option<&str>, table: &str) -> Self {
        let q = |s: &str| dialect.quote_ident(s);
        let qualify = |t: &str| qualify(dialect, schema, t);
        TrackingNames {
            schema: schema.map(q),
            state: qualify(table),
            history: qualify(&history_table(table)),
            history_index: q(&format!("{}_step", history_table(table))),
            lock_table: qualify(&lock_table(table)),
        }
    }
}

/// The names and statements of the default tracking tables of `DB`, built once per database
/// per process: every executor opened with the defaults shares them (about 13 µs of string
/// building per executor otherwise, which a service pays at start-up and a fleet per target).
pub(crate) fn default_configuration<DB: Driver>() -> (TrackingNames, Arc<Statements>) {
    use std::sync::OnceLock;
    // A static in a generic function is one static for every `DB`: the slot per dialect is
    // what keeps each database's placeholders and quoting apart (a test checks it).
    static BUILT: [OnceLock<(TrackingNames, Arc<Statements>)>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match DB::DIALECT {
        Dialect::Sqlite => &BUILT[0],
        Dialect::Postgres => &BUILT[1],
        Dialect::MySql => &BUILT[2],
    };
    slot.get_or_init(|| {
        let names = TrackingNames::new(DB::DIALECT, None, DEFAULT_TRACKING_TABLE);
        let statements = Arc::new(DB::statements(&names));
        (names, statements)
    })
    .clone()
}

/// Every statement of one tracking-table configuration.
#[derive(Debug, Clone)]
pub struct Statements {
    /// Reads every state row (one query: the whole cost of an "already up to date" run).
    pub(crate) read_state: Arc<str>,
    /// When `read_state` returns the rows packed into one text value (`packed_state::unpack`;
    /// SQLite hands each result row from its thread to the caller's separately): the read of
    /// the rows one by one, for a packed value that does not unpack.
    pub(crate) read_state_unpacked: Option<Arc<str>>,
    /// MySQL's fingerprinted state read (`fingerprint`): a repeated check reads the table's
    /// fingerprint, and the rows only when it moved.
    pub(crate) state_fingerprint: Option<crate::fingerprint::StateFingerprint>,
    /// Creates the tracking tables' schema when [`schema_exists`](Self::schema_exists) finds
    /// none (PostgreSQL): `CREATE SCHEMA IF NOT EXISTS` needs the database's CREATE right even
    /// when the schema exists, which a tenant's role often lacks.
    pub(crate) create_schema: Option<String>,
    /// One row if the schema exists (binds `schema`).
    pub(crate) schema_exists: Option<Stmt>,
    /// Creates the tracking tables if missing, in order.
    pub(crate) create: Vec<String>,
    /// Brings tracking tables made by an earlier version up to date; a statement that fails
    /// because its change is already in place is skipped ([`Driver::is_already_done`]).
    pub(crate) upgrade: Vec<String>,
    /// A transactional step's tracking writes: move the state row (compare-and-set) and insert
    /// the history row. The statement at `record_cas` affects one row, or none on a race.
    pub(crate) record: Vec<Stmt>,
    /// `record` for a table whose state row holds a version: a plain compare-and-set `UPDATE`
    /// instead of the upsert, with the compare-and-set at the same index.
    pub(crate) record_existing: Option<Vec<Stmt>>,
    pub(crate) record_cas: usize,
    /// `record_existing` and `record` prepared once on the session, each run with its
    /// `COMMIT` and the next step's `BEGIN` in one exchange (PostgreSQL; see
    /// [`SessionRecord`]).
    pub(crate) record_session: Option<SessionRecord>,
    /// A transactional step's tracking writes, its `COMMIT` and the next step's `BEGIN`, in one
    /// statement list sent in one exchange, alone or in front of the next step's first
    /// statement (`sqlx_db::deferred`; SQLite: one hand-off to its thread instead of four). The
    /// step runs in a transaction begun with `Driver::BEGIN` through sqlx's transaction manager
    /// (by the previous step's list, or on its own; the list's `COMMIT; BEGIN` keeps sqlx's
    /// count right); a lost compare-and-set fails the list before its `COMMIT`
    /// ([`Driver::is_lost_race`]). When the list fails, a rollback that works tells that the
    /// transaction was still open (nothing was kept); when none is left, the state row tells
    /// whether the `COMMIT` ran.
    pub(crate) record_and_commit: Option<Stmt>,
    /// `record_and_commit` for a table whose state row holds a version: a plain compare-and-set
    /// `UPDATE` instead of the upsert, less SQL to parse again after every DDL.
    pub(crate) record_and_commit_existing: Option<Stmt>,
    /// A journalled step's start: the dirty mark (same compare-and-set) and a "started" row.
    pub(crate) start: Vec<Stmt>,
    /// Takes away the mark of a `resumable` step cut off, before its start sets a new one in
    /// the same transaction (`StepRecord::resumes`); affects one row, or none when another
    /// runner came first.
    pub(crate) clear_resumed: Stmt,
    pub(crate) start_cas: usize,
    /// `start` as statements sent at once with their values written in, ending with a SELECT
    /// of 1 when the compare-and-set moved the row (MySQL). The executor
    /// wraps it in one transaction together with the previous step's `journal_finish`, so a
    /// journalled step costs one commit of tracking writes, not two.
    pub(crate) journal_start: Option<Stmt>,
    /// `journal_start` for a table whose state row exists (a version is expected): without
    /// the statement that makes sure of the row.
    pub(crate) journal_start_existing: Option<Stmt>,
    /// `finish` likewise; left pending after a step succeeds, and committed with the next
    /// step's start, or before anything else reads or writes the tracking tables, or at the
    /// end of the run.
    pub(crate) journal_finish: Option<Stmt>,
    /// A journalled step's end: the state row moved, the dirty mark cleared, the row finished.
    pub(crate) finish: Vec<Stmt>,
    /// A journalled step that refused (`Error::blocked`): its dirty mark cleared, the
    /// version left as it was, the history row finished as blocked.
    pub(crate) refuse: Vec<Stmt>,
    /// One history row (a failed transactional step).
    pub(crate) history: Stmt,
    /// Finishes a journalled step's history row only (it failed: the mark stays).
    pub(crate) history_finish: Stmt,
    /// Overwrites a state row, clearing its dirty mark.
    pub(crate) state_set: Vec<Stmt>,
    /// Rewrites the checksum of a step's successful ups.
    pub(crate) set_step_checksum: Stmt,
    /// The history's columns, read newest first; a filter on modules and a limit follow.
    pub(crate) history_select: String,
    /// One row if the table exists (binds `schema`, `table`).
    pub(crate) table_exists: Stmt,
    /// One row if the column exists (binds `schema`, `table`, `column`).
    pub(crate) column_exists: Stmt,
    /// Whether sqlx may keep prepared statements on the connection (named and cached): not
    /// behind a transaction-pooling proxy, whose server connections change between
    /// transactions.
    pub(crate) persistent: bool,
}

/// How every tracking table's creation begins in [`Statements::create`].
const CREATE_TABLE_IF_MISSING: &str = "CREATE TABLE IF NOT EXISTS ";

impl Statements {
    /// [`create`](Self::create) for tables known to be missing: each table's `CREATE TABLE IF
    /// NOT EXISTS` made a plain `CREATE TABLE`, which fails on a table that exists instead of
    /// passing over it unchecked.
    pub(crate) fn create_new(&self) -> impl Iterator<Item = String> + '_ {
        self.create.iter().map(
            |statement| match statement.strip_prefix(CREATE_TABLE_IF_MISSING) {
                Some(rest) => format!("CREATE TABLE {rest}"),
                None => statement.clone(),
            },
        )
    }

    /// A transactional step's tracking writes as prepared statements: `record_existing`, where
    /// the database has it, for a table whose state row holds a version; else `record`.
    pub(crate) fn record_for(&self, has_version: bool) -> &[Stmt] {
        match (&self.record_existing, has_version) {
            (Some(existing), true) => existing,
            _ => &self.record,
        }
    }

    /// `record_and_commit`, or `record_and_commit_existing` for a table whose state row holds
    /// a version; `None` where the database sends its tracking writes otherwise.
    pub(crate) fn record_and_commit_for(&self, has_version: bool) -> Option<&Stmt> {
        let existing = self.record_and_commit_existing.as_ref();
        existing
            .filter(|_| has_version)
            .or(self.record_and_commit.as_ref())
    }
}

#[cfg(test)]
pub(crate) fn assert_templates_known(stmts: &Statements) {
    let existing = stmts.record_existing.iter().flatten();
    let session = stmts
        .record_session
        .iter()
        .flat_map(|s| [&s.run, &s.run_first]);
    let all = stmts
        .record
        .iter()
        .chain(existing)
        .chain(session)
        .chain(&stmts.start)
        .chain(&stmts.finish)
        .chain(&stmts.refuse)
        .chain(&stmts.state_set)
        .chain([
            &stmts.clear_resumed,
            &stmts.history,
            &stmts.history_finish,
            &stmts.set_step_checksum,
            &stmts.table_exists,
            &stmts.column_exists,
        ]);
    for stmt in all {
        assert!(
            stmt.params.iter().all(|&i| i < NAMES.len()) && !stmt.sql.contains("$("),
            "{stmt:?}"
        );
    }
    assert!(stmts.record_cas < stmts.record.len());
    if let Some(existing) = &stmts.record_existing {
        assert!(stmts.record_cas < existing.len());
    }
    assert!(stmts.start_cas < stmts.start.len());
}

#[cfg(test)]
#[path = "statements_tests.rs"]
mod tests;
