//! The live drift check on every backend: `migrate::drift::DriftCheck` and `verify --schema`.
//! A database migrated by the framework matches a scratch database migrated to the same
//! versions; a hand-made change is named; the check writes nothing to the live database and
//! removes its scratch database.

use crate::cli::{cli, url_with_password};
use crate::harness::{each_backend, TestDb};
use crate::MIGRATIONS;
use migrate::cli::exit;
use migrate::drift::DriftCheck;
use migrate::testing::Backend;
use migrate::Error;

/// The scratch database named in a report (`scheme://host/name`) is gone.
async fn assert_scratch_removed(db: &TestDb, scratch: &str) {
    let name = scratch.rsplit('/').next().unwrap_or_default();
    assert!(name.starts_with("migrate_drift_"), "{scratch}");
    match db.backend() {
        Backend::Sqlite => {
            // The file, and whatever beside it bears its name (SQLite's, the run lock's).
            let path = std::path::Path::new(scratch.trim_start_matches("sqlite://"));
            let dir = path.parent().expect("the scratch file's directory");
            let left: Vec<_> = std::fs::read_dir(dir)
                .expect("the scratch file's directory")
                .filter_map(|entry| entry.ok())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .filter(|file| file.starts_with(name))
                .collect();
            assert!(
                left.is_empty(),
                "left behind in {}: {left:?}",
                dir.display()
            );
        }
        Backend::Postgres => {
            let left = db
                .rows(&format!(
                    "SELECT datname FROM pg_database WHERE datname = '{name}'"
                ))
                .await;
            assert!(left.is_empty(), "{name} was left behind");
        }
        Backend::MySql => {
            let left = db
                .rows(&format!(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '{name}'"
                ))
                .await;
            assert!(left.is_empty(), "{name} was left behind");
        }
    }
}

