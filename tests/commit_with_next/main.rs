//! On SQLite and PostgreSQL a step's commit rides on the next step's first statement
//! (`MigrationBackend::run_step_commit_with_next`): one round trip per step. These tests hold what a migration
//! sees and what the run records to what they were when every step committed on its own:
//! - another connection sees the step before committed once the step's first statement ran,
//!   and not before;
//! - a statement that carries the step before it still returns its own affected rows;
//! - a step that sends nothing, or reads before it writes, leaves the step before it committed;
//! - a step that uses the typed connection first (whose statements would run ahead of the
//!   step before it's commit) runs again with it, and each is applied and recorded once;
//! - a step that writes through the typed connection and then fails keeps none of that write;
//! - a step that panics before its first statement leaves the step before it committed;
//! - a commit that loses its compare-and-set before a journalled step sends the run back to
//!   planning, and a forced run (which does not plan again) commits each step on its own;
//! - a step whose connection finds the executor's slot filled by another task commits at once
//!   (`slot.rs`).
//!
//! MariaDB journals every step and carries nothing; it runs the first checks. Its steps run
//! outside a transaction, so a failing or panicking step there keeps its writes and its dirty
//! mark by design (`tests/integration/locks.rs`, `failures.rs`).

use migrate::testing::{block_on, Backend, TestDatabase};
use migrate::{Conn, ConnExt, Dialect, MigrationManager, Result};
use std::sync::atomic::{AtomicBool, Ordering};

mod slot;

migrate::migrations! {}

#[migrate::migration(table = "ride", version = "1.0.0", irreversible)]
async fn ride_rows(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE ride_rows (id INTEGER, x INTEGER)")
        .await?;
    db.execute("INSERT INTO ride_rows (id, x) VALUES (1, 0), (2, 0), (3, 0)")
        .await?;
    db.execute("CREATE TABLE ride_seen (what VARCHAR(20), n BIGINT)")
        .await?;
    Ok(())
}

/// Its first statement carries the commit of 1.0.0: the count it gets is its own.
#[migrate::migration(table = "ride", version = "1.1.0", parent = "1.0.0", irreversible)]
async fn ride_update(db: &mut Conn<'_>) -> Result<()> {
    let updated = db.execute("UPDATE ride_rows SET x = 1").await?;
    db.execute(&format!(
        "INSERT INTO ride_seen (what, n) VALUES ('updated', {updated})"
    ))
    .await?;
    Ok(())
}

/// Sends nothing: the commit of 1.1.0 goes alone.
#[migrate::migration(table = "ride", version = "1.2.0", parent = "1.1.0", irreversible)]
async fn ride_nothing(_db: &mut Conn<'_>) -> Result<()> {
    Ok(())
}

/// Reads first: the commit of 1.2.0 goes alone before the read.
#[migrate::migration(table = "ride", version = "1.3.0", parent = "1.2.0", irreversible)]
async fn ride_read(db: &mut Conn<'_>) -> Result<()> {
    let counted = db.query_i64("SELECT COUNT(*) FROM ride_rows").await?;
    db.execute(&format!(
        "INSERT INTO ride_seen (what, n) VALUES ('counted', {counted})"
    ))
    .await?;
    Ok(())
}

/// Runs `sql` through the typed connection (`ConnExt`).
async fn typed(db: &mut Conn<'_>, sql: &'static str) -> Result<()> {
    match db.dialect() {
        Dialect::Sqlite => {
            sqlx::query(sql).execute(db.sqlite()?).await?;
        }
        Dialect::Postgres => {
            sqlx::query(sql).execute(db.postgres()?).await?;
        }
        Dialect::MySql => {
            sqlx::query(sql).execute(db.mysql()?).await?;
        }
    }
    Ok(())
}

/// Writes through the typed connection first, ahead of the commit of 1.3.0.
#[migrate::migration(table = "ride", version = "1.4.0", parent = "1.3.0", irreversible)]
async fn ride_typed(db: &mut Conn<'_>) -> Result<()> {
    typed(db, "INSERT INTO ride_seen (what, n) VALUES ('typed', 1)").await
}

#[migrate::migration(table = "ride_panic", version = "1.0.0", irreversible)]
async fn ride_panic_rows(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE ride_panic_rows (id INTEGER)")
        .await?;
    Ok(())
}

/// Whether `ride_panic` 1.1.0 panics, per dialect (the tests of each database run at once).
static ARMED: [AtomicBool; 3] = [
    AtomicBool::new(true),
    AtomicBool::new(true),
    AtomicBool::new(true),
];

fn armed(dialect: Dialect) -> &'static AtomicBool {
    &ARMED[match dialect {
        Dialect::Sqlite => 0,
        Dialect::Postgres => 1,
        Dialect::MySql => 2,
    }]
}

