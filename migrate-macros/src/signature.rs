//! A migration's signature: what the attribute checks on the syntax, and the rewrite of the
//! user's `async fn` into the plain `fn` that is registered (or why it is kept as written,
//! behind a shim).

use crate::args::Errors;
use crate::item::FnItem;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{FnArg, ReturnType};

/// The two parts of a migration's signature that the expansion uses, once checked.
#[derive(Clone, Copy)]
pub(crate) struct Signature<'a> {
    /// The one argument, `db: &mut migrate::Conn<'_>` as the user wrote it.
    pub(crate) argument: &'a syn::PatType,
    /// The return type as the user wrote it.
    pub(crate) output: &'a syn::Type,
}

/// A migration is `async fn name(db: &mut migrate::Conn<'_>) -> migrate::Result<()>`: checks
/// what can be checked on the syntax (the types themselves are checked by rustc, inside the
/// rewritten function). Returns the argument and the return type.
pub(crate) fn check_signature(function: &FnItem) -> syn::Result<Signature<'_>> {
    let sig = &function.sig;
    let mut errors = Errors::default();
    if sig.asyncness.is_none() {
        errors.add(sig.fn_token.span(), "a migration must be an `async fn`: async fn name(db: &mut migrate::Conn<'_>) -> migrate::Result<()>");
    }
    if let Some(constness) = &sig.constness {
        errors.add(constness.span(), "a migration cannot be `const`");
    }
    if let Some(unsafety) = &sig.unsafety {
        errors.add(unsafety.span(), "a migration cannot be `unsafe`");
    }
    if let Some(abi) = &sig.abi {
        errors.add(abi.span(), "a migration cannot declare an ABI");
    }
    if !sig.generics.params.is_empty() {
        errors.add(sig.generics.span(), "a migration cannot be generic");
    }
    if let Some(variadic) = &sig.variadic {
        errors.add(variadic.span(), "a migration cannot be variadic");
    }
    let output = match &sig.output {
        ReturnType::Type(_, ty) => Some(&**ty),
        ReturnType::Default => {
            errors.add(
                sig.ident.span(),
                "a migration must return `migrate::Result<()>`",
            );
            None
        }
    };
    let mut argument = None;
    match sig.inputs.len() {
        1 => match &sig.inputs[0] {
            // A type given through a `macro_rules!` fragment (`$t:ty`) arrives grouped.
            FnArg::Typed(typed) => match ungrouped(&typed.ty) {
                syn::Type::Reference(r) if r.mutability.is_some() => argument = Some(typed),
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
    match (argument, output) {
        (Some(argument), Some(output)) => Ok(Signature { argument, output }),
        // Each missing part added its error above.
        _ => Err(syn::Error::new(sig.span(), "invalid migration signature")),
    }
}

/// Whether the function can be rewritten into the registered plain `fn` without changing what it
/// means: its attributes are only documentation, lint levels and `cfg` (another attribute, such
/// as `#[tracing::instrument]`, may need the `async fn` and its parameter as written), and its
/// argument's type has no `impl Trait` (which a `let` cannot declare).
pub(crate) fn rewritable(function: &FnItem, signature: Signature<'_>) -> bool {
    const PLAIN: [&str; 7] = ["doc", "allow", "warn", "deny", "expect", "forbid", "cfg"];
    let plain_attrs = function.all_attrs().all(|attr| {
        attr.path()
            .get_ident()
            .is_some_and(|ident| PLAIN.iter().any(|plain| ident == plain))
    });
    plain_attrs && !mentions_impl_trait(&signature.argument.ty)
}

/// Whether `ty` has an `impl Trait` anywhere in it.
fn mentions_impl_trait(ty: &syn::Type) -> bool {
    fn has_impl(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            proc_macro2::TokenTree::Ident(ident) => ident == "impl",
            proc_macro2::TokenTree::Group(group) => has_impl(group.stream()),
            _ => false,
        })
    }
    has_impl(ty.to_token_stream())
}