each_backend! {
    async fn a_migrated_database_matches_and_a_hand_change_is_named(db) {
        db.manager().await.up().await.expect("up");
        let check = DriftCheck::new([&MIGRATIONS]);
        let clean = check.run(db.url()).await.expect("drift check");
        assert!(clean.is_clean(), "{clean}");
        assert!(clean.diff.is_empty(), "{clean}");
        assert!(
            clean.versions.iter().any(|t| t.table == "session"
                && t.version.as_ref().map(ToString::to_string).as_deref() == Some("2.3.0")),
            "{:?}",
            clean.versions
        );
        assert!(clean.to_string().contains("session@2.3.0"), "{clean}");
        assert_scratch_removed(&db, &clean.scratch).await;

        db.exec("ALTER TABLE session ADD COLUMN rogue INTEGER").await;
        db.exec("CREATE INDEX idx_session_rogue ON session (rogue)").await;
        let untouched = db.fingerprint().await;
        let drifted = check.run(db.url()).await.expect("drift check");
        assert!(!drifted.is_clean(), "{drifted}");
        let lines = &drifted.diff.changes;
        assert!(
            lines.iter().any(|l| l.starts_with("column session.rogue: added")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("idx_session_rogue: added")),
            "{lines:?}"
        );
        assert_eq!(lines.len(), 2, "nothing else differs: {lines:?}");
        assert_eq!(db.fingerprint().await, untouched, "the check wrote nothing to the live database");
        assert_scratch_removed(&db, &drifted.scratch).await;
    }

    async fn a_table_named_like_the_tracking_tables_is_compared_like_any_other(db) {
        db.manager().await.up().await.expect("up");
        // The default tracking table is `migrate_schema_versions`: its own tables are left out
        // of the comparison by their exact names, not by that prefix.
        db.exec("CREATE TABLE migrate_schema_versions_notes (id INTEGER)").await;
        let drifted = DriftCheck::new([&MIGRATIONS]).run(db.url()).await.expect("drift check");
        let lines = &drifted.diff.changes;
        assert!(
            lines.iter().any(|l| l.contains("migrate_schema_versions_notes")),
            "{lines:?}"
        );
        assert!(
            !lines.iter().any(|l| l.contains("migrate_schema_versions_history")
                || l.contains("migrate_schema_versions_lock")),
            "the framework's own tables stay out: {lines:?}"
        );
        assert_scratch_removed(&db, &drifted.scratch).await;
    }

    async fn an_ignored_table_is_left_out_with_its_triggers_and_sequences(db) {
        db.manager().await.up().await.expect("up");
        // Another tool's version table, with what belongs to it: a trigger everywhere, and on
        // PostgreSQL the sequence of its `serial` column and a policy.
        let statements: &[&str] = match db.backend() {
            Backend::Sqlite => &[
                "CREATE TABLE tool_versions (id INTEGER PRIMARY KEY, version TEXT)",
                "CREATE TRIGGER tool_versions_touch AFTER INSERT ON tool_versions \
                 BEGIN UPDATE tool_versions SET version = version WHERE id = NEW.id; END",
            ],
            Backend::Postgres => &[
                "CREATE TABLE tool_versions (id serial PRIMARY KEY, version TEXT)",
                "CREATE TRIGGER tool_versions_touch BEFORE UPDATE ON tool_versions \
                 FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()",
                "CREATE POLICY tool_versions_all ON tool_versions USING (true)",
            ],
            Backend::MySql => &[
                "CREATE TABLE tool_versions (id INTEGER PRIMARY KEY, version TEXT)",
                "CREATE TRIGGER tool_versions_touch BEFORE INSERT ON tool_versions \
                 FOR EACH ROW SET NEW.version = COALESCE(NEW.version, '')",
            ],
        };
        for sql in statements {
            db.exec(sql).await;
        }
        let seen = DriftCheck::new([&MIGRATIONS]).run(db.url()).await.expect("drift check");
        let lines = &seen.diff.changes;
        assert!(
            lines.iter().any(|l| l.starts_with("trigger tool_versions.tool_versions_touch")),
            "{lines:?}"
        );
        if db.backend() == Backend::Postgres {
            assert!(
                lines.iter().any(|l| l.starts_with("sequence tool_versions.tool_versions_id_seq")),
                "{lines:?}"
            );
        }
        let ignored = DriftCheck::new([&MIGRATIONS])
            .ignore_table("tool_versions")
            .run(db.url())
            .await
            .expect("drift check");
        assert!(ignored.is_clean(), "{ignored}");
        assert_scratch_removed(&db, &ignored.scratch).await;
    }

    async fn a_database_part_way_up_is_compared_at_its_own_versions(db) {
        let manager = db.manager().await;
        manager.up().table("session").target("2.1.0").await.expect("up part way");
        let report = DriftCheck::new([&MIGRATIONS]).run(db.url()).await.expect("drift check");
        assert!(report.is_clean(), "{report}");
        let session = report.versions.iter().find(|t| t.table == "session").expect("session");
        assert_eq!(session.version.as_ref().map(ToString::to_string).as_deref(), Some("2.1.0"));
        assert!(
            report.versions.iter().filter(|t| t.table != "session").all(|t| t.version.is_none()),
            "{:?}",
            report.versions
        );
        // A column that only 2.3.0 adds, made by hand, is drift at 2.1.0.
        db.exec("ALTER TABLE session ADD COLUMN state TEXT").await;
        let drifted = DriftCheck::new([&MIGRATIONS]).run(db.url()).await.expect("drift check");
        assert!(
            drifted.diff.changes.iter().any(|l| l.starts_with("column session.state: added")),
            "{drifted}"
        );
    }

    async fn a_scratch_database_that_is_not_empty_is_refused(db) {
        db.manager().await.up().await.expect("up");
        let err = DriftCheck::new([&MIGRATIONS])
            .scratch_url(db.url())
            .run(db.url())
            .await
            .expect_err("the live database is no scratch database");
        assert!(matches!(err, Error::Config(_)), "{err:?}");
        assert!(err.to_string().contains("is not empty"), "{err}");

        // A scratch database whose tables were dropped by hand still records their versions,
        // which would skip every step there (before, each live table then read as "added"),
        // and a view left behind is an object too.
        let Some(scratch) = TestDb::new(db.backend()).await else { return };
        scratch.manager().await.up().await.expect("up");
        for table in ["memory", "metrics", "eval", "session"] {
            scratch.exec(&format!("DROP TABLE {table}")).await;
        }
        let err = DriftCheck::new([&MIGRATIONS])
            .scratch_url(scratch.url())
            .run(db.url())
            .await
            .expect_err("the tracking rows remain");
        assert!(err.to_string().contains("rows in the tracking table `migrate_schema_versions`"), "{err}");
        let Some(other) = TestDb::new(db.backend()).await else { return };
        other.exec("CREATE VIEW leftover AS SELECT 1 AS one").await;
        let err = DriftCheck::new([&MIGRATIONS])
            .scratch_url(other.url())
            .run(db.url())
            .await
            .expect_err("a view remains");
        assert!(err.to_string().contains("view leftover"), "{err}");
    }

    async fn a_scratch_database_of_another_kind_is_refused(db) {
        let dir = tempfile::tempdir().expect("dir");
        let scratch = match db.backend() {
            Backend::Sqlite => "postgres://nobody@127.0.0.1:9/none".to_string(),
            _ => format!("sqlite://{}?mode=rwc", dir.path().join("scratch.db").display()),
        };
        let err = DriftCheck::new([&MIGRATIONS])
            .scratch_url(scratch.as_str())
            .run(db.url())
            .await
            .expect_err("two kinds of database");
        assert!(matches!(err, Error::Config(_)) && err.to_string().contains("one kind"), "{err}");
        assert!(!dir.path().join("scratch.db").exists());
    }

    async fn verify_schema_passes_then_names_a_hand_change(db) {
        let url = url_with_password(&db).await;
        assert_eq!(cli(&url, &["up"]).await.code, exit::OK);
        let clean = cli(&url, &["verify", "--schema"]).await;
        assert_eq!(clean.code, exit::OK, "{}{}", clean.stdout, clean.stderr);
        assert!(
            clean.stdout.contains("ok: the schema is what the migrations build"),
            "{}",
            clean.stdout
        );

        db.exec("ALTER TABLE session ADD COLUMN rogue INTEGER").await;
        let drifted = cli(&url, &["verify", "--schema-drift", "--json"]).await;
        assert_eq!(drifted.code, exit::DRIFT, "{}{}", drifted.stdout, drifted.stderr);
        let doc = drifted.json();
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["schema"]["clean"], false);
        let differences = doc["schema"]["differences"].as_array().expect("differences");
        assert!(
            differences
                .iter()
                .any(|d| d.as_str().is_some_and(|d| d.starts_with("column session.rogue: added"))),
            "{doc}"
        );
        let text = cli(&url, &["verify", "--schema"]).await;
        assert_eq!(text.code, exit::DRIFT);
        assert!(text.stdout.contains("schema drift:") && text.stdout.contains("session.rogue"), "{}", text.stdout);

        // A bare --schema names no schema anywhere else.
        let bare = cli(&url, &["status", "--schema"]).await;
        assert_eq!(bare.code, exit::USAGE, "{}{}", bare.stdout, bare.stderr);
        assert!(bare.stderr.contains("--schema needs a name"), "{}", bare.stderr);

        // A dirty database has no versions to compare at: verify says it is dirty (exit 6),
        // not that the arguments were wrong (exit 2).
        db.exec(
            "UPDATE migrate_schema_versions SET dirty_version = '2.3.0', dirty_name = 'x', \
             dirty_direction = 'up', dirty_since = 1 WHERE table_name = 'session'",
        )
        .await;
        let dirty = cli(&url, &["verify", "--schema-drift"]).await;
        assert_eq!(dirty.code, exit::DIRTY, "{}{}", dirty.stdout, dirty.stderr);
        assert!(dirty.stderr.contains("schema comparison skipped"), "{}", dirty.stderr);
    }
}

