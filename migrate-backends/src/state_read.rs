//! Reading the state table.
//!
//! PostgreSQL and MySQL read the rows with one query. A connection's first read goes
//! unprepared (the simple query protocol: one round trip, where preparing the statement first
//! makes two); it leaves a note with the kept connection, and the reads after it prepare the
//! statement once and then reuse it (one round trip, no parsing on the server). The first is a
//! service's start-up check on a new connection; the others are its repeated checks. MySQL's
//! reads also return each row's fingerprint, and keep the rows with their XOR: a repeated check
//! asks for that one value, and reads the rows only when it moved ([`crate::fingerprint`]).
//!
//! SQLite reads them packed into one text value ([`crate::packed_state`]) and keeps that read
//! with the kept connection ([`crate::held::StateCache`]), with what tells whether the
//! database changed since:
//! - the database's wal-index header, taken just before the read ([`crate::wal_index`]): the
//!   next read takes it again, on the caller's thread, and equal bytes mean that nothing
//!   committed in between, so the kept rows are returned without a hand-off to SQLite's
//!   thread;
//! - else `PRAGMA data_version`, asked on the connection: SQLite changes it whenever another
//!   connection commits, so an unchanged value means the rows are the ones kept, and the
//!   packed read, its decoding and its allocations are skipped.
//!
//! Both are the main database's, where the tracking tables are created (SQLite has no schemas
//! of ours; see `sqlite.rs`). Writes through the connection itself do not change the data
//! version (they do change the header); they never keep the cache (only a read puts it back),
//! so they cannot be hidden by it.
//!
//! The connection a SQLite executor opens when it connects starts a read at once
//! ([`read_ahead`]: what confirms the wal-index, the data version, then the packed rows, in
//! one hand-off to SQLite's thread), without waiting for its answer. SQLite's thread loads the schema, prepares and runs
//! the read while the service builds its manager, and the start-up check, the first call, finds
//! rows kept with the header taken before the read, and, the header unchanged, takes them.

use crate::driver::Driver;
use crate::held::{Held, KeptRows, StateCache};
use crate::rows;
use crate::wal_index::WalStamp;
use crate::SqlxDb;
use migrate_core::backend::StateRow;
use migrate_core::error::Result;
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, IntoArguments, Type};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// SQLite's data version of the main database, where the tracking tables are: it changes
/// whenever another connection commits. The packed read, the only one kept, is SQLite's.
const DATA_VERSION: &str = "PRAGMA data_version";

