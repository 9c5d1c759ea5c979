//! Writes the two crates of the compile-time comparison: N `#[migration]` functions against
//! sqlx's `migrate!` embedding N files. `benches/compile_time.sh` builds and times them.

use crate::workload;
use std::fmt::Write;
use std::path::Path;

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create directory");
    }
    std::fs::write(path, text).expect("write file");
}

pub fn emit(dir: &Path, n: usize) {
    let migrate_path = std::env::current_dir()
        .expect("working directory")
        .join("..")
        .canonicalize()
        .expect("the repository root (run from benches/)");
    let ours = dir.join("ours");
    write(
        &ours.join("Cargo.toml"),
        &format!(
            "[package]\nname = \"compile_ours\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n\n\
             [dependencies]\nmigrate = {{ path = {:?} }}\n",
            migrate_path.display().to_string()
        ),
    );
    let mut lib = String::from("migrate::migrations! {}\n\n");
    let mut last: std::collections::HashMap<&str, String> = Default::default();
    for step in workload::workload(n) {
        let version = step.version();
        let parent = match last.insert(step.table, version.clone()) {
            Some(p) => format!(", parent = \"{p}\""),
            None => String::new(),
        };
        writeln!(
            lib,
            "#[migrate::migration(table = \"{}\", version = \"{version}\"{parent}, irreversible)]\n\
             async fn m{}(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {{\n    \
             db.execute({:?}).await?;\n    Ok(())\n}}\n",
            step.table, step.index, step.sql
        )
        .expect("writing to a String");
    }
    write(&ours.join("src/lib.rs"), &lib);

    let sqlx = dir.join("sqlx");
    write(
        &sqlx.join("Cargo.toml"),
        "[package]\nname = \"compile_sqlx\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n\n\
         [dependencies]\nsqlx = { version = \"=0.9.0\", default-features = false, features = \
         [\"runtime-tokio\", \"sqlite-bundled\", \"migrate\", \"macros\"] }\n",
    );
    for step in workload::workload(n) {
        write(
            &sqlx.join(format!("migrations/{:05}_m{}.sql", step.index, step.index)),
            &step.sql,
        );
    }
    write(
        &sqlx.join("src/lib.rs"),
        "pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();\n",
    );
    println!("wrote {} and {}", ours.display(), sqlx.display());
}