/// A PostgreSQL schema other than `public` is compared in the scratch database's schema of the
/// same name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_schema_is_compared_in_its_own_schema() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let options = migrate::ConnectOptions::new().schema("tenant_a");
    let executor = migrate::connect_with(db.url(), &options)
        .await
        .expect("connect");
    migrate::MigrationManager::new(executor, [&MIGRATIONS])
        .expect("graph")
        .up()
        .await
        .expect("up");
    let check = DriftCheck::new([&MIGRATIONS]).connect_options(options);
    let clean = check.run(db.url()).await.expect("drift check");
    assert!(clean.is_clean(), "{clean}");
    assert!(
        clean.versions.iter().any(|t| t.version.is_some()),
        "{clean}"
    );
    db.exec("ALTER TABLE tenant_a.session ADD COLUMN rogue INTEGER")
        .await;
    let drifted = check.run(db.url()).await.expect("drift check");
    assert_eq!(
        drifted.diff.changes.len(),
        1,
        "only the hand-made column: {drifted}"
    );
}

/// A MariaDB database whose default character set and collation are not the server's: every
/// table and text column the migrations make takes the database's, and so does the scratch
/// database's (a bare `CREATE DATABASE` took the server's, and every one of them was drift).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_database_with_its_own_defaults_is_compared_with_the_same_defaults() {
    let Some(db) = TestDb::new(Backend::MySql).await else {
        return;
    };
    db.exec("ALTER DATABASE CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        .await;
    db.manager().await.up().await.expect("up");
    let report = DriftCheck::new([&MIGRATIONS])
        .run(db.url())
        .await
        .expect("drift check");
    assert!(report.is_clean(), "{report}");
    assert_scratch_removed(&db, &report.scratch).await;
}

