//! Physical table names: `with_table_name` renames a logical table in one database.

use crate::harness::{at, each_backend, versions};
use crate::MIGRATIONS;
use migrate::report::ReportStatus;
use migrate::{Error, MigrationManager};

async fn renamed(db: &crate::harness::TestDb) -> MigrationManager {
    MigrationManager::new(db.executor().await, [&MIGRATIONS])
        .expect("valid graph")
        .with_table_name("session", "my_sessions")
        .expect("rename session")
        .with_table_name("memory", "agno_memories")
        .expect("rename memory")
}

each_backend! {
    async fn a_physical_name_may_not_be_a_tracking_table_or_another_table(db) {
        let manager = || async { MigrationManager::new(db.executor().await, [&MIGRATIONS]).expect("valid graph") };
        for physical in ["migrate_schema_versions", "migrate_schema_versions_history", "migrate_schema_versions_lock"] {
            let err = manager().await.with_table_name("session", physical).expect_err(physical);
            assert!(
                matches!(&err, Error::Config(message) if message.contains("tracking tables")),
                "{physical}: {err}"
            );
        }
        let err = manager().await.with_table_name("session", "memory").expect_err("memory");
        assert!(err.to_string().contains("that is the name of table `memory`"), "{err}");
        // Names in two cases are one table where names ignore case, two on PostgreSQL: two
        // tables renamed to one name in two cases, and another table's name in another case.
        let ignores_case = db.backend() != migrate::testing::Backend::Postgres;
        let twice = manager()
            .await
            .with_table_name("session", "Shared")
            .expect("session")
            .with_table_name("memory", "shared");
        let other_case = manager().await.with_table_name("session", "MEMORY");
        for (result, refusal) in [
            (twice.map(drop), "would both be the physical table"),
            (other_case.map(drop), "that is the name of table `memory`"),
        ] {
            match result {
                Err(err) if ignores_case => assert!(err.to_string().contains(refusal), "{err}"),
                Ok(()) if !ignores_case => {}
                other => panic!("{refusal}, ignoring case: {ignores_case}: {other:?}"),
            }
        }
        assert!(!db.has_table("migrate_schema_versions").await, "refusals touch nothing");
    }

    async fn a_renamed_table_is_created_migrated_and_recorded_under_its_physical_name(db) {
        let manager = renamed(&db).await;
        let report = manager.up().await.expect("up");
        assert_eq!(report.status, ReportStatus::Success);

        // The schema holds the physical names; the templates and Conn::table rendered them.
        assert!(db.has_table("my_sessions").await);
        assert!(db.has_table("agno_memories").await);
        assert!(!db.has_table("session").await && !db.has_table("memory").await);
        assert!(db.has_column("my_sessions", "state").await, "session@2.3.0 ran on my_sessions");
        assert!(db.has_column("agno_memories", "created_at").await);
        assert!(db.has_table("metrics").await, "a table with no mapping keeps its name");

        // The tracking rows record the physical names.
        let mut recorded = db
            .rows("SELECT table_name FROM migrate_schema_versions ORDER BY table_name")
            .await;
        recorded.sort();
        assert_eq!(recorded, ["agno_memories", "eval", "metrics", "my_sessions"]);
        let history = db
            .rows("SELECT DISTINCT table_name FROM migrate_schema_versions_history WHERE table_name LIKE 'my_%'")
            .await;
        assert_eq!(history, ["my_sessions"]);

        // The API speaks the logical names.
        assert_eq!(
            versions(&manager).await,
            at(&[
                ("eval", Some("2.1.0")),
                ("memory", Some("2.3.0")),
                ("metrics", Some("2.5.0")),
                ("session", Some("2.3.0")),
            ])
        );
        let rows = manager.history(100).await.expect("history");
        assert!(rows.iter().any(|h| h.table == "session"));
        assert!(rows.iter().all(|h| h.table != "my_sessions"));

        // A second manager with the same names finds everything applied.
        let again = renamed(&db).await.up().await.expect("second up");
        assert_eq!(again.status, ReportStatus::UpToDate);

        // Down comes back through the same names.
        manager.down().table("session").target("2.1.0").await.expect("down");
        assert!(!db.has_column("my_sessions", "state").await);
        assert!(db.has_table("my_sessions").await);
    }

    async fn a_manager_without_the_mapping_does_not_mistake_a_renamed_table_for_its_own(db) {
        renamed(&db).await.up().await.expect("up renamed");
        // Without the mapping, `session` has no row of its own: it is a different table.
        let plain = db.manager().await;
        let status = plain.status().await.expect("status");
        let session = status.iter().find(|s| s.table == "session").expect("session row");
        assert_eq!(session.current, None);
        let mut strangers: Vec<_> = status.iter().filter(|s| !s.linked).map(|s| s.table.clone()).collect();
        strangers.sort();
        assert_eq!(strangers, ["agno_memories", "my_sessions"]);
    }

    async fn a_manager_with_the_mapping_does_not_mistake_the_plain_table_for_its_own(db) {
        // The other way round: a database migrated under the plain names, then run with the
        // mapping. `session`'s row is not `my_sessions`'s state (which was never created): the
        // run refuses, naming the row, instead of finding everything applied.
        db.manager().await.up().await.expect("up plain");
        let manager = renamed(&db).await;
        let status = manager.status().await.expect("status");
        let mut strangers: Vec<_> = status.iter().filter(|s| !s.linked).map(|s| s.table.clone()).collect();
        strangers.sort();
        assert_eq!(strangers, ["memory", "session"]);
        let session = status.iter().find(|s| s.linked && s.table == "session").expect("session");
        assert_eq!(session.current, None);
        let err = manager.up().await.expect_err("a row of another naming refuses the run");
        assert!(matches!(err, Error::UnknownAppliedVersion { .. }), "{err}");
        assert!(!db.has_table("my_sessions").await, "the refusal changed nothing");
    }
}

