// A directory of SQL files through a re-exported facade (`crate = "..."`), whose first file has
// no down and whose two files' names read alike in words (`1.0.0-1_create_tags` and
// `1.0.0_1_create_tags`: two versions). Down to the first version runs the second file's down,
// and up again adds the column it dropped.
mod db {
    pub use migrate::*;
}

db::migrations! { crate = "crate::db" }

db::sql_dir!(crate = "crate::db", table = "tags", dir = "../ui-sql/pass_alike");

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let backend = db::connect("sqlite::memory:").await.expect("sqlite");
    let manager = db::MigrationManager::new(backend, [&MIGRATIONS]).expect("graph");
    manager.up().await.expect("up");
    let at = |v: &str| Some(db::Version::parse(v).expect("version"));
    assert_eq!(manager.current_version("tags").await.expect("version"), at("1.0.0"));
    manager.down().target("1.0.0-1").await.expect("down");
    assert_eq!(manager.current_version("tags").await.expect("version"), at("1.0.0-1"));
    manager.up().await.expect("up again");
    assert_eq!(manager.current_version("tags").await.expect("version"), at("1.0.0"));
}
