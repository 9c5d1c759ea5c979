//! The SQLite backend (feature `sqlite`; SQLite is bundled, nothing to install).
//!
//! - **Lock:** a run holds an OS file lock on `<database file>.migrate-lock`, taken until the
//!   lock timeout; the OS frees it when the process ends, so a crashed runner cannot leave it
//!   behind. Each step also runs in `BEGIN IMMEDIATE` (SQLite's write lock, bounded by the busy
//!   timeout) and moves the state row with a compare-and-set, so even runners that share no
//!   lock file (an in-memory database, which has none) apply every step exactly once. A pool
//!   passed in with [`SqliteDb::from_pool`] takes the lock file of its database file too.
//! - **Transactions:** SQLite's DDL is transactional, so a step and its tracking rows commit
//!   together; `transaction = false` steps are journalled.
//! - **The "up to date" check** asks the database's wal-index (the `-shm` file) whether anything
//!   committed since the executor's last read of its state, without a hand-off to the
//!   connection's thread (`wal_index`). An executor from [`SqliteDb::open`],
//!   [`SqliteDb::connect`] or [`SqliteDb::from_pool`] on a file keeps that file open,
//!   read-only, while it exists (one descriptor per database, at most 64 per process):
//!   SQLite's locks on it belong to the process, and closing any descriptor of the file would
//!   drop them. It is closed once SQLite deleted the file, when the database's last connection
//!   closed.

use crate::driver::{Driver, Sealed};
use crate::lock_wait::LockWait;
use crate::portable::{self, HISTORY_COLUMNS, HISTORY_VALUES};
use crate::sqlite_opened::{
    is_in_memory, options_trust_wal_index, url_is_in_memory, url_is_read_only, url_trusts_wal_index,
};
use crate::sqlx_db::DEFAULT_LOCK_TIMEOUT;
use crate::statements::{compile, Statements, TrackingNames};
use crate::wal_index::WalIndex;
use crate::SqlxDb;
use migrate_core::backend::{NoLock, RunLock};
use migrate_core::conn::Value;
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use migrate_core::future::BoxFuture;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Executor as _, Sqlite, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A SQLite database that migrations run on.
///
/// ```no_run
/// # async fn demo() -> migrate_core::error::Result<()> {
/// let db = migrate_backends::sqlite::SqliteDb::open("app.db").await?;
/// # Ok(()) }
/// ```
pub type SqliteDb = SqlxDb<Sqlite>;

impl Sealed for Sqlite {}

