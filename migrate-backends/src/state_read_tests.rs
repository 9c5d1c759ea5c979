//! SQLite's state read started at connect, its wal-index stamps and its data version, against
//! real database files.

use crate::held::{Held, StateCache};
use crate::sqlite::SqliteDb;
use crate::testing::{Backend, TestDatabase};
use migrate_core::backend::MigrationBackend;
use std::sync::Arc;
use std::time::Duration;

/// A fresh SQLite file (removed when the `TestDatabase` is dropped), and its path.
async fn fresh_file() -> (TestDatabase, std::path::PathBuf) {
    let database = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("a SQLite file")
        .expect("SQLite is never skipped");
    let path = database.sqlite_path().expect("a SQLite path");
    (database, path)
}

/// The tracking tables and one state row, `app.session` at 1.0.0, made through an executor
/// of their own (kept open: its connection is "another connection" to the one under test).
async fn with_one_state_row(path: &std::path::Path) -> SqliteDb {
    one_state_row(SqliteDb::open(path).await.expect("open")).await
}

/// [`with_one_state_row`] through `setup`, with the tracking tables it names.
async fn one_state_row(setup: SqliteDb) -> SqliteDb {
    setup.prepare().await.expect("tracking tables");
    let state = setup.set_state("app", "session", Some("1.0.0"), Some("c1"));
    state.await.expect("a state row");
    setup
}

/// The executor's kept connection, once the read started at connect has ended, and what
/// that read left with it.
async fn read_at_connect(db: &SqliteDb) -> (Held<'_, sqlx::Sqlite>, StateCache) {
    let mut conn = db.held.take(&db.pool).await.expect("the kept connection");
    let cache = conn
        .take_state_cache()
        .expect("the read started at connect");
    (conn, cache)
}

/// `other` moves `app.session` to 2.0.0, and `db`'s next read must say so.
async fn sees_a_commit_by(other: &SqliteDb, db: &SqliteDb) {
    let moved = other.set_state("app", "session", Some("2.0.0"), Some("c2"));
    moved.await.expect("another connection commits");
    let rows = db.read_state().await.expect("read");
    assert_eq!(rows[0].version.as_deref(), Some("2.0.0"), "{rows:?}");
}

/// Keeps `cache` on `conn` with its first row moved to 9.9.9 and no data version: rows the
/// database does not hold, which only the wal-index stamp can vouch for, so that the
/// executor's next read returning them proves that it read nothing. Returns that read.
async fn read_doctored(
    db: &SqliteDb,
    mut conn: Held<'_, sqlx::Sqlite>,
    mut cache: StateCache,
) -> Arc<[migrate_core::backend::StateRow]> {
    let kept = cache.rows.as_mut().expect("rows");
    let mut doctored = kept.rows.to_vec();
    doctored[0].version = Some("9.9.9".to_string());
    kept.rows = doctored.into();
    kept.data_version = None;
    conn.keep_state_cache(cache);
    conn.keep();
    let rows = db.read_state().await.expect("read");
    assert_eq!(rows[0].version.as_deref(), Some("9.9.9"), "{rows:?}");
    rows
}

#[tokio::test]
async fn a_sqlite_executor_starts_its_first_state_read_when_it_connects() {
    let (_database, path) = fresh_file().await;
    let _setup = with_one_state_row(&path).await;
    let db = SqliteDb::open(&path).await.expect("open again");
    let (mut conn, cache) = read_at_connect(&db).await;
    let kept = cache.rows.expect("rows kept with their data version");
    assert_eq!(*cache.query, *db.sql.read_state);
    assert_eq!(kept.rows.len(), 1, "{:?}", kept.rows);
    assert_eq!(kept.rows[0].version.as_deref(), Some("1.0.0"));
    let now: i64 = sqlx::query_scalar("PRAGMA data_version")
        .fetch_one(&mut *conn)
        .await
        .expect("data version");
    assert_eq!(kept.data_version, Some(now));
    assert_eq!(
        kept.stamp.is_some(),
        cfg!(unix),
        "the wal-index header taken"
    );
    assert_eq!(kept.stamp, db.wal_stamp());
}

