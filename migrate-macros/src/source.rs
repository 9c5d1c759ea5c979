//! What a step's checksum needs from the source file that declares it: the canonical text of
//! its down function (when the down is defined in the same file) and the files its bodies pull
//! in (see [`crate::includes`]).
//!
//! A file is read and tokenized once per compilation, however many migrations it holds.

use crate::checksum::canonical;
use crate::includes::{includes, FileInclude, IncludeKind, Included};
use proc_macro2::{Delimiter, TokenStream, TokenTree};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One function of a file: its body's canonical text, the files it includes, and whether it
/// has an include whose path cannot be worked out.
#[derive(Debug)]
pub(crate) struct Body {
    pub(crate) canonical: String,
    pub(crate) includes: Vec<FileInclude>,
    pub(crate) unfollowed: bool,
}

/// Every function of one file with a body, by name; `None` for a name the file defines more
/// than once (in two modules, or as a method too), which a down's name cannot tell apart.
type Bodies = HashMap<String, Option<Body>>;

/// The files read in this compilation, with the modification time they were read at.
type Cache = HashMap<PathBuf, (SystemTime, Arc<Bodies>)>;

/// The file a macro was invoked in, as far as the checksum needs it.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// The file's path, for resolving included paths.
    path: PathBuf,
    bodies: Arc<Bodies>,
}

impl SourceFile {
    /// Reads and indexes `path` (cached per path and modification time); `None` when it
    /// cannot be read or tokenized.
    pub(crate) fn load(path: &Path) -> Option<SourceFile> {
        static CACHE: Mutex<Option<Cache>> = Mutex::new(None);
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
        let mut cache = CACHE.lock().ok()?;
        let cache = cache.get_or_insert_with(HashMap::new);
        if let Some((at, bodies)) = cache.get(path) {
            if *at == modified {
                return Some(SourceFile {
                    path: path.to_path_buf(),
                    bodies: bodies.clone(),
                });
            }
        }
        let text = std::fs::read_to_string(path).ok()?;
        let tokens = TokenStream::from_str(&text).ok()?;
        let mut bodies = Bodies::new();
        index_functions(tokens, &mut bodies);
        let bodies = Arc::new(bodies);
        cache.insert(path.to_path_buf(), (modified, bodies.clone()));
        Some(SourceFile {
            path: path.to_path_buf(),
            bodies,
        })
    }

    /// The function named `name`, if this file defines exactly one with a body.
    pub(crate) fn body_of(&self, name: &str) -> Option<&Body> {
        self.bodies.get(name)?.as_ref()
    }

    /// Reads the files `includes` name, relative to this file. Text that is not UTF-8 is left
    /// out (`include_str!` and `include!` refuse it, and the compiler says so at the include).
    /// A file that cannot be read is an error naming it: the compiler, which found it, may
    /// have looked elsewhere (from the file that invoked a `macro_rules!` written in this
    /// one), and leaving it out would let an edit to it go unseen.
    pub(crate) fn read_included(&self, includes: &[FileInclude]) -> Result<Vec<Included>, String> {
        let mut read = Vec::with_capacity(includes.len());
        for include in includes {
            let path = self.dir().join(&include.path);
            let content = std::fs::read(&path).map_err(|err| {
                format!(
                    "the step's checksum cannot read `{}` ({}: {err}); when the migration is \
                     written by a `macro_rules!` of another file, write the path as \
                     `concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/...\")`",
                    include.label,
                    path.display()
                )
            })?;
            if include.kind != IncludeKind::Bytes && std::str::from_utf8(&content).is_err() {
                continue;
            }
            read.push(Included {
                kind: include.kind,
                label: include.label.clone(),
                content,
            });
        }
        Ok(read)
    }

    /// The directory relative include paths are relative to.
    pub(crate) fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }
}

/// Records `fn name ... { body }` at every nesting level (modules, impls), outermost first.
fn index_functions(tokens: TokenStream, bodies: &mut Bodies) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let mut nested = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if let (TokenTree::Ident(kw), Some(TokenTree::Ident(name))) =
            (&tokens[i], tokens.get(i + 1))
        {
            if kw == "fn" {
                // The body, unless a `;` ends the declaration first (a trait's method).
                let body = tokens[i + 2..]
                    .iter()
                    .find_map(|t| match t {
                        TokenTree::Group(g) if g.delimiter() == Delimiter::Brace => Some(Some(g)),
                        TokenTree::Punct(p) if p.as_char() == ';' => Some(None),
                        _ => None,
                    })
                    .flatten();
                if let Some(body) = body {
                    bodies
                        .entry(name.to_string())
                        .and_modify(|seen| *seen = None)
                        .or_insert_with(|| {
                            let found = includes(&body.stream());
                            Some(Body {
                                canonical: canonical(&body.stream()),
                                unfollowed: !found.unfollowed.is_empty(),
                                includes: found.files,
                            })
                        });
                }
            }
        }
        if let TokenTree::Group(g) = &tokens[i] {
            if g.delimiter() == Delimiter::Brace {
                nested.push(g.stream());
            }
        }
        i += 1;
    }
    for stream in nested {
        index_functions(stream, bodies);
    }
}
