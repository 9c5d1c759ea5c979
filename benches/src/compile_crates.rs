//! Writes the four crates of the compile-time comparison: N `#[migration]` functions; the same
//! N async functions without the attribute, each boxed by a shim and listed in one static (the
//! floor: what the functions themselves cost rustc); the same N steps as SQL files, one
//! `migrate::sql_dir!` per table; and sqlx's `migrate!` embedding N files.
//! `benches/compile_time.sh` builds and times them.

use crate::workload;
use std::fmt::Write;
use std::path::Path;

fn write(path: &Path, text: &str) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("create directory");
    }
    std::fs::write(path, text).expect("write file");
}

/// The manifest of a generated crate that depends on this repository's `migrate`.
fn manifest(name: &str, migrate_path: &Path) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n\n\
         [dependencies]\nmigrate = {{ path = {:?} }}\n",
        migrate_path.display().to_string()
    )
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
        &manifest("compile_ours", &migrate_path),
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

    let plain = dir.join("plain");
    write(
        &plain.join("Cargo.toml"),
        &manifest("compile_plain", &migrate_path),
    );
    let mut lib = String::from(
        "use migrate::backend::{MigrationFn, MigrationFuture};\nuse migrate::Conn;\n\n\
         /// Every function, boxed, as the registration would hold it.\n\
         pub static ALL: &[MigrationFn] = &[\n",
    );
    let steps = workload::workload(n);
    for step in &steps {
        writeln!(lib, "    shim{},", step.index).expect("writing to a String");
    }
    lib.push_str("];\n\n");
    for step in &steps {
        writeln!(
            lib,
            "async fn m{i}(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {{\n    \
             db.execute({:?}).await?;\n    Ok(())\n}}\n\n\
             fn shim{i}<'a, 'b>(db: &'a mut Conn<'b>) -> MigrationFuture<'a> {{\n    \
             Box::pin(m{i}(db))\n}}\n",
            step.sql,
            i = step.index
        )
        .expect("writing to a String");
    }
    write(&plain.join("src/lib.rs"), &lib);

    // The same steps as SQL files: a directory per table, named by version (`1.0.<i>_m<i>.sql`,
    // so each file's version is its `#[migration]`'s), one `sql_dir!` each.
    let sql = dir.join("sql");
    write(
        &sql.join("Cargo.toml"),
        &manifest("compile_sql", &migrate_path),
    );
    let mut lib = String::from("migrate::migrations! {}\n\n");
    let mut tables: Vec<&str> = Vec::new();
    for step in workload::workload(n) {
        if !tables.contains(&step.table) {
            tables.push(step.table);
        }
        write(
            &sql.join(format!(
                "migrations/{}/{}_m{}.sql",
                step.table,
                step.version(),
                step.index
            )),
            &step.sql,
        );
    }
    for table in tables {
        writeln!(
            lib,
            "migrate::sql_dir!(table = \"{table}\", dir = \"migrations/{table}\");"
        )
        .expect("writing to a String");
    }
    write(&sql.join("src/lib.rs"), &lib);

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
    println!(
        "wrote {}, {}, {} and {}",
        ours.display(),
        plain.display(),
        sql.display(),
        sqlx.display()
    );
}
