//! The reliability suites: runner processes racing on one database, runners killed with SIGKILL
//! at random moments, and module names that only bound parameters survive. Each prints
//! `RELIABILITY ...` lines with its figures; `RELIABILITY.md` is written from them.
//!
//! Counts are bounded for CI and raised with environment variables:
//! - `MIGRATE_RELIABILITY_ROUNDS` (default 5): rounds of the 16-process races per backend;
//! - `MIGRATE_RELIABILITY_KILLS` (default 70): SIGKILLs per backend;
//! - `MIGRATE_RELIABILITY_SEED`: the seed of the kill timings (printed when not given).

include!("fixture.rs");
// A module name with a quote, a backslash, a backtick, a semicolon and a comment marker: every
// tracking statement must bind it, never splice it into SQL text.
migrate::migrations! {
    module = "rel'iable \\ `mod`; -- x",
    heads { alpha = "1.10.0", beta = "1.10.0", gamma = "1.10.0", delta = "1.10.0" }
}

#[path = "../integration/harness.rs"]
#[allow(dead_code)]
mod harness;

mod concurrency;
mod escapes;
mod identifiers;
mod kills;
mod ledger;
mod runner;
