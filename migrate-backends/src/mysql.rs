//! The MySQL/MariaDB backend (feature `mysql`). Tested against MariaDB; needs MariaDB 10.2 or
//! MySQL 5.7 or later, for the state table's stored generated column (`fingerprint.rs`).
//!
//! - **Transactions:** MySQL commits DDL implicitly, so a step cannot commit atomically with its
//!   tracking rows. Every step is therefore journalled: a "started" row and a dirty mark commit
//!   first, the step runs, then "finished" commits. The finish commits in the same transaction
//!   (and round trip) as the next step's start, or before any other use of the tracking tables,
//!   or at the end of the run: one commit of tracking writes per step. A crash or a failure in between leaves the
//!   dirty mark (never a silently half-recorded step), and the table is blocked until
//!   `resolve_dirty`. This differs on purpose from SQLite and PostgreSQL, where a failed
//!   transactional step is rolled back and simply retried by the next run.
//! - **Names:** the tracking tables are created `utf8mb4` with the binary collation
//!   (`EXACT_TEXT`), so every module, table and version is kept and compared exactly. Tables
//!   made by earlier versions keep the character set they were made with (see the README).
//! - **State read:** the state table has a stored generated column, `fingerprint`, that a
//!   repeated "already up to date" check compares instead of reading the rows
//!   (`fingerprint.rs`).
//! - **Lock:** `GET_LOCK` on a dedicated connection, with the lock timeout; the error names the
//!   connection id that holds it. Released on success, on error and on a panic out of a step or
//!   a progress callback (caught by the manager, which releases the lock first); a run dropped
//!   before it ends closes the connection, which frees the lock, and so does a killed runner's.

use crate::driver::{has_sqlstate, Driver, Sealed};
use crate::lock_wait::{LockSession, LockWait};
use crate::portable::{self, HISTORY_COLUMNS, HISTORY_VALUES};
use crate::statements::{compile, Statements, TrackingNames};
use crate::SqlxDb;
use migrate_core::backend::RunLock;
use migrate_core::conn::Value;
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::future::BoxFuture;
use sqlx::mysql::{MySqlQueryResult, MySqlRow};
use sqlx::{MySql, MySqlConnection, MySqlPool};

/// The table options of every table this crate creates on MySQL: text in any language, compared
/// byte for byte. Without them a table takes the database's defaults: `latin1` on a server
/// without configuration (no room for `日本`), and collations that ignore case and accents
/// (`resume` and `résumé` one key, so the second table's steps would find the first's row).
/// Like every PAD SPACE collation, `utf8mb4_bin` still ignores trailing spaces: the names
/// stored in these tables may not end in whitespace (`dialect::tracked_name_problem`, and the
/// batch jobs' names). 191 characters of `utf8mb4` fit an index key of 767 bytes, the smallest
/// InnoDB has.
pub(crate) const EXACT_TEXT: &str = " DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin";

/// One row if the column exists (binds `schema`, `table` and `column`).
const COLUMN_EXISTS: &str = "SELECT 1 FROM information_schema.columns \
     WHERE table_schema = COALESCE($(schema), DATABASE()) \
     AND table_name = $(table) AND column_name = $(column)";

/// A MySQL or MariaDB database that migrations run on.
///
/// ```no_run
/// # async fn demo() -> migrate_core::error::Result<()> {
/// let db = migrate_backends::mysql::MySqlDb::connect("mysql://app@localhost/app").await?;
/// # Ok(()) }
/// ```
pub type MySqlDb = SqlxDb<MySql>;

impl Sealed for MySql {}

impl Driver for MySql {
    const DIALECT: Dialect = Dialect::MySql;
    const BEGIN: Option<&'static str> = None;

    fn placeholder(_index: usize) -> String {
        "?".to_string()
    }

