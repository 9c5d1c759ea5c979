//! [`Batches`]: a table read in keyset-paginated batches, with its progress checkpointed.

use super::sql::{check_template_table, ident, literal, text_literal};
use super::tally::Tally;
use crate::decode::is_number_literal;
use migrate_core::conn::{Conn, Row, Value};
use migrate_core::dialect::Dialect;
use migrate_core::error::{Error, Result};
use std::time::Instant;

/// The table that holds every job's checkpoint, unless [`Batches::checkpoint_table`] names
/// another.
pub const DEFAULT_CHECKPOINT_TABLE: &str = "migrate_data_checkpoints";

/// The longest job name (it is the checkpoint table's key, an indexable `VARCHAR` on MySQL).
const MAX_JOB_BYTES: usize = 191;

/// A data migration over one table, read in batches by its key (`WHERE key > last ORDER BY key
/// LIMIT n`, never `OFFSET`), so that memory is bounded by the batch size and every batch
/// costs the same however far the job is.
///
/// Each batch ends with its checkpoint: the last key and the [`Tally`] so far, written in the
/// same transaction as the batch's own writes. In a `transaction = false` migration every
/// batch is its own transaction, so a killed run resumes after the last committed batch, and
/// the job's counts come out exact. In a transactional migration on SQLite and PostgreSQL the
/// whole job is one transaction: a kill leaves nothing to resume, and the next run starts over.
/// On MySQL and MariaDB every step is journalled outside a transaction, so every batch commits
/// on its own there, transactional or not.
///
/// The key must be unique and not change while the job runs (a primary key); rows whose key
/// is NULL cannot be paged and are counted as refused. Writes should be idempotent upserts
/// ([`Upsert`](super::Upsert)), so that a batch replayed after a crash changes nothing twice.
/// A migration's down that undoes the job calls [`Batches::forget`], so that the next up
/// starts over.
#[derive(Debug, Clone)]
pub struct Batches {
    job: String,
    table: String,
    key: String,
    columns: Vec<String>,
    filter: Option<String>,
    size: usize,
    checkpoint: String,
}

/// A job's name is its checkpoint's key: 1 to [`MAX_JOB_BYTES`] bytes, with no NUL (SQLite
/// and PostgreSQL would cut the text there) and no whitespace at either end (MySQL's binary
/// collation ignores trailing spaces, so `copy` and `copy ` would share one checkpoint there).
fn check_job(job: &str) -> Result<()> {
    let trimmed = job.trim();
    if trimmed.is_empty()
        || trimmed.len() != job.len()
        || job.len() > MAX_JOB_BYTES
        || job.contains('\0')
    {
        return Err(Error::Config(format!(
            "a batch job's name must be 1 to {MAX_JOB_BYTES} bytes, with no NUL and no \
             whitespace at either end, not `{}`",
            job.escape_debug()
        )));
    }
    Ok(())
}

impl Batches {
    /// A job named `job` (unique within the checkpoint table) over the logical `table`,
    /// paged by its `key` column; batches of 1,000 rows holding only the key until
    /// [`columns`](Self::columns) says more.
    pub fn new(job: &str, table: &str, key: &str) -> Self {
        Batches {
            job: job.to_string(),
            table: table.to_string(),
            key: key.to_string(),
            columns: vec![key.to_string()],
            filter: None,
            size: 1_000,
            checkpoint: DEFAULT_CHECKPOINT_TABLE.to_string(),
        }
    }

    /// The columns each row holds, in order. The key is put first when they do not name it.
    pub fn columns(mut self, columns: &[&str]) -> Self {
        self.columns = columns.iter().map(|c| c.to_string()).collect();
        if !self.columns.contains(&self.key) {
            self.columns.insert(0, self.key.clone());
        }
        self
    }

    /// Only rows matching this SQL condition (templates allowed), such as `kind = 'agent'`.
    pub fn filter(mut self, condition: &str) -> Self {
        self.filter = Some(condition.to_string());
        self
    }

