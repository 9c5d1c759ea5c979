//! SQL text for data migrations: values as literals, and idempotent multi-row upserts.

use crate::decode::is_number_literal;
use migrate_core::conn::{Conn, Value};
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use std::fmt::Write;

/// `value` as a SQL literal of `dialect`: `NULL`, a number (an exact
/// [`Numeric`](Value::Numeric) unquoted on PostgreSQL and MySQL, where it is a `NUMERIC` or
/// `DECIMAL` literal and compares exactly; quoted on SQLite, which has no exact type and would
/// read it as a float), `TRUE` or `FALSE` (1 or 0 on SQLite), a string (an escape string
/// `E'…'` on PostgreSQL, read alike whatever `standard_conforming_strings` says; a utf8mb4
/// hexadecimal literal on MySQL and MariaDB, alike whatever `sql_mode` says), or
/// bytes (`X'..'`, or `E'\\x..'::bytea` on PostgreSQL). An infinite float is `'Infinity'::float8` on
/// PostgreSQL and `9e999` on SQLite; a float NaN only has a PostgreSQL literal, and MySQL
/// stores neither, so those are errors. Text is written for SQL run through `Conn`
/// (`db.execute`, `db.query`), which renders `{{…}}` templates: a `{{` in it is written `\{{`,
/// which the renderer turns back, so the value arrives as it was.
///
/// ```
/// use migrate_backends::data::literal;
/// use migrate_core::{conn::Value, dialect::Dialect};
/// assert_eq!(literal(Dialect::Postgres, &Value::Text("it's".into())).unwrap(), "E'it''s'");
/// assert_eq!(literal(Dialect::Sqlite, &Value::Text("{{x}}".into())).unwrap(), "'\\{{x}}'");
/// assert_eq!(literal(Dialect::Sqlite, &Value::Bytes(vec![1, 255])).unwrap(), "X'01ff'");
/// assert_eq!(literal(Dialect::MySql, &Value::Null).unwrap(), "NULL");
/// ```
pub fn literal(dialect: Dialect, value: &Value) -> Result<String> {
    Ok(match value {
        Value::Null => "NULL".to_string(),
        Value::Int(i) => i.to_string(),
        // SQLite has no boolean type (its `TRUE` is 1, and only since 3.23).
        Value::Bool(b) => match (dialect, b) {
            (Dialect::Sqlite, true) => "1".to_string(),
            (Dialect::Sqlite, false) => "0".to_string(),
            (_, true) => "TRUE".to_string(),
            (_, false) => "FALSE".to_string(),
        },
        Value::Numeric(digits) if !is_number_literal(digits) => {
            return Err(Error::msg(format!(
                "the numeric {digits:?} is no exact number; a Value::Numeric holds a sign, \
                 digits and a point"
            )))
        }
        // SQLite reads an unquoted `12.50` as a REAL; quoted, a TEXT column keeps it exact and
        // a NUMERIC one converts it as it would the number.
        Value::Numeric(digits) if dialect == Dialect::Sqlite => dialect.quote_literal(digits),
        Value::Numeric(digits) => digits.clone(),
        Value::Float(f) if f.is_finite() => format!("{f:?}"),
        Value::Float(f) => match (dialect, f.is_nan()) {
            (Dialect::Postgres, true) => "'NaN'::float8".to_string(),
            (Dialect::Postgres, false) if *f > 0.0 => "'Infinity'::float8".to_string(),
            (Dialect::Postgres, false) => "'-Infinity'::float8".to_string(),
            // Past the largest double, SQLite's parser rounds to infinity.
            (Dialect::Sqlite, false) if *f > 0.0 => "9e999".to_string(),
            (Dialect::Sqlite, false) => "-9e999".to_string(),
            _ => {
                return Err(Error::msg(format!(
                    "the float {f} has no {dialect:?} literal; store it as NULL or text"
                )))
            }
        },
        Value::Text(text) => text_literal(dialect, text),
        Value::Bytes(bytes) => {
            let mut hex = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                let _ = write!(hex, "{b:02x}");
            }
            match dialect {
                // An escape string, read alike whatever `standard_conforming_strings` says.
                Dialect::Postgres => format!("E'\\\\x{hex}'::bytea"),
                Dialect::Sqlite | Dialect::MySql => format!("X'{hex}'"),
            }
        }
        _ => return Err(Error::msg("this value has no SQL literal")),
    })
}