    fn statements(n: &TrackingNames) -> Statements {
        let (state, history) = (&n.state, &n.history);
        let s = compile::<MySql>;
        let history_row = s(&format!(
            "INSERT INTO {history} ({HISTORY_COLUMNS}) VALUES ({HISTORY_VALUES})"
        ));
        let clear = portable::CLEAR_DIRTY;
        // No conditional upsert: make sure the row exists, then move it conditionally. Found,
        // the row is locked for writing (an update that changes nothing), not shared as by
        // `INSERT IGNORE`: two runners that each held a shared lock on it would deadlock on the
        // compare-and-set that follows.
        let ensure_sql = format!(
            "INSERT INTO {state} (module, table_name, updated_at) VALUES ($(module), $(table), $(now)) \
             ON DUPLICATE KEY UPDATE module = module"
        );
        let ensure = s(&ensure_sql);
        let cas = "module = $(module) AND table_name = $(table) AND version <=> $(expected) \
                   AND dirty_version IS NULL";
        let moved = s(&format!(
            "UPDATE {state} SET version = $(new_version), checksum = $(new_checksum), {clear}, \
             updated_at = $(now) WHERE {cas}"
        ));
        let marked_sql = format!(
            "UPDATE {state} SET dirty_version = $(step_version), dirty_name = $(name), \
             dirty_direction = $(direction), dirty_since = $(dirty_since), updated_at = $(now) \
             WHERE {cas}"
        );
        let marked = s(&marked_sql);
        let history_finish = s(&portable::history_finish(history));
        // A journalled step's start and finish, sent as statements with their values written
        // in; the executor sends a step's start with the previous step's finish in one
        // transaction and one round trip. The history row is inserted only when the
        // compare-and-set moved the row (ROW_COUNT() in the insert is the mark's); the
        // executor reads the insert's own count from its result (1: the row moved). The
        // insert must stay the start's last statement.
        let mark_and_start = format!(
            "{marked_sql}; INSERT INTO {history} ({HISTORY_COLUMNS}) SELECT {HISTORY_VALUES} \
             FROM DUAL WHERE ROW_COUNT() = 1"
        );
        let journal_start = s(&format!("{ensure_sql}; {mark_and_start}"));
        let journal_start_existing = s(&mark_and_start);
        // Moves the state only while the step's own mark is there (its version, direction and
        // time): a finish committed late (or twice) cannot overwrite what came after it, even a
        // later mark of the same step.
        let journal_finish = s(&format!(
            "{} AND dirty_version = $(step_version) AND dirty_direction = $(direction) \
             AND dirty_since = $(dirty_since); {}",
            portable::state_move(state),
            portable::history_finish(history)
        ));
        // VARCHAR(191): the longest key that fits an index of utf8mb4 on every InnoDB format.
        Statements {
            create_schema: None,
            schema_exists: None,
            read_state: portable::read_state(state).into(),
            read_state_unpacked: None,
            state_fingerprint: Some(crate::fingerprint::statements(state, COLUMN_EXISTS)),
            create: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {state} (module VARCHAR(191) NOT NULL, \
                     table_name VARCHAR(191) NOT NULL, version VARCHAR(191), \
                     checksum VARCHAR(191), dirty_version VARCHAR(191), dirty_name TEXT, \
                     dirty_direction VARCHAR(191), dirty_since BIGINT, updated_at BIGINT NOT NULL, \
                     {}, PRIMARY KEY (module, table_name)){EXACT_TEXT}",
                    crate::fingerprint::column_definition()
                ),
                // MySQL has no CREATE INDEX IF NOT EXISTS: the index goes in the table.
                format!(
                    "CREATE TABLE IF NOT EXISTS {history} (\
                     id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, module VARCHAR(191) NOT NULL, \
                     table_name VARCHAR(191) NOT NULL, version VARCHAR(191) NOT NULL, \
                     name TEXT NOT NULL, checksum VARCHAR(191) NOT NULL, \
                     direction VARCHAR(191) NOT NULL, outcome VARCHAR(191) NOT NULL, \
                     started_at BIGINT NOT NULL, started_at_utc VARCHAR(32), finished_at BIGINT, \
                     execution_us BIGINT, error TEXT, \
                     INDEX {} (module, table_name, version)){EXACT_TEXT}",
                    n.history_index
                ),
            ],
            // MySQL 8 has no ADD COLUMN IF NOT EXISTS; its "duplicate column" error is skipped.
            upgrade: vec![format!(
                "ALTER TABLE {history} ADD COLUMN started_at_utc VARCHAR(32) AFTER started_at"
            )],
            record: vec![ensure.clone(), moved, history_row.clone()],
            record_and_commit: None,
            record_and_commit_existing: None,
            record_existing: None,
            record_session: None,
            record_cas: 1,
            start: vec![ensure.clone(), marked, history_row.clone()],
            start_cas: 1,
            clear_resumed: s(&portable::clear_resumed_mark(state)),
            journal_start: Some(journal_start),
            journal_start_existing: Some(journal_start_existing),
            journal_finish: Some(journal_finish),
            finish: vec![s(&portable::state_move(state)), history_finish.clone()],
            refuse: vec![s(&portable::clear_mark(state)), history_finish.clone()],
            history: history_row,
            history_finish,
            state_set: vec![ensure, s(&portable::state_move(state))],
            set_step_checksum: s(&portable::set_step_checksum(history)),
            history_select: portable::history_select(history),
            table_exists: s("SELECT 1 FROM information_schema.tables \
                 WHERE table_schema = COALESCE($(schema), DATABASE()) AND table_name = $(table)"),
            column_exists: s(COLUMN_EXISTS),
            persistent: true,
        }
    }

    fn is_missing_column(err: &sqlx::Error) -> bool {
        // ER_BAD_FIELD_ERROR
        has_sqlstate(err, "42S22")
    }

    fn is_already_done(err: &sqlx::Error) -> bool {
        // ER_DUP_FIELDNAME
        has_sqlstate(err, "42S21")
    }

    fn is_lost_race(err: &sqlx::Error) -> bool {
        // ER_LOCK_DEADLOCK, SQLSTATE 40001: InnoDB chose this transaction as a deadlock's
        // victim and rolled all of it back.
        has_sqlstate(err, "40001")
    }

    fn is_lost_session(err: &sqlx::Error) -> bool {
        // 1927 ER_CONNECTION_KILLED (MariaDB's `KILL`, a shutdown), 4031
        // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+ ending an idle session at `wait_timeout`);
        // 1053 ER_SERVER_SHUTDOWN is SQLSTATE 08S01, in the class. Not 1317 (`KILL QUERY`) nor
        // MariaDB's 1969 (`max_statement_time`): their SQLSTATE is 1927's, their session lives.
        crate::driver::is_lost_connection(err)
            || err
                .as_database_error()
                .and_then(|d| d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>())
                .is_some_and(|d| matches!(d.number(), 1927 | 4031))
    }

    fn rows_affected(result: &MySqlQueryResult) -> u64 {
        result.rows_affected()
    }

    fn decode_value(row: &MySqlRow, index: usize) -> Result<Value> {
        // An UNSIGNED integer first: the portable decoder tries the signed types, which sqlx
        // refuses for it, and then `bool`, which sqlx accepts for every integer column, so an
        // `INT UNSIGNED` id or `CONNECTION_ID()` would come back as 0 or 1. A value above
        // `i64::MAX` comes back as its digits, exactly.
        if let Ok(unsigned) = sqlx::Row::try_get::<Option<u64>, _>(row, index) {
            return Ok(match unsigned {
                None => Value::Null,
                Some(n) => {
                    i64::try_from(n).map_or_else(|_| Value::Numeric(n.to_string()), Value::Int)
                }
            });
        }
        crate::decode::decode_value::<MySql>(row, index)
    }

    fn is_missing_table(err: &sqlx::Error) -> bool {
        // ER_NO_SUCH_TABLE, SQLSTATE 42S02
        has_sqlstate(err, "42S02")
    }

    fn lock(db: &MySqlDb, timeout: std::time::Duration) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        Box::pin(async move {
            db.lock_has_a_connection()?;
            get_lock(db, LockWait::new(timeout)).await
        })
    }
}

