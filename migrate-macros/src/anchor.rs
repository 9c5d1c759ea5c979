//! Expansion of `migrations! { module = "...", heads { table = "X.Y.Z", ... } }`, the crate
//! anchor: `pub static MIGRATIONS`, the marker type the graph checks implement traits for, the
//! `heads` checks, and a `#[test]` that validates the linked graph.

use crate::args::{
    check_tracked_name, parse_crate_path, parse_key, parse_version, CratePath, Errors, VersionArg,
};
use crate::keys::{shard_name, table_key, StepKey, SHARDS};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{braced, Ident, LitStr, Token};

struct Head {
    table: LitStr,
    version: VersionArg,
}

struct AnchorInput {
    module: Option<LitStr>,
    heads: Option<Vec<Head>>,
    krate: Option<CratePath>,
}

impl Parse for AnchorInput {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut errors = Errors::default();
        match parse_arguments(input, &mut errors) {
            Ok(anchor) => errors.finish().map(|()| anchor),
            // What was found before the input stopped parsing is reported with it.
            Err(err) => Err(errors.and(err)),
        }
    }
}

/// The arguments of `migrations!{}`; mistakes that do not stop the parsing go to `errors`.
fn parse_arguments(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<AnchorInput> {
    let mut module = None;
    let mut heads = None;
    let mut krate = None;
    while !input.is_empty() {
        let key = parse_key(input)?;
        match key.to_string().as_str() {
            "crate" if krate.is_none() => {
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                match parse_crate_path(&lit) {
                    Ok(path) => krate = Some(path),
                    Err(e) => errors.push(e),
                }
            }
            "module" if module.is_none() => {
                input.parse::<Token![=]>()?;
                let lit: LitStr = input.parse()?;
                if let Err(e) = check_tracked_name(&lit, "module") {
                    errors.push(e);
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
                        LitStr::new(&ident.unraw().to_string(), ident.span())
                    };
                    content.parse::<Token![=]>()?;
                    let lit: LitStr = content.parse()?;
                    match parse_version(&lit, "head") {
                        Ok(version) => {
                            if list.iter().any(|h| h.table.value() == table.value()) {
                                errors.add(
                                    table.span(),
                                    format!("table `{}` is listed twice in heads", table.value()),
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
            "module" | "heads" | "crate" => {
                errors.add(key.span(), format!("`{key}` is given twice"));
                // Its value read and set aside, so that what follows still parses.
                if input.peek(Token![=]) {
                    input.parse::<Token![=]>()?;
                    input.parse::<syn::Lit>()?;
                } else if input.peek(syn::token::Brace) {
                    let value;
                    braced!(value in input);
                    value.parse::<TokenStream>()?;
                }
            }
            _ => {
                errors.add(
                    key.span(),
                    format!("unknown key `{key}` in migrations!{{}}; expected `module = \"...\"`, `heads {{ table = \"X.Y.Z\", ... }}` or `crate = \"path\"`"),
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
    Ok(AnchorInput {
        module,
        heads,
        krate,
    })
}

/// Expands the anchor. Input it refuses still gets an anchor (with no heads, and the crate
/// path if one was given that parses), beside the errors: the crate's `#[migration]`s and
/// `sql_dir!`s name it, and would otherwise each add "cannot find" errors to the one mistake.
pub(crate) fn expand(input: TokenStream) -> TokenStream {
    match syn::parse2::<AnchorInput>(input.clone()) {
        Ok(anchor) => generate(&anchor),
        Err(err) => {
            let fallback = AnchorInput {
                module: None,
                heads: None,
                krate: given_crate(input),
            };
            let anchor = generate(&fallback);
            let errors = err.into_compile_error();
            quote!(#errors #anchor)
        }
    }
}

/// The `crate = "path"` of input that does not parse as a whole, if it is there and parses.
fn given_crate(input: TokenStream) -> Option<CratePath> {
    use proc_macro2::TokenTree;
    let tokens: Vec<TokenTree> = input.into_iter().collect();
    tokens.windows(3).find_map(|window| match window {
        [TokenTree::Ident(key), TokenTree::Punct(eq), TokenTree::Literal(lit)]
            if key == "crate" && eq.as_char() == '=' =>
        {
            let lit: LitStr = syn::parse2(TokenTree::Literal(lit.clone()).into()).ok()?;
            parse_crate_path(&lit).ok()
        }
        _ => None,
    })
}

fn generate(anchor: &AnchorInput) -> TokenStream {
    let krate = anchor.krate.as_ref();
    let private = CratePath::private(krate, Span::call_site());
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
                let step = StepKey::new(&h.table.value(), &h.version.version);
                let version_span = h.version.lit.span();
                let (key, shard) = (step.key(), step.shard(version_span));
                let table_span = h.table.span();
                let listed = {
                    let facade = CratePath::at(krate, table_span);
                    quote_spanned! {table_span=>
                        impl #facade::__private::TableListedInHeads<#t> for __MigrateAnchor {}
                    }
                };
                let facade = CratePath::at(krate, version_span);
                quote_spanned! {version_span=>
                    #listed
                    impl<Child> #facade::__private::HeadsEntryIsNotTheLatestVersion<Child, #key> for #shard {}
                    const _: () = #facade::__private::require_declared::<#shard, #key>();
                }
            });
            (quote!(#(#pairs),*), quote!(#(#checks)*))
        }
    };
    // The types that the checks about steps implement marker traits for, a step's by its key.
    let shards = (0..SHARDS).map(|index| {
        let name = shard_name(index, Span::call_site());
        quote! {
            #[doc(hidden)]
            #[allow(dead_code)]
            pub(crate) struct #name;
        }
    });
    let shards = quote!(#(#shards)*);
    quote! {
        /// The migrations of this crate. Pass `&MIGRATIONS` to `migrate::MigrationManager::new`.
        pub static MIGRATIONS: #private::MigrationSet =
            #private::MigrationSet::__new(#module, ::core::env!("CARGO_CRATE_NAME"), &[#head_pairs]);

        /// The type that this crate's checks about tables implement marker traits for.
        #[doc(hidden)]
        #[allow(dead_code)]
        pub(crate) struct __MigrateAnchor;

        #shards

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
    use crate::test_support::{compile_errors, implemented_traits};

    #[test]
    fn without_heads_every_table_is_listed() {
        let out = expand(quote!());
        let file: syn::File = syn::parse2(out.clone()).expect("output parses");
        assert!(
            file.items
                .iter()
                .any(|i| matches!(i, syn::Item::Static(s) if s.ident == "MIGRATIONS")),
            "{out}"
        );
        assert!(
            file.items
                .iter()
                .any(|i| matches!(i, syn::Item::Fn(f) if f.sig.ident == "migrate_graph_is_valid")),
            "{out}"
        );
        assert_eq!(implemented_traits(&out), ["TableListedInHeads"]);
    }

    #[test]
    fn heads_pin_each_table() {
        let out =
            expand(quote!(module = "auth", heads { session = "2.3.0", "odd name" = "1.0.0" }));
        let traits = implemented_traits(&out);
        assert_eq!(
            traits
                .iter()
                .filter(|t| *t == "HeadsEntryIsNotTheLatestVersion")
                .count(),
            2,
            "{traits:?}"
        );
        assert_eq!(
            traits.iter().filter(|t| *t == "TableListedInHeads").count(),
            2
        );
        let file: syn::File = syn::parse2(out).expect("output parses");
        let syn::Item::Static(set) = &file.items[0] else {
            panic!("MIGRATIONS first");
        };
        let syn::Expr::Call(call) = &*set.expr else {
            panic!("a constructor call");
        };
        assert_eq!(call.args[0], syn::parse_quote!("auth"));
        assert_eq!(
            call.args[2],
            syn::parse_quote!(&[("session", "2.3.0"), ("odd name", "1.0.0")])
        );
    }

    #[test]
    fn the_crate_key_is_honoured() {
        let out = expand(quote!(crate = "renamed", heads { t = "1.0.0" }));
        assert!(compile_errors(&out).is_empty(), "{out}");
        assert!(!out.to_string().contains(":: migrate ::"), "{out}");
    }

    #[test]
    fn bad_input_is_reported() {
        let errors = compile_errors(&expand(quote!(heads { session = "2.x" })));
        assert!(
            errors.iter().any(|e| e.contains("is not a semver version")),
            "{errors:?}"
        );
        let errors = compile_errors(&expand(quote!(colour = "red")));
        assert!(
            errors.iter().any(|e| e.contains("unknown key `colour`")),
            "{errors:?}"
        );
        let errors = compile_errors(&expand(quote!(heads { a = "1.0.0", a = "2.0.0" })));
        assert!(
            errors.iter().any(|e| e.contains("listed twice")),
            "{errors:?}"
        );
    }
}
