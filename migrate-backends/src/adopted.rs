//! Reading another tool's version table (Agno's `agno_schema_versions`): the rows a manager
//! adopts as its starting state with `MigrationManager::with_adopted_versions`.

use crate::driver::Driver;
use crate::sqlx_db::SqlxDb;
use migrate_core::error::{Error, Result};
use sqlx::{AssertSqlSafe, ColumnIndex, IntoArguments};

impl<DB: Driver> SqlxDb<DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// `(table_name, version)` of every row of `table` in this executor's schema; a missing
    /// table reads as no rows. The table is only read, never written.
    pub(crate) async fn read_adopted_rows(&self, table: &str) -> Result<Vec<(String, String)>> {
        let qualified = crate::statements::qualify(DB::DIALECT, self.schema.as_deref(), table);
        let sql = format!("SELECT table_name, version FROM {qualified}");
        let mut conn = self.plain_conn().await?;
        // No parameters: the simple protocol, one exchange, also behind a pooling proxy.
        let read = sqlx::raw_sql(AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await;
        let rows = match read {
            Ok(rows) => rows,
            Err(err) if DB::is_missing_table(&err) => {
                conn.keep();
                return Ok(Vec::new());
            }
            Err(err) => {
                return Err(match Error::from(err) {
                    Error::Database(db) => Error::Database(db.context(format_args!(
                        "reading the adopted version table `{table}` (it needs the columns table_name and version)"
                    ))),
                    other => other,
                })
            }
        };
        conn.keep();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let name = DB::decode_value(row, 0)?;
            let version = DB::decode_value(row, 1)?;
            match (name.as_str(), version.as_str()) {
                (Some(name), Some(version)) => out.push((name.to_string(), version.to_string())),
                // A row without a table or a version says nothing: "no row means the baseline".
                _ => continue,
            }
        }
        Ok(out)
    }
}
