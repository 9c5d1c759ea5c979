//! The core's modules form layers: no file imports, directly or through others, a file that
//! imports it. This test reads the sources, resolves every `crate::` and `super::` path to the
//! file that defines it, and fails on the first cycle, printing it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file: `src/manager/run.rs` is `["manager", "run"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("lib" | "mod")) {
        parts.pop();
    }
    parts
}

/// The file defining the longest prefix of `path` that is a module.
fn resolve(src: &Path, path: &[String]) -> PathBuf {
    for len in (1..=path.len()).rev() {
        let base: PathBuf = path[..len].iter().collect();
        for candidate in [
            src.join(&base).with_extension("rs"),
            src.join(&base).join("mod.rs"),
        ] {
            if candidate.exists() {
                return candidate;
            }
        }
    }
    src.join("lib.rs")
}

/// Every path starting with `crate::` or `super::` in `text`, as segments, with `use` groups
/// (`crate::a::{b, c::D}`) expanded to their first segment after the prefix.
fn referenced_paths(text: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let bytes = text.as_bytes();
    for start in [0usize].into_iter().chain(
        text.match_indices("crate::")
            .chain(text.match_indices("super::"))
            .map(|(i, _)| i),
    ) {
        if start == 0 && !(text.starts_with("crate::") || text.starts_with("super::")) {
            continue;
        }
        let before = start.checked_sub(1).map(|i| bytes[i] as char);
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut segments = Vec::new();
        let mut rest = &text[start..];
        loop {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            segments.push(rest[..end].to_string());
            rest = &rest[end..];
            if let Some(next) = rest.strip_prefix("::") {
                rest = next;
            } else {
                break;
            }
        }
        paths.push(segments);
    }
    paths
}

fn absolute(module: &[String], segments: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut iter = segments.iter().peekable();
    match iter.peek().map(|s| s.as_str()) {
        Some("crate") => {
            iter.next();
        }
        Some("super") => {
            out = module.to_vec();
            while iter.peek().map(|s| s.as_str()) == Some("super") {
                iter.next();
                out.pop();
            }
        }
        _ => {}
    }
    out.extend(iter.cloned());
    out
}

#[test]
fn the_core_has_no_import_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(files.len() > 10, "found the sources: {files:?}");
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        // Unit tests may use anything of their own file.
        let code = text
            .split("#[cfg(test)]\nmod tests")
            .next()
            .unwrap_or(&text);
        let code: String = code
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let module = module_of(&src, file);
        let targets = edges.entry(file.clone()).or_default();
        for segments in referenced_paths(&code) {
            let target = resolve(&src, &absolute(&module, &segments));
            if &target != file {
                targets.insert(target);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        node: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(pos) = stack.iter().position(|n| n == node) {
            let cycle: Vec<String> = stack[pos..]
                .iter()
                .chain(std::iter::once(node))
                .map(|p| p.display().to_string())
                .collect();
            panic!("import cycle: {}", cycle.join(" -> "));
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            visit(next, edges, stack, done);
        }
        stack.pop();
        done.insert(node.clone());
    }
    let mut done = BTreeSet::new();
    for file in edges.keys() {
        visit(file, &edges, &mut Vec::new(), &mut done);
    }
    let lib = src.join("lib.rs");
    let into_lib: Vec<_> = edges
        .iter()
        .filter(|(from, to)| **from != lib && to.contains(&lib))
        .map(|(from, _)| from.display().to_string())
        .collect();
    assert!(
        into_lib.is_empty(),
        "files that import the crate root (use the defining module instead): {into_lib:?}"
    );
}

#[test]
fn the_core_writes_no_sql() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for word in [
            "sqlite_master",
            "pragma_table_info",
            "information_schema",
            "SELECT ",
            "INSERT INTO",
            "UPDATE ",
            "DELETE FROM",
            "CREATE TABLE",
            "ALTER TABLE",
            "DROP TABLE",
        ] {
            let code = text
                .split("#[cfg(test)]\nmod tests")
                .next()
                .unwrap_or(&text);
            let hits: Vec<&str> = code
                .lines()
                .filter(|l| !l.trim_start().starts_with("//") && l.contains(word))
                .collect();
            assert!(hits.is_empty(), "{} writes SQL: {hits:?}", file.display());
        }
    }
}
