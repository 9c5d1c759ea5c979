//! `up` and `down`: targets, table filters, dry runs, baselines, force, listings.

use crate::harness::{all_up, at, each_backend, steps, v, versions};
use crate::MIGRATIONS;
use migrate::report::{Direction, ReportStatus, SkipReason};
use migrate::MigrationManager;

each_backend! {
    async fn up_brings_every_table_to_its_latest_version_once(db) {
        let manager = db.manager().await;

        let report = manager.up().await.expect("up");
        assert_eq!(report.status, ReportStatus::Success);
        assert_eq!(steps(&report), all_up());
        assert!(report.applied.iter().all(|a| a.direction == Direction::Up));
        assert_eq!(
            versions(&manager).await,
            at(&[
                ("eval", Some("2.1.0")),
                ("memory", Some("2.3.0")),
                ("metrics", Some("2.5.0")),
                ("session", Some("2.3.0")),
            ])
        );
        assert!(db.has_column("session", "state").await);
        assert!(db.has_column("memory", "created_at").await);

        let again = manager.up().await.expect("second up");
        assert_eq!(again.status, ReportStatus::UpToDate);
        assert!(again.applied.is_empty());
        assert_eq!(again.skipped.len(), 4, "one entry per table");
        assert_eq!(again.skipped.iter().map(|s| s.steps).sum::<usize>(), 10);

        let history = manager.history(100).await.expect("history");
        assert_eq!(history.len(), 10, "one history row per step");
        assert!(
            history.windows(2).all(|w| w[0].id > w[1].id),
            "newest first"
        );
        assert!(history
            .iter()
            .all(|h| h.outcome == migrate::report::Outcome::Succeeded));
    }

    async fn up_to_a_target_for_one_table_then_for_all(db) {
        let manager = db.manager().await;

        let report = manager
            .up()
            .table("session")
            .target("2.1.0")
            .await
            .expect("up session");
        assert_eq!(steps(&report), ["session@2.0.0", "session@2.1.0"]);
        assert_eq!(
            manager.current_version("session").await.unwrap(),
            Some(v("2.1.0"))
        );
        assert_eq!(manager.current_version("memory").await.unwrap(), None);

        // Agno writes targets as "v2.1.0"; tables whose chain lacks 2.1.0 stop below it.
        let report = manager
            .up()
            .target("v2.1.0")
            .await
            .expect("up all to 2.1.0");
        assert_eq!(
            steps(&report),
            [
                "eval@2.0.0",
                "memory@2.0.0",
                "metrics@2.0.0",
                "eval@2.1.0",
                "metrics@2.1.0"
            ]
        );
        assert_eq!(
            versions(&manager).await,
            at(&[
                ("eval", Some("2.1.0")),
                ("memory", Some("2.0.0")),
                ("metrics", Some("2.1.0")),
                ("session", Some("2.1.0")),
            ])
        );
    }

    async fn a_release_target_down_leaves_tables_below_it_where_they_are(db) {
        // Down to release 2.1.0 over every table: session at 2.3.0 goes down to 2.1.0; eval,
        // with nothing applied, is below it and stays so, reported (before, the whole down
        // failed with TargetAboveCurrent for a table nobody named).
        let manager = db.manager().await;
        manager.up().table("session").await.expect("session to 2.3.0");
        let report = manager.down().target("2.1.0").await.expect("release 2.1.0, down");
        assert_eq!(steps(&report), ["session@2.3.0"]);
        let below: Vec<String> = report
            .skipped
            .iter()
            .filter(|s| matches!(s.reason, SkipReason::BelowTarget { .. }))
            .map(|s| format!("{} {}", s.table, s.reason))
            .collect();
        assert!(
            below.contains(&"eval nothing applied, below the target 2.1.0: left as it is".to_string()),
            "{below:?}"
        );
        // Named, it is still an error.
        let err = manager.down().table("eval").target("2.1.0").await.expect_err("named");
        assert!(matches!(err, migrate::Error::TargetAboveCurrent { .. }), "{err}");
    }

    async fn a_release_target_leaves_tables_above_it_where_they_are(db) {
        let manager = db.manager().await;
        manager.up().table("metrics").await.expect("metrics to 2.5.0");
        let before = db.fingerprint().await;

        // Release 2.1.0 over every table: metrics, at 2.5.0, is above it and stays there,
        // reported with the reason; the others move to their newest version at or below it.
        let report = manager.up().target("v2.1.0").await.expect("release 2.1.0");
        assert_eq!(steps(&report), ["eval@2.0.0", "memory@2.0.0", "session@2.0.0", "eval@2.1.0", "session@2.1.0"]);
        let above: Vec<String> = report
            .skipped
            .iter()
            .filter(|s| s.reason != SkipReason::AlreadyThere)
            .map(|s| format!("{} {} {}", s.table, s.steps, s.reason))
            .collect();
        assert_eq!(above, ["metrics 1 at 2.5.0, above the target 2.1.0: left as it is"]);
        assert_eq!(
            versions(&manager).await,
            at(&[
                ("eval", Some("2.1.0")),
                ("memory", Some("2.0.0")),
                ("metrics", Some("2.5.0")),
                ("session", Some("2.1.0")),
            ])
        );
        assert!(db.has_column("metrics", "tokens").await, "metrics was not touched");

        // Naming the table makes it an error, before anything runs.
        let now = db.fingerprint().await;
        assert_ne!(now, before);
        let err = manager.up().table("metrics").table("session").target("2.1.0").await.expect_err("named");
        assert!(matches!(err, migrate::Error::TargetBelowCurrent { ref table, .. } if table == "metrics"), "{err}");
        assert_eq!(db.fingerprint().await, now);
    }

    async fn down_to_a_middle_version_and_to_base(db) {
        let manager = db.manager().await;
        manager.up().await.expect("up");

        let report = manager
            .down()
            .table("session")
            .target("2.1.0")
            .await
            .expect("down session");
        assert_eq!(steps(&report), ["session@2.3.0"]);
        assert_eq!(report.applied[0].direction, Direction::Down);
        assert!(!db.has_column("session", "state").await);
        assert!(db.has_column("session", "created_at").await);

        // memory@2.3.0 runs after session@2.1.0 and stays applied: session cannot go below it.
        let err = manager.down().table("session").to_base().await.unwrap_err();
        assert!(
            matches!(err, migrate::Error::DependentStillApplied { .. }),
            "{err}"
        );

        let report = manager
            .down()
            .table("memory")
            .table("session")
            .to_base()
            .await
            .expect("down to base");
        assert_eq!(
            steps(&report),
            [
                "memory@2.3.0",
                "session@2.1.0",
                "session@2.0.0",
                "memory@2.0.0"
            ],
            "down runs the reverse of the up order"
        );
        assert!(!db.has_table("session").await && !db.has_table("memory").await);
        assert_eq!(manager.current_version("session").await.unwrap(), None);
        assert_eq!(
            manager.current_version("metrics").await.unwrap(),
            Some(v("2.5.0"))
        );

        let history = manager.history(4).await.expect("history");
        assert!(history.iter().all(|h| h.direction == Direction::Down));
    }

    async fn down_of_every_table_to_a_version(db) {
        let manager = db.manager().await;
        manager.up().await.expect("up");
        let report = manager
            .down()
            .table("session")
            .table("memory")
            .table("metrics")
            .target("2.0.0")
            .await
            .expect("down");
        assert_eq!(
            steps(&report),
            [
                "metrics@2.5.0",
                "session@2.3.0",
                "memory@2.3.0",
                "session@2.1.0",
                "metrics@2.1.0"
            ]
        );
        assert!(!db.has_column("metrics", "tokens").await);
        // Back up: the same steps, in the up order.
        let report = manager.up().await.expect("up again");
        assert_eq!(
            steps(&report),
            [
                "metrics@2.1.0",
                "session@2.1.0",
                "memory@2.3.0",
                "session@2.3.0",
                "metrics@2.5.0"
            ]
        );
    }

    async fn dry_run_returns_the_plan_and_changes_nothing(db) {
        let manager = db.manager().await;
        let before = db.fingerprint().await;

        let report = manager.up().dry_run(true).await.expect("dry run");
        assert_eq!(report.status, ReportStatus::DryRun);
        assert!(report.applied.is_empty());
        let planned: Vec<String> = report
            .planned
            .iter()
            .map(|p| format!("{}@{}", p.step.table, p.step.version))
            .collect();
        assert_eq!(planned, all_up());
        assert!(
            !report
                .planned
                .iter()
                .find(|p| p.step.table == "metrics" && p.step.version == v("2.5.0"))
                .unwrap()
                .transactional
        );
        assert_eq!(
            db.fingerprint().await,
            before,
            "a dry run writes nothing, not even the tracking tables"
        );

        let real = manager.up().await.expect("up");
        assert_eq!(steps(&real), planned, "the dry run predicted the real run");

        let down = manager
            .down()
            .target("2.0.0")
            .table("metrics")
            .dry_run(true)
            .await
            .expect("dry down");
        assert_eq!(down.planned.len(), 2);
        assert!(db.has_column("metrics", "tokens").await);
    }

    async fn baseline_counts_unrecorded_tables_as_at_that_version(db) {
        // The application created the 2.0.0 tables itself and never recorded a version (Agno).
        for sql in [
            "CREATE TABLE session (session_id VARCHAR(64) PRIMARY KEY, data TEXT)",
            "CREATE TABLE memory (memory_id VARCHAR(64) PRIMARY KEY, session_id VARCHAR(64))",
            "CREATE TABLE metrics (id INTEGER PRIMARY KEY, day VARCHAR(10) NOT NULL)",
            "CREATE TABLE eval (id INTEGER PRIMARY KEY, score BIGINT)",
        ] {
            db.exec(sql).await;
        }
        let manager = db.manager().await.with_baseline("2.0.0").expect("baseline");
        assert_eq!(
            manager.current_version("session").await.unwrap(),
            Some(v("2.0.0"))
        );
        let status = manager.status().await.unwrap();
        assert!(status
            .iter()
            .all(|s| !s.recorded && s.current == Some(v("2.0.0"))));
        assert_eq!(manager.pending().await.unwrap().len(), 6);

        let report = manager.up().await.expect("up from baseline");
        assert_eq!(
            steps(&report),
            [
                "eval@2.1.0",
                "metrics@2.1.0",
                "session@2.1.0",
                "memory@2.3.0",
                "session@2.3.0",
                "metrics@2.5.0"
            ]
        );
        assert!(manager.status().await.unwrap().iter().all(|s| s.recorded));

        // A down to nothing keeps each table's first step: with no version recorded the table
        // would read as 2.0.0, and the next up would skip what the down reverted.
        let down = manager.down().table("session").table("memory").to_base().await.expect("down to the baseline");
        let mut reverted = steps(&down);
        reverted.sort();
        assert_eq!(reverted, ["memory@2.3.0", "session@2.1.0", "session@2.3.0"]);
        assert!(down.skipped.iter().any(|s| s.table == "session"
            && s.reason == SkipReason::FirstStepKept { baseline: v("2.0.0") }), "{:?}", down.skipped);
        assert!(db.has_table("session").await, "the baseline's tables stay");
        assert_eq!(manager.current_version("session").await.unwrap(), Some(v("2.0.0")));
        let err = manager.unstamp("session").await.unwrap_err();
        assert!(matches!(err, migrate::Error::Config(_)), "{err}");
        let again = manager.up().await.expect("up again");
        let mut rerun = steps(&again);
        rerun.sort();
        assert_eq!(rerun, reverted, "the reverted steps run again");

        let err = MigrationManager::new(db.executor().await, [&crate::MIGRATIONS])
            .unwrap()
            .with_baseline("two")
            .unwrap_err();
        assert!(
            matches!(err, migrate::Error::InvalidVersion { .. }),
            "{err}"
        );
    }

    async fn force_reruns_steps_whose_record_does_not_match_the_schema(db) {
        let manager = db.manager().await;
        manager.up().await.expect("up");
        // Someone dropped the column by hand: the record says 2.3.0, the schema says otherwise.
        db.exec("ALTER TABLE session DROP COLUMN state").await;

        let report = manager.up().table("session").await.expect("plain up");
        assert_eq!(report.status, ReportStatus::UpToDate);
        assert!(!db.has_column("session", "state").await);

        let report = manager
            .up()
            .table("session")
            .force(true)
            .await
            .expect("forced up");
        assert_eq!(
            steps(&report),
            ["session@2.0.0", "session@2.1.0", "session@2.3.0"]
        );
        assert!(db.has_column("session", "state").await);
        assert_eq!(
            manager.current_version("session").await.unwrap(),
            Some(v("2.3.0"))
        );

        // Forced down reverts every step above the target, recorded or not.
        db.exec("UPDATE migrate_schema_versions SET version = '2.1.0' WHERE table_name = 'session'")
            .await;
        manager
            .accept_checksums("session")
            .await
            .expect("re-pin the hand-edited record");
        let report = manager
            .down()
            .table("session")
            .target("2.1.0")
            .force(true)
            .await
            .expect("forced down");
        assert_eq!(steps(&report), ["session@2.3.0"]);
        assert!(!db.has_column("session", "state").await);
    }

    async fn listings_describe_the_graph_and_the_database(db) {
        let manager = db.manager().await;
        assert_eq!(
            manager.available_versions(),
            [v("2.0.0"), v("2.1.0"), v("2.3.0"), v("2.5.0")]
        );
        assert_eq!(manager.latest_version(), Some(v("2.5.0")));
        assert_eq!(manager.latest_version_of("session").unwrap(), v("2.3.0"));
        assert!(matches!(
            manager.latest_version_of("sessions"),
            Err(migrate::Error::UnknownTable { .. })
        ));

        let pending: Vec<String> = manager
            .pending()
            .await
            .unwrap()
            .iter()
            .map(|m| format!("{}@{}", m.step.table, m.step.version))
            .collect();
        assert_eq!(pending, all_up());
        assert!(manager.applied().await.unwrap().is_empty());

        manager.up().target("2.1.0").await.expect("up");
        let applied = manager.applied().await.unwrap();
        assert_eq!(applied.len(), 7);
        let eval = applied
            .iter()
            .find(|m| m.step.table == "eval" && m.step.version == v("2.1.0"))
            .unwrap();
        assert!(!eval.reversible);
        assert!(
            eval.location.contains("agno_migrations.rs"),
            "{}",
            eval.location
        );
        assert!(
            eval.checksum.starts_with("sha256:") && eval.checksum.len() == "sha256:".len() + 64,
            "{}",
            eval.checksum
        );
        assert_eq!(manager.pending().await.unwrap().len(), 3);
        assert_eq!(manager.history(2).await.unwrap().len(), 2);
    }

    async fn the_tracking_table_name_is_configurable(db) {
        let executor = db
            .executor_with_tracking_table("agno_schema_versions")
            .await
            .unwrap();
        let manager = MigrationManager::new(executor, [&crate::MIGRATIONS]).unwrap();
        manager.up().await.expect("up");
        assert!(db.has_table("agno_schema_versions").await);
        assert!(db.has_table("agno_schema_versions_history").await);
        assert!(!db.has_table("migrate_schema_versions").await);

        let Err(err) = db.executor_with_tracking_table("").await else {
            panic!("an empty tracking table name must be refused");
        };
        assert!(matches!(err, migrate::Error::Config(_)), "{err}");
    }

    async fn module_names_isolate_sets_in_one_tracking_table(db) {
        let manager = db.manager().await;
        manager.up().target("2.0.0").await.expect("up");
        let modules = db
            .rows("SELECT DISTINCT module FROM migrate_schema_versions")
            .await;
        assert_eq!(modules, ["integration"], "the default module is the crate name");
        // Rows of a module this binary does not link are not its business.
        db.exec("INSERT INTO migrate_schema_versions (module, table_name, version, updated_at) VALUES ('other_app', 'session', '9.0.0', 0)").await;
        assert_eq!(
            manager.up().target("2.0.0").await.unwrap().status,
            ReportStatus::UpToDate
        );
    }
}

