//! [`Dialect`]: which database a connection speaks to.

use std::fmt;

/// The longest identifier, in bytes, that every dialect keeps exactly: PostgreSQL cuts longer
/// names to 63 bytes without an error, and MySQL refuses more than 64 characters. Names that
/// this crate quotes (`{{tables.x}}`, schemas, tracking tables) are held to it.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The most characters of a module or table name that the tracking tables keep: their
/// `module` and `table_name` columns are `VARCHAR(191)` on MySQL (the longest a utf8mb4 key
/// may index). `#[migration]`, `migrations!` and the graph refuse a longer name, and one that
/// is blank or holds a NUL (PostgreSQL's text refuses it).
pub const MAX_TRACKED_NAME_CHARS: usize = 191;

/// Whether two module or table names are different names that the tracking tables would take
/// for one (MySQL's collation ignores case): the graph refuses such a pair
/// (`GraphError::NamesDifferOnlyInCase`), and `migrate new` refuses a table that would make one.
pub fn differ_only_in_case(a: &str, b: &str) -> bool {
    a != b && case_folded(a) == case_folded(b)
}

/// The form in which names are compared by [`differ_only_in_case`].
pub(crate) fn case_folded(name: &str) -> String {
    name.to_lowercase()
}

/// What keeps the tracking tables from storing `name` (a module or table name) exactly, if
/// anything: `"is blank"`, whitespace around it (MySQL's collation ignores trailing spaces),
/// `"contains NUL"`, or that it is longer than [`MAX_TRACKED_NAME_CHARS`].
pub fn tracked_name_problem(name: &str) -> Option<String> {
    let chars = || name.chars().count();
    if name.trim().is_empty() {
        Some("is blank".to_string())
    } else if name.trim() != name {
        Some("starts or ends with whitespace".to_string())
    } else if name.contains('\0') {
        Some("contains NUL".to_string())
    } else if name.len() > MAX_TRACKED_NAME_CHARS && chars() > MAX_TRACKED_NAME_CHARS {
        Some(format!(
            "is {} characters long; the tracking tables keep {MAX_TRACKED_NAME_CHARS}",
            chars()
        ))
    } else {
        None
    }
}

/// The database a connection speaks to. Exhaustive on purpose: a migration may `match` on it
/// with one arm per database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Dialect {
    /// Quotes an identifier for this dialect, doubling any embedded quote character.
    ///
    /// ```
    /// use migrate_core::dialect::Dialect;
    /// assert_eq!(Dialect::Postgres.quote_ident("my \"table\""), r#""my ""table""""#);
    /// assert_eq!(Dialect::MySql.quote_ident("session"), "`session`");
    /// ```
    pub fn quote_ident(self, ident: &str) -> String {
        let q = match self {
            Dialect::MySql => '`',
            Dialect::Sqlite | Dialect::Postgres => '"',
        };
        let mut out = String::with_capacity(ident.len() + 2);
        out.push(q);
        for c in ident.chars() {
            if c == q {
                out.push(q);
            }
            out.push(c);
        }
        out.push(q);
        out
    }
}

