//! The planner and the engine over an in-memory backend: targets, table filters, force,
//! baselines, `after` edges, dirty marks and races, with no database in the way. What each
//! step did is read from the backend's log of executed SQL, not from the tracking rows alone.

use migrate_core::backend::{
    MigrationBackend, NoLock, RunLock, StateRow, StepOutcome, StepRecord, StepRun,
};
use migrate_core::conn::{Conn, RawConn, Row};
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::future::BoxFuture;
use migrate_core::manager::{MigrationManager, Resolution};
use migrate_core::migration::{Migration, MigrationFuture, MigrationSet, Reversal};
use migrate_core::report::ReportStatus;
use migrate_core::status::HistoryEntry;
use migrate_core::step::{Direction, DirtyMark, Outcome};
use migrate_core::time::Timestamp;
use std::any::Any;
use std::future::Future as _;
use std::sync::{Arc, Mutex};

/// What the in-memory database holds.
#[derive(Default)]
struct Store {
    rows: Vec<StateRow>,
    /// Every statement the migrations ran, in order, as `<statement> <table>@<version>`.
    log: Vec<String>,
    /// The step running now, as `<table>@<version>`, for the log.
    running: String,
    /// When set, the next step finds its row moved by "another runner" to this version.
    race_to: Option<String>,
}

#[derive(Clone, Default)]
struct Memory(Arc<Mutex<Store>>);

impl Memory {
    fn log(&self) -> Vec<String> {
        self.0.lock().unwrap().log.clone()
    }
    fn version(&self, table: &str) -> Option<String> {
        let store = self.0.lock().unwrap();
        store
            .rows
            .iter()
            .find(|r| r.table == table)
            .and_then(|r| r.version.clone())
    }
    fn set_dirty(&self, table: &str, version: &str) {
        let mut store = self.0.lock().unwrap();
        let row = row_mut(&mut store.rows, "app", table);
        row.dirty = Some(DirtyMark::new(
            version.into(),
            "m".into(),
            Direction::Up,
            Timestamp::now(),
        ));
    }
}

fn row_mut<'a>(rows: &'a mut Vec<StateRow>, module: &str, table: &str) -> &'a mut StateRow {
    if let Some(i) = rows
        .iter()
        .position(|r| r.module == module && r.table == table)
    {
        return &mut rows[i];
    }
    rows.push(StateRow {
        module: module.into(),
        table: table.into(),
        version: None,
        checksum: None,
        dirty: None,
    });
    rows.last_mut().unwrap()
}

/// The connection a step's function receives: it appends each statement to the log.
struct Recorder(Arc<Mutex<Store>>);

impl RawConn for Recorder {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    fn execute<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            if sql.contains("FAIL") {
                return Err(Error::msg(format!("told to fail: {sql}")));
            }
            let mut store = self.0.lock().unwrap();
            // `RACE v`: "another runner" moves the next step's row to `v` before it runs.
            if let Some(version) = sql.strip_prefix("RACE ") {
                store.race_to = Some(version.to_string());
                return Ok(0);
            }
            let line = format!("{sql} {}", store.running);
            store.log.push(line);
            Ok(0)
        })
    }
    fn query<'a>(&'a mut self, _: &'a str) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn table_exists<'a>(
        &'a mut self,
        _: Option<&'a str>,
        _: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Ok(false) })
    }
    fn column_exists<'a>(
        &'a mut self,
        _: Option<&'a str>,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async { Ok(false) })
    }
    fn driver(&mut self) -> &mut dyn Any {
        self
    }
}

