//! Connections that answer.
//!
//! The executor's own pools hand their connections out untested (`test_before_acquire(false)`:
//! the kept connection saves that round trip on every call). A session the server ended while
//! a connection sat idle (a restart, an idle timeout such as MySQL's `wait_timeout`,
//! `pg_terminate_backend`, `KILL`) is then met by the next statement sent on it. Where sending a
//! statement again would be safe (a state read, see `state_read`) it is sent again; where a
//! connection is taken for a whole run (the run lock), it is made to answer a ping first.

use crate::driver::Driver;
use migrate_core::error::{Error, Result};
#[cfg(any(feature = "postgres", feature = "mysql"))]
use sqlx::pool::PoolConnection;
use sqlx::Pool;
use std::time::Duration;

/// How long a connection has to answer a ping before it is taken for dead (a peer gone
/// without a word can leave a socket waiting for minutes).
pub(crate) const PING_WAIT: Duration = Duration::from_secs(5);

/// Whether `conn` answers a ping within [`PING_WAIT`]: the ping's error if not, or
/// [`Error::Unreachable`] naming `target` when no answer came.
pub(crate) async fn answers<DB: Driver>(conn: &mut DB::Connection, target: &str) -> Result<()> {
    match tokio::time::timeout(PING_WAIT, sqlx::Connection::ping(conn)).await {
        Ok(answer) => answer.map_err(Error::from),
        Err(_) => Err(Error::Unreachable {
            target: target.to_string(),
            waited: PING_WAIT,
        }),
    }
}

/// How many connections of `pool` to try before giving up: every idle one may have died with
/// the server, and one more is opened.
pub(crate) fn attempts<DB: sqlx::Database>(pool: &Pool<DB>) -> u32 {
    pool.options().get_max_connections().saturating_add(1)
}

/// A connection of `pool` that answers: as the pool hands it out when the pool tests its
/// connections itself; else pinged, a dead one closed and the next one tried, at most
/// [`attempts`] of them (the last one's error is returned). For the run locks of the
/// servers (SQLite's is a file lock).
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) async fn pool_conn<DB: Driver>(
    pool: &Pool<DB>,
    target: &str,
) -> Result<PoolConnection<DB>> {
    if pool.options().get_test_before_acquire() {
        return Ok(pool.acquire().await?);
    }
    let mut left = attempts(pool);
    loop {
        let mut conn = pool.acquire().await?;
        let failed = match answers::<DB>(&mut conn, target).await {
            Ok(()) => return Ok(conn),
            Err(err) => err,
        };
        conn.close_on_drop();
        drop(conn);
        left -= 1;
        if left == 0 {
            return Err(failed);
        }
    }
}
