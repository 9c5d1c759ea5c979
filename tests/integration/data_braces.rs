//! Text holding `{{`, written by `migrate::data` into SQL that `Conn` renders as templates:
//! keys, values and a column's name go through `Upsert` and a `Batches` job (its job name,
//! paging condition and checkpoint too) and arrive as they were, on every backend: PostgreSQL's with
//! `standard_conforming_strings` off, MariaDB's sessions with `NO_BACKSLASH_ESCAPES`. Before,
//! `{{schema}}` was replaced, `a{{b` failed as an unclosed template, `a\{{b` lost its
//! backslash; on such a PostgreSQL server a backslash before a quote ended the string early (a
//! syntax error in this test's upsert; in a statement with one literal the rest would run),
//! and on such a MariaDB session every backslash was stored doubled.

use crate::harness::{each_backend, first_step, run_first_step_on};
use migrate::backend::{MigrationBackend, MigrationFuture};
use migrate::data::{Batches, Upsert};
use migrate::query::Value;
use migrate::testing::Backend;

/// Texts with template braces, a backslash before them, and a quote after a backslash (which
/// a PostgreSQL server with `standard_conforming_strings` off would read as an escaped quote
/// in a plain string literal, ending it early).
const TEXTS: [&str; 7] = [
    "a\\{{b",
    "a{{b",
    "x}}",
    "{{schema}}",
    "{{{",
    "x\\'; DROP TABLE copied; --",
    "back\\slash",
];

/// The value column's name, which holds a template too.
const VALUE_COLUMN: &str = "v{{schema}}";

/// Copies `braced` into `copied` through a `Batches` job whose name holds `{{`, two rows a
/// batch, with an `Upsert` per batch.
fn copy_braced<'a>(db: &'a mut migrate::Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let mut upsert = Upsert::new("braced", &["k"], &[VALUE_COLUMN]);
        for text in TEXTS {
            upsert.row(vec![Value::Text(text.into()), Value::Text(text.into())]);
        }
        db.execute(&upsert.sql(db.dialect())?).await?;
        let mut job = Batches::new("copy {{braced}}", "braced", "k")
            .columns(&["k", VALUE_COLUMN])
            .batch_size(2)
            .start(db)
            .await?;
        while let Some(rows) = job.next(db).await? {
            let mut copy = Upsert::new("copied", &["k"], &[VALUE_COLUMN]);
            for row in &rows {
                copy.row(row.values().to_vec());
                job.tally().moved(1);
            }
            db.execute(&copy.sql(db.dialect())?).await?;
        }
        job.finish(db).await?;
        Ok(())
    })
}

each_backend! {
    async fn text_with_template_braces_round_trips_through_upserts_and_batches(db) {
        let v = match db.backend() {
            Backend::MySql => format!("`{VALUE_COLUMN}`"),
            _ => format!("\"{VALUE_COLUMN}\""),
        };
        db.exec(&format!(
            "CREATE TABLE braced (k VARCHAR(32) PRIMARY KEY, {v} VARCHAR(32)); \
             CREATE TABLE copied (k VARCHAR(32) PRIMARY KEY, {v} VARCHAR(32))",
        ))
        .await;
        if db.backend() == Backend::Postgres {
            // The executor's connections, made after this, read a backslash in a plain string
            // literal as an escape.
            db.exec(
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET standard_conforming_strings \
                 = off', current_database()); END $$",
            )
            .await;
        }
        let names = migrate::TableNames::new();
        let step = first_step("copied", "copy_braced", copy_braced, false, &names);
        let executor: Box<dyn MigrationBackend> = if db.backend() == Backend::MySql {
            Box::new(db.mysql_without_backslash_escapes().await)
        } else {
            db.executor().await
        };
        let _executor = run_first_step_on(executor, step, "the copy runs").await;
        let mut expected: Vec<String> = TEXTS.iter().map(|t| format!("{t}|{t}")).collect();
        expected.sort();
        let mut copied = db.rows(&format!("SELECT k, {v} FROM copied")).await;
        copied.sort();
        assert_eq!(copied, expected);
        assert_eq!(
            db.rows("SELECT job FROM migrate_data_checkpoints").await,
            ["copy {{braced}}"]
        );
        if db.backend() == Backend::MySql {
            // A tally naming many rows outgrows MySQL's 64 KiB `TEXT`.
            let tally = db
                .rows(
                    "SELECT DATA_TYPE FROM information_schema.columns WHERE table_schema = \
                     DATABASE() AND table_name = 'migrate_data_checkpoints' AND column_name = 'tally'",
                )
                .await;
            assert_eq!(tally, ["mediumtext"]);
        }
    }
}

/// Twenty rows of 1 MiB each: one statement would be 20 MiB (40 MiB on MariaDB, where text is
/// sent in hex), over MariaDB's default `max_allowed_packet` of 16 MiB. `Upsert::execute`
/// sends statements of at most `MAX_STATEMENT_BYTES`, and every row arrives.
fn upsert_large_rows<'a>(db: &'a mut migrate::Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let mut upsert = Upsert::new("large", &["k"], &["v"]);
        for k in 0..20 {
            let text = format!("{k:02}{}", "x".repeat(1024 * 1024 - 2));
            upsert.row(vec![Value::Int(k), Value::Text(text)]);
        }
        let statements = upsert.statements(db.dialect(), migrate::data::MAX_STATEMENT_BYTES)?;
        if statements.len() < 5 {
            return Err(migrate::Error::msg(format!(
                "{} statements for 20 MiB",
                statements.len()
            )));
        }
        upsert.execute(db).await?;
        Ok(())
    })
}

each_backend! {
    async fn a_large_upsert_is_sent_as_statements_under_the_servers_limit(db) {
        let text = match db.backend() {
            Backend::MySql => "LONGTEXT",
            _ => "TEXT",
        };
        db.exec(&format!("CREATE TABLE large (k INTEGER PRIMARY KEY, v {text})")).await;
        if db.backend() == Backend::MySql {
            // MariaDB's default (16 MiB) refuses the 40 MiB one statement would be; MySQL 8's
            // (64 MiB) would not, and there the test shows less.
            let limit = db.rows("SELECT CAST(@@max_allowed_packet AS SIGNED)").await;
            let limit: u64 = limit[0].parse().expect("a number");
            if limit >= 40 * 1024 * 1024 {
                eprintln!("max_allowed_packet {limit}: one statement would fit too");
            }
        }
        let names = migrate::TableNames::new();
        let step = first_step("large", "upsert_large_rows", upsert_large_rows, true, &names);
        let _executor = run_first_step_on(db.executor().await, step, "the upsert runs").await;
        let rows = db.rows("SELECT k, LENGTH(v), SUBSTR(v, 1, 2) FROM large ORDER BY k").await;
        let expected: Vec<String> = (0..20).map(|k| format!("{k}|1048576|{k:02}")).collect();
        assert_eq!(rows, expected);
    }
}
