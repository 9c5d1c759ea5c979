//! The compile-time graph checks: every mistake in the list below must fail `cargo build` with
//! an error at the attribute, and a crate using every accepted form must compile and run.
//! The expected compiler output is committed next to each case (`tests/ui/*.stderr`); refresh it
//! with `TRYBUILD=overwrite cargo test --all-features --test compile_checks --test round_trip_options`
//! after a toolchain bump.

// The snapshots are rustc 1.95's words; another compiler words some errors differently, so there
// the cases are skipped with this message instead of failing.
#[rustversion::attr(
    not(stable(1.95)),
    ignore = "the .stderr snapshots are rustc 1.95's: run with that toolchain"
)]
#[test]
fn graph_mistakes_fail_the_build() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}

/// The accepted forms have no snapshots: they compile and run on any toolchain.
#[test]
fn accepted_forms_compile_and_run() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui-pass/*.rs");
}