/// `text` as a literal the server reads as exactly `text` whatever its settings
/// ([`Dialect::exact_literal`]), then [`as_written`] for `Conn`'s templates.
pub(crate) fn text_literal(dialect: Dialect, text: &str) -> String {
    as_written(dialect.exact_literal(text))
}

/// `name` quoted as an identifier for `dialect`, written as [`as_written`]: a column named
/// `v{{x}}` reaches the server as that name, not as a template.
pub(crate) fn ident(dialect: Dialect, name: &str) -> String {
    as_written(dialect.quote_ident(name))
}

/// A logical table written into `{{tables.…}}`: the renderer reads its name to the first `}}`
/// and trims its end, so a name holding a brace or ending in whitespace would render as
/// another table (or fail as a template). Refused here, naming `what`.
pub(crate) fn check_template_table(what: &str, table: &str) -> Result<()> {
    if table.trim().is_empty() || table.contains(['{', '}']) || table.trim_end() != table {
        return Err(Error::Config(format!(
            "{what}: table `{}` cannot be written as `{{{{tables.…}}}}` (it is blank, holds a \
             brace, or ends in whitespace)",
            table.escape_debug()
        )));
    }
    Ok(())
}

/// Quoted text as SQL that `Conn` renders back to it: `Conn::execute` and `Conn::query` read
/// `{{…}}` as a template and `\{{` as a literal `{{`, so every `{{` in the text is written
/// `\{{` (a `\` before it stays: the renderer takes only the one it added).
fn as_written(quoted: String) -> String {
    if quoted.contains("{{") {
        quoted.replace("{{", "\\{{")
    } else {
        quoted
    }
}

/// The most bytes [`Upsert::execute`] puts in one statement of several rows (a row larger than
/// that alone is a statement of its own, and the size is counted before `{{tables.x}}` is
/// rendered): well under MariaDB's and MySQL's default `max_allowed_packet` (16 MiB and 64
/// MiB) and PostgreSQL's and SQLite's limits (1 GiB and 1 billion bytes), so that a batch of
/// large rows is several statements, not one the server refuses.
pub const MAX_STATEMENT_BYTES: usize = 4 * 1024 * 1024;

/// A multi-row `INSERT` that is safe to run again: a row whose key exists updates it, or, with
/// [`newer_wins`](Upsert::newer_wins), updates it only when the incoming row is newer. Running
/// the same upsert twice changes nothing the second time. On MySQL and MariaDB, `ON DUPLICATE
/// KEY UPDATE` acts on a conflict with any unique index of the table, not only `keys`.
///
/// ```
/// use migrate_backends::data::Upsert;
/// use migrate_core::{conn::Value, dialect::Dialect};
/// let mut upsert = Upsert::new("sessions", &["session_id"], &["data", "updated_at"])
///     .newer_wins("updated_at");
/// upsert.row(vec![Value::Text("s1".into()), Value::Text("{}".into()), Value::Int(7)]);
/// let sql = upsert.sql(Dialect::Postgres).unwrap();
/// assert!(sql.starts_with("INSERT INTO {{tables.sessions}} AS t (\"session_id\", \"data\", \"updated_at\") VALUES (E's1', E'{}', 7)"));
/// assert!(sql.ends_with("WHERE t.\"updated_at\" IS NULL OR t.\"updated_at\" < excluded.\"updated_at\""));
/// ```
#[derive(Debug, Clone)]
pub struct Upsert {
    table: String,
    keys: Vec<String>,
    columns: Vec<String>,
    newer: Option<String>,
    keep_existing: bool,
    rows: Vec<Vec<Value>>,
}

impl Upsert {
    /// An upsert into the logical `table` (rendered as `{{tables.table}}`), keyed by `keys` (a
    /// primary key or unique key of the table), writing `columns`. Each row gives the keys'
    /// values, then the columns'.
    pub fn new(table: &str, keys: &[&str], columns: &[&str]) -> Self {
        Upsert {
            table: table.to_string(),
            keys: keys.iter().map(|k| k.to_string()).collect(),
            columns: columns.iter().map(|c| c.to_string()).collect(),
            newer: None,
            keep_existing: false,
            rows: Vec::new(),
        }
    }

