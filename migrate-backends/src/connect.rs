//! Connecting to the database a URL names, with the backend chosen by the URL's scheme: what a
//! CLI, a start-up hook or a fleet does with a URL from the environment.

use crate::sqlx_db::{SqlxDb, DEFAULT_CONNECT_TIMEOUT};
use migrate_core::backend::MigrationBackend;
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use std::time::Duration;

/// How [`connect_with`] sets up the backend it opens. Every option has the backend's default
/// when unset.
///
/// ```
/// # async fn demo() -> migrate_core::error::Result<()> {
/// use migrate_backends::ConnectOptions;
/// let options = ConnectOptions::new()
///     .tracking_table("app_migrations")
///     .lock_timeout(std::time::Duration::from_secs(5));
/// let db = migrate_backends::connect_with("sqlite::memory:", &options).await?;
/// assert!(db.describe().contains("tracking table app_migrations"));
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// The PostgreSQL schema of the tracking tables and of `{{tables.x}}` (an error on the
    /// other databases, which have no schemas apart from databases).
    pub schema: Option<String>,
    /// The tracking table, instead of [`DEFAULT_TRACKING_TABLE`](crate::DEFAULT_TRACKING_TABLE).
    pub tracking_table: Option<String>,
    /// How long a runner waits for another's lock, instead of
    /// [`DEFAULT_LOCK_TIMEOUT`](crate::DEFAULT_LOCK_TIMEOUT). On SQLite it is also the busy
    /// timeout every connection opens with, so it bounds a wait for the database's write lock
    /// while connecting too (with zero, a connect that meets another connection's checkpoint
    /// or recovery fails at once, with [`Error::LockTimeout`]).
    pub lock_timeout: Option<Duration>,
    /// How long connecting to a server is tried, instead of [`DEFAULT_CONNECT_TIMEOUT`].
    pub connect_timeout: Option<Duration>,
    /// The PostgreSQL server is reached through a transaction-pooling proxy (PgBouncer's
    /// `pool_mode = transaction`): see `PgDb::behind_transaction_pooler`.
    pub transaction_pooling: bool,
}

impl ConnectOptions {
    /// Every option at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`schema`](Self::schema).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// Sets [`tracking_table`](Self::tracking_table).
    pub fn tracking_table(mut self, table: impl Into<String>) -> Self {
        self.tracking_table = Some(table.into());
        self
    }

    /// Sets [`lock_timeout`](Self::lock_timeout).
    pub fn lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = Some(timeout);
        self
    }

    /// Sets [`transaction_pooling`](Self::transaction_pooling).
    pub fn transaction_pooling(mut self, on: bool) -> Self {
        self.transaction_pooling = on;
        self
    }

    /// Sets [`connect_timeout`](Self::connect_timeout).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The same options on `db` turned to `schema` (a clone sharing its pool): a fleet's target.
    #[cfg(feature = "postgres")]
    pub fn on_schema(
        &self,
        db: &crate::postgres::PgDb,
        schema: &str,
    ) -> Result<Box<dyn MigrationBackend>> {
        let db = db.clone().with_schema(schema)?;
        Ok(Box::new(self.apply(db)?))
    }

    /// Applies the options every backend shares; a tracking table the executor was opened
    /// with (SQLite's `connect_tracking`) is not configured again.
    fn apply<DB: crate::Driver>(&self, mut db: SqlxDb<DB>) -> Result<SqlxDb<DB>> {
        if let Some(table) = self
            .tracking_table
            .as_ref()
            .filter(|t| **t != db.tracking_table)
        {
            db = db.with_tracking_table(table)?;
        }
        if let Some(timeout) = self.lock_timeout {
            db = db.with_lock_timeout(timeout);
        }
        Ok(db)
    }

    /// Refuses a schema on a database that has none, and transaction pooling (a PostgreSQL
    /// proxy's mode) on another database.
    #[cfg_attr(not(any(feature = "sqlite", feature = "mysql")), allow(dead_code))]
    fn no_schema(&self, database: &str) -> Result<()> {
        if self.transaction_pooling {
            return Err(Error::Config(format!(
                "transaction pooling is for PostgreSQL behind a proxy such as PgBouncer, not {database}"
            )));
        }
        match &self.schema {
            Some(schema) => Err(Error::Config(format!(
                "schema `{}` given, but {database} has no schemas: only PostgreSQL URLs take one",
                schema.escape_debug()
            ))),
            None => Ok(()),
        }
    }
}

/// Connects to the database a URL names, choosing the backend by its scheme: `sqlite:`,
/// `postgres:`/`postgresql:`, `mysql:`/`mariadb:`. The backend's feature must be enabled.
///
/// No error it returns shows the URL's password, in its message or its `Debug` output.
///
/// ```
/// # async fn demo() -> migrate_core::error::Result<()> {
/// let db = migrate_backends::connect("sqlite::memory:").await?;
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
/// ```
pub async fn connect(url: &str) -> Result<Box<dyn MigrationBackend>> {
    connect_with(url, &ConnectOptions::default()).await
}

