//! The SQLite backend (feature `sqlite`; SQLite is bundled, nothing to install).
//!
//! - **Lock:** a run holds an OS file lock on `<database file>.migrate-lock`, taken until the
//!   lock timeout; the OS frees it when the process ends, so a crashed runner cannot leave it
//!   behind. Each step also runs in `BEGIN IMMEDIATE` (SQLite's write lock, bounded by the busy
//!   timeout) and moves the state row with a compare-and-set, so even runners that share no
//!   lock file (a pool passed in with [`SqliteDb::from_pool`]) apply every step exactly once.
//! - **Transactions:** SQLite's DDL is transactional, so a step and its tracking rows commit
//!   together; `transaction = false` steps are journalled.

use crate::driver::{Driver, Sealed};
use crate::SqlxDb;
use migrate_core::{BoxFuture, Dialect, Error, NoLock, Result, RunLock, Value};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteQueryResult, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// A SQLite database that migrations run on.
///
/// ```no_run
/// # async fn demo() -> migrate_core::Result<()> {
/// let db = migrate_backends::sqlite::SqliteDb::open("app.db").await?;
/// # Ok(()) }
/// ```
pub type SqliteDb = SqlxDb<Sqlite>;

/// How long a SQLite runner waits for the write lock by default.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

impl Sealed for Sqlite {}

impl Driver for Sqlite {
    const DIALECT: Dialect = Dialect::Sqlite;
    const BEGIN: Option<&'static str> = Some("BEGIN IMMEDIATE");

    fn rows_affected(result: &SqliteQueryResult) -> u64 {
        result.rows_affected()
    }

    fn decode_value(row: &SqliteRow, index: usize) -> Result<Value> {
        crate::raw::decode_value::<Sqlite>(row, index)
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

    fn lock(db: &SqliteDb) -> BoxFuture<'_, Result<Box<dyn RunLock>>> {
        Box::pin(async move {
            match &db.lock.file {
                Some(path) => file_lock(path, db.lock.timeout).await,
                // In-memory, or a pool passed in: per-step BEGIN IMMEDIATE and the
                // compare-and-set keep every step exactly-once.
                None => Ok(Box::new(NoLock) as Box<dyn RunLock>),
            }
        })
    }
}

impl SqlxDb<Sqlite> {
    /// Opens (creating if missing) the database file at `path`, in WAL mode with
    /// `synchronous = NORMAL` and a busy timeout of [`DEFAULT_LOCK_TIMEOUT`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_timeout(path, DEFAULT_LOCK_TIMEOUT).await
    }

    /// Like [`open`](Self::open), waiting at most `lock_timeout` for another runner's write
    /// lock (SQLite's busy timeout).
    pub async fn open_with_timeout(path: impl AsRef<Path>, lock_timeout: Duration) -> Result<Self> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(lock_timeout);
        Self::connect_with(options, lock_timeout).await
    }

    /// Connects with a sqlx SQLite URL, such as `sqlite://app.db?mode=rwc`, with the same
    /// settings as [`open`](Self::open) (WAL, `synchronous = NORMAL`: durable across a crash of
    /// the application, and one fsync per checkpoint instead of one per commit).
    /// An in-memory URL (`sqlite::memory:`) gets a single connection, since every connection
    /// to `:memory:` is a database of its own.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(DEFAULT_LOCK_TIMEOUT);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        Self::connect_with_pool_size(options, DEFAULT_LOCK_TIMEOUT, if in_memory { 1 } else { 2 })
            .await
    }

    async fn connect_with(options: SqliteConnectOptions, lock_timeout: Duration) -> Result<Self> {
        Self::connect_with_pool_size(options, lock_timeout, 2).await
    }

    async fn connect_with_pool_size(
        options: SqliteConnectOptions,
        lock_timeout: Duration,
        connections: u32,
    ) -> Result<Self> {
        let filename = options.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(connections)
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(|e| Sqlite::lock_error(e, lock_timeout))?;
        let mut db = SqlxDb::with_pool(pool, lock_timeout);
        db.lock.file = lock_file(&filename);
        Ok(db)
    }

    /// Runs migrations on an existing pool; its busy timeout bounds the wait for the write lock,
    /// and [`DEFAULT_LOCK_TIMEOUT`] the wait for the run lock.
    pub fn from_pool(pool: SqlitePool) -> Self {
        let filename = pool.connect_options().get_filename().to_path_buf();
        let mut db = SqlxDb::with_pool(pool, DEFAULT_LOCK_TIMEOUT);
        db.lock.file = lock_file(&filename);
        db
    }
}

/// The run-lock file beside a database file; none for in-memory databases.
fn lock_file(database: &Path) -> Option<std::path::PathBuf> {
    let name = database.to_str().unwrap_or_default();
    if name.is_empty() || name.contains(":memory:") {
        return None;
    }
    let mut lock = database.as_os_str().to_owned();
    lock.push(".migrate-lock");
    Some(lock.into())
}

/// How often a waiting runner retries the file lock.
const LOCK_POLL: Duration = Duration::from_millis(20);

async fn file_lock(path: &Path, timeout: Duration) -> Result<Box<dyn RunLock>> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::Config(format!("cannot open lock file {}: {e}", path.display())))?;
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Box::new(FileLock(file))),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(Error::Config(format!(
                    "cannot lock {}: {e}",
                    path.display()
                )))
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::LockTimeout {
                waited: timeout,
                holder: Some(format!("another runner holding {}", path.display())),
            });
        }
        tokio::time::sleep(LOCK_POLL).await;
    }
}

/// A held OS lock on the lock file; closing the file releases it, and so does the end of the
/// process.
struct FileLock(std::fs::File);

impl RunLock for FileLock {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let unlocked = self
            .0
            .unlock()
            .map_err(|e| Error::Config(format!("cannot unlock the lock file: {e}")));
        Box::pin(async move { unlocked })
    }
}