    /// Rows per batch, 1 to 1,000,000 (default 1,000).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.size = rows;
        self
    }

    /// The table that keeps the checkpoints (default [`DEFAULT_CHECKPOINT_TABLE`]).
    pub fn checkpoint_table(mut self, table: &str) -> Self {
        self.checkpoint = table.to_string();
        self
    }

    /// Opens the job: creates the checkpoint table if missing, and resumes from the job's
    /// checkpoint, or starts it (counting the rows whose key is NULL as refused).
    ///
    /// A checkpoint records the table and key its job paged. A job whose name has a
    /// checkpoint for another table or key is refused with [`Error::Config`] before anything
    /// is written: resumed there, its last key would skip rows, and a job done on one table
    /// would skip the other whole.
    pub async fn start(self, db: &mut Conn<'_>) -> Result<Job> {
        check_job(&self.job)?;
        check_template_table(&format!("batch job `{}`", self.job), &self.table)?;
        if !(1..=1_000_000).contains(&self.size) {
            return Err(Error::Config(format!(
                "batch size {} for job `{}` must be 1 to 1,000,000",
                self.size, self.job
            )));
        }
        crate::sqlx_db::check_statement_identifier(
            "the checkpoint table",
            &self.checkpoint,
            crate::sqlx_db::MAX_IDENTIFIER_BYTES,
        )?;
        let checkpoint = db.table(&self.checkpoint);
        let job_literal = text_literal(db.dialect(), &self.job);
        let has_checkpoints = db.table_exists(&self.checkpoint).await?;
        // Checkpoint tables written before a job recorded its source lack these columns (or
        // one of them, if adding them was cut off between the two).
        let mut missing_source = Vec::new();
        let mut resumed = None;
        if has_checkpoints {
            for column in SOURCE_COLUMNS {
                if !db.column_exists(&self.checkpoint, column).await? {
                    missing_source.push(column);
                }
            }
            let source = if missing_source.is_empty() {
                "source_table, source_key"
            } else {
                "NULL, NULL"
            };
            let rows = db
                .query(&format!(
                    "SELECT last_key, key_kind, tally, done, {source} FROM {checkpoint} \
                     WHERE job = {job_literal}"
                ))
                .await?;
            resumed = rows.first().map(|row| self.resume(row)).transpose()?;
        }
        if let Some(resumed) = &resumed {
            self.check_same_source(resumed)?;
        }
        // Checked before anything is written; a job already done never reads its source
        // again (a later step may have dropped it).
        if !resumed.as_ref().is_some_and(|resumed| resumed.done) {
            self.check_source(db).await?;
        }
        if !has_checkpoints {
            self.create_checkpoint_table(db, &checkpoint).await?;
        } else {
            add_columns(db, &checkpoint, &missing_source).await?;
        }
        let source_table = text_literal(db.dialect(), &self.table);
        let source_key = text_literal(db.dialect(), &self.key);
        if resumed
            .as_ref()
            .is_some_and(|resumed| resumed.source.is_none())
        {
            // A checkpoint written before sources were recorded takes this job's from now on;
            // there is nothing to check it against.
            tracing::warn!(
                job = %self.job,
                table = %self.table,
                key = %self.key,
                "a batch job's checkpoint from before sources were recorded takes this table and key"
            );
            db.execute(&format!(
                "UPDATE {checkpoint} SET source_table = {source_table}, source_key = {source_key} \
                 WHERE job = {job_literal}"
            ))
            .await?;
        }
        let (last, tally, done) = match resumed {
            Some(resumed) => (resumed.last, resumed.tally, resumed.done),
            None => {
                let mut tally = Tally::default();
                let nulls = db
                    .query_i64(&format!(
                        "SELECT COUNT(*) FROM {{{{tables.{}}}}} WHERE {} IS NULL{}",
                        self.table,
                        ident(db.dialect(), &self.key),
                        self.filter_clause()
                    ))
                    .await?;
                tally.refused_many(
                    format!("the key column `{}` is NULL", self.key),
                    u64::try_from(nulls).unwrap_or(0),
                );
                db.execute(&format!(
                    "INSERT INTO {checkpoint} (job, source_table, source_key, last_key, key_kind, \
                     tally, done, updated_at) VALUES ({job_literal}, {source_table}, {source_key}, \
                     NULL, NULL, {}, 0, {})",
                    text_literal(db.dialect(), &tally.encode()),
                    now_micros()
                ))
                .await?;
                (None, tally, false)
            }
        };
        match &last {
            Some(key) => {
                tracing::info!(job = %self.job, after = ?key, so_far = %tally, "resuming a batch job")
            }
            None if !done => {
                tracing::info!(job = %self.job, table = %self.table, batch = self.size, "starting a batch job")
            }
            None => tracing::info!(job = %self.job, "batch job already done"),
        }
        let key_index = self
            .columns
            .iter()
            .position(|c| *c == self.key)
            .unwrap_or(0);
        Ok(Job {
            spec: self,
            key_index,
            last,
            tally,
            done,
            pending: false,
            open: false,
            failed: false,
            batches: 0,
            rows: 0,
            started: Instant::now(),
        })
    }

    /// Deletes the checkpoint of `job` from `checkpoint_table` (the table its job kept its
    /// checkpoints in: [`DEFAULT_CHECKPOINT_TABLE`](crate::data::DEFAULT_CHECKPOINT_TABLE)
    /// unless `checkpoint_table` was set), so that its next run starts over: for the down of a
    /// migration that ran it. A missing checkpoint table is fine; a table that is not one (the
    /// job's source table, by mistake) is refused with `Error::Config` and left untouched.
    pub async fn forget(db: &mut Conn<'_>, job: &str, checkpoint_table: &str) -> Result<()> {
        check_job(job)?;
        crate::sqlx_db::check_statement_identifier(
            "the checkpoint table",
            checkpoint_table,
            crate::sqlx_db::MAX_IDENTIFIER_BYTES,
        )?;
        if db.table_exists(checkpoint_table).await? {
            for column in ["job", "last_key", "tally"] {
                if !db.column_exists(checkpoint_table, column).await? {
                    return Err(Error::Config(format!(
                        "Batches::forget: `{checkpoint_table}` is not a checkpoint table (it \
                         has no `{column}` column); pass the table the job kept its \
                         checkpoints in, migrate::data::DEFAULT_CHECKPOINT_TABLE by default"
                    )));
                }
            }
            let sql = format!(
                "DELETE FROM {} WHERE job = {}",
                db.table(checkpoint_table),
                text_literal(db.dialect(), job)
            );
            db.execute(&sql).await?;
        }
        Ok(())
    }

    /// Creates the checkpoint table (`checkpoint`, quoted) if it is missing. On MySQL its
    /// text is in any language and job names are compared byte for byte (but for trailing
    /// spaces, which `check_job` refuses), whatever the database's defaults.
    async fn create_checkpoint_table(&self, db: &mut Conn<'_>, checkpoint: &str) -> Result<()> {
        let options = match db.dialect() {
            #[cfg(feature = "mysql")]
            Dialect::MySql => crate::mysql::EXACT_TEXT,
            _ => "",
        };
        // MySQL's `TEXT` holds 64 KiB: a tally whose reasons name many rows outgrows it (and
        // is cut off, or refused in strict mode); `MEDIUMTEXT` holds 16 MiB.
        let tally = match db.dialect() {
            Dialect::MySql => "MEDIUMTEXT",
            _ => "TEXT",
        };
        db.execute(&format!(
            "CREATE TABLE IF NOT EXISTS {checkpoint} (job VARCHAR({MAX_JOB_BYTES}) PRIMARY KEY, \
             source_table TEXT, source_key TEXT, last_key TEXT, key_kind VARCHAR(8), \
             tally {tally} NOT NULL, done INTEGER NOT NULL, updated_at BIGINT NOT NULL){options}"
        ))
        .await?;
        Ok(())
    }

    /// A job's checkpoint belongs to the table and key it paged: resumed on another, its last
    /// key would skip rows, and a job done on one would skip the other whole.
    fn check_same_source(&self, resumed: &Checkpoint) -> Result<()> {
        match &resumed.source {
            Some((table, key)) if *table != self.table || *key != self.key => {
                Err(Error::Config(format!(
                    "batch job `{}` has a checkpoint in `{}` for table `{table}` (key `{key}`), \
                     not table `{}` (key `{}`): give this job another name, or \
                     `Batches::forget` the old one",
                    self.job, self.checkpoint, self.table, self.key
                )))
            }
            _ => Ok(()),
        }
    }

    /// Reads no row of the source with the job's table, key, columns and filter, before
    /// anything is written: a wrong name fails here, naming the job, with nothing created.
    /// SQLite reads a double-quoted name that is no column as a string, so there the columns
    /// are also looked up in the catalog.
    async fn check_source(&self, db: &mut Conn<'_>) -> Result<()> {
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| ident(db.dialect(), c))
            .collect();
        let probe = format!(
            "SELECT {} FROM {{{{tables.{}}}}} WHERE 1 = 0{}",
            columns.join(", "),
            self.table,
            self.filter_clause()
        );
        let doing = || {
            format!(
                "batch job `{}` cannot read table `{}` (key `{}`, columns {})",
                self.job,
                self.table,
                self.key,
                self.columns.join(", ")
            )
        };
        db.query(&probe).await.map_err(|err| match err {
            Error::Database(driver) => Error::Database(driver.context(doing())),
            other => other,
        })?;
        if db.dialect() == Dialect::Sqlite {
            // The rowid's names are no column of the catalog's.
            let rowid = |c: &str| {
                ["rowid", "oid", "_rowid_"]
                    .iter()
                    .any(|r| r.eq_ignore_ascii_case(c))
            };
            for column in self.columns.iter().filter(|c| !rowid(c)) {
                if !db.column_exists(&self.table, column).await? {
                    return Err(Error::Config(format!(
                        "{}: it has no column `{column}`",
                        doing()
                    )));
                }
            }
        }
        // A key of a type the job cannot page by (a binary UUID, a float) is refused here,
        // before the checkpoint is written, not at the first batch (whose checkpoint row
        // would then hold the job's name against the corrected job).
        let key = ident(db.dialect(), &self.key);
        let first = format!(
            "SELECT {key} FROM {{{{tables.{}}}}} WHERE {key} IS NOT NULL{} LIMIT 1",
            self.table,
            self.filter_clause()
        );
        let first = db.query(&first).await?;
        if let Some(value) = first.first().and_then(|row| row.get(0)) {
            self.check_key_type(value)?;
        }
        Ok(())
    }

    /// A key the job can page by and checkpoint: an integer, an exact number or text.
    fn check_key_type(&self, value: &Value) -> Result<()> {
        if matches!(value, Value::Int(_) | Value::Numeric(_) | Value::Text(_)) {
            return Ok(());
        }
        Err(Error::Config(format!(
            "batch job `{}`: the key `{}` must be an integer, exact numeric or text column",
            self.job, self.key
        )))
    }

    fn resume(&self, row: &Row) -> Result<Checkpoint> {
        let corrupt = || {
            Error::msg(format!(
                "the checkpoint of batch job `{}` in `{}` is not one this crate wrote",
                self.job, self.checkpoint
            ))
        };
        let last = match (row.get(0), row.get(1).and_then(Value::as_str)) {
            (Some(Value::Null) | None, _) => None,
            (Some(Value::Text(text)), Some("int")) => {
                Some(Value::Int(text.parse().map_err(|_| corrupt())?))
            }
            (Some(Value::Text(text)), Some("text")) => Some(Value::Text(text.clone())),
            (Some(Value::Text(text)), Some("numeric")) if is_number_literal(text) => {
                Some(Value::Numeric(text.clone()))
            }
            _ => return Err(corrupt()),
        };
        let tally = row
            .get(2)
            .and_then(Value::as_str)
            .and_then(Tally::decode)
            .ok_or_else(corrupt)?;
        let done = row.get(3).and_then(Value::as_i64).ok_or_else(corrupt)? != 0;
        let source = match (row.get(4), row.get(5)) {
            (Some(Value::Text(table)), Some(Value::Text(key))) => {
                Some((table.clone(), key.clone()))
            }
            (Some(Value::Null) | None, Some(Value::Null) | None) => None,
            _ => return Err(corrupt()),
        };
        Ok(Checkpoint {
            last,
            tally,
            done,
            source,
        })
    }

    fn filter_clause(&self) -> String {
        self.filter
            .as_ref()
            .map(|f| format!(" AND ({f})"))
            .unwrap_or_default()
    }
}