impl Driver for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    const BEGIN: Option<&'static str> = Some("BEGIN IMMEDIATE");

    fn placeholder(index: usize) -> String {
        format!("?{index}")
    }

    fn statements(n: &TrackingNames) -> Statements {
        let (state, history) = (&n.state, &n.history);
        let s = compile::<Sqlite>;
        let history_row = s(&format!(
            "INSERT INTO {history} ({HISTORY_COLUMNS}) VALUES ({HISTORY_VALUES})"
        ));
        // Moves the state row only if it still holds what the plan was made from.
        let cas = "WHERE s.version IS $(expected) AND s.dirty_version IS NULL";
        let moved = s(&portable::state_upsert(state, cas));
        let marked = s(&portable::mark_upsert(state, cas));
        let history_finish = s(&portable::history_finish(history));
        // The state row moved under the compare-and-set, the history row, the commit, and the
        // next step's BEGIN IMMEDIATE, in one list. The history row's outcome is NULL (refused by
        // its NOT NULL) when the compare-and-set changed nothing, which stops the list before
        // its COMMIT.
        let begin_next = Self::BEGIN.unwrap_or("BEGIN");
        let values_if_moved =
            HISTORY_VALUES.replace("$(outcome)", "CASE WHEN changes() = 1 THEN $(outcome) END");
        let history_commit_begin = format!(
            "INSERT INTO {history} ({HISTORY_COLUMNS}) SELECT {values_if_moved}; COMMIT; {begin_next}"
        );
        let record_and_commit = s(&format!(
            "{}; {history_commit_begin}",
            portable::state_upsert(state, cas)
        ));
        // A version is expected, so the row exists and holds no mark (else the plan would
        // not have run the step): the compare-and-set needs no upsert.
        let record_and_commit_existing = s(&format!(
            "{} AND version = $(expected) AND dirty_version IS NULL; {history_commit_begin}",
            portable::state_move(state)
        ));
        Statements {
            create_schema: None,
            schema_exists: None,
            read_state: packed_read_state(state).into(),
            read_state_unpacked: Some(portable::read_state(state).into()),
            state_fingerprint: None,
            create: vec![
                format!(
                    "CREATE TABLE IF NOT EXISTS {state} (module TEXT NOT NULL, \
                     table_name TEXT NOT NULL, version TEXT, checksum TEXT, dirty_version TEXT, \
                     dirty_name TEXT, dirty_direction TEXT, dirty_since INTEGER, \
                     updated_at INTEGER NOT NULL, PRIMARY KEY (module, table_name))"
                ),
                // A rowid table without AUTOINCREMENT and without a secondary index: each
                // step writes one history page, not three (`sqlite_sequence` and the index
                // are pages of their own). Rows are never deleted, so ids still grow. Tables
                // made by earlier versions keep their AUTOINCREMENT and index, which work the
                // same way.
                format!(
                    "CREATE TABLE IF NOT EXISTS {history} (id INTEGER PRIMARY KEY, \
                     module TEXT NOT NULL, table_name TEXT NOT NULL, version TEXT NOT NULL, \
                     name TEXT NOT NULL, checksum TEXT NOT NULL, direction TEXT NOT NULL, \
                     outcome TEXT NOT NULL, started_at INTEGER NOT NULL, started_at_utc TEXT, \
                     finished_at INTEGER, execution_us INTEGER, error TEXT)"
                ),
            ],
            upgrade: vec![format!(
                "ALTER TABLE {history} ADD COLUMN started_at_utc TEXT"
            )],
            record: vec![moved.clone(), history_row.clone()],
            record_and_commit: Some(record_and_commit),
            record_and_commit_existing: Some(record_and_commit_existing),
            record_existing: None,
            record_session: None,
            record_cas: 0,
            start: vec![marked, history_row.clone()],
            start_cas: 0,
            clear_resumed: s(&portable::clear_resumed_mark(state)),
            journal_start: None,
            journal_start_existing: None,
            journal_finish: None,
            finish: vec![s(&portable::state_move(state)), history_finish.clone()],
            refuse: vec![s(&portable::clear_mark(state)), history_finish.clone()],
            history: history_row,
            history_finish,
            state_set: vec![s(&portable::state_upsert(state, ""))],
            set_step_checksum: s(&portable::set_step_checksum(history)),
            history_select: portable::history_select(history),
            // SQLite's schemas are attached databases; `{{schema}}` is not used with it. Its
            // names are not case-sensitive (`Users` is `users`), and a view counts, as on
            // PostgreSQL and MySQL.
            table_exists: s(
                "SELECT 1 FROM sqlite_master WHERE type IN ('table', 'view') \
                 AND name = $(table) COLLATE NOCASE",
            ),
            // SQLite's column names are not case-sensitive; `table_xinfo` also lists generated
            // and hidden columns.
            column_exists: s(
                "SELECT 1 FROM pragma_table_xinfo($(table)) WHERE name = $(column) COLLATE NOCASE",
            ),
            persistent: true,
        }
    }

    fn is_already_done(err: &sqlx::Error) -> bool {
        err.as_database_error()
            .is_some_and(|d| d.message().contains("duplicate column name"))
    }

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn decode_value(row: &SqliteRow, index: usize) -> Result<Value> {
        crate::decode::decode_value::<Sqlite>(row, index)
    }

    fn is_lost_race(err: &sqlx::Error) -> bool {
        err.as_database_error().is_some_and(|d| {
            d.message().contains("NOT NULL constraint failed") && d.message().ends_with(".outcome")
        })
    }

    fn is_missing_table(err: &sqlx::Error) -> bool {
        err.as_database_error()
            .is_some_and(|d| d.message().contains("no such table"))
    }

    fn lock_error(err: sqlx::Error, waited: Duration) -> Error {
        // SQLITE_BUSY (5) and SQLITE_LOCKED (6), in their extended forms too.
        let busy = err
            .as_database_error()
            .and_then(|d| d.code())
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6));
        if busy {
            Error::LockTimeout {
                waited,
                holder: Some("another connection holding the SQLite write lock".to_string()),
            }
        } else {
            err.into()
        }
    }

    fn lock(db: &SqliteDb, timeout: Duration) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        Box::pin(async move {
            match &db.lock.file {
                Some(path) => file_lock(path, timeout).await,
                // In-memory (no file to lock beside): per-step BEGIN IMMEDIATE and the
                // compare-and-set keep every step exactly-once.
                None => Ok(Box::new(NoLock) as Box<dyn RunLock>),
            }
        })
    }
}

