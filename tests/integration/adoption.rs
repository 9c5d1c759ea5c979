//! `with_adopted_versions`: a database that Agno's own manager ran, adopted as the starting
//! state, read only, and refused when the two version tables cannot both be right.

use crate::harness::{each_backend, steps, TestDb};
use crate::MIGRATIONS;
use migrate::error::ErrorCategory;
use migrate::startup::{ensure, Policy, Problem, StartupError};
use migrate::{Error, MigrationManager};

const AGNO_TABLE: &str = "CREATE TABLE agno_schema_versions (table_name VARCHAR(100) PRIMARY KEY, \
     version VARCHAR(20) NOT NULL, created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40))";

async fn adopting(db: &TestDb) -> MigrationManager {
    MigrationManager::new(db.executor().await, [&MIGRATIONS])
        .expect("valid graph")
        .with_baseline("2.0.0")
        .expect("baseline")
        .with_table_name("session", "agno_sessions")
        .expect("rename")
        .with_adopted_versions("agno_schema_versions")
        .expect("adopt")
}

/// As `examples/agno` configures it: the baseline only for tables that exist.
async fn adopting_existing(db: &TestDb) -> MigrationManager {
    MigrationManager::new(db.executor().await, [&MIGRATIONS])
        .expect("valid graph")
        .with_baseline_for_existing_tables("2.0.0")
        .expect("baseline")
        .with_adopted_versions("agno_schema_versions")
        .expect("adopt")
}

async fn agno_rows(db: &TestDb) -> Vec<String> {
    db.rows("SELECT table_name, version, created_at, updated_at FROM agno_schema_versions ORDER BY table_name")
        .await
}

