//! The quickstart's migrations, proven on every backend: each step goes up, comes back down to
//! the schema it started from, and goes up again to the same schema; and a fresh database goes
//! from empty to head and back.

include!("../examples/quickstart/migrations.rs");

migrate::round_trip_tests!(MIGRATIONS);
