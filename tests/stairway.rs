//! The stairway catches wrong downs, on every backend: three deliberately wrong migrations (a
//! down that forgets an index, one that leaves a column behind, one that restores the wrong
//! default) each fail it with a precise message, while correct steps (a SQLite-style table
//! rebuild, a data migration with checks) pass and an irreversible step is passed over.

use migrate::testing::{Backend, DataCheck, Phase, Problem, Stairway};
use migrate::{Conn, Dialect, Error, Result};

migrate::migrations! {}

#[path = "stairway/catalog.rs"]
mod catalog;
#[path = "stairway/catalog_objects.rs"]
mod catalog_objects;

async fn run(db: &mut Conn<'_>, statements: &[&str]) -> Result<()> {
    for sql in statements {
        db.execute(sql).await?;
    }
    Ok(())
}

async fn nothing(_db: &mut Conn<'_>) -> Result<()> {
    Ok(())
}

// --- an up that fails, when the test on this thread says so ---------------------------------

thread_local! {
    /// Set by the test that wants `broken_up@1.1.0`'s up to fail (the stairway runs the
    /// migrations on the test's own thread; the other tests run on theirs).
    static FAIL_UP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

#[migrate::migration(table = "broken_up", version = "1.0.0", down = drop_broken_up)]
async fn create_broken_up(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["CREATE TABLE broken_up (id INTEGER PRIMARY KEY)"]).await
}
async fn drop_broken_up(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["DROP TABLE broken_up"]).await
}

#[migrate::migration(table = "broken_up", version = "1.1.0", parent = "1.0.0", down = drop_broken_a)]
async fn broken_a(db: &mut Conn<'_>) -> Result<()> {
    if FAIL_UP.with(std::cell::Cell::get) {
        return Err(Error::msg("broken_up@1.1.0 was told to fail"));
    }
    run(db, &["ALTER TABLE broken_up ADD COLUMN a INTEGER"]).await
}
async fn drop_broken_a(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["ALTER TABLE broken_up DROP COLUMN a"]).await
}

#[migrate::migration(table = "broken_up", version = "1.2.0", parent = "1.1.0", down = drop_broken_b)]
async fn broken_b(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["ALTER TABLE broken_up ADD COLUMN b INTEGER"]).await
}
async fn drop_broken_b(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["ALTER TABLE broken_up DROP COLUMN b"]).await
}

/// A table whose first step runs after `broken_up@1.1.0`: not reached when that one fails.
#[migrate::migration(table = "broken_dependent", version = "1.0.0", after = "broken_up@1.1.0", down = drop_broken_dependent)]
async fn create_broken_dependent(db: &mut Conn<'_>) -> Result<()> {
    run(
        db,
        &["CREATE TABLE broken_dependent (id INTEGER PRIMARY KEY)"],
    )
    .await
}
async fn drop_broken_dependent(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["DROP TABLE broken_dependent"]).await
}

// --- a down that forgets an index ---------------------------------------------------------

#[migrate::migration(table = "forgotten_index", version = "1.0.0", down = drop_forgotten_index)]
async fn create_forgotten_index(db: &mut Conn<'_>) -> Result<()> {
    run(
        db,
        &["CREATE TABLE forgotten_index (id INTEGER PRIMARY KEY, b VARCHAR(20))"],
    )
    .await
}
async fn drop_forgotten_index(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["DROP TABLE forgotten_index"]).await
}

#[migrate::migration(table = "forgotten_index", version = "1.1.0", parent = "1.0.0", down = nothing)]
async fn index_b(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["CREATE INDEX idx_forgotten_b ON forgotten_index (b)"]).await
}

// --- a down that leaves a column behind ---------------------------------------------------

#[migrate::migration(table = "leftover_column", version = "1.0.0", down = drop_leftover)]
async fn create_leftover(db: &mut Conn<'_>) -> Result<()> {
    run(
        db,
        &["CREATE TABLE leftover_column (id INTEGER PRIMARY KEY)"],
    )
    .await
}
async fn drop_leftover(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["DROP TABLE leftover_column"]).await
}

#[migrate::migration(table = "leftover_column", version = "1.1.0", parent = "1.0.0", down = forget_to_drop)]
async fn add_note(db: &mut Conn<'_>) -> Result<()> {
    run(
        db,
        &["ALTER TABLE leftover_column ADD COLUMN note VARCHAR(100)"],
    )
    .await
}
async fn forget_to_drop(db: &mut Conn<'_>) -> Result<()> {
    // Written as if "IF EXISTS" were enough; the column stays.
    if !db.column_exists("leftover_column", "note").await? {
        return Err(Error::msg("expected the column"));
    }
    Ok(())
}