/// The checkpoint table's columns naming the table and key a job paged.
const SOURCE_COLUMNS: [&str; 2] = ["source_table", "source_key"];

/// Adds `columns` (of [`SOURCE_COLUMNS`]) to a checkpoint table created before jobs recorded
/// their source, one statement each, so that a run cut off between them adds the other next
/// time. On MySQL they are `utf8mb4_bin` whatever the table's older default. On PostgreSQL
/// `IF NOT EXISTS` makes a repeat harmless; two transactional steps that race to add them
/// without sharing the run lock can still deadlock, and one is rolled back.
async fn add_columns(db: &mut Conn<'_>, checkpoint: &str, columns: &[&str]) -> Result<()> {
    let (if_missing, text) = match db.dialect() {
        Dialect::Postgres => ("IF NOT EXISTS ", "TEXT"),
        Dialect::MySql => ("", "TEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
        _ => ("", "TEXT"),
    };
    for column in columns {
        db.execute(&format!(
            "ALTER TABLE {checkpoint} ADD COLUMN {if_missing}{column} {text}"
        ))
        .await?;
    }
    Ok(())
}

/// A job's checkpoint row, as `start` reads it.
struct Checkpoint {
    last: Option<Value>,
    tally: Tally,
    done: bool,
    /// The logical table and key it paged; `None` in a row written before they were kept.
    source: Option<(String, String)>,
}

/// A running [`Batches`] job: [`next`](Job::next) hands out batches, [`finish`](Job::finish)
/// ends it.
#[derive(Debug)]
pub struct Job {
    spec: Batches,
    key_index: usize,
    last: Option<Value>,
    tally: Tally,
    done: bool,
    /// A batch was handed out and is not checkpointed yet.
    pending: bool,
    /// This job opened a transaction for the pending batch.
    open: bool,
    /// One of the job's own statements failed: its batch may have been rolled back while the
    /// job still holds it as pending, so a later checkpoint could move past writes that are
    /// gone. Every later call is refused; the step ends, and its next run resumes.
    failed: bool,
    batches: u64,
    rows: u64,
    started: Instant,
}

impl Job {
    /// Checkpoints the previous batch (its writes and the checkpoint commit together), then
    /// reads the next one; `None` when the table has no row left. Outside the step's
    /// transaction each batch runs in a transaction of its own.
    ///
    /// A database error (of the checkpoint, the read, the batch's `BEGIN` or `COMMIT`) names
    /// the job and how many batches it had done.
    ///
    /// After an error of the job's own (its checkpoint, read, `BEGIN` or `COMMIT` failed, a
    /// deadlock or a serialization failure included) every later call is refused: the failed
    /// batch may have been rolled back, and checkpointing past it would skip its rows. Return
    /// the error from the step; its next run resumes from the last committed checkpoint.
    pub async fn next(&mut self, db: &mut Conn<'_>) -> Result<Option<Vec<Row>>> {
        self.refuse_after_failure()?;
        let next = self.next_batch(db).await;
        self.failed = next.is_err();
        next.map_err(|err| self.named(err))
    }

    /// The refusal of a job whose own statement failed before.
    fn refuse_after_failure(&self) -> Result<()> {
        if !self.failed {
            return Ok(());
        }
        Err(Error::Config(format!(
            "batch job `{}` failed earlier (after {} batches) and cannot go on: its last batch \
             may have been rolled back; return the error from the step, whose next run resumes \
             from the last checkpoint",
            self.spec.job, self.batches
        )))
    }

    /// A database error with the job's name and progress in front (the batches read; the last
    /// of them is not committed when its own checkpoint failed).
    fn named(&self, err: Error) -> Error {
        match err {
            Error::Database(driver) => Error::Database(driver.context(format!(
                "batch job `{}` after {} batches",
                self.spec.job, self.batches
            ))),
            other => other,
        }
    }

    async fn next_batch(&mut self, db: &mut Conn<'_>) -> Result<Option<Vec<Row>>> {
        if self.pending {
            self.checkpoint(db).await?;
        }
        if self.done {
            return Ok(None);
        }
        let spec = &self.spec;
        let key = ident(db.dialect(), &spec.key);
        let after = match &self.last {
            Some(last) => format!(" AND {key} > {}", literal(db.dialect(), last)?),
            None => String::new(),
        };
        let columns: Vec<String> = spec
            .columns
            .iter()
            .map(|c| ident(db.dialect(), c))
            .collect();
        // One row more than the batch: the first row of the next one, whose key must differ
        // from the batch's last (the next batch starts after that key, and would skip the
        // rest of a run of equal keys).
        let sql = format!(
            "SELECT {} FROM {{{{tables.{}}}}} WHERE {key} IS NOT NULL{after}{} ORDER BY {key} LIMIT {}",
            columns.join(", "),
            spec.table,
            spec.filter_clause(),
            spec.size.saturating_add(1)
        );
        if !db.in_transaction() {
            // SQLite takes the write lock at once: a deferred transaction that read first
            // could not wait for it (SQLite's busy handler does not retry an upgrade from a
            // read), and would fail with SQLITE_BUSY whenever the application writes.
            let begin = if db.dialect() == Dialect::Sqlite {
                "BEGIN IMMEDIATE"
            } else {
                "BEGIN"
            };
            db.execute(begin).await?;
            self.open = true;
        }
        let mut rows = db.query(&sql).await?;
        for row in rows.iter().rev().take(2) {
            // The last two rows read: with a full batch, its last key (the checkpoint to be)
            // and the next batch's first; with a short one, its last two. A key the
            // checkpoint cannot keep (a float among a NUMERIC column's integers on SQLite) is
            // refused wherever it is among them.
            if let Some(key) = row.get(self.key_index) {
                spec.check_key_type(key)?;
            }
        }
        if rows.len() > spec.size {
            let next = rows.pop().and_then(|r| r.get(self.key_index).cloned());
            let last = rows.last().and_then(|r| r.get(self.key_index)).cloned();
            let same = match (&next, &last) {
                (Some(next), Some(last)) if next == last => true,
                (Some(Value::Int(_)), Some(Value::Int(_))) => false,
                // Otherwise the two compare as the column does (a collation that ignores case
                // or trailing spaces; `2` and `2.0`, one decoded as an integer, the other as
                // an exact number), which Rust's equality does not know.
                (Some(next), Some(last)) => {
                    let both = format!(
                        "SELECT COUNT(*) FROM {{{{tables.{}}}}} WHERE {key} = {} AND {key} = {}",
                        spec.table,
                        literal(db.dialect(), last)?,
                        literal(db.dialect(), next)?
                    );
                    db.query_i64(&both).await? > 0
                }
                _ => false,
            };
            if same {
                return Err(Error::Config(format!(
                    "batch job `{}`: the key `{}` is not unique (rows with one value span a \
                     batch's end, and the next batch would skip the rest): page by a unique key",
                    spec.job, spec.key
                )));
            }
        }
        let Some(last) = rows.last().and_then(|r| r.get(self.key_index)).cloned() else {
            if self.open {
                db.execute("COMMIT").await?;
                self.open = false;
            }
            self.done = true;
            return Ok(None);
        };
        self.last = Some(last);
        self.pending = true;
        self.batches += 1;
        self.rows += rows.len() as u64;
        Ok(Some(rows))
    }

    /// The counts so far, to add this batch's to.
    pub fn tally(&mut self) -> &mut Tally {
        &mut self.tally
    }

    /// Checkpoints the last batch and marks the job done; returns the counts of the whole job,
    /// resumed runs included.
    ///
    /// A job left before [`next`](Self::next) answered `None` is done only if no row is left
    /// after its last batch: with rows left (a loop that stopped at a deadline), the last batch
    /// is checkpointed and `finish` fails, so that the step is not recorded as applied with
    /// those rows never processed; its next run resumes after the checkpoint.
    pub async fn finish(mut self, db: &mut Conn<'_>) -> Result<Tally> {
        self.refuse_after_failure()?;
        if !self.done {
            // Checkpoints the pending batch, then reads on: `None` marks the job done.
            match self.next_batch(db).await {
                Ok(None) => {}
                Ok(Some(_)) => {
                    if self.open {
                        // Only read in this transaction: nothing of it is kept.
                        let _ = db.execute("ROLLBACK").await;
                    }
                    return Err(Error::Config(format!(
                        "batch job `{}` was finished with rows left after its last batch ({} \
                         batches done this run): call next() until it answers None; in a step \
                         outside a transaction (transaction = false) they are checkpointed, and \
                         the step's next run resumes after them",
                        self.spec.job,
                        self.batches - 1
                    )));
                }
                Err(err) => return Err(self.named(err)),
            }
        }
        let checkpoint = db.table(&self.spec.checkpoint);
        let done = db
            .execute(&format!(
                "UPDATE {checkpoint} SET done = 1, tally = {}, updated_at = {} WHERE job = {}",
                text_literal(db.dialect(), &self.tally.encode()),
                now_micros(),
                text_literal(db.dialect(), &self.spec.job)
            ))
            .await;
        if let Err(err) = done {
            return Err(self.named(err));
        }
        tracing::info!(job = %self.spec.job, batches = self.batches, rows = self.rows, result = %self.tally, "batch job done");
        Ok(self.tally)
    }

    async fn checkpoint(&mut self, db: &mut Conn<'_>) -> Result<()> {
        let (kind, text) = match &self.last {
            Some(Value::Int(i)) => ("int", i.to_string()),
            Some(Value::Text(t)) => ("text", t.clone()),
            Some(Value::Numeric(digits)) => ("numeric", digits.clone()),
            None => return Ok(()),
            // `next_batch` checks every key it keeps: a key of another kind is this crate's
            // mistake, and checkpointing nothing would commit the batch without its progress.
            Some(other) => {
                return Err(Error::Config(format!(
                    "batch job `{}`: a key of kind {other:?} cannot be checkpointed",
                    self.spec.job
                )))
            }
        };
        let dialect = db.dialect();
        let sql = format!(
            "UPDATE {} SET last_key = {}, key_kind = '{kind}', tally = {}, updated_at = {} WHERE job = {}",
            db.table(&self.spec.checkpoint),
            text_literal(dialect, &text),
            text_literal(dialect, &self.tally.encode()),
            now_micros(),
            text_literal(dialect, &self.spec.job)
        );
        db.execute(&sql).await?;
        if self.open {
            db.execute("COMMIT").await?;
            self.open = false;
        }
        self.pending = false;
        let seconds = self.started.elapsed().as_secs_f64();
        let per_second = if seconds > 0.0 {
            self.rows as f64 / seconds
        } else {
            0.0
        };
        tracing::info!(
            job = %self.spec.job,
            batch = self.batches,
            rows = self.rows,
            rows_per_second = per_second.round() as u64,
            so_far = %self.tally,
            "batch checkpointed"
        );
        Ok(())
    }
}

fn now_micros() -> i64 {
    migrate_core::time::Timestamp::now().as_micros()
}