/// Every state row in one text value (`packed_state::unpack`), as SQLite's JSON functions
/// write it: one result row is one hand-off from SQLite's thread, where a row per table would
/// be one each, and the statement is short to prepare on a new connection. A value the
/// decoder does not expect makes the executor read the rows one by one.
fn packed_read_state(state: &str) -> String {
    format!(
        "SELECT json_group_array(json_array({})) FROM {state}",
        portable::STATE_READ_COLUMNS.join(", ")
    )
}

impl SqlxDb<Sqlite> {
    /// Opens (creating if missing) the database file at `path`, in WAL mode with
    /// `synchronous = NORMAL`, waiting at most [`DEFAULT_LOCK_TIMEOUT`] for another runner
    /// (change it with [`with_lock_timeout`](SqlxDb::with_lock_timeout)).
    ///
    /// ```
    /// # async fn demo() -> migrate_core::error::Result<()> {
    /// let dir = std::env::temp_dir().join(format!("migrate-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let db = migrate_backends::sqlite::SqliteDb::open(dir.join("app.db")).await?;
    /// # Ok(()) }
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
    /// ```
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let in_memory = is_in_memory(path.as_ref());
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        Self::connect_with_options(options, in_memory, true, None, None).await
    }

    /// Connects with a sqlx SQLite URL, such as `sqlite://app.db?mode=rwc`, with the same
    /// settings as [`open`](Self::open) (WAL, `synchronous = NORMAL`: durable across a crash of
    /// the application, and one fsync per checkpoint instead of one per commit).
    /// An in-memory URL (`sqlite::memory:`) gets a single connection, since every connection
    /// to `:memory:` is a database of its own.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_tracking(url, None, None).await
    }

    /// [`connect`](Self::connect) with the tracking table `table` in place of the default one
    /// before the state read started at connect, which then reads that table's rows (with
    /// [`with_tracking_table`](SqlxDb::with_tracking_table) after `connect`, that read is of
    /// the default table and wasted), and the lock timeout `lock_timeout` in place of
    /// [`DEFAULT_LOCK_TIMEOUT`], which the connections are opened with (with
    /// [`with_lock_timeout`](SqlxDb::with_lock_timeout) after `connect`, every connection is
    /// told again as it is handed out). `migrate::connect_with` uses it.
    pub(crate) async fn connect_tracking(
        url: &str,
        table: Option<&str>,
        lock_timeout: Option<Duration>,
    ) -> Result<Self> {
        if let Some(table) = table {
            // Checked before the file is opened, or created.
            crate::sqlx_db::check_tracking_table(table)?;
        }
        let options = SqliteConnectOptions::from_str(url)?;
        // sqlx keeps the file name of a `mode=memory` URL, and has no getter for the mode.
        let in_memory = is_in_memory(options.get_filename()) || url_is_in_memory(url);
        let wal_trusted = url_trusts_wal_index(url);
        // Opened read-only, the database keeps the journal mode it has: switching it to WAL
        // is a write, which would fail the connection.
        let options = if url_is_read_only(url) {
            options
        } else {
            options.journal_mode(SqliteJournalMode::Wal)
        };
        Self::connect_with_options(options, in_memory, wal_trusted, table, lock_timeout).await
    }

    /// The pool behind `open` and `connect`: one connection for an in-memory database (each
    /// connection would be a database of its own), which also needs no run-lock file.
    /// `wal_trusted`: whether the options allow telling the database's changes by its
    /// wal-index (`wal_index`). `table`: the tracking table, if not the default one (checked).
    /// `lock_timeout`: the lock timeout, and the busy timeout every connection opens with, so
    /// that none needs telling later (`None`: [`DEFAULT_LOCK_TIMEOUT`]).
    async fn connect_with_options(
        options: SqliteConnectOptions,
        in_memory: bool,
        wal_trusted: bool,
        table: Option<&str>,
        lock_timeout: Option<Duration>,
    ) -> Result<Self> {
        let connections = if in_memory { 1 } else { 2 };
        let lock_timeout = lock_timeout.unwrap_or(DEFAULT_LOCK_TIMEOUT);
        let options = options
            .synchronous(SqliteSynchronous::Normal)
            // Clamped as `PRAGMA busy_timeout` is: sqlx panics on more than `i32::MAX` ms.
            .busy_timeout(Duration::from_millis(millis(lock_timeout)));
        let filename = options.get_filename().to_path_buf();
        let wal_trusted = wal_trusted && !in_memory;
        // `with_lock_timeout` may change the busy timeout after the pool is open: a connection
        // handed out after that gets the new one first.
        let busy_ms = Arc::new(AtomicU64::new(BUSY_AS_OPENED));
        let (on_acquire, on_connect) = (busy_ms.clone(), busy_ms.clone());
        // An in-memory database lives as long as its one connection: the pool never retires
        // it for age or idleness (sqlx's defaults would, and drop the database with it).
        let (max_lifetime, idle_timeout) = if in_memory {
            (None, None)
        } else {
            (
                Some(Duration::from_secs(30 * 60)),
                Some(Duration::from_secs(10 * 60)),
            )
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .max_lifetime(max_lifetime)
            .idle_timeout(idle_timeout)
            .test_before_acquire(false)
            .before_acquire(move |conn, _| {
                let ms = on_acquire.load(Ordering::Relaxed);
                Box::pin(async move { set_busy_timeout(conn, ms).await.map(|()| true) })
            })
            .after_connect(move |conn, _| {
                let ms = on_connect.load(Ordering::Relaxed);
                Box::pin(set_busy_timeout(conn, ms))
            })
            .connect_with(options)
            .await
            .map_err(|e| Sqlite::lock_error(e, lock_timeout))?;
        let mut db = SqlxDb::with_pool(pool);
        db.lock.timeout = lock_timeout;
        if let Some(table) = table {
            // Checked by `connect_tracking`, before the file was opened.
            db.configure(None, table.to_string());
        }
        // The connection the pool opened to check the file becomes the kept one: the first
        // call (at start-up, the "already up to date" check) takes no pool check-out, and
        // finds the state read it needs started on SQLite's thread now, while the caller
        // builds its manager (`state_read::read_ahead`). The wal-index header taken first
        // (the connection has opened the wal-index by now) lets that call take the rows
        // without asking the connection whether they are still the database's.
        let conn = db
            .pool
            .acquire()
            .await
            .map_err(|e| Sqlite::lock_error(e, lock_timeout))?;
        db.wal_index = wal_index_if(wal_trusted, &filename);
        db.held.put_reading(crate::state_read::read_ahead(
            conn,
            db.sql.read_state.clone(),
            busy_ms.clone(),
            db.wal_index.clone(),
        ));
        // The read is with the connection's thread now. The scheduler often queues that thread
        // on this CPU, behind the calling thread, which would go on (typically building its
        // `MigrationManager`) and leave the first check waiting for the whole read. Giving the
        // CPU up once lets such a thread take the read now; with nothing else runnable here,
        // this returns at once. On a busy CPU other threads may run first.
        std::thread::yield_now();
        db.target = if in_memory {
            "in-memory database".to_string()
        } else {
            filename.display().to_string()
        };
        db.lock.file = if in_memory {
            None
        } else {
            lock_file(&filename)
        };
        db.lock.busy_ms = Some(busy_ms);
        Ok(db)
    }

    /// Runs migrations on an existing pool; its busy timeout bounds the wait for the write lock,
    /// and the lock timeout the wait for the run lock.
    ///
    /// The "up to date" check asks the database's wal-index, as an executor that connected
    /// does, once the first read of one of the pool's connections confirmed the database in
    /// WAL mode, locked as usual, and where its file is; not when the pool's options open the
    /// database read-only, immutable, in memory or through a VFS of their choosing, nor when
    /// the file does not exist yet (a lazy pool): its checks then ask the connection.
    ///
    /// Like [`open`](Self::open) and [`connect`](Self::connect), which start the first state
    /// read as they connect, this begins one on a connection of the pool, checked out as the
    /// pool hands them out (its test before acquire, its hooks): the check-out is begun here
    /// (an idle connection's ping handed to its thread), and the first call goes on with it
    /// and the read. From then on the executor holds that connection, as it keeps one after
    /// every call, until it is dropped (before its first call, the check-out is finished in a
    /// task and the connection goes back to the pool) or a call fails. Nothing is begun
    /// outside a Tokio runtime, on a pool of one connection, which the caller may want for
    /// itself before the first call, nor while none of the pool's connections is idle (a
    /// check-out that waited would take the next one freed ahead of the caller). A pool built
    /// with `test_before_acquire(false)` has no ping to wait for: the read is sent here, and
    /// runs while the caller goes on, as `connect`'s does (a SQLite connection is a file
    /// opened in the process, not a session a server can end, so the ping tests little).
    pub fn from_pool(pool: SqlitePool) -> Self {
        let options = pool.connect_options();
        let filename = options.get_filename().to_path_buf();
        let wal_trusted = options_trust_wal_index(&options);
        let mut db = SqlxDb::with_pool(pool);
        db.target = filename.display().to_string();
        db.lock.file = lock_file(&filename);
        db.wal_index = wal_index_if(wal_trusted, &filename);
        let begun = db.held.put_check_out(&db.pool, || {
            let (query, wal_index) = (db.sql.read_state.clone(), db.wal_index.clone());
            crate::state_read::read_ahead_on_pool(db.pool.clone(), query, wal_index)
        });
        if begun {
            // As `connect` does: the connection's thread, often queued on this CPU, takes the
            // ping now rather than when the first call waits for it.
            std::thread::yield_now();
        }
        db
    }
}

