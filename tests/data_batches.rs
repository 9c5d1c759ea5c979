//! `migrate::data::Batches` on every backend, through a real `resumable` migration: keyset
//! batches, a checkpoint per batch, a run cut off after three batches that the next `up`
//! resumes on its own, idempotent upserts that never overwrite newer rows, and exact counts.

use migrate::backend::MigrationFuture;
use migrate::data::{Batches, Upsert};
use migrate::registry::{Migration, MigrationSet, Reversal};
use migrate::testing::{Backend, TestDatabase};
use migrate::{Conn, Dialect, Error, MigrationManager, Result};
use sqlx::{AssertSqlSafe, Connection};
use std::sync::Mutex;

migrate::migrations! {}

const ROWS: i64 = 1_050;
const BATCH: usize = 100;

/// How many batches the step may finish before it fails (the `copy_control` row), if any.
async fn stop_after(db: &mut Conn<'_>) -> Result<Option<i64>> {
    if !db.table_exists("copy_control").await? {
        return Ok(None);
    }
    let rows = db.query("SELECT stop_after FROM copy_control").await?;
    Ok(rows.first().and_then(|r| r.get(0)).and_then(|v| v.as_i64()))
}

/// A second table, so that an up can leave `copy` out.
#[migrate::migration(table = "notes", version = "1.0.0", down = drop_notes)]
async fn create_notes(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY)")
        .await?;
    Ok(())
}
async fn drop_notes(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE IF EXISTS notes").await?;
    Ok(())
}

#[migrate::migration(table = "copy", version = "1.0.0", transaction = false, resumable, down = forget_copy)]
async fn copy_rows(db: &mut Conn<'_>) -> Result<()> {
    let stop = stop_after(db).await?;
    let mut job = Batches::new("copy_rows", "source", "id")
        .columns(&["id", "payload", "updated_at"])
        .batch_size(BATCH)
        .start(db)
        .await?;
    let mut batches = 0;
    while let Some(rows) = job.next(db).await? {
        let ids: Vec<String> = rows
            .iter()
            .filter_map(|r| r.get(0))
            .map(|v| format!("{}", v.as_i64().unwrap_or(-1)))
            .collect();
        let existing = db
            .query(&format!(
                "SELECT id, updated_at FROM {{{{tables.target}}}} WHERE id IN ({})",
                ids.join(", ")
            ))
            .await?;
        let newer_than = |id: i64, at: i64| {
            existing.iter().any(|r| {
                r.get(0).and_then(|v| v.as_i64()) == Some(id)
                    && r.get(1).and_then(|v| v.as_i64()).is_some_and(|t| t >= at)
            })
        };
        let mut upsert =
            Upsert::new("target", &["id"], &["payload", "updated_at"]).newer_wins("updated_at");
        for row in &rows {
            let id = row.get(0).and_then(|v| v.as_i64()).unwrap_or_default();
            let at = row.get(2).and_then(|v| v.as_i64()).unwrap_or_default();
            if row.get(1).and_then(|v| v.as_str()) == Some("bad") {
                job.tally().refused("the payload is not JSON");
            } else if newer_than(id, at) {
                job.tally().skipped("a newer row exists");
            } else {
                upsert.row(row.values().to_vec());
                job.tally().moved(1);
            }
        }
        if !upsert.is_empty() {
            db.execute(&upsert.sql(db.dialect())?).await?;
        }
        batches += 1;
        if stop == Some(batches) {
            return Err(Error::msg(format!("told to stop during batch {batches}")));
        }
    }
    let tally = job.finish(db).await?;
    let sql = format!(
        "INSERT INTO copy_result (moved, skipped, refused, report) VALUES ({}, {}, {}, {})",
        tally.moved_count(),
        tally.skipped_count(),
        tally.refused_count(),
        db.dialect().quote_literal(&tally.to_string())
    );
    db.execute(&sql).await?;
    Ok(())
}
async fn forget_copy(db: &mut Conn<'_>) -> Result<()> {
    Batches::forget(db, "copy_rows", migrate::data::DEFAULT_CHECKPOINT_TABLE).await
}