impl<DB: Driver> SqlxDb<DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'r> String: Decode<'r, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// Every state row, on the kept connection (an empty list when the table is missing).
    pub(crate) async fn read_state_rows(&self) -> Result<Arc<[StateRow]>> {
        let mut conn = self.conn().await?;
        let query = &self.sql.read_state;
        // What this connection's last read of this statement left (clones of an executor
        // share the connection and may name other tracking tables).
        let found = conn
            .take_state_cache()
            .filter(|cache| *cache.query == **query);
        let rows = match (&self.sql.read_state_unpacked, self.fingerprint_reads()) {
            (Some(unpacked), _) => self.read_packed(&mut conn, found, unpacked).await,
            (None, Some(reads)) => self.read_fingerprinted(&mut conn, found, reads).await,
            (None, None) => {
                let rows = self.read_rows(&mut conn, query, found.is_some()).await;
                // The note that this connection has read (and now prepared) the statement.
                conn.keep_state_cache(StateCache {
                    query: query.clone(),
                    rows: None,
                });
                rows
            }
        };
        // A failed read gives the connection back to the pool, which checks it: a session
        // the server ended while the executor was idle is not kept to fail the next call.
        if let Ok(found) = &rows {
            conn.keep();
            // Noted for `prepare`, which then creates the tables without asking the catalog.
            self.tracking_missing
                .store(found.is_none(), Ordering::Relaxed);
        }
        rows.map(Option::unwrap_or_default)
    }

    /// The rows one by one, with one query: `read_state`, or SQLite's fallback when its packed
    /// read fails or does not unpack; `None` when the state table is missing. Prepared when
    /// `prepare` asks for it and prepared statements may be kept (not behind a
    /// transaction-pooling proxy).
    pub(crate) async fn read_rows(
        &self,
        conn: &mut DB::Connection,
        sql: &Arc<str>,
        prepare: bool,
    ) -> Result<Option<Arc<[StateRow]>>> {
        match self.fetch_rows(conn, sql, prepare).await {
            Ok(rows) => rows
                .iter()
                .map(rows::state_row)
                .collect::<Result<Vec<_>>>()
                .map(|rows| Some(rows.into())),
            Err(err) if DB::is_missing_table(&err) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The rows of the read `sql`: prepared when `prepare` asks for it and prepared
    /// statements may be kept (not behind a transaction-pooling proxy), else in one round
    /// trip of the simple protocol.
    pub(crate) async fn fetch_rows(
        &self,
        conn: &mut DB::Connection,
        sql: &Arc<str>,
        prepare: bool,
    ) -> sqlx::Result<Vec<DB::Row>> {
        if self.prepares(prepare) {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .fetch_all(&mut *conn)
                .await
        } else {
            sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                .fetch_all(&mut *conn)
                .await
        }
    }

    /// The first row of the read `sql` (a read of one value), prepared as [`fetch_rows`]
    /// would: no list of rows is made.
    ///
    /// [`fetch_rows`]: Self::fetch_rows
    pub(crate) async fn fetch_first_row(
        &self,
        conn: &mut DB::Connection,
        sql: &Arc<str>,
        prepare: bool,
    ) -> sqlx::Result<Option<DB::Row>> {
        if self.prepares(prepare) {
            sqlx::query(AssertSqlSafe(sql.clone()))
                .fetch_optional(&mut *conn)
                .await
        } else {
            sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
                .fetch_optional(&mut *conn)
                .await
        }
    }

    /// Whether a read asked to be prepared is: not behind a transaction-pooling proxy, which
    /// cannot keep prepared statements.
    fn prepares(&self, prepare: bool) -> bool {
        prepare && self.sql.persistent
    }

    /// SQLite's read: the rows kept with the connection (`found`) if the database has not
    /// changed since they were read, else the packed rows, kept for the next read; `None` when
    /// the state table is missing.
    ///
    /// Whether the database changed is asked of its wal-index first ([`crate::wal_index`]):
    /// the header unchanged since the rows were read, they are returned without a word to the
    /// connection's thread. Otherwise, from a connection's second read on, the data version is
    /// asked: equal to the one the kept rows were read at, they are returned; else the packed
    /// read follows and is kept with that data version. Both are taken before the rows are
    /// read, so they can only be older than the rows, which makes the next read read again,
    /// never return rows out of date.
    async fn read_packed(
        &self,
        conn: &mut Held<'_, DB>,
        found: Option<StateCache>,
        unpacked: &Arc<str>,
    ) -> Result<Option<Arc<[StateRow]>>> {
        let query = &self.sql.read_state;
        let stamp = self.wal_stamp();
        let mut data_version = None;
        if let Some(mut cache) = found {
            let kept = cache.rows.as_ref();
            let stamped = stamp.is_some() && kept.is_some_and(|kept| kept.stamp == stamp);
            if !stamped {
                // An error here is left to the read below, which reports it.
                data_version = sqlx::query_scalar(DATA_VERSION)
                    .fetch_one(&mut **conn)
                    .await
                    .ok();
            }
            let current = stamped
                || data_version.is_some()
                    && kept.is_some_and(|kept| kept.data_version == data_version);
            if let (true, Some(kept)) = (current, cache.rows.as_mut()) {
                // Unchanged since the rows were read, up to `stamp` or to this data version,
                // which is younger than `stamp`: either way they are the database's at `stamp`.
                kept.stamp = stamp;
                let rows = kept.rows.clone();
                conn.keep_state_cache(cache);
                return Ok(Some(rows));
            }
        }
        let read: sqlx::Result<Option<String>> = sqlx::query_scalar(AssertSqlSafe(query.clone()))
            .fetch_one(&mut **conn)
            .await;
        let packed = match read {
            Ok(packed) => packed,
            Err(err) if DB::is_missing_table(&err) => return Ok(None),
            // A SQLite built without its JSON functions: the rows one by one.
            Err(err) => {
                tracing::debug!(error = %err, "the packed state read failed; reading rows");
                return self.read_rows(conn, unpacked, true).await;
            }
        };
        match crate::packed_state::unpack(packed.as_deref().unwrap_or_default()) {
            Ok(rows) => {
                let rows: Arc<[StateRow]> = rows.into();
                let known = data_version.is_some() || stamp.is_some();
                conn.keep_state_cache(StateCache {
                    query: query.clone(),
                    rows: known.then(|| KeptRows {
                        rows: rows.clone(),
                        data_version,
                        stamp,
                        fingerprint: None,
                    }),
                });
                Ok(Some(rows))
            }
            // A value the packing cannot describe: the rows one by one, which name it.
            Err(_) => self.read_rows(conn, unpacked, true).await,
        }
    }

    /// SQLite's wal-index header now, where the executor has one it can trust.
    fn wal_stamp(&self) -> Option<WalStamp> {
        #[cfg(feature = "sqlite")]
        if let Some(index) = &self.wal_index {
            return index.stamp();
        }
        None
    }
}

/// Starts SQLite's state read on `conn`, the executor's first connection (see the module's
/// documentation): what the connection says of its database for the wal-index
/// ([`crate::wal_index::CONFIRM`]), `PRAGMA data_version` and the packed read of `query`, in one
/// statement list. What the read left is the connection's state cache, with the wal-index
/// header taken before the list was sent if the connection confirms where it is; a read that
/// fails (no state table yet, a SQLite without JSON functions) leaves nothing, and the first
/// call reads as usual. Once the read ends, the connection gets the busy timeout `busy_ms`
/// holds then, which `with_lock_timeout` may have changed since the connection was opened.
#[cfg(feature = "sqlite")]
pub(crate) fn read_ahead(
    mut conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    query: Arc<str>,
    busy_ms: Arc<std::sync::atomic::AtomicU64>,
    wal_index: Option<Arc<crate::wal_index::WalIndex>>,
) -> crate::held::Reading<sqlx::Sqlite> {
    use std::task::Poll;
    let stamp = wal_index
        .as_deref()
        .and_then(crate::wal_index::WalIndex::stamp_unconfirmed);
    Box::pin(async move {
        let text = format!("{}; {DATA_VERSION}; {query}", crate::wal_index::CONFIRM);
        // Whether the read waited for its answer: the first poll (`put_reading`'s) then ended
        // there, and what follows the read runs when the first call takes the connection.
        let mut waited = false;
        // The rows until the first error: a missing state table fails the last statement only.
        let mut rows = Vec::new();
        {
            let mut results = sqlx::raw_sql(AssertSqlSafe(text)).fetch(&mut *conn);
            while let Some(row) = std::future::poll_fn(|cx| {
                let poll = futures_core::Stream::poll_next(results.as_mut(), cx);
                waited |= poll.is_pending();
                poll
            })
            .await
            {
                match row {
                    Ok(row) => rows.push(row),
                    Err(err) => {
                        tracing::debug!(error = %err, "the state read started at connect failed");
                        break;
                    }
                }
            }
        }
        let state = cache_of_read_ahead(&rows, query, wal_index.as_deref(), stamp);
        // A read that ended within `put_reading`'s first poll (it happens) waits here for the
        // first call: it would otherwise set the busy timeout before `with_lock_timeout` could
        // change it, and leave nothing for it to keep.
        let mut yielded = waited;
        std::future::poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        let ms = busy_ms.load(Ordering::Relaxed);
        if let Err(err) = crate::sqlite::set_busy_timeout(&mut conn, ms).await {
            // The connection's next statement fails the same way, and the call gives it back
            // to the pool, which checks it.
            tracing::debug!(error = %err, "could not set the busy timeout of the executor's connection");
        }
        (conn, state)
    })
}

/// What [`read_ahead`]'s rows (the wal-index confirmation, the data version, the packed
/// state) leave: the confirmation goes to `wal_index`, and the connection keeps the rows with
/// their data version, and with `stamp` if it was taken where the connection says the
/// wal-index is; nothing unless the rows are there and unpack. Each statement's rows are known
/// by their columns, so a missing answer is never taken for the next one's.
#[cfg(feature = "sqlite")]
fn cache_of_read_ahead(
    rows: &[sqlx::sqlite::SqliteRow],
    query: Arc<str>,
    wal_index: Option<&crate::wal_index::WalIndex>,
    stamp: Option<WalStamp>,
) -> Option<StateCache> {
    use sqlx::{Column, Row};
    let first_column = |row: &sqlx::sqlite::SqliteRow, name: &str| {
        row.columns().first().is_some_and(|c| c.name() == name)
    };
    let mut rows = rows.iter().peekable();
    let mode: Option<String> = rows
        .next_if(|row| first_column(row, "journal_mode"))
        .and_then(|row| row.try_get(0).ok());
    // `PRAGMA database_list`: `seq`, `name`, `file`, one row per database open.
    let mut main_file: Option<String> = None;
    while let Some(row) = rows.next_if(|row| first_column(row, "seq")) {
        let name: Option<String> = row.try_get("name").ok();
        if name.as_deref() == Some("main") {
            main_file = row.try_get::<Option<String>, _>("file").ok().flatten();
        }
    }
    let confirmed = match (mode, wal_index) {
        (Some(mode), Some(index)) => index.confirm(&mode, main_file.as_deref().unwrap_or_default()),
        _ => false,
    };
    let version = rows.next_if(|row| first_column(row, "data_version"))?;
    let (Some(packed), None) = (rows.next(), rows.next()) else {
        return None;
    };
    let version: i64 = version.try_get(0).ok()?;
    let packed: Option<String> = packed.try_get(0).ok()?;
    let rows = crate::packed_state::unpack(packed.as_deref().unwrap_or_default()).ok()?;
    Some(StateCache {
        query,
        rows: Some(KeptRows {
            rows: rows.into(),
            data_version: Some(version),
            stamp: stamp.filter(|_| confirmed),
            fingerprint: None,
        }),
    })
}

#[cfg(all(test, feature = "sqlite", feature = "testing"))]
mod tests {
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
        let (mut conn, mut cache) = read_at_connect(&db).await;
        // Rows the database does not hold, and no data version: only the stamp can vouch for
        // them, so reading them back proves that nothing was read.
        let kept = cache.rows.as_mut().expect("rows");
        let mut doctored = kept.rows.to_vec();
        doctored[0].version = Some("9.9.9".to_string());
        kept.rows = doctored.into();
        kept.data_version = None;
        conn.keep_state_cache(cache);
        conn.keep();
        let rows = db.read_state().await.expect("read");
        assert_eq!(rows[0].version.as_deref(), Some("9.9.9"), "{rows:?}");
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
        let db = SqliteDb::connect_tracking(&url, Some("custom_tracking"))
            .await
            .expect("connect");
        let (conn, cache) = read_at_connect(&db).await;
        assert_eq!(*cache.query, *db.sql.read_state);
        assert!(cache.query.contains("custom_tracking"), "{}", cache.query);
        let kept = cache.rows.expect("rows");
        assert_eq!(kept.rows[0].version.as_deref(), Some("1.0.0"));
        drop(conn);
        let too_long = "t".repeat(200);
        let refused = SqliteDb::connect_tracking(&url, Some(&too_long)).await;
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
        let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await
            .expect("busy timeout");
        assert_eq!(busy, 1_234);
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
                sqlx::query_scalar::<_, i64>("PRAGMA busy_timeout")
                    .fetch_one(&mut *conn)
                    .await
                    .expect("busy timeout")
            }
        };
        assert_eq!(busy_timeout(&db).await, 1_234);
        let db = db.with_lock_timeout(crate::sqlx_db::DEFAULT_LOCK_TIMEOUT);
        let default = i64::try_from(crate::sqlite::millis(crate::sqlx_db::DEFAULT_LOCK_TIMEOUT))
            .expect("fits");
        assert_eq!(busy_timeout(&db).await, default);
    }
}