/// `2026-11-25T06:16:35.123456Z`
fn is_iso_8601_utc(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 27
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && b[10] == b'T'
        && [13, 16].iter().all(|&i| b[i] == b':')
        && b[19] == b'.'
        && b[26] == b'Z'
        && text.chars().filter(char::is_ascii_digit).count() == 20
}

each_backend! {
    async fn the_history_shows_start_times_as_iso_8601_even_in_old_tracking_tables(db) {
        let manager = db.manager().await;
        manager.up().table("session").target("2.0.0").await.expect("up");
        let times = db.rows("SELECT started_at_utc FROM migrate_schema_versions_history").await;
        assert!(!times.is_empty() && times.iter().all(|t| is_iso_8601_utc(t)), "{times:?}");

        // A history table made before the column existed gains it on the next run.
        db.exec("ALTER TABLE migrate_schema_versions_history DROP COLUMN started_at_utc").await;
        manager.up().table("session").await.expect("up again");
        let times = db
            .rows("SELECT started_at_utc FROM migrate_schema_versions_history ORDER BY id DESC")
            .await;
        assert!(is_iso_8601_utc(&times[0]), "{times:?}");
        assert_eq!(manager.history(1).await.expect("history").len(), 1);
        // A limit past what a database's LIMIT takes is every row, not a database error.
        let all = manager.history(usize::MAX).await.expect("history without a limit");
        assert_eq!(all.len(), times.len(), "{all:?}");
    }
}

