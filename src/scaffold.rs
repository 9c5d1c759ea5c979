//! Writing the next migration: a SQL file (and its down) in a directory's own naming style, or
//! the `#[migration]` function that continues a table's line.

use migrate_core::error::{Error, Result};
use migrate_core::migration::registered;
use migrate_core::Version;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How the files of a directory name their versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Numbered { width: usize },
    Flyway,
    Timestamp { split: bool },
    Semver,
}

/// The version prefix of a file name, and its style; `None` for a name `sql_dir!` rejects.
/// The same rules as the macro's `sql_names::version_of` (which also says why a name is wrong);
/// the unit test below holds the macro test's table of names and versions, so the two agree.
fn prefix_of(stem: &str) -> Option<(Version, Style)> {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let described = |desc: &str| (!desc.trim().is_empty()).then_some(());
    if let Some(rest) = stem.strip_prefix('V') {
        let (parts, desc) = rest.split_once("__")?;
        described(desc)?;
        let parts: Vec<u64> = parts
            .split('_')
            .map(|p| if digits(p) { p.parse().ok() } else { None })
            .collect::<Option<_>>()?;
        let part = |i: usize| parts.get(i).copied().unwrap_or(0);
        if parts.len() > 3 {
            return None;
        }
        return Some((Version::new(part(0), part(1), part(2)), Style::Flyway));
    }
    let (head, rest) = stem.split_once('_')?;
    if head.contains('.') {
        described(rest)?;
        return Version::parse(head).ok().map(|v| (v, Style::Semver));
    }
    if !digits(head) {
        return None;
    }
    if head.len() == 8 {
        if let Some((time, desc)) = rest.split_once('_') {
            if time.len() == 6 && digits(time) {
                described(desc)?;
                let stamp = format!("{head}{time}").parse().ok()?;
                return Some((Version::new(stamp, 0, 0), Style::Timestamp { split: true }));
            }
        }
        // A date without a time: `sql_dir!` refuses it (it would read as sequence numbers).
        let part = |r: std::ops::Range<usize>| head.get(r).and_then(|p| p.parse::<u32>().ok());
        if matches!(
            (part(0..4), part(4..6), part(6..8)),
            (Some(1900..=2099), Some(1..=12), Some(1..=31))
        ) {
            return None;
        }
    }
    described(rest)?;
    let value = head.parse().ok()?;
    let style = if head.len() >= 12 {
        Style::Timestamp { split: false }
    } else {
        Style::Numbered { width: head.len() }
    };
    Some((Version::new(value, 0, 0), style))
}

/// `name` as the part of a file name or a function name after the version.
fn slug(name: &str) -> Result<String> {
    let slug: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let slug = slug.trim_matches('_').to_string();
    if slug.is_empty() {
        return Err(Error::Config(format!(
            "`{}` has nothing a migration can be named after: use ASCII letters or digits",
            name.escape_debug()
        )));
    }
    if slug.len() > MAX_SLUG {
        return Err(Error::Config(format!(
            "`{}` makes a name of {} characters: at most {MAX_SLUG} (file systems keep 255 bytes \
             for a file name, the version and `.down.sql` included)",
            name.escape_debug(),
            slug.len()
        )));
    }
    Ok(slug)
}

/// The longest name a migration's files and function get from `migrate new` (a name of 255
/// bytes, the most most file systems keep, less a version of up to 21 and `.down.sql`).
const MAX_SLUG: usize = 200;

