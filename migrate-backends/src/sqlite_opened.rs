//! How a SQLite database is opened, read from what names it: a URL, sqlx's file name, or a
//! pool's options. In memory or a file (a file gets a run-lock file beside it), and whether
//! its wal-index can tell its changes (`wal_index`).

use crate::url::query_pairs;
#[cfg(doc)]
use crate::wal_index::CONFIRM_LOCKING;
use sqlx::sqlite::SqliteConnectOptions;
use std::path::Path;

/// Whether a connection opened with the sqlx URL `url` may have its database's changes told
/// by the wal-index: not when it opens the database read-only, immutable or in memory, or
/// through a VFS of its choosing (the URL's query decoded, as sqlx reads it). A path given
/// alone ([`SqliteDb::open`](crate::sqlite::SqliteDb::open)) has none of these. An in-memory
/// name without a `mode` (`sqlite::memory:`) is the caller's to rule out ([`is_in_memory`],
/// [`url_is_in_memory`]).
pub(crate) fn url_trusts_wal_index(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let untrusted = query_pairs(query).any(|(key, value)| {
        key == "vfs" || key == "immutable" || (key == "mode" && value != "rwc" && value != "rw")
    });
    !untrusted
}

/// Whether a URL opens its database read-only (`mode=ro`) or immutable: no connection may
/// then switch its journal mode, which is a write.
pub(crate) fn url_is_read_only(url: &str) -> bool {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    query_pairs(query).any(|(key, value)| {
        (key == "mode" && value == "ro")
            || (key == "immutable" && matches!(value.as_str(), "true" | "1" | "on" | "yes"))
    })
}

/// Whether a pool's options leave its database's changes to be told by the wal-index, as
/// [`url_trusts_wal_index`] says of a URL: not when they open it in memory (by the option or
/// by its name), read-only, immutable or through a VFS of their choosing, nor when its name
/// is a `file:` URI (sqlx opens with `SQLITE_OPEN_URI`, so such a name carries options of its
/// own). Exclusive locking is the connection's to say ([`CONFIRM_LOCKING`]). sqlx's options
/// give only their file name (and `to_url_lossy` panics on some names, `:memory:` among
/// them), so the rest is read from their `Debug` form ([`debug_form_trusts`]).
pub(crate) fn options_trust_wal_index(options: &SqliteConnectOptions) -> bool {
    let filename = options.get_filename();
    let uri = filename
        .as_os_str()
        .as_encoded_bytes()
        .starts_with(b"file:");
    !uri && !is_in_memory(filename)
        && debug_form_trusts(&format!("{options:?}"), &format!("{filename:?}"))
}

/// Whether `debug`, the `Debug` form of sqlx's `SqliteConnectOptions` whose file name prints
/// as `filename`, opens the file as usual: `in_memory` and `read_only` false (the two fields
/// after the name), then, after sqlx's own fields (flags, numbers and durations, no text of
/// the caller's), `immutable: false` and `vfs: None`. Fields are found by name, so that a field
/// sqlx adds elsewhere (0.9.1 added one after `vfs`) changes nothing; a form this does not
/// recognise trusts nothing, and the checks ask the connection.
fn debug_form_trusts(debug: &str, filename: &str) -> bool {
    let head = format!("SqliteConnectOptions {{ filename: {filename}, ");
    let Some(rest) = debug.strip_prefix(&head) else {
        return false;
    };
    let Some((sqlx_fields, after)) = rest.split_once(", immutable: ") else {
        return false;
    };
    sqlx_fields.starts_with("in_memory: false, read_only: false, ")
        && after.starts_with("false, vfs: None, ")
}

/// Whether sqlx's filename names an in-memory database, as SQLite reads it (sqlx opens with
/// `SQLITE_OPEN_URI`): `:memory:`, no file at all, sqlx's own `file:sqlx-in-memory-N` for
/// `sqlite::memory:`, or a `file:` URI whose path is `:memory:` or whose `mode` is `memory`.
/// A file whose name merely contains those words (`/tmp/mode=memory.db`) is a file, with a
/// run-lock file beside it.
pub(crate) fn is_in_memory(database: &Path) -> bool {
    // A path that is not UTF-8 is a real file: none of the in-memory names below.
    let Some(name) = database.to_str() else {
        return false;
    };
    if name.is_empty() || name == ":memory:" || name.starts_with("file:sqlx-in-memory-") {
        return true;
    }
    let Some(uri) = name.strip_prefix("file:") else {
        return false;
    };
    // SQLite ends a URI at its fragment; sqlx's URLs have none (a `#` is part of a value).
    names_memory(uri.split_once('#').map_or(uri, |(uri, _)| uri))
}

/// Whether a sqlx SQLite URL asks for an in-memory database the way sqlx reads it: the part
/// before `?` is `:memory:` (`sqlite::memory:`), or the query's `mode` is `memory`, its
/// escapes decoded (`mode=m%65mory`).
pub(crate) fn url_is_in_memory(url: &str) -> bool {
    names_memory(
        url.trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:"),
    )
}