/// A scratch database with extensions installed beforehand (ones the migrations need and
/// cannot create without a superuser) is empty: the domain `earth` that `earthdistance`
/// installs is the extension's, left out of the snapshot (the scratch was refused as "not
/// empty (type earth)"); the extensions themselves show as differences, since the live
/// database lacks them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scratch_database_with_an_extension_installed_is_empty() {
    let Some(live) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let Some(scratch) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    live.manager().await.up().await.expect("up");
    scratch.exec("CREATE EXTENSION cube").await;
    scratch.exec("CREATE EXTENSION earthdistance").await;
    let report = DriftCheck::new([&MIGRATIONS])
        .scratch_url(scratch.url())
        .run(live.url())
        .await
        .expect("an extension's objects are no leftovers");
    let text = report.to_string();
    assert!(!text.contains("type earth"), "{text}");
    assert!(text.contains("extension earthdistance"), "{text}");
}

/// A scratch database the server will not create (a role without `CREATEDB`) is the server's
/// answer, not a usage mistake: category `Other` (the CLI's exit 1), not `BadInput` (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scratch_database_the_server_will_not_create_is_a_database_error() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let database = db.url().rsplit('/').next().unwrap_or_default().to_string();
    let role = format!("nocreate_{database}");
    db.exec(&format!("CREATE ROLE {role} LOGIN NOCREATEDB"))
        .await;
    let url = crate::fleet::as_role(db.url(), &role);
    let err = DriftCheck::new([&MIGRATIONS])
        .run(&url)
        .await
        .expect_err("no right to create a database");
    db.exec(&format!("DROP ROLE {role}")).await;
    assert_eq!(
        (err.category(), err.kind()),
        (migrate::error::ErrorCategory::Other, "Database"),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("cannot create the scratch database"),
        "{err}"
    );
}
