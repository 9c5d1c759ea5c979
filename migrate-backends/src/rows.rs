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

fn corrupt(what: &str, value: &str) -> Error {
    Error::Database(DatabaseError::message(format!(
        "the tracking table holds an invalid {what}: `{}`",
        value.escape_debug()
    )))
}

/// Decodes a row of `TrackingSql::read_state`.
pub(crate) fn state_row<R>(row: &R) -> Result<StateRow>
where
    R: Row,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    usize: ColumnIndex<R>,
{
    state_of(StateFields {
        module: get(row, 0)?,
        table: get(row, 1)?,
        version: get(row, 2)?,
        checksum: get(row, 3)?,
        dirty_version: get(row, 4)?,
        dirty_name: get(row, 5)?,
        dirty_direction: get(row, 6)?,
        dirty_since: get(row, 7)?,
    })
}

/// The columns of one state row, however they were read.
struct StateFields {
    module: String,
    table: String,
    version: Option<String>,
    checksum: Option<String>,
    dirty_version: Option<String>,
    dirty_name: Option<String>,
    dirty_direction: Option<String>,
    dirty_since: Option<i64>,
}

fn state_of(f: StateFields) -> Result<StateRow> {
    let dirty = match f.dirty_version {
        None => None,
        Some(version) => {
            let direction = f.dirty_direction.unwrap_or_default();
            Some(DirtyMark::new(
                version,
                f.dirty_name.unwrap_or_default(),
                Direction::parse(&direction).ok_or_else(|| corrupt("direction", &direction))?,
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

/// Decodes the state rows packed into one text value (SQLite's `read_state`, which returns one
/// row so that the "already up to date" check is one hand-off to the database thread, not one
/// per table): per row, eight fields, each `<characters>:<value>` or `-` for NULL.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) fn unpack_state(packed: &str) -> Result<Vec<StateRow>> {
    let mut fields = Packed(packed);
    let mut rows = Vec::new();
    while !fields.0.is_empty() {
        let module = fields.next()?.unwrap_or_default();
        let table = fields.next()?.unwrap_or_default();
        let (version, checksum) = (fields.next()?, fields.next()?);
        let (dirty_version, dirty_name) = (fields.next()?, fields.next()?);
        let dirty_direction = fields.next()?;
        let dirty_since = match fields.next()? {
            Some(text) => Some(
                text.parse::<i64>()
                    .map_err(|_| corrupt("dirty_since", &text))?,
            ),
            None => None,
        };
        rows.push(state_of(StateFields {
            module,
            table,
            version,
            checksum,
            dirty_version,
            dirty_name,
            dirty_direction,
            dirty_since,
        })?);
    }
    Ok(rows)
}

/// The unread rest of a packed state value.
struct Packed<'a>(&'a str);

impl Packed<'_> {
    /// The next field: `-` is NULL, `<characters>:<value>` a value.
    fn next(&mut self) -> Result<Option<String>> {
        if let Some(after) = self.0.strip_prefix('-') {
            self.0 = after;
            return Ok(None);
        }
        let (length, after) = self
            .0
            .split_once(':')
            .ok_or_else(|| corrupt("packed state", self.0))?;
        let end = |chars: usize| {
            after
                .char_indices()
                .map(|(at, _)| at)
                .chain(std::iter::once(after.len()))
                .nth(chars)
        };
        let value = length
            .parse::<usize>()
            .ok()
            .and_then(end)
            .map(|at| (&after[..at], &after[at..]));
        let (value, rest) = value.ok_or_else(|| corrupt("packed state", self.0))?;
        self.0 = rest;
        Ok(Some(value.to_string()))
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_state_round_trips_any_text() {
        let packed = "4:app;7:session5:2.3.011:sha256:abcd----3:app6:memory------";
        let rows = unpack_state(packed).expect("valid");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].module, "app;");
        assert_eq!(rows[0].version.as_deref(), Some("2.3.0"));
        assert!(rows[1].version.is_none() && rows[1].checksum.is_none());
        // A value with the separators in it, multi-byte text, and a dirty mark.
        let tricky = "-";
        assert!(unpack_state(tricky).is_err(), "a row cut short is corrupt");
        let dirty = "3:a:-3:t-é--5:2.0.04:step2:up4:1234";
        let rows = unpack_state(dirty).expect("valid");
        assert_eq!(rows[0].module, "a:-");
        assert_eq!(rows[0].table, "t-é");
        let mark = rows[0].dirty.as_ref().expect("dirty");
        assert_eq!(mark.version, "2.0.0");
        assert!(unpack_state("9:short").is_err());
        assert!(unpack_state("x:abc").is_err());
        assert!(unpack_state("").expect("empty").is_empty());
    }
}