async fn sql(db: &TestDatabase, statements: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for statement in statements {
        let q = || sqlx::raw_sql(AssertSqlSafe(statement.clone()));
        let url = db.url();
        macro_rules! run {
            ($conn:ty) => {{
                let mut conn = <$conn>::connect(url).await.expect("connect");
                let rows = q()
                    .fetch_all(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
                rows.iter()
                    .map(|row| {
                        use sqlx::Row;
                        (0..row.len())
                            .map(|i| {
                                row.try_get::<i64, _>(i)
                                    .map(|v| v.to_string())
                                    .or_else(|_| row.try_get::<i32, _>(i).map(|v| v.to_string()))
                                    .or_else(|_| row.try_get::<String, _>(i))
                                    .unwrap_or_else(|_| "NULL".to_string())
                            })
                            .collect::<Vec<_>>()
                    })
                    .collect::<Vec<_>>()
            }};
        }
        out.extend(match db.backend() {
            Backend::Sqlite => run!(sqlx::SqliteConnection),
            Backend::Postgres => run!(sqlx::PgConnection),
            Backend::MySql => run!(sqlx::MySqlConnection),
        });
    }
    out
}

async fn one(db: &TestDatabase, statement: &str) -> String {
    sql(db, &[statement.to_string()])
        .await
        .first()
        .and_then(|r| r.first())
        .cloned()
        .unwrap_or_default()
}

fn seed() -> Vec<String> {
    let mut statements = vec![
        "CREATE TABLE source (id BIGINT UNIQUE, payload VARCHAR(20), updated_at BIGINT)".to_string(),
        "CREATE TABLE target (id BIGINT PRIMARY KEY, payload VARCHAR(20), updated_at BIGINT)".to_string(),
        "CREATE TABLE copy_result (moved BIGINT, skipped BIGINT, refused BIGINT, report VARCHAR(400))".to_string(),
        "CREATE TABLE copy_control (stop_after BIGINT)".to_string(),
        "INSERT INTO copy_control VALUES (4)".to_string(),
        // Rows 1..=5 were rewritten after the export: newer than the source, never overwritten.
        "INSERT INTO target VALUES (1, 'newer', 9000000), (2, 'newer', 9000000), (3, 'newer', 9000000), (4, 'newer', 9000000), (5, 'newer', 9000000)".to_string(),
        // Row 6 is older: the source wins.
        "INSERT INTO target VALUES (6, 'stale', 0)".to_string(),
        "INSERT INTO source VALUES (NULL, 'no key', 1), (NULL, 'no key', 1), (NULL, 'no key', 1)".to_string(),
    ];
    let mut values = Vec::new();
    for id in 1..=ROWS {
        let payload = if id % 97 == 0 {
            "bad".to_string()
        } else {
            format!("p{id}")
        };
        values.push(format!("({id}, '{payload}', {})", 1000 + id));
        if values.len() == 200 || id == ROWS {
            statements.push(format!("INSERT INTO source VALUES {}", values.join(", ")));
            values.clear();
        }
    }
    statements
}

async fn batches_resume_and_count_exactly(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    sql(&db, &seed()).await;
    let manager = MigrationManager::new(db.executor().await.expect("executor"), [&MIGRATIONS])
        .expect("graph");

    // Cut off in the fourth batch: three batches are checkpointed, the fourth rolled back.
    let err = manager.up().await.expect_err("told to stop");
    assert!(err.to_string().contains("copy@1.0.0"), "{err}");
    assert_eq!(
        one(
            &db,
            "SELECT last_key FROM migrate_data_checkpoints WHERE job = 'copy_rows'"
        )
        .await,
        "300"
    );
    assert_eq!(
        one(&db, "SELECT COUNT(*) FROM target").await,
        "297",
        "ids 1..=300 but 97, 194 and 291 (refused); 1..=5 newer and untouched"
    );
    // An up of another table leaves the cut-off step's mark, which guards it until an up runs
    // it (before, every up cleared every resumable mark, whatever it ran).
    manager.up().table("notes").await.expect("notes");
    let status = manager.status().await.expect("status");
    let status: Vec<_> = status.into_iter().filter(|s| s.table == "copy").collect();
    assert!(
        status[0].dirty.is_some() && status[0].resumes,
        "the cut-off journalled step is marked, as one the next up resumes: {:?}",
        status[0]
    );
    // Start-up's check calls it pending work (apply resumes it), not a dirty mark to repair:
    // `repair --completed` would record a half-copied job as done.
    let problems = migrate::startup::Problem::of(&status[0]);
    assert_eq!(
        problems
            .iter()
            .map(migrate::startup::Problem::kind)
            .collect::<Vec<_>>(),
        ["behind"],
        "{problems:?}"
    );

    // `repair --completed` would record the half-copied job as done: refused, nothing changed.
    let err = manager
        .resolve_dirty("copy", migrate::manager::Resolution::Completed)
        .await
        .expect_err("a resumable step cut off is not settled by hand");
    assert!(
        matches!(err, Error::Config(_)) && err.to_string().contains("resumes it"),
        "{err}"
    );
    // A dry run plans what the run would: the step resumed (it refused with Dirty before).
    let dry = manager.up().dry_run(true).await.expect("dry run");
    assert!(
        dry.planned
            .iter()
            .any(|p| p.step.to_string().contains("copy@1.0.0")),
        "{dry:?}"
    );
    // A run refused for another table's mark clears nothing (it cleared the copy's mark first,
    // leaving it to be taken down over its half-done job).
    let marked =
        "UPDATE migrate_schema_versions SET dirty_version = '1.0.0', dirty_name = 'create_notes', \
                  dirty_direction = 'down', dirty_since = 1 WHERE table_name = 'notes'";
    sql(&db, &[marked.to_string()]).await;
    let err = manager.up().await.expect_err("notes is dirty");
    assert!(matches!(err, Error::Dirty { .. }), "{err}");
    let copy = manager.status().await.expect("status");
    assert!(
        copy.iter().any(|s| s.table == "copy" && s.resumes),
        "the copy's mark is still there: {copy:?}"
    );
    let unmarked = "UPDATE migrate_schema_versions SET dirty_version = NULL, dirty_name = NULL, \
                    dirty_direction = NULL, dirty_since = NULL WHERE table_name = 'notes'";
    sql(&db, &[unmarked.to_string()]).await;

    // The next run clears the mark of the resumable step, resumes after id 300, and counts the
    // whole job exactly.
    sql(&db, &["DELETE FROM copy_control".to_string()]).await;
    manager.up().await.expect("resumed");
    let result = sql(
        &db,
        &["SELECT moved, skipped, refused, report FROM copy_result".to_string()],
    )
    .await;
    let bad = ROWS / 97;
    assert_eq!(
        result[0][..3],
        [
            (ROWS - bad - 5).to_string(),
            "5".to_string(),
            (bad + 3).to_string()
        ],
        "{:?}",
        result[0]
    );
    assert!(
        result[0][3].contains("3 refused: the key column `id` is NULL"),
        "{}",
        result[0][3]
    );
    assert_eq!(
        one(&db, "SELECT COUNT(*) FROM target").await,
        (ROWS - bad).to_string()
    );
    assert_eq!(
        one(&db, "SELECT payload FROM target WHERE id = 1").await,
        "newer"
    );
    assert_eq!(
        one(&db, "SELECT payload FROM target WHERE id = 6").await,
        "p6"
    );
    assert_eq!(
        one(
            &db,
            "SELECT done FROM migrate_data_checkpoints WHERE job = 'copy_rows'"
        )
        .await,
        "1"
    );
    if backend == Backend::MySql {
        // Job names and tallies in any language, compared exactly, whatever the database's
        // defaults (the suite's server defaults to latin1 and an accent-insensitive collation).
        assert_eq!(
            one(
                &db,
                "SELECT TABLE_COLLATION FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'migrate_data_checkpoints'"
            )
            .await,
            "utf8mb4_bin"
        );
    }

    // Run again with force: the job is done, and an upsert replayed changes nothing.
    let before = sql(
        &db,
        &["SELECT id, payload, updated_at FROM target ORDER BY id".to_string()],
    )
    .await;
    manager.up().force(true).await.expect("forced re-run");
    let after = sql(
        &db,
        &["SELECT id, payload, updated_at FROM target ORDER BY id".to_string()],
    )
    .await;
    assert_eq!(before, after);

    // The down forgets the checkpoint, so that the next up starts over.
    manager.down().to_base().await.expect("down");
    assert_eq!(
        one(&db, "SELECT COUNT(*) FROM migrate_data_checkpoints").await,
        "0"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_on_sqlite() {
    batches_resume_and_count_exactly(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_on_postgres() {
    batches_resume_and_count_exactly(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_on_mysql() {
    batches_resume_and_count_exactly(Backend::MySql).await;
}

/// A set of its own, built at run time: one step that opens jobs it should be refused.
static REFUSALS: MigrationSet = MigrationSet::__new("batch_refusals", "data_batches", &[]);

/// What each database's step was told, by dialect (the backends' tests run at once).
static REFUSED: Mutex<Vec<(Dialect, String)>> = Mutex::new(Vec::new());

/// What each database's step was told about jobs whose source is wrong, by dialect.
static UNREADABLE: Mutex<Vec<(Dialect, String)>> = Mutex::new(Vec::new());

/// Jobs whose source cannot be read: a table, key, column or filter that is not there, and a
/// table name that ends its `{{tables.…}}` placeholder early. Each fails before anything is
/// written, naming the job.
fn bad_sources() -> Vec<Batches> {
    vec![
        Batches::new("copy", "no_such_table", "id"),
        Batches::new("copy", "source", "no_such_key"),
        Batches::new("copy", "source", "id").columns(&["id", "no_such_column"]),
        Batches::new("copy", "source", "id").filter("no_such_column = 1"),
        Batches::new("copy", "sou}}rce", "id"),
        // A key no job can page by: refused by `start`, before the checkpoint is written
        // (at the first batch, its row held the job's name against the corrected job).
        Batches::new("copy", "source", "ratio"),
    ]
}

/// Job names and batch sizes `start` must refuse: blank, whitespace at either end (MySQL's
/// binary collation ignores trailing spaces, so `copy ` would share `copy`'s checkpoint), too
/// long for the checkpoint table's key, and sizes out of range.
fn bad_jobs() -> Vec<(String, usize)> {
    let mut jobs: Vec<(String, usize)> = ["", "  ", " copy", "copy ", "copy\n", "\tcopy", "co\0py"]
        .into_iter()
        .map(|job| (job.to_string(), BATCH))
        .collect();
    jobs.push(("j".repeat(192), BATCH));
    jobs.push(("copy".to_string(), 0));
    jobs.push(("copy".to_string(), 1_000_001));
    jobs
}

fn start_bad_jobs<'a>(db: &'a mut Conn<'_>) -> MigrationFuture<'a> {
    Box::pin(async move {
        for (job, size) in bad_jobs() {
            let started = Batches::new(&job, "source", "id")
                .batch_size(size)
                .start(db)
                .await;
            let told = match started {
                Err(Error::Config(message)) => message,
                Err(other) => format!("another error: {other}"),
                Ok(_) => format!("accepted: {job:?} in batches of {size}"),
            };
            let mut refused = REFUSED.lock().unwrap_or_else(|e| e.into_inner());
            refused.push((db.dialect(), told));
        }
        // A checkpoint table that cannot be one.
        let blank = Batches::new("copy", "source", "id")
            .checkpoint_table(" ")
            .start(db)
            .await;
        let told = match blank {
            Err(Error::Config(message)) => message,
            Err(other) => format!("another error: {other}"),
            Ok(_) => "accepted a blank checkpoint table".to_string(),
        };
        REFUSED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((db.dialect(), told));
        db.execute(
            "CREATE TABLE source (id INTEGER PRIMARY KEY, payload TEXT, ratio DOUBLE PRECISION)",
        )
        .await?;
        db.execute("INSERT INTO source (id, payload, ratio) VALUES (1, 'one', 0.5)")
            .await?;
        for job in bad_sources() {
            let told = match job.start(db).await {
                Err(err) => err.to_string(),
                Ok(_) => "accepted".to_string(),
            };
            let mut unreadable = UNREADABLE.lock().unwrap_or_else(|e| e.into_inner());
            unreadable.push((db.dialect(), told));
        }
        // Jobs at the edges that must still work, each with a checkpoint table of its own
        // (the refusals above must leave the default one uncreated): SQLite's rowid as the key
        // (no column of the catalog's), and a job already done whose source a later step
        // dropped (it never reads its source again).
        if db.dialect() == Dialect::Sqlite {
            let mut by_rowid = Batches::new("by_rowid", "source", "rowid")
                .checkpoint_table("rowid_checkpoints")
                .start(db)
                .await?;
            while by_rowid.next(db).await?.is_some() {}
            by_rowid.finish(db).await?;
        }
        db.execute("CREATE TABLE dropped_later (id INTEGER PRIMARY KEY)")
            .await?;
        let done =
            || Batches::new("done_job", "dropped_later", "id").checkpoint_table("done_checkpoints");
        let mut job = done().start(db).await?;
        while job.next(db).await?.is_some() {}
        job.finish(db).await?;
        db.execute("DROP TABLE dropped_later").await?;
        let mut again = done().start(db).await?;
        if again.next(db).await?.is_some() {
            return Err(Error::msg("a job already done read rows again"));
        }
        check_sources_are_kept(db).await?;
        // `forget` takes the same names: `copy ` must not delete `copy`'s checkpoint.
        for (job, size) in bad_jobs().into_iter().filter(|(_, size)| *size == BATCH) {
            let forgot = Batches::forget(db, &job, migrate::data::DEFAULT_CHECKPOINT_TABLE).await;
            let told = match forgot {
                Err(Error::Config(message)) => message,
                Err(other) => format!("another error: {other}"),
                Ok(()) => format!("forgot: {job:?} in batches of {size}"),
            };
            let mut refused = REFUSED.lock().unwrap_or_else(|e| e.into_inner());
            refused.push((db.dialect(), told));
        }
        // The job's source table given where its checkpoint table belongs: refused, and none
        // of its rows deleted (it has a `job` column, as a table of jobs would).
        db.execute("CREATE TABLE jobs_of_users (job VARCHAR(20), owner VARCHAR(20))")
            .await?;
        db.execute("INSERT INTO jobs_of_users VALUES ('copy_rows', 'ann')")
            .await?;
        match Batches::forget(db, "copy_rows", "jobs_of_users").await {
            Err(Error::Config(message))
                if message.contains("`jobs_of_users` is not a checkpoint table") => {}
            other => return Err(Error::msg(format!("forget on a user table: {other:?}"))),
        }
        if db.query_i64("SELECT COUNT(*) FROM jobs_of_users").await? != 1 {
            return Err(Error::msg("forget deleted a user table's row"));
        }
        // A whitespace-only statement runs nothing, where MySQL would refuse an empty query.
        if db.execute("  \n ").await? != 0 {
            return Err(Error::msg("blank SQL affected rows"));
        }
        Ok(())
    })
}

/// A job's checkpoint row in `table`, as text.
async fn checkpoint_row(db: &mut Conn<'_>, table: &str, job: &str) -> Result<String> {
    let sql = format!(
        "SELECT source_table, source_key, done, updated_at FROM {table} WHERE job = '{job}'"
    );
    let rows = db.query(&sql).await?;
    Ok(format!("{:?}", rows.first().map(|r| r.values().to_vec())))
}

/// A job's checkpoint keeps the table and key it paged. The same name on another table or key
/// is refused, naming both, and the checkpoint is left as it was (a job done on
/// `dropped_later` would otherwise skip `source` whole). A checkpoint table from before
/// sources were kept gains the columns, and its row takes the resuming job's source.
async fn check_sources_are_kept(db: &mut Conn<'_>) -> Result<()> {
    let before = checkpoint_row(db, "done_checkpoints", "done_job").await?;
    if !before.contains("\"dropped_later\"") || !before.contains("\"id\"") {
        return Err(Error::msg(format!("the source was not kept: {before}")));
    }
    for (table, key) in [("source", "id"), ("dropped_later", "payload")] {
        let reused = Batches::new("done_job", table, key)
            .checkpoint_table("done_checkpoints")
            .start(db)
            .await;
        let expected = format!(
            "batch job `done_job` has a checkpoint in `done_checkpoints` for table \
             `dropped_later` (key `id`), not table `{table}` (key `{key}`): give this job \
             another name, or `Batches::forget` the old one"
        );
        match reused {
            Err(Error::Config(message)) if message == expected => {}
            Err(other) => return Err(Error::msg(format!("reused on {table}: {other:?}"))),
            Ok(_) => return Err(Error::msg(format!("a done job's name reused on {table}"))),
        }
    }
    let after = checkpoint_row(db, "done_checkpoints", "done_job").await?;
    if after != before {
        return Err(Error::msg(format!(
            "a refused job moved {before} to {after}"
        )));
    }

    // A checkpoint table as this crate wrote it before sources were kept.
    let legacy = |key| Batches::new("legacy", "source", key).checkpoint_table("legacy_checkpoints");
    legacy("id").start(db).await?;
    for column in ["source_table", "source_key"] {
        db.execute(&format!(
            "ALTER TABLE legacy_checkpoints DROP COLUMN {column}"
        ))
        .await?;
    }
    legacy("id").start(db).await?;
    let upgraded = checkpoint_row(db, "legacy_checkpoints", "legacy").await?;
    if !upgraded.starts_with("Some([Text(\"source\"), Text(\"id\"),") {
        return Err(Error::msg(format!("the old checkpoint took {upgraded}")));
    }
    // An upgrade cut off between its two columns is finished by the next start.
    db.execute("ALTER TABLE legacy_checkpoints DROP COLUMN source_key")
        .await?;
    legacy("id").start(db).await?;
    let finished = checkpoint_row(db, "legacy_checkpoints", "legacy").await?;
    if !finished.starts_with("Some([Text(\"source\"), Text(\"id\"),") {
        return Err(Error::msg(format!(
            "the half-upgraded checkpoint took {finished}"
        )));
    }
    match legacy("payload").start(db).await {
        Err(Error::Config(message)) if message.contains("for table `source` (key `id`)") => Ok(()),
        other => Err(Error::msg(format!(
            "the upgraded checkpoint's source was not checked: {:?}",
            other.map(|_| ())
        ))),
    }
}

async fn bad_jobs_are_refused_and_change_nothing(backend: Backend) {
    let Some(db) = TestDatabase::create(backend).await.expect("database") else {
        return;
    };
    let step: &'static Migration = Box::leak(Box::new(Migration::__new(
        &REFUSALS,
        "refusals",
        "1.0.0",
        None,
        "start_bad_jobs",
        start_bad_jobs,
        Reversal::Irreversible,
        // Outside a transaction: on PostgreSQL a failed read would end the step's transaction.
        false,
        None,
        "fnv1a64:0000000000000000",
        "data_batches.rs",
        1,
    )));
    let manager = MigrationManager::from_migrations(db.executor().await.expect("executor"), [step])
        .expect("graph");
    manager.up().await.expect("the step runs");
    let dialect = manager.backend().dialect();
    let told: Vec<String> = REFUSED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(d, _)| *d == dialect)
        .map(|(_, message)| message.clone())
        .collect();
    let bad_name = |job: &str| {
        format!(
            "a batch job's name must be 1 to 191 bytes, with no NUL and no whitespace at either \
             end, not `{}`",
            job.escape_debug()
        )
    };
    let started = bad_jobs().into_iter().map(|(job, size)| {
        if size == BATCH {
            bad_name(&job)
        } else {
            format!("batch size {size} for job `{job}` must be 1 to 1,000,000")
        }
    });
    let blank_checkpoint =
        "the checkpoint table ` ` must be 1 to 63 bytes, not blank, without NUL (it has 1 bytes)"
            .to_string();
    let forgotten = bad_jobs()
        .into_iter()
        .filter(|(_, size)| *size == BATCH)
        .map(|(job, _)| bad_name(&job));
    let expected: Vec<String> = started.chain([blank_checkpoint]).chain(forgotten).collect();
    assert_eq!(told, expected);
    let unreadable: Vec<String> = UNREADABLE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(d, _)| *d == dialect)
        .map(|(_, message)| message.clone())
        .collect();
    assert_eq!(unreadable.len(), bad_sources().len(), "{unreadable:?}");
    for (message, expected) in unreadable.iter().zip([
        "batch job `copy` cannot read table `no_such_table`",
        "batch job `copy` cannot read table `source`",
        "batch job `copy` cannot read table `source`",
        "batch job `copy` cannot read table `source`",
        // `{{tables.sou}}rce}}` would name another table: refused before anything is read.
        "batch job `copy`: table `sou}}rce` cannot be written as `{{tables.…}}`",
        "batch job `copy`: the key `ratio` must be an integer, exact numeric or text column",
    ]) {
        assert!(message.contains(expected), "{message}");
    }
    let created = manager
        .backend()
        .table_exists(migrate::data::DEFAULT_CHECKPOINT_TABLE)
        .await
        .expect("look for the checkpoint table");
    assert!(!created, "a refused job created the checkpoint table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_are_refused_on_sqlite() {
    bad_jobs_are_refused_and_change_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_are_refused_on_postgres() {
    bad_jobs_are_refused_and_change_nothing(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_jobs_are_refused_on_mysql() {
    bad_jobs_are_refused_and_change_nothing(Backend::MySql).await;
}
