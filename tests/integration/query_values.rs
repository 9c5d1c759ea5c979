//! What `Conn::query` returns, read inside a step as a data migration reads it, and whether it
//! writes back through `migrate::data::literal` unchanged.
//!
//! - MariaDB's integer columns: an UNSIGNED column is an integer like a signed one (sqlx reads
//!   any integer column as a `bool` too, which turned 9 into 1 before the MySQL decoder tried
//!   `u64` first), and one above `i64::MAX` comes back as its exact text.
//! - Every common column type on the three databases: a row read and written back into a table
//!   of the same columns is the same row (a PostgreSQL boolean, a `NUMERIC` beyond `i64`, a
//!   `JSONB` number or an `infinity` timestamp once came back as an integer or a float that
//!   either lost digits or could not be written back).

use crate::harness::TestDb;
use crate::harness::{first_step, run_first_step};
use migrate::backend::MigrationFuture;
use migrate::data::Batches;
use migrate::query::Value;
use migrate::testing::Backend;
use migrate::Dialect;
use std::sync::Mutex;

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
                Value::Numeric("18446744073709551615".to_string()),
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
    let names = migrate::TableNames::new();
    run_first_step(
        &db,
        first_step("numbers", "read_numbers", read_numbers, true, &names),
        "the step reads every integer as written",
    )
    .await;
}

/// What `copy_rows` read, per dialect (the three backends' tests run at once).
static READ: Mutex<Vec<(Dialect, Vec<Vec<Value>>)>> = Mutex::new(Vec::new());

/// Reads every row of `source` as a data migration reads it, keeps what it read in `READ`, and
/// writes each row into `copy` through `migrate::data::literal`.
fn copy_rows<'a>(db: &'a mut migrate::Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let dialect = db.dialect();
        let rows = db.query("SELECT * FROM source ORDER BY id").await?;
        let read: Vec<Vec<Value>> = rows.iter().map(|row| row.values().to_vec()).collect();
        for row in &read {
            let literals = row
                .iter()
                .map(|value| migrate::data::literal(dialect, value))
                .collect::<migrate::Result<Vec<_>>>()?;
            db.execute(&format!(
                "INSERT INTO copy VALUES ({})",
                literals.join(", ")
            ))
            .await?;
        }
        READ.lock()
            .map_err(|_| migrate::Error::msg("another test panicked holding READ"))?
            .push((dialect, read));
        Ok(())
    })
}

/// Creates `source` and `copy` with `columns`, fills `source` with `rows`, runs `copy_rows` as a
/// step, and checks that it read `expected` and that `copy` holds exactly the rows of `source`.
async fn read_and_write_back(
    backend: Backend,
    columns: &str,
    rows: &str,
    expected: Vec<Vec<Value>>,
) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.exec(&format!(
        "CREATE TABLE source ({columns}); CREATE TABLE copy ({columns}); \
         INSERT INTO source VALUES {rows}"
    ))
    .await;
    let names = migrate::TableNames::new();
    let executor = run_first_step(
        &db,
        first_step("copy", "copy_rows", copy_rows, true, &names),
        "every value read writes back as a literal",
    )
    .await;
    let dialect = executor.dialect();
    let read = READ
        .lock()
        .expect("READ")
        .iter()
        .find(|(d, _)| *d == dialect)
        .map(|(_, read)| read.clone())
        .expect("the step kept what it read");
    // Compared as printed, so that a NaN read equals the NaN expected.
    assert_eq!(
        format!("{read:?}"),
        format!("{expected:?}"),
        "{}",
        backend.name()
    );
    assert_eq!(db.rows("SELECT COUNT(*) FROM copy").await, ["3"]);
    assert_eq!(
        db.rows("SELECT COUNT(*) FROM (SELECT * FROM source EXCEPT SELECT * FROM copy) d")
            .await,
        ["0"],
        "a row of `copy` differs from its source"
    );
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

