//! `{{tables.x}}` and `{{schema}}` templates in migration SQL.

use crate::dialect::{Dialect, MAX_IDENTIFIER_BYTES};
use crate::error::{Error, Result};
use crate::table_names::TableNames;
use std::borrow::Cow;

/// The quoted, optionally schema-qualified table name.
pub(crate) fn qualified(dialect: Dialect, schema: Option<&str>, table: &str) -> String {
    match schema {
        Some(s) => format!("{}.{}", dialect.quote_ident(s), dialect.quote_ident(table)),
        None => dialect.quote_ident(table),
    }
}

/// A table name that every dialect keeps exactly: not empty, no NUL, at most
/// [`MAX_IDENTIFIER_BYTES`] bytes (PostgreSQL would silently cut a longer one).
fn check_table_name(table: &str) -> Result<()> {
    if table.is_empty() || table.contains('\0') || table.len() > MAX_IDENTIFIER_BYTES {
        return Err(Error::Template(format!(
            "table name `{}` in `{{{{tables.…}}}}` must be 1 to {MAX_IDENTIFIER_BYTES} bytes without NUL (it has {} bytes)",
            shortened(&table.escape_debug().to_string(), 200),
            table.len()
        )));
    }
    Ok(())
}

/// Replaces every `{{tables.name}}` (by the physical name `names` gives it) and `{{schema}}`;
/// `\{{` writes a literal `{{` (for a JSON default, say). SQL without `{{` is returned as is. The name runs to the first `}}` and loses
/// trailing whitespace, so a name that contains `}}` or ends in a space cannot be written here:
/// quote it with `Conn::table`.
pub(crate) fn render<'s>(
    dialect: Dialect,
    schema: Option<&str>,
    names: &TableNames,
    sql: &'s str,
) -> Result<Cow<'s, str>> {
    if !sql.contains("{{") {
        return Ok(Cow::Borrowed(sql));
    }
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        if rest[..start].ends_with('\\') {
            out.push_str(&rest[..start - 1]);
            out.push_str("{{");
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        let at = sql.len() - rest.len() + start;
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or_else(|| {
            Error::Template(format!(
                "unclosed `{{{{` at byte {at}: {} (a literal `{{{{` is written `\\{{{{`)",
                excerpt(sql, at)
            ))
        })?;
        let key = after[..end].trim();
        if key.starts_with("tables.") && key.contains("{{") {
            return Err(Error::Template(format!(
                "table name in `{{{{tables.…}}}}` holds `{{{{`, a placeholder inside a \
                 placeholder, at byte {at}: {} (quote such a name with Conn::table)",
                excerpt(sql, at)
            )));
        }
        if key == "schema" {
            let schema = schema.ok_or_else(|| {
                Error::Template(format!(
                    "`{{{{schema}}}}` used at byte {at}, but no schema is configured: {}",
                    excerpt(sql, at)
                ))
            })?;
            out.push_str(&dialect.quote_ident(schema));
        } else if let Some(table) = key.strip_prefix("tables.") {
            check_table_name(table)?;
            out.push_str(&qualified(dialect, schema, names.physical(table)));
        } else {
            return Err(Error::Template(format!(
                "unknown placeholder at byte {at}: {} (expected tables.NAME or schema; a \
                 literal `{{{{` is written `\\{{{{`)",
                excerpt(sql, at)
            )));
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

/// At most 60 characters of `sql` from byte `at` (a character boundary), for an error that
/// must not quote a whole statement (which may be megabytes).
fn excerpt(sql: &str, at: usize) -> String {
    format!("`{}`", shortened(sql.get(at..).unwrap_or_default(), 60))
}

/// `text`'s first `max` characters, and `…` when there is more: what an error quotes of a
/// statement (a batch's upsert can be megabytes of row values, which belong in no log).
pub(crate) fn shortened(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    if cut.len() < text.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_tables_and_schema() {
        let sql = render(
            Dialect::Postgres,
            Some("app"),
            TableNames::none(),
            "CREATE TABLE {{tables.users}} (); SET search_path = {{ schema }}",
        )
        .unwrap();
        assert_eq!(
            sql,
            r#"CREATE TABLE "app"."users" (); SET search_path = "app""#
        );
        let sql = render(
            Dialect::MySql,
            None,
            TableNames::none(),
            "DROP TABLE {{tables.a`b}}",
        )
        .unwrap();
        assert_eq!(sql, "DROP TABLE `a``b`");
    }

    #[test]
    fn a_renamed_table_renders_as_its_physical_name() {
        let mut names = TableNames::new();
        names.insert("session", "my_sessions").unwrap();
        let sql = render(
            Dialect::Postgres,
            Some("ai"),
            &names,
            "ALTER TABLE {{tables.session}} ADD c INT; DROP TABLE {{tables.memory}}",
        )
        .unwrap();
        assert_eq!(
            sql,
            r#"ALTER TABLE "ai"."my_sessions" ADD c INT; DROP TABLE "ai"."memory""#
        );
    }

    #[test]
    fn a_backslash_escapes_a_literal_brace_pair() {
        let sql = render(
            Dialect::Sqlite,
            None,
            TableNames::none(),
            "INSERT INTO {{tables.t}} VALUES ('\\{{\"a\": 1}}')",
        )
        .unwrap();
        assert_eq!(sql, r#"INSERT INTO "t" VALUES ('{{"a": 1}}')"#);
    }

    #[test]
    fn leaves_plain_sql_borrowed() {
        assert!(matches!(
            render(Dialect::Sqlite, None, TableNames::none(), "SELECT 1").unwrap(),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn rejects_bad_placeholders() {
        for bad in [
            "{{tables.x",
            "{{nope}}",
            "{{tables.}}",
            "{{schema}}",
            "{{tables.a{{b}}",
        ] {
            let err = render(Dialect::Sqlite, None, TableNames::none(), bad).unwrap_err();
            assert!(matches!(err, Error::Template(_)), "{bad}: {err}");
        }
        // An error quotes where it is, not the whole statement.
        let long = format!("SELECT '{}' FROM {{{{tables.x", "v".repeat(10_000));
        let err = render(Dialect::Sqlite, None, TableNames::none(), &long).unwrap_err();
        let text = err.to_string();
        assert!(text.len() < 300 && text.contains("at byte 10015"), "{text}");
    }

    #[test]
    fn refuses_table_names_a_database_would_not_keep_exactly() {
        let longest = "t".repeat(MAX_IDENTIFIER_BYTES);
        let sql = format!("DROP TABLE {{{{tables.{longest}}}}}");
        assert_eq!(
            render(Dialect::Postgres, None, TableNames::none(), &sql).unwrap(),
            format!("DROP TABLE \"{longest}\"")
        );
        // 64 bytes (PostgreSQL would cut it to 63), and a NUL (the end of a statement).
        for name in [
            format!("{longest}t"),
            "a\0b".to_string(),
            format!("{}é", "t".repeat(62)),
        ] {
            let sql = format!("DROP TABLE {{{{tables.{name}}}}}");
            let err = render(Dialect::Postgres, None, TableNames::none(), &sql).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains("must be 1 to 63 bytes")
                    && text.contains(&name.escape_debug().to_string()),
                "{text}"
            );
        }
    }
}
