//! Reading a SQL file at compile time: its `-- migrate: no-transaction` marker, its statements,
//! and its `{{...}}` templates.
//!
//! Statements are split on `;` outside of quotes (`'...'`, `"..."`, `` `...` ``), comments
//! (`-- ...`, `/* ... */`) and PostgreSQL dollar quotes (`$$...$$`, `$tag$...$tag$`).

/// The marker, alone on the first line, that runs a file outside a transaction.
pub(crate) const NO_TRANSACTION: &str = "-- migrate: no-transaction";

/// Whether the file's first line is the no-transaction marker.
pub(crate) fn no_transaction(sql: &str) -> bool {
    sql.lines()
        .next()
        .is_some_and(|line| line.trim().eq_ignore_ascii_case(NO_TRANSACTION))
}

/// The statements of `sql`, each without its `;`; statements holding nothing but comments and
/// whitespace are left out.
pub(crate) fn statements(sql: &str) -> Vec<String> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut meaningful = false;
    while i < bytes.len() {
        let b = bytes[i];
        let skip_to = match b {
            b'\'' | b'"' | b'`' => Some(closing_quote(bytes, i, b)),
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                Some(sql[i..].find('\n').map_or(bytes.len(), |n| i + n + 1))
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => Some(
                sql[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2),
            ),
            b'$' => dollar_quote_end(sql, i),
            _ => None,
        };
        match skip_to {
            Some(end) => {
                if !matches!(b, b'-' | b'/') {
                    meaningful = true;
                }
                i = end.max(i + 1);
            }
            None if b == b';' => {
                if meaningful {
                    out.push(sql[start..i].trim().to_string());
                }
                start = i + 1;
                meaningful = false;
                i += 1;
            }
            None => {
                if !b.is_ascii_whitespace() {
                    meaningful = true;
                }
                i += 1;
            }
        }
    }
    if meaningful {
        out.push(sql[start..].trim().to_string());
    }
    out
}

/// The index just past the quote that closes the one at `open` (a doubled quote is escaped).
fn closing_quote(bytes: &[u8], open: usize, quote: u8) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    bytes.len()
}

/// For a `$tag$` opening at `open`, the index just past its closing `$tag$`.
fn dollar_quote_end(sql: &str, open: usize) -> Option<usize> {
    let rest = &sql[open + 1..];
    let tag_len = rest.find('$')?;
    let tag = &rest[..tag_len];
    if !tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || tag.starts_with(|c: char| c.is_ascii_digit())
    {
        return None;
    }
    let delimiter = format!("${tag}$");
    let body_start = open + delimiter.len();
    sql[body_start..]
        .find(&delimiter)
        .map(|n| body_start + n + delimiter.len())
        .or(Some(sql.len()))
}

/// The first statement of `sql` that opens or closes a transaction itself, if any: every
/// file already runs in one (or, marked, outside one).
pub(crate) fn transaction_control(sql: &str) -> Option<String> {
    statements(sql).into_iter().find(|statement| {
        let code: String = statement
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join(" ");
        let first = code
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let second = code
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_ascii_uppercase();
        matches!(first.as_str(), "BEGIN" | "COMMIT" | "ROLLBACK" | "END")
            && !matches!(second.as_str(), "ATOMIC")
            || first == "START" && second == "TRANSACTION"
    })
}

/// The `{{...}}` templates of `sql` that are neither `{{tables.NAME}}` nor `{{schema}}` (an
/// escaped `\{{` is not a template).
pub(crate) fn unknown_placeholders(sql: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find("{{") {
        let escaped = rest[..start].ends_with('\\');
        let after = &rest[start + 2..];
        if escaped {
            rest = after;
            continue;
        }
        let Some(end) = after.find("}}") else {
            unknown.push(format!("{{{{{}", after.lines().next().unwrap_or_default()));
            break;
        };
        let key = after[..end].trim();
        let known = key == "schema"
            || key
                .strip_prefix("tables.")
                .is_some_and(|t| !t.trim().is_empty());
        if !known {
            unknown.push(format!("{{{{{}}}}}", &after[..end]));
        }
        rest = &after[end + 2..];
    }
    unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_outside_quotes_comments_and_dollar_quotes() {
        let sql = "-- migrate: no-transaction\nCREATE TABLE a (x TEXT DEFAULT ';');\n\
                   /* one; */ INSERT INTO a VALUES ('it''s; fine');\n\
                   CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\n\
                   -- only a comment;\n  ;\nCREATE INDEX CONCURRENTLY i ON a (x)";
        let got = statements(sql);
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].ends_with("DEFAULT ';')"), "{got:#?}");
        assert!(got[2].contains("$body$ SELECT 1; $body$"), "{got:#?}");
        assert_eq!(got[3], "CREATE INDEX CONCURRENTLY i ON a (x)");
        assert!(no_transaction(sql));
        assert!(!no_transaction(
            "CREATE TABLE a ();\n-- migrate: no-transaction"
        ));
    }

    #[test]
    fn finds_transaction_control_and_unknown_templates() {
        assert!(transaction_control("BEGIN;\nCREATE TABLE a ();\nCOMMIT;").is_some());
        // Control words inside quotes are text: these only pass if the split respects quotes.
        assert!(transaction_control("INSERT INTO t VALUES ('x; COMMIT; y');").is_none());
        assert!(transaction_control(
            "CREATE FUNCTION f() RETURNS int AS $$ BEGIN RETURN 1; END; $$ LANGUAGE plpgsql;"
        )
        .is_none());
        assert_eq!(
            unknown_placeholders("SELECT {{tables.a}}, {{ schema }}, {{table.b}}, '\\{{json}}'"),
            ["{{table.b}}"]
        );
        assert_eq!(unknown_placeholders("x {{tables.}}"), ["{{tables.}}"]);
    }
}
