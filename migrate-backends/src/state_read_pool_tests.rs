//! The state read of an executor on a pool passed in (`from_pool`): the check-out and read it
//! begins, what it leaves the pool's owner, and the wal-index its first read confirms.

use super::*;
use std::str::FromStr;

/// A pool of `options`' connections (two, as a service's pool has more than one), with
/// sqlx's default acquire timeout.
async fn pool_of(options: sqlx::sqlite::SqliteConnectOptions) -> sqlx::SqlitePool {
    pool_waiting(2, 30, options).await
}

/// A pool of `max` connections to `options`' database, whose check-outs give up after
/// `seconds`: a test that expects one to be served fails in that time instead of waiting for
/// sqlx's default of thirty.
async fn pool_waiting(
    max: u32,
    seconds: u64,
    options: sqlx::sqlite::SqliteConnectOptions,
) -> sqlx::SqlitePool {
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(seconds))
        .connect_with(options)
        .await
        .expect("a pool")
}

/// A pool of two connections to the file at `path` ([`pool_waiting`] for `seconds`), and both
/// connections, checked out.
async fn both_connections_out(
    path: &std::path::Path,
    seconds: u64,
) -> (sqlx::SqlitePool, (PoolConnection, PoolConnection)) {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let pool = pool_waiting(2, seconds, options).await;
    let both = (
        pool.acquire().await.expect("a connection"),
        pool.acquire().await.expect("another"),
    );
    (pool, both)
}

type PoolConnection = sqlx::pool::PoolConnection<sqlx::Sqlite>;

/// A pool passed in begins its first read at `from_pool` (the check-out, and the read once a
/// poll finds the pool's ping answered: often the first call's, sometimes `from_pool`'s own
/// when SQLite's thread answers at once). That read confirms where the wal-index is, keeps its
/// rows with the stamp taken before it, and the reads after it take them without a word to
/// the connection until another connection commits.
#[cfg(unix)]
#[tokio::test]
async fn a_pool_passed_in_confirms_its_wal_index_at_its_first_read() {
    let (_database, path) = fresh_file().await;
    let other = with_one_state_row(&path).await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let pool = pool_of(options).await;
    assert_eq!(pool.num_idle(), 1, "the pool opened one connection");
    let db = SqliteDb::from_pool(pool.clone());
    assert_eq!(pool.num_idle(), 0, "its check-out begun");
    assert!(db.wal_index.is_some(), "the pool's options are trusted");
    let rows = db.read_state().await.expect("the first read");
    assert_eq!(rows[0].version.as_deref(), Some("1.0.0"), "{rows:?}");
    let stamp = db.wal_stamp().expect("confirmed by the first read");

    let mut conn = db.held.take(&db.pool).await.expect("the kept connection");
    let mut cache = conn.take_state_cache().expect("the first read's rows");
    let kept = cache.rows.as_mut().expect("rows");
    assert_eq!(
        kept.stamp,
        Some(stamp),
        "kept with the stamp taken before the read"
    );
    assert!(kept.data_version.is_some(), "and with the data version");
    read_doctored(&db, conn, cache).await;
    sees_a_commit_by(&other, &db).await;
}

/// A pool of one connection passed in starts nothing: the caller can take that connection
/// for itself before the first call, which then reads as usual. Nor does a pool passed in
/// outside a Tokio runtime.
#[tokio::test]
async fn a_pool_of_one_connection_or_outside_a_runtime_starts_nothing() {
    let (_database, path) = fresh_file().await;
    let _setup = with_one_state_row(&path).await;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(&path);
    let pool = pool_waiting(1, 5, options.clone()).await;
    let db = SqliteDb::from_pool(pool.clone());
    assert_eq!(pool.num_idle(), 1, "the pool's one connection left alone");
    let own = pool.acquire().await.expect("the caller's own check-out");
    drop(own);
    assert_eq!(db.read_state().await.expect("read").len(), 1);

    let pool = pool_of(options).await;
    let outside = pool.clone();
    let db = std::thread::spawn(move || SqliteDb::from_pool(outside))
        .join()
        .expect("from_pool outside a runtime");
    assert_eq!(pool.num_idle(), 1, "nothing begun outside a runtime");
    assert_eq!(db.read_state().await.expect("read").len(), 1);
}