/// The dialect of `backend`'s databases.
fn dialect_of(backend: Backend) -> Dialect {
    match backend {
        Backend::Sqlite => Dialect::Sqlite,
        Backend::Postgres => Dialect::Postgres,
        Backend::MySql => Dialect::MySql,
    }
}

/// Panics before its first statement while armed.
#[migrate::migration(
    table = "ride_panic",
    version = "1.1.0",
    parent = "1.0.0",
    irreversible
)]
async fn ride_panic_late(db: &mut Conn<'_>) -> Result<()> {
    if armed(db.dialect()).load(Ordering::SeqCst) {
        panic!("ride_panic 1.1.0 was told to panic");
    }
    db.execute("INSERT INTO ride_panic_rows (id) VALUES (1)")
        .await?;
    Ok(())
}

#[migrate::migration(table = "ride_typed", version = "1.0.0", irreversible)]
async fn ride_typed_rows(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE ride_typed_rows (what VARCHAR(20), n BIGINT)")
        .await?;
    Ok(())
}

/// Writes through the typed connection, then fails: nothing of it may stay, whichever
/// transaction the write went to.
#[migrate::migration(
    table = "ride_typed",
    version = "1.1.0",
    parent = "1.0.0",
    irreversible
)]
async fn ride_typed_fails(db: &mut Conn<'_>) -> Result<()> {
    typed(
        db,
        "INSERT INTO ride_typed_rows (what, n) VALUES ('typed', 1)",
    )
    .await?;
    Err(migrate::Error::msg(
        "ride_typed 1.1.0 fails after its typed write",
    ))
}

#[migrate::migration(table = "ride_seen_outside", version = "1.0.0", irreversible)]
async fn outside_first(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE ride_outside (id INTEGER)").await?;
    Ok(())
}

/// `ride_seen_outside`'s version as another connection saw it, before and after 1.1.0's
/// first statement.
type SeenOutside = (Dialect, Option<String>, Option<String>);

/// What 1.1.0 saw, per dialect.
static SEEN_OUTSIDE: std::sync::Mutex<Vec<SeenOutside>> = std::sync::Mutex::new(Vec::new());

/// Each dialect's test database, for the step to look from outside.
static DATABASES: std::sync::Mutex<Vec<(Dialect, Backend, String)>> =
    std::sync::Mutex::new(Vec::new());

async fn version_seen_outside(dialect: Dialect) -> Option<String> {
    let (backend, url) = DATABASES
        .lock()
        .expect("databases")
        .iter()
        .find(|(d, ..)| *d == dialect)
        .map(|(_, backend, url)| (*backend, url.clone()))
        .expect("the test's database");
    let versions = pairs_at(
        backend,
        &url,
        "SELECT version, COUNT(*) FROM migrate_schema_versions \
         WHERE table_name = 'ride_seen_outside' AND version IS NOT NULL GROUP BY version",
    )
    .await;
    versions.into_iter().next().map(|(version, _)| version)
}

#[migrate::migration(
    table = "ride_seen_outside",
    version = "1.1.0",
    parent = "1.0.0",
    irreversible
)]
async fn outside_second(db: &mut Conn<'_>) -> Result<()> {
    let before = version_seen_outside(db.dialect()).await;
    db.execute("INSERT INTO ride_outside (id) VALUES (1)")
        .await?;
    let after = version_seen_outside(db.dialect()).await;
    SEEN_OUTSIDE
        .lock()
        .expect("seen")
        .push((db.dialect(), before, after));
    Ok(())
}

#[migrate::migration(table = "ride_race", version = "1.0.0", irreversible)]
async fn race_first(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE ride_race_rows (id INTEGER)")
        .await?;
    Ok(())
}

/// Runs outside a transaction: the step before commits on its own before it.
#[migrate::migration(
    table = "ride_race",
    version = "1.1.0",
    parent = "1.0.0",
    transaction = false,
    irreversible
)]
async fn race_journalled(db: &mut Conn<'_>) -> Result<()> {
    db.execute("INSERT INTO ride_race_rows (id) VALUES (1)")
        .await?;
    Ok(())
}

/// The rows of a one-text-column, one-integer-column query, read outside the framework.
async fn pairs(db: &TestDatabase, sql: &str) -> Vec<(String, i64)> {
    pairs_at(db.backend(), db.url(), sql).await
}