impl Dialect {
    /// Quotes a string literal for this dialect: `'` doubled, and on MySQL/MariaDB (whose
    /// strings take backslash escapes by default) `\` doubled too. NUL cannot be written: it is
    /// refused by [`Conn::execute`](crate::conn::Conn::execute).
    ///
    /// This is the plain literal, read as written under the servers' default settings. For a
    /// value in SQL run through `Conn`, prefer `migrate::data::literal`: it also writes a `{{`
    /// so that `Conn`'s template renderer leaves it alone, and on PostgreSQL it writes an
    /// escape string, read alike whatever `standard_conforming_strings` says (with it off, a
    /// backslash before a quote in a plain literal ends the string).
    ///
    /// ```
    /// use migrate_core::dialect::Dialect;
    /// assert_eq!(Dialect::Sqlite.quote_literal("it's"), "'it''s'");
    /// assert_eq!(Dialect::MySql.quote_literal(r"a\b'"), r"'a\\b'''");
    /// ```
    pub fn quote_literal(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + 2);
        self.push_literal(&mut out, text);
        out
    }

    /// Appends `text` to `out` as [`quote_literal`](Self::quote_literal) quotes it, for a
    /// statement built in one buffer.
    ///
    /// ```
    /// use migrate_core::dialect::Dialect;
    /// let mut sql = String::from("SELECT ");
    /// Dialect::Postgres.push_literal(&mut sql, "it's");
    /// assert_eq!(sql, "SELECT 'it''s'");
    /// ```
    pub fn push_literal(self, out: &mut String, text: &str) {
        out.reserve(text.len() + 2);
        out.push('\'');
        for c in text.chars() {
            match c {
                '\'' => out.push_str("''"),
                '\\' if self == Dialect::MySql => out.push_str("\\\\"),
                c => out.push(c),
            }
        }
        out.push('\'');
    }

    /// `text` as a string literal the server reads as exactly `text` whatever its settings:
    /// on PostgreSQL an escape string (`E'…'`, backslashes and quotes doubled), read alike
    /// whatever `standard_conforming_strings` says (with it off, a backslash before a quote in
    /// a plain literal ends the string); on MySQL and MariaDB a hexadecimal literal in utf8mb4
    /// (`_utf8mb4 X'…'`), read alike with or without `NO_BACKSLASH_ESCAPES` in `sql_mode`
    /// (which would store doubled backslashes doubled); on SQLite the plain literal. For values
    /// written into statements this crate sends, and into a data migration's SQL
    /// (`migrate::data::literal`).
    ///
    /// ```
    /// use migrate_core::dialect::Dialect;
    /// assert_eq!(Dialect::Postgres.exact_literal(r"a\b'"), r"E'a\\b'''");
    /// assert_eq!(Dialect::MySql.exact_literal("a'"), "_utf8mb4 X'6127'");
    /// assert_eq!(Dialect::Sqlite.exact_literal(r"a\b'"), r"'a\b'''");
    /// ```
    #[doc(hidden)]
    pub fn exact_literal(self, text: &str) -> String {
        let mut out = String::new();
        self.push_exact_literal(&mut out, text);
        out
    }

    /// Appends `text` to `out` as [`exact_literal`](Self::exact_literal) writes it. MySQL's
    /// hexadecimal digits are written from a table: a journal batch holds a few hundred bytes
    /// of values, and formatting each byte cost more than the rest of the step's client work.
    #[doc(hidden)]
    pub fn push_exact_literal(self, out: &mut String, text: &str) {
        const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
        match self {
            Dialect::MySql => {
                out.reserve(text.len() * 2 + 12);
                out.push_str("_utf8mb4 X'");
                for byte in text.bytes() {
                    out.push(char::from(DIGITS[usize::from(byte >> 4)]));
                    out.push(char::from(DIGITS[usize::from(byte & 0x0F)]));
                }
                out.push('\'');
            }
            Dialect::Postgres => {
                out.reserve(text.len() + 3);
                out.push_str("E'");
                for c in text.chars() {
                    match c {
                        '\'' => out.push_str("''"),
                        '\\' => out.push_str("\\\\"),
                        c => out.push(c),
                    }
                }
                out.push('\'');
            }
            Dialect::Sqlite => self.push_literal(out, text),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
            Dialect::MySql => "MySQL/MariaDB",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differ_only_in_case_as_the_graph_compares_them() {
        assert!(differ_only_in_case("Session", "session"));
        // The graph folds case beyond ASCII (its `NamesDifferOnlyInCase`), and so does this.
        assert!(differ_only_in_case("Ägg", "ägg"));
        assert!(!differ_only_in_case("session", "session"));
        assert!(!differ_only_in_case("session", "sessions"));
    }
}