/// The wal-index of the database file `filename` when the way it is opened lets it be
/// `trusted` (`sqlite_opened`), its name guessed until a connection confirms it.
fn wal_index_if(trusted: bool, filename: &Path) -> Option<Arc<WalIndex>> {
    trusted
        .then(|| WalIndex::guessed(filename))
        .flatten()
        .map(Arc::new)
}

/// The busy timeout of an executor whose lock timeout was not set after it connected: the one
/// its connections are opened with (its lock timeout at connect), so nothing needs setting on
/// them.
pub(crate) const BUSY_AS_OPENED: u64 = u64::MAX;

/// Sets a connection's busy timeout to `ms`, unless `ms` is [`BUSY_AS_OPENED`]. Once the lock
/// timeout was set, it is set on every connection handed out, even back to the default: the
/// connection may have had another one.
pub(crate) async fn set_busy_timeout(
    conn: &mut sqlx::SqliteConnection,
    ms: u64,
) -> sqlx::Result<()> {
    if ms != BUSY_AS_OPENED {
        conn.execute(sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}")))
            .await?;
    }
    Ok(())
}

/// `d` as SQLite's busy timeout: milliseconds, at most `i32::MAX` (24.8 days). SQLite reads a
/// larger `PRAGMA busy_timeout` as 0, which would turn a long wait into none at all.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).map_or(MAX_BUSY_MS, |ms| ms.min(MAX_BUSY_MS))
}