/// [`pairs`] on the database at `url`.
async fn pairs_at(backend: Backend, url: &str, sql: &str) -> Vec<(String, i64)> {
    use sqlx::{Connection, Row};
    let sql = sqlx::AssertSqlSafe(sql.to_string());
    macro_rules! read {
        ($conn:ty) => {{
            let mut conn = <$conn>::connect(url).await.expect("connect");
            sqlx::raw_sql(sql)
                .fetch_all(&mut conn)
                .await
                .expect("query")
                .iter()
                .map(|row| {
                    let text: String = row.try_get(0).expect("text");
                    let n: i64 = row.try_get(1).expect("integer");
                    (text, n)
                })
                .collect()
        }};
    }
    match backend {
        Backend::Sqlite => read!(sqlx::SqliteConnection),
        Backend::Postgres => read!(sqlx::PgConnection),
        Backend::MySql => read!(sqlx::MySqlConnection),
    }
}

fn versions(report: &migrate::report::Report) -> Vec<String> {
    report
        .applied
        .iter()
        .map(|a| a.step.version.to_string())
        .collect()
}

async fn each_step_sees_its_own_work_and_is_recorded_once(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    let report = manager.up().table("ride").await.expect("up");
    assert_eq!(
        versions(&report),
        ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"],
        "each step reported applied once, in order"
    );
    // The run planned again after a step rode on the next one's commit: the steps it applied
    // before that are not "already there" too.
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    let seen = pairs(&db, "SELECT what, n FROM ride_seen ORDER BY what").await;
    let expected =
        [("counted", 3), ("typed", 1), ("updated", 3)].map(|(what, n)| (what.to_string(), n));
    assert_eq!(seen, expected, "each step's own count, each write once");
    let recorded = pairs(
        &db,
        "SELECT version, COUNT(*) FROM migrate_schema_versions_history \
         WHERE table_name = 'ride' AND outcome = 'succeeded' GROUP BY version ORDER BY version",
    )
    .await;
    let once = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"].map(|v| (v.to_string(), 1));
    assert_eq!(recorded, once, "one succeeded history row per step");
    assert_eq!(
        manager
            .current_version("ride")
            .await
            .expect("state")
            .map(|v| v.to_string()),
        Some("1.4.0".to_string())
    );
    let again = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    let report = again.up().table("ride").await.expect("up again");
    assert!(report.applied.is_empty(), "{report:?}");
}

async fn a_panic_before_the_first_statement_keeps_the_step_before(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    let run = tokio::spawn(async move { manager.up().table("ride_panic").await });
    assert!(run.await.expect_err("the step panicked").is_panic());
    armed(dialect_of(backend)).store(false, Ordering::SeqCst);
    let next = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    let report = next
        .up()
        .table("ride_panic")
        .await
        .expect("up after the panic");
    assert_eq!(
        versions(&report),
        ["1.1.0"],
        "the step before the panic committed, and is not run again"
    );
}

async fn a_failing_step_keeps_nothing_it_wrote_through_the_typed_connection(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    let err = manager
        .up()
        .table("ride_typed")
        .await
        .expect_err("1.1.0 fails");
    match &err {
        migrate::Error::StepFailed { step, applied, .. } => {
            assert_eq!(step.version.to_string(), "1.1.0");
            let applied: Vec<String> = applied.iter().map(|a| a.step.version.to_string()).collect();
            assert_eq!(applied, ["1.0.0"]);
        }
        other => panic!("expected StepFailed, got {other:?}"),
    }
    let written = pairs(&db, "SELECT what, n FROM ride_typed_rows").await;
    assert!(
        written.is_empty(),
        "the failed step's typed write was committed (with the step before it?): {written:?}"
    );
    assert_eq!(
        manager
            .current_version("ride_typed")
            .await
            .expect("state")
            .map(|v| v.to_string()),
        Some("1.0.0".to_string())
    );
}

/// The step before commits with this step's first statement (SQLite, PostgreSQL), not in an
/// exchange of its own; on MariaDB, where every step is journalled, before this step starts.
async fn the_step_before_commits_with_the_first_statement(backend: Backend) {
    let dialect = dialect_of(backend);
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    DATABASES
        .lock()
        .expect("databases")
        .push((dialect, backend, db.url().to_string()));
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    manager.up().table("ride_seen_outside").await.expect("up");
    let seen = SEEN_OUTSIDE
        .lock()
        .expect("seen")
        .iter()
        .find(|(d, ..)| *d == dialect)
        .map(|(_, before, after)| (before.clone(), after.clone()))
        .expect("1.1.0 ran");
    let committed = Some("1.0.0".to_string());
    let expected = match dialect {
        Dialect::MySql => (committed.clone(), committed),
        _ => (None, committed),
    };
    assert_eq!(
        seen, expected,
        "1.0.0 as another connection saw it, before and after 1.1.0's first statement"
    );
}

#[test]
fn the_step_before_commits_with_the_first_statement_on_sqlite() {
    block_on(the_step_before_commits_with_the_first_statement(
        Backend::Sqlite,
    ));
}

#[test]
fn the_step_before_commits_with_the_first_statement_on_postgres() {
    block_on(the_step_before_commits_with_the_first_statement(
        Backend::Postgres,
    ));
}

