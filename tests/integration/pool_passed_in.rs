//! A pool passed in (`from_pool`): the executor begins the check-out of the connection its
//! first call uses, and leaves the pool's other connections to its owner.

use crate::harness::{each_backend, TestDb};
use migrate::backend::MigrationBackend;
use migrate::testing::Backend;
use migrate::MigrationManager;
use std::time::Duration;

/// A pool of the test's own, as a service builds it.
enum OwnPool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
    MySql(sqlx::MySqlPool),
}

/// `$options` for `$url` with `$max` connections and an acquire timeout short enough that a
/// check-out the pool cannot serve fails the test instead of stalling it.
macro_rules! own_pool {
    ($options:ty, $url:expr, $max:expr) => {
        <$options>::new()
            .max_connections($max)
            .acquire_timeout(Duration::from_secs(5))
            .connect($url)
            .await
            .expect("the test's pool")
    };
}

impl OwnPool {
    async fn of(db: &TestDb, max: u32) -> OwnPool {
        let url = db.url();
        match db.backend() {
            Backend::Sqlite => {
                OwnPool::Sqlite(own_pool!(sqlx::sqlite::SqlitePoolOptions, url, max))
            }
            Backend::Postgres => {
                OwnPool::Postgres(own_pool!(sqlx::postgres::PgPoolOptions, url, max))
            }
            Backend::MySql => OwnPool::MySql(own_pool!(sqlx::mysql::MySqlPoolOptions, url, max)),
        }
    }

    fn num_idle(&self) -> usize {
        match self {
            OwnPool::Sqlite(pool) => pool.num_idle(),
            OwnPool::Postgres(pool) => pool.num_idle(),
            OwnPool::MySql(pool) => pool.num_idle(),
        }
    }

    fn size(&self) -> u32 {
        match self {
            OwnPool::Sqlite(pool) => pool.size(),
            OwnPool::Postgres(pool) => pool.size(),
            OwnPool::MySql(pool) => pool.size(),
        }
    }

