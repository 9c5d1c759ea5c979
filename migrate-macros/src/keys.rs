//! The constants that stand for tables and steps in the trait-based graph checks.
//!
//! `&str` const generics are not stable, so a table is a 64-bit hash of its name and a step a
//! 64-bit hash of its table and version (build metadata included). One const argument per key:
//! rustc type-checks every const argument of every impl, so each one costs compile time per
//! migration.

use crate::checksum::stable_u64;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// The const argument for a table.
pub(crate) fn table_key(table: &str) -> TokenStream {
    let key = Literal::u64_unsuffixed(stable_u64(table.as_bytes()));
    quote!(#key)
}

/// The const argument for one version of a table.
pub(crate) fn step_key(table: &str, version: &semver::Version) -> TokenStream {
    // A version has no NUL, so the text splits back into one table and one version only.
    let key = stable_u64(format!("{table}\0{version}").as_bytes());
    let key = Literal::u64_unsuffixed(key);
    quote!(#key)
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
        let step =
            |table: &str, v: &str| step_key(table, &semver::Version::parse(v).unwrap()).to_string();
        assert_eq!(step("session", "2.3.0"), step("session", "2.3.0"));
        assert_ne!(step("session", "2.3.0"), step("memory", "2.3.0"));
        assert_ne!(step("session", "2.3.0"), step("session", "2.3.1"));
        assert_ne!(step("session", "2.3.0"), step("session", "2.3.0-beta.1"));
        assert_ne!(step("session", "2.3.0+a"), step("session", "2.3.0+b"));
        assert_ne!(step("a", "11.0.0"), step("a1", "1.0.0"));
    }
}
