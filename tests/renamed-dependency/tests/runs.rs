//! The renamed crate's migrations register, plan and run like any others.

#[tokio::test(flavor = "current_thread")]
async fn migrations_of_a_renamed_dependency_run_up_and_down() {
    let backend = db::connect("sqlite::memory:").await.expect("sqlite");
    let manager = db::MigrationManager::new(backend, [&migrate_renamed_dependency::MIGRATIONS])
        .expect("graph");
    let report = manager.up().await.expect("up");
    assert_eq!(report.applied.len(), 3);
    assert_eq!(
        manager.current_version("notes").await.expect("version"),
        Some(db::Version::new(1, 0, 0)),
        "the SQL directory beside src/notes/mod.rs"
    );
    assert_eq!(
        manager.current_version("session").await.expect("version"),
        Some(db::Version::new(1, 1, 0))
    );
    manager.down().to_base().await.expect("down");
    assert_eq!(
        manager.current_version("session").await.expect("version"),
        None
    );
}