// --- a down that restores the wrong default ------------------------------------------------

/// Sets the default of `wrong_default.status`; SQLite cannot alter a column, so it rebuilds
/// the table (its 12-step procedure, shortened).
async fn set_status_default(db: &mut Conn<'_>, default: &str) -> Result<()> {
    match db.dialect() {
        Dialect::Sqlite => {
            let create = format!(
                "CREATE TABLE wrong_default_new (id INTEGER PRIMARY KEY, status VARCHAR(16) DEFAULT '{default}')"
            );
            run(
                db,
                &[
                    &create,
                    "INSERT INTO wrong_default_new (id, status) SELECT id, status FROM wrong_default",
                    "DROP TABLE wrong_default",
                    "ALTER TABLE wrong_default_new RENAME TO wrong_default",
                ],
            )
            .await
        }
        _ => {
            let sql =
                format!("ALTER TABLE wrong_default ALTER COLUMN status SET DEFAULT '{default}'");
            run(db, &[&sql]).await
        }
    }
}

#[migrate::migration(table = "wrong_default", version = "1.0.0", down = drop_wrong_default)]
async fn create_wrong_default(db: &mut Conn<'_>) -> Result<()> {
    run(
        db,
        &["CREATE TABLE wrong_default (id INTEGER PRIMARY KEY, status VARCHAR(16) DEFAULT 'new')"],
    )
    .await
}
async fn drop_wrong_default(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["DROP TABLE wrong_default"]).await
}

#[migrate::migration(table = "wrong_default", version = "1.1.0", parent = "1.0.0", down = restore_wrong_default)]
async fn default_open(db: &mut Conn<'_>) -> Result<()> {
    set_status_default(db, "open").await
}
async fn restore_wrong_default(db: &mut Conn<'_>) -> Result<()> {
    set_status_default(db, "pending").await
}

// --- correct steps: a rebuild that restores exactly, a data migration, an irreversible step --

#[migrate::migration(table = "healthy", version = "1.0.0", down = drop_healthy)]
async fn create_healthy(db: &mut Conn<'_>) -> Result<()> {
    run(
        db,
        &[
            "CREATE TABLE healthy (id INTEGER PRIMARY KEY, score INTEGER NOT NULL DEFAULT 0, label VARCHAR(20) UNIQUE)",
            "CREATE INDEX idx_healthy_score ON healthy (score)",
        ],
    )
    .await
}
async fn drop_healthy(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["DROP TABLE healthy"]).await
}

#[migrate::migration(table = "healthy", version = "1.1.0", parent = "1.0.0", down = drop_percent)]
async fn add_percent(db: &mut Conn<'_>) -> Result<()> {
    run(
        db,
        &[
            "ALTER TABLE healthy ADD COLUMN percent INTEGER",
            "UPDATE healthy SET percent = score * 100",
        ],
    )
    .await
}
async fn drop_percent(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["ALTER TABLE healthy DROP COLUMN percent"]).await
}

#[migrate::migration(table = "healthy", version = "1.2.0", parent = "1.1.0", irreversible)]
async fn clear_labels(db: &mut Conn<'_>) -> Result<()> {
    run(db, &["UPDATE healthy SET label = NULL"]).await
}

async fn seed_scores(db: &mut Conn<'_>) -> Result<()> {
    run(
        db,
        &["INSERT INTO healthy (id, score, label) VALUES (1, 2, 'a'), (2, 3, 'b')"],
    )
    .await
}
async fn percent_filled(db: &mut Conn<'_>) -> Result<()> {
    let wrong = db
        .query_i64("SELECT COUNT(*) FROM healthy WHERE percent IS NULL OR percent <> score * 100")
        .await?;
    match wrong {
        0 => Ok(()),
        n => Err(Error::msg(format!("{n} rows without their percent"))),
    }
}
async fn scores_kept(db: &mut Conn<'_>) -> Result<()> {
    match db
        .query_i64("SELECT COALESCE(SUM(score), 0) FROM healthy")
        .await?
    {
        5 => Ok(()),
        other => Err(Error::msg(format!("scores sum to {other}, expected 5"))),
    }
}

