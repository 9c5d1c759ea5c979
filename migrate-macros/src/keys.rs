//! The constants that stand for tables and steps in the trait-based graph checks.
//!
//! `&str` const generics are not stable, so a table is a 64-bit hash of its name and a step a
//! 64-bit hash of its table and version (build metadata included). One const argument per key:
//! rustc type-checks every const argument of every impl, so each one costs compile time per
//! migration.

use crate::checksum::stable_u64;
use proc_macro2::{Literal, Span, TokenStream};
use quote::quote;

/// How many types the checks of steps are spread over (`__MigrateShard0` to `63`, declared by
/// `migrations!{}`). rustc keeps a trait's impls in buckets by their self type, and compares each
/// impl, and each obligation of a supertrait, with every impl of its bucket: with one type for
/// every step, that work grew with the square of the crate's migrations.
pub(crate) const SHARDS: u64 = 64;

/// The const argument for a table.
pub(crate) fn table_key(table: &str) -> TokenStream {
    let key = Literal::u64_unsuffixed(stable_u64(table.as_bytes()));
    quote!(#key)
}

/// One version of a table in the checks: its const argument and the type its checks are
/// implemented for, both from one hash, so every check about the step meets on the same type.
pub(crate) struct StepKey(u64);

impl StepKey {
    pub(crate) fn new(table: &str, version: &semver::Version) -> StepKey {
        // A version has no NUL, so the text splits back into one table and one version only.
        StepKey(stable_u64(format!("{table}\0{version}").as_bytes()))
    }

    /// The const argument.
    pub(crate) fn key(&self) -> TokenStream {
        let key = Literal::u64_unsuffixed(self.0);
        quote!(#key)
    }

    /// The name of the type the step's checks are implemented for (spanned at `span`).
    pub(crate) fn shard(&self, span: Span) -> syn::Ident {
        shard_name(self.0 % SHARDS, span)
    }
}

/// `__MigrateShard{index}`.
pub(crate) fn shard_name(index: u64, span: Span) -> syn::Ident {
    syn::Ident::new(&format!("__MigrateShard{index}"), span)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_distinguish_tables_versions_and_prereleases() {
        assert_ne!(
            table_key("session").to_string(),
            table_key("memory").to_string()
        );
        let step = |table: &str, v: &str| {
            StepKey::new(table, &semver::Version::parse(v).unwrap())
                .key()
                .to_string()
        };
        assert_eq!(step("session", "2.3.0"), step("session", "2.3.0"));
        assert_ne!(step("session", "2.3.0"), step("memory", "2.3.0"));
        assert_ne!(step("session", "2.3.0"), step("session", "2.3.1"));
        assert_ne!(step("session", "2.3.0"), step("session", "2.3.0-beta.1"));
        assert_ne!(step("session", "2.3.0+a"), step("session", "2.3.0+b"));
        assert_ne!(step("a", "11.0.0"), step("a1", "1.0.0"));
    }

    #[test]
    fn a_step_always_goes_to_the_same_shard_and_steps_spread_over_all() {
        let v = |t: &str| semver::Version::parse(t).unwrap();
        let shard = |table: &str, version: &str| {
            StepKey::new(table, &v(version))
                .shard(Span::call_site())
                .to_string()
        };
        assert_eq!(shard("session", "2.3.0"), shard("session", "2.3.0"));
        let used: std::collections::HashSet<String> = (0..1000)
            .map(|i| shard("session", &format!("1.0.{i}")))
            .collect();
        assert_eq!(used.len() as u64, SHARDS, "{used:?}");
    }
}