/// Now in UTC, as `YYYYMMDDHHMMSS`.
fn timestamp_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Writes the next SQL migration of `dir` and its down, named in the style the directory's
/// files already use (`001_name.sql` when it has none), and returns their paths. Never
/// overwrites a file.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("migrate-scaffold-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("001_create_users.sql"), "CREATE TABLE users (id INT);").unwrap();
/// let (up, down) = migrate::scaffold::new_sql(&dir, "Add email").unwrap();
/// assert!(up.ends_with("002_add_email.sql") && down.ends_with("002_add_email.down.sql"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn new_sql(dir: impl AsRef<Path>, name: &str) -> Result<(PathBuf, PathBuf)> {
    let dir = dir.as_ref();
    let slug = slug(name)?;
    let io = |operation: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io {
            operation,
            path,
            source,
        }
    };
    let mut latest: Option<(Version, Style)> = None;
    for entry in std::fs::read_dir(dir).map_err(io("read the migrations directory", dir))? {
        let entry = entry.map_err(io("read the migrations directory", dir))?;
        let file = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = file.strip_suffix(".sql") else {
            continue;
        };
        let stem = stem.strip_suffix(".down").unwrap_or(stem);
        if let Some((version, style)) = prefix_of(stem) {
            if latest.as_ref().is_none_or(|(v, _)| version > *v) {
                latest = Some((version, style));
            }
        }
    }
    let next = |n: u64, v: &Version| {
        n.checked_add(1).ok_or_else(|| {
            Error::Config(format!(
                "the newest migration, version {v}, has no next version"
            ))
        })
    };
    let prefix = match latest {
        None => "001".to_string(),
        Some((v, Style::Numbered { width })) => format!("{:0width$}", next(v.major, &v)?),
        Some((v, Style::Flyway)) => format!("V{}_", next(v.major, &v)?),
        Some((v, Style::Timestamp { split })) => {
            // Never below the newest file: a stamp taken in another time zone, or a skewed
            // clock, would otherwise put the new step in the middle of the chain.
            let now: u64 = timestamp_now().parse().unwrap_or(0);
            let stamp = format!("{:014}", now.max(next(v.major, &v)?));
            if split && stamp.len() == 14 {
                format!("{}_{}", &stamp[..8], &stamp[8..])
            } else {
                stamp
            }
        }
        Some((v, Style::Semver)) => format!("{}.{}.0", v.major, next(v.minor, &v)?),
    };
    let stem = format!("{prefix}_{slug}");
    let up = dir.join(format!("{stem}.sql"));
    let down = dir.join(format!("{stem}.down.sql"));
    // The name on one comment line: a line break in it would start SQL that runs.
    let name: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let up_text =
        format!("-- {name}: what this migration does (the build fails until it is written).\n");
    let down_text = format!(
        "-- {name}: how to undo it (the build fails until it is written). Delete this file if it \
         cannot be undone.\n"
    );
    // Comments only: `sql_dir!` refuses a file with no statement, so the crate does not build
    // until both are written (a blank step would be recorded as applied).
    write_new(&up, &up_text).map_err(io("create the migration file", &up))?;
    if let Err(err) = write_new(&down, &down_text) {
        // Both files or neither: an up file alone would be a step with no down to write.
        let _ = std::fs::remove_file(&up);
        return Err(io("create the migration file", &down)(err));
    }
    Ok((up, down))
}

/// Creates `path` with `text`, never over an existing file; a file left half-written is
/// removed.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(text.as_bytes()).inspect_err(|_| {
        let _ = std::fs::remove_file(path);
    })
}