/// Typed access through `migrate::ConnExt`: the accessor of the database the check runs on
/// reaches its sqlx connection (binds and typed rows), and another database's accessor is
/// refused with `WrongDialect`.
async fn typed_access(db: &mut Conn<'_>) -> Result<()> {
    use migrate::ConnExt;
    let other = match db.dialect() {
        Dialect::Sqlite => db.postgres().map(|_| ()),
        Dialect::Postgres => db.mysql().map(|_| ()),
        Dialect::MySql => db.sqlite().map(|_| ()),
    };
    if !matches!(other, Err(Error::WrongDialect { .. })) {
        return Err(Error::msg("another database's accessor must be refused"));
    }
    let count: i64 = match db.dialect() {
        Dialect::Sqlite => {
            let conn = db.sqlite()?;
            sqlx::query("INSERT INTO healthy (id, score) VALUES (?1, ?2)")
                .bind(99_i64)
                .bind(7_i64)
                .execute(&mut *conn)
                .await?;
            sqlx::query_scalar("SELECT COUNT(*) FROM healthy WHERE score = ?1")
                .bind(7_i64)
                .fetch_one(&mut *conn)
                .await?
        }
        Dialect::Postgres => {
            let conn = db.postgres()?;
            sqlx::query("INSERT INTO healthy (id, score) VALUES ($1, $2)")
                .bind(99_i32)
                .bind(7_i32)
                .execute(&mut *conn)
                .await?;
            sqlx::query_scalar("SELECT COUNT(*) FROM healthy WHERE score = $1")
                .bind(7_i32)
                .fetch_one(&mut *conn)
                .await?
        }
        Dialect::MySql => {
            let conn = db.mysql()?;
            sqlx::query("INSERT INTO healthy (id, score) VALUES (?, ?)")
                .bind(99_i64)
                .bind(7_i64)
                .execute(&mut *conn)
                .await?;
            sqlx::query_scalar("SELECT COUNT(*) FROM healthy WHERE score = ?")
                .bind(7_i64)
                .fetch_one(&mut *conn)
                .await?
        }
    };
    db.execute("DELETE FROM healthy WHERE id = 99").await?;
    match count {
        1 => Ok(()),
        other => Err(Error::msg(format!(
            "typed access saw {other} rows, expected 1"
        ))),
    }
}

fn stairway() -> Stairway {
    Stairway::new([&MIGRATIONS])
        .check(
            "healthy@1.0.0",
            DataCheck::new().after_up(|db| Box::pin(typed_access(db))),
        )
        .check(
            "healthy@1.1.0",
            DataCheck::new()
                .seed(|db| Box::pin(seed_scores(db)))
                .after_up(|db| Box::pin(percent_filled(db)))
                .after_down(|db| Box::pin(scores_kept(db))),
        )
}

fn assert_catches_the_wrong_downs(backend: Backend) {
    let Some(report) = migrate::testing::block_on(stairway().run(backend)).expect("stairway runs")
    else {
        return;
    };
    let failed: Vec<String> = report
        .failures
        .iter()
        .map(|f| format!("{}@{}", f.step.table, f.step.version))
        .collect();
    let mut expected = vec![
        "forgotten_index@1.1.0",
        "leftover_column@1.1.0",
        "wrong_default@1.1.0",
    ];
    expected.extend(catalog::wrong_on(backend));
    expected.sort_unstable();
    let mut failed = failed;
    failed.sort_unstable();
    assert_eq!(failed, expected, "exactly the wrong downs fail:\n{report}");
    for failure in &report.failures {
        assert_eq!(failure.phase, Phase::Down, "{failure}");
        let Problem::SchemaDiffers { diff } = &failure.problem else {
            panic!("a wrong down runs, and leaves a diff: {failure}");
        };
        let wanted = catalog::expected_change(&failure.step.table);
        assert!(
            diff.changes.iter().any(|line| line.contains(wanted)),
            "{}: expected a line with `{wanted}`: {:?}",
            failure.step,
            diff.changes
        );
    }
    let message = |table: &str| {
        report
            .failures
            .iter()
            .find(|f| f.step.table == table)
            .map(ToString::to_string)
            .unwrap_or_default()
    };
    let index = message("forgotten_index");
    assert!(
        index.contains("index on forgotten_index: idx_forgotten_b: added")
            && index.contains("forgotten_index@1.1.0"),
        "{index}"
    );
    let column = message("leftover_column");
    assert!(
        column.contains("column leftover_column.note: added"),
        "{column}"
    );
    let default = message("wrong_default");
    assert!(
        default.contains("column wrong_default.status: default changed from")
            && default.contains("'new'")
            && default.contains("'pending'"),
        "{default}"
    );
    let passed: Vec<String> = report
        .passed
        .iter()
        .map(|s| format!("{}@{}", s.table, s.version))
        .collect();
    for good in [
        "healthy@1.0.0",
        "healthy@1.1.0",
        "forgotten_index@1.0.0",
        "wrong_default@1.0.0",
    ] {
        assert!(
            passed.contains(&good.to_string()),
            "{good} passes: {report}"
        );
    }
    assert_eq!(report.irreversible.len(), 1, "{report}");
    assert_eq!(report.irreversible[0].table, "healthy");
    assert!(
        report.to_string().contains("irreversible, not reverted"),
        "{report}"
    );
}

