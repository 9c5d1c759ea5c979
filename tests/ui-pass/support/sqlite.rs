//! What the ui-pass cases that run their migrations share (each case is a binary of its own, so
//! it takes this file with `#[path] mod`; trybuild's `tests/ui-pass/*.rs` does not build it).

use std::future::Future;

/// Runs `check` on a manager of `set` over a SQLite file in a fresh temporary directory named
/// after `case`, on a current-thread runtime, then removes the directory.
pub fn with_sqlite_manager<F>(
    case: &str,
    set: &'static migrate::registry::MigrationSet,
    check: impl FnOnce(migrate::MigrationManager) -> F,
) where
    F: Future<Output = ()>,
{
    let dir = std::env::temp_dir().join(format!("migrate-{case}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let db = migrate::sqlite::SqliteDb::open(dir.join("app.db")).await.unwrap();
        check(migrate::MigrationManager::new(db, [set]).unwrap()).await;
    });
    std::fs::remove_dir_all(&dir).unwrap();
}
