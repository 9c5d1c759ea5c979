//! `round_trip_tests!` with options: a chosen list of backends, a data check around a step,
//! and `strict_column_order`, which turns a column that a down re-adds at the end from a
//! reported move into a failure.

use migrate::testing::{round_trip_with, Backend, DataCheck, RoundTrip, RoundTripOptions};
use migrate::{Conn, Error, Result};

migrate::migrations! {}

#[migrate::migration(table = "scores", version = "1.0.0", down = drop_scores)]
async fn create_scores(db: &mut Conn<'_>) -> Result<()> {
    db.execute("CREATE TABLE scores (id INTEGER PRIMARY KEY, label VARCHAR(20), score INTEGER)")
        .await?;
    Ok(())
}
async fn drop_scores(db: &mut Conn<'_>) -> Result<()> {
    db.execute("DROP TABLE scores").await?;
    Ok(())
}

/// The down puts `label` back at the end: the schema is the same but for the column's place.
#[migrate::migration(table = "scores", version = "1.1.0", parent = "1.0.0", down = re_add_label)]
async fn drop_label(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE scores DROP COLUMN label").await?;
    Ok(())
}
async fn re_add_label(db: &mut Conn<'_>) -> Result<()> {
    db.execute("ALTER TABLE scores ADD COLUMN label VARCHAR(20)")
        .await?;
    Ok(())
}

async fn seed(db: &mut Conn<'_>) -> Result<()> {
    db.execute("INSERT INTO scores (id, label, score) VALUES (1, 'a', 2), (2, 'b', 3)")
        .await?;
    Ok(())
}

async fn sum_is_five(db: &mut Conn<'_>) -> Result<()> {
    match db
        .query_i64("SELECT COALESCE(SUM(score), 0) FROM scores")
        .await?
    {
        5 => Ok(()),
        other => Err(Error::msg(format!("scores sum to {other}, expected 5"))),
    }
}

/// Scores survive the step and its down.
fn scores_kept() -> DataCheck {
    DataCheck::new()
        .seed(|db| Box::pin(seed(db)))
        .after_up(|db| Box::pin(sum_is_five(db)))
        .after_down(|db| Box::pin(sum_is_five(db)))
}

migrate::round_trip_tests!(
    MIGRATIONS;
    backends = [sqlite, postgres],
    strict_column_order = false,
    checks = { "scores@1.1.0" => scores_kept() },
);

/// The panic message of a stairway on SQLite with `options`, which must fail.
fn failing_stairway(options: &RoundTripOptions) -> String {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        round_trip_with(
            Backend::Sqlite,
            &[&MIGRATIONS],
            RoundTrip::Stairway,
            options,
        )
    }));
    let panic = outcome.expect_err("the stairway fails");
    panic.downcast_ref::<String>().cloned().unwrap_or_default()
}

/// The same migrations under `strict_column_order = true`: the stairway fails on the move, and
/// says which column moved.
#[test]
fn strict_column_order_fails_on_a_moved_column() {
    let message = failing_stairway(&RoundTripOptions::new().strict_column_order(true));
    assert!(
        message.contains("scores@1.1.0") && message.contains("column scores.label: moved"),
        "{message}"
    );
    // Without it, the same stairway passes.
    round_trip_with(
        Backend::Sqlite,
        &[&MIGRATIONS],
        RoundTrip::Stairway,
        &RoundTripOptions::new(),
    );
}

/// The data check runs, and a failing one fails the generated test's stairway.
#[test]
fn a_data_check_option_runs_in_the_stairway() {
    let failing = DataCheck::new()
        .after_down(|_db| Box::pin(async { Err(Error::msg("the check ran after the down")) }));
    let message = failing_stairway(&RoundTripOptions::new().check("scores@1.1.0", failing));
    assert!(
        message.contains("the check ran after the down"),
        "{message}"
    );
}

/// A misspelt option or an unknown backend fails the build with a message naming it
/// (`tests/ui-testing/*.stderr`).
#[rustversion::attr(
    not(stable(1.95)),
    ignore = "the .stderr snapshots are rustc 1.95's: run with that toolchain"
)]
#[test]
fn unknown_options_fail_the_build() {
    trybuild::TestCases::new().compile_fail("tests/ui-testing/*.rs");
}
