//! Procedural macros of `migrate`: `#[migration]` and `migrations!{}`.
//!
//! This crate is a thin shim: the expansion logic lives in plain functions over `proc_macro2`
//! (see the `migration` and `anchor` modules) so that it can be unit-tested. Use the macros through the
//! `migrate` facade, which documents them.

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod anchor;
mod args;
mod checksum;
mod includes;
mod item;
mod keys;
mod migration;
mod register;
#[cfg(test)]
mod rustfmt_tests;
mod signature;
mod source;
mod sql_dir;
mod sql_names;
mod sql_text;
mod statements;
#[cfg(test)]
mod test_support;

use proc_macro::TokenStream;

/// Registers an async function as a migration. See `migrate::migration` for the keys.
#[proc_macro_attribute]
pub fn migration(attr: TokenStream, item: TokenStream) -> TokenStream {
    migration::expand(attr.into(), item.into(), invoking_file().as_deref()).into()
}

/// The file the macro was invoked in, when the compiler says (not for generated code).
fn invoking_file() -> Option<std::path::PathBuf> {
    proc_macro::Span::call_site().local_file()
}

/// Declares a crate's migration anchor: `pub static MIGRATIONS` and the items the compile-time
/// checks compare against. See `migrate::migrations`.
#[proc_macro]
pub fn migrations(input: TokenStream) -> TokenStream {
    anchor::expand(input.into()).into()
}

/// Embeds a directory of SQL files as steps of one table's version line. See
/// `migrate::sql_dir`.
#[proc_macro]
pub fn sql_dir(input: TokenStream) -> TokenStream {
    let file = invoking_file();
    let dir = file.as_deref().and_then(std::path::Path::parent);
    sql_dir::expand(input.into(), dir).into()
}