    /// Waits (at most ten seconds) until one connection is idle; `what` names it.
    async fn until_one_idle(&self, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.num_idle() != 1 {
            assert!(std::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// One of the pool's connections, held by the owner until the box is dropped.
    async fn hold(&self) -> Box<dyn std::any::Any + Send> {
        match self {
            OwnPool::Sqlite(pool) => Box::new(pool.acquire().await.expect("a connection")),
            OwnPool::Postgres(pool) => Box::new(pool.acquire().await.expect("a connection")),
            OwnPool::MySql(pool) => Box::new(pool.acquire().await.expect("a connection")),
        }
    }

    /// The executor on this pool, through `from_pool`.
    fn executor(&self) -> Box<dyn MigrationBackend> {
        match self {
            OwnPool::Sqlite(pool) => Box::new(migrate::sqlite::SqliteDb::from_pool(pool.clone())),
            OwnPool::Postgres(pool) => Box::new(migrate::postgres::PgDb::from_pool(pool.clone())),
            OwnPool::MySql(pool) => Box::new(migrate::mysql::MySqlDb::from_pool(pool.clone())),
        }
    }

    /// The owner's own query through the pool, which must get a connection.
    async fn owners_query(&self) -> i64 {
        let one = "SELECT 1";
        match self {
            OwnPool::Sqlite(pool) => sqlx::query_scalar(one).fetch_one(pool).await,
            OwnPool::Postgres(pool) => sqlx::query_scalar::<_, i32>(one)
                .fetch_one(pool)
                .await
                .map(i64::from),
            OwnPool::MySql(pool) => sqlx::query_scalar(one).fetch_one(pool).await,
        }
        .expect("the owner's query gets a connection")
    }
}

each_backend! {
    async fn a_pool_passed_in_begins_the_first_calls_check_out(db) {
        let pool = OwnPool::of(&db, 3).await;
        assert_eq!(pool.num_idle(), 1, "the pool opened one connection");
        let manager = MigrationManager::new(pool.executor(), [&crate::MIGRATIONS]).expect("graph");
        assert_eq!(pool.num_idle(), 0, "the check-out begun took the idle connection");
        assert_eq!(pool.owners_query().await, 1);
        let report = manager.up().await.expect("up");
        assert_eq!(report.applied.len(), 10, "{report:?}");
        assert!(manager.up().await.expect("again").applied.is_empty());
    }

    async fn an_unused_executor_gives_the_connection_it_began_to_check_out_back(db) {
        let pool = OwnPool::of(&db, 3).await;
        let executor = pool.executor();
        assert_eq!(pool.num_idle(), 0, "its check-out begun");
        drop(executor);
        pool.until_one_idle("the connection did not come back").await;
        assert_eq!(pool.size(), 1, "the same connection, not a new one");
    }

    async fn a_server_pool_of_one_connection_is_refused_at_the_lock_naming_the_pool(db) {
        if db.backend() == Backend::Sqlite {
            return;
        }
        // The executor keeps the only connection after its state read; the lock waited the
        // pool's acquire timeout for a second and failed with "pool timed out".
        let pool = OwnPool::of(&db, 1).await;
        let manager = MigrationManager::new(pool.executor(), [&crate::MIGRATIONS]).expect("graph");
        let started = std::time::Instant::now();
        let err = manager.up().await.expect_err("one connection");
        assert!(
            matches!(err, migrate::Error::Config(_)) && err.to_string().contains("max_connections(2)"),
            "{err}"
        );
        assert!(started.elapsed() < Duration::from_secs(4), "waited {:?}", started.elapsed());
        assert!(manager.status().await.expect("status").iter().all(|s| s.current.is_none()));
    }

    async fn a_pool_with_every_connection_busy_begins_nothing(db) {
        let pool = OwnPool::of(&db, 2).await;
        let (owners, other) = (pool.hold().await, pool.hold().await);
        drop(other);
        pool.until_one_idle("the owner's second connection").await;
        let first = pool.executor();
        assert_eq!(pool.num_idle(), 0, "the first executor's check-out begun");
        // Both connections are out: a check-out begun now would queue for the next one free.
        let second = pool.executor();
        drop(first);
        pool.until_one_idle("the first executor's connection did not come back").await;
        assert_eq!(pool.owners_query().await, 1, "the connection freed is the owner's to take");
        drop((second, owners));
    }
}

/// A SQLite pool of one connection passed in begins nothing: its owner can use the connection
/// until the first call (the servers' executors need a second one for the run lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_pool_of_one_connection_passed_in_is_left_to_its_owner_until_the_first_call() {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .expect("SQLite is never skipped");
    let pool = OwnPool::of(&db, 1).await;
    let manager = MigrationManager::new(pool.executor(), [&crate::MIGRATIONS]).expect("graph");
    assert_eq!(pool.num_idle(), 1, "nothing begun");
    assert_eq!(pool.owners_query().await, 1);
    let report = manager.up().await.expect("up");
    assert_eq!(report.applied.len(), 10, "{report:?}");
}

/// A check-out begun by `from_pool` runs out of time from its first poll there. Its
/// connection's session ended before (`pg_terminate_backend`), so the pool's test fails and it
/// must open another, which the first call, made after the pool's acquire timeout, finds
/// too late: that call checks a connection out itself and answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_out_begun_ahead_that_ran_out_of_time_leaves_the_call_its_own() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_millis(500))
        .connect(db.url())
        .await
        .expect("the test's pool");
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .expect("the idle connection's backend");
    let own = OwnPool::Postgres(pool.clone());
    own.until_one_idle("the connection back from the query")
        .await;
    let mut other = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
        .await
        .expect("another session");
    let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut other)
        .await
        .expect("terminate");
    assert!(ended, "the idle connection's session ended");
    let manager = MigrationManager::new(
        migrate::postgres::PgDb::from_pool(pool.clone()),
        [&crate::MIGRATIONS],
    )
    .expect("graph");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let report = manager
        .up()
        .await
        .expect("the first call checks out its own");
    assert_eq!(report.applied.len(), 10, "{report:?}");
}
