//! Schema snapshots on every backend: stable across runs and across a rebuild of a table,
//! blind to the tracking tables, and showing a dropped-and-re-added column as moved.

use migrate::testing::{block_on, snapshot, Backend, TestDatabase};

migrate::migrations! {}

#[migrate::migration(table = "marker", version = "1.0.0", down = drop_marker)]
async fn create_marker(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE marker (id INTEGER PRIMARY KEY)")
        .await?;
    Ok(())
}
async fn drop_marker(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE marker").await?;
    Ok(())
}

async fn exec(db: &TestDatabase, statements: &[String]) {
    use sqlx::{AssertSqlSafe, Connection};
    let url = db.url();
    for sql in statements {
        let q = || sqlx::raw_sql(AssertSqlSafe(sql.clone()));
        let done = match db.backend() {
            Backend::Sqlite => q()
                .execute(&mut sqlx::SqliteConnection::connect(url).await.unwrap())
                .await
                .map(|_| ()),
            Backend::Postgres => q()
                .execute(&mut sqlx::PgConnection::connect(url).await.unwrap())
                .await
                .map(|_| ()),
            Backend::MySql => q()
                .execute(&mut sqlx::MySqlConnection::connect(url).await.unwrap())
                .await
                .map(|_| ()),
        };
        done.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
}

fn schema_sql(backend: Backend) -> Vec<String> {
    let mut sql = vec![
        "CREATE TABLE owner (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE)"
            .to_string(),
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'x', \
         note VARCHAR(10), owner_id INTEGER REFERENCES owner (id), price INTEGER)"
            .to_string(),
        "CREATE INDEX idx_item_name ON item (name)".to_string(),
        "CREATE VIEW cheap_items AS SELECT id, name FROM item WHERE price < 10".to_string(),
    ];
    if backend == Backend::Postgres {
        sql.push("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')".to_string());
        sql.push("CREATE SEQUENCE ticket_seq START 100".to_string());
    }
    sql
}

/// Rebuilds `item` the way SQLite forces (copy, drop, rename), keeping its definition.
fn rebuild_sql(backend: Backend) -> Vec<String> {
    let create =
        "CREATE TABLE item_new (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL DEFAULT 'x', \
                  note VARCHAR(10), owner_id INTEGER REFERENCES owner (id), price INTEGER)";
    let mut sql = vec!["DROP VIEW cheap_items".to_string(), create.to_string()];
    sql.push("INSERT INTO item_new SELECT * FROM item".into());
    sql.push("DROP TABLE item".into());
    match backend {
        Backend::MySql => sql.push("RENAME TABLE item_new TO item".into()),
        _ => sql.push("ALTER TABLE item_new RENAME TO item".into()),
    }
    if backend == Backend::Postgres {
        // PostgreSQL keeps the names a table was created with; a careful rebuild renames them.
        sql.push("ALTER TABLE item RENAME CONSTRAINT item_new_pkey TO item_pkey".into());
        sql.push(
            "ALTER TABLE item RENAME CONSTRAINT item_new_owner_id_fkey TO item_owner_id_fkey"
                .into(),
        );
    }
    sql.push("CREATE INDEX idx_item_name ON item (name)".into());
    sql.push("CREATE VIEW cheap_items AS SELECT id, name FROM item WHERE price < 10".into());
    sql
}

