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

/// `item`'s definition under `name`: a CHECK, a collated column and a foreign key, so a rebuild
/// has all of them to keep.
fn item_table(backend: Backend, name: &str) -> String {
    let collated = match backend {
        Backend::Sqlite => "VARCHAR(20) COLLATE NOCASE",
        Backend::Postgres => "VARCHAR(20) COLLATE \"C\"",
        Backend::MySql => "VARCHAR(20) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
    };
    format!(
        "CREATE TABLE {name} (id INTEGER PRIMARY KEY, name {collated} NOT NULL DEFAULT 'x', \
         note VARCHAR(10), owner_id INTEGER REFERENCES owner (id), price INTEGER, \
         CONSTRAINT price_not_negative CHECK (price >= 0))"
    )
}

/// A partial index (SQLite and PostgreSQL have them).
fn partial_index(backend: Backend) -> Option<String> {
    (backend != Backend::MySql)
        .then(|| "CREATE INDEX idx_item_cheap ON item (price) WHERE price < 10".to_string())
}

fn schema_sql(backend: Backend) -> Vec<String> {
    let mut sql = vec![
        "CREATE TABLE owner (id INTEGER PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE)"
            .to_string(),
        item_table(backend, "item"),
        "CREATE INDEX idx_item_name ON item (name)".to_string(),
        "CREATE VIEW cheap_items AS SELECT id, name FROM item WHERE price < 10".to_string(),
    ];
    sql.extend(partial_index(backend));
    let extra: &[&str] = match backend {
        Backend::Sqlite => &[
            "CREATE TABLE counter (id INTEGER PRIMARY KEY AUTOINCREMENT, n INTEGER, \
             doubled INTEGER GENERATED ALWAYS AS (n * 2) VIRTUAL) STRICT",
        ],
        Backend::Postgres => &[
            "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')",
            "CREATE SEQUENCE ticket_seq START 100",
            "CREATE DOMAIN positive AS INTEGER CHECK (VALUE > 0)",
            "CREATE TYPE pair AS (x INTEGER, y INTEGER)",
            "CREATE FUNCTION add_one(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS 'SELECT x + 1'",
            "CREATE PROCEDURE touch(x integer) LANGUAGE plpgsql AS $$ BEGIN PERFORM x; END $$",
            "CREATE MATERIALIZED VIEW owner_count AS SELECT count(*) AS n FROM owner",
            "CREATE INDEX idx_owner_count ON owner_count (n)",
            "CREATE TABLE measurement (id INTEGER GENERATED ALWAYS AS IDENTITY, taken DATE NOT NULL, \
             doubled INTEGER GENERATED ALWAYS AS (id * 2) STORED) PARTITION BY RANGE (taken)",
            "CREATE TABLE measurement_2026 PARTITION OF measurement FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
            "COMMENT ON TABLE owner IS 'who owns items'",
            "CREATE POLICY own_owners ON owner USING (id > 0)",
        ],
        Backend::MySql => &[
            "CREATE SEQUENCE ticket_seq START WITH 100 INCREMENT BY 5",
            "CREATE FUNCTION add_one(x INT) RETURNS INT DETERMINISTIC RETURN x + 1",
            "CREATE EVENT tidy ON SCHEDULE EVERY 1 DAY DO DELETE FROM owner WHERE id < 0",
            "CREATE TABLE counter (id INTEGER AUTO_INCREMENT PRIMARY KEY, n INTEGER, \
             doubled INTEGER AS (n * 2) VIRTUAL) DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin",
        ],
    };
    sql.extend(extra.iter().map(|s| s.to_string()));
    sql
}

/// Rebuilds `item` the way SQLite forces (copy, drop, rename), keeping its definition.
fn rebuild_sql(backend: Backend) -> Vec<String> {
    let mut sql = vec![
        "DROP VIEW cheap_items".to_string(),
        item_table(backend, "item_new"),
    ];
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
    sql.extend(partial_index(backend));
    sql.push("CREATE VIEW cheap_items AS SELECT id, name FROM item WHERE price < 10".into());
    sql
}