/// The user's `async fn` as the plain `fn` that is registered: the same name, attributes and
/// body, returning the body's future boxed (`MigrationFuture`). One function per migration
/// instead of an `async fn` and a shim that boxes its future: rustc checks, lowers and compiles
/// less per migration (BENCHMARKS.md, "Compile time").
///
/// The parameter is always `&mut Conn<'_>`, so the function is a `MigrationFn` whatever the
/// user wrote; the argument's pattern and type and the return type as written are checked
/// inside, where errors point at them. As in an `async fn`, the argument is moved into the
/// future and `return` and `?` leave the body.
///
pub(crate) fn boxed_function(
    function: &FnItem,
    signature: Signature<'_>,
    private: &TokenStream,
) -> TokenStream {
    let inner = &function.inner_attrs;
    // The argument as the user declared it, bound to the connection: a wrong type is an error
    // at that type.
    let argument = {
        let syn::PatType { attrs, pat, ty, .. } = signature.argument;
        let connection = connection_at(ty);
        quote!(#(#attrs)* let #pat: #ty = #connection;)
    };
    // The body's own type is the future's output, checked by `boxed`: nothing follows the
    // body, so a body that ends by returning or diverging draws no `unreachable` warning.
    let ret_check = return_check(signature, private);
    let ret_span = signature.output.span();
    let block = &function.block;
    let boxed = quote_spanned!(ret_span=> #private::boxed);
    // Spanned at the return type, where an error about the future's output belongs.
    let future = quote_spanned!(ret_span=> async move { #argument #block });
    registered_fn(
        function,
        private,
        quote! {
            #(#inner)*
            #ret_check
            #boxed(#future)
        },
    )
}

/// A function whose body only executes string literals (`statements.rs`), rewritten into the
/// registered `MigrationFn` as one call that runs `statements` in order: what the body would
/// do, without a future of its own (an `async` body is a future rustc type-checks and
/// borrow-checks per function: most of such a crate's build). The argument is still bound as
/// declared and the return type still checked, so a wrong type is an error at that type.
pub(crate) fn statements_function(
    function: &FnItem,
    signature: Signature<'_>,
    private: &TokenStream,
    body: &crate::statements::Executes,
) -> TokenStream {
    let syn::PatType { attrs, pat, ty, .. } = signature.argument;
    let connection = connection_at(ty);
    let output = signature.output;
    let ret_check = return_check(signature, private);
    let ok = &body.ok;
    let statements = &body.statements;
    // The argument is bound as declared and named as the body named it, so rustc resolves both
    // (and lints them: an unneeded `mut`, an unused argument) as it did the body. A body of
    // `Ok(())` alone names no argument: its binding is a reborrow, left unused as written.
    let (binding, run) = match &body.db {
        Some(db) => (
            quote!(#connection),
            quote!(#private::execute_statements(#db, &[#(#statements),*])),
        ),
        None => (
            quote!(&mut *#connection),
            quote!(#private::execute_statements(#connection, &[])),
        ),
    };
    registered_fn(
        function,
        private,
        quote! {
            #ret_check
            #(#attrs)*
            let #pat: #ty = #binding;
            // The body's `Ok(())`, checked against the return type as the body's was.
            let _: #output = #ok(());
            #run
        },
    )
}

/// The user's function as the registered `MigrationFn`, with `body`: its outer attributes,
/// visibility, name and `where` clause, and the one parameter, the connection.
fn registered_fn(function: &FnItem, private: &TokenStream, body: TokenStream) -> TokenStream {
    let outer = &function.attrs;
    let vis = &function.vis;
    let name = &function.sig.ident;
    let where_clause = &function.sig.generics.where_clause;
    let param = syn::Ident::new(PARAM, Span::mixed_site());
    let lifetime = syn::Lifetime::new("'__migrate", Span::call_site());
    quote! {
        #(#outer)*
        #vis fn #name<#lifetime>(
            #param: &#lifetime mut #private::Conn<'_>,
        ) -> #private::MigrationFuture<#lifetime> #where_clause {
            #body
        }
    }
}

/// The connection parameter's name: `mixed_site`, so the user's body cannot see it and nothing
/// it declares is shadowed.
const PARAM: &str = "__migrate_db";

/// The connection parameter, named where the argument's type `ty` is (errors about binding it
/// point there).
fn connection_at(ty: &syn::Type) -> syn::Ident {
    syn::Ident::new(PARAM, Span::mixed_site().located_at(ty.span()))
}

/// The return type as the user wrote it must be a migration's: an error at that type.
fn return_check(signature: Signature<'_>, private: &TokenStream) -> TokenStream {
    let output = signature.output;
    quote_spanned!(output.span()=> #private::returns::<#output>();)
}

/// `ty` without the invisible group a macro fragment wraps it in, or parentheses.
pub(crate) fn ungrouped(ty: &syn::Type) -> &syn::Type {
    match ty {
        syn::Type::Group(group) => ungrouped(&group.elem),
        syn::Type::Paren(paren) => ungrouped(&paren.elem),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::expand_migration as expand;
    use crate::test_support::{compile_errors, registered_call};
    use proc_macro2::TokenStream;
    use quote::{quote, ToTokens};

    #[test]
    fn the_function_is_rewritten_into_the_registered_one() {
        let out = expand(
            quote!(table = "session", version = "2.0.0", irreversible),
            quote!(
                /// Creates the table.
                #[allow(unused_mut)]
                pub async fn create(mut db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                    #![allow(clippy::needless_return)]
                    return Ok(());
                }
            ),
        );
        assert!(compile_errors(&out).is_empty(), "{out}");
        let file: syn::File = syn::parse2(out.clone()).expect("output parses");
        let function = file
            .items
            .iter()
            .find_map(|i| match i {
                syn::Item::Fn(f) if f.sig.ident == "create" => Some(f),
                _ => None,
            })
            .expect("the function is kept under its name");
        assert!(function.sig.asyncness.is_none(), "a plain fn: {out}");
        assert!(matches!(function.vis, syn::Visibility::Public(_)));
        let ret = function.sig.output.to_token_stream().to_string();
        assert!(ret.contains("MigrationFuture"), "{ret}");
        // syn gathers a body's inner attributes into `attrs` too, by style.
        let (outer, inner): (Vec<_>, Vec<_>) = function
            .attrs
            .iter()
            .partition(|a| matches!(a.style, syn::AttrStyle::Outer));
        let text = |attrs: &[&syn::Attribute]| -> Vec<String> {
            attrs
                .iter()
                .map(|a| a.to_token_stream().to_string())
                .collect()
        };
        let (outer, inner) = (text(&outer), text(&inner));
        assert!(outer.iter().any(|a| a.contains("doc")), "{outer:?}");
        assert!(outer.iter().any(|a| a.contains("unused_mut")), "{outer:?}");
        assert!(
            inner.len() == 1 && inner[0].contains("needless_return"),
            "the inner attribute stays inside: {inner:?}"
        );
        let body = function.block.to_token_stream().to_string();
        assert!(
            body.contains("let mut db"),
            "the argument as declared: {body}"
        );
        assert!(
            body.contains("returns"),
            "the return type is checked: {body}"
        );
        let call = registered_call(&out).expect("one registration");
        assert_eq!(
            call.args[5],
            syn::parse_quote!(create),
            "the function itself is registered, without a shim"
        );
    }

    #[test]
    fn a_function_that_must_stay_as_written_is_kept_behind_a_shim() {
        let kept = |item: TokenStream| {
            let out = expand(quote!(table = "t", version = "1.0.0", irreversible), item);
            assert!(compile_errors(&out).is_empty(), "{out}");
            let file: syn::File = syn::parse2(out.clone()).expect("output parses");
            let still_async = file.items.iter().any(|i| {
                matches!(i, syn::Item::Fn(f) if f.sig.ident == "m" && f.sig.asyncness.is_some())
            });
            let call = registered_call(&out).expect("one registration");
            (still_async, call.args[5].clone())
        };
        let shim: syn::Expr = syn::parse_quote!(__migrate_up);
        // Another attribute (it may need the `async fn` and its parameter as written).
        let (still_async, up) = kept(quote!(
            #[tracing::instrument(skip(db))]
            async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                Ok(())
            }
        ));
        assert!(still_async);
        assert_eq!(up, shim);
        // An `impl Trait` argument, which a `let` cannot declare.
        let (still_async, up) = kept(quote!(
            async fn m(db: &mut (impl migrate::ConnExt + Send)) -> migrate::Result<()> {
                Ok(())
            }
        ));
        assert!(still_async);
        assert_eq!(up, shim);
        // Documentation, lint levels and `cfg` alone are rewritten.
        let (still_async, up) = kept(quote!(
            /// Documented.
            #[allow(unused)]
            #[cfg(all())]
            async fn m(db: &mut migrate::Conn<'_>) -> migrate::Result<()> {
                Ok(())
            }
        ));
        assert!(!still_async);
        assert_eq!(up, syn::parse_quote!(m));
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
        // The registered function is a plain safe Rust `fn`: not `const` (which the rewrite
        // would drop), not `unsafe`, and of no other ABI.
        let out = expand(
            quote!(table = "t", version = "1.0.0", irreversible),
            quote!(
                const async unsafe extern "C" fn m(
                    db: &mut migrate::Conn<'_>,
                ) -> migrate::Result<()> {
                    Ok(())
                }
            ),
        );
        let errors = compile_errors(&out);
        for expected in [
            "cannot be `const`",
            "cannot be `unsafe`",
            "cannot declare an ABI",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(expected)),
                "{expected} in {errors:?}"
            );
        }
        assert!(registered_call(&out).is_none(), "nothing registered: {out}");
    }
}
