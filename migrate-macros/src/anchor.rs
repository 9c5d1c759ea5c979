//! Expansion of `migrations! { module = "...", heads { table = "X.Y.Z", ... } }`, the crate
//! anchor: `pub static MIGRATIONS`, the marker type the graph checks implement traits for, the
//! `heads` checks, and a `#[test]` that validates the linked graph.

use crate::args::{parse_version, Errors, VersionArg};
use crate::keys::{table_key, version_key};
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::{braced, Ident, LitStr, Token};

struct Head {
    table: LitStr,
    version: VersionArg,
}

struct AnchorInput {
    module: Option<LitStr>,
    heads: Option<Vec<Head>>,
}

impl Parse for AnchorInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut module = None;
        let mut heads = None;
        let mut errors = Errors::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            match key.to_string().as_str() {
                "module" if module.is_none() => {
                    input.parse::<Token![=]>()?;
                    let lit: LitStr = input.parse()?;
                    if lit.value().trim().is_empty() {
                        errors.add(lit.span(), "`module` must not be empty");
                    }
                    module = Some(lit);
                }
                "heads" if heads.is_none() => {
                    let content;
                    braced!(content in input);
                    let mut list: Vec<Head> = Vec::new();
                    while !content.is_empty() {
                        let table = if content.peek(LitStr) {
                            content.parse::<LitStr>()?
                        } else {
                            let ident: Ident = content.parse()?;
                            LitStr::new(&ident.to_string(), ident.span())
                        };
                        content.parse::<Token![=]>()?;
                        let lit: LitStr = content.parse()?;
                        match parse_version(&lit, "head") {
                            Ok(version) => {
                                if list.iter().any(|h| h.table.value() == table.value()) {
                                    errors.add(
                                        table.span(),
                                        format!(
                                            "table `{}` is listed twice in heads",
                                            table.value()
                                        ),
                                    );
                                }
                                list.push(Head { table, version });
                            }
                            Err(e) => errors.push(e),
                        }
                        if !content.is_empty() {
                            content.parse::<Token![,]>()?;
                        }
                    }
                    heads = Some(list);
                }
                "module" | "heads" => errors.add(key.span(), format!("`{key}` is given twice")),
                _ => {
                    errors.add(
                        key.span(),
                        format!("unknown key `{key}` in migrations!{{}}; expected `module = \"...\"` or `heads {{ table = \"X.Y.Z\", ... }}`"),
                    );
                    // What follows an unknown key cannot be parsed reliably.
                    input.parse::<TokenStream>()?;
                    break;
                }
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        errors.finish()?;
        Ok(AnchorInput { module, heads })
    }
}

/// Expands the anchor.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match syn::parse2::<AnchorInput>(input) {
        Ok(anchor) => generate(&anchor),
        Err(err) => err.into_compile_error(),
    }
}

fn generate(anchor: &AnchorInput) -> TokenStream {
    let private = quote!(::migrate::__private);
    let module = match &anchor.module {
        Some(lit) => quote!(#lit),
        None => quote!(::core::env!("CARGO_CRATE_NAME")),
    };
    let (head_pairs, head_checks) = match &anchor.heads {
        None => (
            quote!(),
            quote!(impl<const TABLE: u64> #private::TableListedInHeads<TABLE> for __MigrateAnchor {}),
        ),
        Some(heads) => {
            let pairs = heads.iter().map(|h| {
                let table = &h.table;
                let version = h.version.version.to_string();
                quote!((#table, #version))
            });
            let checks = heads.iter().map(|h| {
                let t = table_key(&h.table.value());
                let v = version_key(&h.version.version);
                let version_span = h.version.lit.span();
                let table_span = h.table.span();
                let listed = quote_spanned! {table_span=>
                    impl ::migrate::__private::TableListedInHeads<#t> for __MigrateAnchor {}
                };
                quote_spanned! {version_span=>
                    #listed
                    impl ::migrate::__private::SingleChildOf<#t, #v> for __MigrateAnchor {}
                    const _: () = ::migrate::__private::require_declared::<__MigrateAnchor, #t, #v>();
                }
            });
            (quote!(#(#pairs),*), quote!(#(#checks)*))
        }
    };
    quote! {
        /// The migrations of this crate. Pass `&MIGRATIONS` to `migrate::MigrationManager::new`.
        pub static MIGRATIONS: ::migrate::MigrationSet =
            ::migrate::MigrationSet::__new(#module, ::core::env!("CARGO_CRATE_NAME"), &[#head_pairs]);

        /// The type that this crate's `#[migration]` checks implement marker traits for.
        #[doc(hidden)]
        #[allow(dead_code)]
        pub(crate) struct __MigrateAnchor;

        #[doc(hidden)]
        const _: () = {
            #head_checks
        };

        /// Generated by `migrations!{}`: fails `cargo test` when the linked graph is broken.
        #[cfg(test)]
        #[test]
        fn migrate_graph_is_valid() {
            #private::assert_valid(&MIGRATIONS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_heads_every_table_is_listed() {
        let out = expand(quote!()).to_string();
        assert!(out.contains("pub static MIGRATIONS"), "{out}");
        assert!(out.contains("impl < const TABLE : u64 >"), "{out}");
        assert!(out.contains("CARGO_CRATE_NAME"), "{out}");
        assert!(out.contains("fn migrate_graph_is_valid"), "{out}");
    }

    #[test]
    fn heads_pin_each_table() {
        let out =
            expand(quote!(module = "auth", heads { session = "2.3.0", "odd name" = "1.0.0" }))
                .to_string();
        assert!(out.contains("\"auth\""), "{out}");
        assert!(out.contains("(\"session\" , \"2.3.0\")"), "{out}");
        assert!(out.contains("(\"odd name\" , \"1.0.0\")"), "{out}");
        assert_eq!(out.matches("SingleChildOf").count(), 2, "{out}");
        assert!(!out.contains("impl < const TABLE"), "{out}");
    }

    #[test]
    fn bad_input_is_reported() {
        let out = expand(quote!(heads { session = "2.x" })).to_string();
        assert!(out.contains("is not a semver version"), "{out}");
        let out = expand(quote!(colour = "red")).to_string();
        assert!(out.contains("unknown key `colour`"), "{out}");
        let out = expand(quote!(heads { a = "1.0.0", a = "2.0.0" })).to_string();
        assert!(out.contains("listed twice"), "{out}");
    }
}