#[tokio::test]
async fn bad_renames_are_refused_before_any_database_is_touched() {
    let Some(db) = crate::harness::TestDb::new(migrate::testing::Backend::Sqlite).await else {
        return;
    };
    let manager = || async { db.manager().await };
    let err = manager()
        .await
        .with_table_name("sessions", "x")
        .unwrap_err();
    assert!(
        matches!(err, Error::UnknownTable { ref table, .. } if table == "sessions"),
        "{err}"
    );
    let err = manager()
        .await
        .with_table_name("session", "memory")
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(
        err.to_string()
            .contains("that is the name of table `memory`"),
        "{err}"
    );
    let err = manager()
        .await
        .with_table_name("session", "t")
        .and_then(|m| m.with_table_name("memory", "t"))
        .unwrap_err();
    assert!(err.to_string().contains("`session` and `memory`"), "{err}");
    for bad in ["", &"x".repeat(64), "a\0b"] {
        let err = manager().await.with_table_name("session", bad).unwrap_err();
        assert!(matches!(err, Error::Config(_)), "{bad:?}: {err}");
    }
    assert!(db.schema().await.is_empty(), "nothing was created");
}

each_backend! {
    async fn a_view_exists_and_sqlite_finds_a_name_in_any_case(db) {
        db.manager().await.up().table("session").await.expect("up");
        db.exec("CREATE VIEW session_view AS SELECT session_id FROM session").await;
        let manager = db.manager().await;
        let backend = manager.backend();
        assert!(backend.table_exists("session_view").await.expect("catalog"), "a view counts, on every backend");
        if db.backend() == migrate::testing::Backend::Sqlite {
            // SQLite's names ignore case (`SESSION` is `session`), as its columns' lookup did.
            assert!(backend.table_exists("SESSION").await.expect("catalog"));
        }
        assert!(!backend.table_exists("no_such_table").await.expect("catalog"));
    }
}