#[test]
fn stairway_catches_wrong_downs_on_sqlite() {
    assert_catches_the_wrong_downs(Backend::Sqlite);
}

#[test]
fn stairway_catches_wrong_downs_on_postgres() {
    assert_catches_the_wrong_downs(Backend::Postgres);
}

#[test]
fn stairway_catches_wrong_downs_on_mysql() {
    assert_catches_the_wrong_downs(Backend::MySql);
}

#[test]
fn a_failing_data_check_names_its_step() {
    async fn never(_db: &mut Conn<'_>) -> Result<()> {
        Err(Error::msg("the data did not survive"))
    }
    let stairway = Stairway::new([&MIGRATIONS]).check(
        "healthy@1.1.0",
        DataCheck::new()
            .seed(|db| Box::pin(seed_scores(db)))
            .after_up(|db| Box::pin(never(db)))
            .after_down(|db| Box::pin(scores_kept(db))),
    );
    let report = migrate::testing::block_on(stairway.run(Backend::Sqlite))
        .expect("runs")
        .expect("sqlite is always there");
    let failure = report
        .failures
        .iter()
        .find(|f| f.step.table == "healthy")
        .expect("the data check failed");
    assert_eq!(failure.phase, Phase::Data);
    assert!(
        matches!(&failure.problem, Problem::Failed { error } if error.contains("the data did not survive")),
        "{failure}"
    );
    assert!(
        failure.to_string().contains("data check failed"),
        "{failure}"
    );
}

/// A check is a closure: it captures state, here a count of its runs and the expected sum.
#[test]
fn data_checks_are_closures_that_capture_state() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let runs = Arc::new(AtomicUsize::new(0));
    let expected = 5_i64;
    let counted = Arc::clone(&runs);
    let check = DataCheck::new()
        .seed(|db| Box::pin(seed_scores(db)))
        .after_down(move |db| {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let sum = db
                    .query_i64("SELECT COALESCE(SUM(score), 0) FROM healthy")
                    .await?;
                if sum == expected {
                    Ok(())
                } else {
                    Err(Error::msg(format!(
                        "scores sum to {sum}, expected {expected}"
                    )))
                }
            })
        });
    let report = migrate::testing::block_on(
        Stairway::new([&MIGRATIONS])
            .check("healthy@1.1.0", check)
            .run(Backend::Sqlite),
    )
    .expect("runs")
    .expect("sqlite is always there");
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the closure ran once, after the down"
    );
    assert!(
        report.failures.iter().all(|f| f.step.table != "healthy"),
        "{report}"
    );
}

