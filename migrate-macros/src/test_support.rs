//! Reading the macros' output in unit tests: by its syntax, not its token spacing.

use proc_macro2::TokenStream;
use syn::{Expr, ExprCall, Item, Stmt};

/// The messages of every `compile_error!` in `out`.
pub(crate) fn compile_errors(out: &TokenStream) -> Vec<String> {
    let Ok(file) = syn::parse2::<syn::File>(out.clone()) else {
        return vec![format!("unparsable output: {out}")];
    };
    file.items
        .iter()
        .filter_map(|item| match item {
            Item::Macro(m)
                if m.mac
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "compile_error") =>
            {
                m.mac
                    .parse_body::<syn::LitStr>()
                    .ok()
                    .map(|lit| lit.value())
            }
            _ => None,
        })
        .collect()
}

/// `#[migration(attr)]` over `item`, expanded without a source file.
pub(crate) fn expand_migration(attr: TokenStream, item: TokenStream) -> TokenStream {
    crate::migration::expand(attr, item, None)
}

/// The statements of a `const _: () = { ... };` item.
pub(crate) fn block_of(item: &Item) -> Option<&[Stmt]> {
    match item {
        Item::Const(c) => match &*c.expr {
            Expr::Block(block) => Some(&block.block.stmts),
            _ => None,
        },
        _ => None,
    }
}

/// The statements of `out`'s one item, a `const _: () = { ... };` block.
pub(crate) fn only_block(out: &TokenStream) -> Vec<Stmt> {
    let file: syn::File = syn::parse2(out.clone()).expect("output parses");
    match file.items.as_slice() {
        [item] => block_of(item)
            .unwrap_or_else(|| panic!("a const block: {out}"))
            .to_vec(),
        _ => panic!("one item: {out}"),
    }
}

/// `items` and every item inside their `const _: () = { ... };` blocks, however deep.
fn nested_items(items: &[Item]) -> Vec<Item> {
    let mut out = Vec::new();
    for item in items {
        out.push(item.clone());
        if let Some(stmts) = block_of(item) {
            let mut inner = Vec::new();
            for stmt in stmts {
                match stmt {
                    Stmt::Item(i) => inner.push(i.clone()),
                    Stmt::Macro(m) => inner.push(Item::Macro(syn::ItemMacro {
                        attrs: m.attrs.clone(),
                        ident: None,
                        mac: m.mac.clone(),
                        semi_token: m.semi_token,
                    })),
                    _ => {}
                }
            }
            out.extend(nested_items(&inner));
        }
    }
    out
}

/// The last path segment of every trait `out` implements, in order.
pub(crate) fn implemented_traits(out: &TokenStream) -> Vec<String> {
    let file: syn::File = syn::parse2(out.clone()).expect("output parses");
    nested_items(&file.items)
        .into_iter()
        .filter_map(|item| match &item {
            Item::Impl(i) => i
                .trait_
                .as_ref()
                .and_then(|(_, path, _)| path.segments.last())
                .map(|s| s.ident.to_string()),
            _ => None,
        })
        .collect()
}

/// The `Migration::__new(...)` call inside the `inventory::submit!`, if the output registers one.
pub(crate) fn registered_call(out: &TokenStream) -> Option<ExprCall> {
    let file: syn::File = syn::parse2(out.clone()).ok()?;
    nested_items(&file.items)
        .into_iter()
        .find_map(|item| match &item {
            Item::Macro(m) if m.mac.path.segments.last()?.ident == "submit" => {
                m.mac.parse_body::<ExprCall>().ok()
            }
            _ => None,
        })
}
