//! The executor's own connection, kept between calls.
//!
//! Returning a connection to a sqlx pool costs a ping (a round trip) in a spawned task, and
//! acquiring one costs a pool check-out. A migration run makes several queries per step and the
//! "already up to date" check should be one query, so the executor keeps one connection of its
//! pool and returns it only when a call fails (the pool then checks it).

use sqlx::pool::PoolConnection;
use sqlx::Pool;
use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// The slot holding the kept connection.
pub(crate) struct Slot<DB: sqlx::Database>(Mutex<Option<PoolConnection<DB>>>);

impl<DB: sqlx::Database> Default for Slot<DB> {
    fn default() -> Self {
        Slot(Mutex::new(None))
    }
}

impl<DB: sqlx::Database> Slot<DB> {
    /// Keeps `conn` (a connection opened ahead of the first call).
    pub(crate) fn put(&self, conn: PoolConnection<DB>) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert(conn);
        }
    }

    /// Returns the kept connection to the pool, so the next call takes a fresh one (and a
    /// pool being closed does not wait for it forever).
    pub(crate) fn clear(&self) {
        if let Ok(mut slot) = self.0.lock() {
            slot.take();
        }
    }

    /// The kept connection, or a new one from the pool.
    pub(crate) async fn take<'s>(&'s self, pool: &Pool<DB>) -> sqlx::Result<Held<'s, DB>> {
        let kept = self.0.lock().ok().and_then(|mut slot| slot.take());
        let conn = match kept {
            Some(conn) => conn,
            None => pool.acquire().await?,
        };
        Ok(Held {
            slot: self,
            conn: Some(conn),
            keep: false,
            open_transaction: false,
        })
    }
}

/// A connection out of the slot. Put back by [`Held::keep`] once a call succeeded; otherwise
/// it goes back to the pool, which checks it.
pub(crate) struct Held<'s, DB: sqlx::Database> {
    slot: &'s Slot<DB>,
    conn: Option<PoolConnection<DB>>,
    keep: bool,
    /// A transaction begun with raw SQL (sqlx does not know of it) is open: dropped like this
    /// (a cancelled future, a panicking step), the connection is closed, which rolls it back,
    /// instead of going back to the pool with the transaction open.
    open_transaction: bool,
}

impl<DB: sqlx::Database> Held<'_, DB> {
    /// Marks the connection as healthy: it returns to the slot when dropped.
    pub(crate) fn keep(mut self) {
        self.keep = true;
    }

    /// Notes whether a transaction begun with raw SQL is open on the connection.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn set_open_transaction(&mut self, open: bool) {
        self.open_transaction = open;
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
        if self.open_transaction {
            if let Some(conn) = self.conn.as_mut() {
                conn.close_on_drop();
            }
            return;
        }
        if self.keep {
            if let (Some(conn), Ok(mut slot)) = (self.conn.take(), self.slot.0.lock()) {
                if slot.is_none() {
                    *slot = Some(conn);
                }
            }
        }
    }
}