#[tokio::test]
#[cfg(unix)]
async fn every_commit_changes_the_wal_stamp_and_a_read_does_not() {
    let (_database, path) = fresh_file().await;
    let other = with_one_state_row(&path).await;
    let db = SqliteDb::open(&path).await.expect("open again");
    // The read started at connect confirms where the wal-index is.
    assert_eq!(db.read_state().await.expect("read").len(), 1);
    let first = db.wal_stamp().expect("a wal-index header");
    assert_eq!(db.read_state().await.expect("read").len(), 1);
    assert_eq!(db.wal_stamp(), Some(first), "a read changed the stamp");
    let moved = other.set_state("app", "session", Some("2.0.0"), Some("c2"));
    moved.await.expect("another connection commits");
    let second = db.wal_stamp().expect("a wal-index header");
    assert_ne!(second, first, "another connection's commit");
    let moved = db.set_state("app", "session", Some("3.0.0"), Some("c3"));
    moved.await.expect("the executor's own connection commits");
    assert_ne!(db.wal_stamp(), Some(second), "the connection's own commit");
}

#[tokio::test]
#[cfg(unix)]
async fn kept_rows_are_taken_without_a_read_while_the_wal_stamp_holds() {
    let (_database, path) = fresh_file().await;
    let other = with_one_state_row(&path).await;
    let db = SqliteDb::open(&path).await.expect("open again");
    let (conn, cache) = read_at_connect(&db).await;
    let rows = read_doctored(&db, conn, cache).await;
    // Taken again, they are the same rows, shared, not a copy.
    let again = db.read_state().await.expect("read");
    assert!(Arc::ptr_eq(&rows, &again), "copied: {again:?}");
    sees_a_commit_by(&other, &db).await;
}

#[tokio::test]
async fn a_tracking_table_given_at_connect_is_the_one_read_at_connect() {
    let (_database, path) = fresh_file().await;
    let setup = SqliteDb::open(&path).await.expect("open");
    let custom = setup
        .with_tracking_table("custom_tracking")
        .expect("a name");
    let _setup = one_state_row(custom).await;
    let url = format!("sqlite://{}", path.display());
    let db = SqliteDb::connect_tracking(&url, Some("custom_tracking"), None)
        .await
        .expect("connect");
    let (conn, cache) = read_at_connect(&db).await;
    assert_eq!(*cache.query, *db.sql.read_state);
    assert!(cache.query.contains("custom_tracking"), "{}", cache.query);
    let kept = cache.rows.expect("rows");
    assert_eq!(kept.rows[0].version.as_deref(), Some("1.0.0"));
    drop(conn);
    let too_long = "t".repeat(200);
    let refused = SqliteDb::connect_tracking(&url, Some(&too_long), None).await;
    assert!(refused.is_err(), "a name longer than an identifier");
}

#[tokio::test]
async fn a_first_read_that_finds_no_state_table_leaves_nothing() {
    let (_database, path) = fresh_file().await;
    let db = SqliteDb::open(&path).await.expect("open");
    let mut conn = db.held.take(&db.pool).await.expect("the kept connection");
    assert!(conn.take_state_cache().is_none());
    drop(conn);
    assert!(db.read_state().await.expect("read").is_empty());
}

#[tokio::test]
async fn rows_read_at_connect_give_way_to_a_commit_made_after_them() {
    rows_give_way_to_a_commit(true).await;
}

#[tokio::test]
async fn without_a_wal_index_the_data_version_tells_kept_rows_out_of_date() {
    rows_give_way_to_a_commit(false).await;
}

/// Rows read at connect, then another connection's commit: the next read must see it,
/// told by the wal-index header, or by the data version alone (`with_wal_index` false).
async fn rows_give_way_to_a_commit(with_wal_index: bool) {
    let (_database, path) = fresh_file().await;
    let setup = with_one_state_row(&path).await;
    let mut db = SqliteDb::open(&path).await.expect("open again");
    if !with_wal_index {
        db.wal_index = None;
    }
    // The read started at connect has ended (taking the connection waits for it), and its
    // rows are kept with the connection as a state read leaves them.
    let (mut conn, cache) = read_at_connect(&db).await;
    conn.keep_state_cache(cache);
    conn.keep();
    sees_a_commit_by(&setup, &db).await;
}

