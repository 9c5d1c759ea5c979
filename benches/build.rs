//! Generates the `#[migration]` functions of the headline workload (the first
//! `APPLY_N` migrations), so that the project is measured with real Rust-function migrations.

#[path = "src/workload.rs"]
mod workload;

use std::fmt::Write;

/// The headline workload size; keep it equal to `APPLY_N` in `src/main.rs`.
const APPLY_N: usize = 300;

fn main() {
    let mut out = String::new();
    let mut last: std::collections::HashMap<&str, String> = Default::default();
    for step in workload::workload(APPLY_N) {
        let version = step.version();
        let parent = match last.insert(step.table, version.clone()) {
            Some(p) => format!(", parent = \"{p}\""),
            None => String::new(),
        };
        writeln!(
            out,
            "#[migrate::migration(table = \"{}\", version = \"{version}\"{parent}, irreversible)]\n\
             async fn m{}(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {{\n    \
             db.execute({:?}).await?;\n    Ok(())\n}}\n",
            step.table, step.index, step.sql
        )
        .expect("writing to a String");
    }
    let path =
        std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("workload_fns.rs");
    std::fs::write(path, out).expect("write the generated migrations");
    println!("cargo::rerun-if-changed=src/workload.rs");
}
