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

/// The tracking tables as versions before `utf8mb4_bin` made them on MySQL: the database's
/// default character set and collation (on the suite's server, `latin1_swedish_ci`).
const EARLIER_TABLES: [&str; 2] = [
    "CREATE TABLE migrate_schema_versions (module VARCHAR(191) NOT NULL, \
     table_name VARCHAR(191) NOT NULL, version VARCHAR(191), checksum VARCHAR(191), \
     dirty_version VARCHAR(191), dirty_name TEXT, dirty_direction VARCHAR(191), \
     dirty_since BIGINT, updated_at BIGINT NOT NULL, PRIMARY KEY (module, table_name))",
    "CREATE TABLE migrate_schema_versions_history (\
     id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY, module VARCHAR(191) NOT NULL, \
     table_name VARCHAR(191) NOT NULL, version VARCHAR(191) NOT NULL, name TEXT NOT NULL, \
     checksum VARCHAR(191) NOT NULL, direction VARCHAR(191) NOT NULL, \
     outcome VARCHAR(191) NOT NULL, started_at BIGINT NOT NULL, started_at_utc VARCHAR(32), \
     finished_at BIGINT, execution_us BIGINT, error TEXT, \
     INDEX migrate_schema_versions_history_step (module, table_name, version))",
];

/// The README's conversion of tracking tables an earlier version made on MySQL: before it,
/// such tables still refuse the names; after it, they keep them as new ones do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_conversion_makes_earlier_mysql_tracking_tables_keep_every_name() {
    let Some(db) = crate::harness::TestDb::new(migrate::testing::Backend::MySql).await else {
        return;
    };
    for create in EARLIER_TABLES {
        db.exec(create).await;
    }
    let manager =
        MigrationManager::from_migrations(db.executor().await, migrations()).expect("valid graph");
    manager
        .up()
        .await
        .expect_err("the earlier tables cannot keep these names");

    db.exec("DELETE FROM migrate_schema_versions").await;
    db.exec("DELETE FROM migrate_schema_versions_history").await;
    let readme = include_str!("../../README.md");
    let conversions: Vec<&str> = readme
        .lines()
        .filter(|line| line.starts_with("ALTER TABLE migrate_schema_versions"))
        .collect();
    assert_eq!(conversions.len(), 2, "the README's two statements");
    for statement in conversions {
        db.exec(statement.trim_end_matches(';')).await;
    }
    let report = manager.up().await.expect("up after the conversion");
    assert_eq!(report.status, ReportStatus::Success);
    assert_eq!(report.applied.len(), 6, "{report:?}");
}