impl SqlxDb<MySql> {
    /// Connects with a MySQL URL (`mysql://user:password@host/database`). The pool keeps one
    /// connection for the runner lock and one for the steps.
    pub async fn connect(url: &str) -> Result<Self> {
        SqlxDb::connect_server(url, crate::sqlx_db::DEFAULT_CONNECT_TIMEOUT).await
    }

    /// Like [`connect`](Self::connect), giving up after `timeout` (instead of
    /// [`DEFAULT_CONNECT_TIMEOUT`](crate::sqlx_db::DEFAULT_CONNECT_TIMEOUT)) with
    /// [`Error::Unreachable`](migrate_core::error::Error::Unreachable) when the server does not
    /// answer.
    pub async fn connect_with_timeout(url: &str, timeout: std::time::Duration) -> Result<Self> {
        SqlxDb::connect_server(url, timeout).await
    }

    /// Runs migrations on an existing pool. It needs at least two connections: the lock holds
    /// one for the whole run.
    ///
    /// Inside a Tokio runtime, on a pool of two connections or more with one of them idle, this
    /// begins the check-out of the connection the first call uses, as `PgDb::from_pool` does: the first call takes
    /// the pool's ping's answer instead of waiting a round trip for it, and the executor holds
    /// that connection from then on, as it keeps one after every call.
    pub fn from_pool(pool: MySqlPool) -> Self {
        SqlxDb::with_pool(pool).begin_check_out()
    }
}

