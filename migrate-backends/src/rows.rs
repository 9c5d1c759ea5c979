//! Decoding tracking-table rows, shared by every backend.

use migrate_core::backend::StateRow;
use migrate_core::error::{DatabaseError, Error, Result};
use migrate_core::status::HistoryEntry;
use migrate_core::step::{Direction, DirtyMark, Outcome};
use migrate_core::time::Timestamp;
use sqlx::{ColumnIndex, Decode, Row, Type};
use std::time::Duration;

fn get<'r, R, T>(row: &'r R, index: usize) -> Result<T>
where
    R: Row,
    T: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    row.try_get(index).map_err(Error::from)
}

pub(crate) fn corrupt(what: &str, value: &str) -> Error {
    Error::Database(DatabaseError::message(format!(
        "the tracking table holds an invalid {what}: `{}`",
        value.escape_debug()
    )))
}

/// Decodes a row of `TrackingSql::read_state`. A value of the wrong type names its column
/// and, once they are read, the row's module and table.
pub(crate) fn state_row<R>(row: &R) -> Result<StateRow>
where
    R: Row,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    let module: String = named(get(row, 0), 0, None)?;
    let table: String = named(get(row, 1), 1, None)?;
    let of = Some((module.as_str(), table.as_str()));
    let version = named(get(row, 2), 2, of)?;
    let checksum = named(get(row, 3), 3, of)?;
    let dirty_version = named(get(row, 4), 4, of)?;
    let dirty_name = named(get(row, 5), 5, of)?;
    let dirty_direction = named(get(row, 6), 6, of)?;
    let dirty_since = named(get(row, 7), 7, of)?;
    state_of(StateFields {
        module,
        table,
        version,
        checksum,
        dirty_version,
        dirty_name,
        dirty_direction,
        dirty_since,
    })
}

/// `got`, the state read's column `index` (of the row for `module:table`, when known), with a
/// driver's error saying which (nothing is built unless it failed).
fn named<T>(got: Result<T>, index: usize, row: Option<(&str, &str)>) -> Result<T> {
    got.map_err(|err| match err {
        Error::Database(driver) => {
            let column = crate::portable::STATE_READ_COLUMNS
                .get(index)
                .copied()
                .unwrap_or("?");
            let of_row = row.map_or_else(String::new, |(module, table)| {
                format!("'s row for `{module}:{table}`")
            });
            Error::Database(driver.context(format!(
                "reading column `{column}` of the tracking table{of_row}"
            )))
        }
        other => other,
    })
}

/// The columns of one state row, however they were read.
pub(crate) struct StateFields {
    pub(crate) module: String,
    pub(crate) table: String,
    pub(crate) version: Option<String>,
    pub(crate) checksum: Option<String>,
    pub(crate) dirty_version: Option<String>,
    pub(crate) dirty_name: Option<String>,
    pub(crate) dirty_direction: Option<String>,
    pub(crate) dirty_since: Option<i64>,
}

pub(crate) fn state_of(f: StateFields) -> Result<StateRow> {
    let dirty = match f.dirty_version {
        None => None,
        Some(version) => {
            let direction = f.dirty_direction.unwrap_or_default();
            Some(DirtyMark::new(
                version,
                f.dirty_name.unwrap_or_default(),
                Direction::parse(&direction).ok_or_else(|| {
                    corrupt(
                        &format!("dirty_direction in its row for `{}:{}`", f.module, f.table),
                        &direction,
                    )
                })?,
                Timestamp::from_micros(f.dirty_since.unwrap_or(0)),
            ))
        }
    };
    Ok(StateRow {
        module: f.module,
        table: f.table,
        version: f.version,
        checksum: f.checksum,
        dirty,
    })
}

/// Decodes a row of `TrackingSql::history_select`.
pub(crate) fn history_row<R>(row: &R) -> Result<HistoryEntry>
where
    R: Row,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    let direction: String = get(row, 6)?;
    let outcome: String = get(row, 7)?;
    let execution: Option<i64> = get(row, 10)?;
    Ok(HistoryEntry::__new(
        get(row, 0)?,
        get(row, 1)?,
        get(row, 2)?,
        get(row, 3)?,
        get(row, 4)?,
        get(row, 5)?,
        Direction::parse(&direction).ok_or_else(|| corrupt("direction", &direction))?,
        Outcome::parse(&outcome).ok_or_else(|| corrupt("outcome", &outcome))?,
        Timestamp::from_micros(get(row, 8)?),
        get::<_, Option<i64>>(row, 9)?.map(Timestamp::from_micros),
        execution.map(|us| Duration::from_micros(u64::try_from(us).unwrap_or(0))),
        get(row, 11)?,
    ))
}
