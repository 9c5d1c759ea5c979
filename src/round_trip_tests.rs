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
/// Options follow the sets after a `;`, as `key = value` pairs, in any order:
///
/// - `backends = [sqlite, postgres]`: the databases to generate tests for (default: all three);
/// - `strict_column_order = true`: a column that a round trip moved (dropped and re-added at
///   the end) fails the tests instead of being reported;
/// - `checks = { "table@X.Y.Z" => data_check(), ... }`: `migrate::testing::DataCheck`s the stairway
///   runs around those steps (a name that no linked step has fails the stairway).
///
/// A misspelt option or an unknown backend fails the build with a message naming it.
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
/// fn session_kept() -> migrate::testing::DataCheck {
///     migrate::testing::DataCheck::new()
///         .after_up(|db| Box::pin(async move {
///             db.execute("INSERT INTO session (id) VALUES ('a')").await?;
///             Ok(())
///         }))
/// }
///
/// migrate::round_trip_tests!(
///     MIGRATIONS;
///     backends = [sqlite],
///     strict_column_order = true,
///     checks = { "session@1.0.0" => session_kept() },
/// );
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! round_trip_tests {
    ($($set:path),+ $(,)?) => {
        $crate::round_trip_tests!(@module [$($set),+] [sqlite, postgres, mysql] []);
    };
    ($($set:path),+ ; $($key:ident = $value:tt),+ $(,)?) => {
        $crate::round_trip_tests!(@munch [$($set),+] [sqlite, postgres, mysql] [] $($key = $value,)+);
    };
    // Options, one at a time: `backends` picks the tests generated, the rest build the options.
    (@munch [$($set:path),+] [$($old:ident),*] [$($opt:tt)*] backends = [$($backend:ident),+ $(,)?], $($rest:tt)*) => {
        $crate::round_trip_tests!(@munch [$($set),+] [$($backend),+] [$($opt)*] $($rest)*);
    };
    (@munch [$($set:path),+] [$($backend:ident),*] [$($opt:tt)*] $key:ident = $value:tt, $($rest:tt)*) => {
        $crate::round_trip_tests!(@munch [$($set),+] [$($backend),*] [$($opt)* ($key $value)] $($rest)*);
    };
    (@munch [$($set:path),+] [$($backend:ident),*] [$($opt:tt)*]) => {
        $crate::round_trip_tests!(@module [$($set),+] [$($backend),*] [$($opt)*]);
    };
    (@option $options:ident strict_column_order $value:tt) => {
        $options = $options.strict_column_order($value);
    };
    (@option $options:ident checks { $($step:literal => $check:expr),* $(,)? }) => {
        $( $options = $options.check($step, $check); )*
    };
    (@option $options:ident $key:ident $value:tt) => {
        ::std::compile_error!(::std::concat!(
            "round_trip_tests!: unknown option `", ::std::stringify!($key),
            "` (expected backends = [..], strict_column_order = true|false, checks = { \"table@X.Y.Z\" => check, .. })"
        ));
    };
    (@module [$($set:path),+] [$($backend:ident),*] [$(($key:ident $value:tt))*]) => {
        #[allow(non_snake_case)]
        mod migrate_round_trip {
            #[allow(unused_imports)]
            use super::*;

            fn sets() -> ::std::vec::Vec<&'static $crate::registry::MigrationSet> {
                ::std::vec![$(&$set),+]
            }

            #[allow(unused_mut)]
            fn options() -> $crate::testing::RoundTripOptions {
                let mut options = $crate::testing::RoundTripOptions::new();
                $( $crate::round_trip_tests!(@option options $key $value); )*
                options
            }

            #[test]
            fn single_head_per_table() {
                $crate::testing::assert_single_heads(&sets());
            }

            $( $crate::round_trip_tests!(@backend $backend); )*
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
    (@backend $other:ident) => {
        ::std::compile_error!(::std::concat!(
            "round_trip_tests!: unknown backend `", ::std::stringify!($other),
            "` (expected sqlite, postgres or mysql)"
        ));
    };
    (@tests $stairway:ident, $upgrade:ident, $fresh:ident, $backend:ident) => {
        #[test]
        fn $stairway() {
            $crate::testing::round_trip_with(
                $crate::testing::Backend::$backend,
                &sets(),
                $crate::testing::RoundTrip::Stairway,
                &options(),
            );
        }

        #[test]
        fn $upgrade() {
            $crate::testing::round_trip_with(
                $crate::testing::Backend::$backend,
                &sets(),
                $crate::testing::RoundTrip::UpgradeFromEmpty,
                &options(),
            );
        }

        #[test]
        fn $fresh() {
            $crate::testing::round_trip_with(
                $crate::testing::Backend::$backend,
                &sets(),
                $crate::testing::RoundTrip::FreshEqualsUpgrade,
                &options(),
            );
        }
    };
}
