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
    pub(crate) up: Action,
    /// The same for the down; `None` is irreversible.
    pub(crate) down: Option<Action>,
    /// The same for the function that creates the table directly at this version, with its
    /// name; `None` when there is none.
    pub(crate) fresh: Option<(Action, String)>,
    pub(crate) checksum: String,
    /// The SQL a dry run shows: expressions of type `&'static str`.
    pub(crate) sql: Option<(TokenStream, Option<TokenStream>)>,
    /// An expression of type `&'static str` naming where the step is declared, and its line.
    pub(crate) file: TokenStream,
    pub(crate) line: TokenStream,
}

/// How a step's up, down or fresh function is registered.
pub(crate) enum Action {
    /// A function of type `MigrationFn` (a `#[migration]` function, which returns its future
    /// boxed, or an instance of the shim a `sql_dir!` shares among its files): registered as it
    /// is.
    Function(TokenStream),
    /// An expression of type `MigrationFuture<'a>` over `db: &'a mut Conn<'b>` (a
    /// `#[migration]`'s up kept as written, its down or its fresh function, boxed): registered
    /// through a shim of its own that evaluates it.
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

/// The items of one step, in a `const _: () = { ... };` block: its checks, its shims and its
/// own `inventory` entry.
pub(crate) fn register(step: &Step<'_>) -> TokenStream {
    let Parts {
        checks,
        shims,
        migration,
    } = parts(step, "");
    let private = CratePath::private(step.krate, Span::call_site());
    quote! {
        #[doc(hidden)]
        const _: () = {
            #checks
            #shims
            #private::inventory::submit! {
                #migration
            }
        };
    }
}

