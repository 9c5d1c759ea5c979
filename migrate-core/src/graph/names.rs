//! The names and versions a graph is made of: what the tracking tables can keep, and no two
//! modules or tables that differ only in case.

use crate::dialect::{tracked_name_problem, MAX_TRACKED_NAME_CHARS};
use crate::error::GraphError;
use crate::migration::{Migration, MigrationSet};
use semver::Version;
use std::collections::HashMap;

/// No two of `names` of the same kind (`what`: "module", or "`app` table" for the tables of a
/// module) are equal but for case.
pub(super) fn check_case<'n>(
    names: impl Iterator<Item = (String, &'n str)>,
) -> Result<(), GraphError> {
    let mut seen: HashMap<(String, String), &str> = HashMap::new();
    for (what, name) in names {
        let key = (what, crate::dialect::case_folded(name));
        match seen.get(&key) {
            Some(&first) if first != name => {
                return Err(GraphError::NamesDifferOnlyInCase {
                    what: key.0,
                    first: first.to_string(),
                    second: name.to_string(),
                })
            }
            _ => {
                seen.insert(key, name);
            }
        }
    }
    Ok(())
}

pub(super) fn check_modules(sets: &[&'static MigrationSet]) -> Result<(), GraphError> {
    check_case(sets.iter().map(|s| ("module".to_string(), s.module())))?;
    let mut seen: HashMap<&str, &MigrationSet> = HashMap::new();
    for set in sets {
        if let Some(first) = seen.insert(set.module(), set) {
            if !std::ptr::eq(first, *set) {
                return Err(GraphError::DuplicateModule {
                    module: set.module().to_string(),
                    first: first.crate_name().to_string(),
                    second: set.crate_name().to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The name checks of each migration, remembering the module and table names they passed.
#[derive(Default)]
pub(super) struct NameChecks {
    /// The last names found valid, by address and length (`ptr::eq`): every migration of a set
    /// names its module through the set, and a table name written in many attributes is
    /// usually one copy in the binary, so most names are checked once, not once per migration.
    /// A name at another address is checked again: the answer is the same, only slower.
    passed: [Option<&'static str>; PASSED_KEPT],
    next: usize,
}

/// How many valid names [`NameChecks`] remembers: more than a module's tables are usually
/// interleaved in registration order.
const PASSED_KEPT: usize = 16;

impl NameChecks {
    /// The migration's module and table are names the tracking tables keep exactly, its
    /// version fits their column, and its name (stored as text) holds no NUL.
    pub(super) fn check(&mut self, migration: &'static Migration) -> Result<(), GraphError> {
        let invalid = |what, name: &str, reason| {
            Err(GraphError::InvalidName {
                location: migration.location(),
                what,
                name: name.escape_debug().to_string(),
                reason,
            })
        };
        for (what, name) in [
            ("module", migration.set().module()),
            ("table", migration.table()),
        ] {
            if self.passed.iter().flatten().any(|p| std::ptr::eq(*p, name)) {
                continue;
            }
            if let Some(reason) = tracked_name_problem(name) {
                return invalid(what, name, reason);
            }
            self.passed[self.next] = Some(name);
            self.next = (self.next + 1) % PASSED_KEPT;
        }
        if migration.name().contains('\0') {
            return invalid("migration", migration.name(), "contains NUL".to_string());
        }
        let version = migration.version_str();
        // A character is at least a byte: only a long text needs counting.
        if version.len() > MAX_TRACKED_NAME_CHARS
            && version.chars().count() > MAX_TRACKED_NAME_CHARS
        {
            return invalid(
                "version",
                version,
                format!(
                    "is longer than the {MAX_TRACKED_NAME_CHARS} characters the tracking tables keep"
                ),
            );
        }
        Ok(())
    }
}

pub(super) fn parse_declared(migration: &Migration, text: &str) -> Result<Version, GraphError> {
    Version::parse(text).map_err(|e| GraphError::InvalidVersion {
        location: migration.location(),
        version: text.to_string(),
        reason: e.to_string(),
    })
}
