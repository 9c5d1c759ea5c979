//! Record surgery and repairs on real databases: `stamp` and `unstamp` move the record without
//! running anything and leave a history row; they, `resolve_dirty` and `accept_checksums` wait
//! for the run lock and are refused, changing nothing, while another runner holds it. And a
//! database whose checksums an earlier version wrote (FNV-1a) keeps working and is re-pinned.

use crate::harness::{each_backend, v};
use crate::MIGRATIONS;
use migrate::manager::Resolution;
use migrate::report::Outcome;
use migrate::MigrationManager;
use std::time::Duration;

each_backend! {
    async fn repairs_with_nothing_to_do_change_nothing(db) {
        // A database that never ran: no mark to settle, no checksum to re-pin. The repairs
        // succeed without creating the tracking tables (taking the lock would). With tracking
        // rows they take the lock (the next test).
        let m = db.manager().await;
        let before = db.fingerprint().await;
        m.resolve_dirty("session", Resolution::RolledBack).await.expect("nothing to settle");
        m.accept_checksums("session").await.expect("nothing to re-pin");
        assert!(!db.has_table("migrate_schema_versions").await, "tracking tables were created");
        assert_eq!(db.fingerprint().await, before);
        // A table that does not exist is still an error.
        let err = m.resolve_dirty("no_such_table", Resolution::Completed).await.expect_err("unknown");
        assert!(matches!(err, migrate::Error::UnknownTable { .. }), "{err:?}");
    }

    async fn stamp_and_unstamp_move_the_record_and_leave_history(db) {
        let m = db.manager().await;
        m.stamp("session", "2.0.0").await.expect("stamp");
        assert_eq!(m.current_version("session").await.unwrap(), Some(v("2.0.0")));
        assert!(!db.has_table("session").await, "stamping runs nothing");
        let history = m.history(1).await.unwrap();
        assert_eq!((history[0].outcome, history[0].version.as_str()), (Outcome::Stamped, "2.0.0"));

        let err = m.stamp("session", "9.9.9").await.expect_err("not in the graph");
        assert!(matches!(err, migrate::Error::UnknownVersion { .. }), "{err}");
        let err = m.stamp("nope", "2.0.0").await.expect_err("unknown table");
        assert!(matches!(err, migrate::Error::UnknownTable { .. }), "{err}");

        // Bring the real schema to 2.3.0, then forget the newest step without running its down.
        m.stamp("session", "2.0.0").await.expect("stamp again is idempotent");
        assert_eq!(m.current_version("session").await.unwrap(), Some(v("2.0.0")));
        m.down().table("session").to_base().force(true).await.expect("forced down to base");
        assert_eq!(m.current_version("session").await.unwrap(), None);
        m.up().table("session").await.expect("up");
        m.unstamp("session").await.expect("unstamp");
        assert_eq!(m.current_version("session").await.unwrap(), Some(v("2.1.0")), "one step back");
        assert!(db.has_column("session", "state").await, "unstamping runs no down of 2.3.0");
        let history = m.history(1).await.unwrap();
        assert_eq!((history[0].outcome, history[0].version.as_str()), (Outcome::Unstamped, "2.3.0"));
    }

    async fn repairs_are_refused_while_another_runner_holds_the_lock(db) {
        db.manager().await.up().table("session").await.expect("up");
        let holder = db.executor().await;
        let held = holder.lock(None).await.expect("hold the run lock");
        let waiting = MigrationManager::new(
            db.executor_with_lock_timeout(Duration::from_millis(300)).await,
            [&MIGRATIONS],
        )
        .unwrap();
        let before = db.fingerprint().await;
        for (what, result) in [
            ("stamp", waiting.stamp("session", "2.0.0").await),
            ("unstamp", waiting.unstamp("session").await),
            ("resolve_dirty", waiting.resolve_dirty("session", Resolution::RolledBack).await),
            ("accept_checksums", waiting.accept_checksums("session").await),
        ] {
            let err = result.expect_err(what);
            assert!(matches!(err, migrate::Error::LockTimeout { .. }), "{what}: {err}");
        }
        assert_eq!(db.fingerprint().await, before, "nothing changed");
        held.release().await.expect("release");
        waiting.unstamp("session").await.expect("unstamp once the lock is free");
    }

    async fn checksums_written_before_sha256_keep_working_and_are_repinned(db) {
        let m = db.manager().await;
        m.up().table("session").target("2.0.0").await.expect("up");
        // What an earlier version left: FNV-1a checksums in the state row and the history.
        db.exec("UPDATE migrate_schema_versions SET checksum = 'fnv1a64:00000000000000ff'").await;
        db.exec("UPDATE migrate_schema_versions_history SET checksum = 'fnv1a64:00000000000000aa'").await;
        assert_eq!(m.up().table("session").dry_run(true).await.expect("plans").planned.len(), 2);
        assert_eq!(m.current_version("session").await.unwrap(), Some(v("2.0.0")));
        m.up().table("session").await.expect("a locked run re-pins, then applies");
        let sums = db.rows("SELECT checksum FROM migrate_schema_versions").await;
        assert!(sums.iter().all(|s| s.starts_with("sha256-64:")), "{sums:?}");
        let steps = db.rows("SELECT checksum FROM migrate_schema_versions_history").await;
        assert!(steps.iter().all(|s| s.starts_with("sha256:")), "{steps:?}");
        // Drift is seen again once re-pinned.
        db.exec("UPDATE migrate_schema_versions_history SET checksum = 'sha256:00'").await;
        db.exec("UPDATE migrate_schema_versions SET checksum = 'sha256-64:0000000000000000'").await;
        let err = m.up().await.expect_err("drift");
        assert!(matches!(err, migrate::Error::ChecksumMismatch { .. }), "{err}");
    }
}