#[tokio::test]
async fn a_lock_timeout_set_after_connect_keeps_the_read_and_reaches_its_connection() {
    let (_database, path) = fresh_file().await;
    let _setup = with_one_state_row(&path).await;
    let db = SqliteDb::open(&path)
        .await
        .expect("open again")
        .with_lock_timeout(Duration::from_millis(1_234));
    let (mut conn, _) = read_at_connect(&db).await;
    assert_eq!(busy_timeout_of(&mut conn).await, 1_234);
}

/// A lock timeout given at connect (`migrate::connect_with`) is the busy timeout every
/// connection opens with: the read started at connect ends without a statement to set it
/// (one hand-off to SQLite's thread fewer in the first check), and no connection handed out
/// is told it again.
#[tokio::test]
async fn a_lock_timeout_given_at_connect_opens_every_connection_with_it() {
    let (_database, path) = fresh_file().await;
    let _setup = with_one_state_row(&path).await;
    let url = format!("sqlite://{}", path.display());
    let timeout = Duration::from_millis(1_234);
    let options = crate::connect::ConnectOptions::new().lock_timeout(timeout);
    let db = crate::connect::sqlite_with(&url, &options)
        .await
        .expect("connect");
    assert_eq!(db.lock_timeout(), timeout);
    let busy_ms = db
        .lock
        .busy_ms
        .as_ref()
        .expect("a SQLite executor's busy timeout");
    assert_eq!(
        busy_ms.load(std::sync::atomic::Ordering::Relaxed),
        crate::sqlite::BUSY_AS_OPENED,
        "nothing to tell the connections as they are handed out"
    );
    let (mut kept, cache) = read_at_connect(&db).await;
    assert!(
        cache.rows.is_some(),
        "the read started at connect has its rows"
    );
    assert_eq!(busy_timeout_of(&mut kept).await, 1_234);
    let mut other = db
        .pool()
        .acquire()
        .await
        .expect("the pool's other connection");
    assert_eq!(busy_timeout_of(&mut other).await, 1_234);
    // Past what SQLite takes, clamped as a later `with_lock_timeout` is.
    let options = crate::connect::ConnectOptions::new().lock_timeout(Duration::MAX);
    let db = crate::connect::sqlite_with(&url, &options)
        .await
        .expect("connect with no limit");
    let (mut kept, _) = read_at_connect(&db).await;
    let most = i64::try_from(crate::sqlite::millis(Duration::MAX)).expect("fits");
    assert_eq!(busy_timeout_of(&mut kept).await, most);
}

async fn busy_timeout_of(conn: &mut sqlx::SqliteConnection) -> i64 {
    sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(conn)
        .await
        .expect("busy timeout")
}

#[tokio::test]
async fn a_lock_timeout_set_back_to_the_default_reaches_a_connection_that_had_another() {
    let (_database, path) = fresh_file().await;
    let db = SqliteDb::open(&path)
        .await
        .expect("open")
        .with_lock_timeout(Duration::from_millis(1_234));
    let busy_timeout = |db: &SqliteDb| {
        let pool = db.pool().clone();
        async move {
            // The executor keeps its first connection for the read started at connect: the
            // pool's other one is the one handed out here, every time.
            let mut conn = pool.acquire().await.expect("a connection");
            busy_timeout_of(&mut conn).await
        }
    };
    assert_eq!(busy_timeout(&db).await, 1_234);
    let db = db.with_lock_timeout(crate::sqlx_db::DEFAULT_LOCK_TIMEOUT);
    let default =
        i64::try_from(crate::sqlite::millis(crate::sqlx_db::DEFAULT_LOCK_TIMEOUT)).expect("fits");
    assert_eq!(busy_timeout(&db).await, default);
}

