//! [`Conn`], the portable connection a migration function receives.

use crate::dialect::Dialect;
use crate::error::{Error, Result};
use crate::future::BoxFuture;
use crate::table_names::TableNames;
use crate::template;
use std::any::Any;
use std::borrow::Cow;

/// A value read by [`Conn::query`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer, signed or not. A MySQL or SQLite boolean is an integer, 0 or 1.
    Int(i64),
    /// An exact number that is not an integer within `i64`, as the database wrote it (a sign,
    /// digits and a point): a `NUMERIC` or `DECIMAL` such as `"12.50"` or thirty digits, a
    /// MySQL `BIGINT UNSIGNED` above `i64::MAX` (a float would round them;
    /// [`as_f64`](Value::as_f64) converts). SQLite has no exact type: its numbers are
    /// [`Int`](Value::Int) or [`Float`](Value::Float).
    Numeric(String),
    /// A PostgreSQL `BOOLEAN`.
    Bool(bool),
    /// A floating-point number (`REAL`, `DOUBLE PRECISION`, `FLOAT`).
    Float(f64),
    /// Text: text columns, and every type without a portable form, as its text: dates and
    /// times, UUIDs, JSON, PostgreSQL's `NaN` and `Infinity` numerics. Written back by
    /// `migrate::data::literal` as a quoted literal, which the column converts to its type.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

impl Value {
    /// The value as an integer, if it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    /// The value as a boolean: a [`Bool`](Value::Bool), or an [`Int`](Value::Int) (MySQL and
    /// SQLite store booleans as integers; any integer other than 0 is true).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
    /// The value as a float: a [`Float`](Value::Float), an [`Int`](Value::Int), or a
    /// [`Numeric`](Value::Numeric), rounded to the nearest `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            Value::Numeric(digits) => digits.parse().ok(),
            _ => None,
        }
    }
    /// The value as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// One row returned by [`Conn::query`], its values in column order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(Vec<Value>);

impl Row {
    /// A row of `values`, in column order (for backends).
    pub fn new(values: Vec<Value>) -> Self {
        Row(values)
    }

    /// The values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.0
    }

    /// The value of column `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&Value> {
        self.0.get(index)
    }
}

/// What a backend implements so that [`Conn`] can drive its connection.
pub trait RawConn: Send {
    /// The database this connection speaks to.
    fn dialect(&self) -> Dialect;
    /// Runs one or more statements, returning the rows affected.
    fn execute<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<u64>>;
    /// Runs a query and returns its rows as portable values.
    fn query<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Row>>>;
    /// Whether `table` exists in `schema` (the connection's current schema or database when
    /// `None`). The backend asks its own catalog.
    fn table_exists<'a>(
        &'a mut self,
        schema: Option<&'a str>,
        table: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Whether `table` in `schema` has a column named `column`.
    fn column_exists<'a>(
        &'a mut self,
        schema: Option<&'a str>,
        table: &'a str,
        column: &'a str,
    ) -> BoxFuture<'a, Result<bool>>;
    /// The driver's own connection, for typed access (see `migrate::ConnExt`).
    fn driver(&mut self) -> &mut dyn Any;
}

/// Whether `sql` turns SQLite's foreign keys off (`PRAGMA [main.]foreign_keys = OFF`, `0`,
/// `false` or `no`, or in parentheses, in any case), outside comments and quoted text;
/// reading the pragma, or turning it on (which it is already), is not.
fn sets_foreign_keys(sql: &str) -> bool {
    let bytes = sql.as_bytes();
    let word = |at: usize, w: &str| {
        bytes
            .get(at..at + w.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(w.as_bytes()))
    };
    let skip_space = |mut at: usize| {
        while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
            at += 1;
        }
        at
    };
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            // Quoted text and identifiers: to the closing quote (a doubled one stays inside).
            quote @ (b'\'' | b'"' | b'`') => {
                at += 1;
                while at < bytes.len() {
                    if bytes[at] == quote {
                        if bytes.get(at + 1) == Some(&quote) {
                            at += 1;
                        } else {
                            break;
                        }
                    }
                    at += 1;
                }
                at += 1;
            }
            b'-' if bytes.get(at + 1) == Some(&b'-') => {
                while at < bytes.len() && bytes[at] != b'\n' {
                    at += 1;
                }
            }
            b'/' if bytes.get(at + 1) == Some(&b'*') => {
                at += 2;
                while at < bytes.len() && !(bytes[at] == b'*' && bytes.get(at + 1) == Some(&b'/')) {
                    at += 1;
                }
                at += 2;
            }
            _ if word(at, "pragma") => {
                let mut next = skip_space(at + "pragma".len());
                if word(next, "main.") {
                    next += "main.".len();
                }
                if word(next, "foreign_keys") {
                    let mut value = skip_space(next + "foreign_keys".len());
                    if matches!(bytes.get(value), Some(b'=' | b'(')) {
                        value = skip_space(value + 1);
                        if matches!(bytes.get(value), Some(b'\'' | b'"')) {
                            value += 1;
                        }
                        let off = ["off", "0", "false", "no"].iter().any(|w| {
                            word(value, w)
                                && !bytes
                                    .get(value + w.len())
                                    .is_some_and(|b| b.is_ascii_alphanumeric())
                        });
                        if off {
                            return true;
                        }
                    }
                }
                at += "pragma".len();
            }
            _ => at += 1,
        }
    }
    false
}

