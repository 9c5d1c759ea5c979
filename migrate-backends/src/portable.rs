//! The tracking statements that every database writes the same way, in plain SQL: each
//! database's module (`sqlite.rs`, `postgres.rs`, `mysql.rs`) writes its tables, its
//! compare-and-set and its catalog queries, and takes these for the rest. Templates name their
//! values with `$(name)` markers (see `statements.rs`); the `{state}` and `{history}` names
//! come quoted from `TrackingNames`.

/// The column list of the history table, as every database's insert names it.
pub(crate) const HISTORY_COLUMNS: &str = "module, table_name, version, name, checksum, direction, \
     outcome, started_at, started_at_utc, finished_at, execution_us, error";

/// The values of a history insert, in `HISTORY_COLUMNS` order.
pub(crate) const HISTORY_VALUES: &str = "$(module), $(table), $(step_version), $(name), \
     $(step_checksum), $(direction), $(outcome), $(started_at), $(started_at_utc), \
     $(finished_at), $(execution_us), $(error)";

/// The columns of the state table, as the upserts name them.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) const STATE_COLUMNS: &str = "module, table_name, version, checksum, dirty_version, \
     dirty_name, dirty_direction, dirty_since, updated_at";

/// Clears a state row's dirty mark, inside an `UPDATE ... SET` or an upsert's `DO UPDATE SET`.
pub(crate) const CLEAR_DIRTY: &str =
    "dirty_version = NULL, dirty_name = NULL, dirty_direction = NULL, dirty_since = NULL";

/// The columns every state read returns, in the order `rows::state_row` and
/// `packed_state::unpack` decode them.
pub(crate) const STATE_READ_COLUMNS: [&str; 8] = [
    "module",
    "table_name",
    "version",
    "checksum",
    "dirty_version",
    "dirty_name",
    "dirty_direction",
    "dirty_since",
];

/// Reads every state row.
pub(crate) fn read_state(state: &str) -> String {
    format!("SELECT {} FROM {state}", STATE_READ_COLUMNS.join(", "))
}

/// Moves an existing state row to a new version and clears its mark, whatever it held.
pub(crate) fn state_move(state: &str) -> String {
    format!(
        "UPDATE {state} SET version = $(new_version), checksum = $(new_checksum), \
         {CLEAR_DIRTY}, updated_at = $(now) WHERE module = $(module) AND table_name = $(table)"
    )
}

/// Clears the dirty mark a journalled step set, leaving the version as it was: the step
/// refused before changing anything.
pub(crate) fn clear_mark(state: &str) -> String {
    format!(
        "UPDATE {state} SET {CLEAR_DIRTY}, updated_at = $(now) WHERE module = $(module) \
         AND table_name = $(table) AND dirty_version = $(step_version)"
    )
}

/// Takes away the mark a `resumable` step left when it was cut off, going up at
/// `$(resumed_since)` (0 for a mark written without a time, as it reads): the first statement
/// of its start when a run resumes it, in the transaction that sets its new mark. Nothing
/// matches when another runner came first.
pub(crate) fn clear_resumed_mark(state: &str) -> String {
    format!(
        "UPDATE {state} SET {CLEAR_DIRTY}, updated_at = $(now) WHERE module = $(module) \
         AND table_name = $(table) AND dirty_direction = 'up' \
         AND COALESCE(dirty_since, 0) = $(resumed_since)"
    )
}

/// Finishes the history row a journalled step started.
pub(crate) fn history_finish(history: &str) -> String {
    format!(
        "UPDATE {history} SET outcome = $(outcome), finished_at = $(finished_at), \
         execution_us = $(execution_us), error = $(error) WHERE module = $(module) \
         AND table_name = $(table) AND version = $(step_version) AND direction = $(direction) \
         AND outcome = 'started' AND started_at = $(started_at)"
    )
}

/// Rewrites the checksum of a step's successful ups.
pub(crate) fn set_step_checksum(history: &str) -> String {
    format!(
        "UPDATE {history} SET checksum = $(step_checksum) WHERE module = $(module) \
         AND table_name = $(table) AND version = $(step_version) AND direction = 'up' \
         AND outcome = 'succeeded'"
    )
}

/// Reads history rows newest first; `{modules}` and `{limit}` are filled in per call.
pub(crate) fn history_select(history: &str) -> String {
    format!(
        "SELECT id, module, table_name, version, name, checksum, direction, outcome, \
         started_at, finished_at, execution_us, error FROM {history} \
         WHERE module IN ({{modules}}) ORDER BY id DESC{{limit}}"
    )
}

/// The upsert that moves a state row to a new version, creating it if missing; `cas` (empty
/// for an unconditional move) is the `WHERE` of its `DO UPDATE`. SQLite and PostgreSQL.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn state_upsert(state: &str, cas: &str) -> String {
    format!(
        "INSERT INTO {state} AS s ({STATE_COLUMNS}) VALUES ($(module), $(table), \
         $(new_version), $(new_checksum), NULL, NULL, NULL, NULL, $(now)) \
         ON CONFLICT (module, table_name) DO UPDATE SET version = excluded.version, \
         checksum = excluded.checksum, {CLEAR_DIRTY}, updated_at = excluded.updated_at {cas}"
    )
}

/// The upsert that sets a state row's dirty mark under `cas`. SQLite and PostgreSQL.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn mark_upsert(state: &str, cas: &str) -> String {
    format!(
        "INSERT INTO {state} AS s ({STATE_COLUMNS}) VALUES ($(module), $(table), NULL, NULL, \
         $(step_version), $(name), $(direction), $(dirty_since), $(now)) \
         ON CONFLICT (module, table_name) DO UPDATE SET dirty_version = excluded.dirty_version, \
         dirty_name = excluded.dirty_name, dirty_direction = excluded.dirty_direction, \
         dirty_since = excluded.dirty_since, updated_at = excluded.updated_at {cas}"
    )
}
