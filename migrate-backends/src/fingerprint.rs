//! MySQL's state fingerprint: how a repeated "already up to date" check tells that the state
//! rows it read last are still the table's, in one short read instead of the rows.
//!
//! MySQL has no cheap "has anything changed" probe like SQLite's wal-index or data version,
//! and reading the rows costs the server more than a one-value aggregate: what it sends per
//! column of the result (its metadata, in every answer) is the larger part, not the rows. So
//! the state table carries a **stored generated column**, `fingerprint`: the first 60 bits of
//! the SHA-256 of the eight columns a state read returns, each written as a SQL literal by
//! `QUOTE` (a bare `NULL` for a null, so that `NULL` and `'NULL'` differ). The server computes
//! it on every write, whoever writes (this crate, an older version of it, or someone at a SQL
//! prompt), so it cannot go stale the way a counter that writers must remember to move can.
//!
//! - A connection's state read returns the fingerprints with the rows, and keeps the rows with
//!   the XOR of the fingerprints ([`Fingerprint`]).
//! - Its next read asks the server for the same value (`BIT_XOR`: one row of one integer).
//!   Equal, the kept rows are returned; else the rows are read again.
//! - Each is read in one statement, so of one snapshot. Any change to what the read returns (a
//!   column written, a row added or deleted) changes the XOR, unless 60-bit hashes collide:
//!   about one chance in 10^18 per change.
//! - Before an executor first takes kept rows on the strength of the column, it asks the
//!   catalog once whether the column is generated: a plain column of that name (a table copied
//!   with `CREATE TABLE ... AS SELECT`, or a dump that lost the expression) would never move,
//!   and its checks then read the rows whole ([`ColumnState`]).
//! - A state table made before the column (an earlier version of this crate) is read whole;
//!   the executor's next `prepare` (a run) adds the column, waiting at most
//!   [`ADD_COLUMN_LOCK_WAIT_SECONDS`] for the table. A role that may not alter the table, or a
//!   server that cannot, keeps the whole read (said at info level, once per executor).

use crate::driver::Driver;
use crate::held::{Held, KeptRows, StateCache};
use crate::portable::STATE_READ_COLUMNS;
use crate::rows;
use crate::statements::Stmt;
use crate::SqlxDb;
use migrate_core::backend::StateRow;
use migrate_core::error::{Error, Result};
use sqlx::{AssertSqlSafe, ColumnIndex, Decode, Encode, IntoArguments, Row, Type};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// The statements of the fingerprinted read, for one state table.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "mysql"), allow(dead_code))]
pub(crate) struct StateFingerprint {
    /// Every state row, with its fingerprint last.
    pub(crate) read: Arc<str>,
    /// The XOR of the fingerprints.
    pub(crate) check: Arc<str>,
    /// One row if the state table's `fingerprint` is a generated column (binds `schema`,
    /// `table` and `column`).
    pub(crate) generated: Stmt,
    /// Adds the column to a state table made without it.
    pub(crate) add_column: String,
}

/// What a read of the state table saw: the XOR of the rows' fingerprints (0 for no rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint(i64);

/// How long `prepare` waits for the state table when it adds the column: a session that holds
/// the table (an open transaction that read it) would otherwise hold every later read of it
/// up behind the `ALTER`, for as long as `lock_wait_timeout` (a day by default on MariaDB).
const ADD_COLUMN_LOCK_WAIT_SECONDS: u32 = 5;

/// What an executor knows of its state table's fingerprint column.
#[derive(Debug, Default)]
pub(crate) struct ColumnState(AtomicU8);

/// Not asked yet: reads return the fingerprints, and the first to take kept rows asks the
/// catalog whether the column is generated.
const UNVERIFIED: u8 = 0;
/// Generated: kept rows are taken while the fingerprint holds.
const TRUSTED: u8 = 1;
/// Missing: reads go whole, and `prepare` adds the column.
const MISSING: u8 = 2;
/// Not generated, or could not be added: reads go whole.
const UNUSABLE: u8 = 3;

impl ColumnState {
    fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self, state: u8) {
        self.0.store(state, Ordering::Relaxed);
    }
}