impl MigrationBackend for Memory {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }
    fn read_state(&self) -> BoxFuture<'_, Result<std::sync::Arc<[StateRow]>>> {
        let rows = self.0.lock().unwrap().rows.clone();
        Box::pin(async move { Ok(rows.into()) })
    }
    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    fn lock(&self, _wait: Option<std::time::Duration>) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        Box::pin(async { Ok(Box::new(NoLock) as Box<dyn RunLock>) })
    }
    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>> {
        Box::pin(async move {
            let r = &step.record;
            {
                let mut store = self.0.lock().unwrap();
                if let Some(moved) = store.race_to.take() {
                    row_mut(&mut store.rows, r.module, r.table).version = Some(moved);
                }
                let row = row_mut(&mut store.rows, r.module, r.table);
                if row.version.as_deref() != r.expected {
                    return Ok(StepOutcome::Raced);
                }
                store.running = format!("{}@{}", r.table, r.version);
            }
            let mut raw = Recorder(self.0.clone());
            let mut conn = Conn::new(&mut raw, None);
            (step.action)(&mut conn).await?;
            let mut store = self.0.lock().unwrap();
            let row = row_mut(&mut store.rows, r.module, r.table);
            row.version = r.new_version.map(str::to_string);
            row.checksum = r.new_checksum.map(str::to_string);
            Ok(StepOutcome::Done {
                started_at: Timestamp::now(),
                execution_time: std::time::Duration::ZERO,
            })
        })
    }
    fn history<'a>(
        &'a self,
        _: &'a [&'a str],
        _: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn set_state<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: Option<&'a str>,
        checksum: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>> {
        let mut store = self.0.lock().unwrap();
        let row = row_mut(&mut store.rows, module, table);
        row.version = version.map(str::to_string);
        row.checksum = checksum.map(str::to_string);
        row.dirty = None;
        Box::pin(async { Ok(()) })
    }
    fn record_without_running<'a>(
        &'a self,
        r: &'a StepRecord<'a>,
        outcome: Outcome,
    ) -> BoxFuture<'a, Result<bool>> {
        let mut store = self.0.lock().unwrap();
        store
            .log
            .push(format!("{outcome} {}@{}", r.table, r.version));
        let row = row_mut(&mut store.rows, r.module, r.table);
        let moved = row.version.as_deref() == r.expected;
        if moved {
            row.version = r.new_version.map(str::to_string);
            row.checksum = r.new_checksum.map(str::to_string);
        }
        Box::pin(async move { Ok(moved) })
    }
    fn set_step_checksum<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

static SET: MigrationSet = MigrationSet::__new("app", "planner_test", &[]);

/// Each step runs the statement `up`, its down `down`, and a failing step `FAIL`; the log
/// records each with the step that ran it (`up a@1.0.0`).
fn up<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move { db.execute("up").await.map(|_| ()) })
}
fn down<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move { db.execute("down").await.map(|_| ()) })
}
/// A down after which "another runner" moves the next step's table to 2.0.0.
fn down_then_race<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        db.execute("down").await?;
        db.execute("RACE 2.0.0").await.map(|_| ())
    })
}
fn fail<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move { db.execute("FAIL").await.map(|_| ()) })
}

fn m(table: &'static str, version: &'static str, parent: Option<&'static str>) -> Spec {
    Spec {
        table,
        version,
        parent,
        after: None,
        irreversible: false,
        failing: false,
        races: false,
    }
}

struct Spec {
    table: &'static str,
    version: &'static str,
    parent: Option<&'static str>,
    after: Option<&'static str>,
    irreversible: bool,
    failing: bool,
    races: bool,
}

impl Spec {
    fn after(mut self, after: &'static str) -> Self {
        self.after = Some(after);
        self
    }
    fn irreversible(mut self) -> Self {
        self.irreversible = true;
        self
    }
    fn failing(mut self) -> Self {
        self.failing = true;
        self
    }
    fn down_races(mut self) -> Self {
        self.races = true;
        self
    }
    fn build(self) -> &'static Migration {
        let name: &'static str =
            Box::leak(format!("{}@{}", self.table, self.version).into_boxed_str());
        Box::leak(Box::new(Migration::__new(
            &SET,
            self.table,
            self.version,
            self.parent,
            name,
            if self.failing { fail } else { up },
            if self.irreversible {
                Reversal::Irreversible
            } else if self.races {
                Reversal::Down(down_then_race)
            } else {
                Reversal::Down(down)
            },
            true,
            self.after,
            "test:0",
            "planner.rs",
            1,
        )))
    }
}