each_backend! {
    async fn a_history_left_without_its_state_table_is_kept_and_upgraded(db) {
        db.manager().await.up().table("session").target("2.0.0").await.expect("up");
        let before = db.rows("SELECT version FROM migrate_schema_versions_history").await;
        assert_eq!(before.len(), 1, "{before:?}");

        // An older history (no `started_at_utc`) whose state table is gone. A new executor's
        // state read finds no state table, so its run creates the tables without asking the
        // catalog first; the history's plain CREATE TABLE then fails, and the checked way
        // keeps the rows and adds the column.
        db.exec("ALTER TABLE migrate_schema_versions_history DROP COLUMN started_at_utc").await;
        db.exec("DROP TABLE migrate_schema_versions").await;
        let manager = db.manager().await;
        manager.up().table("session").target("2.0.0").await.expect("up over the old history");

        let times = db
            .rows("SELECT started_at_utc FROM migrate_schema_versions_history ORDER BY id")
            .await;
        assert_eq!(times.len(), 2, "the old row is kept: {times:?}");
        assert!(is_iso_8601_utc(&times[1]), "{times:?}");
        assert_eq!(
            db.rows("SELECT version FROM migrate_schema_versions WHERE table_name = 'session'")
                .await,
            ["2.0.0"]
        );
    }
}

