//! The side-effect ledger: what the steps' own rows say happened, checked against the tracking
//! rows and the schema. Every check here is independent of the framework's bookkeeping.

use crate::harness::TestDb;
use crate::{journalled, kind, Kind, DATA_ROWS, STEPS_PER_TABLE, TABLES};
use migrate::testing::Backend;
use migrate::MigrationManager;
use std::collections::BTreeMap;

/// Creates the ledger table the steps write to.
pub async fn create(db: &TestDb) {
    let id = match db.backend() {
        Backend::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "id BIGSERIAL PRIMARY KEY",
        Backend::MySql => "id BIGINT AUTO_INCREMENT PRIMARY KEY",
    };
    db.exec(&format!(
        "CREATE TABLE reliability_effects ({id}, step VARCHAR(32) NOT NULL, direction VARCHAR(8) NOT NULL)"
    ))
    .await;
}

/// Every step's effects, `up`/`down` in the order they were written, by `table@k`.
pub async fn effects(db: &TestDb) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for row in db
        .rows("SELECT step, direction FROM reliability_effects ORDER BY id")
        .await
    {
        let (step, direction) = row.split_once('|').expect("step|direction");
        out.entry(step.to_string())
            .or_default()
            .push(direction.to_string());
    }
    out
}

/// Counts of `direction` per step.
pub fn count(effects: &BTreeMap<String, Vec<String>>, step: &str, direction: &str) -> usize {
    effects
        .get(step)
        .map_or(0, |e| e.iter().filter(|d| *d == direction).count())
}

/// Every step of the fixture as `(table, k)`.
pub fn all_steps() -> impl Iterator<Item = (&'static str, u64)> {
    TABLES
        .iter()
        .flat_map(|t| (0..STEPS_PER_TABLE).map(move |k| (*t, k)))
}

/// Whether step `k` of `table` is in place in the schema and data.
pub async fn in_schema(db: &TestDb, table: &str, k: u64) -> bool {
    match kind(table, k) {
        Kind::Create => db.has_table(table).await,
        Kind::Column => db.has_table(table).await && db.has_column(table, &format!("c{k}")).await,
        Kind::Data => {
            db.has_table(table).await
                && db
                    .rows(&format!("SELECT COUNT(*) FROM {table} WHERE id >= 1000"))
                    .await
                    == [DATA_ROWS.to_string()]
        }
    }
}

/// What went wrong, per guarantee; all zero on a sound run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Violations {
    /// A step applied twice without a down between (or reverted twice).
    pub duplicated: usize,
    /// A step the tracking rows count as applied whose last effect is not `up`, or whose change
    /// is not in the schema; or the reverse.
    pub phantom: usize,
}

/// Checks the ledger against the tracking rows and the schema: each step's effects alternate
/// up, down, up, ...; a step is applied (at or below its table's current version) exactly when
/// its last effect is `up` and its change is in the schema. Dirty tables are not expected.
pub async fn check(db: &TestDb, manager: &MigrationManager) -> Violations {
    let effects = effects(db).await;
    let status = manager.status().await.expect("status");
    let mut violations = Violations::default();
    for (table, k) in all_steps() {
        let step = format!("{table}@{k}");
        let sequence = effects.get(&step).cloned().unwrap_or_default();
        let alternates = sequence
            .iter()
            .enumerate()
            .all(|(i, d)| d == if i % 2 == 0 { "up" } else { "down" });
        if !alternates {
            eprintln!("{step} ran out of turn: {sequence:?}");
            violations.duplicated += 1;
        }
        let row = status
            .iter()
            .find(|s| s.table == table)
            .expect("a status row per table");
        assert!(row.dirty.is_none(), "{table} is dirty: {:?}", row.dirty);
        let version = migrate::Version::new(1, k, 0);
        let applied = row.current.as_ref().is_some_and(|c| version <= *c);
        let last_up = sequence.last().is_some_and(|d| d == "up");
        let present = in_schema(db, table, k).await;
        if applied != last_up || applied != present {
            eprintln!("{step}: recorded applied {applied}, last effect up {last_up}, in the schema {present}");
            violations.phantom += 1;
        }
    }
    violations
}

/// The fixture's declared transaction modes match `journalled`, so the checks know which steps
/// can be left in doubt. Call it on a fresh database, where every step is pending.
pub async fn assert_fixture_modes(manager: &MigrationManager) {
    let pending = manager.pending().await.expect("pending");
    assert_eq!(pending.len(), TABLES.len() * STEPS_PER_TABLE as usize);
    for info in pending {
        let k = info.step.version.minor;
        assert_eq!(info.transactional, !journalled(k), "{}", info.step);
    }
}
