//! `install_fresh`: a table created directly at its `fresh` version, stamped there, equal to
//! the same table upgraded step by step.

use crate::harness::{all_up, each_backend, steps, versions};
use crate::MIGRATIONS;
use migrate::report::{Direction, ReportStatus};

each_backend! {
    async fn an_unrecorded_table_already_there_is_refused_before_anything_is_created(db) {
        db.exec("CREATE TABLE session (id INTEGER PRIMARY KEY)").await;
        let before = db.fingerprint().await;
        let err = db.manager().await.install_fresh().await.expect_err("session is there");
        assert!(
            matches!(&err, migrate::Error::Config(message) if message.contains("table `session` exists")),
            "{err}"
        );
        // Refused before the lock is taken: not even the tracking tables are made.
        assert_eq!(db.fingerprint().await, before, "nothing created");
        assert!(!db.has_table("migrate_schema_versions").await);
    }

    async fn a_second_install_while_the_first_runs_waits_for_it_instead_of_refusing(db) {
        // The first install's fresh function sleeps (on MariaDB journalled: its mark is there
        // while it runs); the second arrives then, and waits for the lock instead of taking
        // the mark (or a table made and not yet recorded) for a database to refuse.
        db.control("session fresh", "pause").await;
        let (first, second) = (db.manager().await, db.manager().await);
        let (first, second) = tokio::join!(first.install_fresh(), async {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            second.install_fresh().await
        });
        let first = first.expect("the first install");
        assert_eq!(first.applied[0].step.name, "session_fresh");
        let second = second.expect("the second install waits, then finds every table installed");
        assert!(second.applied.is_empty(), "{:?}", second.applied);
        db.clear_control().await;
    }

    async fn install_fresh_creates_a_table_at_its_fresh_version_and_the_rest_step_by_step(db) {
        let manager = db.manager().await.with_baseline("2.0.0").expect("baseline");
        let report = manager.install_fresh().await.expect("install fresh");
        assert_eq!(report.status, ReportStatus::Success);
        let ran = steps(&report);
        assert_eq!(ran[0], "session@2.3.0", "the fresh session table first: {ran:?}");
        assert_eq!(report.applied[0].step.name, "session_fresh");
        // This run made every table: none of them was "already there".
        assert!(report.skipped.is_empty(), "{:?}", report.skipped);
        // Every other table ran from its first step, the baseline notwithstanding.
        let expected: Vec<String> = all_up().into_iter().filter(|s| !s.starts_with("session@")).collect();
        assert_eq!(ran[1..], expected[..]);
        assert!(db.has_column("session", "state").await && db.has_column("session", "created_at").await);
        let upgraded = db.manager().await;
        assert_eq!(versions(&manager).await, versions(&upgraded).await);
        let status = upgraded.status().await.expect("status");
        assert!(status.iter().all(|s| s.current.as_ref() == Some(&s.latest)), "{status:?}");

        let history = manager.history(100).await.expect("history");
        let fresh = history.iter().find(|h| h.name == "session_fresh").expect("the fresh step's row");
        assert_eq!((fresh.version.as_str(), fresh.direction), ("2.3.0", Direction::Up));

        // Installed fresh, it comes down like an upgraded table.
        manager.down().table("session").target("2.1.0").await.expect("down");
        assert!(!db.has_column("session", "state").await);
        let again = manager.install_fresh().await.expect("a second install only goes up");
        assert_eq!(steps(&again), ["session@2.3.0"]);
        assert_eq!(again.applied[0].step.name, "session_2_3_0", "recorded tables go up, not fresh");
    }

    async fn a_step_failing_after_a_fresh_install_reports_the_installed_table(db) {
        db.control("metrics@2.1.0", "fail").await;
        let manager = db.manager().await;
        let err = manager.install_fresh().await.expect_err("metrics 2.1.0 fails");
        let migrate::Error::StepFailed { step, applied, .. } = &err else { panic!("{err:?}") };
        assert_eq!((step.table.as_str(), step.version.to_string().as_str()), ("metrics", "2.1.0"));
        let names: Vec<&str> = applied.iter().map(|a| a.step.name.as_str()).collect();
        assert_eq!(names.first(), Some(&"session_fresh"), "the installed table is among what ran: {names:?}");
        assert!(names.contains(&"create_metrics"), "and the steps before the failure: {names:?}");
    }

    async fn a_failing_fresh_function_names_its_step_and_leaves_nothing(db) {
        db.control("session fresh", "fail").await;
        let manager = db.manager().await;
        let err = manager.install_fresh().await.expect_err("the fresh function fails");
        let migrate::Error::StepFailed { step, .. } = &err else { panic!("{err:?}") };
        assert_eq!(step.table, "session");
        assert!(!db.has_table("session").await);
        assert_eq!(manager.current_version("session").await.expect("current"), None);
        // On MariaDB every step is journalled, so the fresh function's start left a mark. Rolled
        // back, it records nothing again: not the step below the one it installs at (2.1.0),
        // whose table would then be taken as built and only 2.3.0 run on no table.
        let status = manager.status().await.expect("status");
        let session = status.iter().find(|s| s.table == "session").expect("session");
        assert_eq!(session.dirty.is_some(), db.backend() == migrate::testing::Backend::MySql, "{session:?}");
        if session.dirty.is_some() {
            assert!(!session.resumes, "a fresh install cut off is not resumed");
            manager.resolve_dirty("session", migrate::manager::Resolution::RolledBack).await.expect("resolve");
            assert_eq!(manager.current_version("session").await.expect("current"), None);
        }
        db.clear_control().await;
        manager.install_fresh().await.expect("installed after all");
        assert!(db.has_table("session").await);
    }
}

/// The generic comparison `round_trip_tests!` runs: fresh at head against step by step.
#[tokio::test]
async fn fresh_install_and_upgrade_give_the_same_schema_on_every_backend() {
    for backend in [
        migrate::testing::Backend::Sqlite,
        migrate::testing::Backend::Postgres,
        migrate::testing::Backend::MySql,
    ] {
        let diff = migrate::testing::fresh_against_upgrade(backend, &[&MIGRATIONS])
            .await
            .expect("compare");
        if let Some(diff) = diff {
            assert!(
                diff.is_empty_ignoring_moves(),
                "{}:\n{diff}",
                backend.name()
            );
        }
    }
}
