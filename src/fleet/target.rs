//! [`Target`]: one database, or one PostgreSQL schema on a server, that a fleet migrates.

use crate::{Error, Result};
use std::fmt;
use std::path::Path;

/// One member of a fleet. Its `Debug` and `Display` hide the URL's password.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A whole database: `sqlite://…`, `postgres://…`, `mysql://…`.
    Database {
        /// Its URL.
        url: String,
    },
    /// One schema of a PostgreSQL database; schemas of one server share one pool.
    Schema {
        /// The server's URL.
        url: String,
        /// The schema (its tracking tables live there, and `{{tables.x}}` is qualified with it).
        schema: String,
    },
}

impl Target {
    /// A whole database.
    pub fn database(url: impl Into<String>) -> Self {
        Target::Database { url: url.into() }
    }

    /// A PostgreSQL schema.
    pub fn schema(url: impl Into<String>, schema: impl Into<String>) -> Self {
        Target::Schema {
            url: url.into(),
            schema: schema.into(),
        }
    }

    /// The URL it connects to.
    pub fn url(&self) -> &str {
        match self {
            Target::Database { url } | Target::Schema { url, .. } => url,
        }
    }

    /// Parses one line of a targets file: `URL`, or `URL SCHEMA`.
    pub fn parse(line: &str) -> Result<Self> {
        let mut words = line.split_whitespace();
        let (Some(url), schema, None) = (words.next(), words.next(), words.next()) else {
            // Not the line itself: a password with an unencoded space splits its URL, and
            // the part after the space would show. The file's reader adds the line's number.
            return Err(Error::Config(format!(
                "{} words where a fleet target is `URL` or `URL SCHEMA` (a space in a URL's \
                 password is written %20)",
                line.split_whitespace().count()
            )));
        };
        if !url.contains("://") && !url.starts_with("sqlite:") {
            return Err(Error::Config(format!(
                "`{}` is not a database URL (sqlite://, postgres://, mysql://)",
                crate::backend::redact_url_password(url, url)
            )));
        }
        let Some(schema) = schema else {
            return Ok(Target::database(url));
        };
        // A URL split by an unencoded space in its password: its second half (the host after
        // `@`) reads as the schema. Neither half is shown.
        if schema.contains('@') {
            return Err(Error::Config(
                "the schema word holds `@`, as a URL does: a URL whose password has a space is \
                 split in two (write the space as %20); a schema whose name has `@` cannot be \
                 given in a targets file (use `Target::schema`)"
                    .to_string(),
            ));
        }
        // Refused here, before any target runs, rather than when this one's turn comes.
        if !super::is_postgres_url(url) {
            return Err(Error::Config(format!(
                "schema `{schema}` given for `{}`: only PostgreSQL URLs take a schema",
                crate::backend::redact_url_password(url, url)
            )));
        }
        migrate_core::table_names::check_statement_identifier(
            "schema",
            schema,
            migrate_core::dialect::MAX_IDENTIFIER_BYTES,
        )?;
        Ok(Target::schema(url, schema))
    }

    /// Reads a targets file: one target per line (`URL` or `URL SCHEMA`), blank lines and
    /// lines starting with `#` left out. A bad line is an error naming its number.
    pub fn read_file(path: &Path) -> Result<Vec<Target>> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            operation: "read the targets file",
            path: path.to_path_buf(),
            source,
        })?;
        let mut targets = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let target = Target::parse(line).map_err(|e| {
                Error::Config(format!("{}, line {}: {e}", path.display(), number + 1))
            })?;
            targets.push(target);
        }
        Ok(targets)
    }
}

/// The target's fields, the URL's password blanked out.
impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = crate::backend::redact_url_password(self.url(), self.url());
        match self {
            Target::Database { .. } => f.debug_struct("Database").field("url", &url).finish(),
            Target::Schema { schema, .. } => f
                .debug_struct("Schema")
                .field("url", &url)
                .field("schema", schema)
                .finish(),
        }
    }
}

/// The target as logs and reports name it, the password blanked out.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = crate::backend::redact_url_password(self.url(), self.url());
        match self {
            Target::Database { .. } => f.write_str(&url),
            Target::Schema { schema, .. } => write!(f, "{url} schema {schema}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse_into_targets_and_bad_ones_are_named() {
        assert_eq!(
            Target::parse("postgres://u:pw@h/db tenant_1").unwrap(),
            Target::schema("postgres://u:pw@h/db", "tenant_1")
        );
        assert_eq!(
            Target::parse("sqlite://a.db").unwrap(),
            Target::database("sqlite://a.db")
        );
        let shown = Target::schema("postgres://u:secret@h/db", "t").to_string();
        assert!(
            !shown.contains("secret") && shown.ends_with("schema t"),
            "{shown}"
        );
        assert_eq!(
            Target::parse("postgresql://h/db t").unwrap(),
            Target::schema("postgresql://h/db", "t")
        );
        let long = format!("postgres://h/db {}", "s".repeat(64));
        for bad in [
            "",
            "not-a-url",
            "postgres://h/db a b",
            "sqlite://a.db tenant_1",
            "mysql://h/db tenant_1",
            "postgres://h/db a\0b",
            &long,
        ] {
            assert!(matches!(Target::parse(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn a_password_shows_in_neither_an_error_nor_debug() {
        for line in [
            "postgres://u:s3cret@h/db a b",
            "postgres://u:s3 cret more@h/db",
        ] {
            let err = Target::parse(line).expect_err("three words");
            let text = err.to_string();
            assert!(matches!(err, Error::Config(_)), "{text}");
            assert!(!text.contains("s3") && !text.contains("cret"), "{text}");
            assert!(text.contains(": 3 words where"), "{text}");
        }
        for line in ["postgres://u:s3 cret@h/db", "mysql://u:s3 cret@h/db"] {
            let err = Target::parse(line).expect_err("a password split by a space");
            let text = err.to_string();
            assert!(!text.contains("s3") && !text.contains("cret"), "{text}");
            assert!(text.contains("%20"), "{text}");
        }
        for target in [
            Target::schema("postgres://u:s3cret@h/db", "t"),
            Target::database("mysql://u:s3cret@h/db"),
        ] {
            let debug = format!("{target:?}");
            assert!(!debug.contains("s3cret") && debug.contains("u:"), "{debug}");
        }
    }
}
