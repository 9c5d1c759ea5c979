//! The constants that stand for tables and versions in the trait-based graph checks.
//!
//! `&str` const generics are not stable, so a table is a 64-bit hash of its name and a version
//! is (major, minor, patch, hash of pre-release and build metadata).

use crate::checksum::stable_u64;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// The const argument for a table.
pub(crate) fn table_key(table: &str) -> TokenStream {
    let key = Literal::u64_unsuffixed(stable_u64(table.as_bytes()));
    quote!(#key)
}

/// The four const arguments for a version.
pub(crate) fn version_key(version: &semver::Version) -> TokenStream {
    let major = Literal::u64_unsuffixed(version.major);
    let minor = Literal::u64_unsuffixed(version.minor);
    let patch = Literal::u64_unsuffixed(version.patch);
    let pre = if version.pre.is_empty() && version.build.is_empty() {
        0
    } else {
        stable_u64(format!("{}+{}", version.pre, version.build).as_bytes())
    };
    let pre = Literal::u64_unsuffixed(pre);
    quote!(#major, #minor, #patch, #pre)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_distinguish_tables_and_prereleases() {
        assert_ne!(
            table_key("session").to_string(),
            table_key("memory").to_string()
        );
        let numbers = |v: &str| -> Vec<u64> {
            let key = version_key(&semver::Version::parse(v).unwrap());
            let list: syn::punctuated::Punctuated<syn::LitInt, syn::Token![,]> =
                syn::parse::Parser::parse2(syn::punctuated::Punctuated::parse_terminated, key)
                    .unwrap();
            list.iter().map(|l| l.base10_parse().unwrap()).collect()
        };
        assert_eq!(numbers("2.3.0"), [2, 3, 0, 0]);
        let beta = numbers("2.3.0-beta.1");
        assert_eq!(&beta[..3], [2, 3, 0]);
        assert_ne!(beta[3], 0);
    }
}