const MAX_BUSY_MS: u64 = i32::MAX as u64;

/// What the run-lock file's name adds to its database file's.
pub(crate) const LOCK_FILE_SUFFIX: &str = ".migrate-lock";

/// The run-lock file beside a database file; none for in-memory databases.
fn lock_file(database: &Path) -> Option<std::path::PathBuf> {
    if is_in_memory(database) {
        return None;
    }
    let mut lock = database.as_os_str().to_owned();
    lock.push(LOCK_FILE_SUFFIX);
    Some(lock.into())
}

/// How often a waiting runner retries the file lock.
const LOCK_POLL: Duration = Duration::from_millis(20);

/// The lock file of the database the path leads to: a symbolic link (or a path through one)
/// to a database locks beside the file SQLite opens, as every other path to it does. The
/// path as given when the database cannot be resolved (not created yet).
fn resolved_lock_file(lock: &Path) -> std::path::PathBuf {
    let resolved = lock
        .as_os_str()
        .as_encoded_bytes()
        .strip_suffix(LOCK_FILE_SUFFIX.as_bytes())
        .and_then(|database| std::str::from_utf8(database).ok())
        .and_then(|database| std::fs::canonicalize(database).ok());
    match resolved {
        Some(database) => {
            let mut lock = database.into_os_string();
            lock.push(LOCK_FILE_SUFFIX);
            lock.into()
        }
        None => lock.to_path_buf(),
    }
}

