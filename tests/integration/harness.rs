//! The integration suite's view of a test database: a fresh database per test on one backend
//! (a SQLite file, or a database on a throwaway PostgreSQL or MariaDB server), and ways to look
//! at it from outside the framework.

use migrate::testing::{Backend, TestDatabase};
use migrate::MigrationManager;
use sqlx::{AssertSqlSafe, Row};
use std::time::Duration;

/// Runs each test body once per backend: `mod name { fn sqlite(), fn postgres(), fn mysql() }`.
/// A backend whose server is missing is reported as skipped (an error under
/// `MIGRATE_TEST_REQUIRE_ALL=1`).
macro_rules! each_backend {
    ($( $(#[$meta:meta])* async fn $name:ident($db:ident) $body:block )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body($db: $crate::harness::TestDb) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                if let Some(db) = $crate::harness::TestDb::new(migrate::testing::Backend::Sqlite).await {
                    body(db).await
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(db) = $crate::harness::TestDb::new(migrate::testing::Backend::Postgres).await {
                    body(db).await
                }
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                if let Some(db) = $crate::harness::TestDb::new(migrate::testing::Backend::MySql).await {
                    body(db).await
                }
            }
        }
    )*};
}
pub(crate) use each_backend;

/// A pool on the test database, for looking at it from outside the framework.
enum Pool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
}

/// One test's database.
pub struct TestDb {
    pub database: TestDatabase,
    pool: Pool,
}

fn cell<R: Row>(row: &R, i: usize) -> String
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let null = || "NULL".to_string();
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return v.unwrap_or_else(null);
    }
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return v.map_or_else(null, |v| v.to_string());
    }
    if let Ok(v) = row.try_get::<Option<i32>, _>(i) {
        return v.map_or_else(null, |v| v.to_string());
    }
    match row.try_get::<Option<Vec<u8>>, _>(i) {
        Ok(v) => v.map_or_else(null, |v| String::from_utf8_lossy(&v).into_owned()),
        Err(e) => panic!("column {i}: {e}"),
    }
}

