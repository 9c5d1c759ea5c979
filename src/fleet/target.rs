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

    /// Parses one line of a targets file: `URL`, or `URL SCHEMA`; a `#` at the start of the
    /// line or after a space begins a comment, which runs to the end of the line.
    pub fn parse(line: &str) -> Result<Self> {
        let line = without_comment(line);
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
            // Shown only when it cannot hold a password (a DSN such as
            // `user:secret@tcp(host)/db` is not a URL, and the redaction could not find it).
            let shown = if url.contains([':', '@']) {
                "the first word".to_string()
            } else {
                format!("`{}`", url.escape_debug())
            };
            return Err(Error::Config(format!(
                "{shown} is not a database URL (sqlite://, postgres://, mysql://)"
            )));
        }
        if password_cut_short(url) {
            return Err(Error::Config(
                "the URL's password holds an unencoded `/`, `?` or `#` (write them %2F, %3F, \
                 %23): the URL's host would be read from inside the password"
                    .to_string(),
            ));
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
                "schema `{}` given for `{}`: only PostgreSQL URLs take a schema (a space in a \
                 path is written %20)",
                schema.escape_debug(),
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
    /// comments (from a `#` at the start of a line or after a space) left out, a byte-order
    /// mark at its start ignored. A bad line, or one naming a target an earlier line named,
    /// is an error naming its number.
    pub fn read_file(path: &Path) -> Result<Vec<Target>> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            operation: "read the targets file",
            path: path.to_path_buf(),
            source,
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let at_line = |number: usize, why: String| {
            Error::Config(format!("{}, line {}: {why}", path.display(), number + 1))
        };
        let mut targets: Vec<(usize, Target)> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            if without_comment(line).trim().is_empty() {
                continue;
            }
            let target = Target::parse(line).map_err(|e| {
                at_line(
                    number,
                    match e {
                        Error::Config(why) => why,
                        other => other.to_string(),
                    },
                )
            })?;
            // Twice in one run, a target would race itself for its own lock, and be counted
            // twice.
            if let Some((first, _)) = targets.iter().find(|(_, t)| *t == target) {
                return Err(at_line(
                    number,
                    format!("{target} is named again (first on line {})", first + 1),
                ));
            }
            targets.push((number, target));
        }
        Ok(targets.into_iter().map(|(_, target)| target).collect())
    }
}

/// The line up to its comment: a `#` at its start or after whitespace (a URL's own `#`, in a
/// password or a fragment, follows no space).
fn without_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..at];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

/// Whether a server URL's authority ends inside its password: `user:pa/ss@host` ends the
/// authority at the `/`, which leaves `user:pa` as host and port, and the real host after an
/// `@` further on. A port is all digits; this "port" is not, and an `@` follows.
fn password_cut_short(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, after) = rest.split_at(end);
    if authority.contains('@') || authority.starts_with('[') || !after.contains('@') {
        return false;
    }
    authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.chars().all(|c| c.is_ascii_digit()))
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
    fn comments_follow_a_space_and_a_urls_own_hash_is_kept() {
        assert_eq!(
            Target::parse("postgres://u:pw@h/app #prod").unwrap(),
            Target::database("postgres://u:pw@h/app")
        );
        assert_eq!(
            Target::parse("postgres://h/app tenant_1\t# the first tenant").unwrap(),
            Target::schema("postgres://h/app", "tenant_1")
        );
        assert_eq!(
            Target::parse("postgres://u:p%23w@h/app#frag").unwrap(),
            Target::database("postgres://u:p%23w@h/app#frag")
        );
        assert!(matches!(
            Target::parse("# only a comment"),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn a_file_with_a_bom_comments_and_a_repeated_target() {
        let dir = std::env::temp_dir().join(format!("migrate-targets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("targets");
        std::fs::write(
            &file,
            "\u{feff}# tenants\npostgres://h/app t1 # first\n\n  #\npostgres://h/app t2\n",
        )
        .unwrap();
        assert_eq!(
            Target::read_file(&file).unwrap(),
            [
                Target::schema("postgres://h/app", "t1"),
                Target::schema("postgres://h/app", "t2")
            ]
        );
        std::fs::write(&file, "sqlite://a.db\npostgres://h/app t1\nsqlite://a.db\n").unwrap();
        let err = Target::read_file(&file).unwrap_err().to_string();
        assert!(
            err.contains("line 3: sqlite://a.db is named again (first on line 1)"),
            "{err}"
        );
        std::fs::write(&file, "sqlite://a.db tenant\n").unwrap();
        let err = Target::read_file(&file).unwrap_err().to_string();
        assert_eq!(err.matches("invalid configuration").count(), 1, "{err}");
        assert!(err.contains("line 1: schema `tenant`"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_password_shows_in_neither_an_error_nor_debug() {
        for line in [
            "root:s3cret@tcp(db:3306)/app",
            "postgres:/app:s3cret@db/app",
            "postgres://u:s3/cret@h/db",
            "mysql://u:s3?cret@h/db",
            "postgres://u:s3#cret@h/db t",
        ] {
            let err = Target::parse(line).expect_err("not a URL, or its password cut short");
            let text = err.to_string();
            assert!(matches!(err, Error::Config(_)), "{text}");
            assert!(
                !text.contains("s3") && !text.contains("cret"),
                "{line}: {text}"
            );
        }
        assert_eq!(
            Target::parse("postgres://h:5432/db?application_name=a@b").unwrap(),
            Target::database("postgres://h:5432/db?application_name=a@b"),
            "a port is not a password"
        );
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