/// [`connect`] with a schema, a tracking table and timeouts. A bad option (a schema on
/// SQLite, a tracking table that is not a plain identifier) is an
/// [`Error::Config`] naming it, returned before anything is created.
pub async fn connect_with(
    url: &str,
    options: &ConnectOptions,
) -> Result<Box<dyn MigrationBackend>> {
    connect_scheme(url, options)
        .await
        .map_err(|e| match e {
            // The driver's errors name no server or file ("failed to lookup address
            // information", "unable to open database file"): say which.
            Error::Database(driver) => {
                Error::Database(driver.context(format!("connecting to {}", target(url))))
            }
            other => other,
        })
        .map_err(|e| crate::url::redact_password(e, url))
}

/// What `url` connects to, for an error: the SQLite file as written, else the server and
/// database (never the user or password).
fn target(url: &str) -> String {
    match url.strip_prefix("sqlite:") {
        Some(rest) => {
            let file = rest.strip_prefix("//").unwrap_or(rest);
            let file = file.split_once('?').map_or(file, |(file, _)| file);
            format!("the SQLite database `{}`", file.escape_debug())
        }
        None => crate::url::server(url),
    }
}

/// The dialect of the database `url` names, after every check [`connect_with`] makes before it
/// opens anything: a backend enabled for the URL's scheme, a valid tracking table name, a
/// schema only on PostgreSQL and transaction pooling nowhere else. What a caller that connects
/// later (the CLI, which checks a command's tables and versions first) can know now; a wrong
/// option is the same [`Error::Config`] that `connect_with` returns.
#[doc(hidden)]
pub fn checked_dialect(url: &str, options: &ConnectOptions) -> Result<Dialect> {
    // A bare path, or a Windows one (`C:\\app.db`, whose one letter reads as a scheme).
    let scheme = url
        .split_once(':')
        .map(|(scheme, _)| scheme)
        .filter(|scheme| scheme.len() > 1);
    let Some(scheme) = scheme else {
        // No password without a colon: the text is safe to show.
        return Err(Error::Config(format!(
            "`{}` is not a database URL: it has no scheme (for example \
             `sqlite://app.db?mode=rwc`, `postgres://user@host/db`, `mysql://user@host/db`)",
            url.escape_debug()
        )));
    };
    if let Some(table) = &options.tracking_table {
        crate::sqlx_db::check_tracking_table(table)?;
    }
    match scheme {
        #[cfg(feature = "sqlite")]
        "sqlite" => {
            options.no_schema("SQLite")?;
            Ok(Dialect::Sqlite)
        }
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => {
            if let Some(schema) = &options.schema {
                crate::sqlx_db::check_schema(schema)?;
            }
            Ok(Dialect::Postgres)
        }
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => {
            options.no_schema("MySQL/MariaDB")?;
            Ok(Dialect::MySql)
        }
        _ if scheme.bytes().any(|b| b.is_ascii_uppercase()) => Err(Error::Config(format!(
            "URL scheme `{}:` is not lower case: write `{}:`",
            scheme.escape_debug(),
            scheme.to_ascii_lowercase().escape_debug()
        ))),
        _ => Err(Error::Config(format!(
            "no enabled backend for URL scheme `{}:` (features: sqlite, postgres, mysql)",
            scheme.escape_debug()
        ))),
    }
}

/// SQLite's executor as [`connect_with`] opens it: the tracking table and the lock timeout go in
/// before the state read started at connect, and every connection opens with that timeout.
#[cfg(feature = "sqlite")]
pub(crate) async fn sqlite_with(
    url: &str,
    options: &ConnectOptions,
) -> Result<crate::sqlite::SqliteDb> {
    let table = options.tracking_table.as_deref();
    let db = crate::sqlite::SqliteDb::connect_tracking(url, table, options.lock_timeout).await?;
    options.apply(db)
}

async fn connect_scheme(url: &str, options: &ConnectOptions) -> Result<Box<dyn MigrationBackend>> {
    // Checked before connecting: a bad name opens no connection and creates no file.
    let dialect = checked_dialect(url, options)?;
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    let timeout = options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    #[cfg(not(any(feature = "postgres", feature = "mysql")))]
    let _ = DEFAULT_CONNECT_TIMEOUT;
    match dialect {
        #[cfg(feature = "sqlite")]
        Dialect::Sqlite => Ok(Box::new(sqlite_with(url, options).await?)),
        #[cfg(feature = "postgres")]
        Dialect::Postgres => {
            let mut db = crate::postgres::PgDb::connect_with_timeout(url, timeout).await?;
            if options.transaction_pooling {
                db = db.behind_transaction_pooler();
            }
            if let Some(schema) = &options.schema {
                db = db.with_schema(schema)?;
            }
            Ok(Box::new(options.apply(db)?))
        }
        #[cfg(feature = "mysql")]
        Dialect::MySql => {
            let url = match url.strip_prefix("mariadb") {
                Some(rest) => format!("mysql{rest}"),
                None => url.to_string(),
            };
            let db = crate::mysql::MySqlDb::connect_with_timeout(&url, timeout).await?;
            Ok(Box::new(options.apply(db)?))
        }
        #[allow(unreachable_patterns)]
        other => Err(Error::Config(format!("no enabled backend for {other}"))),
    }
}
