//! One statement about a database itself (`CREATE DATABASE`, `DROP DATABASE`), run on a
//! connection of its own to the server a URL names: for the throwaway test databases and the
//! drift check's scratch database.

use migrate_core::error::{Error, Result};

/// Runs `sql` on a new connection to `url`, and closes it.
pub(crate) async fn execute_on(url: &str, sql: &str) -> Result<()> {
    let scheme = url.split(':').next().unwrap_or_default();
    match scheme {
        #[cfg(feature = "postgres")]
        "postgres" | "postgresql" => execute_with::<sqlx::PgConnection>(url, sql).await,
        #[cfg(feature = "mysql")]
        "mysql" | "mariadb" => execute_with::<sqlx::MySqlConnection>(url, sql).await,
        _ => {
            let _ = sql;
            Err(Error::Config(format!(
                "no database server backend for `{scheme}:` (features: postgres, mysql)"
            )))
        }
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
async fn execute_with<C>(url: &str, sql: &str) -> Result<()>
where
    C: sqlx::Connection,
    for<'c> &'c mut C: sqlx::Executor<'c, Database = C::Database>,
{
    let mut conn = C::connect(url).await?;
    let done = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&mut conn)
        .await;
    let _ = conn.close().await;
    done.map(|_| ()).map_err(Error::from)
}