#[test]
fn the_step_before_commits_with_the_first_statement_on_mysql() {
    block_on(the_step_before_commits_with_the_first_statement(
        Backend::MySql,
    ));
}

/// PostgreSQL: another runner marks `ride_race` between its first step (whose commit waits)
/// and the journalled step after it. The first step's compare-and-set then fails when it is
/// sent, alone, before the journalled step: the first step is rolled back, the journalled
/// step never runs, and the run plans again (which finds the other runner's mark), instead of
/// counting the first step and blaming the journalled one.
#[test]
fn a_commit_lost_before_a_journalled_step_is_planned_again_on_postgres() {
    block_on(async {
        let Some(db) = TestDatabase::create(Backend::Postgres)
            .await
            .expect("database")
        else {
            return;
        };
        let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
            .expect("graph");
        manager.backend().prepare().await.expect("tracking tables");
        let url = db.url().to_string();
        let err = manager
            .up()
            .table("ride_race")
            .on_progress(move |p| {
                if p.finished.is_none() && p.step.version.to_string() == "1.1.0" {
                    let url = url.clone();
                    // Another runner, on a connection of its own, between the two steps.
                    std::thread::spawn(move || {
                        block_on(async move {
                            use sqlx::Connection;
                            let mut other =
                                sqlx::PgConnection::connect(&url).await.expect("connect");
                            sqlx::raw_sql(
                                "INSERT INTO migrate_schema_versions (module, table_name, \
                                 dirty_version, dirty_name, dirty_direction, dirty_since, \
                                 updated_at) VALUES ('commit_with_next', 'ride_race', '1.0.0', \
                                 'another runner', 'up', 0, 0)",
                            )
                            .execute(&mut other)
                            .await
                            .expect("the other runner's mark");
                        })
                    })
                    .join()
                    .expect("the other runner");
                }
            })
            .await
            .expect_err("the first step lost its compare-and-set");
        assert!(
            matches!(&err, migrate::Error::Dirty { table, .. } if table == "ride_race"),
            "the run planned again and found the other runner's mark: {err:?}"
        );
        let rows = pairs(
            &db,
            "SELECT table_name, COUNT(*) FROM information_schema.tables \
             WHERE table_name = 'ride_race_rows' GROUP BY table_name",
        )
        .await;
        assert!(rows.is_empty(), "the first step was rolled back: {rows:?}");
    });
}

/// A forced run does not plan again, so its steps commit on their own: the step that uses the
/// typed connection first does not send the run back to planning (which a forced run would
/// have to refuse as `ConcurrentRunners`).
async fn a_forced_run_commits_each_step_on_its_own(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    let report = manager
        .up()
        .table("ride")
        .force(true)
        .await
        .expect("forced up");
    assert_eq!(
        versions(&report),
        ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
    );
}

#[test]
fn a_forced_run_commits_each_step_on_its_own_on_sqlite() {
    block_on(a_forced_run_commits_each_step_on_its_own(Backend::Sqlite));
}

#[test]
fn a_forced_run_commits_each_step_on_its_own_on_postgres() {
    block_on(a_forced_run_commits_each_step_on_its_own(Backend::Postgres));
}

#[test]
fn each_step_sees_its_own_work_and_is_recorded_once_on_sqlite() {
    block_on(each_step_sees_its_own_work_and_is_recorded_once(
        Backend::Sqlite,
    ));
}

#[test]
fn each_step_sees_its_own_work_and_is_recorded_once_on_postgres() {
    block_on(each_step_sees_its_own_work_and_is_recorded_once(
        Backend::Postgres,
    ));
}

#[test]
fn each_step_sees_its_own_work_and_is_recorded_once_on_mysql() {
    block_on(each_step_sees_its_own_work_and_is_recorded_once(
        Backend::MySql,
    ));
}

#[test]
fn a_panic_before_the_first_statement_keeps_the_step_before_on_sqlite() {
    block_on(a_panic_before_the_first_statement_keeps_the_step_before(
        Backend::Sqlite,
    ));
}

#[test]
fn a_panic_before_the_first_statement_keeps_the_step_before_on_postgres() {
    block_on(a_panic_before_the_first_statement_keeps_the_step_before(
        Backend::Postgres,
    ));
}

#[test]
fn a_failing_step_keeps_nothing_it_wrote_through_the_typed_connection_on_sqlite() {
    block_on(a_failing_step_keeps_nothing_it_wrote_through_the_typed_connection(Backend::Sqlite));
}

#[test]
fn a_failing_step_keeps_nothing_it_wrote_through_the_typed_connection_on_postgres() {
    block_on(a_failing_step_keeps_nothing_it_wrote_through_the_typed_connection(Backend::Postgres));
}