fn stable_across_runs_and_rebuilds(backend: Backend) {
    block_on(async {
        let Some(db) = TestDatabase::create(backend).await.expect("database") else {
            return;
        };
        exec(&db, &schema_sql(backend)).await;
        let first = snapshot(db.url(), None, migrate::backend::DEFAULT_TRACKING_TABLE)
            .await
            .expect("snapshot");
        let second = snapshot(db.url(), None, migrate::backend::DEFAULT_TRACKING_TABLE)
            .await
            .expect("snapshot");
        assert_eq!(first, second, "stable across runs");
        let item = &first.tables["item"];
        assert_eq!(item.order, ["id", "name", "note", "owner_id", "price"]);
        assert!(
            item.columns["name"]
                .default
                .as_deref()
                .unwrap_or("")
                .contains('x'),
            "{item:?}"
        );
        assert!(!item.columns["name"].nullable);
        assert!(item.indexes.contains_key("idx_item_name"), "{item:?}");
        assert!(!first.views.is_empty());
        if backend == Backend::Postgres {
            assert_eq!(first.enums["mood"], ["sad", "ok", "happy"]);
            assert!(first.sequences.contains_key("ticket_seq"));
        }

        exec(&db, &rebuild_sql(backend)).await;
        let rebuilt = snapshot(db.url(), None, migrate::backend::DEFAULT_TRACKING_TABLE)
            .await
            .expect("snapshot");
        let diff = first.diff(&rebuilt);
        assert!(
            diff.is_empty(),
            "a rebuild of the same table changes nothing:\n{diff}"
        );

        // The tracking tables are not part of the schema.
        let manager =
            migrate::MigrationManager::new(db.executor().await.unwrap(), [&MIGRATIONS]).unwrap();
        manager.up().await.expect("up");
        let with_tracking = snapshot(db.url(), None, migrate::backend::DEFAULT_TRACKING_TABLE)
            .await
            .expect("snapshot");
        let diff = rebuilt.diff(&with_tracking);
        assert_eq!(
            diff.changes,
            ["table marker: added (id)"],
            "only the migration's table shows"
        );

        // A column dropped and re-added moves to the end: shown as a move, not as a change.
        exec(&db, &["ALTER TABLE item DROP COLUMN note".to_string()]).await;
        let dropped = snapshot(db.url(), None, migrate::backend::DEFAULT_TRACKING_TABLE)
            .await
            .expect("snapshot");
        exec(
            &db,
            &["ALTER TABLE item ADD COLUMN note VARCHAR(10)".to_string()],
        )
        .await;
        let readded = snapshot(db.url(), None, migrate::backend::DEFAULT_TRACKING_TABLE)
            .await
            .expect("snapshot");
        let removed = with_tracking.diff(&dropped);
        assert!(
            removed
                .changes
                .iter()
                .any(|c| c.starts_with("column item.note: removed")),
            "{removed}"
        );
        let diff = with_tracking.diff(&readded);
        assert!(diff.is_empty_ignoring_moves(), "only a move: {diff}");
        assert!(
            diff.moves
                .iter()
                .any(|m| m.column == "item.note" && m.from == 3 && m.to == 5),
            "{diff}"
        );
    });
}

#[test]
fn snapshots_are_stable_on_sqlite() {
    stable_across_runs_and_rebuilds(Backend::Sqlite);
}

#[test]
fn snapshots_are_stable_on_postgres() {
    stable_across_runs_and_rebuilds(Backend::Postgres);
}

#[test]
fn snapshots_are_stable_on_mysql() {
    stable_across_runs_and_rebuilds(Backend::MySql);
}

/// Two databases with the same schema compare equal, views included (MariaDB writes view
/// bodies with the database's own name), and a CHECK reads as its clause.
fn two_databases_compare_equal(backend: Backend) {
    block_on(async {
        let Some(a) = TestDatabase::create(backend).await.expect("database") else {
            return;
        };
        let Some(b) = TestDatabase::create(backend).await.expect("database") else {
            return;
        };
        let mut sql = schema_sql(backend);
        sql.push("CREATE TABLE priced (id INTEGER PRIMARY KEY, price INTEGER, CONSTRAINT price_positive CHECK (price >= 0))".to_string());
        exec(&a, &sql).await;
        exec(&b, &sql).await;
        let tracking = migrate::backend::DEFAULT_TRACKING_TABLE;
        let left = snapshot(a.url(), None, tracking).await.expect("snapshot");
        let right = snapshot(b.url(), None, tracking).await.expect("snapshot");
        let diff = left.diff(&right);
        assert!(
            diff.is_empty(),
            "{}: two databases, one schema:\n{diff}",
            backend.name()
        );
        assert!(left.views.contains_key("cheap_items"));
        if backend == Backend::MySql {
            let check = &left.tables["priced"].constraints["price_positive"];
            assert!(
                check.starts_with("CHECK (") && !check.contains("()"),
                "{check}"
            );
        }
    });
}

#[test]
fn two_databases_compare_equal_on_sqlite() {
    two_databases_compare_equal(Backend::Sqlite);
}

#[test]
fn two_databases_compare_equal_on_postgres() {
    two_databases_compare_equal(Backend::Postgres);
}

#[test]
fn two_databases_compare_equal_on_mysql() {
    two_databases_compare_equal(Backend::MySql);
}
