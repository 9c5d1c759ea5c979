//! The project. The headline apply runs the generated `#[migration]` functions (real
//! Rust-function migrations, registered through `inventory`). Workloads of other sizes use a set
//! built at run time (`MigrationManager::from_migrations`) whose one function runs the SQL of
//! the step being run; that changes nothing on the no-op path, which never calls a migration.

use crate::target::Target;
use crate::workload::Step;
use migrate::backend::{
    BoxFuture, MigrationBackend, MigrationFuture, RunLock, StateRow, StepAfterPending, StepOutcome,
    StepRecord, StepRun,
};
use migrate::registry::{Migration, MigrationSet, Reversal};
use migrate::report::HistoryEntry;
use migrate::testing::Backend;
use migrate::{Conn, Dialect, MigrationManager, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// `--from-pool`: the executor runs on a sqlx pool the harness built and passed in
/// (`from_pool`), as a service that has its own pool would, instead of `migrate::connect`. The
/// SQLite pool gets every contender's settings (WAL, synchronous = NORMAL).
pub static FROM_POOL: AtomicBool = AtomicBool::new(false);

async fn from_pool(target: &Target) -> Box<dyn MigrationBackend> {
    let url = &target.url;
    match target.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect_with(crate::sqlite_options(url)).await;
            Box::new(migrate::sqlite::SqliteDb::from_pool(pool.expect("pool")))
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.expect("pool");
            Box::new(migrate::postgres::PgDb::from_pool(pool))
        }
        Backend::MySql => {
            let pool = sqlx::MySqlPool::connect(url).await.expect("pool");
            Box::new(migrate::mysql::MySqlDb::from_pool(pool))
        }
    }
}

pub struct Ours {
    manager: MigrationManager,
}

/// The module of the run-time set (the generated one is `migrate_bench`).
static DYNAMIC_SET: MigrationSet = MigrationSet::__new("bench_dynamic", "migrate_bench", &[]);

/// The SQL of the step the executor is about to run (the bench is single-threaded).
static CURRENT_SQL: Mutex<Option<Arc<str>>> = Mutex::new(None);

fn run_current<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let sql = CURRENT_SQL.lock().expect("sql slot").clone();
        if let Some(sql) = sql {
            db.execute(&sql).await?;
        }
        Ok(())
    })
}

/// The run-time migrations of the first `n` steps, built once per `n`.
pub fn dynamic(n: usize) -> Vec<&'static Migration> {
    static CACHE: OnceLock<Mutex<HashMap<usize, Vec<&'static Migration>>>> = OnceLock::new();
    let mut cache = CACHE.get_or_init(Default::default).lock().expect("cache");
    cache
        .entry(n)
        .or_insert_with(|| {
            let mut last: HashMap<&str, &'static str> = HashMap::new();
            crate::workload::workload(n)
                .into_iter()
                .map(|step| {
                    let version: &'static str = Box::leak(step.version().into_boxed_str());
                    let parent = last.insert(step.table, version);
                    &*Box::leak(Box::new(Migration::__new(
                        &DYNAMIC_SET,
                        step.table,
                        version,
                        parent,
                        "step",
                        run_current,
                        Reversal::Irreversible,
                        true,
                        None,
                        "fnv1a64:0000000000000000",
                        "bench",
                        0,
                    )))
                })
                .collect()
        })
        .clone()
}

/// Median time to build and validate the graph of `n` run-time migrations.
pub fn planning_time(n: usize, samples: usize) -> Duration {
    let migrations = dynamic(n);
    let mut times: Vec<Duration> = (0..samples)
        .map(|_| {
            let clock = Instant::now();
            let graph = migrate::__private::Graph::from_migrations(migrations.iter().copied())
                .expect("graph");
            let elapsed = clock.elapsed();
            assert_eq!(graph.len(), n);
            elapsed
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Sets the SQL of each step before the real executor runs it.
struct Feeding {
    inner: Box<dyn MigrationBackend>,
    sql: HashMap<String, Arc<str>>,
}

impl MigrationBackend for Feeding {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
    fn read_state(&self) -> BoxFuture<'_, Result<Arc<[StateRow]>>> {
        self.inner.read_state()
    }
    fn prepare(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.prepare()
    }
    fn lock(&self, wait: Option<std::time::Duration>) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        self.inner.lock(wait)
    }
    fn run_step<'a>(&'a self, step: &'a StepRun<'a>) -> BoxFuture<'a, Result<StepOutcome>> {
        *CURRENT_SQL.lock().expect("sql slot") = self.sql.get(step.record.version).cloned();
        self.inner.run_step(step)
    }
    fn history<'a>(
        &'a self,
        modules: &'a [&'a str],
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<Vec<HistoryEntry>>> {
        self.inner.history(modules, limit)
    }
    fn set_state<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: Option<&'a str>,
        checksum: Option<&'a str>,
    ) -> BoxFuture<'a, Result<()>> {
        self.inner.set_state(module, table, version, checksum)
    }
    fn schema(&self) -> Option<&str> {
        self.inner.schema()
    }
    fn record_without_running<'a>(
        &'a self,
        record: &'a StepRecord<'a>,
        outcome: migrate::report::Outcome,
    ) -> BoxFuture<'a, migrate::Result<bool>> {
        self.inner.record_without_running(record, outcome)
    }
    fn set_step_checksum<'a>(
        &'a self,
        module: &'a str,
        table: &'a str,
        version: &'a str,
        checksum: &'a str,
    ) -> BoxFuture<'a, Result<()>> {
        self.inner
            .set_step_checksum(module, table, version, checksum)
    }
    fn run_step_commit_with_next<'a>(
        &'a self,
        step: &'a StepRun<'a>,
    ) -> BoxFuture<'a, Result<StepAfterPending>> {
        *CURRENT_SQL.lock().expect("sql slot") = self.sql.get(step.record.version).cloned();
        self.inner.run_step_commit_with_next(step)
    }
    fn commit_pending(&self) -> BoxFuture<'_, Result<bool>> {
        self.inner.commit_pending()
    }
    fn end_run(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.end_run()
    }
}

impl Ours {
    pub async fn open(target: &Target, steps: Arc<Vec<Step>>, headline: bool) -> Ours {
        let executor = if FROM_POOL.load(Ordering::Relaxed) {
            from_pool(target).await
        } else {
            migrate::connect(&target.url).await.expect("connect")
        };
        let manager = if headline {
            assert_eq!(
                steps.len(),
                crate::APPLY_N,
                "the generated functions cover APPLY_N steps"
            );
            MigrationManager::new(executor, [&crate::MIGRATIONS]).expect("graph")
        } else {
            let sql = steps
                .iter()
                .map(|s| (s.version(), Arc::from(s.sql.as_str())))
                .collect();
            let feeding = Feeding {
                inner: executor,
                sql,
            };
            MigrationManager::from_migrations(feeding, dynamic(steps.len())).expect("graph")
        };
        Ours { manager }
    }

    pub async fn run(&mut self) {
        self.manager.up().await.expect("migrate up");
    }
}
