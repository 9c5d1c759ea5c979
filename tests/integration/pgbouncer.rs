//! Behind a real PgBouncer in transaction mode (sqlx#1762): the advisory lock refuses instead
//! of silently losing mutual exclusion, a client that forgot the setting is told what is wrong,
//! and with `transaction_pooling` runs and fleets work, serialized by the lock row.

use crate::harness::{error_chain, TestDb};
use crate::MIGRATIONS;
use migrate::fleet::{Fleet, FleetOutcome};
use migrate::postgres::{LockMode, PgDb};
use migrate::testing::{Backend, PgBouncer};
use migrate::{ConnectOptions, MigrationManager};

async fn bouncer(db: &TestDb, users: &[&str]) -> Option<PgBouncer> {
    PgBouncer::start(db.url(), users).unwrap_or_else(|e| panic!("pgbouncer: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_pgbouncer_runs_need_transaction_pooling_and_advisory_locks_refuse() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let Some(pgbouncer) = bouncer(&db, &["postgres"]).await else {
        return;
    };
    let url = pgbouncer.url(db.url());

    // Advisory locks do not hold there: asked for anyway, every run refuses, changing nothing.
    let advisory = PgDb::connect(&url)
        .await
        .expect("connect")
        .behind_transaction_pooler()
        .with_lock_mode(LockMode::Advisory);
    let m = MigrationManager::new(advisory, [&MIGRATIONS]).expect("graph");
    let err = m
        .up()
        .await
        .expect_err("advisory mode refuses behind the proxy");
    assert!(
        err.to_string().contains("advisory locks do not hold"),
        "{err}"
    );
    assert!(
        !db.has_table("session").await,
        "the refused run changed nothing"
    );

    // Forgotten: loud, and the error says what to do, in its message or its cause's (a step
    // whose own prepared statement lands on another server connection fails as a step).
    // Several runners at once, so that the proxy hands their statements to each other's
    // server connections.
    let mut runs = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        runs.push(tokio::spawn(async move {
            let m = MigrationManager::new(migrate::connect(&url).await?, [&MIGRATIONS])?;
            m.up().await.map(|_| ())
        }));
    }
    let mut told = None;
    for run in runs {
        if let Err(err) = run.await.expect("task") {
            // Its message, then its causes'.
            let chain: Vec<String> = error_chain(&err).map(ToString::to_string).collect();
            told = Some(chain.join(": "));
        }
    }
    let told = told.expect("named prepared statements fail behind the proxy");
    assert!(
        told.contains("transaction-pooling proxy") && told.contains("transaction_pooling"),
        "{told}"
    );

    // With the setting: up, status and a second up, serialized by the lock row.
    let options = ConnectOptions::new().transaction_pooling(true);
    let m = MigrationManager::new(
        migrate::connect_with(&url, &options)
            .await
            .expect("connect"),
        [&MIGRATIONS],
    )
    .expect("graph");
    m.up().await.expect("up");
    assert!(m.up().await.expect("again").applied.is_empty());
    assert!(db.has_column("session", "state").await);
    let status = m.status().await.expect("status");
    assert!(
        status.iter().all(|s| s.current.as_ref() == Some(&s.latest)),
        "{status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_runs_through_pgbouncer_and_names_the_broken_tenants() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let role_url = crate::fleet::tenants(&db).await;
    let role = role_url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('@').next())
        .unwrap_or_default()
        .to_string();
    let Some(pgbouncer) = bouncer(&db, &["postgres", &role]).await else {
        return;
    };
    let url = pgbouncer.url(&role_url);
    let options = ConnectOptions::new().transaction_pooling(true);
    let fleet = Fleet::new([&MIGRATIONS])
        .connect_options(options)
        .all_schemas(&url, Some("tenant\\_%"))
        .await
        .expect("schemas through the proxy")
        .concurrency(4);
    let report = fleet.up().await;
    assert_eq!(report.outcome, FleetOutcome::PartlyFailed);
    let failed: Vec<String> = report
        .failures()
        .map(|(t, _)| {
            t.to_string()
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(failed, ["tenant_03", "tenant_06", "tenant_09"]);
    assert_eq!(report.succeeded(), 9);
    let again = fleet.up().await;
    assert_eq!(again.succeeded(), 9);
    for target in &again.targets {
        if let migrate::fleet::TargetOutcome::Ran(run) = &target.outcome {
            assert!(
                run.applied.is_empty(),
                "{} did more than read its state",
                target.target
            );
        }
    }
}
