//! The README's first command, `cargo run --example quickstart`, run as a user runs it: the
//! built example in an empty working directory, twice.

use crate::harness::example;

#[test]
fn the_quickstart_runs_in_an_empty_directory_and_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = || {
        let out = std::process::Command::new(example("quickstart"))
            .current_dir(dir.path())
            .output()
            .expect("run the quickstart");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "exit {:?}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    let first = run();
    assert!(dir.path().join("quickstart.db").exists(), "{first}");
    let steps = |line: &str| -> usize {
        first
            .lines()
            .find(|l| l.starts_with(line))
            .and_then(|l| l.split(", ").nth(1))
            .and_then(|n| n.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no `{line}` line: {first}"))
    };
    let (up, down, again) = (steps("up:"), steps("down to 2.0.0:"), steps("up again:"));
    assert!(up > 0 && down > 0 && again == down, "{first}");
    assert!(
        first.trim_end().ends_with("and once more: UpToDate"),
        "{first}"
    );
    // Run again on the database it left: nothing to do, every table at its head.
    let second = run();
    assert!(second.starts_with("up: UpToDate, 0 step(s)"), "{second}");
    assert!(
        second.trim_end().ends_with("and once more: UpToDate"),
        "{second}"
    );
}
