//! Migrations whose bodies only execute string literals, on every backend: `#[migration]`
//! rewrites such a body into one call that runs its statements (no future of its own for rustc
//! to check), and what runs must be what the body says: each statement in order, templates
//! rendered, stopping at the first error, which arrives as the body's `?` would pass it on. The
//! crate denies `dead_code` (a function registered this way counts as used) and warnings (one
//! the rewritten function caused would fail the build), and the statement bodies forbid
//! `unused_mut` and `unused_variables`: a lint level the attribute added inside them (an
//! `allow(unused_mut)`, say) is an error under `forbid`.

#![deny(dead_code, warnings)]

use migrate::backend::MigrationFn;
use migrate::testing::{Backend, TestDatabase};
use migrate::{Error, MigrationManager};

migrate::migrations! {}

#[migrate::migration(table = "listed", version = "1.0.0", down = drop_listed)]
#[forbid(unused_mut, unused_variables)]
async fn create_listed(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE {{tables.listed}} (id INTEGER PRIMARY KEY, note VARCHAR(40))")
        .await?;
    Ok(())
}

async fn drop_listed(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE {{tables.listed}}").await?;
    Ok(())
}

/// Three statements, one a raw string, run in order (the third needs the first two).
#[migrate::migration(table = "listed", version = "1.1.0", parent = "1.0.0", irreversible)]
#[forbid(unused_mut, unused_variables)]
async fn fill_listed(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("INSERT INTO {{tables.listed}} (id, note) VALUES (1, 'one')")
        .await?;
    db.execute(r#"INSERT INTO {{tables.listed}} (id, note) VALUES (2, 'two')"#)
        .await?;
    db.execute("UPDATE {{tables.listed}} SET note = 'three' WHERE id = (SELECT MAX(id) FROM (SELECT id FROM {{tables.listed}}) AS seen)")
        .await?;
    Ok(())
}

/// No statement at all.
#[migrate::migration(table = "listed", version = "1.2.0", parent = "1.1.0", irreversible)]
#[forbid(unused_mut, unused_variables)]
async fn nothing_to_do(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

/// Not only statements: registered as itself, and it checks what the ones before it did.
#[migrate::migration(table = "listed", version = "1.3.0", parent = "1.2.0", irreversible)]
async fn check_listed(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    let rows = db
        .query_i64("SELECT COUNT(*) FROM {{tables.listed}} WHERE (id = 1 AND note = 'one') OR (id = 2 AND note = 'three')")
        .await?;
    if rows != 2 {
        return Err(Error::msg(format!("fill_listed left {rows} of its 2 rows")));
    }
    Ok(())
}

/// Outside a transaction, so that what ran before the failing statement stays: the third
/// statement fails, and the fourth must not run.
#[migrate::migration(
    table = "halting",
    version = "1.0.0",
    transaction = false,
    irreversible
)]
async fn halt_at_the_duplicate(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE {{tables.halting}} (id INTEGER PRIMARY KEY)")
        .await?;
    db.execute("INSERT INTO {{tables.halting}} (id) VALUES (1)")
        .await?;
    db.execute("INSERT INTO {{tables.halting}} (id) VALUES (1)")
        .await?;
    db.execute("CREATE TABLE halting_after (id INTEGER PRIMARY KEY)")
        .await?;
    Ok(())
}

async fn run_as_written(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let executor = db.executor().await.expect("executor");
    let manager = MigrationManager::new(executor, [&MIGRATIONS]).expect("graph");

    manager
        .up()
        .table("listed")
        .await
        .expect("the listed statements run in order");
    assert_eq!(
        manager.current_version("listed").await.expect("version"),
        Some("1.3.0".parse().expect("a version"))
    );
    let names: Vec<String> = manager
        .history(10)
        .await
        .expect("history")
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    for name in [
        "create_listed",
        "fill_listed",
        "nothing_to_do",
        "check_listed",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    // Every function is registered as itself: a statement body as its rewritten function,
    // one call that runs its statements.
    let up = |name: &str| {
        MIGRATIONS
            .migrations()
            .find(|m| m.name() == name)
            .map(|m| m.up())
            .expect("registered")
    };
    let itself: MigrationFn = check_listed;
    assert!(std::ptr::fn_addr_eq(up("check_listed"), itself));
    let itself: MigrationFn = fill_listed;
    assert!(std::ptr::fn_addr_eq(up("fill_listed"), itself));

    let err = manager
        .up()
        .table("halting")
        .await
        .expect_err("a duplicate key");
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    // The error is the database's refusal of the duplicate (not of a statement run twice), as
    // `?` passed it on: no place in a file added.
    let lower = text.to_lowercase();
    assert!(
        lower.contains("duplicate") || lower.contains("unique"),
        "{text}"
    );
    assert!(!text.contains("of the file"), "{text}");
    assert!(text.contains("halt_at_the_duplicate"), "{text}");
    let check = db.executor().await.expect("executor");
    assert!(
        check.table_exists("halting").await.expect("catalog"),
        "the first statement ran"
    );
    assert!(
        !check.table_exists("halting_after").await.expect("catalog"),
        "the statement after the failing one did not run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    run_as_written(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    run_as_written(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mysql() {
    run_as_written(Backend::MySql).await;
}
