//! The checksum of a migration: over its tokens, so formatting does not matter.
//!
//! Tokens are written out one by one, separated by single spaces, so whitespace, comments and
//! line endings in the source never reach the hash. Inside string literals, runs of whitespace
//! are folded too, so re-indenting the SQL of a multi-line string does not count as an edit.

use crate::keys::fnv1a64;
use proc_macro2::{Delimiter, TokenStream, TokenTree};

/// The algorithm's name, stored as a prefix of every checksum.
const ALGORITHM: &str = "fnv1a64";

/// The checksum of `tokens`, as stored in the tracking table.
pub(crate) fn checksum(tokens: &TokenStream) -> String {
    let mut canonical = String::new();
    write_canonical(tokens, &mut canonical);
    format!("{ALGORITHM}:{:016x}", fnv1a64(canonical.as_bytes()))
}

fn write_canonical(tokens: &TokenStream, out: &mut String) {
    for token in tokens.clone() {
        match token {
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Brace => ("{", "}"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::None => ("", ""),
                };
                out.push_str(open);
                out.push(' ');
                write_canonical(&group.stream(), out);
                out.push_str(close);
            }
            TokenTree::Ident(ident) => out.push_str(&ident.to_string()),
            TokenTree::Punct(punct) => out.push(punct.as_char()),
            TokenTree::Literal(literal) => {
                let text = literal.to_string();
                if text.contains('"') {
                    out.push_str(&text.split_whitespace().collect::<Vec<_>>().join(" "));
                } else {
                    out.push_str(&text);
                }
            }
        }
        out.push(' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn sum(src: &str) -> String {
        checksum(&TokenStream::from_str(src).unwrap())
    }

    #[test]
    fn formatting_and_comments_do_not_matter() {
        let a = sum("{ db.execute(\"CREATE TABLE t (id INT)\").await?; Ok(()) }");
        let b = sum("{\n    // make the table\n    db . execute(\n  \"CREATE TABLE t\n      (id INT)\"\n ).await ?;\r\n Ok(())\n}");
        assert_eq!(a, b);
    }

    #[test]
    fn edits_do_matter() {
        let a = sum("{ db.execute(\"CREATE TABLE t (id INT)\").await?; Ok(()) }");
        let b = sum("{ db.execute(\"CREATE TABLE t (id BIGINT)\").await?; Ok(()) }");
        let c = sum("{ db.execute(\"CREATE TABLE t (id INT)\").await?; Ok(()) } ");
        assert_ne!(a, b);
        assert_eq!(a, c);
        assert!(a.starts_with("fnv1a64:") && a.len() == "fnv1a64:".len() + 16);
    }
}
