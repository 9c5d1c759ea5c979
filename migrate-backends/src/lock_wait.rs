//! Waiting for the runner lock: the deadline, and an event at least every
//! [`LOCK_WAIT_REPORT_EVERY`] that names who holds the lock, so an operator watching the logs
//! of a runner that seems stuck sees why.

use std::time::{Duration, Instant};

/// How often a waiting runner says, through `tracing`, that it is still waiting and for whom.
pub const LOCK_WAIT_REPORT_EVERY: Duration = Duration::from_secs(5);

/// One runner's wait for the lock.
#[derive(Debug)]
pub(crate) struct LockWait {
    started: Instant,
    timeout: Duration,
    next_report: Instant,
}

impl LockWait {
    pub(crate) fn new(timeout: Duration) -> Self {
        let started = Instant::now();
        LockWait {
            started,
            timeout,
            next_report: started + LOCK_WAIT_REPORT_EVERY,
        }
    }

    /// The whole timeout: what a [`LockTimeout`](migrate_core::error::Error::LockTimeout)
    /// reports as waited.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the timeout has passed.
    pub(crate) fn expired(&self) -> bool {
        self.started.elapsed() >= self.timeout
    }

    /// How long is left before the timeout, at most until the next report is due: the slice a
    /// blocking wait (MySQL's `GET_LOCK`) may take before the runner reports again.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) fn next_slice(&self) -> Duration {
        let now = Instant::now();
        // A timeout past what an `Instant` can hold (`Duration::MAX`: wait for ever) has no
        // deadline; the reports still come.
        let deadline = self
            .started
            .checked_add(self.timeout)
            .map_or(self.next_report, |deadline| deadline.min(self.next_report));
        deadline.saturating_duration_since(now)
    }

    /// Whether a report is due; if so, the next one is due [`LOCK_WAIT_REPORT_EVERY`] later.
    pub(crate) fn report_due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next_report {
            return false;
        }
        self.next_report = now + LOCK_WAIT_REPORT_EVERY;
        true
    }

    /// The event a waiting runner emits.
    pub(crate) fn report(&self, holder: &str) {
        tracing::info!(
            holder,
            waited_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            timeout_ms = u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            "waiting for the migration lock"
        );
    }
}

/// The connection whose session takes, then holds, a run lock (`GET_LOCK`, a session advisory
/// lock). Dropped (a wait cancelled while the lock query was on its way, a lock dropped
/// unreleased) it is closed, not given back to the pool: ending the session frees the lock,
/// and the server may grant a waiting lock after the client stopped listening, which a pooled
/// session would then hold unseen. Only [`into_pool`](Self::into_pool), once the lock is
/// released, gives it back.
#[cfg(any(feature = "postgres", feature = "mysql"))]
#[derive(Debug)]
pub(crate) struct LockSession<DB: sqlx::Database> {
    conn: Option<sqlx::pool::PoolConnection<DB>>,
    /// Entered to close the connection when dropped on a thread outside it.
    runtime: crate::home_runtime::HomeRuntime,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl<DB: sqlx::Database> LockSession<DB> {
    pub(crate) fn new(conn: sqlx::pool::PoolConnection<DB>) -> Self {
        LockSession {
            conn: Some(conn),
            runtime: crate::home_runtime::HomeRuntime::current(),
        }
    }

    /// The connection, to take, release or ask about the lock on.
    pub(crate) fn conn(&mut self) -> &mut DB::Connection {
        // `into_pool` is the only taker, and it consumes the guard.
        self.conn
            .as_deref_mut()
            .expect("the connection is taken only by `into_pool`")
    }

    /// The lock is released: the connection goes back to the pool.
    pub(crate) fn into_pool(mut self) {
        drop(self.conn.take());
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl<DB: sqlx::Database> Drop for LockSession<DB> {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            let _entered = self.runtime.enter();
            conn.close_on_drop();
            drop(conn); // here, inside the runtime entered
        }
    }
}

/// Who holds the lock, as `asked` found out; when asking failed, a holder that could not be
/// named: a lock timeout stays a lock timeout (and a wait goes on) whatever the catalog query
/// met.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub(crate) fn holder_or_unknown(asked: migrate_core::error::Result<String>) -> String {
    asked.unwrap_or_else(|err| {
        tracing::debug!(error = %err, "could not ask who holds the run lock");
        format!("another session (asking which failed: {err})")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_too_long_for_an_instant_waits_in_report_slices() {
        let wait = LockWait::new(Duration::MAX);
        assert!(!wait.expired());
        let slice = wait.next_slice();
        assert!(
            slice > Duration::ZERO && slice <= LOCK_WAIT_REPORT_EVERY,
            "{slice:?}"
        );
    }

    #[test]
    fn reports_are_spaced_and_the_deadline_holds() {
        let wait = LockWait::new(Duration::ZERO);
        assert!(wait.expired());
        assert_eq!(wait.next_slice(), Duration::ZERO);
        let mut wait = LockWait::new(Duration::from_secs(60));
        assert!(!wait.expired());
        assert!(!wait.report_due(), "no report before the first interval");
        assert!(wait.next_slice() <= LOCK_WAIT_REPORT_EVERY);
        wait.next_report = Instant::now();
        assert!(wait.report_due());
        assert!(!wait.report_due(), "the next report waits a whole interval");
    }
}
