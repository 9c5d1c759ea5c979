//! Every wrong input gets a typed error that names the thing at fault, and changes nothing in
//! the database.

use crate::harness::{each_backend, TestDb};
use crate::MIGRATIONS;
use migrate::registry::MigrationSet;
use migrate::{Error, MigrationManager};

/// A database in the middle of its history: every table at (or below) 2.1.0.
pub async fn midway(db: &TestDb) -> MigrationManager {
    let manager = db.manager().await;
    manager.up().target("2.1.0").await.expect("up to 2.1.0");
    manager
}

/// Runs `request`, asserts that it fails as `$pattern`, naming `$needle`, and that nothing
/// changed (the harness's fingerprint: the schema and every tracking row).
macro_rules! rejects {
    ($db:expr, $request:expr, $pattern:pat, $needle:expr) => {{
        let before = $db.fingerprint().await;
        let err = $request.await.expect_err("the request must fail");
        assert!(matches!(err, $pattern), "unexpected error: {err:?}");
        let message = err.to_string();
        assert!(
            message.contains($needle),
            "`{message}` should name `{}`",
            $needle
        );
        assert_eq!(
            $db.fingerprint().await,
            before,
            "a rejected request changed the database: {message}"
        );
        err
    }};
}
pub(crate) use rejects;

