//! Expansion of `#[migration(...)]`.
//!
//! The output is the user's function, unchanged, followed by a `const _: () = { ... };` block
//! holding the graph-check items (see `migrate_core::__private`), the shims that box the
//! function's future, and the `inventory` registration.

use crate::args::{self, DownArg, Errors, MigrationArgs};
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
    let private = quote!(::migrate::__private);

    // Each check is spanned at the literal it is about, paths included, so that rustc points
    // at that literal and not at the whole attribute.
    let version_check = quote_spanned! {args.version.lit.span()=>
        impl ::migrate::__private::UniqueTableVersion<#t, #v> for crate::__MigrateAnchor {}
    };
    let parent_checks = match &args.parent {
        Some(parent) => {
            let p = version_key(&parent.version);
            quote_spanned! {parent.lit.span()=>
                impl ::migrate::__private::SingleChildOf<#t, #p> for crate::__MigrateAnchor {}
                const _: () = ::migrate::__private::require_declared::<crate::__MigrateAnchor, #t, #p>();
            }
        }
        None => quote_spanned! {table_lit.span()=>
            impl ::migrate::__private::SingleFirstMigration<#t> for crate::__MigrateAnchor {}
        },
    };
    let heads_check = quote_spanned! {table_lit.span()=>
        const _: () = ::migrate::__private::require_listed_in_heads::<crate::__MigrateAnchor, #t>();
    };
    let after_check = args.after.as_ref().map(|after| {
        let at = table_key(&after.table);
        let av = version_key(&after.version);
        quote_spanned! {after.lit.span()=>
            const _: () = ::migrate::__private::require_declared::<crate::__MigrateAnchor, #at, #av>();
        }
    });

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
                    fn __migrate_down<'a, 'b>(db: &'a mut ::migrate::Conn<'b>) -> #private::MigrationFuture<'a> {
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

            fn __migrate_up<'a, 'b>(db: &'a mut ::migrate::Conn<'b>) -> #private::MigrationFuture<'a> {
                #up_boxed
            }
            #down_shim

            #private::inventory::submit! {
                #private::Migration {
                    set: &crate::MIGRATIONS,
                    table: #table,
                    version: #version_text,
                    parent: #parent_expr,
                    name: #name,
                    up: __migrate_up,
                    reversal: #reversal,
                    transaction: #transaction,
                    after: #after_expr,
                    checksum: #sum,
                    file: ::core::file!(),
                    line: #line,
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn expand_str(attr: TokenStream, item: TokenStream) -> String {
        expand(attr, item).to_string()
    }

    #[test]
    fn expands_a_reversible_migration() {
        let out = expand_str(
            quote!(
                table = "session",
                version = "2.3.0",
                parent = "2.0.0",
                down = revert
            ),
            quote!(
                async fn add_state(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
        );
        assert!(out.contains("async fn add_state"), "{out}");
        assert!(out.contains("UniqueTableVersion"), "{out}");
        assert!(out.contains("SingleChildOf"), "{out}");
        assert!(out.contains("require_declared"), "{out}");
        assert!(out.contains("Reversal :: Down (__migrate_down)"), "{out}");
        assert!(
            out.contains("parent : :: core :: option :: Option :: Some (\"2.0.0\")"),
            "{out}"
        );
        assert!(!out.contains("compile_error"), "{out}");
    }

    #[test]
    fn first_migration_claims_the_root() {
        let out = expand_str(
            quote!(
                table = "session",
                version = "2.0.0",
                irreversible,
                transaction = false,
                name = "create"
            ),
            quote!(
                async fn create(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
        );
        assert!(out.contains("SingleFirstMigration"), "{out}");
        assert!(out.contains("Reversal :: Irreversible"), "{out}");
        assert!(out.contains("transaction : false"), "{out}");
        assert!(out.contains("name : \"create\""), "{out}");
    }

    #[test]
    fn errors_are_combined_and_the_item_is_kept() {
        let out = expand_str(
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
        assert!(out.contains("fn not_async"), "original item kept: {out}");
        assert!(out.contains("is not a semver version"), "{out}");
        assert!(out.contains("unknown key `colour`"), "{out}");
        assert!(out.contains("`down` is given twice"), "{out}");
        assert!(
            !out.contains("inventory"),
            "nothing registered on error: {out}"
        );
    }

    #[test]
    fn rejects_signatures_that_cannot_be_migrations() {
        let out = expand_str(
            quote!(table = "t", version = "1.0.0", irreversible),
            quote!(
                fn m(a: &mut migrate::Conn<'_>, b: u8) {}
            ),
        );
        assert!(out.contains("must be an `async fn`"), "{out}");
        assert!(out.contains("must return `migrate::Result<()>`"), "{out}");
        assert!(out.contains("exactly one argument"), "{out}");
    }

    #[test]
    fn rejects_versions_not_above_the_parent_and_missing_down() {
        let out = expand_str(
            quote!(table = "t", version = "1.0.0", parent = "1.0.0"),
            quote!(
                async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    Ok(())
                }
            ),
        );
        assert!(out.contains("not greater than its parent"), "{out}");
        assert!(out.contains("missing `down"), "{out}");
    }

    #[test]
    fn checksum_ignores_formatting_of_the_body() {
        let a = expand_str(
            quote!(table = "t", version = "1.0.0", irreversible),
            quote!(
                async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    db.execute("X").await?;
                    Ok(())
                }
            ),
        );
        let b = expand_str(
            quote!(table = "t", version = "1.0.0", irreversible),
            quote!(
                async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    db.execute("X").await?;
                    Ok(())
                }
            ),
        );
        let sum = |s: &str| s.split("checksum : ").nth(1).map(|r| r[..27].to_string());
        assert_eq!(sum(&a), sum(&b));
        assert!(sum(&a).is_some());
    }
}
