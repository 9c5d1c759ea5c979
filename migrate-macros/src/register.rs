//! What every step expands to, whether a `#[migration]` function or a file of `sql_dir!`: the
//! graph-check items rustc compares, the shims that box the step's future, and the `inventory`
//! registration.

use crate::args::CratePath;
use crate::keys::{table_key, StepKey};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};

/// Who declares a step, for the duplicate check.
pub(crate) enum Declaration {
    /// A `#[migration]` function: it claims its (table, version) for every declarer type, so a
    /// second function or a file with the same version conflicts.
    Function,
    /// A SQL file, named by a type whose name is the file's: a function declaring the same
    /// version conflicts with it, and the message shows the file.
    SqlFile(syn::Ident),
}

/// One step to register.
pub(crate) struct Step<'a> {
    pub(crate) krate: Option<&'a CratePath>,
    pub(crate) table: &'a str,
    /// Where errors about the table point.
    pub(crate) table_span: Span,
    pub(crate) version: &'a semver::Version,
    pub(crate) version_span: Span,
    pub(crate) parent: Option<(&'a semver::Version, Span)>,
    /// `after = "table@X.Y.Z"`.
    pub(crate) after: Option<(&'a str, &'a semver::Version, Span)>,
    pub(crate) declaration: Declaration,
    pub(crate) name: &'a str,
    pub(crate) transaction: bool,
    /// `resumable`.
    pub(crate) resumable: bool,
    /// How the step's up is registered.
    pub(crate) up: Up,
    /// The same for the down; `None` is irreversible.
    pub(crate) down: Option<TokenStream>,
    /// The same for the function that creates the table directly at this version, with its
    /// name; `None` when there is none.
    pub(crate) fresh: Option<(TokenStream, String)>,
    pub(crate) checksum: &'a str,
    /// The SQL a dry run shows: expressions of type `&'static str`.
    pub(crate) sql: Option<(TokenStream, Option<TokenStream>)>,
    /// An expression of type `&'static str` naming where the step is declared, and its line.
    pub(crate) file: TokenStream,
    pub(crate) line: TokenStream,
}

/// How a step's up is registered.
pub(crate) enum Up {
    /// A function of type `MigrationFn` (a `#[migration]` function, which returns its future
    /// boxed): registered as it is.
    Function(TokenStream),
    /// An expression of type `MigrationFuture<'a>` over `db: &'a mut Conn<'b>` (a SQL file's
    /// statements): registered through a shim that evaluates it.
    Expression(TokenStream),
}

