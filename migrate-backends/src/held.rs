//! The executor's own connection, kept between calls.
//!
//! Returning a connection to a sqlx pool costs a ping (a round trip) in a spawned task, and
//! acquiring one costs a pool check-out. A migration run makes several queries per step and the
//! "already up to date" check should be one query, so the executor keeps one connection of its
//! pool and returns it only when a call fails (the pool then checks it).
//!
//! A kept connection may hold a transaction begun ahead: a transactional step commits with
//! `COMMIT; BEGIN`, so the next step finds its transaction open and saves a round trip. Whoever
//! takes the connection for anything else ends that transaction first ([`Held::begun_ahead`]),
//! after committing the step waiting in it, if any (below); a slot dropped or cleared with one
//! closes the connection instead of returning it to the pool inside a transaction.
//!
//! The transaction may also hold a step that ran, its tracking writes and commit waiting to be
//! sent in front of the next statement ([`Held::take_pending`], see `sqlx_db::deferred`): the
//! connection is kept with it like with a transaction begun ahead, and closed (which rolls the
//! step back) if nobody takes it.
//!
//! A kept connection may also hold what its last read of the state table left
//! ([`StateCache`]): on SQLite the rows, valid while the database's wal-index header or its
//! data version is unchanged; on MySQL the rows, valid while the state table's fingerprint is
//! unchanged; on PostgreSQL the note that the read's statement is prepared. Only the read puts
//! it back ([`Held::keep_state_cache`]): a connection taken for anything else comes back
//! without it, so nothing written through the connection itself can be hidden by it.
//!
//! On SQLite the connection opened with the executor starts such a read at once
//! ([`Slot::put_reading`]): the statements go to SQLite's thread, which prepares and runs them
//! while the caller goes on (building its `MigrationManager`, typically), and whoever takes the
//! connection first waits for their answer, which then counts as the connection's last read.