/// What [`super::read_ahead`] leaves on a connection of a one-connection pool to `path`, on
/// which `setup` ran first, with the wal-index guessed for `path`.
async fn read_ahead_on(
    path: &std::path::Path,
    setup: &str,
    query: &str,
) -> (Option<StateCache>, Arc<crate::wal_index::WalIndex>) {
    use sqlx::Executor;
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    let mut conn = pool.acquire().await.expect("the connection");
    conn.execute(sqlx::AssertSqlSafe(setup.to_string()))
        .await
        .expect("setup");
    let index = Arc::new(crate::wal_index::WalIndex::guessed(path).expect("a wal-index"));
    let busy_ms = Arc::new(std::sync::atomic::AtomicU64::new(
        crate::sqlite::BUSY_AS_OPENED,
    ));
    let (_conn, state) = super::read_ahead(conn, query.into(), busy_ms, Some(index.clone()))
        .await
        .expect("the read holds its connection");
    (state, index)
}

/// The wal-index is confirmed for the main database, found by name among a temporary and an
/// attached one; never for a database outside WAL mode, even with a wal-index at its guessed
/// name; and still when the state table is missing (the rows then keep nothing).
#[cfg(unix)]
#[tokio::test]
async fn the_confirmation_takes_main_by_name_and_only_in_wal_mode() {
    let (_database, path) = fresh_file().await;
    // Kept open: the main database's wal-index stays linked.
    let setup = with_one_state_row(&path).await;
    let query = setup.sql.read_state.clone();

    // Main among a temporary database and an attached one in WAL mode, listed after it.
    let aux = path.with_extension("aux.db");
    let attach = format!(
        "ATTACH '{}' AS aux; PRAGMA aux.journal_mode = wal; CREATE TABLE aux.t (x); \
         CREATE TEMP TABLE t (x)",
        aux.display()
    );
    let (cache, index) = read_ahead_on(&path, &attach, &query).await;
    let stamp = cache.expect("the rows kept").rows.expect("rows").stamp;
    assert!(stamp.is_some(), "main's wal-index, not aux's");
    assert_eq!(stamp, index.stamp(), "confirmed");

    // The state table missing: nothing kept, and the wal-index still confirmed.
    let (cache, index) = read_ahead_on(&path, "SELECT 1", "SELECT x FROM no_such_table").await;
    assert!(cache.is_none());
    assert!(index.stamp().is_some(), "confirmed without the rows");

    // A database in rollback-journal mode, with a copy of a real wal-index at its guessed
    // name: never confirmed.
    let plain = path.with_extension("plain.db");
    // An empty file is an empty database, in rollback-journal mode until told otherwise.
    std::fs::File::create(&plain).expect("the database file");
    std::fs::copy(
        format!("{}-shm", path.display()),
        format!("{}-shm", plain.display()),
    )
    .expect("a wal-index at the guessed name");
    assert!(
        crate::wal_index::WalIndex::guessed(&plain)
            .and_then(|index| index.stamp_unconfirmed())
            .is_some(),
        "the copy reads as a wal-index"
    );
    let (cache, index) = read_ahead_on(&plain, "PRAGMA journal_mode = DELETE", "SELECT '[]'").await;
    assert_eq!(cache.expect("rows").rows.expect("rows").stamp, None);
    assert!(index.stamp().is_none(), "not in WAL mode: never trusted");
}

/// An executor whose wal-index no connection has answered for yet (a read at connect that
/// failed before its first row), with a note of a read that kept no rows on its connection
/// (what a failed confirmation leaves): its next read confirms the wal-index.
#[cfg(unix)]
#[tokio::test]
async fn an_unasked_wal_index_is_confirmed_by_the_next_read() {
    let (_database, path) = fresh_file().await;
    let _setup = with_one_state_row(&path).await;
    let mut db = SqliteDb::open(&path).await.expect("open again");
    let index = Arc::new(crate::wal_index::WalIndex::guessed(&path).expect("a wal-index"));
    db.wal_index = Some(index.clone());
    assert!(index.to_confirm());
    let (mut conn, cache) = read_at_connect(&db).await;
    conn.keep_state_cache(StateCache {
        query: cache.query,
        rows: None,
    });
    conn.keep();
    assert_eq!(db.read_state().await.expect("read").len(), 1);
    assert!(!index.to_confirm(), "the read asked");
    assert!(db.wal_stamp().is_some(), "and the wal-index is confirmed");
}

#[path = "state_read_pool_tests.rs"]
mod pool_passed_in;
