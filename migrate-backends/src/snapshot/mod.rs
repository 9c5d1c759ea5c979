//! Schema snapshots: a normalized, ordered, diffable description of a database's schema, read
//! from the database's own catalog, with the tracking tables left out.
//!
//! - SQLite: `pragma_table_xinfo`, `pragma_index_list`/`pragma_index_xinfo` and
//!   `pragma_foreign_key_list`, plus what only the table's own SQL holds (CHECK constraints,
//!   AUTOINCREMENT, collations, generated expressions, `WITHOUT ROWID`/`STRICT`) and index
//!   predicates, read from `sqlite_schema.sql` in a canonical spelling so that a rebuild that
//!   keeps the definition compares equal.
//! - PostgreSQL: `pg_catalog` (columns with collation, identity and generation,
//!   `pg_get_constraintdef`, `pg_get_indexdef`, views, materialized views, sequences, enums,
//!   domains, composite types, triggers, functions and procedures, partitioning, comments),
//!   not `pg_dump`. Read with `search_path` set to the schema, so that definitions are not
//!   qualified with its name and two schemas or databases compare.
//! - MySQL/MariaDB: `information_schema` (TABLES, COLUMNS with charset, collation and
//!   generation, STATISTICS, TABLE_CONSTRAINTS, KEY_COLUMN_USAGE with referenced columns,
//!   REFERENTIAL_CONSTRAINTS, CHECK_CONSTRAINTS, VIEWS, TRIGGERS, ROUTINES, PARAMETERS) and
//!   `SHOW CREATE SEQUENCE`; `AUTO_INCREMENT` counters are never read, and the database's own
//!   name is taken out of view and trigger bodies.
//!
//! Columns are keyed by name; their positions are kept apart, so a column that was dropped and
//! re-added shows as *moved*, and the caller decides whether that matters.

mod diff;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "sqlite")]
mod sqlite_sql;

pub use diff::{ColumnMove, SchemaDiff};

use migrate_core::error::{Error, Result};
use std::collections::{BTreeMap, BTreeSet};

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Column {
    /// The type as the catalog spells it.
    pub data_type: String,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// The default expression, if any.
    pub default: Option<String>,
}

/// One table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Columns by name.
    pub columns: BTreeMap<String, Column>,
    /// Column names in position order.
    pub order: Vec<String>,
    /// Indexes by name, with a normalized definition.
    pub indexes: BTreeMap<String, String>,
    /// Constraints (primary key, unique, check, foreign key) by name, with their definition.
    pub constraints: BTreeMap<String, String>,
    /// Foreign keys that have no stable name (SQLite), as definitions.
    pub foreign_keys: BTreeSet<String>,
    /// Everything else a table carries, by what it is: `autoincrement`, `options`
    /// (`WITHOUT ROWID`, `STRICT`), `collation`, `engine`, `partition key`, `partition of`,
    /// `comment`, `comment on column x`.
    pub properties: BTreeMap<String, String>,
}

impl Table {
    /// Adds a column, after those already read.
    pub(crate) fn push_column(&mut self, name: String, column: Column) {
        self.order.push(name.clone());
        self.columns.insert(name, column);
    }
}

/// A database's schema, as far as a round trip can change it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schema {
    /// Tables by name.
    pub tables: BTreeMap<String, Table>,
    /// Views by name, with their normalized definition.
    pub views: BTreeMap<String, String>,
    /// Triggers by name, with their normalized definition.
    pub triggers: BTreeMap<String, String>,
    /// Sequences by name, with their settings (not their current value).
    pub sequences: BTreeMap<String, String>,
    /// Enum types by name, with their labels in order.
    pub enums: BTreeMap<String, Vec<String>>,
    /// Stored functions and procedures, by kind, name and arguments (`function add(x
    /// integer)`), with their result, language, attributes and body.
    pub routines: BTreeMap<String, String>,
    /// Materialized views by name, with their definition; their indexes as `view.index`.
    pub materialized_views: BTreeMap<String, String>,
    /// Other user-defined types (domains, composite types) by name, with their definition.
    pub types: BTreeMap<String, String>,
    /// Everything else, keyed by kind and name: `extension pgcrypto`, `policy t.p`,
    /// `rule t.r` (PostgreSQL), `event e` (MariaDB).
    pub other: BTreeMap<String, String>,
}

impl Schema {
    /// Every object, as `kind name` (`table session`, `view active`), in a stable order.
    pub fn object_names(&self) -> Vec<String> {
        let kinds: [(&str, Vec<&String>); 9] = [
            ("table", self.tables.keys().collect()),
            ("view", self.views.keys().collect()),
            (
                "materialized view",
                self.materialized_views.keys().collect(),
            ),
            ("trigger", self.triggers.keys().collect()),
            ("sequence", self.sequences.keys().collect()),
            ("enum", self.enums.keys().collect()),
            ("type", self.types.keys().collect()),
            ("routine", self.routines.keys().collect()),
            ("", self.other.keys().collect()),
        ];
        kinds
            .into_iter()
            .flat_map(|(kind, names)| {
                names.into_iter().map(move |name| match kind {
                    "" => name.clone(),
                    kind => format!("{kind} {name}"),
                })
            })
            .collect()
    }

