//! Agno's schema history, 2.0.0 to 3.0.0, for SQLite, PostgreSQL and MySQL/MariaDB, learned
//! from Agno 3.1.10's own migrations (`agno/db/migrations/versions/`). The binary is
//! `examples/agno.rs`: `cargo run --example agno -- --database-url URL up`.
//!
//! | table (physical default) | versions |
//! |---|---|
//! | `session` (`agno_sessions`) | 2.0.0, 2.3.0 (JSONB), 2.5.0 (primary key, refuses NULL/duplicate ids), 3.0.0 (runs moved out) |
//! | `memory` (`agno_memories`) | 2.0.0, 2.3.0 (`created_at`, `feedback`, JSONB) |
//! | `metrics` (`agno_metrics`) | 2.0.0, 2.3.0 (JSONB), 3.0.0 (`user_id`, key moved, refuses collisions) |
//! | `eval` (`agno_eval_runs`), `knowledge` (`agno_knowledge`) | 2.0.0, 2.3.0 (JSONB), 3.0.0 (`user_id`) |
//! | `approvals` (`agno_approvals`) | 2.5.0, 2.5.6 (`run_status`) |
//! | `runs` (`agno_runs`) | 3.0.0 |
//! | `v1_sessions`, `v1_memories` | 2.0.0: the v1 → v2 data import |

pub mod history {
    //! The steps, one module per release.
    pub mod fresh;
    pub mod names;
    pub mod v1_to_v2;
    pub mod v2_0_0;
    pub mod v2_3_0;
    pub mod v2_5;
    pub mod v3_0_0;
    pub mod v3_0_0_metrics;
}

migrate::migrations! {
    heads {
        session = "3.0.0", memory = "2.3.0", metrics = "3.0.0", eval = "3.0.0", knowledge = "3.0.0",
        approvals = "2.5.6", runs = "3.0.0", v1_sessions = "2.0.0", v1_memories = "2.0.0",
    }
}

use migrate::{MigrationManager, Result};

/// Agno's default table names.
pub const PHYSICAL: [(&str, &str); 7] = [
    ("session", "agno_sessions"),
    ("memory", "agno_memories"),
    ("metrics", "agno_metrics"),
    ("eval", "agno_eval_runs"),
    ("knowledge", "agno_knowledge"),
    ("approvals", "agno_approvals"),
    ("runs", "agno_runs"),
];

/// A manager as Agno's databases need it: Agno's table names, "no row means 2.0.0" for the
/// tables that exist (a missing one is created), and Agno's own `agno_schema_versions` adopted
/// as the starting state.
pub fn configure(mut manager: MigrationManager) -> Result<MigrationManager> {
    for (logical, physical) in PHYSICAL {
        manager = manager.with_table_name(logical, physical)?;
    }
    manager
        .with_baseline_for_existing_tables("2.0.0")?
        .with_adopted_versions("agno_schema_versions")
}
