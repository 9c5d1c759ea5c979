//! Names the tracking tables must keep exactly, on every database: a table name outside
//! Latin-1, and two names that differ only in an accent. MariaDB's default character set is
//! `latin1` on a server without configuration (the suite's), where the first cannot be stored,
//! and its default collations take `resume` and `résumé` for one key, where the second
//! table's steps would find the first's row and be refused as a race.

use crate::harness::each_backend;
use migrate::backend::MigrationFuture;
use migrate::registry::{Migration, MigrationSet, Reversal};
use migrate::report::ReportStatus;
use migrate::{Conn, MigrationManager};

static SET: MigrationSet = MigrationSet::__new("app", "tracking_names_test", &[]);

fn noop<'a>(_: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async { Ok(()) })
}

/// Two steps for each of the tables, recorded only (the steps themselves do nothing).
fn migrations() -> Vec<&'static Migration> {
    let mut all = Vec::new();
    for (line, table) in [(1, "日本"), (3, "résumé"), (5, "resume")] {
        for (offset, version, parent) in [(0, "1.0.0", None), (1, "1.1.0", Some("1.0.0"))] {
            all.push(&*Box::leak(Box::new(Migration::__new(
                &SET,
                table,
                version,
                parent,
                "step",
                noop,
                Reversal::Irreversible,
                true,
                None,
                "fnv1a64:0000000000000000",
                "tracking_names.rs",
                line + offset,
            ))));
        }
    }
    all
}

each_backend! {
    async fn names_outside_latin1_and_names_that_differ_in_an_accent_are_kept_apart(db) {
        let manager = MigrationManager::from_migrations(db.executor().await, migrations())
            .expect("valid graph");
        let report = manager.up().await.expect("up");
        assert_eq!(report.status, ReportStatus::Success);
        assert_eq!(report.applied.len(), 6, "{report:?}");

        let mut recorded = db
            .rows("SELECT table_name FROM migrate_schema_versions")
            .await;
        recorded.sort();
        assert_eq!(recorded, ["resume", "résumé", "日本"]);
        let history = db
            .rows("SELECT COUNT(*) FROM migrate_schema_versions_history WHERE table_name = 'résumé'")
            .await;
        assert_eq!(history, ["2"]);

        // A new manager reads the rows back exactly: every table at 1.1.0, nothing pending.
        let again = MigrationManager::from_migrations(db.executor().await, migrations())
            .expect("valid graph");
        for table in again.status().await.expect("status") {
            assert_eq!(table.current.as_ref().map(|v| v.to_string()).as_deref(), Some("1.1.0"), "{table:?}");
            assert_eq!(table.pending, 0, "{table:?}");
        }
        let report = again.up().await.expect("up again");
        assert_eq!(report.status, ReportStatus::UpToDate);
    }
}