/// Two tables: a (1.0.0 → 2.0.0 → 3.0.0) and b (1.0.0 → 2.0.0, whose 2.0.0 runs after a@3.0.0).
#[test]
fn a_release_target_moves_each_table_to_its_newest_version_at_or_below_it() {
    use migrate_core::report::{ReportStatus, SkipReason};
    let specs = vec![
        m("a", "1.0.0", None),
        m("a", "2.0.0", Some("1.0.0")),
        m("a", "3.0.0", Some("2.0.0")),
        m("b", "1.0.0", None),
        m("b", "1.5.0", Some("1.0.0")),
        m("b", "2.5.0", Some("1.5.0")),
        m("c", "3.0.0", None),
    ];
    let (manager, memory) = manager(specs);
    block_on(manager.up().table("a")).unwrap();

    // Release 2.0.0: `a` (at 3.0.0) is above it and stays; `b` goes to 1.5.0, its newest
    // version at or below 2.0.0; `c` starts at 3.0.0, so it gets nothing.
    let report = block_on(manager.up().target("v2.0.0")).unwrap();
    assert_eq!(ran(&report), ["up b@1.0.0", "up b@1.5.0"]);
    assert_eq!(memory.version("a").as_deref(), Some("3.0.0"));
    assert_eq!(memory.version("b").as_deref(), Some("1.5.0"));
    assert_eq!(memory.version("c"), None);
    let above: Vec<_> = report
        .skipped
        .iter()
        .filter(|s| s.reason != SkipReason::AlreadyThere)
        .collect();
    assert_eq!(above.len(), 1, "{report:?}");
    assert_eq!((above[0].table.as_str(), above[0].steps), ("a", 1));
    let SkipReason::AboveTarget { current, target } = &above[0].reason else {
        panic!("{above:?}");
    };
    assert_eq!(
        (current.to_string(), target.to_string()),
        ("3.0.0".into(), "2.0.0".into())
    );
    assert_eq!(
        above[0].reason.to_string(),
        "at 3.0.0, above the target 2.0.0: left as it is"
    );

    // Again: nothing to do, and `a` is still reported as left above the target.
    let again = block_on(manager.up().target("2.0.0")).unwrap();
    assert_eq!(again.status, ReportStatus::UpToDate);
    assert!(again
        .skipped
        .iter()
        .any(|s| s.table == "a" && s.reason != SkipReason::AlreadyThere));

    // Named, a table above the target is an error, and nothing runs.
    let err = block_on(manager.up().table("a").table("b").target("2.0.0")).unwrap_err();
    assert!(
        matches!(err, Error::TargetBelowCurrent { ref table, .. } if table == "a"),
        "{err}"
    );
    // A target no table declares is still a typo, not a release.
    let err = block_on(manager.up().target("2.1.0")).unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { .. }), "{err}");
}

fn graph() -> Vec<Spec> {
    vec![
        m("a", "1.0.0", None),
        m("a", "2.0.0", Some("1.0.0")),
        m("a", "3.0.0", Some("2.0.0")),
        m("b", "1.0.0", None),
        m("b", "2.0.0", Some("1.0.0")).after("a@3.0.0"),
    ]
}

fn manager(specs: Vec<Spec>) -> (MigrationManager, Memory) {
    let memory = Memory::default();
    let manager =
        MigrationManager::from_migrations(memory.clone(), specs.into_iter().map(Spec::build))
            .expect("valid graph");
    (manager, memory)
}

fn ran(report: &migrate_core::report::Report) -> Vec<String> {
    report
        .applied
        .iter()
        .map(|a| format!("{} {}@{}", a.direction, a.step.table, a.step.version))
        .collect()
}

fn block_on<F: std::future::IntoFuture>(f: F) -> F::Output {
    // The engine's futures complete without a reactor here: poll them on this thread.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f.into_future());
    loop {
        if let std::task::Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

#[test]
fn up_runs_every_step_in_graph_order_once() {
    let (manager, memory) = manager(graph());
    let report = block_on(manager.up()).unwrap();
    assert_eq!(report.status, ReportStatus::Success);
    assert_eq!(
        ran(&report),
        [
            "up a@1.0.0",
            "up b@1.0.0",
            "up a@2.0.0",
            "up a@3.0.0",
            "up b@2.0.0"
        ]
    );
    assert_eq!(
        memory.log(),
        ran(&report),
        "each step's SQL ran once, in order"
    );
    let again = block_on(manager.up()).unwrap();
    assert_eq!(again.status, ReportStatus::UpToDate);
    assert_eq!(memory.log().len(), 5);
}

#[test]
fn targets_and_table_filters_narrow_the_plan() {
    let (manager, memory) = manager(graph());
    let report = block_on(manager.up().table("a").target("2.0.0")).unwrap();
    assert_eq!(ran(&report), ["up a@1.0.0", "up a@2.0.0"]);
    assert_eq!(memory.version("a").as_deref(), Some("2.0.0"));
    assert_eq!(memory.version("b"), None);
    let report = block_on(manager.up().table("b").target("v1.0.0")).unwrap();
    assert_eq!(
        ran(&report),
        ["up b@1.0.0"],
        "a leading v is accepted: {report:?}"
    );
    // A release target over every table leaves `a`, above it, where it is (see
    // `a_release_target_moves_each_table_to_its_newest_version_at_or_below_it`); naming `a`
    // makes that an error.
    let err = block_on(manager.up().table("a").target("1.0.0")).unwrap_err();
    assert!(matches!(err, Error::TargetBelowCurrent { .. }), "{err}");
    let err = block_on(manager.up().target("9.9.9")).unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { .. }), "{err}");
    let err = block_on(manager.up().table("nope")).unwrap_err();
    assert!(
        matches!(err, Error::UnknownTable { ref known, .. } if known.len() == 2),
        "{err}"
    );
}

