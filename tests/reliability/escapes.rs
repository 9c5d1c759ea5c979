//! The fixture's module name holds a quote, a backslash, a backtick, a semicolon and a comment
//! marker. Every tracking statement binds it; MariaDB runs here with `NO_BACKSLASH_ESCAPES`,
//! under which SQL that escaped backslashes by hand would store a different name, or break.

use crate::harness::{each_backend, TestDb};
use crate::ledger;
use migrate::manager::Resolution;
use migrate::testing::Backend;
use migrate::MigrationManager;

/// A manager on `db`; on MariaDB every session of its pool runs with `NO_BACKSLASH_ESCAPES`.
async fn manager(db: &TestDb) -> MigrationManager {
    if db.backend() != Backend::MySql {
        return db.manager().await;
    }
    MigrationManager::new(
        db.mysql_without_backslash_escapes().await,
        [&crate::MIGRATIONS],
    )
    .expect("graph")
}

each_backend! {
    async fn a_module_name_full_of_sql_syntax_round_trips(db) {
        let module = crate::MIGRATIONS.module();
        assert_eq!(module, "rel'iable \\ `mod`; -- x");
        ledger::create(&db).await;
        let m = manager(&db).await;
        m.up().await.expect("up");
        assert_eq!(
            db.rows("SELECT DISTINCT module FROM migrate_schema_versions").await,
            [module]
        );
        assert_eq!(
            db.rows("SELECT DISTINCT module FROM migrate_schema_versions_history").await,
            [module]
        );
        // Every path that writes or reads the module: listings, history, repairs, down.
        let history = m.history(100).await.expect("history");
        assert_eq!(history.len(), 44);
        assert!(history.iter().all(|h| h.module == module));
        assert!(m.status().await.expect("status").iter().all(|s| s.module == module && !s.needs_attention()));
        m.accept_checksums("alpha").await.expect("accept");
        m.unstamp("gamma").await.expect("unstamp");
        assert_eq!(m.current_version("gamma").await.expect("current"), Some(migrate::Version::new(1, 9, 0)));
        m.stamp("gamma", "1.10.0").await.expect("stamp");
        assert_eq!(m.current_version("gamma").await.expect("current"), Some(migrate::Version::new(1, 10, 0)));
        m.down().target("1.4.0").await.expect("down");
        assert_eq!(m.pending().await.expect("pending").len(), 24);
        // A dirty mark on this module is found, shown and resolved by the same name.
        db.exec(&format!(
            "UPDATE migrate_schema_versions SET dirty_version = '1.5.0', dirty_name = 'alpha_5', dirty_direction = 'up', dirty_since = 1 WHERE module = '{}' AND table_name = 'alpha'",
            module.replace('\'', "''").replace('\\', if db.backend() == Backend::MySql { "\\\\" } else { "\\" })
        ))
        .await;
        let alpha = m.status().await.expect("status").into_iter().find(|s| s.table == "alpha").expect("alpha");
        assert!(alpha.dirty.is_some(), "{alpha:?}");
        m.resolve_dirty("alpha", Resolution::RolledBack).await.expect("resolve");
        m.down().to_base().await.expect("down to base");
        assert!(db.rows("SELECT version FROM migrate_schema_versions WHERE version IS NOT NULL").await.is_empty());
    }
}