fn render<R: Row>(rows: Vec<R>) -> Vec<String>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i32>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|row| {
            (0..row.len())
                .map(|i| cell(row, i))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

impl TestDb {
    /// A fresh database on `backend`, or `None` when its server is missing (reported).
    pub async fn new(backend: Backend) -> Option<TestDb> {
        install_log_capture();
        let database = TestDatabase::create(backend)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", backend.name()))?;
        let url = database.url().to_string();
        let pool = match backend {
            Backend::Sqlite => {
                Pool::Sqlite(sqlx::SqlitePool::connect(&url).await.expect("sqlite pool"))
            }
            Backend::Postgres => {
                Pool::Postgres(sqlx::PgPool::connect(&url).await.expect("postgres pool"))
            }
            Backend::MySql => {
                Pool::MySql(sqlx::MySqlPool::connect(&url).await.expect("mysql pool"))
            }
        };
        Some(TestDb { database, pool })
    }

    pub fn backend(&self) -> Backend {
        self.database.backend()
    }

    pub fn url(&self) -> &str {
        self.database.url()
    }

    /// A new executor on this database (each manager gets its own).
    pub async fn executor(&self) -> Box<dyn migrate::backend::MigrationBackend> {
        self.database.executor().await.expect("executor")
    }

    /// An executor that waits at most `timeout` for another runner's lock.
    pub async fn executor_with_lock_timeout(
        &self,
        timeout: Duration,
    ) -> Box<dyn migrate::backend::MigrationBackend> {
        executor_with_lock_timeout(self.url(), timeout).await
    }

    /// An executor on this MariaDB database whose every session runs with
    /// `NO_BACKSLASH_ESCAPES` (a backslash in a string literal is itself, not an escape).
    pub async fn mysql_without_backslash_escapes(&self) -> migrate::mysql::MySqlDb {
        let pool = sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(3)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::Executor::execute(
                        conn,
                        "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect(self.url())
            .await
            .expect("mysql pool");
        let mode: String = sqlx::query_scalar("SELECT @@SESSION.sql_mode")
            .fetch_one(&pool)
            .await
            .expect("sql_mode");
        assert!(mode.contains("NO_BACKSLASH_ESCAPES"), "{mode}");
        migrate::mysql::MySqlDb::from_pool(pool)
    }

    /// A manager over the fixture's migrations.
    pub async fn manager(&self) -> MigrationManager {
        MigrationManager::new(self.executor().await, [&crate::MIGRATIONS]).expect("valid graph")
    }

    /// Runs SQL outside the framework.
    pub async fn exec(&self, sql: &str) {
        let query = sqlx::raw_sql(AssertSqlSafe(sql.to_string()));
        let done = match &self.pool {
            Pool::Sqlite(p) => query.execute(p).await.map(|_| ()),
            Pool::Postgres(p) => query.execute(p).await.map(|_| ()),
            Pool::MySql(p) => query.execute(p).await.map(|_| ()),
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Rows of a query, each rendered as `a|b|c`.
    pub async fn rows(&self, sql: &str) -> Vec<String> {
        let query = || sqlx::raw_sql(AssertSqlSafe(sql.to_string()));
        let rows = match &self.pool {
            Pool::Sqlite(p) => query().fetch_all(p).await.map(render),
            Pool::Postgres(p) => query().fetch_all(p).await.map(render),
            Pool::MySql(p) => query().fetch_all(p).await.map(render),
        };
        rows.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The schema (tables, columns, indexes, constraints) as sorted lines.
    pub async fn schema(&self) -> Vec<String> {
        let queries: &[&str] = match self.backend() {
            Backend::Sqlite => &[
                "SELECT type || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master ORDER BY type, name",
            ],
            Backend::Postgres => &[
                "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || COALESCE(column_default, '') \
                 FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY 1",
                "SELECT indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = current_schema() ORDER BY 1",
                "SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE connamespace = current_schema()::regnamespace ORDER BY 1",
            ],
            Backend::MySql => &[
                "SELECT CONCAT(table_name, '.', column_name, ' ', column_type, ' ', is_nullable, ' ', COALESCE(column_default, '')) \
                 FROM information_schema.columns WHERE table_schema = DATABASE() ORDER BY 1",
                "SELECT CONCAT(table_name, ' ', index_name, ' ', column_name) FROM information_schema.statistics \
                 WHERE table_schema = DATABASE() ORDER BY 1",
                "SELECT CONCAT(table_name, ' ', constraint_name, ' ', constraint_type) FROM information_schema.table_constraints \
                 WHERE table_schema = DATABASE() ORDER BY 1",
            ],
        };
        let mut out = Vec::new();
        for q in queries {
            out.extend(self.rows(q).await);
        }
        out
    }

    /// Whether `table` has `column`.
    pub async fn has_column(&self, table: &str, column: &str) -> bool {
        self.in_catalog(table, Some(column)).await
    }

    /// Whether `table` exists.
    pub async fn has_table(&self, table: &str) -> bool {
        self.in_catalog(table, None).await
    }

    /// Looks `table` (and `column`) up in the database's own catalog, independently of the
    /// framework's `Conn::table_exists`/`column_exists`.
    async fn in_catalog(&self, table: &str, column: Option<&str>) -> bool {
        let sql = catalog_query(self.backend(), table, column);
        !self.rows(&sql).await.is_empty()
    }

    /// Everything a bad request must leave alone: the schema, and every tracking row.
    pub async fn fingerprint(&self) -> Vec<String> {
        let mut out = self.schema().await;
        if self.has_table("migrate_schema_versions").await {
            // Every column, so that a dirty mark or a history field cannot change unseen; by
            // position, so that a tracking table missing columns (or an unrelated table of the
            // same name) can be fingerprinted too.
            out.extend(
                self.rows("SELECT * FROM migrate_schema_versions ORDER BY 1, 2")
                    .await,
            );
        }
        if self.has_table("migrate_schema_versions_history").await {
            out.extend(
                self.rows("SELECT * FROM migrate_schema_versions_history ORDER BY 1")
                    .await,
            );
        }
        out
    }

    /// Tells `step` (as `table@version`) to `fail` or `hang` when it runs.
    pub async fn control(&self, step: &str, action: &str) {
        self.exec("CREATE TABLE IF NOT EXISTS migrate_test_control (step VARCHAR(64) PRIMARY KEY, action VARCHAR(16))")
            .await;
        self.exec(&format!(
            "DELETE FROM migrate_test_control WHERE step = '{step}'"
        ))
        .await;
        self.exec(&format!(
            "INSERT INTO migrate_test_control (step, action) VALUES ('{step}', '{action}')"
        ))
        .await;
    }

    /// Lets every step run normally again.
    pub async fn clear_control(&self) {
        self.exec("DROP TABLE IF EXISTS migrate_test_control").await;
    }
}

/// An executor on the test database at `url` (of any backend) that waits at most `timeout`
/// for another runner's lock: for tests, and for the child processes they start.
pub async fn executor_with_lock_timeout(
    url: &str,
    timeout: Duration,
) -> Box<dyn migrate::backend::MigrationBackend> {
    if let Some(url) = url.strip_prefix("pooled+") {
        // A PostgreSQL server reached through a transaction-pooling proxy.
        Box::new(
            migrate::postgres::PgDb::connect(url)
                .await
                .expect("postgres through the proxy")
                .behind_transaction_pooler()
                .with_lock_timeout(timeout),
        )
    } else if url.starts_with("sqlite:") {
        Box::new(
            migrate::sqlite::SqliteDb::connect(url)
                .await
                .expect("sqlite")
                .with_lock_timeout(timeout),
        )
    } else if url.starts_with("postgres") {
        Box::new(
            migrate::postgres::PgDb::connect(url)
                .await
                .expect("postgres")
                .with_lock_timeout(timeout),
        )
    } else {
        Box::new(
            migrate::mysql::MySqlDb::connect(url)
                .await
                .expect("mysql")
                .with_lock_timeout(timeout),
        )
    }
}

/// The query that returns a row when `table` (and `column`) exists, read from the database's
/// own catalog.
pub fn catalog_query(backend: Backend, table: &str, column: Option<&str>) -> String {
    match (backend, column) {
        (Backend::Sqlite, Some(c)) => {
            format!("SELECT 1 FROM pragma_table_info('{table}') WHERE name = '{c}'")
        }
        (Backend::Sqlite, None) => {
            format!("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
        }
        (backend, column) => {
            let schema = if backend == Backend::Postgres {
                "current_schema()"
            } else {
                "DATABASE()"
            };
            let (catalog, column) = match column {
                Some(c) => ("columns", format!(" AND column_name = '{c}'")),
                None => ("tables", String::new()),
            };
            format!(
                    "SELECT 1 FROM information_schema.{catalog} WHERE table_schema = {schema} AND table_name = '{table}'{column}"
                )
        }
    }
}

/// An error, then each error in its source chain.
pub fn error_chain(
    err: &migrate::Error,
) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(Some(err as &(dyn std::error::Error + 'static)), |e| {
        e.source()
    })
}

/// A step that takes `table` from no version to 1.0.0 by calling `action`, for tests that call
/// `run_step` directly (as a run that was dropped left it, or to see what a step's `Conn` sees).
pub fn first_step<'a>(
    table: &'a str,
    name: &'a str,
    action: migrate::backend::MigrationFn,
    transactional: bool,
    table_names: &'a migrate::TableNames,
) -> migrate::backend::StepRun<'a> {
    migrate::backend::StepRun {
        record: migrate::backend::StepRecord {
            module: "integration",
            table,
            version: "1.0.0",
            name,
            checksum: "fnv1a64:0000000000000001",
            direction: migrate::report::Direction::Up,
            expected: None,
            new_version: Some("1.0.0"),
            new_checksum: Some("fnv1a64:0000000000000001"),
            resumes: None,
        },
        action,
        transactional,
        table_names,
    }
}

/// Prepares a new executor on `db` and runs `step` (from [`first_step`]) on it, which must be
/// done (`expect` says what it does); returns the executor, which may hold the step's finish.
pub async fn run_first_step(
    db: &TestDb,
    step: migrate::backend::StepRun<'_>,
    expect: &str,
) -> Box<dyn migrate::backend::MigrationBackend> {
    run_first_step_on(db.executor().await, step, expect).await
}

/// [`run_first_step`] on an executor of the test's own making.
pub async fn run_first_step_on(
    executor: Box<dyn migrate::backend::MigrationBackend>,
    step: migrate::backend::StepRun<'_>,
    expect: &str,
) -> Box<dyn migrate::backend::MigrationBackend> {
    executor.prepare().await.expect("tracking tables");
    let outcome = executor.run_step(&step).await.expect(expect);
    assert!(
        matches!(outcome, migrate::backend::StepOutcome::Done { .. }),
        "{outcome:?}"
    );
    executor
}

/// A version from test text.
pub fn v(text: &str) -> migrate::Version {
    migrate::Version::parse(text).expect("test version")
}

/// The applied steps of a report, as `table@version`.
pub fn steps(report: &migrate::report::Report) -> Vec<String> {
    report
        .applied
        .iter()
        .map(|a| format!("{}@{}", a.step.table, a.step.version))
        .collect()
}

/// Every table's current version, as the manager reports it.
pub async fn versions(manager: &MigrationManager) -> Vec<(String, Option<String>)> {
    manager
        .status()
        .await
        .expect("status")
        .into_iter()
        .map(|s| (s.table, s.current.map(|v| v.to_string())))
        .collect()
}

/// Expected `versions`.
pub fn at(pairs: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    pairs
        .iter()
        .map(|(t, v)| (t.to_string(), v.map(str::to_string)))
        .collect()
}

/// Every step of the fixture, in the graph's deterministic up order: by version, then by table,
/// with memory@2.3.0 behind session@2.1.0 (its `after`).
pub const ALL_UP: [&str; 10] = [
    "eval@2.0.0",
    "memory@2.0.0",
    "metrics@2.0.0",
    "session@2.0.0",
    "eval@2.1.0",
    "metrics@2.1.0",
    "session@2.1.0",
    "memory@2.3.0",
    "session@2.3.0",
    "metrics@2.5.0",
];

/// [`ALL_UP`] as owned strings.
pub fn all_up() -> Vec<String> {
    ALL_UP.iter().map(|s| s.to_string()).collect()
}

impl TestDb {
    /// An executor whose tracking tables are `name` and `name_history`.
    pub async fn executor_with_tracking_table(
        &self,
        name: &str,
    ) -> migrate::Result<Box<dyn migrate::backend::MigrationBackend>> {
        let url = self.url();
        Ok(match self.backend() {
            Backend::Sqlite => Box::new(
                migrate::sqlite::SqliteDb::connect(url)
                    .await?
                    .with_tracking_table(name)?,
            ),
            Backend::Postgres => Box::new(
                migrate::postgres::PgDb::connect(url)
                    .await?
                    .with_tracking_table(name)?,
            ),
            Backend::MySql => Box::new(
                migrate::mysql::MySqlDb::connect(url)
                    .await?
                    .with_tracking_table(name)?,
            ),
        })
    }
}

/// A built example of this package (`cargo test --all-features` builds them beside the test
/// binaries), as a newcomer runs it.
pub fn example(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let examples = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples");
    let path = examples.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is not built (cargo test --all-features builds it)",
        path.display()
    );
    path
}

/// The built `examples/cli` run with `args` against `DATABASE_URL=url`, to its end.
#[cfg(feature = "cli")]
pub fn run_cli_example(url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(example("cli"))
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("run the example")
}

/// A writer whose bytes a test reads afterwards: captured CLI output, a tracing log.
#[derive(Clone, Default)]
#[cfg_attr(not(feature = "cli"), allow(dead_code))]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures, on this thread, every event at `level` or above, with its spans, into a buffer,
/// until the guard drops (`tracing-subscriber` comes with `cli`). Events of other threads (a
/// spawned task on a worker thread, sqlx's SQLite thread) are not captured.
///
/// One subscriber serves the whole test binary, installed once as the global default: it writes
/// an event into the buffer of the thread that emitted it, if that thread is capturing at the
/// event's level. A subscriber per thread (`set_default`) is not enough: `tracing` caches each
/// callsite's interest for the whole process, and a callsite first reached on another thread
/// while a single thread-local subscriber lived was cached as "never", which lost a test's
/// debug event in CI.
#[cfg(feature = "cli")]
pub fn capture(level: tracing::Level) -> (Captured, CaptureGuard) {
    install_log_capture();
    let log = Captured::default();
    CAPTURING.with(|c| *c.borrow_mut() = Some((level, log.clone())));
    (log, CaptureGuard(()))
}

#[cfg(feature = "cli")]
thread_local! {
    static CAPTURING: std::cell::RefCell<Option<(tracing::Level, Captured)>> =
        const { std::cell::RefCell::new(None) };
}

/// Stops this thread's capture when dropped.
#[cfg(feature = "cli")]
pub struct CaptureGuard(());

#[cfg(feature = "cli")]
impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURING.with(|c| *c.borrow_mut() = None);
    }
}

/// Installs the test binary's one subscriber, before any test's first event where it can:
/// every database test calls this as it starts.
fn install_log_capture() {
    #[cfg(feature = "cli")]
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::Layer;
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            // Dynamic: asked at every event, never cached per callsite.
            let capturing = tracing_subscriber::filter::dynamic_filter_fn(|meta, _| {
                // A thread whose thread-locals are going away captures nothing.
                CAPTURING
                    .try_with(|c| {
                        c.borrow()
                            .as_ref()
                            .is_some_and(|(level, _)| meta.level() <= level)
                    })
                    .unwrap_or(false)
            });
            let layer = tracing_subscriber::fmt::layer()
                .with_writer(ThisThreadsCapture)
                .with_ansi(false)
                .with_filter(capturing);
            // Another global subscriber would only make the capture tests fail, not the rest.
            let _ =
                tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer));
        });
    }
}

/// The fmt layer's writer: the emitting thread's capture buffer (events of a thread that is
/// not capturing are filtered out before they get here; a stray one goes to a discarded buffer).
#[cfg(feature = "cli")]
struct ThisThreadsCapture;

#[cfg(feature = "cli")]
impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ThisThreadsCapture {
    type Writer = Captured;

    fn make_writer(&'a self) -> Captured {
        CAPTURING
            .try_with(|c| c.borrow().as_ref().map(|(_, log)| log.clone()))
            .ok()
            .flatten()
            .unwrap_or_default()
    }
}

#[cfg_attr(not(feature = "cli"), allow(dead_code))]
impl Captured {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("buffer")).into_owned()
    }
}

/// A session of its own on the PostgreSQL database at `url` holding the advisory lock `key`
/// (a runner's run lock, `PgDb::lock_key`) until it is closed or dropped.
pub async fn hold_advisory_lock(url: &str, key: i64) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut holder = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(key)
        .execute(&mut holder)
        .await
        .expect("the advisory lock");
    holder
}
