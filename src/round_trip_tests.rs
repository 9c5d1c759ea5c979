//! `migrate::round_trip_tests!`: the round-trip tests a migrations crate puts in its `tests/`.

/// Generates the round-trip tests for some migration sets, in a module `migrate_round_trip`:
///
/// - `single_head_per_table`: the linked graph is valid, one head per table;
/// - `stairway_<backend>`: every step up, down and up again on a fresh database, comparing
///   schema snapshots (a failure names the step and shows the diff);
/// - `upgrade_from_empty_to_head_<backend>`: a fresh database up to every head, and back down
///   to an empty schema when every step is reversible;
/// - `fresh_install_equals_upgrade_<backend>`: when a migration has `fresh = path` (or a
///   `<stem>.fresh.sql`), a database made by `install_fresh` and one upgraded step by step from
///   empty have the same schema (column order aside); it passes trivially without fresh
///   functions.
///
/// Backends default to `sqlite, postgres, mysql`; PostgreSQL and MariaDB are throwaway servers
/// started from the installed binaries (or `MIGRATE_TEST_POSTGRES_URL`/`MIGRATE_TEST_MYSQL_URL`),
/// reported as skipped when missing unless `MIGRATE_TEST_REQUIRE_ALL=1`. Needs the `testing`
/// feature (and the backends' features).
///
/// In `tests/round_trip.rs` of a crate whose migrations live in `my_migrations`:
/// `migrate::round_trip_tests!(my_migrations::MIGRATIONS);`, or with a choice of backends as
/// below.
///
#[cfg_attr(feature = "testing", doc = "```")]
#[cfg_attr(not(feature = "testing"), doc = "```ignore")]
/// migrate::migrations! {}
///
/// #[migrate::migration(table = "session", version = "1.0.0", down = drop_session)]
/// async fn create_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
///     db.execute("CREATE TABLE {{tables.session}} (id TEXT PRIMARY KEY)").await?;
///     Ok(())
/// }
/// async fn drop_session(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
///     db.execute("DROP TABLE {{tables.session}}").await?;
///     Ok(())
/// }
///
/// migrate::round_trip_tests!(MIGRATIONS; backends = [sqlite]);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! round_trip_tests {
    ($($set:path),+ $(,)?) => {
        $crate::round_trip_tests!($($set),+; backends = [sqlite, postgres, mysql]);
    };
    ($($set:path),+ ; backends = [$($backend:ident),+ $(,)?]) => {
        #[allow(non_snake_case)]
        mod migrate_round_trip {
            #[allow(unused_imports)]
            use super::*;

            fn sets() -> ::std::vec::Vec<&'static $crate::registry::MigrationSet> {
                ::std::vec![$(&$set),+]
            }

            #[test]
            fn single_head_per_table() {
                $crate::testing::assert_single_heads(&sets());
            }

            $( $crate::round_trip_tests!(@backend $backend); )+
        }
    };
    (@backend sqlite) => {
        $crate::round_trip_tests!(@tests stairway_sqlite, upgrade_from_empty_to_head_sqlite, fresh_install_equals_upgrade_sqlite, Sqlite);
    };
    (@backend postgres) => {
        $crate::round_trip_tests!(@tests stairway_postgres, upgrade_from_empty_to_head_postgres, fresh_install_equals_upgrade_postgres, Postgres);
    };
    (@backend mysql) => {
        $crate::round_trip_tests!(@tests stairway_mysql, upgrade_from_empty_to_head_mysql, fresh_install_equals_upgrade_mysql, MySql);
    };
    (@tests $stairway:ident, $upgrade:ident, $fresh:ident, $backend:ident) => {
        #[test]
        fn $stairway() {
            $crate::testing::round_trip(
                $crate::testing::Backend::$backend,
                &sets(),
                $crate::testing::RoundTrip::Stairway,
            );
        }

        #[test]
        fn $upgrade() {
            $crate::testing::round_trip(
                $crate::testing::Backend::$backend,
                &sets(),
                $crate::testing::RoundTrip::UpgradeFromEmpty,
            );
        }

        #[test]
        fn $fresh() {
            $crate::testing::round_trip(
                $crate::testing::Backend::$backend,
                &sets(),
                $crate::testing::RoundTrip::FreshEqualsUpgrade,
            );
        }
    };
}
