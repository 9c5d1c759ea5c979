//! The deterministic workload, shared by the build script (which turns it into `#[migration]`
//! functions) and the harness (which gives the same SQL to every peer).
//!
//! Migration `i` (1-based) of six table families:
//! 1–6 `CREATE TABLE`; 7–12 a 64-row seed `INSERT`; then round-robin over the families, each
//! repeating ADD COLUMN, ADD COLUMN, CREATE INDEX on the two, and an UPDATE of 16 rows. Column
//! types rotate through VARCHAR(32), INTEGER NOT NULL DEFAULT 0, BIGINT and DOUBLE PRECISION
//! (VARCHAR, not TEXT, so that MariaDB can index it). The SQL
//! is portable: SQLite, PostgreSQL and MariaDB run the same text. Migration `i` of N is the
//! same for every N, so a smaller workload is a prefix of a larger one.

#![allow(dead_code)]

pub const FAMILIES: [&str; 6] = [
    "session",
    "memory",
    "metrics",
    "eval",
    "knowledge",
    "culture",
];

const TYPES: [(&str, &str); 4] = [
    ("VARCHAR(32)", "'u'"),
    ("INTEGER NOT NULL DEFAULT 0", "1"),
    ("BIGINT", "2"),
    ("DOUBLE PRECISION", "1.5"),
];

/// One migration of the workload.
#[derive(Debug, Clone)]
pub struct Step {
    pub index: usize,
    pub table: &'static str,
    pub sql: String,
}

impl Step {
    /// The version `#[migration]` and the manager use: `1.0.<index>`.
    pub fn version(&self) -> String {
        format!("1.0.{}", self.index)
    }
}

/// Migration `i` (1-based).
pub fn step(i: usize) -> Step {
    assert!(i >= 1, "migrations are numbered from 1");
    if i <= 6 {
        let table = FAMILIES[i - 1];
        return Step {
            index: i,
            table,
            sql: format!(
                "CREATE TABLE {table} (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c BIGINT, d DOUBLE PRECISION)"
            ),
        };
    }
    if i <= 12 {
        let table = FAMILIES[i - 7];
        let rows: Vec<String> = (1..=64)
            .map(|r| format!("({r}, 'x{r}', {r}, {}, {r}.5)", r * 1000))
            .collect();
        return Step {
            index: i,
            table,
            sql: format!(
                "INSERT INTO {table} (id, a, b, c, d) VALUES {}",
                rows.join(", ")
            ),
        };
    }
    let k = i - 13;
    let table = FAMILIES[k % 6];
    let own = k / 6;
    let (pair, phase) = (own / 4, own % 4);
    let column = |n: usize| format!("c{pair}_{n}");
    let kind = |n: usize| TYPES[(2 * pair + n) % 4];
    let sql = match phase {
        0 | 1 => format!(
            "ALTER TABLE {table} ADD COLUMN {} {}",
            column(phase),
            kind(phase).0
        ),
        2 => format!(
            "CREATE INDEX idx_{table}_{pair} ON {table} ({}, {})",
            column(0),
            column(1)
        ),
        _ => format!(
            "UPDATE {table} SET {} = {}, {} = {} WHERE id <= 16",
            column(0),
            kind(0).1,
            column(1),
            kind(1).1
        ),
    };
    Step {
        index: i,
        table,
        sql,
    }
}

/// Migrations 1..=n.
pub fn workload(n: usize) -> Vec<Step> {
    (1..=n).map(step).collect()
}