/// The connection a migration function receives.
///
/// Inside a transactional step it is the step's transaction; for `transaction = false` steps,
/// and for every step on MySQL/MariaDB (whose DDL commits on its own, so every step is
/// journalled outside a transaction), it is a plain connection in autocommit mode. SQL passed to [`execute`](Conn::execute) and
/// [`query`](Conn::query) may use `{{tables.name}}` (the quoted, schema-qualified table name)
/// and `{{schema}}` (the quoted schema).
pub struct Conn<'c> {
    raw: &'c mut dyn RawConn,
    schema: Option<&'c str>,
    names: &'c TableNames,
    in_transaction: bool,
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("dialect", &self.raw.dialect())
            .field("schema", &self.schema)
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl<'c> Conn<'c> {
    /// Wraps a backend connection. `schema` qualifies `{{tables.x}}` (PostgreSQL schemas).
    pub fn new(raw: &'c mut dyn RawConn, schema: Option<&'c str>) -> Self {
        Conn {
            raw,
            schema,
            names: TableNames::none(),
            in_transaction: false,
        }
    }

    /// The same connection, marked as running inside the step's transaction (set by the
    /// backends for transactional steps).
    pub fn with_transaction(mut self, in_transaction: bool) -> Self {
        self.in_transaction = in_transaction;
        self
    }

    /// Whether this connection is inside the step's transaction (`transaction = true`, the
    /// default, on SQLite and PostgreSQL), or in autocommit mode (`transaction = false`, and
    /// every step on MySQL/MariaDB): helpers such as `migrate::data::Batches` commit per batch
    /// only in the second case.
    pub fn in_transaction(&self) -> bool {
        self.in_transaction
    }

    /// The same connection, rendering `{{tables.x}}` and [`table`](Conn::table) with the
    /// physical names of `names` (set by the manager from
    /// `MigrationManager::with_table_name`).
    pub fn with_table_names(mut self, names: &'c TableNames) -> Self {
        self.names = names;
        self
    }

    /// The physical name of a logical table: the name the table has in this database.
    pub fn physical_table<'a>(&'a self, logical: &'a str) -> &'a str {
        self.names.physical(logical)
    }

    /// The database this connection speaks to.
    pub fn dialect(&self) -> Dialect {
        self.raw.dialect()
    }

    /// The schema that `{{tables.x}}` is qualified with, if any.
    pub fn schema(&self) -> Option<&str> {
        self.schema
    }

    /// Runs one or more SQL statements (templates rendered first); returns the rows affected.
    /// Text that is only whitespace runs nothing and affects 0 rows (MySQL and MariaDB would
    /// refuse it as an empty query).
    ///
    /// On SQLite, inside the step's transaction, `PRAGMA foreign_keys = OFF` is refused with
    /// [`Error::Config`]: SQLite ignores it there, so the table rebuild it usually comes with
    /// would delete (`ON DELETE CASCADE`) or orphan the rows that refer to the rebuilt table.
    /// Such a step is `transaction = false`. Turning them on, which they are, is left alone.
    pub async fn execute(&mut self, sql: &str) -> Result<u64> {
        let sql = self.render(sql)?;
        refuse_nul(&sql)?;
        if sql.trim().is_empty() {
            return Ok(0);
        }
        self.refuse_ignored_pragma(&sql)?;
        self.raw.execute(&sql).await
    }

    /// Runs a query (templates rendered first) and returns its rows.
    pub async fn query(&mut self, sql: &str) -> Result<Vec<Row>> {
        let sql = self.render(sql)?;
        refuse_nul(&sql)?;
        self.refuse_ignored_pragma(&sql)?;
        self.raw.query(&sql).await
    }

    /// See [`execute`](Self::execute): SQLite's `foreign_keys` pragma inside a transaction.
    fn refuse_ignored_pragma(&self, sql: &str) -> Result<()> {
        if self.in_transaction && self.raw.dialect() == Dialect::Sqlite && sets_foreign_keys(sql) {
            return Err(Error::Config(
                "PRAGMA foreign_keys has no effect inside a transaction, and this step runs in \
                 one: SQLite would keep the foreign keys on, so a table rebuild would delete or \
                 orphan the rows that refer to it; declare the step `transaction = false` (a SQL \
                 file: `-- migrate: no-transaction` on its first line), and turn the foreign keys \
                 back on at its end"
                    .to_string(),
            ));
        }
        Ok(())
    }

    /// Runs a query that returns one integer, such as `SELECT COUNT(*) ...`. A PostgreSQL
    /// boolean (`SELECT EXISTS (...)`) is 1 or 0.
    pub async fn query_i64(&mut self, sql: &str) -> Result<i64> {
        let rows = self.query(sql).await?;
        rows.first()
            .and_then(|r| r.get(0))
            .and_then(|value| match value {
                Value::Bool(b) => Some(i64::from(*b)),
                other => other.as_i64(),
            })
            .ok_or_else(|| {
                Error::msg(format!(
                    "query returned no integer: {}",
                    crate::template::shortened(sql, 120)
                ))
            })
    }

    /// Whether the logical `table` exists under its physical name (in the configured schema
    /// on PostgreSQL, else the current one): the guard that makes a migration safe to re-run
    /// with `force`. A table that is not renamed is looked up as written.
    pub async fn table_exists(&mut self, table: &str) -> Result<bool> {
        let physical = self.names.physical(table);
        self.raw.table_exists(self.schema, physical).await
    }

    /// Whether the logical `table` (under its physical name) has a column named `column`.
    pub async fn column_exists(&mut self, table: &str, column: &str) -> Result<bool> {
        let physical = self.names.physical(table);
        self.raw.column_exists(self.schema, physical, column).await
    }

    /// Quotes an identifier for this connection's dialect.
    pub fn quote_ident(&self, ident: &str) -> String {
        self.dialect().quote_ident(ident)
    }

    /// The quoted, schema-qualified physical name of the logical `table`, as
    /// `{{tables.table}}` renders it.
    pub fn table(&self, table: &str) -> String {
        template::qualified(self.dialect(), self.schema, self.names.physical(table))
    }

    /// Renders `{{tables.x}}` and `{{schema}}` in `sql`.
    pub fn render<'s>(&self, sql: &'s str) -> Result<Cow<'s, str>> {
        template::render(self.dialect(), self.schema, self.names, sql)
    }

    /// The driver's connection, for the typed accessors of `migrate::ConnExt`.
    pub fn driver(&mut self) -> &mut dyn Any {
        self.raw.driver()
    }
}