async fn file_lock(path: &Path, timeout: Duration) -> Result<Box<dyn RunLock>> {
    let path = &resolved_lock_file(path);
    let opened = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path);
    // A lock file another user made (a deploy user's, or root's) that this one may not write:
    // an OS lock needs no write, as SQLite's shared files, made with the database's owner and
    // mode, need none to be used.
    let opened = match opened {
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            std::fs::File::open(path).map_err(|_| err)
        }
        other => other,
    };
    let file = opened.map_err(|source| Error::Io {
        operation: "open the run-lock file",
        path: path.to_path_buf(),
        source,
    })?;
    let mut wait = LockWait::new(timeout);
    let holder = || format!("another runner holding {}", path.display());
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(Box::new(FileLock {
                    file,
                    path: path.to_path_buf(),
                }))
            }
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(Error::Io {
                    operation: "lock the run-lock file",
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
        if wait.expired() {
            return Err(Error::LockTimeout {
                waited: wait.timeout(),
                holder: Some(holder()),
            });
        }
        if wait.report_due() {
            wait.report(&holder());
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// A held OS lock on the lock file; closing the file releases it, and so does the end of the
/// process.
#[derive(Debug)]
struct FileLock {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl RunLock for FileLock {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let unlocked = self.file.unlock().map_err(|source| Error::Io {
            operation: "unlock the run-lock file",
            path: self.path.clone(),
            source,
        });
        Box::pin(async move { unlocked })
    }
}

#[cfg(test)]
mod tests {
    use super::{lock_file, millis, LOCK_FILE_SUFFIX};
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn busy_timeouts_stay_within_what_sqlite_reads() {
        assert_eq!(millis(Duration::from_secs(3)), 3_000);
        assert_eq!(
            millis(Duration::from_secs(40 * 24 * 60 * 60)),
            i32::MAX as u64
        );
        assert_eq!(millis(Duration::MAX), i32::MAX as u64);
    }

    #[test]
    fn in_memory_databases_get_no_lock_file() {
        for name in [
            "",
            ":memory:",
            "file:sqlx-in-memory-0",
            "file:shared?mode=memory&cache=shared",
            "file:shared?cache=shared&mode=m%65mory",
            "file::memory:",
            "file::memory:?cache=shared",
        ] {
            assert_eq!(lock_file(Path::new(name)), None, "{name}");
        }
        for name in [
            "/tmp/app.db",
            "/tmp/mode=memory.db",
            "/tmp/a:memory:b.db",
            "file:app.db?mode=rwc",
            "file:app.db?mode=memoryless",
        ] {
            let mut lock = name.to_string();
            lock.push_str(LOCK_FILE_SUFFIX);
            assert_eq!(lock_file(Path::new(name)), Some(lock.into()), "{name}");
        }
    }

    #[tokio::test]
    #[cfg(feature = "testing")]
    async fn a_file_named_like_a_memory_uri_is_a_file_with_a_run_lock() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mode=memory.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = super::SqliteDb::connect(&url).await.expect("connect");
        let lock = db.lock.file.clone().expect("a run-lock file");
        assert_eq!(lock, path.with_file_name("mode=memory.db.migrate-lock"));
        assert_eq!(db.pool.options().get_max_connections(), 2);
        db.close().await;
        assert!(path.exists(), "the database is a file");
    }
}