    /// Overwrites an existing row only when its `column` is NULL or smaller than the incoming
    /// row's: stale data never replaces newer data. `column` must be one of the columns.
    pub fn newer_wins(mut self, column: &str) -> Self {
        self.newer = Some(column.to_string());
        self
    }

    /// Never updates an existing row: a row whose key exists is left as it is (`ON CONFLICT DO
    /// NOTHING`), for copies whose target is the newer truth.
    pub fn keep_existing(mut self) -> Self {
        self.keep_existing = true;
        self
    }

    /// Adds a row: the keys' values, then the columns', in order.
    pub fn row(&mut self, values: Vec<Value>) {
        self.rows.push(values);
    }

    /// How many rows it holds.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether it holds no row (its SQL would be empty).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The statement for `dialect`; empty when there is no row. A row of the wrong width, no
    /// key, or a `newer_wins` column that is not written is an error.
    ///
    /// One statement for every row, however large: a server caps a statement's size
    /// (MariaDB's `max_allowed_packet` is 16 MiB by default, and a text value is written in
    /// hex there, twice its size). [`execute`](Upsert::execute) keeps each statement under
    /// [`MAX_STATEMENT_BYTES`].
    pub fn sql(&self, dialect: Dialect) -> Result<String> {
        Ok(self
            .statements(dialect, usize::MAX)?
            .pop()
            .unwrap_or_default())
    }

    /// The statements for `dialect`, each holding as many rows as keep it under `max_bytes`
    /// (a row larger than that alone gets a statement of its own); none when there is no row.
    /// Errors as [`sql`](Upsert::sql).
    pub fn statements(&self, dialect: Dialect, max_bytes: usize) -> Result<Vec<String>> {
        if self.keys.is_empty() {
            return Err(Error::Config(format!(
                "upsert into `{}` has no key",
                self.table
            )));
        }
        if let Some(newer) = &self.newer {
            if !self.columns.contains(newer) {
                return Err(Error::Config(format!(
                    "upsert into `{}`: newer_wins(`{newer}`) is not one of its columns",
                    self.table
                )));
            }
        }
        check_template_table(&format!("upsert into `{}`", self.table), &self.table)?;
        if self.rows.is_empty() {
            return Ok(Vec::new());
        }
        let q = |c: &String| ident(dialect, c);
        let width = self.keys.len() + self.columns.len();
        let names: Vec<String> = self.keys.iter().chain(&self.columns).map(q).collect();
        let alias = if dialect == Dialect::MySql {
            ""
        } else {
            " AS t"
        };
        let head = format!(
            "INSERT INTO {{{{tables.{}}}}}{alias} ({}) VALUES ",
            self.table,
            names.join(", ")
        );
        let mut tail = String::new();
        match dialect {
            Dialect::MySql => self.on_duplicate_key(dialect, &mut tail),
            Dialect::Sqlite | Dialect::Postgres => self.on_conflict(dialect, &mut tail),
        }
        // Two rows with one key: PostgreSQL refuses to update a row twice in one statement,
        // SQLite and MySQL keep the last, and which happens would hang on how the rows were
        // split into statements. Refused alike everywhere (a key written twice alike; keys the
        // column's collation takes for one, such as `a` and `A` on MySQL, are not seen here).
        let updates = !self.columns.is_empty() && !self.keep_existing;
        let mut first_of_key: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        let mut statements = Vec::new();
        let mut sql = String::new();
        for (i, row) in self.rows.iter().enumerate() {
            if row.len() != width {
                return Err(Error::Config(format!(
                    "upsert into `{}`: row {i} has {} values, expected {width}",
                    self.table,
                    row.len()
                )));
            }
            let values = row
                .iter()
                .map(|v| literal(dialect, v))
                .collect::<Result<Vec<String>>>()?;
            if updates {
                let key = values[..self.keys.len()].join(", ");
                if let Some(first) = first_of_key.insert(key.clone(), i) {
                    return Err(Error::Config(format!(
                        "upsert into `{}`: rows {first} and {i} have the same key ({}) = ({key}): \
                         PostgreSQL refuses to update a row twice in one statement, and SQLite \
                         and MySQL would keep the last; give each key one row",
                        self.table,
                        self.keys.join(", ")
                    )));
                }
            }
            let tuple = format!("({})", values.join(", "));
            let grown = sql.len() + 2 + tuple.len() + tail.len();
            if !sql.is_empty() && grown > max_bytes {
                sql.push_str(&tail);
                statements.push(std::mem::take(&mut sql));
            }
            if sql.is_empty() {
                sql.push_str(&head);
            } else {
                sql.push_str(", ");
            }
            sql.push_str(&tuple);
        }
        sql.push_str(&tail);
        statements.push(sql);
        Ok(statements)
    }

