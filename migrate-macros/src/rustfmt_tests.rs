//! Real `rustfmt`, with several widths, style editions and comma settings, reformats a file of
//! migration code; the step's checksum stays the same. A real edit still changes it.

use crate::checksum::rust_step;
use quote::ToTokens;
use std::process::Command;

const SOURCE: &str = r#"
async fn create(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    db.execute("CREATE TABLE {{tables.session}} (session_id VARCHAR(64) PRIMARY KEY, data TEXT, created_at BIGINT)").await?;
    let dialect_specific_statement = match db.dialect() { migrate::Dialect::Postgres => "CREATE INDEX session_created ON {{tables.session}} (created_at)", migrate::Dialect::MySql => "CREATE INDEX session_created ON {{tables.session}} (created_at)", migrate::Dialect::Sqlite => { "CREATE INDEX IF NOT EXISTS session_created ON {{tables.session}} (created_at)" } };
    db.execute(dialect_specific_statement).await?;
    let columns = vec!["session_id", "data", "created_at", "a_column_with_a_rather_long_name", "another_one"];
    let pair = (columns.len(), columns.first().copied().unwrap_or_default(),);
    let single = (pair.0,);
    if single.0 == 0 { return Err(migrate::Error::msg(format!("no columns in {} of {}", pair.1, columns.len()))); }
    for (index, column) in columns.iter().enumerate().filter(|(index, column)| *index > 0 && !column.is_empty()) { db.execute(&format!("UPDATE {{{{tables.session}}}} SET data = '{}' WHERE created_at > {}", column, index)).await?; }
    Ok(())
}
"#;

fn checksum_of(source: &str) -> String {
    let file: syn::File = syn::parse_str(source).expect("parses");
    let Some(syn::Item::Fn(function)) = file.items.first() else {
        panic!("a function first");
    };
    rust_step(&function.block.to_token_stream(), None, &[])
}

fn rustfmt(source: &str, config: &str, n: usize) -> String {
    let file = std::env::temp_dir().join(format!("migrate-rustfmt-{}-{n}.rs", std::process::id()));
    std::fs::write(&file, source).expect("write");
    let status = Command::new("rustfmt")
        .args(["--edition", "2021", "--config", config])
        .arg(&file)
        .status()
        .expect("rustfmt is installed with the toolchain (rustup component add rustfmt)");
    assert!(status.success(), "rustfmt {config} failed");
    let formatted = std::fs::read_to_string(&file).expect("read");
    let _ = std::fs::remove_file(&file);
    formatted
}

#[test]
fn no_rustfmt_layout_changes_a_checksum() {
    let original = checksum_of(SOURCE);
    let mut layouts = std::collections::HashSet::new();
    for (n, config) in [
        "max_width=40",
        "max_width=60",
        "max_width=80",
        "max_width=100",
        "max_width=160,use_small_heuristics=Max",
        "max_width=100,style_edition=2024",
        "max_width=50,style_edition=2024,trailing_comma=Always",
        "max_width=70,trailing_comma=Never,match_block_trailing_comma=true",
    ]
    .into_iter()
    .enumerate()
    {
        let formatted = rustfmt(SOURCE, config, n);
        assert_eq!(
            checksum_of(&formatted),
            original,
            "rustfmt {config}:\n{formatted}"
        );
        layouts.insert(formatted);
    }
    assert!(
        layouts.len() >= 4,
        "rustfmt produced too few distinct layouts to prove anything"
    );
    let edited = SOURCE.replace("data TEXT", "data BLOB");
    assert_ne!(
        checksum_of(&edited),
        original,
        "a real edit changes the checksum"
    );
    let detupled = SOURCE.replace("let single = (pair.0,);", "let single = (pair.0);");
    assert_ne!(checksum_of(&detupled), original, "(x,) is not (x)");
}
