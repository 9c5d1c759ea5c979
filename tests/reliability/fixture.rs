// The reliability fixture: four tables of eleven steps each (44 steps), included at the root
// of the reliability test crate. What a step does follows from its table and index `k` (its
// version is 1.k.0), through `kind`, `journalled` and `slow`, so the checks can tell from the
// data alone what each step should have left behind.
//
// Every step writes one row to `reliability_effects` (`table@k`, `up` or `down`) in the same
// transaction as its change (or, for journalled steps, right after it): "exactly once" is
// counted from those rows, not from the tracking table.

use migrate::{Conn, Result};

/// The fixture's tables, in declaration order.
pub const TABLES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];
/// Steps per table: versions 1.0.0 to 1.10.0.
pub const STEPS_PER_TABLE: u64 = 11;
/// How long a slow step sleeps inside its transaction.
pub const SLOW_STEP: std::time::Duration = std::time::Duration::from_millis(40);

/// What step `k` of a table changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Creates the table (k = 0).
    Create,
    /// Adds column `c{k}`.
    Column,
    /// A Rust data step: inserts 50 rows with ids 1000..1050 (beta, k = 6).
    Data,
}

pub fn kind(table: &str, k: u64) -> Kind {
    match (table, k) {
        (_, 0) => Kind::Create,
        ("beta", 6) => Kind::Data,
        _ => Kind::Column,
    }
}

/// Whether step `k` runs outside a transaction (journalled), as its attribute declares.
pub fn journalled(k: u64) -> bool {
    k % 3 == 1
}

/// Whether step `k` sleeps for `SLOW_STEP` before its change.
pub fn slow(k: u64) -> bool {
    k % 5 == 2
}

/// The rows a data step inserts.
pub const DATA_ROWS: i64 = 50;

async fn effect(db: &mut Conn<'_>, table: &str, k: u64, direction: &str) -> Result<()> {
    db.execute(&format!(
        "INSERT INTO reliability_effects (step, direction) VALUES ('{table}@{k}', '{direction}')"
    ))
    .await?;
    Ok(())
}

/// The statements of step `k`'s change in one direction, on the table named `name` (as
/// written in SQL): the steps run them, and the kill test runs them to undo a half-done step.
pub fn change_statements(name: &str, table: &str, k: u64, up: bool) -> Vec<String> {
    match (kind(table, k), up) {
        (Kind::Create, true) => vec![format!(
            "CREATE TABLE {name} (id INTEGER PRIMARY KEY, note VARCHAR(64))"
        )],
        (Kind::Create, false) => vec![format!("DROP TABLE {name}")],
        (Kind::Column, true) => vec![format!("ALTER TABLE {name} ADD COLUMN c{k} INTEGER")],
        (Kind::Column, false) => vec![format!("ALTER TABLE {name} DROP COLUMN c{k}")],
        (Kind::Data, true) => (0..DATA_ROWS)
            .map(|i| format!("INSERT INTO {name} (id, note) VALUES ({}, 'data')", 1000 + i))
            .collect(),
        (Kind::Data, false) => vec![format!("DELETE FROM {name} WHERE id >= 1000")],
    }
}

async fn fixture_up(db: &mut Conn<'_>, table: &str, k: u64) -> Result<()> {
    if slow(k) {
        tokio::time::sleep(SLOW_STEP).await;
    }
    for statement in change_statements(&db.table(table), table, k, true) {
        db.execute(&statement).await?;
    }
    effect(db, table, k, "up").await
}

async fn fixture_down(db: &mut Conn<'_>, table: &str, k: u64) -> Result<()> {
    for statement in change_statements(&db.table(table), table, k, false) {
        db.execute(&statement).await?;
    }
    effect(db, table, k, "down").await
}

/// Declares step `k` of a table: `step!(up_fn / down_fn, "table", k, "version" [, parent =
/// "parent"] [, transaction = false])`.
macro_rules! step {
    ($up:ident / $down:ident, $table:literal, $k:literal, $version:literal $(, parent = $parent:literal)? $(, transaction = $tx:literal)?) => {
        #[migrate::migration(table = $table, version = $version, $(parent = $parent,)? down = $down $(, transaction = $tx)?)]
        async fn $up(db: &mut Conn<'_>) -> Result<()> {
            fixture_up(db, $table, $k).await
        }
        async fn $down(db: &mut Conn<'_>) -> Result<()> {
            fixture_down(db, $table, $k).await
        }
    };
}

