//! SQL files that fail, on every backend: a template that cannot be rendered refuses the run
//! before anything runs (no journal mark, no statement), and a statement that fails in a file
//! split for running outside a transaction is named by its place in the file.

use migrate::testing::{Backend, TestDatabase};
use migrate::{Error, MigrationManager};

migrate::migrations! {}

migrate::sql_dir!(table = "ledger", dir = "tests/sql_failures/ledger");
migrate::sql_dir!(
    table = "index_on_schema",
    dir = "tests/sql_failures/index_on_schema"
);

async fn fail_where_they_should(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");

    // `{{schema}}` with no schema configured: before, the first statement created the table,
    // the second failed to render, and the step was left marked dirty.
    let err = manager
        .up()
        .table("index_on_schema")
        .await
        .expect_err("no schema to render");
    let text = err.to_string();
    assert!(
        matches!(err, Error::Template(_))
            && text.contains("index_on_schema@1.0.0")
            && text.contains("001_create.sql"),
        "{text}"
    );
    let status = manager.status().await.expect("status");
    let table = status
        .iter()
        .find(|s| s.table == "index_on_schema")
        .expect("its status");
    assert!(
        table.dirty.is_none() && table.current.is_none(),
        "{table:?}"
    );
    assert!(
        !db.executor()
            .await
            .expect("executor")
            .table_exists("index_on_schema")
            .await
            .expect("catalog"),
        "its first statement did not run"
    );

    // install_fresh checks the same before it creates anything.
    let Some(new) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let installer = MigrationManager::new(new.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");
    let err = installer
        .install_fresh()
        .await
        .expect_err("no schema to render");
    assert!(matches!(err, Error::Template(_)), "{err}");
    let nothing = installer.status().await.expect("status");
    assert!(
        nothing
            .iter()
            .all(|s| s.current.is_none() && s.dirty.is_none()),
        "{nothing:?}"
    );

    // The second of two statements fails: the error says which.
    let err = manager
        .up()
        .table("ledger")
        .await
        .expect_err("a duplicate key");
    let text = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(text.contains("statement 2 of 2 of the file"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sqlite() {
    fail_where_they_should(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres() {
    fail_where_they_should(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mysql() {
    fail_where_they_should(Backend::MySql).await;
}