fn stable_across_runs_and_rebuilds(backend: Backend) {
    block_on(async {
        let Some(db) = TestDatabase::create(backend).await.expect("database") else {
            return;
        };
        exec(&db, &schema_sql(backend)).await;
        if backend == Backend::Postgres {
            // Once per database: not part of `schema_sql`, which two schemas share.
            exec(&db, &["CREATE EXTENSION hstore".to_string()]).await;
        }
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
        assert!(
            item.constraints
                .get("price_not_negative")
                .is_some_and(|c| c.contains("CHECK") && c.contains(">= 0")),
            "{item:?}"
        );
        assert!(
            item.columns["name"].data_type.contains("COLLATE"),
            "{item:?}"
        );
        if let Some(partial) = item.indexes.get("idx_item_cheap") {
            assert!(partial.to_lowercase().contains("where"), "{partial}");
        }
        assert_eq!(
            item.indexes.contains_key("idx_item_cheap"),
            backend != Backend::MySql,
            "{item:?}"
        );
        match backend {
            Backend::Sqlite => {
                let counter = &first.tables["counter"];
                assert_eq!(counter.properties["autoincrement"], "id", "{counter:?}");
                assert_eq!(counter.properties["options"], "strict", "{counter:?}");
                assert!(
                    counter.columns["doubled"]
                        .data_type
                        .contains("(n * 2) VIRTUAL"),
                    "{counter:?}"
                );
            }
            Backend::Postgres => {
                assert_eq!(first.enums["mood"], ["sad", "ok", "happy"]);
                assert!(first.sequences.contains_key("ticket_seq"));
                // A sequence a table owns (an identity column's) is named with its table.
                assert!(
                    first
                        .sequences
                        .contains_key("measurement.measurement_id_seq"),
                    "{:?}",
                    first.sequences
                );
                assert!(
                    first.types["positive"].contains("VALUE > 0"),
                    "{:?}",
                    first.types
                );
                assert!(
                    first.types["pair"].starts_with("composite"),
                    "{:?}",
                    first.types
                );
                assert!(first.routines.contains_key("function add_one(x integer)"));
                assert!(first.routines.contains_key("procedure touch(IN x integer)"));
                assert!(first.materialized_views.contains_key("owner_count"));
                assert!(first
                    .materialized_views
                    .contains_key("owner_count.idx_owner_count"));
                let partitioned = &first.tables["measurement"];
                assert_eq!(partitioned.properties["partition key"], "RANGE (taken)");
                assert!(partitioned.columns["id"].data_type.contains("IDENTITY"));
                assert!(partitioned.columns["doubled"]
                    .data_type
                    .contains("GENERATED"));
                let partition = &first.tables["measurement_2026"];
                assert_eq!(partition.properties["parent"], "measurement");
                assert!(partition.properties["partition bound"].contains("2026-01-01"));
                assert_eq!(
                    first.tables["owner"].properties["comment"],
                    "who owns items"
                );
                // Read with the schema on the search path: definitions name no schema.
                assert!(
                    !item.indexes["idx_item_name"].contains("public."),
                    "{item:?}"
                );
            }
            Backend::MySql => {
                assert!(first.sequences["ticket_seq"].contains("increment by 5"));
                assert!(first.routines.contains_key("function add_one"));
                assert!(first.other.contains_key("event tidy"), "{:?}", first.other);
                assert!(
                    item.constraints
                        .values()
                        .any(|c| c.contains("REFERENCES owner (id)")),
                    "{item:?}"
                );
                let counter = &first.tables["counter"];
                assert_eq!(counter.properties["collation"], "utf8mb4_bin");
                assert!(
                    counter.columns["doubled"]
                        .data_type
                        .contains("AS (`n` * 2)"),
                    "{counter:?}"
                );
            }
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

/// Two PostgreSQL schemas with one definition compare equal: no definition carries the
/// schema's name (indexes, foreign keys, views, triggers, functions).
#[test]
fn two_postgres_schemas_compare_equal() {
    block_on(async {
        let Some(db) = TestDatabase::create(Backend::Postgres)
            .await
            .expect("database")
        else {
            return;
        };
        let mut sql = Vec::new();
        for schema in ["left_side", "right_side"] {
            sql.push(format!("CREATE SCHEMA {schema}"));
            sql.push(format!("SET search_path TO {schema}"));
            sql.extend(schema_sql(Backend::Postgres));
            sql.push(
                "CREATE FUNCTION touch_item() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
                    .to_string(),
            );
            sql.push(
                "CREATE TRIGGER item_touched BEFORE UPDATE ON item FOR EACH ROW EXECUTE FUNCTION touch_item()"
                    .to_string(),
            );
        }
        // One connection, so that SET search_path holds for the statements after it.
        exec(&db, &[sql.join(";\n")]).await;
        let tracking = migrate::backend::DEFAULT_TRACKING_TABLE;
        let left = snapshot(db.url(), Some("left_side"), tracking)
            .await
            .expect("snapshot");
        let right = snapshot(db.url(), Some("right_side"), tracking)
            .await
            .expect("snapshot");
        assert!(!left.tables.is_empty() && !left.triggers.is_empty());
        let diff = left.diff(&right);
        assert!(diff.is_empty(), "two schemas, one definition:\n{diff}");
    });
}

/// A SQLite table whose name starts like SQLite's own (`sqlitecache`, `SQLiteData`) is in the
/// snapshot; only `sqlite_…` objects are SQLite's (`NOT LIKE 'sqlite_%'` left both out).
#[test]
fn sqlite_tables_named_like_sqlites_own_are_seen() {
    block_on(async {
        let Some(db) = TestDatabase::create(Backend::Sqlite)
            .await
            .expect("database")
        else {
            return;
        };
        exec(
            &db,
            &[
                "CREATE TABLE sqlitecache (id INTEGER PRIMARY KEY)".to_string(),
                "CREATE TABLE SQLiteData (id INTEGER PRIMARY KEY)".to_string(),
                "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)".to_string(),
            ],
        )
        .await;
        let schema = snapshot(db.url(), None, migrate::backend::DEFAULT_TRACKING_TABLE)
            .await
            .expect("snapshot");
        let tables: Vec<&str> = schema.tables.keys().map(String::as_str).collect();
        assert_eq!(
            tables,
            ["SQLiteData", "sqlitecache", "t"],
            "sqlite_sequence stays out"
        );
    });
}
