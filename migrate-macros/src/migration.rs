//! Expansion of `#[migration(...)]`.
//!
//! The output is the user's function, unchanged, followed by a `const _: () = { ... };` block
//! holding the graph-check items (see `migrate_core::__private`), the shims that box the
//! function's future, and the `inventory` registration.

use crate::args::{self, CratePath, DownArg, Errors, MigrationArgs};
use crate::checksum::checksum;
use crate::keys::{table_key, version_key};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType};

/// Expands the attribute. On error, returns the original item together with the errors, so
/// that the rest of the crate (and rust-analyzer) still sees the function.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr_span = attr_span(&attr);
    match try_expand(attr, item.clone(), attr_span) {
        Ok(tokens) => tokens,
        Err(err) => {
            let errors = err.into_compile_error();
            quote!(#item #errors)
        }
    }
}

/// The span errors about missing keys point at: the attribute's arguments, or the call site.
fn attr_span(attr: &TokenStream) -> Span {
    let mut tokens = attr.clone().into_iter();
    match tokens.next() {
        Some(first) => {
            let start = first.span();
            tokens
                .last()
                .and_then(|l| start.join(l.span()))
                .unwrap_or(start)
        }
        None => Span::call_site(),
    }
}

fn try_expand(attr: TokenStream, item: TokenStream, attr_span: Span) -> syn::Result<TokenStream> {
    let function: syn::Result<ItemFn> = syn::parse2(item.clone());
    let args = args::parse(attr, attr_span);
    let (function, args) = match (function, args) {
        (Ok(f), Ok(a)) => (f, a),
        (Err(mut e1), Err(e2)) => {
            e1.combine(e2);
            return Err(e1);
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let arg_type = check_signature(&function)?;
    Ok(generate(&function, &args, &arg_type, &item))
}

/// A migration is `async fn name(db: &mut migrate::Conn<'_>) -> migrate::Result<()>`: checks
/// what can be checked on the syntax, and returns the argument's type for spanning the shim.
fn check_signature(function: &ItemFn) -> syn::Result<syn::Type> {
    let sig = &function.sig;
    let mut errors = Errors::default();
    if sig.asyncness.is_none() {
        errors.add(sig.fn_token.span(), "a migration must be an `async fn`: async fn name(db: &mut migrate::Conn<'_>) -> migrate::Result<()>");
    }
    if !sig.generics.params.is_empty() {
        errors.add(sig.generics.span(), "a migration cannot be generic");
    }
    if let Some(variadic) = &sig.variadic {
        errors.add(variadic.span(), "a migration cannot be variadic");
    }
    if let ReturnType::Default = sig.output {
        errors.add(
            sig.ident.span(),
            "a migration must return `migrate::Result<()>`",
        );
    }
    let mut arg_type = None;
    match sig.inputs.len() {
        1 => match &sig.inputs[0] {
            FnArg::Typed(typed) => match &*typed.ty {
                syn::Type::Reference(r) if r.mutability.is_some() => {
                    arg_type = Some((*typed.ty).clone())
                }
                other => errors.add(
                    other.span(),
                    "the argument of a migration must be `&mut migrate::Conn<'_>`",
                ),
            },
            FnArg::Receiver(r) => {
                errors.add(r.span(), "a migration is a free function, not a method")
            }
        },
        _ => errors.add(
            if sig.inputs.is_empty() {
                sig.ident.span()
            } else {
                sig.inputs.span()
            },
            "a migration takes exactly one argument: `db: &mut migrate::Conn<'_>`",
        ),
    }
    errors.finish()?;
    arg_type.ok_or_else(|| syn::Error::new(sig.span(), "invalid migration signature"))
}

/// The name of the type that stands for a child migration in the `heads` check, in words:
/// `session_1_1_0_upgrades_from_1_0_0`.
fn child_name(
    table: &str,
    version: &semver::Version,
    parent: &semver::Version,
    span: Span,
) -> syn::Ident {
    let words = |text: &str| -> String {
        text.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect()
    };
    let mut name = format!(
        "{}_{}_upgrades_from_{}",
        words(table),
        words(&version.to_string()),
        words(&parent.to_string())
    );
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        name.insert_str(0, "table_");
    }
    syn::Ident::new(&name, span)
}

fn generate(
    function: &ItemFn,
    args: &MigrationArgs,
    arg_type: &syn::Type,
    item: &TokenStream,
) -> TokenStream {
    let fn_name = &function.sig.ident;
    let table = args.table.value();
    let table_lit = &args.table;
    let t = table_key(&table);
    let version_text = args.version.version.to_string();
    let v = version_key(&args.version.version);
    let krate = args.krate.as_ref();
    let private = {
        let path = CratePath::at(krate, Span::call_site());
        quote!(#path::__private)
    };
    // Each check is spanned at the literal it is about, paths included, so that rustc points
    // at that literal and not at the whole attribute.
    let at = |span: Span| {
        let path = CratePath::at(krate, span);
        quote_spanned!(span=> #path::__private)
    };
    let version_span = args.version.lit.span();
    let p = at(version_span);
    let version_check = quote_spanned! {version_span=>
        impl #p::EachTableVersionIsDeclaredOnce<#t, #v> for crate::__MigrateAnchor {}
    };
    let parent_checks = match &args.parent {
        Some(parent) => {
            let pv = version_key(&parent.version);
            let span = parent.lit.span();
            let p = at(span);
            let child = child_name(&table, &args.version.version, &parent.version, span);
            quote_spanned! {span=>
                /// Stands for this migration in the `heads` check; its name is in the message.
                #[allow(dead_code, non_camel_case_types)]
                struct #child;
                impl #p::TwoMigrationsShareThisParent<#t, #pv> for crate::__MigrateAnchor {}
                impl #p::HeadsEntryIsNotTheLatestVersion<#child, #t, #pv> for crate::__MigrateAnchor {}
                const _: () = #p::require_declared::<crate::__MigrateAnchor, #t, #pv>();
            }
        }
        None => {
            let span = table_lit.span();
            let p = at(span);
            quote_spanned! {span=>
                impl #p::TwoFirstMigrationsForThisTable<#t> for crate::__MigrateAnchor {}
            }
        }
    };
    let heads_check = {
        let span = table_lit.span();
        let p = at(span);
        quote_spanned! {span=>
            const _: () = #p::require_listed_in_heads::<crate::__MigrateAnchor, #t>();
        }
    };
    let after_check = args.after.as_ref().map(|after| {
        let at_table = table_key(&after.table);
        let av = version_key(&after.version);
        let span = after.lit.span();
        let p = at(span);
        quote_spanned! {span=>
            const _: () = #p::require_declared::<crate::__MigrateAnchor, #at_table, #av>();
        }
    });
    let conn = {
        let path = CratePath::at(krate, Span::call_site());
        quote!(#path::__private::Conn)
    };

    let ty_span = arg_type.span();
    let ret_span = match &function.sig.output {
        ReturnType::Type(_, ty) => ty.span(),
        ReturnType::Default => fn_name.span(),
    };
    let up_call = quote_spanned!(ty_span=> #fn_name(db));
    let up_boxed = quote_spanned!(ret_span=> #private::boxed(#up_call));
    let (down_shim, reversal) = match &args.down {
        DownArg::Path(path) => {
            let call = quote_spanned!(path.span()=> #private::boxed(#path(db)));
            (
                quote! {
                    fn __migrate_down<'a, 'b>(db: &'a mut #conn<'b>) -> #private::MigrationFuture<'a> {
                        #call
                    }
                },
                quote!(#private::Reversal::Down(__migrate_down)),
            )
        }
        DownArg::Irreversible => (quote!(), quote!(#private::Reversal::Irreversible)),
    };
    let parent_expr = match &args.parent {
        Some(p) => {
            let text = p.version.to_string();
            quote!(::core::option::Option::Some(#text))
        }
        None => quote!(::core::option::Option::None),
    };
    let after_expr = match &args.after {
        Some(a) => {
            let text = format!("{}@{}", a.table, a.version);
            quote!(::core::option::Option::Some(#text))
        }
        None => quote!(::core::option::Option::None),
    };
    let name = args
        .name
        .as_ref()
        .map_or_else(|| fn_name.to_string(), syn::LitStr::value);
    let transaction = args.transaction;
    let sum = checksum(&function.block.to_token_stream());
    let line = quote_spanned!(table_lit.span()=> ::core::line!());

    quote! {
        #item

        #[doc(hidden)]
        const _: () = {
            #version_check
            #parent_checks
            #heads_check
            #after_check

            fn __migrate_up<'a, 'b>(db: &'a mut #conn<'b>) -> #private::MigrationFuture<'a> {
                #up_boxed
            }
            #down_shim

            #private::inventory::submit! {
                #private::Migration::__new(
                    &crate::MIGRATIONS,
                    #table,
                    #version_text,
                    #parent_expr,
                    #name,
                    __migrate_up,
                    #reversal,
                    #transaction,
                    #after_expr,
                    #sum,
                    ::core::file!(),
                    #line,
                )
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{compile_errors, implemented_traits, registered_call};
    use quote::quote;

    fn up_fn() -> TokenStream {
        quote!(
            async fn add_state(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                Ok(())
            }
        )
    }

    #[test]
    fn a_child_claims_its_version_and_its_parent() {
        let out = expand(
            quote!(
                table = "session",
                version = "2.3.0",
                parent = "2.0.0",
                down = revert
            ),
            up_fn(),
        );
        assert!(compile_errors(&out).is_empty(), "{out}");
        let traits = implemented_traits(&out);
        for expected in [
            "EachTableVersionIsDeclaredOnce",
            "TwoMigrationsShareThisParent",
            "HeadsEntryIsNotTheLatestVersion",
        ] {
            assert!(
                traits.iter().any(|t| t == expected),
                "{expected} in {traits:?}"
            );
        }
        assert!(!traits.iter().any(|t| t == "TwoFirstMigrationsForThisTable"));
        let call = registered_call(&out).expect("one registration");
        assert_eq!(call.args[1], syn::parse_quote!("session"));
        assert_eq!(call.args[2], syn::parse_quote!("2.3.0"));
        assert_eq!(
            call.args[3],
            syn::parse_quote!(::core::option::Option::Some("2.0.0"))
        );
        assert_eq!(
            call.args[6],
            syn::parse_quote!(::migrate::__private::Reversal::Down(__migrate_down))
        );
    }

    #[test]
    fn the_heads_check_names_the_child_in_words() {
        let name = |table: &str, version: &str, parent: &str| {
            let v = |t: &str| semver::Version::parse(t).unwrap();
            child_name(table, &v(version), &v(parent), Span::call_site()).to_string()
        };
        assert_eq!(
            name("session", "1.1.0", "1.0.0"),
            "session_1_1_0_upgrades_from_1_0_0"
        );
        assert_eq!(
            name("odd-näme", "2.0.0-rc.1", "1.0.0"),
            "odd_n_me_2_0_0_rc_1_upgrades_from_1_0_0"
        );
        assert_eq!(
            name("9lives", "1.0.1", "1.0.0"),
            "table_9lives_1_0_1_upgrades_from_1_0_0"
        );
    }

    #[test]
    fn a_first_migration_claims_the_root() {
        let out = expand(
            quote!(
                table = "session",
                version = "2.0.0",
                irreversible,
                transaction = false,
                name = "create"
            ),
            up_fn(),
        );
        let traits = implemented_traits(&out);
        assert!(
            traits.iter().any(|t| t == "TwoFirstMigrationsForThisTable"),
            "{traits:?}"
        );
        assert!(
            !traits.iter().any(|t| t == "TwoMigrationsShareThisParent"),
            "{traits:?}"
        );
        let call = registered_call(&out).expect("one registration");
        assert_eq!(call.args[4], syn::parse_quote!("create"));
        assert_eq!(
            call.args[6],
            syn::parse_quote!(::migrate::__private::Reversal::Irreversible)
        );
        assert_eq!(call.args[7], syn::parse_quote!(false));
    }

    #[test]
    fn the_crate_key_replaces_every_path_to_the_facade() {
        let out = expand(
            quote!(
                table = "t",
                version = "1.0.0",
                parent = "0.1.0",
                down = revert,
                crate = "::host::db"
            ),
            up_fn(),
        );
        assert!(compile_errors(&out).is_empty(), "{out}");
        let text = out.to_string();
        assert!(
            !text.contains(":: migrate ::"),
            "no hard-coded facade: {text}"
        );
        assert!(text.contains(":: host :: db :: __private"), "{text}");
        let bad = expand(
            quote!(
                table = "t",
                version = "1.0.0",
                irreversible,
                crate = "not a path"
            ),
            up_fn(),
        );
        assert!(
            compile_errors(&bad)
                .iter()
                .any(|e| e.contains("is not a path")),
            "{bad}"
        );
    }

    #[test]
    fn errors_are_combined_and_the_item_is_kept() {
        let out = expand(
            quote!(
                table = "session",
                version = "two",
                colour = "red",
                down = revert,
                down = again
            ),
            quote!(
                fn not_async(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
        );
        let file: syn::File = syn::parse2(out.clone()).expect("output parses");
        assert!(
            file.items
                .iter()
                .any(|i| matches!(i, syn::Item::Fn(f) if f.sig.ident == "not_async")),
            "original item kept: {out}"
        );
        let errors = compile_errors(&out);
        for expected in [
            "is not a semver version",
            "unknown key `colour`",
            "`down` is given twice",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected} in {errors:?}"
            );
        }
        assert!(
            registered_call(&out).is_none(),
            "nothing registered on error"
        );
    }

    #[test]
    fn rejects_signatures_that_cannot_be_migrations() {
        let out = expand(
            quote!(table = "t", version = "1.0.0", irreversible),
            quote!(
                fn m(a: &mut migrate::Conn<'_>, b: u8) {}
            ),
        );
        let errors = compile_errors(&out);
        for expected in [
            "must be an `async fn`",
            "must return `migrate::Result<()>`",
            "exactly one argument",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected} in {errors:?}"
            );
        }
    }

    #[test]
    fn rejects_versions_not_above_the_parent_and_missing_down() {
        let out = expand(
            quote!(table = "t", version = "1.0.0", parent = "1.0.0"),
            up_fn(),
        );
        let errors = compile_errors(&out);
        assert!(
            errors
                .iter()
                .any(|e| e.contains("not greater than its parent")),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| e.contains("missing `down")),
            "{errors:?}"
        );
    }
}