/// The items of several steps (one `sql_dir!`'s files), in one `const _: () = { ... };` block:
/// every step's checks (each in a block of its own, so that two files whose names read alike
/// in words still declare their types apart) and shims, then one static array of their
/// migrations and one `inventory` entry for it. Per step, that is an array element where
/// [`register`] gives it a static, a constructor and its link-section entry, and a macro to
/// expand: the items rustc pays for per migration (BENCHMARKS.md, "Compile time").
///
/// `shared` holds items the steps' actions use in common (`sql_dir!`'s generic shims and the
/// tables of statements they index); `private` is the `__private` path the steps' own
/// `crate = "..."` gives.
pub(crate) fn register_group(
    steps: &[Step<'_>],
    shared: TokenStream,
    private: &TokenStream,
) -> TokenStream {
    let mut items = TokenStream::new();
    let mut migrations = Vec::with_capacity(steps.len());
    for (index, step) in steps.iter().enumerate() {
        let Parts {
            checks,
            shims,
            migration,
        } = parts(step, &format!("_{index}"));
        items.extend(quote! {
            const _: () = {
                #checks
            };
        });
        items.extend(shims);
        migrations.push(migration);
    }
    let count = migrations.len();
    quote! {
        #[doc(hidden)]
        const _: () = {
            #shared
            #items
            static __MIGRATE_GROUP: [#private::Migration; #count] = [#(#migrations),*];
            #private::inventory::submit! {
                #private::MigrationGroup::__new(&__MIGRATE_GROUP)
            }
        };
    }
}

/// What one step expands to: its graph checks, the shims its migration points at (named with
/// `suffix`, so that several steps' shims can share a block), and the `Migration` expression.
struct Parts {
    checks: TokenStream,
    shims: TokenStream,
    migration: TokenStream,
}

fn parts(step: &Step<'_>, suffix: &str) -> Parts {
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
    // The function an action registers, and the shim it needs: a function of type
    // `MigrationFn` that evaluates an expression over `db`.
    let function = |name: &str, action: &Action| match action {
        Action::Function(function) => (quote!(), function.clone()),
        Action::Expression(body) => {
            let name = syn::Ident::new(&format!("{name}{suffix}"), Span::call_site());
            let shim = quote! {
                fn #name<'a, 'b>(db: &'a mut #private::Conn<'b>) -> #private::MigrationFuture<'a> {
                    #body
                }
            };
            (shim, quote!(#name))
        }
    };
    let (up_shim, up) = function("__migrate_up", &step.up);
    let (down_shim, reversal) = match &step.down {
        Some(action) => {
            let (shim, down) = function("__migrate_down", action);
            (shim, quote!(#private::Reversal::Down(#down)))
        }
        None => (quote!(), quote!(#private::Reversal::Irreversible)),
    };
    let (fresh_shim, with_fresh) = match &step.fresh {
        Some((action, fresh_name)) => {
            let (shim, fresh) = function("__migrate_fresh", action);
            (shim, quote!(.__with_fresh(#fresh, #fresh_name)))
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
    let checksum = &step.checksum;
    let file = &step.file;
    let line = &step.line;
    let with_sql = step.sql.as_ref().map(|(up, down)| {
        let down = down
            .as_ref()
            .map_or(none.clone(), |d| quote!(::core::option::Option::Some(#d)));
        quote!(.__with_sql(#up, #down))
    });

    Parts {
        checks: quote! {
            #version_check
            #parent_checks
            #after_check
        },
        shims: quote! {
            #up_shim
            #down_shim
            #fresh_shim
        },
        migration: quote! {
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
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{block_of, implemented_traits, only_block};
    use quote::ToTokens;

    fn file_step<'a>(
        version: &'a semver::Version,
        parent: Option<&'a semver::Version>,
        file: &'a str,
        up: Action,
        down: Action,
    ) -> Step<'a> {
        Step {
            krate: None,
            table: "t",
            table_span: Span::call_site(),
            version,
            version_span: Span::call_site(),
            parent: parent.map(|p| (p, Span::call_site())),
            after: None,
            declaration: Declaration::SqlFile(syn::Ident::new(file, Span::call_site())),
            name: file,
            transaction: true,
            resumable: false,
            up,
            down: Some(down),
            fresh: None,
            checksum: "sha256:0".to_string(),
            sql: None,
            file: quote!("t.sql"),
            line: quote!(1u32),
        }
    }

    #[test]
    fn a_group_is_one_registration_of_every_step_with_each_steps_checks() {
        let (v1, v2) = (semver::Version::new(1, 0, 0), semver::Version::new(2, 0, 0));
        let steps = [
            // As `sql_dir!` registers a file: instances of the shared shims.
            file_step(
                &v1,
                None,
                "sql_file_1",
                Action::Function(quote!(__migrate_up::<0usize>)),
                Action::Function(quote!(__migrate_down::<0usize>)),
            ),
            // An expression gets a shim of its own, named apart from the other steps'.
            file_step(
                &v2,
                Some(&v1),
                "sql_file_2",
                Action::Expression(quote!(run(db))),
                Action::Expression(quote!(revert(db))),
            ),
        ];
        let shared = quote!(
            static __MIGRATE_UP: [&[&str]; 1] = [&["CREATE TABLE t (id INT)"]];
        );
        let private = CratePath::private(None, Span::call_site());
        let out = register_group(&steps, shared, &private);
        let stmts = only_block(&out);
        let items: Vec<&syn::Item> = stmts
            .iter()
            .filter_map(|s| match s {
                syn::Stmt::Item(item) => Some(item),
                _ => None,
            })
            .collect();
        // The shared items first, then each step's checks in a block of its own.
        assert!(
            matches!(items[0], syn::Item::Static(s) if s.ident == "__MIGRATE_UP"),
            "{out}"
        );
        let check_blocks = items.iter().filter_map(|i| block_of(i)).count();
        assert_eq!(check_blocks, 2, "{out}");
        // Only the expressions needed shims, with the step's index in their names.
        let functions: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                syn::Item::Fn(f) => Some(f.sig.ident.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(functions, ["__migrate_up_1", "__migrate_down_1"]);
        // One static holding both migrations, and one `inventory` entry for it.
        let group: Vec<&syn::ItemStatic> = items
            .iter()
            .filter_map(|i| match i {
                syn::Item::Static(s) if s.ident == "__MIGRATE_GROUP" => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(group.len(), 1, "{out}");
        let syn::Expr::Array(array) = &*group[0].expr else {
            panic!("an array: {out}");
        };
        assert_eq!(array.elems.len(), 2);
        let first = array.elems[0].to_token_stream().to_string();
        assert!(first.contains("__migrate_up :: < 0usize >"), "{first}");
        assert!(
            first.contains("Down (__migrate_down :: < 0usize >)"),
            "{first}"
        );
        let second = array.elems[1].to_token_stream().to_string();
        assert!(second.contains("__migrate_up_1"), "{second}");
        assert!(second.contains("Down (__migrate_down_1)"), "{second}");
        let submits: Vec<String> = stmts
            .iter()
            .filter_map(|s| match s {
                syn::Stmt::Macro(m)
                    if m.mac
                        .path
                        .segments
                        .last()
                        .is_some_and(|s| s.ident == "submit") =>
                {
                    Some(m.mac.tokens.to_string())
                }
                _ => None,
            })
            .collect();
        assert_eq!(submits.len(), 1, "{out}");
        assert!(
            submits[0].contains("MigrationGroup :: __new (& __MIGRATE_GROUP)"),
            "{submits:?}"
        );
        // Each step still declares its version, and the second its parent.
        let traits = implemented_traits(&out);
        let count = |name: &str| traits.iter().filter(|t| *t == name).count();
        assert_eq!(count("EachTableVersionIsDeclaredOnce"), 4, "{traits:?}");
        assert_eq!(count("TwoFirstMigrationsForThisTable"), 1, "{traits:?}");
        assert_eq!(count("TwoMigrationsShareThisParent"), 1, "{traits:?}");
        assert_eq!(count("HeadsEntryIsNotTheLatestVersion"), 1, "{traits:?}");
    }
}
