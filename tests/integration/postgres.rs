//! PostgreSQL only: the tracking tables in a schema of their own (one per tenant, as pgdbm's
//! multi-tenant schemas), and the lock-table fallback for poolers and CockroachDB.

use crate::harness::{v, TestDb};
use crate::MIGRATIONS;
use migrate::postgres::LockMode;
use migrate::postgres::PgDb;
use migrate::testing::Backend;
use migrate::MigrationManager;
use std::time::Duration;

async fn postgres() -> Option<TestDb> {
    TestDb::new(Backend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_schema_has_its_own_tables_and_tracking() {
    let Some(db) = postgres().await else { return };
    for tenant in ["tenant_a", "tenant_b"] {
        let executor = PgDb::connect(db.url())
            .await
            .unwrap()
            .with_schema(tenant)
            .unwrap();
        let manager = MigrationManager::new(executor, [&MIGRATIONS]).unwrap();
        let target = if tenant == "tenant_a" {
            "2.5.0"
        } else {
            "2.1.0"
        };
        manager.up().target(target).await.expect("up");
        assert_eq!(
            manager.current_version("metrics").await.unwrap(),
            Some(v(target))
        );
    }
    let tables = db
        .rows("SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema LIKE 'tenant_%' ORDER BY 1")
        .await;
    for tenant in ["tenant_a", "tenant_b"] {
        for table in [
            "eval",
            "memory",
            "metrics",
            "migrate_schema_versions",
            "migrate_schema_versions_history",
            "session",
        ] {
            assert!(
                tables.contains(&format!("{tenant}.{table}")),
                "{tenant}.{table} in {tables:?}"
            );
        }
    }
    assert!(
        !db.has_table("migrate_schema_versions").await,
        "nothing in the default schema"
    );
    // tenant_a's index went into tenant_a, and comes back down from there.
    let executor = PgDb::connect(db.url())
        .await
        .unwrap()
        .with_schema("tenant_a")
        .unwrap();
    let manager = MigrationManager::new(executor, [&MIGRATIONS]).unwrap();
    manager
        .down()
        .table("metrics")
        .target("2.1.0")
        .await
        .expect("down in tenant_a");
    let err = PgDb::connect(db.url())
        .await
        .unwrap()
        .with_schema("")
        .unwrap_err();
    assert!(matches!(err, migrate::Error::Config(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_table_fallback_serializes_runners() {
    let Some(db) = postgres().await else { return };
    let mode = LockMode::Table {
        stale_after: Duration::from_secs(600),
    };
    let mut runners = Vec::new();
    for _ in 0..3 {
        let executor = PgDb::connect(db.url()).await.unwrap().with_lock_mode(mode);
        let manager = MigrationManager::new(executor, [&MIGRATIONS]).unwrap();
        runners.push(tokio::spawn(async move { manager.up().await }));
    }
    let mut applied = Vec::new();
    for runner in runners {
        applied.push(runner.await.unwrap().expect("runner").applied.len());
    }
    // One runner took the row and applied everything while the others waited; the
    // compare-and-set alone would let them share the steps.
    applied.sort_unstable();
    assert_eq!(applied, [0, 0, 10]);
    assert!(
        db.rows("SELECT holder FROM migrate_schema_versions_lock")
            .await
            .is_empty(),
        "released"
    );

    // A row held by someone else times out with the holder's name.
    db.exec("INSERT INTO migrate_schema_versions_lock (id, holder, acquired_at) VALUES (1, 'pid 4242 elsewhere', 9999999999999999)")
        .await;
    let executor = PgDb::connect(db.url())
        .await
        .unwrap()
        .with_lock_mode(mode)
        .with_lock_timeout(Duration::from_millis(200));
    let manager = MigrationManager::new(executor, [&MIGRATIONS]).unwrap();
    manager
        .down()
        .table("eval")
        .target("2.1.0")
        .await
        .expect("nothing to do needs no lock");
    let err = manager
        .down()
        .table("metrics")
        .target("2.0.0")
        .await
        .expect_err("held");
    assert!(err.to_string().contains("pid 4242 elsewhere"), "{err}");

    // A stale row (its runner crashed long ago) is taken over.
    db.exec("UPDATE migrate_schema_versions_lock SET acquired_at = 0")
        .await;
    manager
        .down()
        .table("metrics")
        .target("2.0.0")
        .await
        .expect("stale lock taken over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_row_held_longer_than_stale_after_is_kept_fresh() {
    use migrate::backend::MigrationBackend;
    let Some(db) = postgres().await else { return };
    let mode = LockMode::Table {
        stale_after: Duration::from_millis(600),
    };
    // A `stale_after` shorter than the heartbeat can keep would let every waiter take a live
    // run's row over: refused when the lock is taken.
    let hasty = PgDb::connect(db.url())
        .await
        .unwrap()
        .with_lock_mode(LockMode::Table {
            stale_after: Duration::from_millis(100),
        });
    match hasty.lock(None).await {
        Err(err @ migrate::Error::Config(_)) => {
            assert!(err.to_string().contains("stale_after of 100ms"), "{err}")
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a stale_after of 100 ms was taken"),
    }
    let first = PgDb::connect(db.url()).await.unwrap().with_lock_mode(mode);
    let second = PgDb::connect(db.url()).await.unwrap().with_lock_mode(mode);
    let held = first.lock(None).await.expect("the first runner's lock");
    // A run alive for three times `stale_after`: the second runner waits, and times out
    // naming the first, instead of taking the row of a runner that is still working.
    let err = match second.lock(Some(Duration::from_millis(1_800))).await {
        Ok(_) => panic!("a live runner's row was taken over"),
        Err(err) => err,
    };
    assert!(matches!(err, migrate::Error::LockTimeout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("pid {}", std::process::id())),
        "{err}"
    );
    held.release().await.expect("release");
    assert!(db
        .rows("SELECT holder FROM migrate_schema_versions_lock")
        .await
        .is_empty());
    second
        .lock(Some(Duration::ZERO))
        .await
        .expect("free again")
        .release()
        .await
        .expect("release");

    // A runner cancelled while taking the row leaves none behind: the armed lock deletes what
    // its `INSERT` may have committed.
    for i in 0..40 {
        let attempt = first.lock(None);
        drop(tokio::time::timeout(Duration::from_micros(100 + 100 * i), attempt).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        db.rows("SELECT holder FROM migrate_schema_versions_lock")
            .await
            .is_empty(),
        "a cancelled attempt left its row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portable_guards_work_on_postgres() {
    let Some(db) = postgres().await else { return };
    db.manager().await.up().await.expect("up");
    // The fixture's portable helpers ran on PostgreSQL: the columns are really there.
    assert!(db.has_column("session", "state").await);
    assert!(db.has_column("memory", "created_at").await);
}

/// A transactional step commits with `COMMIT; BEGIN`, beginning the next step's transaction in
/// the same round trip. When `up` returns, that transaction is ended: no session of the database
/// is left idle in a transaction, and the executor's own connection takes a plain query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_leaves_no_transaction_open() {
    let Some(db) = postgres().await else { return };
    let manager = db.manager().await;
    // session's steps are all transactional: the last one began a transaction ahead.
    let report = manager.up().table("session").await.expect("up");
    assert!(report.applied.len() > 1, "{report:?}");
    let idle_in_transaction = "SELECT COUNT(*) FROM pg_stat_activity \
        WHERE datname = current_database() AND state LIKE 'idle in transaction%'";
    assert_eq!(db.rows(idle_in_transaction).await, ["0"]);
    // A transactional step followed by one that runs outside a transaction (metrics@2.5.0):
    // the transaction begun ahead ends before it, and its index is kept.
    manager.up().await.expect("up the rest");
    assert_eq!(db.rows(idle_in_transaction).await, ["0"]);
    assert_eq!(
        manager.current_version("metrics").await.unwrap(),
        Some(v("2.5.0"))
    );
    let index = db
        .rows("SELECT indexname FROM pg_indexes WHERE indexname = 'idx_metrics_day'")
        .await;
    assert_eq!(index, ["idx_metrics_day"]);
    // Down runs transactional steps one after the other on the same connection too.
    for table in ["memory", "session"] {
        let report = manager.down().table(table).to_base().await.expect("down");
        assert!(report.applied.len() > 1, "{report:?}");
    }
    assert_eq!(db.rows(idle_in_transaction).await, ["0"]);
    assert!(!db.has_table("session").await);
}

/// Runners in the lock-row mode create their schema before they take the lock: several
/// starting at once on a new schema all get it (`CREATE SCHEMA IF NOT EXISTS` is not race-free
/// on PostgreSQL: the losers used to fail on the catalog's unique index).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runners_creating_one_new_schema_at_once_all_go_on() {
    let Some(db) = postgres().await else { return };
    let mode = LockMode::Table {
        stale_after: Duration::from_secs(600),
    };
    for round in 0..6 {
        let schema = format!("new_tenant_{round}");
        let mut runners = Vec::new();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(6));
        for _ in 0..6 {
            let executor = PgDb::connect(db.url())
                .await
                .unwrap()
                .with_schema(&schema)
                .unwrap()
                .with_lock_mode(mode);
            let manager = MigrationManager::new(executor, [&MIGRATIONS]).unwrap();
            // Each with a connection open, then all at once.
            manager.status().await.expect("status");
            let start = start.clone();
            runners.push(tokio::spawn(async move {
                start.wait().await;
                manager.up().await
            }));
        }
        let mut applied = 0;
        for runner in runners {
            applied += runner
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{schema}: {e}"))
                .applied
                .len();
        }
        assert_eq!(applied, 10, "{schema}: every step once");
    }
}

/// A database whose sessions end after a second idle (`idle_session_timeout`): the lock's
/// session, which sends nothing while the steps run, is kept from it, so the run keeps its
/// lock and releases it (the server ended it mid-run before, freeing the lock for another
/// runner, and the release failed the run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lock_session_outlives_an_idle_session_timeout() {
    let Some(db) = postgres().await else { return };
    let database = db
        .url()
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .expect("a database name")
        .to_string();
    db.control("session@2.1.0", "pause").await;
    db.control("session@2.3.0", "pause").await;
    db.exec(&format!(
        "ALTER DATABASE {database} SET idle_session_timeout = '1s'"
    ))
    .await;
    let manager =
        MigrationManager::new(PgDb::connect(db.url()).await.unwrap(), [&MIGRATIONS]).unwrap();
    let report = manager
        .up()
        .table("session")
        .await
        .expect("the run keeps its lock");
    assert_eq!(report.applied.len(), 3);
    db.exec(&format!(
        "ALTER DATABASE {database} RESET idle_session_timeout"
    ))
    .await;
    db.clear_control().await;
}

/// A lock row taken over while its run goes on (another runner found it stale: this process
/// stalled, or the clocks disagree) is said in the log, by the heartbeat and at release: the run
/// no longer keeps the other out. Both were silent.
#[cfg(feature = "cli")]
#[tokio::test]
async fn a_lock_row_taken_over_is_said_in_the_log() {
    use migrate::backend::MigrationBackend;
    let Some(db) = postgres().await else { return };
    let (log, _guard) = crate::harness::capture(tracing::Level::WARN);
    let mode = LockMode::Table {
        stale_after: Duration::from_millis(400),
    };
    let executor = PgDb::connect(db.url()).await.unwrap().with_lock_mode(mode);
    let held = executor.lock(None).await.expect("the lock");
    db.exec("UPDATE migrate_schema_versions_lock SET holder = 'pid 4242 elsewhere'")
        .await;
    // The heartbeat beats every 100 ms (a quarter of `stale_after`).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        log.text()
            .contains("the lock row is not this run's any more"),
        "the heartbeat: {}",
        log.text()
    );
    held.release().await.expect("release");
    assert!(
        log.text()
            .contains("the lock row was not this run's when the run released it"),
        "the release: {}",
        log.text()
    );
    assert_eq!(
        db.rows("SELECT holder FROM migrate_schema_versions_lock")
            .await,
        ["pid 4242 elsewhere"],
        "the other runner's row is left alone"
    );
}

/// The lock's session ended by the server while the steps run (an administrator's
/// `pg_terminate_backend`, a balancer dropping an idle connection): the steps committed, each
/// under its compare-and-set, so the run answers its report, and the failed release is said in
/// the log (it answered a bare driver error, and the report of what was applied was lost).
#[cfg(feature = "cli")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_lock_session_ended_still_answers_its_report() {
    let Some(db) = postgres().await else { return };
    let (log, _guard) = crate::harness::capture(tracing::Level::WARN);
    db.control("session@2.1.0", "pause").await;
    db.control("session@2.3.0", "pause").await;
    let manager =
        MigrationManager::new(PgDb::connect(db.url()).await.unwrap(), [&MIGRATIONS]).unwrap();
    // The advisory lock's session, ended while the first step sleeps (in this task: the log
    // is captured on this thread).
    let end_the_lock_session = async {
        for _ in 0..150 {
            let ended = db
                .rows(
                    "SELECT pg_terminate_backend(pid, 5000)::text FROM pg_locks \
                     WHERE locktype = 'advisory' AND database = \
                     (SELECT oid FROM pg_database WHERE datname = current_database())",
                )
                .await;
            if !ended.is_empty() {
                return ended;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Vec::new()
    };
    let (report, ended) = tokio::join!(
        async { manager.up().table("session").await },
        end_the_lock_session
    );
    assert_eq!(ended, ["true"], "the lock's session was found and ended");
    let report = report.expect("the steps committed: the report, not the release's error");
    assert_eq!(report.applied.len(), 3, "{report:?}");
    assert!(
        log.text()
            .contains("the run lock's session ended during the run"),
        "the release's failure is in the log: {}",
        log.text()
    );
    db.clear_control().await;
}