    /// What changed from `self` (before) to `after`.
    pub fn diff(&self, after: &Schema) -> SchemaDiff {
        diff::diff(self, after)
    }
}

/// Catalog rows, every value as text (`None` for NULL).
pub(crate) type Rows = Vec<Vec<Option<String>>>;

/// A catalog row's values as text: text as is, integers printed, bytes read as UTF-8 (MariaDB
/// returns some `information_schema` columns as binary strings).
pub(crate) fn cells<R>(row: &R) -> Vec<Option<String>>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    (0..row.len())
        .map(|i| {
            let text = row.try_get::<Option<String>, _>(i).ok().flatten();
            text.or_else(|| {
                let int = row.try_get::<Option<i64>, _>(i).ok().flatten();
                int.map(|v| v.to_string())
            })
            .or_else(|| {
                let bytes = row.try_get::<Option<Vec<u8>>, _>(i).ok().flatten();
                bytes.map(|b| String::from_utf8_lossy(&b).into_owned())
            })
        })
        .collect()
}

/// Column `i` of a catalog row, empty when NULL.
pub(crate) fn text(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

/// Whether `name` is one of the framework's own objects: the tracking tables (`<tracking>`,
/// `<tracking>_history`, `<tracking>_lock`), the sequence of the history's identity column on
/// PostgreSQL, and the checkpoints of `data::Batches`. Exactly those: a user's table whose name
/// merely starts with the tracking table's is compared like any other.
pub(crate) fn is_tracking(name: &str, tracking_table: &str) -> bool {
    let [state, history, lock] = migrate_core::table_names::tracking_tables(tracking_table);
    name == state
        || name == history
        || name == lock
        || is_history_sequence(name, &history)
        || name == crate::data::DEFAULT_CHECKPOINT_TABLE
}

/// Whether `name` is the sequence PostgreSQL made for `history`'s identity column:
/// `<history>_id_seq`, with `<history>` cut short when the whole would pass the 63 bytes
/// PostgreSQL keeps (a tracking table of up to 50 bytes makes a history name of up to 58). The
/// cut falls on a character boundary, so the name may end up to 3 bytes shorter.
fn is_history_sequence(name: &str, history: &str) -> bool {
    const SUFFIX: &str = "_id_seq";
    const MAX_NAME_BYTES: usize = migrate_core::dialect::MAX_IDENTIFIER_BYTES;
    name.strip_suffix(SUFFIX).is_some_and(|cut| {
        cut == history
            || (history.len() + SUFFIX.len() > MAX_NAME_BYTES
                && name.len() + 3 >= MAX_NAME_BYTES
                && history.starts_with(cut))
    })
}

/// Folds runs of whitespace, so that formatting of view and trigger SQL does not count.
#[cfg(any(feature = "postgres", feature = "mysql"))]
pub(crate) fn normalize_sql(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Reads the schema of the database at `url` (its current schema on PostgreSQL, or `schema`),
/// leaving out the tracking tables of `tracking_table`.
pub async fn snapshot(url: &str, schema: Option<&str>, tracking_table: &str) -> Result<Schema> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        #[cfg(feature = "sqlite")]
        "sqlite" => sqlite::snapshot(url, tracking_table).await,
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => postgres::snapshot(url, schema, tracking_table).await,
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => mysql::snapshot(url, tracking_table).await,
        _ => {
            let _ = schema;
            Err(Error::Config(format!(
                "no snapshot reader for URL scheme `{scheme}:` (features: sqlite, postgres, mysql)"
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_framework_s_own_objects_are_known_by_their_exact_names() {
        let t = "migrate_schema_versions";
        for own in [
            t,
            "migrate_schema_versions_history",
            "migrate_schema_versions_lock",
            "migrate_schema_versions_history_id_seq",
            crate::data::DEFAULT_CHECKPOINT_TABLE,
        ] {
            assert!(is_tracking(own, t), "{own}");
        }
        for theirs in [
            "migrate_schema_versions_notes",
            "migrate_schema_versions_history_x",
            "app",
        ] {
            assert!(!is_tracking(theirs, t), "{theirs}");
        }
        // A tracking table of 50 bytes: PostgreSQL cuts the history part of the sequence's
        // name so that it keeps 63 bytes.
        let long = "t".repeat(50);
        let history = format!("{long}_history");
        let cut = format!("{}_id_seq", &history[..63 - "_id_seq".len()]);
        assert_eq!(cut.len(), 63);
        assert!(is_tracking(&cut, &long), "{cut}");
        assert!(!is_tracking(&format!("{}_id_seq", &history[..20]), &long));
    }
}