#[test]
fn down_needs_a_target_and_reverts_newest_first() {
    let (manager, memory) = manager(graph());
    block_on(manager.up()).unwrap();
    let err = block_on(manager.down()).unwrap_err();
    assert!(matches!(err, Error::MissingDownTarget), "{err}");
    let report = block_on(manager.down().target("1.0.0")).unwrap();
    assert_eq!(
        ran(&report),
        ["down b@2.0.0", "down a@3.0.0", "down a@2.0.0"]
    );
    let report = block_on(manager.down().to_base()).unwrap();
    assert_eq!(ran(&report), ["down b@1.0.0", "down a@1.0.0"]);
    assert_eq!(memory.version("a"), None);
}

#[test]
fn after_edges_hold_in_both_directions() {
    let (manager, _) = manager(graph());
    let err = block_on(manager.up().table("b")).unwrap_err();
    assert!(
        matches!(&err, Error::DependencyNotApplied { step, dependency }
            if step.table == "b" && dependency.table == "a" && dependency.version.major == 3),
        "{err}"
    );
    block_on(manager.up()).unwrap();
    let err = block_on(manager.down().table("a").target("2.0.0")).unwrap_err();
    assert!(
        matches!(&err, Error::DependentStillApplied { dependent, .. } if dependent.table == "b"),
        "{err}"
    );
}

#[test]
fn a_baseline_counts_as_applied_and_force_reruns_above_it() {
    let (manager, memory) = manager(graph());
    let manager = manager.with_baseline("2.0.0").unwrap();
    let report = block_on(manager.up().table("a")).unwrap();
    assert_eq!(
        ran(&report),
        ["up a@3.0.0"],
        "1.0.0 and 2.0.0 are the baseline"
    );
    let report = block_on(manager.up().table("a").force(true)).unwrap();
    assert_eq!(
        ran(&report),
        ["up a@3.0.0"],
        "force re-runs what is above the baseline"
    );
    assert_eq!(memory.log(), ["up a@3.0.0", "up a@3.0.0"]);
}

#[test]
fn a_dirty_mark_blocks_its_table_until_resolved() {
    let (manager, memory) = manager(graph());
    block_on(manager.up().table("a").target("1.0.0")).unwrap();
    memory.set_dirty("a", "2.0.0");
    let err = block_on(manager.up().table("a")).unwrap_err();
    assert!(
        matches!(&err, Error::Dirty { table, version, .. } if table == "a" && version == "2.0.0"),
        "{err}"
    );
    // Other tables are not blocked.
    block_on(manager.up().table("b").target("1.0.0")).unwrap();
    block_on(manager.resolve_dirty("a", Resolution::Completed)).unwrap();
    assert_eq!(memory.version("a").as_deref(), Some("2.0.0"));
    let report = block_on(manager.up().table("a")).unwrap();
    assert_eq!(ran(&report), ["up a@3.0.0"]);
}

#[test]
fn a_dry_run_plans_without_running() {
    let (manager, memory) = manager(graph());
    let report = block_on(manager.up().dry_run(true)).unwrap();
    assert_eq!(report.status, ReportStatus::DryRun);
    assert_eq!(report.planned.len(), 5);
    assert!(memory.log().is_empty());
    assert_eq!(memory.version("a"), None);
}