/// The column's definition, in `CREATE TABLE` and `ADD COLUMN`.
#[cfg(feature = "mysql")]
pub(crate) fn column_definition() -> String {
    let quoted: Vec<String> = STATE_READ_COLUMNS
        .iter()
        .map(|column| format!("QUOTE({column})"))
        .collect();
    format!(
        "fingerprint BIGINT AS (CAST(CONV(LEFT(SHA2(CONCAT_WS(',', {}), 256), 15), 16, 10) \
         AS SIGNED)) STORED",
        quoted.join(", ")
    )
}

/// The fingerprinted read's statements for the state table `state` (quoted); `column_exists`
/// is the database's catalog query for a column, which the generated-column check narrows.
#[cfg(feature = "mysql")]
pub(crate) fn statements(state: &str, column_exists: &str) -> StateFingerprint {
    let columns = STATE_READ_COLUMNS.join(", ");
    StateFingerprint {
        read: format!("SELECT {columns}, fingerprint FROM {state}").into(),
        check: format!("SELECT BIT_XOR(fingerprint) FROM {state}").into(),
        generated: crate::statements::compile::<sqlx::MySql>(&format!(
            "{column_exists} AND generation_expression <> ''"
        )),
        add_column: format!("ALTER TABLE {state} ADD COLUMN {}", column_definition()),
    }
}

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
    /// The fingerprinted read's statements, where the database has them and the state table's
    /// column was not found missing or unusable.
    pub(crate) fn fingerprint_reads(&self) -> Option<&StateFingerprint> {
        let usable = matches!(self.fingerprint.get(), UNVERIFIED | TRUSTED);
        self.sql.state_fingerprint.as_ref().filter(|_| usable)
    }

    /// The state rows: the ones kept with the connection (`found`) while the table's
    /// fingerprint is the one they were read with, else the rows read again with their
    /// fingerprints and kept; `None` when the state table is missing. A connection's first
    /// read goes unprepared (see `state_read`).
    pub(crate) async fn read_fingerprinted(
        &self,
        conn: &mut Held<'_, DB>,
        found: Option<StateCache>,
        reads: &StateFingerprint,
    ) -> Result<Option<Arc<[StateRow]>>> {
        let prepare = found.is_some();
        if let Some(cache) = found {
            let kept = cache.rows.as_ref().and_then(|kept| kept.fingerprint);
            if kept.is_some()
                && self.column_is_trusted(conn, reads).await
                && self.fingerprint_now(conn, reads).await == kept
            {
                let rows = cache.rows.as_ref().map(|kept| kept.rows.clone());
                conn.keep_state_cache(cache);
                return Ok(rows);
            }
        }
        let note = |rows: Option<KeptRows>| StateCache {
            query: self.sql.read_state.clone(),
            rows,
        };
        match self.fetch_rows(conn, &reads.read, prepare).await {
            Ok(read) => {
                let (rows, fingerprint) = with_fingerprint(&read)?;
                let rows: Arc<[StateRow]> = rows.into();
                conn.keep_state_cache(note(Some(KeptRows {
                    rows: rows.clone(),
                    data_version: None,
                    stamp: None,
                    fingerprint,
                })));
                Ok(Some(rows))
            }
            Err(err) if DB::is_missing_table(&err) => {
                conn.keep_state_cache(note(None));
                Ok(None)
            }
            Err(err) if DB::is_missing_column(&err) => {
                // The fingerprint is the missing column if the rows read without it.
                let rows = self.read_rows(conn, &self.sql.read_state, prepare).await?;
                tracing::debug!(
                    table = %self.tracking_table,
                    "the state table has no fingerprint column yet; reading its rows whole"
                );
                self.fingerprint.set(MISSING);
                conn.keep_state_cache(note(None));
                Ok(rows)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Whether the state table's `fingerprint` may vouch for kept rows: asked of the catalog
    /// the first time (is it a generated column?), then remembered. A column that is not, or
    /// a question the catalog cannot answer, sends the checks back to reading the rows.
    async fn column_is_trusted(&self, conn: &mut DB::Connection, reads: &StateFingerprint) -> bool {
        match self.fingerprint.get() {
            TRUSTED => return true,
            UNVERIFIED => {}
            _ => return false,
        }
        let table = &self.tracking_table;
        let generated = self
            .catalog_has(conn, &reads.generated, table, Some("fingerprint"))
            .await;
        if generated
            .as_ref()
            .is_err_and(crate::driver::lost_session::<DB>)
        {
            // No answer from the catalog, only a session gone: asked again next time.
            return false;
        }
        let trusted = matches!(generated, Ok(true));
        if !trusted {
            tracing::info!(
                table = %table,
                answer = ?generated,
                "the state table's fingerprint column is not a generated one; \
                 every check reads its rows whole"
            );
        }
        self.fingerprint
            .set(if trusted { TRUSTED } else { UNUSABLE });
        trusted
    }

    /// The table's fingerprint now; `None` when it cannot be read (the read that follows
    /// reports why).
    async fn fingerprint_now(
        &self,
        conn: &mut DB::Connection,
        reads: &StateFingerprint,
    ) -> Option<Fingerprint> {
        let read = self.fetch_first_row(conn, &reads.check, true).await;
        // `BIT_XOR` answers a `BIGINT UNSIGNED`, which sqlx's type check refuses as `i64`, and
        // this code, shared by every database, cannot ask for a `u64` (PostgreSQL has no
        // decoder for one); a `CAST` would cost the server a conversion on every check. So it
        // is read unchecked: the same 64 bits, and the fingerprints are below 2^60, so their
        // XOR is too.
        let value = read.map_err(Error::from).and_then(|row| match row {
            Some(row) => row.try_get_unchecked(0).map_err(Error::from),
            None => Err(rows::corrupt("fingerprint", "no row")),
        });
        match value {
            Ok(value) => Some(Fingerprint(value)),
            Err(err) => {
                tracing::debug!(error = %err, "cannot read the state table's fingerprint");
                None
            }
        }
    }

    /// Adds the fingerprint column that a state read found missing, waiting at most
    /// [`ADD_COLUMN_LOCK_WAIT_SECONDS`] for the table. A failure (a role without the right to
    /// alter the table, a server without generated columns) is said at info level once, and
    /// the checks go on reading the rows.
    pub(crate) async fn add_missing_fingerprint(&self, conn: &mut DB::Connection) {
        let Some(reads) = &self.sql.state_fingerprint else {
            return;
        };
        if self.fingerprint.get() != MISSING {
            return;
        }
        let wait = format!(
            "SET @migrate_lock_wait = @@SESSION.lock_wait_timeout, \
             SESSION lock_wait_timeout = {ADD_COLUMN_LOCK_WAIT_SECONDS}"
        );
        let mut added = sqlx::raw_sql(AssertSqlSafe(wait)).execute(&mut *conn).await;
        if added.is_ok() {
            added = sqlx::raw_sql(AssertSqlSafe(reads.add_column.clone()))
                .execute(&mut *conn)
                .await;
            let restore = "SET SESSION lock_wait_timeout = @migrate_lock_wait";
            if let Err(err) = sqlx::raw_sql(restore).execute(&mut *conn).await {
                tracing::debug!(error = %err, "cannot restore the session's lock_wait_timeout");
            }
        }
        let state = match added {
            Ok(_) => TRUSTED,
            // Added since by another runner: asked of the catalog before it is trusted.
            Err(err) if DB::is_already_done(&err) => UNVERIFIED,
            Err(err) => {
                tracing::info!(
                    table = %self.tracking_table,
                    error = %err,
                    "cannot add the fingerprint column to the state table; \
                     every check reads its rows whole"
                );
                UNUSABLE
            }
        };
        self.fingerprint.set(state);
    }
}

/// The rows of a fingerprinted read, and their fingerprint: `None` if a row has none (a
/// server whose `SHA2` answers `NULL`), so that such rows are never taken as unchanged.
fn with_fingerprint<R>(read: &[R]) -> Result<(Vec<StateRow>, Option<Fingerprint>)>
where
    R: Row,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    let mut rows = Vec::with_capacity(read.len());
    let mut xor = Some(0_i64);
    for row in read {
        rows.push(rows::state_row(row)?);
        // The fingerprint follows the state columns.
        let fingerprint: Option<i64> =
            row.try_get(STATE_READ_COLUMNS.len()).map_err(Error::from)?;
        xor = xor.zip(fingerprint).map(|(xor, row)| xor ^ row);
    }
    Ok((rows, xor.map(Fingerprint)))
}

#[cfg(all(test, feature = "mysql", feature = "testing"))]
mod tests {
    use crate::admin::execute_on;
    use crate::mysql::MySqlDb;
    use crate::testing::{Backend, TestDatabase};
    use migrate_core::backend::{MigrationBackend, StateRow};

    /// A fresh MariaDB database with the tracking tables and one state row, `app.session` at
    /// 1.0.0; `None` when no server can be had (reported as skipped by `TestDatabase`).
    async fn with_one_state_row() -> Option<(TestDatabase, MySqlDb)> {
        let database = TestDatabase::create(Backend::MySql)
            .await
            .expect("a MariaDB database")?;
        let db = MySqlDb::connect(database.url()).await.expect("connect");
        db.prepare().await.expect("tracking tables");
        let state = db.set_state("app", "session", Some("1.0.0"), Some("c1"));
        state.await.expect("a state row");
        Some((database, db))
    }

    /// A read that keeps its `count` rows with their fingerprint, then those rows doctored to
    /// a version the database does not hold: a read that returns them did not read the rows.
    async fn doctor_kept_rows(db: &MySqlDb, count: usize) {
        assert_eq!(db.read_state().await.expect("read").len(), count);
        let mut conn = db.held.take(&db.pool).await.expect("the kept connection");
        let mut cache = conn.take_state_cache().expect("the last read's");
        let kept = cache.rows.as_mut().expect("rows kept");
        assert!(kept.fingerprint.is_some(), "{kept:?}");
        let mut doctored = kept.rows.to_vec();
        for row in &mut doctored {
            row.version = Some("9.9.9".to_string());
        }
        kept.rows = doctored.into();
        conn.keep_state_cache(cache);
        conn.keep();
    }

    /// [`doctor_kept_rows`], then read back: getting the doctored rows proves that only the
    /// fingerprint was read.
    ///
    /// They are the kept rows themselves, shared, not copies.
    async fn kept_rows_are_taken(db: &MySqlDb, count: usize) {
        doctor_kept_rows(db, count).await;
        let mut taken: Vec<std::sync::Arc<[StateRow]>> = Vec::new();
        for _ in 0..2 {
            let rows = db.read_state().await.expect("read");
            assert_eq!(rows.len(), count);
            assert!(
                rows.iter().all(|row| version(row) == Some("9.9.9")),
                "{rows:?}"
            );
            taken.push(rows);
        }
        assert!(std::sync::Arc::ptr_eq(&taken[0], &taken[1]), "copied");
    }

    fn version(row: &StateRow) -> Option<&str> {
        row.version.as_deref()
    }

    #[tokio::test]
    async fn kept_rows_are_taken_while_the_fingerprint_holds_and_any_write_moves_it() {
        let Some((database, db)) = with_one_state_row().await else {
            return;
        };
        let url = database.url();
        kept_rows_are_taken(&db, 1).await;
        // A write by hand, not through this crate, that leaves the version as it was.
        let sql = "UPDATE migrate_schema_versions SET checksum = 'by hand'";
        execute_on(url, sql).await.expect("a write by hand");
        let rows = db.read_state().await.expect("read");
        assert_eq!(version(&rows[0]), Some("1.0.0"), "{rows:?}");
        assert_eq!(rows[0].checksum.as_deref(), Some("by hand"));

        // A null, then the text `NULL`: QUOTE writes them differently.
        let sql = "UPDATE migrate_schema_versions SET checksum = NULL";
        execute_on(url, sql).await.expect("a null by hand");
        kept_rows_are_taken(&db, 1).await;
        let sql = "UPDATE migrate_schema_versions SET checksum = 'NULL'";
        execute_on(url, sql).await.expect("the text NULL by hand");
        let rows = db.read_state().await.expect("read");
        assert_eq!(rows[0].checksum.as_deref(), Some("NULL"), "{rows:?}");

        // A row added through another executor, then deleted by hand.
        kept_rows_are_taken(&db, 1).await;
        let other = MySqlDb::connect(url).await.expect("connect");
        let state = other.set_state("app", "memory", Some("2.0.0"), Some("c2"));
        state.await.expect("another state row");
        assert_eq!(db.read_state().await.expect("read").len(), 2);
        kept_rows_are_taken(&db, 2).await;
        let sql = "DELETE FROM migrate_schema_versions WHERE table_name = 'memory'";
        execute_on(url, sql).await.expect("a delete by hand");
        let rows = db.read_state().await.expect("read");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(version(&rows[0]), Some("1.0.0"));
    }

    #[tokio::test]
    async fn a_state_table_made_without_the_column_is_read_whole_until_prepare_adds_it() {
        let Some((database, _setup)) = with_one_state_row().await else {
            return;
        };
        let sql = "ALTER TABLE migrate_schema_versions DROP COLUMN fingerprint";
        let dropped = execute_on(database.url(), sql).await;
        dropped.expect("the table as an earlier version made it");
        let db = MySqlDb::connect(database.url()).await.expect("connect");
        for _ in 0..2 {
            let rows = db.read_state().await.expect("read whole");
            assert_eq!(version(&rows[0]), Some("1.0.0"), "{rows:?}");
        }
        assert!(db.fingerprint_reads().is_none(), "reads go whole");
        let mut conn = db.held.take(&db.pool).await.expect("the kept connection");
        let cache = conn.take_state_cache().expect("the last read's note");
        assert!(cache.rows.is_none(), "nothing vouches for kept rows");
        conn.keep();

        db.prepare().await.expect("prepare adds the column");
        assert!(db.fingerprint_reads().is_some());
        kept_rows_are_taken(&db, 1).await;
    }

    #[tokio::test]
    async fn a_fingerprint_column_that_is_not_generated_never_vouches_for_kept_rows() {
        let Some((database, _setup)) = with_one_state_row().await else {
            return;
        };
        let url = database.url();
        // A copy that kept the values and lost the expression: the column never moves again.
        let sql = "ALTER TABLE migrate_schema_versions DROP COLUMN fingerprint, \
                   ADD COLUMN fingerprint BIGINT NOT NULL DEFAULT 7";
        execute_on(url, sql).await.expect("a plain column");
        let db = MySqlDb::connect(url).await.expect("connect");
        doctor_kept_rows(&db, 1).await;
        let rows = db.read_state().await.expect("read");
        assert_eq!(version(&rows[0]), Some("1.0.0"), "the rows, read: {rows:?}");
        assert!(
            db.fingerprint_reads().is_none(),
            "reads go whole from now on"
        );
        let sql = "UPDATE migrate_schema_versions SET version = '2.0.0'";
        execute_on(url, sql).await.expect("a write by hand");
        let rows = db.read_state().await.expect("read");
        assert_eq!(version(&rows[0]), Some("2.0.0"), "{rows:?}");
    }

    #[tokio::test]
    async fn a_role_that_may_not_alter_the_state_table_keeps_reading_it_whole() {
        // A server of your own may not let the tests create users.
        if std::env::var_os("MIGRATE_TEST_MYSQL_URL").is_some() {
            return;
        }
        let Some((database, _setup)) = with_one_state_row().await else {
            return;
        };
        let url = database.url();
        let sql = "ALTER TABLE migrate_schema_versions DROP COLUMN fingerprint";
        execute_on(url, sql)
            .await
            .expect("the table as an earlier version made it");
        let name = url.rsplit('/').next().expect("a database in the URL");
        let role = format!("writer_{name}");
        let grants = [
            format!("CREATE USER '{role}'@'127.0.0.1'"),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON `{name}`.* TO '{role}'@'127.0.0.1'"),
        ];
        for sql in &grants {
            execute_on(url, sql)
                .await
                .expect("a role that may only write");
        }
        let writer = url.replacen("root@", &format!("{role}@"), 1);
        let db = MySqlDb::connect(&writer)
            .await
            .expect("connect as the writer");
        assert_eq!(db.read_state().await.expect("read whole").len(), 1);
        db.prepare()
            .await
            .expect("prepare goes on without the column");
        assert!(db.fingerprint_reads().is_none(), "reads stay whole");
        // The run goes on: a step's state is recorded, and read.
        let state = db.set_state("app", "session", Some("2.0.0"), Some("c2"));
        state.await.expect("the writer records a step");
        let rows = db.read_state().await.expect("read whole");
        assert_eq!(version(&rows[0]), Some("2.0.0"), "{rows:?}");
        let columns = "SELECT COUNT(*) FROM information_schema.columns \
                       WHERE table_schema = DATABASE() AND table_name = 'migrate_schema_versions' \
                       AND column_name = 'fingerprint'";
        let count: i64 = sqlx::query_scalar(columns)
            .fetch_one(&db.pool)
            .await
            .expect("the catalog");
        assert_eq!(count, 0, "the writer could not add the column");
        execute_on(url, &format!("DROP USER '{role}'@'127.0.0.1'"))
            .await
            .expect("drop the role");
    }
}