/// Whether `database?query` (a URL's or a `file:` URI's, without its scheme) names an in-memory
/// database: the part before `?` is `:memory:`, or the query's `mode` is `memory`, escapes
/// decoded.
fn names_memory(database_and_query: &str) -> bool {
    let (database, query) = database_and_query
        .split_once('?')
        .unwrap_or((database_and_query, ""));
    database == ":memory:"
        || query_pairs(query).any(|(key, value)| key == "mode" && value == "memory")
}

#[cfg(test)]
mod tests {
    use super::{url_is_in_memory, url_trusts_wal_index};

    #[test]
    fn read_only_urls_are_told() {
        use super::url_is_read_only;
        assert!(url_is_read_only("sqlite://app.db?mode=ro"));
        assert!(url_is_read_only("sqlite://app.db?immutable=1"));
        assert!(!url_is_read_only("sqlite://app.db?mode=rwc"));
        assert!(!url_is_read_only("sqlite://app.db"));
    }

    #[test]
    fn connections_that_may_not_be_in_wal_mode_get_no_wal_index() {
        for url in [
            "sqlite://app.db?mode=ro",
            "sqlite://app.db?mode=r%6F",
            "sqlite://app.db?mode=memory",
            "sqlite://app.db?immutable=true",
            "sqlite://app.db?mode=rwc&vfs=unix-excl",
            "sqlite://app.db?mode=rwc&%76fs=unix-excl",
            "sqlite://app.db?mode=rwc&v%66s",
        ] {
            assert!(!url_trusts_wal_index(url), "{url}");
        }
        for url in [
            "sqlite://app.db",
            "sqlite://app.db?mode=rwc",
            "sqlite://app.db?mode=rw&cache=private",
            "sqlite://50%25.db?mode=rwc",
        ] {
            assert!(url_trusts_wal_index(url), "{url}");
        }
    }

    #[test]
    fn in_memory_urls_are_read_the_way_sqlx_reads_them() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
            "sqlite://shared.db?mode=memory&cache=shared",
            "sqlite://shared.db?cache=shared&m%6Fde=m%65mory",
        ] {
            assert!(url_is_in_memory(url), "{url}");
        }
        for url in [
            "sqlite://app.db",
            "sqlite:///tmp/mode=memory.db?mode=rwc",
            "sqlite:///tmp/a:memory:b.db",
            "sqlite://app.db?mode=ro",
        ] {
            assert!(!url_is_in_memory(url), "{url}");
        }
    }

    /// The options' `Debug` form is what `from_pool` reads them from: a file opened as usual
    /// (creating it or not, its cache shared or not, whatever pragmas) is trusted, and the ways
    /// of opening it that are not are told apart, whatever its name or its VFS's name says.
    #[test]
    fn a_pools_options_are_read_from_their_debug_form() {
        use super::options_trust_wal_index as trusted;
        use sqlx::sqlite::SqliteLockingMode;
        let tricky = "a, in_memory: false, read_only: false, immutable: false, vfs: None.db";
        for name in ["app.db", "/tmp/x\"quoted\".db", tricky] {
            let file = || sqlx::sqlite::SqliteConnectOptions::new().filename(name);
            assert!(trusted(&file()), "{name}: {:?}", file());
            let usual = file()
                .create_if_missing(true)
                .shared_cache(true)
                .locking_mode(SqliteLockingMode::Exclusive)
                .pragma("user_version", "7");
            assert!(trusted(&usual), "{name}: {usual:?}");
            let untrusted = [
                file().in_memory(true),
                file().read_only(true),
                file().immutable(true),
                file().vfs("unix"),
                file().vfs("x\", immutable: false, vfs: None, pragmas: y"),
            ];
            for options in untrusted {
                assert!(!trusted(&options), "{name}: {options:?}");
            }
        }
        let uri = sqlx::sqlite::SqliteConnectOptions::new().filename("file:app.db?mode=ro");
        assert!(!trusted(&uri), "a file: URI names options of its own");
        let unnamed = sqlx::sqlite::SqliteConnectOptions::new();
        assert!(
            !trusted(&unnamed),
            "no file name is `:memory:`: {unnamed:?}"
        );
    }

    /// The form of sqlx-sqlite 0.9.1, which added `thread_stack_size` after `vfs`, is read the
    /// same way; a form without the fields by name trusts nothing.
    #[test]
    fn the_debug_form_is_read_by_field_name() {
        use super::debug_form_trusts as trusts;
        let form = |in_memory: bool, vfs: &str| {
            format!(
                "SqliteConnectOptions {{ filename: \"app.db\", in_memory: {in_memory}, \
                 read_only: false, create_if_missing: true, shared_cache: false, \
                 statement_cache_capacity: 100, busy_timeout: 5s, log_settings: LogSettings \
                 {{ statements_level: Debug }}, immutable: false, vfs: {vfs}, \
                 thread_stack_size: None, pragmas: {{}} }}"
            )
        };
        assert!(trusts(&form(false, "None"), "\"app.db\""));
        assert!(!trusts(&form(true, "None"), "\"app.db\""));
        assert!(!trusts(&form(false, "Some(\"unix\")"), "\"app.db\""));
        assert!(!trusts(&form(false, "None"), "\"other.db\""));
        assert!(!trusts(
            "SqliteConnectOptions { filename: \"app.db\" }",
            "\"app.db\""
        ));
    }
}
