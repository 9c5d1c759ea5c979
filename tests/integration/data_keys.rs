//! A `Batches` job paged by a key that is not unique: rows with one key value that span a
//! batch's end would be skipped (the next batch starts after that value). The job refuses
//! instead, naming the key, on every backend.

use crate::harness::{each_backend, first_step};
use migrate::backend::MigrationFuture;
use migrate::data::Batches;

/// Reads `dup` two rows a batch; its keys are 1, 2, 2, 3.
fn page_dup<'a>(db: &'a mut migrate::Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let mut job = Batches::new("page dup", "dup", "k")
            .batch_size(2)
            .start(db)
            .await?;
        while let Some(rows) = job.next(db).await? {
            job.tally().moved(rows.len() as u64);
        }
        job.finish(db).await?;
        Ok(())
    })
}

each_backend! {
    async fn a_key_that_is_not_unique_across_a_batch_end_is_refused(db) {
        db.exec("CREATE TABLE dup (k INTEGER, v INTEGER)").await;
        db.exec("INSERT INTO dup (k, v) VALUES (1, 1), (2, 2), (2, 3), (3, 4)").await;
        let names = migrate::TableNames::new();
        let step = first_step("copied", "page_dup", page_dup, false, &names);
        let executor = db.executor().await;
        executor.prepare().await.expect("tracking tables");
        let err = executor.run_step(&step).await.expect_err("a key that is not unique");
        let text = err.to_string();
        assert!(text.contains("the key `k` is not unique"), "{text}");
    }
}

/// Reads `dupt` one row a batch; its keys are `a`, `A` and `b`.
fn page_dupt<'a>(db: &'a mut migrate::Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let mut job = Batches::new("page dupt", "dupt", "k")
            .batch_size(1)
            .start(db)
            .await?;
        while let Some(rows) = job.next(db).await? {
            job.tally().moved(rows.len() as u64);
        }
        let tally = job.finish(db).await?;
        if tally.moved_count() != 3 {
            return Err(migrate::Error::msg(format!("moved {tally}")));
        }
        Ok(())
    })
}

each_backend! {
    async fn text_keys_are_compared_as_their_column_compares_them(db) {
        // MariaDB's default collation takes `a` and `A` for one key: `k > 'a'` would skip `A`.
        // SQLite's and PostgreSQL's default ones tell them apart, and every row is read.
        db.exec("CREATE TABLE dupt (k VARCHAR(8), v INTEGER)").await;
        db.exec("INSERT INTO dupt (k, v) VALUES ('a', 1), ('A', 2), ('b', 3)").await;
        let names = migrate::TableNames::new();
        let step = first_step("copied", "page_dupt", page_dupt, false, &names);
        let executor = db.executor().await;
        executor.prepare().await.expect("tracking tables");
        let outcome = executor.run_step(&step).await;
        if db.backend() == migrate::testing::Backend::MySql {
            let err = outcome.expect_err("one key under the column's collation");
            assert!(err.to_string().contains("the key `k` is not unique"), "{err}");
        } else {
            outcome.expect("three distinct keys, three rows");
        }
    }
}

/// Reads `vanishing` one row a batch, and renames it away after the first batch: the next
/// batch's read fails.
fn page_vanishing<'a>(db: &'a mut migrate::Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        let mut job = Batches::new("page vanishing", "vanishing", "k")
            .batch_size(1)
            .start(db)
            .await?;
        while let Some(rows) = job.next(db).await? {
            job.tally().moved(rows.len() as u64);
            db.execute("ALTER TABLE vanishing RENAME TO vanished")
                .await?;
        }
        job.finish(db).await?;
        Ok(())
    })
}

each_backend! {
    async fn a_database_error_of_a_batch_names_the_job(db) {
        db.exec("CREATE TABLE vanishing (k INTEGER PRIMARY KEY)").await;
        db.exec("INSERT INTO vanishing (k) VALUES (1), (2)").await;
        let names = migrate::TableNames::new();
        let step = first_step("copied", "page_vanishing", page_vanishing, false, &names);
        let executor = db.executor().await;
        executor.prepare().await.expect("tracking tables");
        let err = executor.run_step(&step).await.expect_err("the table is gone");
        let mut text = err.to_string();
        let mut cause = std::error::Error::source(&err);
        while let Some(inner) = cause {
            text.push_str(&format!(": {inner}"));
            cause = inner.source();
        }
        assert!(text.contains("batch job `page vanishing` after 1 batches"), "{text}");
    }
}
