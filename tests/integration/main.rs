//! The integration suite. Every test body runs once per backend: SQLite (a temporary file),
//! PostgreSQL and MariaDB (throwaway servers that the suite starts from the installed binaries,
//! or `MIGRATE_TEST_POSTGRES_URL` / `MIGRATE_TEST_MYSQL_URL`).

include!("agno_migrations.rs");
migrate::migrations! { heads { session = "2.3.0", memory = "2.3.0", metrics = "2.5.0", eval = "2.1.0" } }

mod harness;

mod adoption;
mod bad_input;
mod blocked;
mod blocking;
#[cfg(feature = "cli")]
mod cli;
#[cfg(feature = "cli")]
mod cli_fleet;
mod concurrency;
mod connect_errors;
mod data_braces;
mod data_keys;
#[cfg(feature = "cli")]
mod drift;
mod ended_sessions;
mod executor_calls;
mod failures;
mod faults;
mod fleet;
mod fresh;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
mod http_input;
mod locks;
#[cfg(feature = "cli")]
mod observability;
mod pgbouncer;
mod pool_passed_in;
mod postgres;
mod query_values;
mod quickstart;
mod secrets;
mod startup;
mod surgery;
mod table_names;
mod tampering;
mod tracking_names;
mod up_down;
mod up_to_date;
