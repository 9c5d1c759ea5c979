//! `migrate::cli` over many targets and through a pooler: a fleet of schemas from the command
//! line (all schemas matching a pattern, or a targets file), and `--transaction-pooling`
//! through a throwaway PgBouncer, refused where it does not belong.

use crate::cli::expect;
use migrate::cli::exit;
use migrate::testing::Backend;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_runs_from_the_command_line_over_all_schemas_or_a_targets_file() {
    let Some(db) = crate::harness::TestDb::new(Backend::Postgres).await else {
        return;
    };
    let url = crate::fleet::tenants(&db).await;
    let all = [
        "--all-schemas",
        "--schema-like",
        "tenant\\_%",
        "--concurrency",
        "3",
    ];
    let run = expect(&url, &[&["up"][..], &all[..]].concat(), exit::FAILED).await;
    assert!(
        run.stdout.contains("FAILED  ")
            && run
                .stdout
                .contains("schema tenant_03: migration integration:metrics@2.5.0"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("ok      ")
            && run.stdout.contains("schema tenant_00: 10 step(s) applied"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("fleet up: 9 of 12 targets succeeded (partly failed)"),
        "{}",
        run.stdout
    );
    let verify = expect(
        &url,
        &[&["--json", "verify"][..], &all[..]].concat(),
        exit::FAILED,
    )
    .await
    .json();
    assert_eq!(verify["outcome"], "partly_failed");
    assert_eq!(verify["targets"].as_array().map(Vec::len), Some(12));

    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("targets");
    std::fs::write(
        &file,
        format!("\u{feff}# two tenants\n{url} tenant_00 # the first\n{url} tenant_01\n"),
    )
    .expect("write");
    let file = file.display().to_string();
    let status = expect(&url, &["status", "--targets", &file], exit::OK).await;
    assert!(
        status
            .stdout
            .contains("fleet status: 2 of 2 targets succeeded (all succeeded)"),
        "{}",
        status.stdout
    );
    // `status --check` gates over a fleet as over one database: the two tenants are up to
    // date, while the whole fleet has tenants whose step failed, with steps pending.
    expect(&url, &["status", "--check", "--targets", &file], exit::OK).await;
    let gate = expect(
        &url,
        &[&["status", "--check"][..], &all[..]].concat(),
        exit::FAILED,
    )
    .await;
    assert!(gate.stdout.contains("FAILED  "), "{}", gate.stdout);
    assert!(
        gate.stdout.contains("fleet status --check: "),
        "{}",
        gate.stdout
    );
    // Plain `status` reads without judging, but names what needs an operator: tenant_06's
    // `eval` is dirty (it printed "ok" for it).
    let listed = crate::cli::cli(&url, &[&["status"][..], &all[..]].concat()).await;
    let tenant_06 = listed
        .stdout
        .lines()
        .find(|line| line.contains("schema tenant_06:"))
        .unwrap_or_default();
    assert!(
        tenant_06.starts_with("ATTEND ") && tenant_06.contains("needs attention: eval (dirty)"),
        "{}",
        listed.stdout
    );
    let tenant_00 = listed
        .stdout
        .lines()
        .find(|line| line.contains("schema tenant_00:"))
        .unwrap_or_default();
    assert!(tenant_00.starts_with("ok "), "{}", listed.stdout);
    let bad = expect(
        &url,
        &[&["up", "--to", "2.0.0"][..], &all[..]].concat(),
        exit::USAGE,
    )
    .await;
    assert!(bad.stderr.contains("do not combine"), "{}", bad.stderr);
    // No target at all is refused, not reported as a fleet that succeeded.
    let none = expect(
        &url,
        &["status", "--all-schemas", "--schema-like", "no\\_such\\_%"],
        exit::USAGE,
    )
    .await;
    assert!(
        none.stderr
            .contains("no schema of the server matches --schema-like"),
        "{}",
        none.stderr
    );
    // Settings no target can take are refused before anything connects, as for one
    // database (they failed every target after connecting to it, exit 1).
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    std::fs::write(&file, format!("{url} tenant_00\n{sqlite}\n")).expect("write");
    let pooled = expect(
        &url,
        &["--transaction-pooling", "up", "--targets", &file],
        exit::USAGE,
    )
    .await;
    assert!(
        pooled
            .stderr
            .contains("transaction pooling is for PostgreSQL"),
        "{}",
        pooled.stderr
    );
    let named = expect(
        &url,
        &["--tracking-table", "x{y", "up", "--targets", &file],
        exit::USAGE,
    )
    .await;
    assert!(named.stderr.contains("x{y"), "{}", named.stderr);
    assert!(!dir.path().join("a.db").exists(), "nothing connected");
    // A target named twice would race itself for its lock.
    std::fs::write(
        &file,
        format!("{url} tenant_00\n{url} tenant_01\n{url} tenant_00\n"),
    )
    .expect("write");
    let twice = expect(&url, &["up", "--targets", &file], exit::USAGE).await;
    assert!(
        twice.stderr.contains("line 3") && twice.stderr.contains("first on line 1"),
        "{}",
        twice.stderr
    );
    std::fs::write(&file, "# nobody yet\n").expect("write");
    let empty = expect(&url, &["status", "--targets", &file], exit::USAGE).await;
    assert!(
        empty.stderr.contains("the fleet has no targets"),
        "{}",
        empty.stderr
    );
    // A schema for every target would be dropped: refused.
    let bad = expect(
        &url,
        &[&["--schema", "tenant_00", "up"][..], &all[..]].concat(),
        exit::USAGE,
    )
    .await;
    assert!(
        bad.stderr.contains("--schema does not combine"),
        "{}",
        bad.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_pooling_runs_the_commands_through_pgbouncer_and_is_refused_elsewhere() {
    if let Some(db) = crate::harness::TestDb::new(Backend::Postgres).await {
        if let Some(pgbouncer) = migrate::testing::PgBouncer::start(db.url(), &["postgres"])
            .unwrap_or_else(|e| panic!("pgbouncer: {e}"))
        {
            let url = pgbouncer.url(db.url());
            let up = expect(&url, &["--transaction-pooling", "--json", "up"], exit::OK)
                .await
                .json();
            assert_eq!(
                up["report"]["applied"].as_array().map(Vec::len),
                Some(10),
                "{up}"
            );
            expect(
                &url,
                &["--transaction-pooling", "status", "--check"],
                exit::OK,
            )
            .await;
            expect(&url, &["--transaction-pooling", "verify"], exit::OK).await;
            let history = expect(
                &url,
                &["--transaction-pooling", "--json", "history"],
                exit::OK,
            )
            .await
            .json();
            assert_eq!(
                history["history"].as_array().map(Vec::len),
                Some(10),
                "{history}"
            );
        }
    }
    let dir = tempfile::tempdir().expect("dir");
    let sqlite = format!("sqlite://{}?mode=rwc", dir.path().join("a.db").display());
    let refused = expect(&sqlite, &["--transaction-pooling", "status"], exit::USAGE).await;
    assert!(
        refused
            .stderr
            .contains("transaction pooling is for PostgreSQL"),
        "{}",
        refused.stderr
    );
    assert!(
        !dir.path().join("a.db").exists(),
        "refused before any file was created"
    );
}