#[test]
fn a_failed_step_stops_the_run_and_names_itself() {
    let specs = vec![
        m("a", "1.0.0", None),
        m("a", "2.0.0", Some("1.0.0")).failing(),
        m("a", "3.0.0", Some("2.0.0")),
    ];
    let (manager, memory) = manager(specs);
    let err = block_on(manager.up()).unwrap_err();
    let Error::StepFailed { step, applied, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(step.version.to_string(), "2.0.0");
    assert_eq!(applied.len(), 1);
    assert_eq!(
        memory.version("a").as_deref(),
        Some("1.0.0"),
        "nothing after it ran"
    );
    let cause = std::error::Error::source(&err)
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(cause.contains("told to fail"), "{cause}");
}

#[test]
fn an_irreversible_step_refuses_down() {
    let specs = vec![
        m("a", "1.0.0", None),
        m("a", "2.0.0", Some("1.0.0")).irreversible(),
    ];
    let (manager, _) = manager(specs);
    block_on(manager.up()).unwrap();
    let err = block_on(manager.down().target("1.0.0")).unwrap_err();
    assert!(
        matches!(&err, Error::Irreversible { step } if step.version.major == 2),
        "{err}"
    );
}

#[test]
fn a_race_replans_from_what_the_other_runner_did() {
    let (manager, memory) = manager(graph());
    // Another runner applies a@1.0.0 and a@2.0.0 just before this one's first step.
    memory.0.lock().unwrap().race_to = Some("2.0.0".into());
    let report = block_on(manager.up().table("a")).unwrap();
    assert_eq!(
        ran(&report),
        ["up a@3.0.0"],
        "only what was left: {report:?}"
    );
}

/// `down().steps(1)` over two tables; after the first down another runner reverts the other
/// table's head, so this run plans again: it counts from where the tables stood when it first
/// planned, not from where its own down left them (which reverted each table twice).
#[test]
fn steps_back_are_counted_once_when_a_race_makes_the_run_plan_again() {
    let specs = vec![
        m("a", "1.0.0", None),
        m("a", "2.0.0", Some("1.0.0")),
        m("a", "3.0.0", Some("2.0.0")),
        m("b", "1.0.0", None),
        m("b", "2.0.0", Some("1.0.0")),
        m("b", "3.0.0", Some("2.0.0")).down_races(),
    ];
    let (manager, memory) = manager(specs);
    block_on(manager.up()).unwrap();
    // The downs run newest rank first: b@3.0.0, then a@3.0.0, whose row another runner has
    // moved to 2.0.0 by then.
    let report = block_on(manager.down().steps(1)).unwrap();
    assert_eq!(ran(&report), ["down b@3.0.0"], "{report:?}");
    assert_eq!(memory.version("a").as_deref(), Some("2.0.0"));
    assert_eq!(memory.version("b").as_deref(), Some("2.0.0"));
}

#[test]
fn a_version_the_graph_does_not_know_is_the_database_ahead() {
    let (manager, memory) = manager(graph());
    row_mut(&mut memory.0.lock().unwrap().rows, "app", "a").version = Some("7.0.0".into());
    let err = block_on(manager.up()).unwrap_err();
    assert!(
        matches!(&err, Error::UnknownAppliedVersion { version, .. } if version == "7.0.0"),
        "{err}"
    );
}

#[test]
fn stamp_and_unstamp_move_the_record_without_running() {
    let (manager, memory) = manager(graph());
    block_on(manager.stamp("a", "2.0.0")).unwrap();
    assert_eq!(memory.version("a").as_deref(), Some("2.0.0"));
    assert_eq!(memory.log(), ["stamped a@2.0.0"], "nothing ran");
    let report = block_on(manager.up().table("a")).unwrap();
    assert_eq!(ran(&report), ["up a@3.0.0"]);
    block_on(manager.unstamp("a")).unwrap();
    assert_eq!(memory.version("a").as_deref(), Some("2.0.0"));
    assert_eq!(
        memory.log().last().map(String::as_str),
        Some("unstamped a@3.0.0")
    );
    let err = block_on(manager.stamp("a", "9.0.0")).unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { .. }), "{err}");
    let err = block_on(manager.unstamp("b")).unwrap_err();
    assert!(err.to_string().contains("no recorded version"), "{err}");
}
