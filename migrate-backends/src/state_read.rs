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

use crate::driver::{lost_session, Driver};
use crate::held::{Held, KeptRows, StateCache};
use crate::rows;
use crate::wal_index::WalStamp;
use crate::SqlxDb;
use migrate_core::backend::StateRow;
use migrate_core::error::{Error, Result};
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, IntoArguments, Type};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A state read that failed, and whether it failed because the session of a connection
/// handed out without a test had ended (then it may be sent again on another).
struct ReadFailed {
    err: Error,
    lost_untested_session: bool,
}

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
    ///
    /// The kept connection is handed out without a test (so is any connection of a pool that
    /// does not test before acquire), so its session may have ended while the executor was
    /// idle (a server restart, an idle timeout, `pg_terminate_backend`, `KILL`). A read that
    /// fails for that reason on such a connection closes it and is sent once more, on a
    /// connection the pool checks out (the executor's own pools test it first): a service's
    /// check after its database restarted answers instead of failing. A read changes nothing,
    /// so sending it twice is safe; nothing else is sent again.
    pub(crate) async fn read_state_rows(&self) -> Result<Arc<[StateRow]>> {
        match self.read_state_on(self.conn().await?).await {
            Err(ReadFailed {
                err,
                lost_untested_session: true,
            }) => {
                tracing::debug!(error = %err, "the kept connection's session had ended; reading again on another");
                let conn = self.conn().await?;
                self.read_state_on(conn).await.map_err(|failed| failed.err)
            }
            rows => rows.map_err(|failed| failed.err),
        }
    }

    /// [`read_state_rows`](Self::read_state_rows), once, on `conn`.
    async fn read_state_on(
        &self,
        mut conn: Held<'_, DB>,
    ) -> std::result::Result<Arc<[StateRow]>, ReadFailed> {
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
        match rows {
            Ok(found) => {
                conn.keep();
                // Noted for `prepare`, which then creates the tables without asking the catalog.
                self.tracking_missing
                    .store(found.is_none(), Ordering::Relaxed);
                Ok(found.unwrap_or_default())
            }
            Err(err) => {
                let lost_untested_session = conn.untested() && lost_session::<DB>(&err);
                if lost_untested_session {
                    conn.close();
                }
                Err(ReadFailed {
                    err,
                    lost_untested_session,
                })
            }
        }
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
        // A connection's first read, or one after a read that could keep no rows (a
        // confirming read that failed leaves such a note).
        if found.as_ref().is_none_or(|cache| cache.rows.is_none()) {
            if let Some(index) = self.wal_index_to_confirm() {
                if let Some(rows) = self.read_confirming(conn, index, query).await {
                    return Ok(Some(rows));
                }
            }
        }
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
            Err(err) => {
                tracing::debug!(error = %err, "the packed state did not unpack; reading the rows one by one");
                self.read_rows(conn, unpacked, true).await
            }
        }
    }

    /// A connection's first read while the executor's wal-index is unconfirmed (a pool passed
    /// in, or a read started at connect that failed before its first row): [`read_ahead`]'s
    /// statement list, so that the connection says where the wal-index is and the reads after
    /// it take stamps instead of asking the connection. `None` when it leaves no rows (no state
    /// table yet, a failure): the caller then reads as usual, which reports what is wrong.
    async fn read_confirming(
        &self,
        conn: &mut Held<'_, DB>,
        index: &crate::wal_index::WalIndex,
        query: &Arc<str>,
    ) -> Option<Arc<[StateRow]>> {
        let stamp = index.stamp_unconfirmed();
        // The connection's options may be the caller's (a pool passed in): its locking mode too.
        let text = confirming_read(query, true);
        let results = sqlx::raw_sql(AssertSqlSafe(text)).fetch(&mut **conn);
        let rows = rows_until_error(results, &mut false).await;
        let cache = cache_of_confirming_read(&rows, query.clone(), Some(index), stamp)?;
        let kept = cache.rows.as_ref()?.rows.clone();
        conn.keep_state_cache(cache);
        Some(kept)
    }

    /// The executor's wal-index while no connection has said where it is
    /// ([`WalIndex::to_confirm`](crate::wal_index::WalIndex::to_confirm)).
    fn wal_index_to_confirm(&self) -> Option<&crate::wal_index::WalIndex> {
        #[cfg(feature = "sqlite")]
        if let Some(index) = self.wal_index.as_deref().filter(|index| index.to_confirm()) {
            return Some(index);
        }
        None
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
        // Whether the read waited for its answer: the first poll (`put_reading`'s) then ended
        // there, and what follows the read runs when the first call takes the connection.
        let mut waited = false;
        let state =
            send_confirming_read(&mut conn, query, false, wal_index, stamp, &mut waited).await;
        // A read that ended within `put_reading`'s first poll (it happens) waits here for the
        // first call: it would otherwise set the busy timeout before `with_lock_timeout` could
        // change it.
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
        Ok((conn, state))
    })
}