/// `GET_LOCK` names are server-wide: the name includes the database and the tracking table, and
/// is hashed to fit MySQL's 64-character limit.
async fn lock_name(conn: &mut MySqlConnection, table: &str) -> Result<String> {
    let database: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut *conn)
        .await?;
    let name = format!("{}:{table}", database.unwrap_or_default());
    Ok(format!(
        "migrate:{:016x}",
        migrate_core::__private::stable_hash(name.as_bytes())
    ))
}

/// Takes the named lock, waiting in slices of at most the report interval so that a waiting
/// runner says who it waits for.
async fn get_lock(db: &MySqlDb, mut wait: LockWait) -> Result<Box<dyn RunLock>> {
    let mut session = LockSession::new(db.pool.acquire().await?);
    let name = lock_name(session.conn(), &db.tracking_table).await?;
    loop {
        let taken: Option<i64> = sqlx::query_scalar("SELECT GET_LOCK(?, ?)")
            .bind(&name)
            .bind(wait.next_slice().as_secs_f64())
            .fetch_one(session.conn())
            .await?;
        if taken == Some(1) {
            // Nothing is sent on the lock's session until the release: a server's low
            // `wait_timeout` (shared hosting) would end it mid-run and free the lock. Best
            // effort, and at most the year MySQL allows.
            if let Err(err) = sqlx::raw_sql("SET SESSION wait_timeout = 31536000")
                .execute(session.conn())
                .await
            {
                tracing::warn!(error = %err, "could not keep the lock's session from an idle timeout");
            }
            return Ok(Box::new(NamedLock { session, name }));
        }
        if wait.expired() {
            return Err(Error::LockTimeout {
                waited: wait.timeout(),
                holder: Some(crate::lock_wait::holder_or_unknown(
                    lock_holder(session.conn(), &name).await,
                )),
            });
        }
        if wait.report_due() {
            wait.report(&crate::lock_wait::holder_or_unknown(
                lock_holder(session.conn(), &name).await,
            ));
        }
    }
}

/// Who holds the named lock: the connection id, when the server still shows one.
async fn lock_holder(conn: &mut MySqlConnection, name: &str) -> Result<String> {
    let holder: Option<i64> = sqlx::query_scalar("SELECT IS_USED_LOCK(?)")
        .bind(name)
        .fetch_one(&mut *conn)
        .await?;
    Ok(match holder {
        Some(id) => format!("MySQL connection id {id} (GET_LOCK '{name}')"),
        None => format!("another connection (GET_LOCK '{name}')"),
    })
}

/// A held `GET_LOCK` and the session that holds it (closed if the lock is dropped unreleased,
/// which frees it).
#[derive(Debug)]
struct NamedLock {
    session: LockSession<MySql>,
    name: String,
}

impl RunLock for NamedLock {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let NamedLock { mut session, name } = *self;
        Box::pin(async move {
            let released: std::result::Result<Option<i64>, sqlx::Error> =
                sqlx::query_scalar("SELECT RELEASE_LOCK(?)")
                    .bind(&name)
                    .fetch_one(session.conn())
                    .await;
            if matches!(released, Ok(Some(1))) {
                session.into_pool();
            } else if let Ok(answer) = released {
                // 0: another session holds it; NULL: nobody does. Either way this run did not
                // hold it to its end, and other runners were not kept out.
                tracing::warn!(
                    lock = %name,
                    answer = ?answer,
                    "the run lock was not held when the run released it: this run may not have kept other runners out"
                );
            }
            // Otherwise (not held any more, or the connection broke) the session is ended. A
            // session that ended during the run took the lock with it: nothing is left to
            // release, and what the run did is committed.
            match released {
                Err(err) if <MySql as Driver>::is_lost_session(&err) => {
                    tracing::warn!(lock = %name, error = %err, "the run lock's session ended during the run, and the lock with it: this run may not have kept other runners out");
                    Ok(())
                }
                other => other.map(|_| ()).map_err(Error::from),
            }
        })
    }
}