// --- alpha ---
step!(alpha_0 / alpha_0_down, "alpha", 0, "1.0.0");
step!(alpha_1 / alpha_1_down, "alpha", 1, "1.1.0", parent = "1.0.0", transaction = false);
step!(alpha_2 / alpha_2_down, "alpha", 2, "1.2.0", parent = "1.1.0");
step!(alpha_3 / alpha_3_down, "alpha", 3, "1.3.0", parent = "1.2.0");
step!(alpha_4 / alpha_4_down, "alpha", 4, "1.4.0", parent = "1.3.0", transaction = false);
step!(alpha_5 / alpha_5_down, "alpha", 5, "1.5.0", parent = "1.4.0");
step!(alpha_6 / alpha_6_down, "alpha", 6, "1.6.0", parent = "1.5.0");
step!(alpha_7 / alpha_7_down, "alpha", 7, "1.7.0", parent = "1.6.0", transaction = false);
step!(alpha_8 / alpha_8_down, "alpha", 8, "1.8.0", parent = "1.7.0");
step!(alpha_9 / alpha_9_down, "alpha", 9, "1.9.0", parent = "1.8.0");
step!(alpha_10 / alpha_10_down, "alpha", 10, "1.10.0", parent = "1.9.0", transaction = false);

// --- beta ---
step!(beta_0 / beta_0_down, "beta", 0, "1.0.0");
step!(beta_1 / beta_1_down, "beta", 1, "1.1.0", parent = "1.0.0", transaction = false);
step!(beta_2 / beta_2_down, "beta", 2, "1.2.0", parent = "1.1.0");
step!(beta_3 / beta_3_down, "beta", 3, "1.3.0", parent = "1.2.0");
step!(beta_4 / beta_4_down, "beta", 4, "1.4.0", parent = "1.3.0", transaction = false);
step!(beta_5 / beta_5_down, "beta", 5, "1.5.0", parent = "1.4.0");
step!(beta_6 / beta_6_down, "beta", 6, "1.6.0", parent = "1.5.0");
step!(beta_7 / beta_7_down, "beta", 7, "1.7.0", parent = "1.6.0", transaction = false);
step!(beta_8 / beta_8_down, "beta", 8, "1.8.0", parent = "1.7.0");
step!(beta_9 / beta_9_down, "beta", 9, "1.9.0", parent = "1.8.0");
step!(beta_10 / beta_10_down, "beta", 10, "1.10.0", parent = "1.9.0", transaction = false);

// --- gamma ---
step!(gamma_0 / gamma_0_down, "gamma", 0, "1.0.0");
step!(gamma_1 / gamma_1_down, "gamma", 1, "1.1.0", parent = "1.0.0", transaction = false);
step!(gamma_2 / gamma_2_down, "gamma", 2, "1.2.0", parent = "1.1.0");
step!(gamma_3 / gamma_3_down, "gamma", 3, "1.3.0", parent = "1.2.0");
step!(gamma_4 / gamma_4_down, "gamma", 4, "1.4.0", parent = "1.3.0", transaction = false);
step!(gamma_5 / gamma_5_down, "gamma", 5, "1.5.0", parent = "1.4.0");
step!(gamma_6 / gamma_6_down, "gamma", 6, "1.6.0", parent = "1.5.0");
step!(gamma_7 / gamma_7_down, "gamma", 7, "1.7.0", parent = "1.6.0", transaction = false);
step!(gamma_8 / gamma_8_down, "gamma", 8, "1.8.0", parent = "1.7.0");
step!(gamma_9 / gamma_9_down, "gamma", 9, "1.9.0", parent = "1.8.0");
step!(gamma_10 / gamma_10_down, "gamma", 10, "1.10.0", parent = "1.9.0", transaction = false);

// --- delta ---
step!(delta_0 / delta_0_down, "delta", 0, "1.0.0");
step!(delta_1 / delta_1_down, "delta", 1, "1.1.0", parent = "1.0.0", transaction = false);
step!(delta_2 / delta_2_down, "delta", 2, "1.2.0", parent = "1.1.0");
step!(delta_3 / delta_3_down, "delta", 3, "1.3.0", parent = "1.2.0");
step!(delta_4 / delta_4_down, "delta", 4, "1.4.0", parent = "1.3.0", transaction = false);
step!(delta_5 / delta_5_down, "delta", 5, "1.5.0", parent = "1.4.0");
step!(delta_6 / delta_6_down, "delta", 6, "1.6.0", parent = "1.5.0");
step!(delta_7 / delta_7_down, "delta", 7, "1.7.0", parent = "1.6.0", transaction = false);
step!(delta_8 / delta_8_down, "delta", 8, "1.8.0", parent = "1.7.0");
step!(delta_9 / delta_9_down, "delta", 9, "1.9.0", parent = "1.8.0");
step!(delta_10 / delta_10_down, "delta", 10, "1.10.0", parent = "1.9.0", transaction = false);
