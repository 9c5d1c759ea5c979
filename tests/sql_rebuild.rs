//! A crate with a `migrations/` directory, built and run again and again by real `cargo`: a
//! file added is picked up with no `touch` (the `build.rs` line the README gives), a CRLF-only
//! change is no edit, and an edited applied file, an edited `include_str!` file (of a step with
//! a down and of one without; by a literal path and by `concat!(env!("CARGO_MANIFEST_DIR"),
//! ...)`), an edited `include_bytes!` file and an edited Rust down each stop the next run with
//! both checksums and the place named.

use std::path::{Path, PathBuf};
use std::process::Command;

const MAIN: &str = r#"
migrate::migrations! {}
migrate::sql_dir!(table = "items", dir = "migrations");

#[migrate::migration(table = "rusty", version = "1.0.0", down = drop_rusty)]
async fn create_rusty(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute(include_str!("rusty.sql")).await?;
    Ok(())
}

async fn drop_rusty(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("DROP TABLE rusty").await?;
    Ok(())
}

#[migrate::migration(table = "plain", version = "1.0.0", irreversible)]
async fn create_plain(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute(include_str!("plain.sql")).await?;
    Ok(())
}

#[migrate::migration(table = "rooted", version = "1.0.0", irreversible)]
async fn create_rooted(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/rooted.sql"))).await?;
    Ok(())
}

#[migrate::migration(table = "blob", version = "1.0.0", irreversible)]
async fn create_blob(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    let seed: &[u8] = include_bytes!("seed.bin");
    db.execute(&format!("CREATE TABLE blob (id INTEGER PRIMARY KEY, seed INTEGER DEFAULT {})", seed.len()))
        .await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path = std::env::args().nth(1).expect("a database file");
    let db = migrate::sqlite::SqliteDb::open(path).await.expect("open");
    let manager = migrate::MigrationManager::new(db, [&MIGRATIONS]).expect("graph");
    match manager.up().await {
        Ok(report) => println!("applied {}", report.applied.len()),
        Err(err) => {
            println!("error: {err}");
            std::process::exit(1);
        }
    }
}
"#;

struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = format!(
            "[package]\nname = \"sql-rebuild-check\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
             [dependencies]\nmigrate = {{ path = {root:?}, default-features = false, features = [\"sqlite\"] }}\n\
             tokio = {{ version = \"1\", default-features = false, features = [\"rt\", \"macros\"] }}\n\n[workspace]\n",
            root = root.display().to_string()
        );
        let project = Project { dir };
        project.write("Cargo.toml", &manifest);
        // The workspace's lock file pins every version, so the build needs no index.
        std::fs::copy(root.join("Cargo.lock"), project.path("Cargo.lock")).expect("lock file");
        project.write(
            "build.rs",
            "fn main() {\n    println!(\"cargo::rerun-if-changed=migrations\");\n}\n",
        );
        project.write("src/main.rs", MAIN);
        project.write(
            "src/rusty.sql",
            "CREATE TABLE rusty (id INTEGER PRIMARY KEY)",
        );
        project.write(
            "src/plain.sql",
            "CREATE TABLE plain (id INTEGER PRIMARY KEY)",
        );
        project.write(
            "sql/rooted.sql",
            "CREATE TABLE rooted (id INTEGER PRIMARY KEY)",
        );
        project.write("src/seed.bin", "\u{1}\u{2}\u{3}");
        project.write(
            "migrations/001_items.sql",
            "CREATE TABLE {{tables.items}} (id INTEGER PRIMARY KEY);\n",
        );
        project
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    fn write(&self, relative: &str, text: &str) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }

    /// Builds (as cargo decides) and runs the binary against the project's database.
    fn run(&self) -> (bool, String) {
        let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sql-rebuild-target");
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["run", "--quiet", "--offline", "--"])
            .arg(self.path("app.db"))
            .current_dir(self.dir.path())
            .env("CARGO_TARGET_DIR", target)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cargo runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), text)
    }

    fn expect(&self, what: &str, ok: bool, needles: &[&str]) {
        let (success, text) = self.run();
        assert_eq!(success, ok, "{what}: {text}");
        for needle in needles {
            assert!(text.contains(needle), "{what}: `{needle}` not in\n{text}");
        }
    }
}

#[test]
fn added_files_rebuild_and_edits_of_applied_steps_are_refused() {
    let project = Project::new();
    project.expect("first run", true, &["applied 5"]);

    project.write(
        "migrations/002_more.sql",
        "ALTER TABLE {{tables.items}} ADD COLUMN name TEXT;\n",
    );
    project.expect("a new file, no touch", true, &["applied 1"]);

    project.write(
        "migrations/001_items.sql",
        "CREATE TABLE {{tables.items}} (id INTEGER PRIMARY KEY);  \r\n\r\n",
    );
    project.expect("CRLF and trailing spaces only", true, &["applied 0"]);

    let original = "CREATE TABLE {{tables.items}} (id INTEGER PRIMARY KEY);\n";
    project.write(
        "migrations/001_items.sql",
        "CREATE TABLE {{tables.items}} (id BIGINT PRIMARY KEY);\n",
    );
    project.expect(
        "an edited applied file",
        false,
        &[
            "checksum drift",
            "migrations/001_items.sql",
            "applied with checksum sha256:",
            "now has sha256:",
        ],
    );
    project.write("migrations/001_items.sql", original);
    project.expect("the edit reverted", true, &["applied 0"]);

    project.write(
        "src/rusty.sql",
        "CREATE TABLE rusty (id BIGINT PRIMARY KEY)",
    );
    project.expect(
        "an edited include_str! file",
        false,
        &["checksum drift", "rusty@1.0.0", "src/main.rs"],
    );
    project.write(
        "src/rusty.sql",
        "CREATE TABLE rusty (id INTEGER PRIMARY KEY)",
    );
    // The same for a step with no down of its own, whose file is read for its includes alone.
    project.write(
        "src/plain.sql",
        "CREATE TABLE plain (id BIGINT PRIMARY KEY)",
    );
    project.expect(
        "an edited include_str! file of a step without a down",
        false,
        &["checksum drift", "plain@1.0.0", "src/main.rs"],
    );
    project.write(
        "src/plain.sql",
        "CREATE TABLE plain (id INTEGER PRIMARY KEY)",
    );

    // A path built with `concat!(env!("CARGO_MANIFEST_DIR"), ...)`, and a file of bytes.
    project.write(
        "sql/rooted.sql",
        "CREATE TABLE rooted (id BIGINT PRIMARY KEY)",
    );
    project.expect(
        "an edited file included by a path from env! and concat!",
        false,
        &["checksum drift", "rooted@1.0.0", "src/main.rs"],
    );
    project.write(
        "sql/rooted.sql",
        "CREATE TABLE rooted (id INTEGER PRIMARY KEY)",
    );
    project.write("src/seed.bin", "\u{1}\u{2}\u{4}");
    project.expect(
        "an edited include_bytes! file",
        false,
        &["checksum drift", "blob@1.0.0", "src/main.rs"],
    );
    project.write("src/seed.bin", "\u{1}\u{2}\u{3}");

    project.write(
        "src/main.rs",
        &MAIN.replace("\"DROP TABLE rusty\"", "\"DROP TABLE IF EXISTS rusty\""),
    );
    project.expect(
        "an edited Rust down",
        false,
        &["checksum drift", "rusty@1.0.0"],
    );
    project.write("src/main.rs", MAIN);
    project.expect("everything reverted", true, &["applied 0"]);
}
