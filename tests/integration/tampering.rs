//! Tracking tables altered by hand, and states only a newer binary or an interrupted run
//! leaves: runs refuse them with a typed error that names the row at fault and change nothing;
//! listings never fail on them, they show them.

use crate::bad_input::{midway, rejects};
use crate::harness::{each_backend, TestDb};
use migrate::testing::Backend;
use migrate::{Error, MigrationManager};

/// Every listing works and leaves the database as it was.
async fn listings_work(db: &TestDb, m: &MigrationManager) -> Vec<migrate::report::TableStatus> {
    let before = db.fingerprint().await;
    let status = m.status().await.expect("status never fails on a bad state");
    m.pending().await.expect("pending");
    m.applied().await.expect("applied");
    m.history(10).await.expect("history");
    m.current_version("memory")
        .await
        .expect("an unrelated table's version");
    assert_eq!(db.fingerprint().await, before);
    status
}

fn row<'s>(
    status: &'s [migrate::report::TableStatus],
    table: &str,
) -> &'s migrate::report::TableStatus {
    status
        .iter()
        .find(|s| s.table == table)
        .unwrap_or_else(|| panic!("no status row for {table}"))
}

each_backend! {
    async fn targets_that_are_not_versions_of_the_graph(db) {
        let m = midway(&db).await;
        for target in ["", "v", "-1.0.0", "99999999999999999999.0.0", "1.0", "v2.1.0x", "2.1.0; DROP TABLE session"] {
            // The message quotes the target as given, even when it is empty.
            let quoted = format!("`{target}` is not a semver version");
            rejects!(db, m.up().target(target), Error::InvalidVersion { .. }, quoted.as_str());
            rejects!(db, m.down().target(target), Error::InvalidVersion { .. }, quoted.as_str());
        }
        // Surrounding spaces and a leading `v` are accepted (`" v2.1.0 "` is 2.1.0); a pre-release
        // parses, but no migration declares it.
        rejects!(db, m.up().target("1.0.0-rc.1"), Error::UnknownVersion { .. }, "1.0.0-rc.1");
        rejects!(db, m.down().target("2.0.0-rc.1"), Error::UnknownVersion { .. }, "2.0.0-rc.1");
    }

    async fn a_garbage_version_is_refused_by_runs_and_shown_by_listings(db) {
        let m = midway(&db).await;
        db.exec("UPDATE migrate_schema_versions SET version = 'banana' WHERE table_name = 'session'").await;
        rejects!(db, m.up(), Error::UnknownAppliedVersion { .. }, "banana");
        rejects!(db, m.down().to_base(), Error::UnknownAppliedVersion { .. }, "session");
        rejects!(db, m.current_version("session"), Error::UnknownAppliedVersion { .. }, "banana");
        let status = listings_work(&db, &m).await;
        let session = row(&status, "session");
        assert_eq!(session.unknown_version.as_deref(), Some("banana"));
        assert!(session.needs_attention() && !row(&status, "memory").needs_attention());
    }

    async fn a_database_ahead_of_the_binary_is_listed_not_refused(db) {
        let m = midway(&db).await;
        db.exec("UPDATE migrate_schema_versions SET version = '2.9.0' WHERE table_name = 'session'").await;
        db.exec("INSERT INTO migrate_schema_versions (module, table_name, version, updated_at) VALUES ('integration', 'knowledge', '1.0.0', 0)").await;
        rejects!(db, m.up(), Error::UnknownAppliedVersion { .. }, "integration");
        let status = listings_work(&db, &m).await;
        let session = row(&status, "session");
        assert_eq!(session.current, Some(migrate::Version::new(2, 9, 0)));
        assert_eq!((session.pending, session.unknown_version.as_deref()), (0, Some("2.9.0")));
        let knowledge = row(&status, "knowledge");
        assert!(!knowledge.linked && knowledge.needs_attention());
        assert_eq!(m.current_version("session").await.unwrap(), Some(migrate::Version::new(2, 9, 0)));
        assert!(m.pending().await.unwrap().iter().all(|p| p.step.table != "session"));
    }

    async fn drift_in_one_table_does_not_hide_the_others(db) {
        let m = midway(&db).await;
        db.exec("UPDATE migrate_schema_versions_history SET checksum = 'sha256:00000000000000000000000000000000000000000000000000000000000000ee' WHERE table_name = 'session' AND version = '2.0.0'").await;
        db.exec("UPDATE migrate_schema_versions SET checksum = 'sha256-64:0000000000000000' WHERE table_name = 'session'").await;
        rejects!(db, m.up(), Error::ChecksumMismatch { .. }, "session@2.0.0");
        // Agno's current_version("memory") once failed on drift in session.
        assert_eq!(m.current_version("memory").await.unwrap(), Some(migrate::Version::new(2, 0, 0)));
        let status = listings_work(&db, &m).await;
        let drift = row(&status, "session").drift.clone().expect("drift shown");
        assert_eq!((drift.step.table.as_str(), drift.step.version.to_string()), ("session", "2.0.0".to_string()));
        assert!(drift.applied.ends_with("ee") && drift.current.starts_with("sha256:"));
        assert!(row(&status, "memory").drift.is_none());
    }

    async fn a_step_added_below_applied_ones_is_refused_not_skipped(db) {
        // session@2.1.0 as a migration added after 2.0.0 and 2.3.0 ran: no history row of its
        // own, and a chain checksum (the binary's has it) that differs from the stored one.
        let m = db.manager().await;
        m.up().table("session").await.expect("up");
        let stale = "UPDATE migrate_schema_versions SET checksum = 'sha256-64:0000000000000000' WHERE table_name = 'session'";
        // A step whose run failed, completed by hand (`repair --completed`), has rows: it is
        // not taken for one added later.
        db.exec("UPDATE migrate_schema_versions_history SET outcome = 'failed' WHERE table_name = 'session' AND version = '2.1.0'").await;
        db.exec(stale).await;
        let status = listings_work(&db, &m).await;
        assert!(row(&status, "session").drift.is_none(), "{status:?}");
        db.exec("DELETE FROM migrate_schema_versions_history WHERE table_name = 'session' AND version = '2.1.0'").await;
        rejects!(db, m.up(), Error::ChecksumMismatch { .. }, "session@2.1.0");
        let err = m.up().await.expect_err("refused");
        assert!(err.to_string().contains("has no run recorded"), "{err}");
        let status = listings_work(&db, &m).await;
        let drift = row(&status, "session").drift.clone().expect("shown as drift");
        assert!(drift.never_applied() && drift.step.version.to_string() == "2.1.0", "{drift:?}");
        let problems = migrate::startup::Problem::of(row(&status, "session"));
        assert!(problems.iter().any(|p| p.to_string().contains("has no run recorded")), "{problems:?}");
        // Applied by hand, it is accepted; the run is up to date again, and stays so when the
        // slow path is taken again (a `stamped` row records the acceptance).
        m.accept_checksums("session").await.expect("accept");
        assert!(m.up().await.expect("up").applied.iter().all(|a| a.step.table != "session"));
        db.exec(stale).await;
        let status = listings_work(&db, &m).await;
        assert!(row(&status, "session").drift.is_none(), "accepted for good: {status:?}");
        // Steps under a baseline (or a stamp, or a fresh install) have no history either, and
        // are not "added": no run below them.
        db.exec("DELETE FROM migrate_schema_versions_history WHERE table_name = 'session' AND version IN ('2.0.0', '2.1.0')").await;
        db.exec(stale).await;
        let status = listings_work(&db, &m).await;
        assert!(row(&status, "session").drift.is_none(), "{status:?}");
    }

    async fn a_run_after_a_stamp_is_judged_as_a_run(db) {
        // session stamped at 2.3.0 once, then brought down and up again for real: its steps'
        // newest rows are runs, so a step added between them is still found (an old stamp row
        // vouched for everything below it before).
        let m = db.manager().await;
        m.up().table("session").await.expect("up");
        m.stamp("session", "2.3.0").await.expect("stamp");
        m.down().table("session").target("2.0.0").await.expect("down");
        m.up().table("session").await.expect("up again");
        db.exec("DELETE FROM migrate_schema_versions_history WHERE table_name = 'session' AND version = '2.1.0'").await;
        db.exec("UPDATE migrate_schema_versions SET checksum = 'sha256-64:0000000000000000' WHERE table_name = 'session'").await;
        rejects!(db, m.up(), Error::ChecksumMismatch { .. }, "session@2.1.0");
        // Accepted, it is recorded under its name and `(accepted)`.
        m.accept_checksums("session").await.expect("accept");
        let names = db.rows("SELECT name FROM migrate_schema_versions_history WHERE table_name = 'session' AND version = '2.1.0'").await;
        assert_eq!(names, ["session_2_1_0 (accepted)"]);
    }

    async fn a_dirty_table_is_listed(db) {
        let m = midway(&db).await;
        db.exec("UPDATE migrate_schema_versions SET dirty_version = '2.3.0', dirty_name = 'session_2_3_0', dirty_direction = 'up', dirty_since = 1 WHERE table_name = 'session'").await;
        rejects!(db, m.up(), Error::Dirty { .. }, "session");
        let status = listings_work(&db, &m).await;
        let dirty = row(&status, "session").dirty.clone().expect("dirty shown");
        assert_eq!(dirty.version, "2.3.0");
        // Re-pinning checksums must not settle the step in doubt: that is resolve_dirty's call.
        rejects!(db, m.accept_checksums("session"), Error::Dirty { .. }, "session");
    }

    async fn a_newer_binarys_first_step_left_dirty_is_refused_and_listed(db) {
        let m = midway(&db).await;
        db.exec("INSERT INTO migrate_schema_versions (module, table_name, version, checksum, dirty_version, dirty_name, dirty_direction, dirty_since, updated_at) VALUES ('integration', 'knowledge', NULL, NULL, '1.0.0', 'create_knowledge', 'up', 1, 1)").await;
        rejects!(db, m.up(), Error::Dirty { .. }, "knowledge");
        let status = listings_work(&db, &m).await;
        let knowledge = row(&status, "knowledge");
        assert!(!knowledge.linked && knowledge.dirty.is_some(), "{knowledge:?}");
        // Start-up's problem says what is there: a step cut off, not "a row".
        let problems = migrate::startup::Problem::of(knowledge);
        let said: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(
            said.len() == 1 && said[0].contains("1.0.0 (a step cut off going up, nothing finished)"),
            "{said:?}"
        );
    }

    async fn a_per_table_baseline_may_name_the_module(db) {
        let m = MigrationManager::new(db.executor().await, [&crate::MIGRATIONS])
            .expect("graph")
            .with_table_baseline("integration:session", "2.0.0")
            .expect("baseline");
        assert_eq!(m.current_version("session").await.unwrap(), Some(migrate::Version::new(2, 0, 0)));
        assert_eq!(m.current_version("memory").await.unwrap(), None);
    }

    async fn down_with_both_a_target_and_base_is_refused(db) {
        let m = midway(&db).await;
        rejects!(db, m.down().target("2.0.0").to_base(), Error::Config(_), "to_base");
    }

    async fn a_garbled_state_row_is_named_by_its_row_and_column(db) {
        let m = midway(&db).await;
        db.exec("UPDATE migrate_schema_versions SET dirty_version = '2.1.0', dirty_name = 'x', dirty_direction = 'sideways', dirty_since = 1 WHERE table_name = 'eval'").await;
        let err = rejects!(db, m.up(), Error::Database(_), "dirty_direction in its row for `integration:eval`");
        let text = err.to_string();
        assert!(
            text.contains("dirty_direction in its row for `integration:eval`") && text.contains("sideways"),
            "{text}"
        );
        if db.backend() == Backend::Sqlite {
            // A value of another type (another tool wrote a REAL): the driver's mismatch,
            // named by its column and row.
            db.exec("UPDATE migrate_schema_versions SET dirty_direction = 'up', dirty_since = 1.5 WHERE table_name = 'eval'").await;
            // (The harness's fingerprint reads no REAL: the error alone is checked here.)
            let err = m.up().await.expect_err("a REAL where an integer belongs");
            let text = err.to_string();
            assert!(
                text.contains("reading column `dirty_since` of the tracking table's row for `integration:eval`"),
                "{text}"
            );
        }
    }

    async fn a_null_version_means_nothing_recorded(db) {
        let m = midway(&db).await;
        db.exec("UPDATE migrate_schema_versions SET version = NULL, checksum = NULL WHERE table_name = 'eval'").await;
        let status = listings_work(&db, &m).await;
        let eval = row(&status, "eval");
        assert_eq!((eval.current.as_ref(), eval.recorded), (None, false));
        assert!(!eval.needs_attention());
    }

    async fn a_tracking_table_missing_a_column(db) {
        let m = midway(&db).await;
        // MySQL's fingerprint column is generated from the others, and goes first.
        db.exec(match db.backend() {
            Backend::MySql => "ALTER TABLE migrate_schema_versions DROP COLUMN fingerprint, DROP COLUMN checksum",
            _ => "ALTER TABLE migrate_schema_versions DROP COLUMN checksum",
        }).await;
        rejects!(db, m.up(), Error::Database(_), "checksum");
        rejects!(db, m.status(), Error::Database(_), "checksum");
    }

    async fn an_unrelated_table_with_the_tracking_tables_name(db) {
        db.exec("CREATE TABLE migrate_schema_versions (id INTEGER PRIMARY KEY, name VARCHAR(20))").await;
        db.exec("INSERT INTO migrate_schema_versions (id, name) VALUES (1, 'not ours')").await;
        let m = db.manager().await;
        rejects!(db, m.up(), Error::Database(_), "module");
        rejects!(db, m.status(), Error::Database(_), "module");
    }
}