/// The name of the type that stands for a child step in the `heads` check, in words:
/// `session_1_1_0_upgrades_from_1_0_0`.
pub(crate) fn child_name(
    table: &str,
    version: &semver::Version,
    parent: &semver::Version,
    span: Span,
) -> syn::Ident {
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

/// `text` with every character that cannot be in an identifier replaced by `_`.
pub(crate) fn words(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The items of one step, in a `const _: () = { ... };` block.
pub(crate) fn register(step: &Step<'_>) -> TokenStream {
    let krate = step.krate;
    let private = CratePath::private(krate, Span::call_site());
    // Each check is spanned at the literal it is about, paths included, so that rustc points
    // at that literal and not at the whole attribute.
    let at = |span: Span| CratePath::private(krate, span);
    let step_key = StepKey::new(step.table, step.version);
    let (key, shard) = (step_key.key(), step_key.shard(step.version_span));
    let p = at(step.version_span);
    let version_check = match &step.declaration {
        Declaration::Function => quote_spanned! {step.version_span=>
            impl<Declarer> #p::EachTableVersionIsDeclaredOnce<Declarer, #key> for crate::#shard {}
        },
        Declaration::SqlFile(file) => quote_spanned! {step.version_span=>
            /// Stands for the file in the duplicate check; its name is in the message.
            #[allow(dead_code, non_camel_case_types)]
            struct #file;
            impl #p::EachTableVersionIsDeclaredOnce<#file, #key> for crate::#shard {}
            impl #p::EachTableVersionIsDeclaredOnce<#p::AnyDeclarer, #key> for crate::#shard {}
        },
    };
    // A child's fork check also requires its parent to be declared (the trait's supertrait);
    // a first migration's root check requires its table in `heads`. Every table has one first
    // migration, or its children's parents are missing.
    let parent_checks = match step.parent {
        Some((parent, span)) => {
            let parent_step = StepKey::new(step.table, parent);
            let (parent_key, parent_shard) = (parent_step.key(), parent_step.shard(span));
            let p = at(span);
            let child = child_name(step.table, step.version, parent, span);
            quote_spanned! {span=>
                /// Stands for this step in the `heads` check; its name is in the message.
                #[allow(dead_code, non_camel_case_types)]
                struct #child;
                impl #p::TwoMigrationsShareThisParent<#parent_key> for crate::#parent_shard {}
                impl #p::HeadsEntryIsNotTheLatestVersion<#child, #parent_key> for crate::#parent_shard {}
            }
        }
        None => {
            let p = at(step.table_span);
            let t = table_key(step.table);
            quote_spanned! {step.table_span=>
                impl #p::TwoFirstMigrationsForThisTable<#t> for crate::__MigrateAnchor {}
            }
        }
    };
    let after_check = step.after.map(|(table, version, span)| {
        let after = StepKey::new(table, version);
        let (after_key, after_shard) = (after.key(), after.shard(span));
        let p = at(span);
        quote_spanned! {span=>
            const _: () = #p::require_declared::<crate::#after_shard, #after_key>();
        }
    });
    // A function of type `MigrationFn` that evaluates `body` over `db`.
    let shim = |name: &str, body: &TokenStream| {
        let name = syn::Ident::new(name, Span::call_site());
        let shim = quote! {
            fn #name<'a, 'b>(db: &'a mut #private::Conn<'b>) -> #private::MigrationFuture<'a> {
                #body
            }
        };
        (shim, name)
    };
    let (up_shim, up) = match &step.up {
        Up::Function(function) => (quote!(), function.clone()),
        Up::Expression(body) => {
            let (shim, name) = shim("__migrate_up", body);
            (shim, quote!(#name))
        }
    };
    let (down_shim, reversal) = match &step.down {
        Some(body) => {
            let (shim, name) = shim("__migrate_down", body);
            (shim, quote!(#private::Reversal::Down(#name)))
        }
        None => (quote!(), quote!(#private::Reversal::Irreversible)),
    };
    let (fresh_shim, with_fresh) = match &step.fresh {
        Some((body, fresh_name)) => {
            let (shim, name) = shim("__migrate_fresh", body);
            (shim, quote!(.__with_fresh(#name, #fresh_name)))
        }
        None => (quote!(), quote!()),
    };
    let resumable = step.resumable.then(|| quote!(.__resumable()));
    let some = |text: String| quote!(::core::option::Option::Some(#text));
    let none = quote!(::core::option::Option::None);
    let parent_expr = step
        .parent
        .map_or(none.clone(), |(p, _)| some(p.to_string()));
    let after_expr = step
        .after
        .map_or(none.clone(), |(t, v, _)| some(format!("{t}@{v}")));
    let table = step.table;
    let version = step.version.to_string();
    let name = step.name;
    let transaction = step.transaction;
    let checksum = step.checksum;
    let file = &step.file;
    let line = &step.line;
    let with_sql = step.sql.as_ref().map(|(up, down)| {
        let down = down
            .as_ref()
            .map_or(none.clone(), |d| quote!(::core::option::Option::Some(#d)));
        quote!(.__with_sql(#up, #down))
    });

    quote! {
        #[doc(hidden)]
        const _: () = {
            #version_check
            #parent_checks
            #after_check

            #up_shim
            #down_shim
            #fresh_shim

            #private::inventory::submit! {
                #private::Migration::__new(
                    &crate::MIGRATIONS,
                    #table,
                    #version,
                    #parent_expr,
                    #name,
                    #up,
                    #reversal,
                    #transaction,
                    #after_expr,
                    #checksum,
                    #file,
                    #line,
                )
                #with_sql
                #with_fresh
                #resumable
            }
        };
    }
}