use crate::fingerprint::Fingerprint;
use crate::home_runtime::HomeRuntime;
use crate::sqlx_db::deferred::PendingRecord;
use crate::wal_index::WalStamp;
use migrate_core::backend::StateRow;
use sqlx::pool::PoolConnection;
use sqlx::Pool;
use std::future::Future;
use std::ops::{Deref, DerefMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

/// A read of the state table started on a connection, which gives the connection back with
/// what the read left (nothing when the read failed); an error when no connection could be had
/// for it (a read started on a pool passed in, whose check-out failed).
pub(crate) type Reading<DB> =
    Pin<Box<dyn Future<Output = sqlx::Result<(PoolConnection<DB>, Option<StateCache>)>> + Send>>;

/// What a connection's last read of the state table leaves with it (see `state_read`): the note
/// that the connection has read (its next read is prepared), and on SQLite and MySQL the rows.
#[derive(Debug, Clone)]
pub(crate) struct StateCache {
    /// The statement that read: clones of an executor share the connection, and may name
    /// other tracking tables.
    pub(crate) query: Arc<str>,
    /// SQLite's and MySQL's rows, with what tells whether they are still the database's; `None`
    /// on PostgreSQL, and after a read that could tell nothing.
    pub(crate) rows: Option<KeptRows>,
}

/// State rows kept with the connection that read them, and what was known about the database
/// when they were read: on SQLite just before (any of the two unchanged since means they are
/// still its rows), on MySQL with them (the fingerprint unchanged).
#[derive(Debug, Clone)]
pub(crate) struct KeptRows {
    /// Shared with every caller they were returned to: a call that takes them copies nothing.
    pub(crate) rows: Arc<[StateRow]>,
    /// The data version (`PRAGMA data_version`, which changes when another connection
    /// commits); `None` when the read did not ask (a connection's first read, unless it is
    /// the executor's first connection: `state_read::read_ahead`).
    pub(crate) data_version: Option<i64>,
    /// The wal-index header (`wal_index`, which changes when any connection commits); `None`
    /// when it could not be read.
    pub(crate) stamp: Option<WalStamp>,
    /// MySQL's fingerprint of the rows (`fingerprint`), read with them; `None` on SQLite.
    pub(crate) fingerprint: Option<Fingerprint>,
}

/// The kept connection, and whether it holds a transaction begun ahead. Dropped (the slot
/// cleared or dropped, or already full when a connection comes back), it goes back to the
/// pool, or is closed when it holds a transaction.
struct Kept<DB: sqlx::Database> {
    /// Present until taken out of the slot.
    conn: Option<KeptConn<DB>>,
    begun_ahead: bool,
    state: Option<StateCache>,
    /// The name of the record statements the session holds (PostgreSQL; see `SessionRecord::name`).
    record_prepared: Option<Arc<str>>,
    /// A step in the transaction whose commit waits for the next statement.
    pending: Option<PendingRecord>,
    /// Entered to drop the connection on a thread outside it.
    runtime: HomeRuntime,
}

/// The kept connection itself, or a read of the state table started on it, which holds it
/// until the read ends (nothing else is kept with such a read).
enum KeptConn<DB: sqlx::Database> {
    Open(PoolConnection<DB>),
    /// SQLite's read started at connect ([`Slot::put_reading`]), or a check-out begun by
    /// `from_pool` ([`Slot::put_check_out`]: SQLite's with its read, a server's alone).
    Reading {
        reading: Reading<DB>,
        /// Of a pool passed in: its connection goes back to the owner's pool if the slot is
        /// dropped first (the executor's own pools close with it).
        passed_in: bool,
    },
}

impl<DB: sqlx::Database> Drop for Kept<DB> {
    fn drop(&mut self) {
        let _entered = self.runtime.enter();
        // A local, so that whatever is left of it drops before the runtime is left.
        let conn = self.conn.take();
        match conn {
            Some(KeptConn::Open(mut conn)) if self.begun_ahead => conn.close_on_drop(),
            Some(KeptConn::Reading {
                reading,
                passed_in: true,
            }) => give_back(reading),
            _ => {}
        }
    }
}

/// The slot holding the kept connection.
pub(crate) struct Slot<DB: sqlx::Database>(Mutex<Option<Kept<DB>>>);

impl<DB: sqlx::Database> Default for Slot<DB> {
    fn default() -> Self {
        Slot(Mutex::new(None))
    }
}

impl<DB: sqlx::Database> Slot<DB> {
    /// Keeps `conn` (a connection opened ahead of the first call).
    #[cfg(any(feature = "postgres", feature = "mysql"))]
    pub(crate) fn put(&self, conn: PoolConnection<DB>) {
        self.put_kept(KeptConn::Open(conn), None);
    }

    /// Keeps the connection that `reading` holds, and starts the read: polled once here, it
    /// hands its statements to the driver, which (on SQLite, whose connections each have a
    /// thread) runs them while the caller goes on. The first [`take`](Self::take) waits for
    /// the read and keeps what it left with the connection. A driver that does not start the
    /// read on the first poll only moves it to that `take`.
    #[cfg(feature = "sqlite")]
    pub(crate) fn put_reading(&self, reading: Reading<DB>) {
        if let Some(reading) = self.begin(reading) {
            self.put_kept(
                KeptConn::Reading {
                    reading,
                    passed_in: false,
                },
                None,
            );
        }
    }

    /// Begins the check-out of the first call's connection from `pool`, a pool passed in
    /// (`from_pool`), and on SQLite the read it goes on with: `start` makes it, and it is
    /// polled once here, which takes one of the pool's idle connections and sends the pool's
    /// test (a ping). Whether it was begun: only inside a Tokio runtime (a check-out may wait
    /// on its timer), on a pool with a second connection for its owner, who may want one
    /// before that call, and with a connection idle now.
    ///
    /// It is kept only if it took a connection. A check-out left waiting (the connection
    /// counted idle was promised to a task the pool woke and that has not run yet) would be
    /// served the next connection freed ahead of the pool's owner and, polled by nobody until
    /// the first call, hold it until then: it is finished in a task instead, which gives the
    /// connection back. So is one the slot drops.
    pub(crate) fn put_check_out(
        &self,
        pool: &Pool<DB>,
        start: impl FnOnce() -> Reading<DB>,
    ) -> bool {
        let idle = pool.num_idle();
        let may = tokio::runtime::Handle::try_current().is_ok()
            && pool.options().get_max_connections() >= 2
            && idle > 0;
        if !may {
            return false;
        }
        if let Some(reading) = self.begin(start()) {
            if pool.num_idle() < idle {
                let kept = KeptConn::Reading {
                    reading,
                    passed_in: true,
                };
                self.put_kept(kept, None);
            } else {
                give_back(reading);
            }
        }
        true
    }

    /// Polls `reading` once. Ended, what it left is kept (failed, nothing: the first call
    /// checks a connection out itself); still going, it is returned.
    fn begin(&self, mut reading: Reading<DB>) -> Option<Reading<DB>> {
        use std::task::{Context, Poll, Waker};
        match reading
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Ok((conn, state))) => {
                self.put_kept(KeptConn::Open(conn), state);
                None
            }
            Poll::Ready(Err(err)) => {
                tracing::debug!(error = %err, "no connection for the state read started ahead");
                None
            }
            Poll::Pending => Some(reading),
        }
    }

    fn put_kept(&self, conn: KeptConn<DB>, state: Option<StateCache>) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(Kept {
                conn: Some(conn),
                begun_ahead: false,
                state,
                record_prepared: None,
                pending: None,
                runtime: HomeRuntime::current(),
            });
        }
    }

    /// Returns the kept connection to the pool, so the next call takes a fresh one (and a
    /// pool being closed does not wait for it forever).
    pub(crate) fn clear(&self) {
        if let Ok(mut slot) = self.0.lock() {
            slot.take();
        }
    }

    /// [`clear`](Self::clear), except for a connection a started read holds: that read is
    /// what the first call wants, and sets what changed on the connection itself when it ends
    /// (SQLite's busy timeout: `state_read::read_ahead`).
    #[cfg(feature = "sqlite")]
    pub(crate) fn clear_unless_reading(&self) {
        if let Ok(mut slot) = self.0.lock() {
            if !matches!(
                slot.as_ref().and_then(|kept| kept.conn.as_ref()),
                Some(KeptConn::Reading { .. })
            ) {
                slot.take();
            }
        }
    }

    /// Whether no connection is kept: one given back now would be kept. Clones of an executor
    /// share the slot, so while one of them runs a step another may have filled it.
    pub(crate) fn is_vacant(&self) -> bool {
        self.0.lock().is_ok_and(|slot| slot.is_none())
    }

    /// Whether the kept connection holds a transaction begun ahead.
    pub(crate) fn begun_ahead(&self) -> bool {
        self.0
            .lock()
            .ok()
            .is_some_and(|slot| slot.as_ref().is_some_and(|kept| kept.begun_ahead))
    }

    /// Whether the kept connection holds a step whose commit waits for the next statement.
    pub(crate) fn has_pending(&self) -> bool {
        self.0
            .lock()
            .ok()
            .is_some_and(|slot| slot.as_ref().is_some_and(|kept| kept.pending.is_some()))
    }

    /// The kept connection, or a new one from the pool.
    pub(crate) async fn take<'s>(&'s self, pool: &Pool<DB>) -> sqlx::Result<Held<'s, DB>> {
        let mut kept = self.0.lock().ok().and_then(|mut slot| slot.take());
        let (conn, state, untested) = match kept.as_mut().and_then(|kept| kept.conn.take()) {
            Some(KeptConn::Open(conn)) => {
                let state = kept.as_mut().and_then(|kept| kept.state.take());
                (conn, state, true)
            }
            Some(KeptConn::Reading { reading, .. }) => match reading.await {
                Ok((conn, state)) => (conn, state, true),
                // A check-out begun by `from_pool` runs out of time from its first poll
                // there, and may have needed more than the ping's answer (a connection the
                // server had ended, opened again): this call checks one out now.
                Err(err) => {
                    tracing::debug!(error = %err, "the check-out begun ahead failed");
                    Self::check_out(pool).await?
                }
            },
            None => Self::check_out(pool).await?,
        };
        let begun_ahead = kept.as_ref().is_some_and(|kept| kept.begun_ahead);
        let record_prepared = kept.as_mut().and_then(|kept| kept.record_prepared.take());
        let pending = kept.as_mut().and_then(|kept| kept.pending.take());
        Ok(Held {
            slot: self,
            conn: Some(conn),
            untested,
            keep: false,
            open_transaction: begun_ahead,
            begun_ahead,
            found_state: state,
            kept_state: None,
            record_prepared,
            pending,
        })
    }

    /// A connection of the pool, with no state cache, and whether it was handed out untested.
    async fn check_out(
        pool: &Pool<DB>,
    ) -> sqlx::Result<(PoolConnection<DB>, Option<StateCache>, bool)> {
        let conn = Box::pin(pool.acquire()).await?;
        Ok((conn, None, !pool.options().get_test_before_acquire()))
    }
}

