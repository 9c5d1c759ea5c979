//! Procedural macros of `migrate`: `#[migration]` and `migrations!{}`.
//!
//! This crate is a thin shim: the expansion logic lives in plain functions over `proc_macro2`
//! (see the `migration` and `anchor` modules) so that it can be unit-tested. Use the macros through the
//! `migrate` facade, which documents them.

#![warn(missing_docs, unreachable_pub, missing_debug_implementations)]

mod anchor;
mod args;
mod checksum;
mod keys;
mod migration;
#[cfg(test)]
mod test_support;

use proc_macro::TokenStream;

/// Registers an async function as a migration. See `migrate::migration` for the keys.
#[proc_macro_attribute]
pub fn migration(attr: TokenStream, item: TokenStream) -> TokenStream {
    migration::expand(attr.into(), item.into()).into()
}

/// Declares a crate's migration anchor: `pub static MIGRATIONS` and the items the compile-time
/// checks compare against. See `migrate::migrations`.
#[proc_macro]
pub fn migrations(input: TokenStream) -> TokenStream {
    anchor::expand(input.into()).into()
}
