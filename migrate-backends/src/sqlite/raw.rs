//! [`RawConn`] over a SQLite connection.

use migrate_core::{BoxFuture, Dialect, Error, RawConn, Result, Row, Value};
use sqlx::{AssertSqlSafe, Column, Row as _, SqliteConnection, TypeInfo, ValueRef};
use std::any::Any;

/// A SQLite connection (or the connection of an open transaction) seen as a [`RawConn`].
pub(crate) struct SqliteRaw<'c>(pub(crate) &'c mut SqliteConnection);

impl RawConn for SqliteRaw<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let done = sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut *self.0)
                .await?;
            Ok(done.rows_affected())
        })
    }

    fn query<'a>(&'a mut self, sql: &'a str) -> BoxFuture<'a, Result<Vec<Row>>> {
        Box::pin(async move {
            let rows = sqlx::raw_sql(AssertSqlSafe(sql))
                .fetch_all(&mut *self.0)
                .await?;
            rows.iter().map(decode_row).collect()
        })
    }

    fn driver(&mut self) -> &mut dyn Any {
        &mut *self.0
    }
}

fn decode_row(row: &sqlx::sqlite::SqliteRow) -> Result<Row> {
    let mut values = Vec::with_capacity(row.columns().len());
    for column in row.columns() {
        let i = column.ordinal();
        let raw = row.try_get_raw(i)?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            match raw.type_info().name() {
                "INTEGER" | "BOOLEAN" => Value::Int(row.try_get(i)?),
                "REAL" => Value::Float(row.try_get(i)?),
                "BLOB" => Value::Bytes(row.try_get(i)?),
                "TEXT" => Value::Text(row.try_get(i)?),
                other => {
                    return Err(Error::msg(format!(
                        "column `{}` has SQLite type {other}, which Conn::query does not decode",
                        column.name()
                    )))
                }
            }
        };
        values.push(value);
    }
    Ok(Row(values))
}