/// Finishes `reading`, a check-out of a pool passed in, in a task, and gives its connection
/// back to the pool. Dropped unfinished, sqlx would close the connection in the middle of its
/// check-out (and with the last connection of a shared in-memory SQLite database, the
/// database); outside a runtime, nothing else can be done.
fn give_back<DB: sqlx::Database>(reading: Reading<DB>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move { drop(reading.await) });
    }
}

/// A connection out of the slot. Put back by [`Held::keep`] once a call succeeded; otherwise
/// it goes back to the pool, which checks it.
pub(crate) struct Held<'s, DB: sqlx::Database> {
    slot: &'s Slot<DB>,
    conn: Option<PoolConnection<DB>>,
    /// The connection was handed out untested: the kept one, or one of a pool that does not
    /// test before acquire. Its session may have ended while it sat idle.
    untested: bool,
    keep: bool,
    /// A step's transaction is open: dropped like this (a cancelled future, a panicking step),
    /// the connection is closed, which rolls it back, instead of going back to the pool with
    /// the transaction open.
    open_transaction: bool,
    /// The open transaction was begun ahead for the next step, and holds nothing or only a
    /// step whose commit waits (`pending`): kept, the connection goes back to the slot with it.
    begun_ahead: bool,
    /// The state read the connection came out of the slot with.
    found_state: Option<StateCache>,
    /// The state read that goes back to the slot with the connection: none unless the read
    /// put one, so any other use of the connection drops it.
    kept_state: Option<StateCache>,
    /// The name of the record statements the session holds (PostgreSQL); known only while the
    /// connection stays in the slot, so one from the pool is asked again. A name, not a flag:
    /// clones with other tracking tables share the slot.
    record_prepared: Option<Arc<str>>,
    /// A step in the open transaction whose commit waits for the next statement.
    pending: Option<PendingRecord>,
}

