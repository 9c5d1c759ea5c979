//! Diffs of two schema snapshots, worded like review comments:
//! `column session.state: default changed from NULL to '{}'`.

use super::{Column, Schema, Table};
use std::collections::BTreeMap;
use std::fmt;

/// A column whose position changed (dropped and re-added, typically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMove {
    /// `table.column`.
    pub column: String,
    /// Position before (1-based).
    pub from: usize,
    /// Position after.
    pub to: usize,
}

/// What changed between two snapshots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    /// Every difference but column moves, one line each.
    pub changes: Vec<String>,
    /// Columns that only moved.
    pub moves: Vec<ColumnMove>,
}

impl SchemaDiff {
    /// No change at all, moves included.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.moves.is_empty()
    }

    /// No change other than column moves.
    pub fn is_empty_ignoring_moves(&self) -> bool {
        self.changes.is_empty()
    }
}

impl fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for change in &self.changes {
            writeln!(f, "  - {change}")?;
        }
        for m in &self.moves {
            writeln!(
                f,
                "  - column {}: moved from position {} to {}",
                m.column, m.from, m.to
            )?;
        }
        Ok(())
    }
}

fn describe(column: &Column) -> String {
    format!(
        "{}{}{}",
        column.data_type,
        if column.nullable {
            " NULL"
        } else {
            " NOT NULL"
        },
        column
            .default
            .as_ref()
            .map(|d| format!(" DEFAULT {d}"))
            .unwrap_or_default()
    )
}

fn default_text(default: &Option<String>) -> String {
    default.clone().unwrap_or_else(|| "NULL".to_string())
}