static ALPHA: migrate::registry::MigrationSet =
    migrate::registry::MigrationSet::__new("alpha", "surgery_alpha", &[]);
static BETA: migrate::registry::MigrationSet =
    migrate::registry::MigrationSet::__new("beta", "surgery_beta", &[]);

fn noop<'a>(_: &'a mut migrate::Conn<'_>) -> migrate::backend::MigrationFuture<'a> {
    Box::pin(async { Ok(()) })
}

/// Modules `alpha` and `beta`, each with a table `shared` at 1.0.0 and 1.1.0 (recorded only).
fn two_modules_sharing_a_table() -> Vec<&'static migrate::registry::Migration> {
    let mut all = Vec::new();
    for set in [&ALPHA, &BETA] {
        for (line, version, parent) in [(1, "1.0.0", None), (2, "1.1.0", Some("1.0.0"))] {
            all.push(&*Box::leak(Box::new(migrate::registry::Migration::__new(
                set,
                "shared",
                version,
                parent,
                "step",
                noop,
                migrate::registry::Reversal::Irreversible,
                true,
                None,
                "fnv1a64:0000000000000000",
                "surgery.rs",
                line,
            ))));
        }
    }
    all
}

#[tokio::test]
async fn stamp_unstamp_and_repairs_of_a_table_two_modules_share_must_name_the_module() {
    let Some(db) = crate::harness::TestDb::new(migrate::testing::Backend::Sqlite).await else {
        return;
    };
    let manager =
        MigrationManager::from_migrations(db.executor().await, two_modules_sharing_a_table())
            .expect("graph");
    manager.up().await.expect("up");
    let before = db.fingerprint().await;
    for (what, result) in [
        ("stamp", manager.stamp("shared", "1.0.0").await),
        ("unstamp", manager.unstamp("shared").await),
        // The repairs alike: a bare name settled or re-pinned both modules' tables.
        (
            "resolve_dirty",
            manager
                .resolve_dirty("shared", migrate::manager::Resolution::Completed)
                .await,
        ),
        ("accept_checksums", manager.accept_checksums("shared").await),
    ] {
        let err = result.expect_err(what);
        assert!(
            matches!(err, migrate::Error::Config(_))
                && err.to_string().contains("alpha:shared, beta:shared"),
            "{what}: {err}"
        );
    }
    assert_eq!(
        db.fingerprint().await,
        before,
        "the refusals changed nothing"
    );
    manager
        .accept_checksums("alpha:shared")
        .await
        .expect("one module's table");
    manager
        .resolve_dirty("alpha:shared", migrate::manager::Resolution::Completed)
        .await
        .expect("one module's table, with no mark");
    manager
        .unstamp("beta:shared")
        .await
        .expect("one module's table");
    let mut recorded = db
        .rows("SELECT module || ' ' || version FROM migrate_schema_versions")
        .await;
    recorded.sort();
    assert_eq!(recorded, ["alpha 1.1.0", "beta 1.0.0"]);
    // current_version alike: the bare name read alpha's version for both.
    let err = manager
        .current_version("shared")
        .await
        .expect_err("ambiguous");
    assert!(
        err.to_string().contains("alpha:shared, beta:shared"),
        "{err}"
    );
    let beta = manager.current_version("beta:shared").await.expect("beta");
    assert_eq!(beta.map(|v| v.to_string()).as_deref(), Some("1.0.0"));
}