fn numeric(s: &str) -> Value {
    Value::Numeric(s.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_values_read_exactly_and_write_back() {
    read_and_write_back(
        Backend::Postgres,
        "id INT PRIMARY KEY, flag BOOLEAN, big NUMERIC(30,0), money NUMERIC(12,2), tiny REAL, \
         wide DOUBLE PRECISION, word TEXT, bin BYTEA, stamp TIMESTAMP, uid UUID, doc JSONB, \
         forever TIMESTAMP, edge DOUBLE PRECISION",
        "(1, TRUE, 123456789012345678901234567890, 12.50, 0.1, 0.1, 'it''s', '\\x00ff', \
          '2024-02-29 12:34:56.789', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2]}', \
          'infinity', 'Infinity'), \
         (2, FALSE, -5, 0.07, -2.5, 1e300, '42', '\\x', '1999-12-31 23:59:59', NULL, '7', \
          '-infinity', 'NaN'), \
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        vec![
            vec![
                Value::Int(1),
                Value::Bool(true),
                numeric("123456789012345678901234567890"),
                numeric("12.50"),
                Value::Float(0.1),
                Value::Float(0.1),
                text("it's"),
                Value::Bytes(vec![0, 255]),
                text("2024-02-29 12:34:56.789"),
                text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                text("{\"a\": [1, 2]}"),
                text("infinity"),
                Value::Float(f64::INFINITY),
            ],
            vec![
                Value::Int(2),
                Value::Bool(false),
                Value::Int(-5),
                numeric("0.07"),
                Value::Float(-2.5),
                Value::Float(1e300),
                text("42"),
                Value::Bytes(vec![]),
                text("1999-12-31 23:59:59"),
                Value::Null,
                text("7"),
                text("-infinity"),
                Value::Float(f64::NAN),
            ],
            [vec![Value::Int(3)], vec![Value::Null; 12]].concat(),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_values_read_exactly_and_write_back() {
    read_and_write_back(
        Backend::MySql,
        "id INT PRIMARY KEY, flag BOOLEAN, big DECIMAL(30,0), money DECIMAL(12,2), tiny FLOAT, \
         wide DOUBLE, word TEXT, bin BLOB, stamp DATETIME(3), yr YEAR, bits BIT(8), \
         small TINYINT UNSIGNED",
        "(1, TRUE, 123456789012345678901234567890, 12.50, 0.1, 0.1, 'it''s', X'00ff', \
          '2024-02-29 12:34:56.789', 2024, b'101', 9), \
         (2, FALSE, -5, 0.07, -2.5, 1e300, '42', X'', '1999-12-31 23:59:59', 1999, b'0', 0), \
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        vec![
            vec![
                Value::Int(1),
                Value::Int(1),
                numeric("123456789012345678901234567890"),
                numeric("12.50"),
                Value::Float(0.1),
                Value::Float(0.1),
                text("it's"),
                Value::Bytes(vec![0, 255]),
                text("2024-02-29 12:34:56.789"),
                Value::Int(2024),
                Value::Int(5),
                Value::Int(9),
            ],
            vec![
                Value::Int(2),
                Value::Int(0),
                Value::Int(-5),
                numeric("0.07"),
                Value::Float(-2.5),
                Value::Float(1e300),
                text("42"),
                Value::Bytes(vec![]),
                text("1999-12-31 23:59:59.000"),
                Value::Int(1999),
                Value::Int(0),
                Value::Int(0),
            ],
            [vec![Value::Int(3)], vec![Value::Null; 11]].concat(),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_values_read_exactly_and_write_back() {
    read_and_write_back(
        Backend::Sqlite,
        "id INTEGER PRIMARY KEY, flag BOOLEAN, big NUMERIC, money DECIMAL(12,2), tiny REAL, \
         wide DOUBLE, word TEXT, bin BLOB, stamp DATETIME",
        "(1, 1, 123456789012345678901234567890, '12.50', 0.1, 0.1, 'it''s', X'00ff', \
          '2024-02-29 12:34:56.789'), \
         (2, 0, -5, 0.07, -2.5, 1e300, '42', X'', '1999-12-31 23:59:59'), \
         (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
        vec![
            vec![
                Value::Int(1),
                Value::Int(1),
                Value::Float(1.2345678901234568e29),
                Value::Float(12.5),
                Value::Float(0.1),
                Value::Float(0.1),
                text("it's"),
                Value::Bytes(vec![0, 255]),
                text("2024-02-29 12:34:56.789"),
            ],
            vec![
                Value::Int(2),
                Value::Int(0),
                Value::Int(-5),
                Value::Float(0.07),
                Value::Float(-2.5),
                Value::Float(1e300),
                text("42"),
                Value::Bytes(vec![]),
                text("1999-12-31 23:59:59"),
            ],
            [vec![Value::Int(3)], vec![Value::Null; 8]].concat(),
        ],
    )
    .await;
}

/// Pages through `wide_keys`, whose `DECIMAL(30,0)` keys are beyond `i64` and ten apart by one
/// (all ten are the same double), three rows a batch. The first job is cut off in its second
/// batch (the batch's transaction rolled back, as a killed run's would be); a second job resumes
/// from the first batch's checkpoint. Records how many rows the second job read and how many the
/// whole job counted.
fn page_wide_keys<'a>(db: &'a mut migrate::Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let job = || {
            Batches::new("wide_keys", "wide_keys", "id")
                .columns(&["id"])
                .batch_size(3)
        };
        let mut first = job().start(db).await?;
        for _ in 0..2 {
            if let Some(rows) = first.next(db).await? {
                first.tally().moved(rows.len() as u64);
            }
        }
        drop(first);
        db.execute("ROLLBACK").await?;
        let mut resumed = job().start(db).await?;
        let mut seen = 0;
        while let Some(rows) = resumed.next(db).await? {
            seen += rows.len() as u64;
            resumed.tally().moved(rows.len() as u64);
        }
        let tally = resumed.finish(db).await?;
        db.execute(&format!(
            "INSERT INTO paged VALUES ({seen}, {})",
            tally.moved_count()
        ))
        .await?;
        Ok(())
    })
}

/// Batches page by an exact key exactly, and resume from it: a key beyond `i64` is a
/// `Value::Numeric` (as a float, all ten keys were one value, and the job refused it), kept in
/// the checkpoint as `numeric` and written back unquoted (MySQL's manual compares a DECIMAL
/// with a quoted string as doubles; MariaDB 10.11 converts the string exactly, so this test
/// cannot tell the two literals apart there). The column has no index, so no range lookup
/// converts the key for the server.
async fn wide_keys_page_exactly(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let keys: Vec<String> = (1..=10)
        .map(|i| format!("({})", 10_000_000_000_000_000_000_000_000u128 + i))
        .collect();
    db.exec(&format!(
        "CREATE TABLE wide_keys (id DECIMAL(30,0)); \
         CREATE TABLE paged (seen BIGINT, moved BIGINT); \
         INSERT INTO wide_keys VALUES {}",
        keys.join(", ")
    ))
    .await;
    let names = migrate::TableNames::new();
    // Kept until the checks below, as a service's executor would be.
    let _executor = run_first_step(
        &db,
        first_step("paged", "page_wide_keys", page_wide_keys, false, &names),
        "the job pages through",
    )
    .await;
    assert_eq!(
        db.rows("SELECT seen, moved FROM paged").await,
        ["7|10"],
        "the second job reads the seven keys after the first batch's checkpoint"
    );
    assert_eq!(
        db.rows("SELECT last_key, key_kind FROM migrate_data_checkpoints WHERE job = 'wide_keys'")
            .await,
        ["10000000000000000000000010|numeric"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_wide_decimal_keys_page_exactly() {
    wide_keys_page_exactly(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_wide_decimal_keys_page_exactly() {
    wide_keys_page_exactly(Backend::MySql).await;
}
