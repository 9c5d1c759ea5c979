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
