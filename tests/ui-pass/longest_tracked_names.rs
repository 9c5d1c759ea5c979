//! The longest module and table names the tracking tables keep (191 characters, each two bytes
//! here): accepted by the macros at compile time and by the graph at run time, so the two
//! copies of the limit (`migrate-macros` has no dependency on `migrate-core`) agree. One
//! character more fails the build (`tests/ui/tracked_name_bad.rs`, 192 two-byte characters)
//! and the graph (`rejects_names_the_tracking_tables_cannot_keep` in `migrate-core`).
migrate::migrations! { module = "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé" }

#[migrate::migration(table = "ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé", version = "1.0.0", irreversible)]
async fn create(_db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
    Ok(())
}

fn main() {
    let graph = MIGRATIONS.validate().expect("191 characters are kept");
    assert_eq!(graph.len(), 1);
    assert_eq!(
        graph.tables().next().map(|(module, table)| (module.chars().count(), table.chars().count())),
        Some((191, 191))
    );
}