each_backend! {
    async fn an_agno_database_is_adopted_and_its_version_table_left_untouched(db) {
        // A version table as Agno's manager leaves it (at this test set's release 2.1.0): the
        // sessions table stamped in its own table.
        db.exec("CREATE TABLE agno_sessions (session_id VARCHAR(64) PRIMARY KEY, data TEXT, created_at BIGINT)").await;
        db.exec(AGNO_TABLE).await;
        db.exec("INSERT INTO agno_schema_versions VALUES ('agno_sessions', '2.1.0', '2025-01-01T00:00:00', NULL)").await;
        let before = agno_rows(&db).await;

        let manager = adopting(&db).await;
        let current = manager.current_version("session").await.expect("current");
        assert_eq!(current.map(|v| v.to_string()).as_deref(), Some("2.1.0"), "adopted");
        // No row there means the baseline.
        let memory = manager.current_version("memory").await.expect("current");
        assert_eq!(memory.map(|v| v.to_string()).as_deref(), Some("2.0.0"));

        let report = manager.up().table("session").await.expect("up");
        assert_eq!(steps(&report), ["session@2.3.0"], "only what is above the adopted version ran");
        assert!(db.has_column("agno_sessions", "state").await);
        assert_eq!(agno_rows(&db).await, before, "Agno's table is only read");
        let ours = db.rows("SELECT table_name, version FROM migrate_schema_versions").await;
        assert_eq!(ours, ["agno_sessions|2.3.0"], "from now on our own row counts");
        let again = adopting(&db).await.up().table("session").await.expect("second up");
        assert!(again.applied.is_empty());

        // Agno's manager migrates the table again: the two disagree, and the run says so.
        db.exec("UPDATE agno_schema_versions SET version = '3.0.0' WHERE table_name = 'agno_sessions'").await;
        let fingerprint = db.fingerprint().await;
        let err = adopting(&db).await.up().await.expect_err("disagreement");
        assert_eq!(err.category(), ErrorCategory::Drift, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("`agno_schema_versions` records table `session` at 3.0.0")
                && text.contains("`migrate_schema_versions` records it at 2.3.0"),
            "{text}"
        );
        assert_eq!(db.fingerprint().await, fingerprint, "a refused run changes nothing");
        // What a run refuses, start-up's check and the status name too (a check served it).
        let manager = adopting(&db).await;
        let status = manager.status().await.expect("status");
        let session = status.iter().find(|s| s.table == "session").expect("session");
        let conflict = session.adoption.as_ref().expect("the conflict is in the status");
        assert_eq!((conflict.adopted.as_str(), conflict.current.as_deref()), ("3.0.0", Some("2.3.0")));
        assert!(session.needs_attention());
        let err = ensure(&manager, Policy::Check).await.expect_err("check refuses it");
        let StartupError::NotReady { problems, .. } = &err else { panic!("{err}") };
        assert!(problems.iter().any(|p| p.kind() == "adopted"), "{err}");
        assert!(err.to_string().contains("another tool migrated it after it was adopted"), "{err}");
    }

    async fn an_adopted_version_survives_a_refused_step(db) {
        // The first step above the adopted version refuses. On MariaDB, where every step is
        // journalled, its start left a state row with no version; that row records nothing,
        // so the adopted version still applies (before, the next up re-ran the table from its
        // first step, on a table Agno's manager had built).
        db.exec("CREATE TABLE agno_sessions (session_id VARCHAR(64) PRIMARY KEY, data TEXT, created_at BIGINT)").await;
        db.exec(AGNO_TABLE).await;
        db.exec("INSERT INTO agno_schema_versions VALUES ('agno_sessions', '2.1.0', '2025-01-01T00:00:00', NULL)").await;
        db.control("session@2.3.0", "block").await;
        let refused = adopting(&db).await.up().table("session").await;
        assert!(matches!(refused, Err(Error::Blocked { .. })), "{refused:?}");
        db.clear_control().await;
        let manager = adopting(&db).await;
        let current = manager.current_version("session").await.expect("current");
        assert_eq!(current.map(|v| v.to_string()).as_deref(), Some("2.1.0"), "still adopted");
        let report = manager.up().table("session").await.expect("up");
        assert_eq!(steps(&report), ["session@2.3.0"]);
        // A down to nothing keeps the first step, as under a baseline: recorded as nothing,
        // the table would read as at the adopted 2.1.0 again.
        let down = manager.down().table("session").to_base().await.expect("down");
        assert_eq!(steps(&down), ["session@2.3.0", "session@2.1.0"]);
        assert_eq!(
            adopting(&db).await.current_version("session").await.expect("current").map(|v| v.to_string()).as_deref(),
            Some("2.0.0")
        );
        // Our own down below the adopted 2.1.0 is not Agno migrating the table again: the
        // status names no conflict, and the table goes back up (before, every run and repair
        // refused it with AdoptedVersion from then on).
        let manager = adopting(&db).await;
        let status = manager.status().await.expect("status");
        assert!(status.iter().all(|s| s.adoption.is_none()), "{status:?}");
        let up = manager.up().table("session").await.expect("up after our own down");
        assert_eq!(steps(&up), ["session@2.1.0", "session@2.3.0"]);
        // Agno moving past where we ever took the table is still a conflict.
        db.exec("UPDATE agno_schema_versions SET version = '3.0.0' WHERE table_name = 'agno_sessions'").await;
        manager.down().table("session").target("2.1.0").await.expect_err("3.0.0 is past ours");
    }

    async fn a_down_straight_from_the_adopted_version_is_not_a_conflict(db) {
        // The first run is a down from where Agno left the table: our history has that down
        // only, no up, and the table must still not read as migrated by Agno again.
        db.exec("CREATE TABLE agno_sessions (session_id VARCHAR(64) PRIMARY KEY, data TEXT, created_at BIGINT)").await;
        db.exec(AGNO_TABLE).await;
        db.exec("INSERT INTO agno_schema_versions VALUES ('agno_sessions', '2.1.0', '2025-01-01T00:00:00', NULL)").await;
        let manager = adopting(&db).await;
        let down = manager.down().table("session").target("2.0.0").await.expect("down");
        assert_eq!(steps(&down), ["session@2.1.0"]);
        for _ in 0..2 {
            // Twice: the second survey answers from what the first found.
            let status = manager.status().await.expect("status");
            assert!(status.iter().all(|s| s.adoption.is_none()), "{status:?}");
        }
        let up = manager.up().table("session").await.expect("up");
        assert_eq!(steps(&up), ["session@2.1.0", "session@2.3.0"]);
    }

    async fn an_adopted_version_is_a_release_and_a_stamp_on_a_missing_table_says_nothing(db) {
        // What Agno's manager leaves: every table type stamped with the release it reached,
        // whether or not that table has a step there, and tables it never created among them.
        db.exec("CREATE TABLE memory (memory_id VARCHAR(64) PRIMARY KEY, session_id VARCHAR(64))").await;
        db.exec(AGNO_TABLE).await;
        for (table, version) in [("memory", "2.1.0"), ("eval", "2.1.0"), ("metrics", "2.5.0")] {
            db.exec(&format!(
                "INSERT INTO agno_schema_versions VALUES ('{table}', '{version}', '2025-01-01T00:00:00', NULL)"
            ))
            .await;
        }
        let manager = adopting_existing(&db).await;
        // 2.1.0 is a release (session's, metrics'); memory's own steps at or below it end at
        // 2.0.0 (before, a version memory does not declare refused every run).
        let memory = manager.current_version("memory").await.expect("current");
        assert_eq!(memory.map(|v| v.to_string()).as_deref(), Some("2.0.0"));
        // eval and metrics do not exist: their stamps say nothing, and they are created (before,
        // eval read as at 2.1.0, and metrics' 2.5.0 skipped its creation for good).
        assert_eq!(manager.current_version("eval").await.expect("current"), None);
        assert_eq!(manager.current_version("metrics").await.expect("current"), None);
        let report = manager.up().await.expect("up");
        let ran = steps(&report);
        assert!(ran.contains(&"memory@2.3.0".to_string()), "{ran:?}");
        assert!(!ran.contains(&"memory@2.0.0".to_string()), "memory exists: {ran:?}");
        for created in ["eval@2.0.0", "metrics@2.0.0", "metrics@2.5.0", "session@2.0.0"] {
            assert!(ran.contains(&created.to_string()), "{created}: {ran:?}");
        }
        assert!(db.has_column("memory", "created_at").await);
        assert!(db.has_table("eval").await && db.has_table("metrics").await);

        // Agno's manager runs again and stamps memory with a later release that none of
        // memory's steps carry: memory is where ours is, not migrated by another tool.
        db.exec("UPDATE agno_schema_versions SET version = '2.5.0' WHERE table_name = 'memory'").await;
        let manager = adopting_existing(&db).await;
        let status = manager.status().await.expect("status");
        assert!(status.iter().all(|s| s.adoption.is_none()), "{status:?}");
        assert!(manager.up().await.expect("up").applied.is_empty());
        ensure(&manager, Policy::Check).await.expect("check passes");
    }

    async fn an_adopted_version_the_migrations_do_not_declare_is_refused(db) {
        db.exec(AGNO_TABLE).await;
        db.exec("INSERT INTO agno_schema_versions VALUES ('memory', '2.2.0', '2025-01-01T00:00:00', NULL)").await;
        let fingerprint = db.fingerprint().await;
        let err = adopting(&db).await.up().await.expect_err("2.2.0 is not in memory's chain");
        let Error::AdoptedVersion { table, from, adopted, current, .. } = &err else { panic!("{err:?}") };
        assert_eq!((table.as_str(), from.as_str(), adopted.as_str(), current), ("memory", "agno_schema_versions", "2.2.0", &None));
        assert!(err.to_string().contains("delete it to start from the baseline"), "{err}");
        assert_eq!(db.fingerprint().await, fingerprint);
        // Check refuses it too, naming the row, rather than asking for an `up` that refuses.
        let err = ensure(&adopting(&db).await, Policy::Check).await.expect_err("check refuses it");
        let StartupError::NotReady { problems, .. } = &err else { panic!("{err}") };
        let memory: Vec<&str> = problems.iter().filter(|p| p.to_string().contains("table `memory`")).map(Problem::kind).collect();
        assert_eq!(memory, ["adopted"], "{err}");
        assert_eq!(db.fingerprint().await, fingerprint);
    }

    async fn a_baseline_for_existing_tables_upgrades_what_is_there_and_creates_the_rest(db) {
        db.exec("CREATE TABLE session (session_id VARCHAR(64) PRIMARY KEY, data TEXT)").await;
        let manager = MigrationManager::new(db.executor().await, [&MIGRATIONS])
            .expect("graph")
            .with_baseline_for_existing_tables("2.0.0")
            .expect("baseline");
        let report = manager.up().await.expect("up");
        let ran = steps(&report);
        assert!(!ran.contains(&"session@2.0.0".to_string()), "session exists: at the baseline: {ran:?}");
        assert!(ran.contains(&"session@2.1.0".to_string()), "{ran:?}");
        for created in ["memory@2.0.0", "metrics@2.0.0", "eval@2.0.0"] {
            assert!(ran.contains(&created.to_string()), "{created} was missing, so it ran: {ran:?}");
        }
        assert!(db.has_table("memory").await);
        // A table this baseline does not take once it is dropped goes down to nothing, and
        // comes back up from its first step.
        let down = manager.down().table("metrics").to_base().await.expect("down");
        assert!(down.skipped.iter().all(|s| s.reason == migrate::report::SkipReason::AlreadyThere), "{down:?}");
        assert!(!db.has_table("metrics").await);
        assert_eq!(manager.current_version("metrics").await.expect("current"), None);
        let again = manager.up().table("metrics").await.expect("up");
        assert!(steps(&again).contains(&"metrics@2.0.0".to_string()), "{again:?}");
        // An unstamp leaves the table in place, which this baseline then takes: at its first
        // step, unstamping would record nothing only to read as the baseline again.
        manager.down().table("memory").target("2.0.0").await.expect("down");
        let err = manager.unstamp("memory").await.expect_err("refused");
        assert!(matches!(err, Error::Config(_)) && err.to_string().contains("first step"), "{err}");
    }

    async fn without_the_adopted_table_every_table_starts_at_the_baseline(db) {
        let manager = adopting(&db).await;
        let status = manager.status().await.expect("status reads a missing adopted table as empty");
        assert!(status.iter().all(|s| s.current.as_ref().is_some_and(|v| v.to_string() == "2.0.0")), "{status:?}");
    }
}

#[test]
fn a_bad_adopted_table_name_is_refused() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let Some(db) = TestDb::new(migrate::testing::Backend::Sqlite).await else {
            return;
        };
        for bad in ["", "a\0b", &"v".repeat(64)] {
            let err = db.manager().await.with_adopted_versions(bad).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{bad:?}: {err}");
        }
    });
}