/// Statement text cannot carry a NUL: SQLite and PostgreSQL would read it as the end of the
/// statement and run what comes before it.
fn refuse_nul(sql: &str) -> Result<()> {
    match sql.find('\0') {
        None => Ok(()),
        Some(at) => Err(Error::Template(format!(
            "SQL text has a NUL byte at offset {at}: {}",
            crate::template::shortened(sql.get(at..).unwrap_or_default(), 60).escape_debug()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statement_text_with_a_nul_is_refused_naming_where() {
        assert!(refuse_nul("SELECT 1").is_ok());
        let err = refuse_nul("DROP TABLE \"a\0b\"").unwrap_err();
        assert!(matches!(err, Error::Template(_)), "{err:?}");
        assert!(err.to_string().contains("offset 13"), "{err}");
    }

    #[test]
    fn setting_sqlites_foreign_keys_is_told_from_reading_it() {
        for sets in [
            "PRAGMA foreign_keys=OFF",
            "pragma  Foreign_Keys = 0;",
            "CREATE TABLE t (a INT);\nPRAGMA main.foreign_keys=off;",
            "PRAGMA foreign_keys(0)",
            "PRAGMA foreign_keys = 'false'",
        ] {
            assert!(sets_foreign_keys(sets), "{sets}");
        }
        for not in [
            "PRAGMA foreign_keys",
            "PRAGMA foreign_keys = ON",
            "PRAGMA foreign_keys=1",
            "PRAGMA foreign_keys = offline",
            "PRAGMA foreign_key_check",
            "PRAGMA defer_foreign_keys = ON",
            "SELECT 'pragma'",
            "-- SQLite ignores PRAGMA foreign_keys = OFF here\nSELECT 1",
            "/* PRAGMA foreign_keys = OFF */ SELECT 1",
            "INSERT INTO docs VALUES ('PRAGMA foreign_keys=OFF')",
            "INSERT INTO docs VALUES ('it''s PRAGMA foreign_keys=OFF')",
            "",
        ] {
            assert!(!sets_foreign_keys(not), "{not}");
        }
    }
}
