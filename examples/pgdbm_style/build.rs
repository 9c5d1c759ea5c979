// Cargo does not watch a directory for new files by itself: this line makes a file added to
// `migrations/` rebuild the crate.
fn main() {
    println!("cargo::rerun-if-changed=migrations");
}
