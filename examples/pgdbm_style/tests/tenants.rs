//! The library's files on three tenant schemas of one PostgreSQL database, and on SQLite.

use migrate::testing::{Backend, TestDatabase};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_schemas_each_get_their_own_tables_and_tracking() {
    let Some(db) = TestDatabase::create(Backend::Postgres)
        .await
        .expect("postgres")
    else {
        return;
    };
    let schemas = ["tenant_a", "tenant_b", "tenant_c"];
    let applied = pgdbm_style::migrate_tenants(db.url(), &schemas)
        .await
        .expect("migrate");
    assert_eq!(applied, [3, 3, 3]);
    let again = pgdbm_style::migrate_tenants(db.url(), &schemas)
        .await
        .expect("again");
    assert_eq!(again, [0, 0, 0], "each schema is up to date");

    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(db.url())
        .await
        .expect("connect");
    for schema in schemas {
        let (users, settings): (i64, String) = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*), MAX(settings) FROM \"{schema}\".users"
        )))
        .fetch_one(&mut conn)
        .await
        .expect("the schema's own users table");
        assert_eq!(
            (users, settings.as_str()),
            (1, "{\"role\": {\"name\": \"admin\"}}")
        );
        let tracked: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM \"{schema}\".migrate_schema_versions_history"
        )))
        .fetch_one(&mut conn)
        .await
        .expect("the schema's own tracking");
        assert_eq!(tracked, 3);
    }
    let public: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut conn)
    .await
    .expect("catalog");
    assert_eq!(
        public,
        Vec::<String>::new(),
        "nothing lands outside the tenant schemas"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_files_run_on_sqlite_and_come_back_down() {
    let Some(db) = TestDatabase::create(Backend::Sqlite).await.expect("sqlite") else {
        return;
    };
    let manager = migrate::MigrationManager::new(
        db.executor().await.expect("connect"),
        [&pgdbm_style::MIGRATIONS],
    )
    .expect("graph");
    assert_eq!(manager.up().await.expect("up").applied.len(), 3);
    assert_eq!(
        manager.down().to_base().await.expect("down").applied.len(),
        3
    );
    assert_eq!(manager.current_version("app").await.expect("version"), None);
}
