//! `after` edges that form a cycle compile (each names a declared migration), but the linked
//! graph is rejected: by `MigrationSet::validate`, by the manager, and by the `#[test]` that
//! `migrations!{}` generates (which calls `assert_valid`).
migrate::migrations! {}

#[migrate::migration(table = "session", version = "1.0.0", irreversible)]
async fn create_session(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "session", version = "1.1.0", parent = "1.0.0", irreversible, after = "memory@1.0.0")]
async fn session_needs_memory(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

#[migrate::migration(table = "memory", version = "1.0.0", irreversible, after = "session@1.1.0")]
async fn memory_needs_session(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {
    let err = MIGRATIONS.validate().expect_err("a cycle");
    let message = err.to_string();
    assert!(matches!(err, migrate::Error::Graph(ref g) if matches!(**g, migrate::error::GraphError::Cycle { .. })), "{message}");
    assert!(message.contains("memory@1.0.0") && message.contains("session@1.1.0"), "{message}");

    std::panic::set_hook(Box::new(|_| {}));
    let generated_test = std::panic::catch_unwind(|| migrate::__private::assert_valid(&MIGRATIONS));
    assert!(generated_test.is_err(), "the anchor's generated test must fail on a cycle");
}