/// A SQLite file whose text is UTF-16 (its encoding chosen before anything was written) reads
/// its state like any other: the packed state read is text in the file's encoding, handed over
/// as UTF-8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_utf16_sqlite_file_reads_its_state() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("utf16.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let mut conn = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    sqlx::raw_sql("PRAGMA encoding = 'UTF-16le'; CREATE TABLE first_thing (id INTEGER)")
        .execute(&mut conn)
        .await
        .expect("utf-16 file");
    let encoding: String = sqlx::query_scalar("PRAGMA encoding")
        .fetch_one(&mut conn)
        .await
        .expect("encoding");
    assert_eq!(encoding, "UTF-16le");
    conn.close().await.expect("close");
    let executor = migrate::connect(&url).await.expect("executor");
    let manager = MigrationManager::new(executor, [&MIGRATIONS]).expect("graph");
    let report = manager.up().await.expect("up");
    assert_eq!(report.applied.len(), 10);
    let again = manager.up().await.expect("no-op");
    assert_eq!(again.status, ReportStatus::UpToDate);
    let statuses = manager.status().await.expect("status");
    assert!(statuses
        .iter()
        .all(|s| s.current.as_ref() == Some(&s.latest)));
}

each_backend! {
    async fn a_down_by_steps_counts_from_where_the_table_stands_under_the_lock(db) {
        let manager = db.manager().await;
        manager.up().table("session").target("2.1.0").await.expect("up to 2.1.0");
        // Another runner is in 2.3.0 (paused there, holding the lock) when the down asks for
        // one step back: the down waits for the lock, and reverts that step alone (a version
        // target read before the lock, 2.0.0, reverted 2.1.0 as well: `down -1` did that).
        db.control("session@2.3.0", "pause").await;
        let other = db.manager().await;
        let up = tokio::spawn(async move { other.up().table("session").await.map(|r| steps(&r)) });
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let down = manager.down().table("session").steps(1).await.expect("one step down");
        assert_eq!(up.await.expect("join").expect("up"), ["session@2.3.0"]);
        assert_eq!(steps(&down), ["session@2.3.0"]);
        let current = manager.current_version("session").await.expect("current");
        assert_eq!(current, Some(v("2.1.0")));
        db.clear_control().await;
        // More steps than are applied go to nothing; with a target too is refused.
        let rest = manager.down().table("session").steps(5).await.expect("down to nothing");
        assert_eq!(steps(&rest), ["session@2.1.0", "session@2.0.0"]);
        let err = manager.down().steps(1).target("2.0.0").await.expect_err("two targets");
        assert!(matches!(err, migrate::Error::Config(_)), "{err}");
    }
}

each_backend! {
    async fn an_edge_to_a_step_cut_off_in_another_table_is_refused_with_its_mark(db) {
        // memory@2.3.0 runs after session@2.1.0; it was cut off on its way up (a dirty mark,
        // the version still 2.0.0), so it may be half applied. Taking session below 2.1.0
        // under it is refused, naming the mark (before, memory counted as not applied and
        // session@2.1.0 was reverted under it).
        let manager = db.manager().await;
        manager.up().await.expect("up");
        manager.down().table("memory").target("2.0.0").await.expect("memory down");
        db.exec(
            "UPDATE migrate_schema_versions SET dirty_version = '2.3.0', dirty_name = 'memory_2_3_0', \
             dirty_direction = 'up', dirty_since = 1 WHERE table_name = 'memory'",
        )
        .await;
        let before = db.fingerprint().await;
        let err = manager.down().table("session").target("2.0.0").await.expect_err("refused");
        assert!(matches!(&err, migrate::Error::Dirty { table, .. } if table == "memory"), "{err:?}");
        assert_eq!(db.fingerprint().await, before, "nothing changed");
    }
}
