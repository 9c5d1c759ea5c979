//! SQL-file migrations on every backend: each naming style, downs, a no-transaction file,
//! templates and their escape, and SQL steps sharing a version line with Rust steps. The
//! round-trip tests prove every step up, down and up again; the others check what ran.

use migrate::report::ReportStatus;
use migrate::testing::{Backend, TestDatabase};
use migrate::MigrationManager;

migrate::migrations! {}

migrate::sql_dir!(
    table = "accounts",
    dir = "tests/sql_files/accounts",
    down = "required"
);
migrate::sql_dir!(table = "notes", dir = "tests/sql_files/notes");
migrate::sql_dir!(table = "events", dir = "tests/sql_files/events");
migrate::sql_dir!(
    table = "profiles",
    dir = "tests/sql_files/profiles",
    parent = "1.0.0"
);

// A Rust step starts the `profiles` line, the SQL file continues it, and a Rust step names the
// file's version as its parent.
#[migrate::migration(table = "profiles", version = "1.0.0", down = drop_profiles)]
async fn create_profiles(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE {{tables.profiles}} (id INTEGER PRIMARY KEY)")
        .await?;
    Ok(())
}
async fn drop_profiles(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE {{tables.profiles}}").await?;
    Ok(())
}

#[migrate::migration(table = "profiles", version = "3.0.0", parent = "2.0.0", down = drop_avatar)]
async fn add_avatar(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE {{tables.profiles}} ADD COLUMN avatar VARCHAR(200)")
        .await?;
    Ok(())
}
async fn drop_avatar(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("ALTER TABLE {{tables.profiles}} DROP COLUMN avatar")
        .await?;
    Ok(())
}

migrate::round_trip_tests!(MIGRATIONS);

fn steps(report: &migrate::report::Report) -> Vec<String> {
    report
        .applied
        .iter()
        .map(|a| format!("{}@{} {}", a.step.table, a.step.version, a.step.name))
        .collect()
}

