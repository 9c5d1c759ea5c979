//! The runner lock: a held lock times out with an error that names its holder, and a killed
//! runner's lock is freed with its process.

use crate::failures::{spawn_child_runner, wait_for};
use crate::harness::{all_up, each_backend, steps, v, TestDb};
use crate::MIGRATIONS;
use migrate::testing::Backend;
use migrate::MigrationManager;
use std::time::Duration;

each_backend! {
    async fn a_lock_timeout_of_duration_max_waits_without_limit(db) {
        // "Wait for ever" is `Duration::MAX`: no deadline may overflow (MySQL's slices of
        // `GET_LOCK`), and on SQLite the busy timeout must not turn into none at all (SQLite
        // reads a `PRAGMA busy_timeout` past `i32::MAX` as 0): a write lock held for a moment
        // from outside is waited for.
        let runner = MigrationManager::new(
            db.executor_with_lock_timeout(Duration::MAX).await,
            [&MIGRATIONS],
        )
        .expect("graph");
        let holder = if db.backend() == Backend::Sqlite {
            use sqlx::Connection;
            let mut outside = sqlx::SqliteConnection::connect(db.url()).await.expect("connect");
            sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut outside).await.expect("write lock");
            Some(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                sqlx::raw_sql("COMMIT").execute(&mut outside).await.expect("commit");
            }))
        } else {
            // The run lock held by another runner, paused 700 ms in session@2.3.0 (once its
            // 2.1.0 is recorded, it is in there): the `GET_LOCK` and advisory-lock waits are
            // taken with the unbounded timeout.
            db.manager().await.up().table("session").target("2.0.0").await.expect("the tables");
            db.control("session@2.3.0", "pause").await;
            let other = db.manager().await;
            let held = tokio::spawn(async move { other.up().table("session").await.map(|r| steps(&r)) });
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            while db.rows("SELECT version FROM migrate_schema_versions WHERE table_name = 'session'").await != ["2.1.0"] {
                assert!(std::time::Instant::now() < deadline, "the holder never reached session@2.3.0");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Some(tokio::spawn(async move {
                assert_eq!(held.await.expect("join").expect("the holder's run"), ["session@2.1.0", "session@2.3.0"]);
            }))
        };
        let report = runner.up().await.expect("waits, then applies");
        let mut expected = all_up();
        if db.backend() != Backend::Sqlite {
            // The session table was the holder's while this runner waited for it.
            expected.retain(|s| !s.starts_with("session@"));
        }
        assert_eq!(steps(&report), expected);
        if let Some(holder) = holder {
            holder.await.expect("the outside writer");
        }
        db.clear_control().await;
    }

    async fn a_killed_runner_frees_its_lock(db) {
        // The child holds the lock while session@2.3.0 hangs inside its transaction.
        db.control("session@2.3.0", "hang").await;
        let mut child = spawn_child_runner(db.url());
        wait_for(
            &db,
            &mut child,
            "session@2.3.0",
            "SELECT version FROM migrate_schema_versions WHERE table_name = 'memory'",
            &["2.3.0"],
        )
        .await;

        let waiting = next_runner(&db, Duration::from_millis(300)).await;
        let before = db.fingerprint().await;
        let err = waiting.up().await.expect_err("the child holds the lock");
        let migrate::Error::LockTimeout { holder, .. } = &err else {
            panic!("expected LockTimeout, got {err:?}");
        };
        let holder = holder.clone().unwrap_or_default();
        let named = match db.backend() {
            Backend::Postgres => "pid",
            Backend::MySql => "connection id",
            Backend::Sqlite => "migrate-lock",
        };
        assert!(holder.contains(named), "the error names the holder: {err}");
        assert!(err.to_string().contains("300ms"), "{err}");
        assert_eq!(db.fingerprint().await, before, "a runner that timed out changed nothing");

        child.kill().expect("kill the child");
        child.wait().expect("reap the child");
        db.clear_control().await;

        // The killed runner's lock is gone: the next runner proceeds and finishes the work,
        // session@2.3.0 included (its transaction died with the child).
        let next = next_runner(&db, Duration::from_secs(20)).await;
        if db.backend() == Backend::MySql {
            // Every MySQL step is journalled: the killed step left its dirty mark, and the next
            // runner (which got the lock, so no LockTimeout) stops at it until it is resolved.
            let err = next.up().await.expect_err("dirty");
            assert!(matches!(err, migrate::Error::Dirty { ref table, .. } if table == "session"), "{err}");
            roll_back_the_session_mark(&next).await;
        }
        let report = next.up().await.expect("the next runner proceeds");
        assert!(report.applied.iter().any(|a| a.step.table == "session" && a.step.version == v("2.3.0")));
        assert_eq!(next.current_version("session").await.unwrap(), Some(v("2.3.0")));
    }
}