impl<DB: sqlx::Database> Held<'_, DB> {
    /// Marks the connection as healthy: it returns to the slot when dropped.
    pub(crate) fn keep(mut self) {
        self.keep = true;
    }

    /// Closes the connection instead of giving it back to the pool (a session found dead).
    pub(crate) fn close(mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.close_on_drop();
        }
    }

    /// Whether the connection was handed out untested (see the field).
    pub(crate) fn untested(&self) -> bool {
        self.untested
    }

    /// The state read kept with the connection, taken out: the caller puts it (or a new one)
    /// back with [`keep_state_cache`](Self::keep_state_cache).
    pub(crate) fn take_state_cache(&mut self) -> Option<StateCache> {
        self.found_state.take()
    }

    /// Keeps `state` with the connection, if the connection is kept.
    pub(crate) fn keep_state_cache(&mut self, state: StateCache) {
        self.kept_state = Some(state);
    }

    /// Notes whether a step's transaction is open on the connection.
    pub(crate) fn set_open_transaction(&mut self, open: bool) {
        self.open_transaction = open;
        if !open {
            self.begun_ahead = false;
        }
    }

    /// Whether the session holds the record statements named by `name`.
    pub(crate) fn record_prepared(&self, name: &str) -> bool {
        self.record_prepared.as_deref() == Some(name)
    }

    /// Notes the record statements the session holds, if any are known.
    pub(crate) fn set_record_prepared(&mut self, name: Option<Arc<str>>) {
        self.record_prepared = name;
    }

    /// The step whose commit waits for the connection's next statement, taken out: whoever
    /// takes it sends it (or rolls the transaction back).
    pub(crate) fn take_pending(&mut self) -> Option<PendingRecord> {
        self.pending.take()
    }

    /// Leaves `pending` in the open transaction, for the next statement to carry; the
    /// connection goes back to the slot with it, like a transaction begun ahead.
    pub(crate) fn set_pending(&mut self, pending: PendingRecord) {
        self.pending = Some(pending);
        self.set_begun_ahead(true);
    }

    /// Whether the connection holds a transaction begun ahead for the next step (empty, or
    /// holding a step whose commit waits: see [`take_pending`](Self::take_pending)).
    pub(crate) fn begun_ahead(&self) -> bool {
        self.begun_ahead
    }

    /// Notes that the open transaction was begun ahead (`true`), or that the step it was
    /// begun for now uses it (`false`).
    pub(crate) fn set_begun_ahead(&mut self, ahead: bool) {
        self.begun_ahead = ahead;
        if ahead {
            self.open_transaction = true;
        }
    }
}

impl<DB: sqlx::Database> Deref for Held<'_, DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        self.conn
            .as_deref()
            .expect("a held connection is present until dropped")
    }
}

impl<DB: sqlx::Database> DerefMut for Held<'_, DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        self.conn
            .as_deref_mut()
            .expect("a held connection is present until dropped")
    }
}

impl<DB: sqlx::Database> Drop for Held<'_, DB> {
    fn drop(&mut self) {
        // Only a transaction begun ahead (empty, or holding a step whose commit waits) may go
        // back to the slot open.
        if self.open_transaction && !(self.keep && self.begun_ahead) {
            if let Some(conn) = self.conn.as_mut() {
                conn.close_on_drop();
            }
            return;
        }
        if !self.keep {
            return;
        }
        if let Some(conn) = self.conn.take() {
            let kept = Kept {
                conn: Some(KeptConn::Open(conn)),
                begun_ahead: self.begun_ahead,
                state: self.kept_state.take(),
                record_prepared: self.record_prepared.take(),
                pending: self.pending.take(),
                runtime: HomeRuntime::current(),
            };
            // A full slot (a clone of the executor gave one back first) or a poisoned one:
            // `kept` is dropped, back to the pool or closed.
            if let Ok(mut slot) = self.slot.0.lock() {
                slot.get_or_insert(kept);
            }
        }
    }
}