/// Rust's keywords, strict and reserved (lower case: a slug has no capitals), and `_`.
const RUST_KEYWORDS: &[&str] = &[
    "_", "abstract", "as", "async", "await", "become", "box", "break", "const", "continue",
    "crate", "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if",
    "impl", "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "try", "type", "typeof",
    "union", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// A table name `new` can scaffold a step for: one the tracking tables can keep, not
/// `module:table`, and not one differing only in case from a table migrations already declare
/// (each would build a chain the graph refuses later). Used for Rust steps and SQL files alike.
pub(crate) fn check_new_table(table: &str) -> Result<()> {
    if let Some(why) = migrate_core::dialect::tracked_name_problem(table) {
        return Err(Error::Config(format!(
            "table name `{}` {why}",
            table.escape_debug()
        )));
    }
    if table.contains(':') {
        return Err(Error::Config(format!(
            "`new` takes a table name, not `module:table` (`{}`): the new step belongs to the \
             crate whose migrations it is written into",
            table.escape_debug()
        )));
    }
    if let Some(known) = registered()
        .map(|m| m.table())
        .find(|known| migrate_core::dialect::differ_only_in_case(known, table))
    {
        return Err(Error::Config(format!(
            "table `{}` differs only in case from the table `{known}` that migrations already \
             declare: MySQL's tracking tables would take them for one; write `{known}`",
            table.escape_debug()
        )));
    }
    Ok(())
}

/// The source of the next `#[migration]` function of `table`, continuing the newest version any
/// linked migration declares for it (a minor bump), or starting it at 1.0.0. Its body returns an
/// error until it is written.
///
/// ```
/// let source = migrate::scaffold::new_rust("audit_log", "create audit log").unwrap();
/// assert!(source.contains("table = \"audit_log\", version = \"1.0.0\""));
/// assert!(source.contains("async fn create_audit_log("));
/// ```
pub fn new_rust(table: &str, name: &str) -> Result<String> {
    check_new_table(table)?;
    let function = slug(name)?;
    // A function's name: not starting with a digit, and not a keyword (`async fn move(` would
    // not compile).
    let function = if function.starts_with(|c: char| c.is_ascii_digit())
        || RUST_KEYWORDS.contains(&function.as_str())
    {
        format!("m_{function}")
    } else {
        function
    };
    let parent = registered()
        .filter(|m| m.table() == table)
        .filter_map(|m| Version::parse(m.version_str()).ok())
        .max();
    let (version, parent_key) = match &parent {
        Some(p) => (
            Version::new(
                p.major,
                p.minor.checked_add(1).ok_or_else(|| {
                    Error::Config(format!(
                        "`{table}` is at {p}, which has no next minor version"
                    ))
                })?,
                0,
            ),
            format!(", parent = \"{p}\""),
        ),
        None => (Version::new(1, 0, 0), String::new()),
    };
    Ok(format!(
        "#[migrate::migration(table = \"{table}\", version = \"{version}\"{parent_key}, down = revert_{function})]\n\
         async fn {function}(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {{\n    \
             let _ = db;\n    \
             Err(migrate::Error::msg(\"{function} is not written yet\"))\n\
         }}\n\n\
         async fn revert_{function}(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {{\n    \
             let _ = db;\n    \
             Err(migrate::Error::msg(\"revert_{function} is not written yet\"))\n\
         }}\n",
        table = table.escape_debug()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_too_long_for_a_file_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let long = "x".repeat(MAX_SLUG + 1);
        let err = new_sql(dir.path(), &long).expect_err("too long");
        assert!(
            matches!(&err, Error::Config(text) if text.contains("at most")),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
        // The longest accepted name fits, its down file's name included.
        let (up, down) = new_sql(dir.path(), &"y".repeat(MAX_SLUG)).expect("longest");
        assert!(up.exists() && down.exists());
        assert!(matches!(
            new_rust("t", &long),
            Err(Error::Config(text)) if text.contains("at most")
        ));
    }

    #[test]
    fn a_module_qualified_table_is_refused() {
        let err = new_rust("app:session", "add state").expect_err("module:table");
        assert!(
            matches!(&err, Error::Config(text) if text.contains("module:table")),
            "{err}"
        );
    }

    fn next(files: &[&str], name: &str) -> Result<String> {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in files {
            std::fs::write(dir.path().join(file), "SELECT 1;").expect("write");
        }
        let (up, down) = new_sql(dir.path(), name)?;
        assert!(down.exists() && up.exists());
        Ok(up.file_name().unwrap().to_string_lossy().into_owned())
    }

    /// The names and versions of `migrate-macros/src/sql_names.rs`'s
    /// `every_style_maps_to_its_version`, and names it rejects.
    #[test]
    fn reads_versions_as_sql_dir_does() {
        let version = |stem: &str| prefix_of(stem).map(|(v, _)| v.to_string());
        for (stem, expected) in [
            ("001_create_users", "1.0.0"),
            ("V1__init", "1.0.0"),
            ("V1_2__add", "1.2.0"),
            ("V1_2_3__fix", "1.2.3"),
            ("20251025120000_add", "20251025120000.0.0"),
            ("20251025_120000_add_users", "20251025120000.0.0"),
            ("2.3.0_add_state", "2.3.0"),
        ] {
            assert_eq!(version(stem).as_deref(), Some(expected), "{stem}");
        }
        for bad in [
            "create_users",
            "V1_x__a",
            "Vfoo",
            "V1_2_3_4__a",
            "20251025_add_users",
            "001_",
            "V1__",
            "2.3.0_ ",
            "20251025_120000_",
        ] {
            assert_eq!(version(bad), None, "{bad}");
        }
    }

    #[test]
    fn each_style_continues_itself() {
        assert_eq!(next(&[], "init").unwrap(), "001_init.sql");
        assert_eq!(
            next(&["001_a.sql", "001_a.down.sql", "0002_b.sql"], "c").unwrap(),
            "0003_c.sql"
        );
        assert_eq!(
            next(&["V1__a.sql", "V1_2__b.sql"], "c").unwrap(),
            "V2__c.sql"
        );
        assert_eq!(
            next(&["2.3.0_a.sql"], "Add state!").unwrap(),
            "2.4.0_add_state.sql"
        );
        let stamped = next(&["20240101120000_a.sql"], "b").unwrap();
        assert!(
            stamped.len() == "20240101120000_b.sql".len() && stamped.as_str() > "2025",
            "{stamped}"
        );
        let split = next(&["20240101_120000_a.sql"], "b").unwrap();
        assert_eq!(split.as_bytes()[8], b'_', "{split}");
    }

    #[test]
    fn a_name_with_a_line_break_stays_in_its_comment() {
        let dir = std::env::temp_dir().join(format!("migrate-scaffold-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (up, down) = super::new_sql(&dir, "add x\nDROP TABLE users;").unwrap();
        for path in [up, down] {
            let text = std::fs::read_to_string(&path).unwrap();
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(text.starts_with("-- add x DROP TABLE users;"), "{text}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_names_and_missing_directories_are_typed_errors() {
        assert!(matches!(next(&[], " !! "), Err(Error::Config(_))));
        let err = new_sql("/nonexistent/migrations", "x").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/migrations"), "{err}");
    }

    #[test]
    fn a_version_any_file_holds_is_never_reused() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("002_x.down.sql"), "keep me").expect("write");
        std::fs::write(dir.path().join("001_a.sql"), "SELECT 1;").expect("write");
        let (up, _) = new_sql(dir.path(), "x").expect("written");
        assert!(up.ends_with("003_x.sql"), "{}", up.display());
        let kept = std::fs::read_to_string(dir.path().join("002_x.down.sql")).unwrap();
        assert_eq!(kept, "keep me");
    }

    #[test]
    fn a_name_that_is_a_keyword_still_makes_a_function() {
        for keyword in ["move", "type", "match", "use", "Self", "yield"] {
            let source = new_rust("audit_log", keyword).expect("source");
            let function = keyword.to_ascii_lowercase();
            assert!(
                source.contains(&format!("async fn m_{function}(")),
                "{keyword}: {source}"
            );
        }
    }
}
