//! What `Conn::query` returns for MariaDB's integer columns, read inside a step as a data
//! migration reads them: an UNSIGNED column is an integer like a signed one (sqlx reads any
//! integer column as a `bool` too, which turned 9 into 1 before the MySQL decoder tried
//! `u64` first), and one above `i64::MAX` comes back as its exact text.

use crate::harness::TestDb;
use migrate::backend::{MigrationFuture, StepOutcome, StepRecord, StepRun};
use migrate::query::Value;
use migrate::testing::Backend;

/// Reads the table `numbers` and fails, naming what it read, unless it holds what
/// `a_mariadb_unsigned_integer_reads_as_the_integer_it_is` wrote.
fn read_numbers<'a>(db: &'a mut migrate::Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let rows = db
            .query("SELECT small, medium, big, signed_one FROM numbers ORDER BY id")
            .await?;
        let read: Vec<Vec<Value>> = rows.iter().map(|row| row.values().to_vec()).collect();
        let expected = vec![
            vec![
                Value::Int(9),
                Value::Int(300),
                Value::Int(9),
                Value::Int(-9),
            ],
            vec![
                Value::Int(0),
                Value::Int(1),
                Value::Text("18446744073709551615".to_string()),
                Value::Int(5),
            ],
            vec![Value::Null, Value::Null, Value::Null, Value::Null],
        ];
        if read != expected {
            return Err(migrate::Error::msg(format!("read {read:?}")));
        }
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_unsigned_integer_reads_as_the_integer_it_is() {
    let Some(db) = TestDb::new(Backend::MySql).await else {
        return;
    };
    db.exec(
        "CREATE TABLE numbers (id INT PRIMARY KEY, small TINYINT UNSIGNED, \
         medium INT UNSIGNED, big BIGINT UNSIGNED, signed_one INT); \
         INSERT INTO numbers VALUES (1, 9, 300, 9, -9), (2, 0, 1, 18446744073709551615, 5), \
         (3, NULL, NULL, NULL, NULL)",
    )
    .await;
    let executor = db.executor().await;
    executor.prepare().await.expect("tracking tables");
    let names = migrate::TableNames::new();
    let step = StepRun {
        record: StepRecord {
            module: "query_values",
            table: "numbers",
            version: "1.0.0",
            name: "read_numbers",
            checksum: "fnv1a64:0000000000000002",
            direction: migrate::report::Direction::Up,
            expected: None,
            new_version: Some("1.0.0"),
            new_checksum: Some("fnv1a64:0000000000000002"),
        },
        action: read_numbers,
        transactional: true,
        table_names: &names,
    };
    let outcome = executor
        .run_step(&step)
        .await
        .expect("the step reads every integer as written");
    assert!(matches!(outcome, StepOutcome::Done { .. }), "{outcome:?}");
}