each_backend! {
    async fn the_lock_is_released_after_a_failed_run(db) {
        db.control("session@2.3.0", "fail").await;
        db.manager().await.up().await.expect_err("session 2.3.0 fails");
        db.clear_control().await;
        // sqlx leaves its lock held on this path (launchbadge/sqlx#1871); this must not.
        let next = next_runner(&db, Duration::from_millis(300)).await;
        roll_back_the_session_mark_on_mysql(&db, &next).await;
        next.up().await.expect("the lock was released");
    }

    async fn a_panicking_step_leaves_nothing_of_its_own_transaction(db) {
        db.control("session@2.3.0", "write_and_panic").await;
        let manager = std::sync::Arc::new(db.manager().await);
        let running = manager.clone();
        let run = tokio::spawn(async move { running.up().await });
        assert!(run.await.expect_err("the migration panicked").is_panic());
        // The same manager goes on after the panic. On MySQL its step is journalled and its
        // mark stays; clearing it must not commit the write of the panicking step's own
        // transaction, as a connection given back to the pool with it open would.
        roll_back_the_session_mark_on_mysql(&db, &manager).await;
        let written = db.rows("SELECT action FROM migrate_test_control WHERE step = 'written'").await;
        assert!(written.is_empty(), "the panicking step's write was kept: {written:?}");
        // A transaction left open on a kept connection holds its locks: dropping the table it
        // wrote to would wait for it (on MariaDB, for a year).
        let report = tokio::time::timeout(Duration::from_secs(30), async {
            db.clear_control().await;
            manager.up().await.expect("the run goes on")
        })
        .await
        .expect("no transaction of the panicking step is left open");
        assert_eq!(steps(&report), ["session@2.3.0", "metrics@2.5.0"].map(String::from));
    }

    async fn a_run_dropped_inside_a_step_frees_its_lock_and_its_transaction(db) {
        use std::future::IntoFuture;
        use std::sync::atomic::{AtomicBool, Ordering};
        db.control("session@2.3.0", "hang").await;
        let manager = db.manager().await;
        let started = std::sync::Arc::new(AtomicBool::new(false));
        let seen = started.clone();
        let run = manager.up().on_progress(move |p| {
            if p.finished.is_none() && p.step.table == "session" && p.step.version == v("2.3.0") {
                seen.store(true, Ordering::SeqCst);
            }
        });
        let mut run = run.into_future();
        while !started.load(Ordering::SeqCst) {
            tokio::select! {
                ended = &mut run => panic!("the run ended before its hanging step: {ended:?}"),
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
        // Into the step's hang, then dropped: a cancelled run (a timeout, a shutdown).
        let hung = tokio::time::timeout(Duration::from_millis(300), &mut run).await;
        assert!(hung.is_err(), "the step was told to hang");
        drop(run);
        // The manager that ran stays alive (a service whose run timed out goes on), so what the
        // dropped run held must have been let go by the drop itself, not by the pool closing.
        db.clear_control().await;
        let next = next_runner(&db, Duration::from_secs(5)).await;
        // A transaction the drop left open would hold its locks: PostgreSQL would wait on them.
        let report = tokio::time::timeout(Duration::from_secs(30), async {
            if db.backend() == Backend::MySql {
                // Journalled: the step's mark was committed before it hung.
                let err = next.up().await.expect_err("session is marked dirty");
                assert!(matches!(&err, migrate::Error::Dirty { table, .. } if table == "session"), "{err}");
                roll_back_the_session_mark(&next).await;
            }
            next.up().await.expect("the dropped run's lock and transaction are gone")
        })
        .await
        .expect("nothing of the dropped run is left holding locks");
        assert_eq!(steps(&report), ["session@2.3.0", "metrics@2.5.0"].map(String::from));
        assert_eq!(manager.up().await.expect("the first manager goes on").status, migrate::report::ReportStatus::UpToDate);
    }

    async fn a_panicking_progress_callback_leaves_the_finished_step_recorded(db) {
        let manager = db.manager().await;
        // The callback panics as the first step ends: that step is done, and must be recorded
        // as done (on MariaDB its finish is still pending then) before the panic goes on.
        let run = tokio::spawn(async move {
            manager
                .up()
                .on_progress(|p| assert!(p.finished.is_none(), "the callback panics"))
                .await
        });
        assert!(run.await.expect_err("the callback panicked").is_panic());
        let next = next_runner(&db, Duration::from_secs(5)).await;
        let report = next.up().await.expect("the lock is free and no table is dirty");
        let mut rest = all_up();
        rest.remove(0);
        assert_eq!(steps(&report), rest, "the first step is not run again");
    }

    async fn the_lock_is_released_when_a_migration_panics(db) {
        db.control("session@2.3.0", "panic").await;
        let manager = db.manager().await;
        let run = tokio::spawn(async move { manager.up().await });
        let joined = run.await;
        assert!(joined.expect_err("the migration panicked").is_panic());
        db.clear_control().await;
        let next = next_runner(&db, Duration::from_secs(5)).await;
        roll_back_the_session_mark_on_mysql(&db, &next).await;
        let report = next.up().await.expect("the panicked run's lock was freed");
        assert!(report.applied.iter().any(|a| a.step.table == "session" && a.step.version == v("2.3.0")));
    }
}

/// SQLite only: a step's commit begins the next step's transaction (`COMMIT; BEGIN IMMEDIATE`,
/// one hand-off), which holds the file's write lock. When `up` returns, that transaction is
/// ended: another connection takes the write lock without waiting, while the manager that ran
/// is still alive, and the manager's next call works.
#[tokio::test]
async fn sqlite_a_finished_run_holds_no_write_lock() {
    let Some(db) = crate::harness::TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let manager = db.manager().await;
    let report = manager.up().target("2.0.0").await.expect("up to 2.0.0");
    assert!(report.applied.len() > 1, "{report:?}");

    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::{ConnectOptions, Connection};
    use std::str::FromStr;
    let mut other = SqliteConnectOptions::from_str(db.url())
        .expect("url")
        .busy_timeout(Duration::ZERO)
        .connect()
        .await
        .expect("second connection");
    let tx = other
        .begin_with("BEGIN IMMEDIATE")
        .await
        .expect("the write lock is free as soon as up returns");
    tx.rollback().await.expect("rollback");
    let report = manager.up().await.expect("the rest");
    assert!(!report.applied.is_empty(), "{report:?}");
    other
        .begin_with("BEGIN IMMEDIATE")
        .await
        .expect("free again after the second run")
        .rollback()
        .await
        .expect("rollback");
}

/// SQLite only: a write lock held by another connection (not a runner) is bounded by the busy
/// timeout too.
#[tokio::test]
async fn sqlite_write_lock_held_elsewhere_times_out() {
    let Some(db) = crate::harness::TestDb::new(Backend::Sqlite).await else {
        return;
    };
    db.manager()
        .await
        .up()
        .target("2.0.0")
        .await
        .expect("up to 2.0.0");

    use sqlx::Connection;
    let mut holder = sqlx::SqliteConnection::connect(db.url())
        .await
        .expect("second connection");
    let tx = holder
        .begin_with("BEGIN IMMEDIATE")
        .await
        .expect("hold the write lock");

    let waiting = MigrationManager::new(
        db.executor_with_lock_timeout(Duration::from_millis(200))
            .await,
        [&MIGRATIONS],
    )
    .unwrap();
    let before = db.fingerprint().await;
    let err = waiting.up().await.expect_err("the write lock is held");
    assert!(matches!(err, migrate::Error::LockTimeout { .. }), "{err:?}");
    assert!(err.to_string().contains("200ms"), "{err}");
    drop(tx);
    assert_eq!(db.fingerprint().await, before);
    waiting.up().await.expect("runs once the lock is free");
}

/// A second runner on the test database, waiting at most `wait` for the run lock.
async fn next_runner(db: &TestDb, wait: Duration) -> MigrationManager {
    MigrationManager::new(db.executor_with_lock_timeout(wait).await, [&MIGRATIONS]).unwrap()
}

/// Clears the dirty mark that a `session` step stopped part-way left, as rolled back.
async fn roll_back_the_session_mark(manager: &MigrationManager) {
    manager
        .resolve_dirty("session", migrate::manager::Resolution::RolledBack)
        .await
        .expect("resolve");
}

/// On MySQL, whose steps are journalled, a `session` step stopped part-way leaves its dirty
/// mark: cleared as rolled back. Elsewhere the step's transaction took it back.
async fn roll_back_the_session_mark_on_mysql(db: &TestDb, manager: &MigrationManager) {
    if db.backend() == Backend::MySql {
        roll_back_the_session_mark(manager).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_a_cancelled_lock_wait_leaves_no_session_holding_the_lock() {
    let Some(db) = TestDb::new(Backend::MySql).await else {
        return;
    };
    let holder = db.executor().await;
    let waiter = db.executor().await;
    let third = db.executor().await;
    let held = holder.lock(None).await.expect("hold the lock");
    // The waiter's `GET_LOCK` blocks on the server; its run is dropped while it waits.
    let wait = waiter.lock(Some(Duration::from_secs(10)));
    assert!(tokio::time::timeout(Duration::from_millis(300), wait)
        .await
        .is_err());
    held.release().await.expect("release");
    // Had the waiter's session gone back to its pool, the server would have granted it the lock
    // as it was released, and it would hold it there unseen.
    let lock = third
        .lock(Some(Duration::from_secs(3)))
        .await
        .expect("the lock is free once its holder released it");
    lock.release().await.expect("release");
    drop(waiter);
}

static GRAB: migrate::registry::MigrationSet =
    migrate::registry::MigrationSet::__new("grab", "locks_grab", &[]);

fn noop<'a>(_: &'a mut migrate::Conn<'_>) -> migrate::backend::MigrationFuture<'a> {
    Box::pin(async { Ok(()) })
}

/// Table `grab` at 1.0.0 and 1.1.0, journalled (each step's record commits as it ends).
fn two_journalled_steps() -> Vec<&'static migrate::registry::Migration> {
    [(1, "1.0.0", None), (2, "1.1.0", Some("1.0.0"))]
        .into_iter()
        .map(|(line, version, parent)| {
            &*Box::leak(Box::new(migrate::registry::Migration::__new(
                &GRAB,
                "grab",
                version,
                parent,
                "step",
                noop,
                migrate::registry::Reversal::Irreversible,
                false,
                None,
                "fnv1a64:0000000000000000",
                "locks.rs",
                line,
            )))
        })
        .collect()
}

/// SQLite: another writer takes the file's write lock between two steps of a run. The second
/// step's lock times out, and the error says what the run applied before it (a bare
/// `LockTimeout` says nothing ran).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_lock_timeout_after_a_step_names_what_the_run_applied() {
    let Some(db) = crate::harness::TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let url = db.url().to_string();
    let manager = MigrationManager::from_migrations(
        db.executor_with_lock_timeout(Duration::from_millis(200))
            .await,
        two_journalled_steps(),
    )
    .expect("graph");
    let holder = std::sync::Arc::new(std::sync::Mutex::new(None));
    let holding = holder.clone();
    let result = manager
        .up()
        .on_progress(move |p| {
            if p.index != 1 || p.finished.is_none() {
                return;
            }
            // Between the steps: a writer of another process's kind holds the lock for 1.5 s.
            let (held, is_held) = std::sync::mpsc::channel();
            let url = url.clone();
            let thread = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    use sqlx::Connection;
                    let mut other = sqlx::SqliteConnection::connect(&url)
                        .await
                        .expect("connect");
                    sqlx::raw_sql("BEGIN IMMEDIATE")
                        .execute(&mut other)
                        .await
                        .expect("lock");
                    held.send(()).expect("signal");
                    tokio::time::sleep(Duration::from_millis(1_500)).await;
                    sqlx::raw_sql("COMMIT")
                        .execute(&mut other)
                        .await
                        .expect("commit");
                });
            });
            is_held
                .recv_timeout(Duration::from_secs(10))
                .expect("the other writer holds the lock");
            if let Ok(mut slot) = holding.lock() {
                *slot = Some(thread);
            }
        })
        .await;
    let err = result.expect_err("the second step cannot take the write lock");
    match &err {
        migrate::Error::StepFailed {
            step,
            applied,
            source,
            ..
        } => {
            assert_eq!(step.version, v("1.1.0"), "{err}");
            let applied: Vec<String> = applied.iter().map(|a| a.step.version.to_string()).collect();
            assert_eq!(applied, ["1.0.0"], "{err}");
            assert!(
                matches!(**source, migrate::Error::LockTimeout { .. }),
                "{err}"
            );
            assert_eq!(
                err.category(),
                migrate::error::ErrorCategory::Locked,
                "still a lock: retry"
            );
        }
        other => panic!("expected StepFailed carrying what was applied, got {other:?}"),
    }
    let thread = holder.lock().ok().and_then(|mut slot| slot.take());
    thread.expect("the writer ran").join().expect("the writer");
}

/// Two paths to one SQLite database, one through a symbolic link, take one run lock: SQLite
/// opens the file the link leads to, and the lock file is beside it (it was beside each path,
/// so the two runners excluded nothing).
#[tokio::test]
async fn sqlite_paths_through_a_symbolic_link_share_the_run_lock() {
    use migrate::backend::MigrationBackend;
    let dir = tempfile::tempdir().expect("dir");
    let real = dir.path().join("real.db");
    let link = dir.path().join("link.db");
    let a = migrate::sqlite::SqliteDb::open(&real).await.expect("open");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let b = migrate::sqlite::SqliteDb::open(&link)
        .await
        .expect("open through the link");
    let held = a.lock(None).await.expect("the lock through the file");
    let Err(err) = b.lock(Some(Duration::ZERO)).await else {
        panic!("the lock was taken through the other path while held")
    };
    assert!(matches!(err, migrate::Error::LockTimeout { .. }), "{err}");
    held.release().await.expect("release");
    b.lock(Some(Duration::ZERO))
        .await
        .expect("free again")
        .release()
        .await
        .expect("release");
    assert!(
        !link.with_extension("db.migrate-lock").exists(),
        "no lock beside the link"
    );
}