/// A pool with every connection busy when it is passed in: nothing is begun (a check-out
/// would queue for the next free connection ahead of the owner), and should one be left
/// waiting all the same it is finished and gives its connection back. Either way the owner,
/// once it gives its connections back, can take them all again, and the first call reads.
#[tokio::test]
async fn a_pool_with_no_idle_connection_leaves_the_owner_every_connection() {
    let (_database, path) = fresh_file().await;
    let _setup = with_one_state_row(&path).await;
    let (pool, busy) = both_connections_out(&path, 5).await;
    let db = SqliteDb::from_pool(pool.clone());
    drop(busy);
    let both = (
        pool.acquire().await.expect("the owner's first again"),
        pool.acquire().await.expect("and its second"),
    );
    drop(both);
    let rows = db
        .read_state()
        .await
        .expect("the first call checks out its own");
    assert_eq!(rows[0].version.as_deref(), Some("1.0.0"), "{rows:?}");
}

/// A connection the pool counts idle may be promised to a task it woke that has not run yet:
/// a check-out begun then waits, and would be served the next connection freed ahead of the
/// pool's owner. It is not kept waiting: the woken task gets its connection, and then the
/// owner can take every connection again. The woken task runs on a runtime of its own, whose
/// thread is held until `from_pool` returned, which keeps the promise unkept meanwhile.
#[tokio::test]
async fn a_connection_promised_to_a_woken_task_is_not_waited_for() {
    let (_database, path) = fresh_file().await;
    let _setup = with_one_state_row(&path).await;
    let (pool, (owners, freed)) = both_connections_out(&path, 3).await;
    let (queued_tx, queued) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel::<()>();
    let waiting_pool = pool.clone();
    let woken = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let mut acquire = Box::pin(waiting_pool.acquire());
            let waits = std::future::poll_fn(|cx| {
                let polled = std::future::Future::poll(acquire.as_mut(), cx);
                std::task::Poll::Ready(polled.is_pending())
            })
            .await;
            assert!(waits, "every connection is out: the task waits");
            queued_tx.send(()).expect("queued");
            // Held here: woken, the task cannot run until `go`.
            go_rx.recv().expect("go");
            drop(acquire.await.expect("the woken task's connection"));
        });
    });
    queued.recv().expect("the task waits for a connection");
    drop(freed);
    until_one_idle(&pool, "the freed connection, promised to the task").await;
    let db = SqliteDb::from_pool(pool.clone());
    go.send(()).expect("go");
    woken.join().expect("the woken task got its connection");
    drop(owners);
    let every = (
        pool.acquire().await.expect("the owner's first again"),
        pool.acquire()
            .await
            .expect("and its second: no check-out waits for it"),
    );
    drop(every);
    assert_eq!(db.read_state().await.expect("read").len(), 1);
}