async fn files_apply_in_version_order_and_come_back_down(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let manager =
        MigrationManager::new(db.executor().await.expect("connect"), [&MIGRATIONS]).expect("graph");
    let plan = manager.up().dry_run(true).await.expect("dry run");
    assert_eq!(plan.status, ReportStatus::DryRun);
    let first = plan
        .planned
        .iter()
        .find(|p| p.step.table == "accounts")
        .expect("accounts planned");
    let sql = first.sql.as_deref().expect("a SQL step shows its SQL");
    let dialect = match backend {
        Backend::Sqlite => migrate::Dialect::Sqlite,
        Backend::Postgres => migrate::Dialect::Postgres,
        Backend::MySql => migrate::Dialect::MySql,
    };
    let quoted = dialect.quote_ident("accounts");
    assert!(
        sql.contains(&format!("CREATE TABLE {quoted}")),
        "rendered: {sql}"
    );
    let rust = plan
        .planned
        .iter()
        .find(|p| p.step.table == "profiles" && p.step.version.major == 1)
        .expect("profiles planned");
    assert_eq!(rust.sql, None, "a Rust step has no SQL to show");

    let report = manager.up().await.expect("up");
    let applied = steps(&report);
    let expected = [
        "accounts@1.0.0 001_create_accounts",
        "accounts@2.0.0 002_add_email",
        "accounts@3.0.0 003_add_nickname",
        "notes@1.0.0 V1__create_notes",
        "notes@1.1.0 V1_1__add_body",
        "notes@2.0.0 V2__seed",
        "events@20251025120000.0.0 20251025120000_create_events",
        "events@20251026090000.0.0 20251026_090000_add_kind",
        "profiles@1.0.0 create_profiles",
        "profiles@2.0.0 2.0.0_add_bio",
        "profiles@3.0.0 add_avatar",
    ];
    assert_eq!(applied.len(), expected.len(), "{applied:#?}");
    let position = |step: &str| {
        applied
            .iter()
            .position(|s| s == step)
            .unwrap_or_else(|| panic!("{step} in {applied:#?}"))
    };
    // Each table's files apply in version order (tables may interleave).
    for pair in expected.windows(2) {
        let table = |s: &str| s.split('@').next().unwrap_or_default().to_string();
        if table(pair[0]) == table(pair[1]) {
            assert!(
                position(pair[0]) < position(pair[1]),
                "{} before {} in {applied:#?}",
                pair[0],
                pair[1]
            );
        }
    }
    for step in expected {
        position(step);
    }
    let history = manager.history(100).await.expect("history");
    assert!(
        history.iter().all(|h| h.checksum.starts_with("sha256:")),
        "{history:#?}"
    );
    assert!(manager.pending().await.expect("pending").is_empty());
    let infos = manager.applied().await.expect("applied");
    let nickname = infos
        .iter()
        .find(|i| i.step.name == "003_add_nickname")
        .expect("listed");
    assert!(
        !nickname.transactional,
        "the marker makes the file journalled"
    );
    assert_eq!(
        nickname.location,
        "tests/sql_files/accounts/003_add_nickname.sql:1"
    );

    // `\{{` in V2__seed is a literal pair of braces, not a template.
    let body = notes_body(backend, db.url()).await;
    assert_eq!(body, r#"{{"greeting": "hello"}}"#);

    let seeded = manager
        .status()
        .await
        .expect("status")
        .into_iter()
        .find(|s| s.table == "notes")
        .expect("notes");
    assert_eq!(
        seeded.current.map(|v| v.to_string()).as_deref(),
        Some("2.0.0")
    );
    // V2__seed has no down: it is irreversible, and down stops before it.
    let err = manager
        .down()
        .table("notes")
        .to_base()
        .await
        .expect_err("irreversible");
    assert!(matches!(err, migrate::Error::Irreversible { .. }), "{err}");
    manager
        .down()
        .table("accounts")
        .to_base()
        .await
        .expect("accounts down");
    manager
        .down()
        .table("profiles")
        .target("1.0.0")
        .await
        .expect("profiles down");
    assert_eq!(manager.current_version("accounts").await.expect("v"), None);
}

/// The body V2__seed wrote, read outside the framework.
async fn notes_body(backend: Backend, url: &str) -> String {
    let sql = "SELECT body FROM notes WHERE id = 1";
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
            sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("body")
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(url).await.expect("postgres");
            sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("body")
        }
        Backend::MySql => {
            let pool = sqlx::MySqlPool::connect(url).await.expect("mysql");
            sqlx::query_scalar(sql)
                .fetch_one(&pool)
                .await
                .expect("body")
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_run_on_sqlite() {
    files_apply_in_version_order_and_come_back_down(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_run_on_postgres() {
    files_apply_in_version_order_and_come_back_down(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_run_on_mysql() {
    files_apply_in_version_order_and_come_back_down(Backend::MySql).await;
}

#[test]
fn the_next_rust_step_continues_a_line_that_files_share() {
    let source = migrate::scaffold::new_rust("profiles", "add nickname").expect("scaffold");
    assert!(
        source.contains("table = \"profiles\", version = \"3.1.0\", parent = \"3.0.0\""),
        "{source}"
    );
    let source = migrate::scaffold::new_rust("accounts", "x").expect("scaffold");
    assert!(
        source.contains("version = \"3.1.0\", parent = \"3.0.0\""),
        "{source}"
    );
}

#[test]
fn a_rust_step_for_a_table_the_tracking_tables_cannot_keep_is_not_scaffolded() {
    for (table, why) in [("a\0b", "contains NUL"), (" ", "is blank")] {
        let err = migrate::scaffold::new_rust(table, "x").expect_err(table);
        assert!(
            matches!(&err, migrate::Error::Config(text) if text.ends_with(why)),
            "{err}"
        );
    }
}

/// `<stem>.fresh.sql` is the step's fresh install: `install_fresh` creates `accounts` with it at
/// 2.0.0 and runs 003 on top; the round-trip tests compare that schema with the upgraded one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_file_installs_its_table_at_its_version() {
    let Some(db) = TestDatabase::create(Backend::Sqlite)
        .await
        .expect("database")
    else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    let report = manager.install_fresh().await.expect("install fresh");
    let accounts: Vec<String> = report
        .applied
        .iter()
        .filter(|a| a.step.table == "accounts")
        .map(|a| format!("{}@{}", a.step.name, a.step.version))
        .collect();
    assert_eq!(
        accounts,
        ["002_add_email.fresh@2.0.0", "003_add_nickname@3.0.0"]
    );
}
