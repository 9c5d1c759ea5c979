//! What a run tells `tracing`: a span per run and per step with its fields, an event as each
//! step ends with its duration and outcome, and, while a runner waits for the lock, an event at
//! least every 5 s naming the holder.

use crate::harness::TestDb;
use migrate::testing::Backend;
use std::time::Duration;

async fn spans_and_step_events(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (log, _guard) = crate::harness::capture(tracing::Level::INFO);
    let m = db.manager().await;
    m.up().table("session").target("2.1.0").await.expect("up");
    let text = log.text();
    let ended: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("migration step ended"))
        .collect();
    assert_eq!(ended.len(), 2, "one event per step:\n{text}");
    for line in &ended {
        for field in [
            "migrate_run{",
            "direction=up",
            "migrate_step{",
            "module=",
            "table=\"session\"",
            "version=",
            "duration_ms=",
            "outcome=\"applied\"",
        ] {
            assert!(line.contains(field), "{field} missing from {line}");
        }
    }
    assert!(
        text.contains("version=2.1.0") && text.contains("migration run ended"),
        "{text}"
    );
    // The run's span names the database, so that a process migrating several tells them apart.
    let database = db
        .url()
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or_default();
    assert!(
        ended
            .iter()
            .all(|l| l.contains("database=") && l.contains(database)),
        "{database}:\n{text}"
    );
}

/// A failed run's event carries the step's cause, which the run's error (`StepFailed`) leaves
/// to `source()`: an operator reading the log sees why, not only which step.
async fn a_failed_run_logs_its_cause(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    db.control("session@2.1.0", "fail").await;
    let (log, _guard) = crate::harness::capture(tracing::Level::WARN);
    let m = db.manager().await;
    m.up().table("session").await.expect_err("told to fail");
    let text = log.text();
    let failed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("migration run failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{text}");
    assert!(
        failed[0].contains("was told to fail"),
        "the cause is missing: {text}"
    );
    db.clear_control().await;
}

