//! `migrate::startup::ensure`: one test per policy on every backend, and the example binary
//! reading `MIGRATE_ON_STARTUP` from its environment.

use crate::harness::{each_backend, example, v};
use migrate::startup::{ensure, Policy, Problem, StartupError};

each_backend! {
    async fn check_refuses_a_database_that_is_behind_ahead_or_dirty(db) {
        let m = db.manager().await;
        let err = ensure(&m, Policy::Check).await.expect_err("behind");
        let StartupError::NotReady { target, problems } = &err else { panic!("{err}") };
        assert!(problems.iter().all(Problem::is_behind) && problems.len() == 4, "{err}");
        let database = db.url().split('?').next().and_then(|u| u.rsplit('/').next()).expect("a database name");
        assert!(target.contains(database) && target.contains("tracking table migrate_schema_versions"), "names the database: {target}");
        assert!(err.to_string().contains(target.as_str()), "{err}");
        assert!(err.to_string().contains("run `up`"), "says how to fix it: {err}");
        assert!(!db.has_table("session").await, "check changes nothing");

        m.up().await.expect("up");
        let ready = ensure(&m, Policy::Check).await.expect("ready");
        assert_eq!((ready.policy, ready.report), (Policy::Check, None));

        db.exec("UPDATE migrate_schema_versions SET version = '2.9.0' WHERE table_name = 'session'").await;
        let err = ensure(&m, Policy::Check).await.expect_err("ahead");
        assert!(err.to_string().contains("is ahead"), "{err}");
        // A version between two declared ones is ahead only: the `up` that a "behind" would
        // ask for refuses it.
        db.exec("UPDATE migrate_schema_versions SET version = '2.2.0' WHERE table_name = 'session'").await;
        let err = ensure(&m, Policy::Check).await.expect_err("ahead");
        let StartupError::NotReady { problems, .. } = &err else { panic!("{err}") };
        assert_eq!(problems.iter().map(Problem::kind).collect::<Vec<_>>(), ["ahead"], "{err}");
        db.exec("UPDATE migrate_schema_versions SET version = '2.3.0', dirty_version = '2.3.0', dirty_name = 'session_2_3_0', dirty_direction = 'up', dirty_since = 1 WHERE table_name = 'session'").await;
        let err = ensure(&m, Policy::Check).await.expect_err("dirty");
        assert!(err.to_string().contains("is dirty") && err.to_string().contains("repair integration:session"), "{err}");
    }

    async fn apply_migrates_before_serving_and_refuses_a_dirty_database(db) {
        let m = db.manager().await;
        let ready = ensure(&m, Policy::Apply).await.expect("applied");
        assert_eq!(ready.report.map(|r| r.applied.len()), Some(10));
        assert_eq!(m.current_version("metrics").await.unwrap(), Some(v("2.5.0")));
        let again = ensure(&m, Policy::Apply).await.expect("up to date");
        assert_eq!(again.report.map(|r| r.applied.len()), Some(0));

        m.down().table("metrics").target("2.1.0").await.expect("down");
        db.exec("UPDATE migrate_schema_versions SET dirty_version = '2.5.0', dirty_name = 'metrics_2_5_0', dirty_direction = 'up', dirty_since = 1 WHERE table_name = 'metrics'").await;
        let before = db.fingerprint().await;
        let err = ensure(&m, Policy::Apply).await.expect_err("dirty");
        let StartupError::NotReady { problems, .. } = &err else { panic!("{err}") };
        assert_eq!(problems.iter().map(Problem::kind).collect::<Vec<_>>(), ["dirty"], "{err}");
        assert_eq!(db.fingerprint().await, before, "nothing ran");

        // Ahead, and edited: refused as not ready (not a failed migration), nothing run.
        db.exec("UPDATE migrate_schema_versions SET dirty_version = NULL, dirty_name = NULL, dirty_direction = NULL, dirty_since = NULL, version = '2.9.0' WHERE table_name = 'metrics'").await;
        let before = db.fingerprint().await;
        let err = ensure(&m, Policy::Apply).await.expect_err("ahead");
        let StartupError::NotReady { problems, .. } = &err else { panic!("{err}") };
        assert_eq!(problems.iter().map(Problem::kind).collect::<Vec<_>>(), ["ahead"], "{err}");
        assert_eq!(db.fingerprint().await, before, "nothing ran");
        db.exec("UPDATE migrate_schema_versions SET version = '2.1.0', checksum = 'sha256-64:0000000000000000' WHERE table_name = 'metrics'").await;
        db.exec("UPDATE migrate_schema_versions_history SET checksum = 'sha256:00' WHERE table_name = 'metrics'").await;
        let before = db.fingerprint().await;
        let err = ensure(&m, Policy::Apply).await.expect_err("edited");
        let StartupError::NotReady { problems, .. } = &err else { panic!("{err}") };
        assert!(!problems.is_empty() && problems.iter().all(|p| p.kind() == "drift"), "{err}");
        assert_eq!(db.fingerprint().await, before, "nothing ran");
    }

    async fn off_touches_nothing(db) {
        let m = db.manager().await;
        let before = db.fingerprint().await;
        let ready = ensure(&m, Policy::Off).await.expect("off");
        assert_eq!((ready.policy, ready.report), (Policy::Off, None));
        assert_eq!(db.fingerprint().await, before);
    }

    async fn an_unknown_policy_refuses_to_start(db) {
        let m = db.manager().await;
        assert_eq!(Policy::parse("APPLY"), Policy::Apply);
        assert_eq!(Policy::parse("false"), Policy::Off);
        let err = ensure(&m, Policy::parse("yes please")).await.expect_err("invalid");
        assert!(matches!(err, StartupError::InvalidPolicy(_)) && err.to_string().contains("yes please"), "{err}");
    }
}

/// The example reads the policy from its environment, as a deployed service does.
#[test]
fn the_example_follows_migrate_on_startup() {
    let startup = example("startup");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("startup.db").display()
    );
    let run = |policy: Option<&str>| {
        let mut command = std::process::Command::new(&startup);
        command
            .env("DATABASE_URL", &url)
            .env_remove("MIGRATE_ON_STARTUP");
        if let Some(policy) = policy {
            command.env("MIGRATE_ON_STARTUP", policy);
        }
        let out = command.output().expect("run the example");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };
    let (ok, text) = run(Some("off"));
    assert!(ok && text.contains("serving: Off"), "{text}");
    let (ok, text) = run(None);
    assert!(
        !ok && text.contains("is behind"),
        "unset means check: {text}"
    );
    let (ok, text) = run(Some("sometimes"));
    assert!(!ok && text.contains("sometimes"), "{text}");
    let (ok, text) = run(Some("apply"));
    assert!(ok && text.contains("7 step(s) applied"), "{text}");
    let (ok, text) = run(Some("check"));
    assert!(ok && text.contains("serving: Check"), "{text}");
}
