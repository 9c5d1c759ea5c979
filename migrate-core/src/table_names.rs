//! [`TableNames`]: the physical name each logical table has in one database.
//!
//! Migrations name a table once, in `table = "session"`. A product that lets its users rename
//! tables (Agno's `session_table="my_sessions"`) installs the same migrations under other
//! names, so the manager carries a map from the logical name to the physical one. Templates
//! (`{{tables.session}}`), [`Conn::table`](crate::conn::Conn::table) and the tracking rows use
//! the physical name; reports, errors and the API use the logical one.

use crate::dialect::MAX_IDENTIFIER_BYTES;
use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Logical table name → physical table name. A table with no entry keeps its logical name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableNames {
    physical: BTreeMap<String, String>,
}

impl TableNames {
    /// No renamed tables.
    pub const fn new() -> Self {
        TableNames {
            physical: BTreeMap::new(),
        }
    }

    /// The empty map, for connections made outside a manager.
    pub(crate) fn none() -> &'static TableNames {
        static NONE: TableNames = TableNames::new();
        &NONE
    }

    /// Maps `logical` to `physical`. The physical name must be one a database keeps exactly
    /// (1 to 63 bytes, no NUL), and two logical tables cannot share one physical table.
    pub fn insert(&mut self, logical: &str, physical: &str) -> Result<()> {
        self.insert_with(logical, physical, |a, b| a == b)
    }

    /// [`insert`](Self::insert), with `same` telling whether two physical names are one table
    /// (names that differ only in case are, where the database ignores it).
    pub(crate) fn insert_with(
        &mut self,
        logical: &str,
        physical: &str,
        same: impl Fn(&str, &str) -> bool,
    ) -> Result<()> {
        check_name(physical)?;
        if physical.contains("{{") {
            // `Conn::table` writes it into SQL that `Conn::execute` renders as a template.
            return Err(Error::Config(format!(
                "table `{logical}` cannot be renamed to `{}`: `{{{{` in a name would be read as \
                 a template in SQL that names it through `Conn::table`",
                physical.escape_debug()
            )));
        }
        if let Some((other, _)) = self
            .physical
            .iter()
            .find(|(l, p)| same(p, physical) && l.as_str() != logical)
        {
            return Err(Error::Config(format!(
                "tables `{other}` and `{logical}` would both be the physical table `{physical}`"
            )));
        }
        if physical == logical {
            self.physical.remove(logical);
        } else {
            self.physical
                .insert(logical.to_string(), physical.to_string());
        }
        Ok(())
    }

    /// Whether no table is renamed.
    pub fn is_empty(&self) -> bool {
        self.physical.is_empty()
    }

    /// The physical name of `logical` (itself when it is not renamed).
    pub fn physical<'a>(&'a self, logical: &'a str) -> &'a str {
        self.physical.get(logical).map_or(logical, String::as_str)
    }

    /// The logical name a physical name stands for: the renamed table whose physical name it
    /// is, else the name itself (a table that is not renamed).
    pub fn logical<'a>(&'a self, physical: &'a str) -> &'a str {
        self.physical
            .iter()
            .find(|(_, p)| p.as_str() == physical)
            .map_or(physical, |(l, _)| l.as_str())
    }

    /// The renamed tables, as (logical, physical) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.physical.iter().map(|(l, p)| (l.as_str(), p.as_str()))
    }
}

/// The history table that goes with the tracking (state) table `tracking`.
pub fn history_table(tracking: &str) -> String {
    format!("{tracking}_history")
}

/// The lock table (PostgreSQL's lock-table mode) that goes with the tracking table `tracking`.
pub fn lock_table(tracking: &str) -> String {
    format!("{tracking}_lock")
}

/// Every table a backend keeps its tracking in, from its tracking table's name.
pub fn tracking_tables(tracking: &str) -> [String; 3] {
    [
        tracking.to_string(),
        history_table(tracking),
        lock_table(tracking),
    ]
}