/// A longest common subsequence of two orders of the same columns; on a tie, the earlier
/// column of `old` is the one left out, so that a column re-added at the end reads as moved.
fn longest_common_order<'a>(old: &'a [String], new: &[String]) -> Vec<&'a String> {
    let (n, m) = (old.len(), new.len());
    let mut dp = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            dp[i][j] = if old[i] == new[j] {
                dp[i + 1][j + 1] + 1
            } else {
                dp[i + 1][j].max(dp[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut kept) = (0, 0, Vec::new());
    while i < n && j < m {
        if old[i] == new[j] {
            kept.push(&old[i]);
            i += 1;
            j += 1;
        } else if dp[i + 1][j] >= dp[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    kept
}

/// Added, removed and changed entries of a name-to-definition map.
fn diff_map<V: PartialEq>(
    what: &str,
    before: &BTreeMap<String, V>,
    after: &BTreeMap<String, V>,
    show: impl Fn(&V) -> String,
    out: &mut Vec<String>,
) {
    // An empty `what`: the names say what they are (`extension pgcrypto`).
    let label = |name: &str| {
        if what.is_empty() {
            name.to_string()
        } else {
            format!("{what} {name}")
        }
    };
    for (name, old) in before {
        match after.get(name) {
            None => out.push(format!("{}: removed (was {})", label(name), show(old))),
            Some(new) if new != old => out.push(format!(
                "{}: changed from {} to {}",
                label(name),
                show(old),
                show(new)
            )),
            Some(_) => {}
        }
    }
    for (name, new) in after {
        if !before.contains_key(name) {
            out.push(format!("{}: added ({})", label(name), show(new)));
        }
    }
}

fn diff_table(name: &str, before: &Table, after: &Table, out: &mut SchemaDiff) {
    let changes = &mut out.changes;
    for (column, old) in &before.columns {
        let path = format!("{name}.{column}");
        let Some(new) = after.columns.get(column) else {
            changes.push(format!("column {path}: removed (was {})", describe(old)));
            continue;
        };
        if old.data_type != new.data_type {
            changes.push(format!(
                "column {path}: type changed from {} to {}",
                old.data_type, new.data_type
            ));
        }
        if old.nullable != new.nullable {
            let word = |n: bool| if n { "NULL" } else { "NOT NULL" };
            changes.push(format!(
                "column {path}: nullability changed from {} to {}",
                word(old.nullable),
                word(new.nullable)
            ));
        }
        if old.default != new.default {
            changes.push(format!(
                "column {path}: default changed from {} to {}",
                default_text(&old.default),
                default_text(&new.default)
            ));
        }
    }
    for (column, new) in &after.columns {
        if !before.columns.contains_key(column) {
            changes.push(format!("column {name}.{column}: added ({})", describe(new)));
        }
    }
    diff_map(
        &format!("index on {name}:"),
        &before.indexes,
        &after.indexes,
        Clone::clone,
        changes,
    );
    diff_map(
        &format!("constraint on {name}:"),
        &before.constraints,
        &after.constraints,
        Clone::clone,
        changes,
    );
    for fk in before.foreign_keys.difference(&after.foreign_keys) {
        changes.push(format!("foreign key on {name}: removed ({fk})"));
    }
    for fk in after.foreign_keys.difference(&before.foreign_keys) {
        changes.push(format!("foreign key on {name}: added ({fk})"));
    }
    diff_map(
        &format!("table {name}:"),
        &before.properties,
        &after.properties,
        Clone::clone,
        changes,
    );
    // Moves: compare the relative order of the columns both sides share.
    let shared = |order: &[String]| -> Vec<String> {
        order
            .iter()
            .filter(|c| before.columns.contains_key(*c) && after.columns.contains_key(*c))
            .cloned()
            .collect()
    };
    let (old_order, new_order) = (shared(&before.order), shared(&after.order));
    if old_order != new_order {
        // The fewest columns that moved: those outside a longest common subsequence of the two
        // orders. A column dropped and re-added at the end is one move, not a move of every
        // column it passed.
        let kept = longest_common_order(&old_order, &new_order);
        for column in old_order.iter().filter(|c| !kept.contains(c)) {
            out.moves.push(super::ColumnMove {
                column: format!("{name}.{column}"),
                from: before
                    .order
                    .iter()
                    .position(|c| c == column)
                    .map_or(0, |p| p + 1),
                to: after
                    .order
                    .iter()
                    .position(|c| c == column)
                    .map_or(0, |p| p + 1),
            });
        }
    }
}

pub(crate) fn diff(before: &Schema, after: &Schema) -> SchemaDiff {
    let mut out = SchemaDiff::default();
    for (name, old) in &before.tables {
        match after.tables.get(name) {
            None => out.changes.push(format!(
                "table {name}: removed ({} columns)",
                old.columns.len()
            )),
            Some(new) => diff_table(name, old, new, &mut out),
        }
    }
    for (name, new) in &after.tables {
        if !before.tables.contains_key(name) {
            let columns: Vec<&str> = new.order.iter().map(String::as_str).collect();
            out.changes
                .push(format!("table {name}: added ({})", columns.join(", ")));
        }
    }
    diff_map(
        "view",
        &before.views,
        &after.views,
        Clone::clone,
        &mut out.changes,
    );
    diff_map(
        "trigger",
        &before.triggers,
        &after.triggers,
        Clone::clone,
        &mut out.changes,
    );
    diff_map(
        "sequence",
        &before.sequences,
        &after.sequences,
        Clone::clone,
        &mut out.changes,
    );
    diff_map(
        "enum",
        &before.enums,
        &after.enums,
        |labels| labels.join(", "),
        &mut out.changes,
    );
    diff_map(
        "type",
        &before.types,
        &after.types,
        Clone::clone,
        &mut out.changes,
    );
    diff_map(
        "materialized view",
        &before.materialized_views,
        &after.materialized_views,
        Clone::clone,
        &mut out.changes,
    );
    diff_map(
        "routine",
        &before.routines,
        &after.routines,
        Clone::clone,
        &mut out.changes,
    );
    diff_map(
        "",
        &before.other,
        &after.other,
        Clone::clone,
        &mut out.changes,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(ty: &str, nullable: bool, default: Option<&str>) -> Column {
        Column {
            data_type: ty.to_string(),
            nullable,
            default: default.map(str::to_string),
        }
    }

    fn table(columns: &[(&str, Column)]) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|(n, c)| (n.to_string(), c.clone()))
                .collect(),
            order: columns.iter().map(|(n, _)| n.to_string()).collect(),
            ..Table::default()
        }
    }

    fn schema(tables: &[(&str, Table)]) -> Schema {
        Schema {
            tables: tables
                .iter()
                .map(|(n, t)| (n.to_string(), t.clone()))
                .collect(),
            ..Schema::default()
        }
    }

    #[test]
    fn reads_like_a_review_comment() {
        let before = schema(&[(
            "session",
            table(&[
                ("id", column("TEXT", false, None)),
                ("state", column("TEXT", true, None)),
            ]),
        )]);
        let mut after_table = table(&[
            ("id", column("TEXT", false, None)),
            ("state", column("TEXT", true, Some("'{}'"))),
        ]);
        after_table
            .indexes
            .insert("idx_state".into(), "(state)".into());
        let after = schema(&[("session", after_table)]);
        let diff = before.diff(&after);
        assert_eq!(
            diff.changes,
            [
                "column session.state: default changed from NULL to '{}'",
                "index on session: idx_state: added ((state))"
            ]
        );
        assert!(diff.moves.is_empty());
        assert!(before.diff(&before).is_empty());
    }

    #[test]
    fn a_dropped_and_re_added_column_shows_as_moved() {
        let before = schema(&[(
            "t",
            table(&[
                ("a", column("INT", true, None)),
                ("b", column("INT", true, None)),
                ("c", column("INT", true, None)),
            ]),
        )]);
        let after = schema(&[(
            "t",
            table(&[
                ("a", column("INT", true, None)),
                ("c", column("INT", true, None)),
                ("b", column("INT", true, None)),
            ]),
        )]);
        let diff = before.diff(&after);
        assert!(diff.is_empty_ignoring_moves());
        assert!(!diff.is_empty());
        assert_eq!(
            diff.to_string().lines().collect::<Vec<_>>(),
            ["  - column t.b: moved from position 2 to 3"],
            "one move: c shifting up is a consequence, not a move"
        );
    }

    #[test]
    fn tables_and_columns_added_and_removed() {
        let before = schema(&[("old", table(&[("x", column("INT", false, None))]))]);
        let after = schema(&[("new", table(&[("y", column("TEXT", true, None))]))]);
        let diff = before.diff(&after);
        assert_eq!(
            diff.changes,
            ["table old: removed (1 columns)", "table new: added (y)"]
        );
    }
}
