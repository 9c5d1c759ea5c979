//! The statements' counting, placeholders, sharing and markers, for every database.

use super::*;

#[test]
fn statements_are_counted_outside_quotes() {
    assert_eq!(statement_count("SELECT 1"), 1);
    assert_eq!(
        statement_count("UPDATE \"a;b\" SET x = ';'; COMMIT; BEGIN"),
        3
    );
    assert_eq!(
        statement_count("INSERT INTO `t;` VALUES (1); COMMIT; BEGIN IMMEDIATE"),
        3
    );
}

#[test]
fn placeholders_follow_the_database() {
    #[cfg(feature = "sqlite")]
    {
        let stmt = compile::<sqlx::Sqlite>("a = $(module) AND b = $(table) AND c = $(module)");
        assert_eq!(&*stmt.sql, "a = ?1 AND b = ?2 AND c = ?3");
        assert_eq!(stmt.params, [0, 1, 0]);
    }
    #[cfg(feature = "postgres")]
    assert_eq!(&*compile::<sqlx::Postgres>("x = $(now)").sql, "x = $1");
    #[cfg(feature = "mysql")]
    {
        let stmt = compile::<sqlx::MySql>("x = $(now), y = $(error)");
        assert_eq!(&*stmt.sql, "x = ?, y = ?");
        assert_eq!(stmt.params, [Bind::Now as usize, Bind::Error as usize]);
    }
}

#[test]
fn each_database_shares_its_own_default_statements() {
    fn built_fresh<DB: Driver>() -> Statements {
        DB::statements(&TrackingNames::new(
            DB::DIALECT,
            None,
            DEFAULT_TRACKING_TABLE,
        ))
    }
    fn check<DB: Driver>(placeholder: &str) {
        let (names, shared) = default_configuration::<DB>();
        let (_, again) = default_configuration::<DB>();
        assert!(Arc::ptr_eq(&shared, &again), "built once");
        let fresh = built_fresh::<DB>();
        assert_eq!(names.state, DB::DIALECT.quote_ident(DEFAULT_TRACKING_TABLE));
        assert_eq!(shared.history.sql, fresh.history.sql);
        assert!(
            shared.history.sql.contains(placeholder),
            "{}",
            shared.history.sql
        );
        assert!(shared.persistent);
    }
    #[cfg(feature = "sqlite")]
    check::<sqlx::Sqlite>("?1");
    #[cfg(feature = "postgres")]
    check::<sqlx::Postgres>("$1");
    #[cfg(feature = "mysql")]
    check::<sqlx::MySql>("?");
}

#[test]
fn tables_known_missing_are_created_without_if_not_exists() {
    fn check<DB: Driver>() {
        let (names, stmts) = default_configuration::<DB>();
        let new: Vec<_> = stmts.create_new().collect();
        assert_eq!(new.len(), stmts.create.len());
        // Both tracking tables, and only through the prefix `create_new` strips.
        for table in [&names.state, &names.history] {
            let plain = format!("CREATE TABLE {table} (");
            assert_eq!(
                new.iter().filter(|s| s.starts_with(&plain)).count(),
                1,
                "{new:?}"
            );
        }
        assert!(
            new.iter().all(|s| !s.starts_with(CREATE_TABLE_IF_MISSING)),
            "{new:?}"
        );
    }
    #[cfg(feature = "sqlite")]
    check::<sqlx::Sqlite>();
    #[cfg(feature = "postgres")]
    check::<sqlx::Postgres>();
    #[cfg(feature = "mysql")]
    check::<sqlx::MySql>();
}

#[test]
fn every_database_writes_known_markers_and_quotes_names() {
    #[cfg(feature = "sqlite")]
    {
        let names = TrackingNames::new(Dialect::Sqlite, None, "track\"ing");
        assert_eq!(names.state, "\"track\"\"ing\"");
        assert_templates_known(&<sqlx::Sqlite as Driver>::statements(&names));
    }
    #[cfg(feature = "postgres")]
    {
        let names = TrackingNames::new(Dialect::Postgres, Some("ops"), "t");
        assert_eq!(names.history, "\"ops\".\"t_history\"");
        let stmts = <sqlx::Postgres as Driver>::statements(&names);
        assert_eq!(
            stmts.create_schema.as_deref(),
            Some("CREATE SCHEMA IF NOT EXISTS \"ops\"")
        );
        assert_eq!(stmts.record.len(), 1, "one round trip per step");
        assert_templates_known(&stmts);
    }
    #[cfg(feature = "mysql")]
    {
        let names = TrackingNames::new(Dialect::MySql, None, "a`b");
        assert_eq!(names.state, "`a``b`");
        assert_templates_known(&<sqlx::MySql as Driver>::statements(&names));
    }
}