/// A table name that every dialect keeps exactly: not empty, no NUL, at most
/// [`MAX_IDENTIFIER_BYTES`] bytes (PostgreSQL would silently cut a longer one).
pub(crate) fn check_name(table: &str) -> Result<()> {
    check_identifier("table name", table, MAX_IDENTIFIER_BYTES)
}

/// Checks a name this crate quotes wherever it uses it (a table, schema or tracking table), so
/// any text is safe in SQL: what a database cannot keep exactly is refused with
/// [`Error::Config`] naming `what` and the name: blank, NUL, or longer than `max` bytes (cut,
/// or refused, there). A name this crate writes into its own statements goes through
/// [`check_statement_identifier`].
#[doc(hidden)]
pub fn check_identifier(what: &str, name: &str, max: usize) -> Result<()> {
    if name.trim().is_empty() || name.contains('\0') || name.len() > max {
        return Err(Error::Config(format!(
            "{what} `{}` must be 1 to {max} bytes, not blank, without NUL (it has {} bytes)",
            name.escape_debug(),
            name.len()
        )));
    }
    Ok(())
}

/// Text this crate's own statements read as markers, where a tracking table's, a schema's or a
/// checkpoint table's quoted name is written into them before they are filled in: `$(` opens a
/// parameter, `{` and `}` enclose a placeholder or a template.
const STATEMENT_MARKERS: [&str; 3] = ["$(", "{", "}"];

/// [`check_identifier`], for a name this crate writes into its own statements (a tracking
/// table, a schema, a checkpoint table): it also cannot hold `$(`, `{` or `}`, which those
/// statements read as markers after the name is in them.
#[doc(hidden)]
pub fn check_statement_identifier(what: &str, name: &str, max: usize) -> Result<()> {
    check_identifier(what, name, max)?;
    if let Some(marker) = STATEMENT_MARKERS.iter().find(|m| name.contains(*m)) {
        return Err(Error::Config(format!(
            "{what} `{}` cannot hold `{marker}`: this crate's statements read `$(`, `{{` and `}}` \
             as markers",
            name.escape_debug()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_written_into_statements_cannot_hold_their_markers() {
        for name in ["audit$(x)", "mig{limit}", "a{", "b}", "{{tables.x}}"] {
            let err = check_statement_identifier("tracking table", name, 50)
                .expect_err("a marker in the name");
            let text = err.to_string();
            assert!(matches!(err, Error::Config(_)), "{text}");
            assert!(text.contains(&name.escape_debug().to_string()), "{text}");
            assert!(text.contains("cannot hold"), "{text}");
        }
        // What check_identifier refuses is still refused, with its own words.
        let err = check_statement_identifier("schema", " ", 63).expect_err("blank");
        assert!(err.to_string().contains("must be 1 to 63 bytes"), "{err}");
        // And anything else any database keeps is accepted: `$` alone, parentheses, quotes.
        for name in ["a$b", "t(1)", "it's", "\"q\"", "$$", "🦀"] {
            check_statement_identifier("tracking table", name, 50).expect("accepted");
        }
    }

    #[test]
    fn a_renamed_table_maps_both_ways_and_others_keep_their_name() {
        let mut names = TableNames::new();
        names.insert("session", "my_sessions").unwrap();
        assert_eq!(names.physical("session"), "my_sessions");
        assert_eq!(names.logical("my_sessions"), "session");
        assert_eq!(names.physical("memory"), "memory");
        assert_eq!(names.logical("memory"), "memory");
        names.insert("session", "session").unwrap();
        assert!(names.is_empty());
    }

    #[test]
    fn two_tables_cannot_share_a_physical_name_and_bad_names_are_refused() {
        let mut names = TableNames::new();
        names.insert("session", "t").unwrap();
        let err = names.insert("memory", "t").unwrap_err();
        assert!(err.to_string().contains("`session` and `memory`"), "{err}");
        for bad in ["", "  ", "a\0b", &"x".repeat(64), "my{{sessions}}"] {
            let err = names.insert("memory", bad).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad:?}: {err}");
        }
        assert_eq!(names.physical("memory"), "memory");
    }
}