each_backend! {
    async fn a_down_by_steps_with_force_is_refused(db) {
        // Forced, a down reverts every step above its target, applied or not; one counted
        // from the recorded version (which force ignores) reverted more than one step.
        let manager = midway(&db).await;
        rejects!(db, manager.down().steps(1).force(true).table("session"), Error::Config(_), "force");
    }

    async fn a_target_that_is_not_semver(db) {
        let m = midway(&db).await;
        rejects!(
            db,
            m.up().target("2.x"),
            Error::InvalidVersion { .. },
            "2.x"
        );
        rejects!(
            db,
            m.down().target(""),
            Error::InvalidVersion { .. },
            "semver"
        );
    }

    async fn a_target_that_is_not_in_the_graph(db) {
        let m = midway(&db).await;
        rejects!(
            db,
            m.up().target("9.9.9"),
            Error::UnknownVersion { .. },
            "9.9.9"
        );
        // 2.5.0 exists, but not in session's chain.
        rejects!(
            db,
            m.up().table("session").target("2.5.0"),
            Error::UnknownVersion { .. },
            "session"
        );
    }

    async fn up_below_the_current_version(db) {
        let m = midway(&db).await;
        let err = rejects!(
            db,
            m.up().table("session").target("2.0.0"),
            Error::TargetBelowCurrent { .. },
            "session"
        );
        assert!(err.to_string().contains("2.1.0"), "{err}");
    }

    async fn down_above_the_current_version(db) {
        let m = midway(&db).await;
        rejects!(
            db,
            m.down().table("session").target("2.3.0"),
            Error::TargetAboveCurrent { .. },
            "session"
        );
    }

    async fn down_without_a_target(db) {
        let m = midway(&db).await;
        rejects!(db, m.down(), Error::MissingDownTarget, "target");
        rejects!(
            db,
            m.down().table("session").force(true),
            Error::MissingDownTarget,
            "target"
        );
    }

    async fn an_unknown_table(db) {
        let m = midway(&db).await;
        // Agno's docs once said "sessions"; such typos must not silently do nothing (agno#8595).
        let err = rejects!(
            db,
            m.up().table("sessions"),
            Error::UnknownTable { .. },
            "sessions"
        );
        assert!(
            err.to_string().contains("session"),
            "lists the known tables: {err}"
        );
        rejects!(
            db,
            m.current_version("nope"),
            Error::UnknownTable { .. },
            "nope"
        );
        rejects!(
            db,
            m.up().table("other_module:session"),
            Error::UnknownTable { .. },
            "other_module:session"
        );
    }

    async fn a_database_ahead_of_the_binary(db) {
        let m = midway(&db).await;
        // A newer binary applied session 2.9.0, which this binary does not know.
        db.exec("UPDATE migrate_schema_versions SET version = '2.9.0' WHERE table_name = 'session'")
            .await;
        let err = rejects!(db, m.up(), Error::UnknownAppliedVersion { .. }, "2.9.0");
        assert!(err.to_string().contains("session"), "{err}");
        // A table the binary has never heard of, recorded by a newer binary.
        db.exec("UPDATE migrate_schema_versions SET version = '2.1.0' WHERE table_name = 'session'")
            .await;
        db.exec("INSERT INTO migrate_schema_versions (module, table_name, version, updated_at) VALUES ('integration', 'knowledge', '1.0.0', 0)").await;
        rejects!(db, m.up(), Error::UnknownAppliedVersion { .. }, "knowledge");
    }

    async fn checksum_drift_shows_both_checksums(db) {
        let m = midway(&db).await;
        let real = db
            .rows("SELECT checksum FROM migrate_schema_versions_history WHERE table_name = 'session' AND version = '2.0.0'")
            .await
            .remove(0);
        // As if session 2.0.0 had been edited after it ran: the recorded sums no longer match.
        db.exec("UPDATE migrate_schema_versions_history SET checksum = 'sha256:00000000000000000000000000000000000000000000000000000000000000ff' WHERE table_name = 'session' AND version = '2.0.0'").await;
        db.exec("UPDATE migrate_schema_versions SET checksum = 'sha256-64:0000000000000000' WHERE table_name = 'session'").await;
        let err = rejects!(
            db,
            m.up(),
            Error::ChecksumMismatch { .. },
            "sha256:00000000000000000000000000000000000000000000000000000000000000ff"
        );
        assert!(
            err.to_string().contains(&real),
            "shows the binary's checksum too: {err}"
        );
        assert!(err.to_string().contains("session@2.0.0"), "{err}");

        // Accepting the edit is explicit; afterwards the run goes on.
        m.accept_checksums("session").await.expect("accept");
        assert_eq!(
            m.up().target("2.1.0").await.expect("up").status,
            migrate::report::ReportStatus::UpToDate
        );
    }

    async fn down_across_an_irreversible_step(db) {
        let m = midway(&db).await;
        let err = rejects!(
            db,
            m.down().table("eval").target("2.0.0"),
            Error::Irreversible { .. },
            "eval@2.1.0"
        );
        assert!(err.to_string().contains("irreversible"), "{err}");
    }

    async fn a_step_whose_after_dependency_is_not_applied(db) {
        let m = db.manager().await;
        m.up()
            .table("memory")
            .target("2.0.0")
            .await
            .expect("memory 2.0.0 has no dependency");
        rejects!(
            db,
            m.up().table("memory"),
            Error::DependencyNotApplied { .. },
            "session@2.1.0"
        );
    }

    async fn a_dirty_mark_blocks_until_resolved(db) {
        let m = midway(&db).await;
        db.control("metrics@2.5.0", "fail").await;
        let err = m.up().table("metrics").await.expect_err("told to fail");
        assert!(matches!(err, Error::StepFailed { .. }), "{err}");
        db.clear_control().await;
        let err = rejects!(db, m.up(), Error::Dirty { .. }, "metrics");
        assert!(err.to_string().contains("2.5.0"), "names the step: {err}");
        rejects!(
            db,
            m.down().table("metrics").target("2.0.0"),
            Error::Dirty { .. },
            "metrics"
        );
        // Other tables are not blocked.
        m.up().table("session").await.expect("session is clean");
    }

    async fn bad_configuration(db) {
        static EMPTY: MigrationSet = MigrationSet::__new("empty", "empty_crate", &[]);
        let err = MigrationManager::new(db.executor().await, [&EMPTY]).unwrap_err();
        assert!(
            matches!(err, Error::Graph(ref g) if matches!(**g, migrate::error::GraphError::EmptySet { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("empty_crate"), "{err}");

        static SAME_MODULE: MigrationSet = MigrationSet::__new("integration", "another_crate", &[]);
        let err = MigrationManager::new(db.executor().await, [&MIGRATIONS, &SAME_MODULE]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Graph(ref g) if matches!(**g, migrate::error::GraphError::DuplicateModule { .. })
            ),
            "{err}"
        );

        let m = db.manager().await;
        assert!(matches!(
            m.with_table_baseline("nope", "1.0.0"),
            Err(Error::UnknownTable { .. })
        ));
        // A baseline no table declares is a typo, as a target is; one table's must be its own.
        let err = db.manager().await.with_baseline("20.0.0").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownVersion { table: None, version } if version.to_string() == "20.0.0"),
            "{err:?}"
        );
        let err = db.manager().await.with_baseline_for_existing_tables("2.0.1").unwrap_err();
        assert!(matches!(&err, Error::UnknownVersion { .. }), "{err:?}");
        let err = db.manager().await.with_table_baseline("eval", "2.3.0").unwrap_err();
        assert!(
            matches!(&err, Error::UnknownVersion { table: Some(t), .. } if t == "eval"),
            "{err:?}"
        );
        assert!(db.manager().await.with_table_baseline("eval", "2.1.0").is_ok());
        assert!(!db.has_table("migrate_schema_versions").await);
    }
}