#[test]
fn a_check_that_names_no_step_is_an_error_before_anything_runs() {
    let check = DataCheck::new().after_up(|db| Box::pin(nothing(db)));
    let stairway = Stairway::new([&MIGRATIONS]).check("healthy@1.9.0", check.clone());
    let err = migrate::testing::block_on(stairway.run(Backend::Sqlite)).expect_err("a typo");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("`healthy@1.9.0` names no linked migration")
            && text.contains("healthy@1.1.0"),
        "{text}"
    );
    // The module-qualified form is a name too.
    let module = MIGRATIONS.module();
    let qualified = Stairway::new([&MIGRATIONS]).check(&format!("{module}:healthy@1.1.0"), check);
    let report = migrate::testing::block_on(qualified.run(Backend::Sqlite))
        .expect("a qualified name is known")
        .expect("sqlite is always there");
    assert!(
        report.failures.iter().all(|f| f.step.table != "healthy"),
        "{:?}",
        report.failures
    );
    // An after_down on an irreversible step would never run.
    let never_down = Stairway::new([&MIGRATIONS]).check(
        "healthy@1.2.0",
        DataCheck::new().after_down(|db| Box::pin(nothing(db))),
    );
    let err = migrate::testing::block_on(never_down.run(Backend::Sqlite)).expect_err("never down");
    assert!(
        matches!(err, Error::Config(_)) && err.to_string().contains("irreversible"),
        "{err}"
    );
    // Two checks of one step (bare and qualified here): only the first would have run.
    let twice = Stairway::new([&MIGRATIONS])
        .check("healthy@1.1.0", DataCheck::new())
        .check(&format!("{module}:healthy@1.1.0"), DataCheck::new());
    let err = migrate::testing::block_on(twice.run(Backend::Sqlite)).expect_err("twice");
    assert!(
        matches!(err, Error::Config(_)) && err.to_string().contains("name the same step"),
        "{err}"
    );
}

#[test]
fn a_step_whose_up_fails_is_reported_with_every_other_step() {
    // Before, the walk rebuilt a database through the failing step, failed again, and the
    // whole report was lost to that one error.
    FAIL_UP.with(|f| f.set(true));
    let report = migrate::testing::block_on(stairway().run(Backend::Sqlite))
        .expect("the report comes back")
        .expect("sqlite is always there");
    FAIL_UP.with(|f| f.set(false));
    let up: Vec<String> = report
        .failures
        .iter()
        .filter(|f| f.phase == Phase::Up)
        .map(|f| f.step.to_string())
        .collect();
    assert_eq!(up.len(), 1, "{report}");
    assert!(up[0].contains("broken_up@1.1.0"), "{report}");
    // With its cause: the step's error alone names the step, not what went wrong.
    assert!(
        report
            .failures
            .iter()
            .any(|f| matches!(&f.problem, Problem::Failed { error } if error.contains("was told to fail"))),
        "{report}"
    );
    let mut not_reached: Vec<String> = report
        .not_reached
        .iter()
        .map(|s| format!("{}@{}", s.table, s.version))
        .collect();
    not_reached.sort();
    assert_eq!(
        not_reached,
        ["broken_dependent@1.0.0", "broken_up@1.2.0"],
        "its table's later step, and another table's step that runs after it: {report}"
    );
    // The wrong downs of the other tables are still found, after it.
    for wrong in ["forgotten_index", "leftover_column", "wrong_default"] {
        assert!(
            report.failures.iter().any(|f| f.step.table == wrong),
            "{wrong}: {report}"
        );
    }
    assert!(report
        .passed
        .iter()
        .any(|s| s.table == "broken_up" && s.version.to_string() == "1.0.0"));
    assert!(report.to_string().contains("not reached"), "{report}");
}

#[test]
fn a_step_whose_seed_and_up_both_fail_keeps_the_report() {
    // The seed fails first, so the up is never tried; the database rebuilt after the failure
    // then met the failing up, and that error replaced the whole report.
    async fn refuse(_db: &mut Conn<'_>) -> Result<()> {
        Err(Error::msg("the seed could not be written"))
    }
    FAIL_UP.with(|f| f.set(true));
    let walked = migrate::testing::block_on(
        Stairway::new([&MIGRATIONS])
            .check(
                "broken_up@1.1.0",
                DataCheck::new().seed(|db| Box::pin(refuse(db))),
            )
            .run(Backend::Sqlite),
    );
    FAIL_UP.with(|f| f.set(false));
    let report = walked
        .expect("the report comes back")
        .expect("sqlite is always there");
    let failed: Vec<(Phase, String)> = report
        .failures
        .iter()
        .filter(|f| f.step.table == "broken_up")
        .map(|f| (f.phase, format!("{:?}", f.problem)))
        .collect();
    assert!(
        failed.iter().any(|(phase, problem)| *phase == Phase::Data && problem.contains("could not be written"))
            && failed.iter().any(|(phase, problem)| *phase == Phase::Up && problem.contains("was told to fail")),
        "{report}"
    );
    assert!(
        report
            .not_reached
            .iter()
            .any(|s| s.table == "broken_up" && s.version.to_string() == "1.2.0"),
        "{report}"
    );
}