#[tokio::test]
async fn a_failed_run_logs_its_cause_on_sqlite() {
    a_failed_run_logs_its_cause(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_failed_run_logs_its_cause_on_postgres() {
    a_failed_run_logs_its_cause(Backend::Postgres).await;
}

#[tokio::test]
async fn a_failed_run_logs_its_cause_on_mysql() {
    a_failed_run_logs_its_cause(Backend::MySql).await;
}

#[tokio::test]
async fn every_step_has_a_span_and_an_end_event_on_sqlite() {
    spans_and_step_events(Backend::Sqlite).await;
}

#[tokio::test]
async fn every_step_has_a_span_and_an_end_event_on_postgres() {
    spans_and_step_events(Backend::Postgres).await;
}

#[tokio::test]
async fn every_step_has_a_span_and_an_end_event_on_mysql() {
    spans_and_step_events(Backend::MySql).await;
}

/// The lines of `text` that end a run, well or not.
fn run_ends(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("migration run ended") || l.contains("migration run failed"))
        .collect()
}

/// A check that finds the rows its manager's last verdict was reached from, right after a run
/// that ended up to date, ends at `debug`: a service that checks often writes no line at `info`
/// per check. Each manager's first check (its verdict found at the heads, even right after its
/// own apply) ends at `info`, and so does the first check after a failed run or a dry run.
async fn a_repeated_check_ends_at_debug(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (info, guard) = crate::harness::capture(tracing::Level::INFO);
    let applier = db.manager().await;
    applier.up().await.expect("up");
    assert_eq!(
        run_ends(&info.text()).len(),
        1,
        "the apply:\n{}",
        info.text()
    );
    let checker = db.manager().await;
    for m in [&applier, &checker, &checker, &applier, &checker] {
        let report = m.up().await.expect("a check");
        assert_eq!(report.status, migrate::report::ReportStatus::UpToDate);
    }
    let text = info.text();
    let ends = run_ends(&text);
    let checks = ends.get(1..).unwrap_or_default();
    assert_eq!(checks.len(), 2, "each manager's first check:\n{text}");
    for check in checks {
        assert!(check.contains("status=UpToDate"), "{check}");
    }
    drop(guard);
    let (debug, _guard) = crate::harness::capture(tracing::Level::DEBUG);
    checker.up().await.expect("a repeated check");
    let text = debug.text();
    let ends = run_ends(&text);
    assert_eq!(ends.len(), 1, "{text}");
    for field in ["DEBUG", "migrate_run{", "status=UpToDate", "steps=0"] {
        assert!(ends[0].contains(field), "{field} missing from {}", ends[0]);
    }
    drop(_guard);
    // A failed run (refused once the state is read) and a dry run each end otherwise: the
    // check after each says again, at `info`, that the database is up to date.
    let (info, _guard) = crate::harness::capture(tracing::Level::INFO);
    let refused = checker.up().table("session").target("2.0.0").await;
    assert!(refused.is_err(), "{refused:?}");
    checker.up().await.expect("the check after a failure");
    checker.up().dry_run(true).await.expect("a dry run");
    checker.up().await.expect("the check after a dry run");
    checker.up().await.expect("a repeated check");
    let text = info.text();
    let ends = run_ends(&text);
    let expected = [
        ("WARN", "migration run failed"),
        ("INFO", "status=UpToDate"),
        ("INFO", "status=DryRun"),
        ("INFO", "status=UpToDate"),
    ];
    assert_eq!(ends.len(), expected.len(), "{text}");
    for (line, (level, what)) in ends.iter().zip(expected) {
        assert!(
            line.contains(level) && line.contains(what),
            "{what} at {level}: {line}"
        );
    }
}

#[tokio::test]
async fn a_repeated_check_ends_at_debug_on_sqlite() {
    a_repeated_check_ends_at_debug(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_repeated_check_ends_at_debug_on_postgres() {
    a_repeated_check_ends_at_debug(Backend::Postgres).await;
}

#[tokio::test]
async fn a_repeated_check_ends_at_debug_on_mariadb() {
    a_repeated_check_ends_at_debug(Backend::MySql).await;
}

/// Holds the lock until the waiting runner has said so, once.
async fn lock_waits_are_reported(backend: Backend) {
    let Some(db) = TestDb::new(backend).await else {
        return;
    };
    let (log, _guard) = crate::harness::capture(tracing::Level::INFO);
    let holder = db.executor().await;
    let held = holder.lock(None).await.expect("hold the lock");
    // Released once the waiter has reported, whatever the machine's speed: one report.
    let watched = log.clone();
    let release = tokio::spawn(async move {
        while !watched.text().contains("waiting for the migration lock") {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        held.release().await.expect("release");
    });
    let m = db.manager().await;
    let report = m
        .up()
        .lock_timeout(Duration::from_secs(20))
        .await
        .expect("up after the wait");
    assert_eq!(report.applied.len(), 10);
    release.await.expect("released");
    let text = log.text();
    let waits: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("waiting for the migration lock"))
        .collect();
    assert_eq!(waits.len(), 1, "one report before the release:\n{text}");
    assert!(
        waits[0].contains("holder=") && waits[0].contains("waited_ms="),
        "{}",
        waits[0]
    );
}

#[tokio::test]
async fn a_waiting_runner_names_the_holder_on_sqlite() {
    lock_waits_are_reported(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_waiting_runner_names_the_holder_on_postgres() {
    lock_waits_are_reported(Backend::Postgres).await;
}

#[tokio::test]
async fn a_waiting_runner_names_the_holder_on_mariadb() {
    lock_waits_are_reported(Backend::MySql).await;
}

/// The tests' capture sees an event whose callsite another thread, capturing nothing, reached
/// first: `tracing` caches a callsite's interest for the whole process, and a capture through a
/// thread-local subscriber lost such an event when it was the only subscriber alive (the CI
/// failure of a debug-level test). Run alone, this test fails with such a capture; among the
/// whole suite's parallel tests it may not.
#[test]
fn a_capture_sees_a_callsite_that_another_thread_reached_first() {
    fn event() {
        tracing::debug!("reached from two threads");
    }
    let (log, _guard) = crate::harness::capture(tracing::Level::DEBUG);
    std::thread::spawn(event).join().expect("the other thread");
    assert!(
        log.text().is_empty(),
        "another thread's event: {}",
        log.text()
    );
    event();
    assert!(
        log.text().contains("reached from two threads"),
        "{}",
        log.text()
    );
}