    /// Runs the upsert on `db`: its statements (see [`statements`](Upsert::statements)) each
    /// under [`MAX_STATEMENT_BYTES`], in order, in whatever transaction `db` is in (a batch's
    /// own, with [`Job::next`](crate::data::Job::next)). Returns the rows the database counts
    /// as affected.
    pub async fn execute(&self, db: &mut Conn<'_>) -> Result<u64> {
        let mut affected = 0;
        for statement in self.statements(db.dialect(), MAX_STATEMENT_BYTES)? {
            affected += db.execute(&statement).await?;
        }
        Ok(affected)
    }

    fn on_conflict(&self, dialect: Dialect, sql: &mut String) {
        let q = |c: &String| ident(dialect, c);
        let keys: Vec<String> = self.keys.iter().map(q).collect();
        if self.columns.is_empty() || self.keep_existing {
            let _ = write!(sql, " ON CONFLICT ({}) DO NOTHING", keys.join(", "));
            return;
        }
        let sets: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("{} = excluded.{}", q(c), q(c)))
            .collect();
        let _ = write!(
            sql,
            " ON CONFLICT ({}) DO UPDATE SET {}",
            keys.join(", "),
            sets.join(", ")
        );
        if let Some(newer) = &self.newer {
            let n = q(newer);
            let _ = write!(sql, " WHERE t.{n} IS NULL OR t.{n} < excluded.{n}");
        }
    }

    fn on_duplicate_key(&self, dialect: Dialect, sql: &mut String) {
        let q = |c: &String| ident(dialect, c);
        if self.columns.is_empty() || self.keep_existing {
            let k = q(&self.keys[0]);
            let _ = write!(sql, " ON DUPLICATE KEY UPDATE {k} = {k}");
            return;
        }
        // Assignments run left to right and later ones see earlier results: the guard column
        // goes last, so every other column is judged against its old value.
        let mut columns: Vec<&String> = self
            .columns
            .iter()
            .filter(|c| Some(*c) != self.newer.as_ref())
            .collect();
        columns.extend(self.newer.as_ref());
        let sets: Vec<String> = columns
            .iter()
            .map(|c| {
                let c = q(c);
                match &self.newer {
                    Some(newer) => {
                        let n = q(newer);
                        format!("{c} = IF({n} IS NULL OR {n} < VALUES({n}), VALUES({c}), {c})")
                    }
                    None => format!("{c} = VALUES({c})"),
                }
            })
            .collect();
        let _ = write!(sql, " ON DUPLICATE KEY UPDATE {}", sets.join(", "));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_rows_with_one_key_are_refused_where_the_upsert_updates() {
        let rows = [(1, "a"), (2, "b"), (1, "c")];
        let mut updates = Upsert::new("t", &["id"], &["v"]);
        let mut keeps = Upsert::new("t", &["id"], &["v"]).keep_existing();
        for (id, v) in rows {
            updates.row(vec![Value::Int(id), Value::Text(v.to_string())]);
            keeps.row(vec![Value::Int(id), Value::Text(v.to_string())]);
        }
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::MySql] {
            let err = updates
                .statements(dialect, usize::MAX)
                .expect_err("one key twice");
            assert!(
                err.to_string()
                    .contains("rows 0 and 2 have the same key (id) = (1)"),
                "{err}"
            );
            // Whichever way the rows would be split.
            assert!(updates.statements(dialect, 10).is_err());
            // Without an update, the first row is kept on every backend: accepted.
            assert!(keeps.statements(dialect, usize::MAX).is_ok());
        }
    }

    #[test]
    fn statements_split_the_rows_under_the_budget_in_order() {
        let mut upsert = Upsert::new("t", &["id"], &["v"]);
        for (id, v) in [(1, "a"), (2, "b"), (3, &*"x".repeat(300)), (4, "d")] {
            upsert.row(vec![Value::Int(id), Value::Text(v.to_string())]);
        }
        let one = upsert.sql(Dialect::Sqlite).expect("sql");
        let all = upsert
            .statements(Dialect::Sqlite, usize::MAX)
            .expect("statements");
        assert_eq!(all.as_slice(), std::slice::from_ref(&one));
        let split = upsert.statements(Dialect::Sqlite, 150).expect("statements");
        let head = "INSERT INTO {{tables.t}} AS t (\"id\", \"v\") VALUES ";
        let tail = " ON CONFLICT (\"id\") DO UPDATE SET \"v\" = excluded.\"v\"";
        // Rows 1 and 2 fit together; row 3 is over the budget alone; row 4 after it.
        assert_eq!(split.len(), 3, "{split:#?}");
        for statement in &split {
            assert!(
                statement.starts_with(head) && statement.ends_with(tail),
                "{statement}"
            );
        }
        assert!(
            split[0].contains("(1, 'a'), (2, 'b')") && split[0].len() <= 150,
            "{}",
            split[0]
        );
        assert!(
            split[1].contains("(3, 'xxx") && !split[1].contains("(4,"),
            "{}",
            split[1]
        );
        assert!(
            split[2].contains("(4, 'd')") && split[2].len() <= 150,
            "{}",
            split[2]
        );
        // The same rows as the one statement holds, in the same order.
        let rows = |s: &str| s[head.len()..s.len() - tail.len()].to_string();
        let joined: Vec<String> = split.iter().map(|s| rows(s)).collect();
        assert_eq!(joined.join(", "), rows(&one));
        assert!(Upsert::new("t", &["id"], &["v"])
            .statements(Dialect::Sqlite, 10)
            .expect("no rows")
            .is_empty());
    }

    use super::*;

    fn one() -> Upsert {
        let mut upsert = Upsert::new("s", &["id"], &["v", "updated_at"]).newer_wins("updated_at");
        upsert.row(vec![
            Value::Int(1),
            Value::Text("a\\b".into()),
            Value::Int(5),
        ]);
        upsert
    }

    #[test]
    fn mysql_judges_every_column_before_moving_the_guard() {
        let sql = one().sql(Dialect::MySql).unwrap();
        assert_eq!(
            sql,
            "INSERT INTO {{tables.s}} (`id`, `v`, `updated_at`) VALUES (1, _utf8mb4 X'615C62', 5) ON DUPLICATE KEY UPDATE \
             `v` = IF(`updated_at` IS NULL OR `updated_at` < VALUES(`updated_at`), VALUES(`v`), `v`), \
             `updated_at` = IF(`updated_at` IS NULL OR `updated_at` < VALUES(`updated_at`), VALUES(`updated_at`), `updated_at`)"
        );
    }

    #[test]
    fn sqlite_keeps_backslashes_and_guards_with_a_where() {
        let sql = one().sql(Dialect::Sqlite).unwrap();
        assert!(
            sql.contains(
                "VALUES (1, 'a\\b', 5) ON CONFLICT (\"id\") DO UPDATE SET \"v\" = excluded.\"v\""
            ),
            "{sql}"
        );
    }

    #[test]
    fn keep_existing_never_updates() {
        let mut upsert = Upsert::new("runs", &["run_id"], &["data"]).keep_existing();
        upsert.row(vec![Value::Text("r".into()), Value::Null]);
        assert!(upsert
            .sql(Dialect::Postgres)
            .unwrap()
            .ends_with("ON CONFLICT (\"run_id\") DO NOTHING"));
        assert!(upsert
            .sql(Dialect::MySql)
            .unwrap()
            .ends_with("ON DUPLICATE KEY UPDATE `run_id` = `run_id`"));
    }

    #[test]
    fn bad_upserts_are_errors_not_sql() {
        let mut upsert = Upsert::new("s", &["id"], &["v"]);
        upsert.row(vec![Value::Int(1)]);
        let config = |result: Result<String>| match result {
            Err(Error::Config(message)) => message,
            other => panic!("expected Error::Config, got {other:?}"),
        };
        assert!(config(upsert.sql(Dialect::Sqlite)).contains("row 0 has 1 values, expected 2"));
        assert!(config(Upsert::new("s", &[], &["v"]).sql(Dialect::Sqlite)).contains("has no key"));
        assert!(config(
            Upsert::new("s", &["id"], &["v"])
                .newer_wins("w")
                .sql(Dialect::Sqlite)
        )
        .contains("newer_wins(`w`)"));
        assert_eq!(
            Upsert::new("s", &["id"], &["v"])
                .sql(Dialect::Sqlite)
                .unwrap(),
            ""
        );
        assert!(literal(Dialect::Sqlite, &Value::Float(f64::NAN)).is_err());
        assert!(literal(Dialect::MySql, &Value::Float(f64::INFINITY)).is_err());
        assert_eq!(
            literal(Dialect::Postgres, &Value::Float(f64::NEG_INFINITY)).unwrap(),
            "'-Infinity'::float8"
        );
        assert_eq!(
            literal(Dialect::Sqlite, &Value::Float(f64::INFINITY)).unwrap(),
            "9e999"
        );
        assert_eq!(
            literal(Dialect::MySql, &Value::Numeric("-12.50".into())).unwrap(),
            "-12.50"
        );
        assert_eq!(
            literal(Dialect::Sqlite, &Value::Numeric("12.50".into())).unwrap(),
            "'12.50'"
        );
        assert!(literal(Dialect::MySql, &Value::Numeric("1 OR 1=1".into())).is_err());
        assert!(literal(Dialect::Postgres, &Value::Numeric("1e300".into())).is_err());
        assert_eq!(
            literal(Dialect::Postgres, &Value::Bool(true)).unwrap(),
            "TRUE"
        );
        assert_eq!(
            literal(Dialect::MySql, &Value::Bool(false)).unwrap(),
            "FALSE"
        );
        assert_eq!(literal(Dialect::Sqlite, &Value::Bool(true)).unwrap(), "1");
        assert_eq!(
            literal(Dialect::Postgres, &Value::Text("a\\'{{".into())).unwrap(),
            "E'a\\\\''\\{{'",
            "backslash and quote doubled in an escape string, the brace pair escaped"
        );
        assert_eq!(
            literal(Dialect::MySql, &Value::Text("a\\'{{".into())).unwrap(),
            "_utf8mb4 X'615C277B7B'",
            "hexadecimal: no backslash and no brace pair to escape"
        );
        assert_eq!(
            literal(Dialect::Postgres, &Value::Bytes(vec![0xab])).unwrap(),
            "E'\\\\xab'::bytea"
        );
    }

    #[test]
    fn names_with_braces_are_written_for_the_renderer_or_refused() {
        let mut upsert = Upsert::new("s", &["k{{"], &["v{{schema}}"]);
        upsert.row(vec![Value::Int(1), Value::Int(2)]);
        assert_eq!(
            upsert.sql(Dialect::Postgres).unwrap(),
            "INSERT INTO {{tables.s}} AS t (\"k\\{{\", \"v\\{{schema}}\") VALUES (1, 2) \
             ON CONFLICT (\"k\\{{\") DO UPDATE SET \"v\\{{schema}}\" = excluded.\"v\\{{schema}}\""
        );
        for table in ["a}}b", "x{", "s ", " ", ""] {
            let mut upsert = Upsert::new(table, &["k"], &["v"]);
            upsert.row(vec![Value::Int(1), Value::Int(2)]);
            match upsert.sql(Dialect::Sqlite) {
                Err(Error::Config(message)) => assert!(message.contains("cannot be written")),
                other => panic!("table {table:?}: expected Error::Config, got {other:?}"),
            }
        }
    }
}