/// [`read_ahead`] on a pool passed in (`SqliteDb::from_pool`): a connection checked out as the
/// pool hands them out (its test and its hooks), then the same statement list with the
/// connection's locking mode asked first (its options are the caller's), and no busy timeout
/// to set (the pool's stays). The wal-index header is taken once the connection is out.
#[cfg(feature = "sqlite")]
pub(crate) fn read_ahead_on_pool(
    pool: sqlx::SqlitePool,
    query: Arc<str>,
    wal_index: Option<Arc<crate::wal_index::WalIndex>>,
) -> crate::held::Reading<sqlx::Sqlite> {
    Box::pin(async move {
        let mut conn = pool.acquire().await?;
        let stamp = wal_index
            .as_deref()
            .and_then(crate::wal_index::WalIndex::stamp_unconfirmed);
        let state =
            send_confirming_read(&mut conn, query, true, wal_index, stamp, &mut false).await;
        Ok((conn, state))
    })
}

/// Sends a [`confirming_read`] of `query` on `conn` and returns what it leaves
/// ([`cache_of_confirming_read`]); `waited` is set if it had to wait for its answer.
#[cfg(feature = "sqlite")]
async fn send_confirming_read(
    conn: &mut sqlx::SqliteConnection,
    query: Arc<str>,
    ask_locking: bool,
    wal_index: Option<Arc<crate::wal_index::WalIndex>>,
    stamp: Option<WalStamp>,
    waited: &mut bool,
) -> Option<StateCache> {
    let text = confirming_read(&query, ask_locking);
    let results = sqlx::raw_sql(AssertSqlSafe(text)).fetch(&mut *conn);
    let rows = rows_until_error(results, waited).await;
    cache_of_confirming_read(&rows, query, wal_index.as_deref(), stamp)
}

/// The statement list of a read that confirms the wal-index ([`read_ahead`]'s, and a
/// connection's first read while the wal-index is unconfirmed): what the connection says of
/// its database ([`crate::wal_index::CONFIRM`], after its locking mode when `ask_locking`:
/// [`crate::wal_index::CONFIRM_LOCKING`]), the data version, then the packed read.
fn confirming_read(query: &str, ask_locking: bool) -> String {
    use crate::wal_index::{CONFIRM, CONFIRM_LOCKING};
    if ask_locking {
        format!("{CONFIRM_LOCKING}; {CONFIRM}; {DATA_VERSION}; {query}")
    } else {
        format!("{CONFIRM}; {DATA_VERSION}; {query}")
    }
}

/// The rows of a statement list until its first error (a missing state table fails the last
/// statement only), which is logged at debug level; `waited` is set if the stream ever had to
/// wait for its next row.
async fn rows_until_error<R>(
    mut results: impl futures_core::Stream<Item = sqlx::Result<R>> + Unpin,
    waited: &mut bool,
) -> Vec<R> {
    let mut rows = Vec::new();
    while let Some(row) = std::future::poll_fn(|cx| {
        let poll = std::pin::Pin::new(&mut results).poll_next(cx);
        *waited |= poll.is_pending();
        poll
    })
    .await
    {
        match row {
            Ok(row) => rows.push(row),
            Err(err) => {
                tracing::debug!(error = %err, "a state read confirming the wal-index failed");
                break;
            }
        }
    }
    rows
}

/// What the rows of a [`confirming_read`] (the wal-index confirmation, the data version, the
/// packed state) leave: the confirmation goes to `wal_index`, and the connection keeps the
/// rows with their data version, and with `stamp` if it was taken where the connection says
/// the wal-index is; nothing unless the rows are there and unpack. The confirmation's and the
/// data version's rows are known by their first columns, and the main database by its name
/// (`PRAGMA database_list`'s columns are `seq`, `name`, `file`); the packed row is the one
/// after them, and the last. A locking mode first, where the read asked it, must be
/// `normal`; a read that did not ask it is of the executor's own connections, which lock as
/// usual (a read that asked and failed there has no rows after it, so confirms nothing).
fn cache_of_confirming_read<R: sqlx::Row>(
    rows: &[R],
    query: Arc<str>,
    wal_index: Option<&crate::wal_index::WalIndex>,
    stamp: Option<WalStamp>,
) -> Option<StateCache>
where
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    use sqlx::Column;
    let first_column =
        |row: &R, name: &str| row.columns().first().is_some_and(|c| c.name() == name);
    let mut rows = rows.iter().peekable();
    let locks_as_usual = rows
        .next_if(|row| first_column(row, "locking_mode"))
        .is_none_or(|row| {
            row.try_get::<String, _>(0)
                .is_ok_and(|mode| mode.eq_ignore_ascii_case("normal"))
        });
    let mode: Option<String> = rows
        .next_if(|row| first_column(row, "journal_mode"))
        .and_then(|row| row.try_get(0).ok());
    // `PRAGMA database_list`: `seq`, `name`, `file`, one row per database open.
    let mut main_file: Option<String> = None;
    while let Some(row) = rows.next_if(|row| first_column(row, "seq")) {
        let name: Option<String> = row.try_get(1).ok();
        if name.as_deref() == Some("main") {
            main_file = row.try_get::<Option<String>, _>(2).ok().flatten();
        }
    }
    let confirmed = match (mode, wal_index) {
        (Some(mode), Some(index)) => {
            let database = main_file.as_deref().unwrap_or_default();
            index.confirm(&mode, locks_as_usual, database)
        }
        _ => false,
    };
    let version = rows.next_if(|row| first_column(row, "data_version"))?;
    let packed = rows.next()?;
    if rows.next().is_some() {
        return None;
    }
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
#[path = "state_read_tests.rs"]
mod tests;