/// Waits (at most ten seconds) until `pool` has one idle connection; `what` names it.
async fn until_one_idle(pool: &sqlx::SqlitePool, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while pool.num_idle() != 1 {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// An executor dropped before its first call finishes the check-out it began, and the
/// connection goes back to the pool rather than being closed: the last connection of a shared
/// in-memory database, closed, would take the database with it.
#[tokio::test]
async fn an_unused_executor_gives_the_connection_it_began_to_check_out_back() {
    use sqlx::Executor;
    let memory = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite::memory:");
    let pool = pool_waiting(2, 5, memory.expect("in-memory options")).await;
    pool.execute("CREATE TABLE kept (x INTEGER); INSERT INTO kept VALUES (7)")
        .await
        .expect("the owner's table");
    // The owner's connection comes back from its statement in a task of sqlx's.
    until_one_idle(&pool, "the owner's connection").await;
    let db = SqliteDb::from_pool(pool.clone());
    assert_eq!(pool.num_idle(), 0, "its check-out begun");
    drop(db);
    until_one_idle(&pool, "the connection did not come back").await;
    assert_eq!(pool.size(), 1, "the same connection, not a new one");
    let x: i64 = sqlx::query_scalar("SELECT x FROM kept")
        .fetch_one(&pool)
        .await
        .expect("the owner's table is still there");
    assert_eq!(x, 7);
}

/// A pool whose options open the database read-only, immutable, in memory or through a VFS
/// of their choosing gets no wal-index, as a URL saying so does.
#[tokio::test]
async fn a_pool_passed_in_opening_the_database_its_own_way_has_no_wal_index() {
    use sqlx::sqlite::SqliteConnectOptions;
    let (_database, path) = fresh_file().await;
    let _setup = with_one_state_row(&path).await;
    let file = || SqliteConnectOptions::new().filename(&path);
    let untrusted = [
        ("read-only", file().read_only(true)),
        ("immutable", file().immutable(true)),
        ("a VFS named", file().vfs("unix")),
        ("in memory", file().in_memory(true)),
    ];
    for (what, options) in untrusted {
        let db = SqliteDb::from_pool(pool_of(options).await);
        assert!(db.wal_index.is_none(), "{what}: a wal-index");
        // Read by the data version; an immutable connection does not look at the WAL, and
        // an in-memory database is empty: what they hold is theirs to say.
        let read = db.read_state().await;
        assert!(read.is_ok(), "{what}: {read:?}");
    }
    let db = SqliteDb::from_pool(pool_of(file()).await);
    assert_eq!(db.wal_index.is_some(), cfg!(unix), "a file opened as usual");
}

/// A pool that keeps its database in rollback-journal mode: its first read confirms no
/// wal-index, and the data version still tells a commit by another connection.
#[tokio::test]
async fn a_pool_passed_in_outside_wal_mode_reads_by_the_data_version() {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    let (_database, path) = fresh_file().await;
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .journal_mode(SqliteJournalMode::Delete);
    let pool = pool_of(options).await;
    let setup = one_state_row(SqliteDb::from_pool(pool.clone())).await;
    let db = SqliteDb::from_pool(pool);
    assert_eq!(db.read_state().await.expect("read").len(), 1);
    assert_eq!(
        db.wal_stamp(),
        None,
        "confirmed outside WAL mode: no stamps"
    );
    let index = db.wal_index.as_deref();
    assert!(index.is_none_or(|index| !index.to_confirm()), "asked once");
    sees_a_commit_by(&setup, &db).await;
}

/// A pool whose connections lock the database exclusively from the start, which keeps its
/// wal-index in memory and leaves a file at the guessed name alone: the first read asks the
/// locking mode, and never confirms.
#[cfg(unix)]
#[tokio::test]
async fn a_pool_passed_in_locking_exclusively_confirms_no_wal_index() {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteLockingMode};
    let (_database, path) = fresh_file().await;
    // Kept open: its wal-index stays linked, to be copied.
    let _setup = with_one_state_row(&path).await;
    let exclusive = path.with_extension("exclusive.db");
    std::fs::File::create(&exclusive).expect("the database file");
    std::fs::copy(
        format!("{}-shm", path.display()),
        format!("{}-shm", exclusive.display()),
    )
    .expect("a wal-index at the guessed name");
    let options = SqliteConnectOptions::new()
        .filename(&exclusive)
        .locking_mode(SqliteLockingMode::Exclusive)
        .journal_mode(SqliteJournalMode::Wal);
    // One connection: a second one could not read past the first one's lock.
    let pool = pool_waiting(1, 30, options).await;
    let db = SqliteDb::from_pool(pool);
    let index = db.wal_index.clone().expect("the options alone are trusted");
    assert!(
        index.stamp_unconfirmed().is_some(),
        "the copy reads as a wal-index"
    );
    assert!(db.read_state().await.expect("read").is_empty());
    assert!(!index.to_confirm(), "the first read asked");
    assert_eq!(db.wal_stamp(), None, "locked exclusively: never trusted");
}
