//! Statements with their values: bound to a prepared statement, or written out with literals
//! for one exchange on the simple protocol.

use crate::driver::Driver;
use crate::statements::{Param, Stmt, Values};
use sqlx::{AssertSqlSafe, Encode, IntoArguments, Type};
use std::fmt::Write;

/// A statement with its values: prepared (the usual way), or, behind a transaction-pooling
/// proxy, written out with literals and sent on the simple protocol in one exchange (the
/// proxy may give each exchange outside a transaction another server connection, so a
/// prepared statement would not be found where it was parsed).
pub(crate) enum Bound<'q, DB: sqlx::Database> {
    Prepared(sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>),
    Literal(sqlx::RawSql),
}

impl<DB: Driver> Bound<'_, DB>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
{
    pub(crate) async fn execute(self, conn: &mut DB::Connection) -> sqlx::Result<DB::QueryResult> {
        match self {
            Bound::Prepared(query) => query.execute(conn).await,
            Bound::Literal(sql) => sql.execute(conn).await,
        }
    }

    pub(crate) async fn fetch_optional(
        self,
        conn: &mut DB::Connection,
    ) -> sqlx::Result<Option<DB::Row>> {
        match self {
            Bound::Prepared(query) => query.fetch_optional(conn).await,
            Bound::Literal(sql) => sql.fetch_optional(conn).await,
        }
    }
}

/// A statement with its values bound: prepared when `persistent`, else written with literals
/// (see [`Bound`]).
pub(crate) fn bound<'q, DB>(stmt: &Stmt, values: &Values, persistent: bool) -> Bound<'q, DB>
where
    DB: Driver,
    for<'e> Option<String>: Encode<'e, DB> + Type<DB>,
    for<'e> Option<i64>: Encode<'e, DB> + Type<DB>,
{
    if !persistent {
        return Bound::Literal(sqlx::raw_sql(AssertSqlSafe(literal_sql::<DB>(
            stmt, values,
        ))));
    }
    let mut query = sqlx::query(AssertSqlSafe(stmt.sql.clone()));
    for &i in &stmt.params {
        query = match values.get(i) {
            Some(Param::Text(v)) => query.bind(v.clone()),
            Some(Param::Int(v)) => query.bind(*v),
            None => query.bind(None::<i64>),
        };
    }
    Bound::Prepared(query)
}

/// Sends `text` (statements with their values written in) in one exchange and returns the
/// rows each statement affected, in order; the first error ends it.
pub(crate) async fn affected_per_statement<DB: Driver>(
    conn: &mut DB::Connection,
    text: String,
) -> sqlx::Result<Vec<u64>>
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
{
    let mut results = sqlx::raw_sql(AssertSqlSafe(text)).execute_many(conn);
    let mut affected = Vec::new();
    while let Some(result) =
        std::future::poll_fn(|cx| futures_core::Stream::poll_next(results.as_mut(), cx)).await
    {
        affected.push(DB::rows_affected(&result?));
    }
    Ok(affected)
}

/// `stmt` with each placeholder replaced by its value as a literal. One pass over the
/// statement's own text, placeholders in the order `compile` wrote them: a value that holds
/// placeholder-like text (an error message quoting `$1`) is never read again.
pub(crate) fn literal_sql<DB: Driver>(stmt: &Stmt, values: &Values) -> String {
    let mut out = String::with_capacity(stmt.sql.len() + 64);
    let mut from = 0;
    // The placeholders' own offsets, as `compile` wrote them: a `?` or `$1` inside a quoted
    // name, or in a value, is never taken for one.
    for (&i, &(at, len)) in stmt.params.iter().zip(&stmt.placeholders) {
        let (Some(before), Some(_)) = (stmt.sql.get(from..at), stmt.sql.get(at..at + len)) else {
            break;
        };
        out.push_str(before);
        match values.get(i) {
            Some(Param::Text(Some(v))) => DB::DIALECT.push_exact_literal(&mut out, v),
            Some(Param::Int(Some(v))) => {
                // Writing to a `String` cannot fail.
                let _ = write!(out, "{v}");
            }
            _ => out.push_str("NULL"),
        }
        from = at + len;
    }
    out.push_str(stmt.sql.get(from..).unwrap_or_default());
    out
}

#[cfg(all(test, any(feature = "postgres", feature = "mysql")))]
mod tests {
    use super::literal_sql;
    use crate::statements::{compile, Bind, Values};

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_literals_are_hexadecimal_utf8mb4_whatever_the_value_holds() {
        let stmt = compile::<sqlx::MySql>(
            "INSERT INTO h (module, error, started_at, finished_at) \
             VALUES ($(module), $(error), $(started_at), $(finished_at))",
        );
        // Every byte, in two digits: a quote, a backslash, a placeholder, 日 (E6 97 A5), and
        // the bytes whose digits are the table's two ends.
        let values = Values::new()
            .text(Bind::Module, Some("a'\\?日"))
            .text(Bind::Error, Some("\u{0}\u{7f}"))
            .int(Bind::StartedAt, Some(-42))
            .int(Bind::FinishedAt, None);
        assert_eq!(
            literal_sql::<sqlx::MySql>(&stmt, &values),
            "INSERT INTO h (module, error, started_at, finished_at) \
             VALUES (_utf8mb4 X'61275C3FE697A5', _utf8mb4 X'007F', -42, NULL)"
        );
        // Every digit of the table, against the standard formatter: the characters up to
        // U+00FF (one and two bytes in utf-8) and one of four bytes.
        let every: String = (0..=0xFF_u32)
            .filter_map(char::from_u32)
            .chain(['😀'])
            .collect();
        let hex: String = every.bytes().map(|b| format!("{b:02X}")).collect();
        let stmt = compile::<sqlx::MySql>("SELECT $(module)");
        assert_eq!(
            literal_sql::<sqlx::MySql>(&stmt, &Values::new().text(Bind::Module, Some(&every))),
            format!("SELECT _utf8mb4 X'{hex}'")
        );
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn literals_never_reread_a_value_that_looks_like_a_placeholder() {
        let stmt = compile::<sqlx::Postgres>(
            "INSERT INTO h (module, error, started_at) VALUES ($(module), $(error), $(started_at))",
        );
        let values = Values::new()
            .text(Bind::Module, Some("it's a\\"))
            .text(
                Bind::Error,
                Some("could not determine data type of parameter $1 or $3"),
            )
            .int(Bind::StartedAt, Some(7));
        assert_eq!(
            literal_sql::<sqlx::Postgres>(&stmt, &values),
            "INSERT INTO h (module, error, started_at) VALUES (E'it''s a\\\\', \
             E'could not determine data type of parameter $1 or $3', 7)",
            "escape strings, so that a backslash reads the same whatever \
             standard_conforming_strings says"
        );
    }
}
