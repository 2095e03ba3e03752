//! The layering that `ARCHITECTURE.md` promises, checked on every test run.
//!
//! Cargo already refuses a circle *between* the workspace's crates. These tests guard what it
//! cannot see:
//! - **no module cycle inside a crate.** The nodes are a crate's top-level modules (each file
//!   or folder directly under its `src/`); `lib.rs`/`main.rs` only declare and re-export. There
//!   is an edge A → B when a file under A names `crate::B`, reaches the crate root through
//!   `super::` and names B, or names an item the root re-exports from B. A cycle among them is
//!   a failure that lists every edge of the cycle with the files that make it. Inside one
//!   top-level module, submodules may use each other and their parent freely: that is one
//!   room.
//! - **the core stays pure**: its manifest names no async runtime, HTTP, database or server
//!   crate (`.ci/run` also checks the whole dependency tree with `cargo tree`).
//!
//! It reads the source text rather than asking the compiler: a few lines of scanning (comments
//! dropped, `crate::{a, b}` groups split) are enough for `use` paths, and the test then runs in
//! milliseconds with no extra tool to install.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Every crate of the workspace whose modules are checked: its `src/` folder.
fn crate_sources() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut out = vec![root.join("src")];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .expect("crates/ is readable")
        .map(|e| e.expect("a crates/ entry").path().join("src"))
        .filter(|p| p.is_dir())
        .collect();
    crates.sort();
    out.extend(crates);
    out.push(root.join("python/src"));
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.expect("a directory entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text with `//` comments (and so doc comments) removed: a doc link is not a dependency.
/// String literals are kept, so a `//` inside one (a URL) ends the line's scan early; paths
/// never follow a URL on the same line in this code base.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The names a file reaches at its crate's root: after `crate::` (groups included) and after
/// as many `super::` as the file is deep.
fn root_names(code: &str, depth: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().next_back();
        let after = &rest[i + "crate::".len()..];
        rest = after;
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `genroute_crate::`, `$crate::`
        }
        if let Some(group) = after.strip_prefix('{') {
            let mut level = 0usize;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => level += 1,
                    '}' if level == 0 => break,
                    '}' => level -= 1,
                    ',' if level == 0 => start = true,
                    c if start && (c.is_ascii_alphabetic() || c == '_') => {
                        out.push(ident_at(&group[j..]).to_string());
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident_at(after).to_string());
        }
    }
    if depth > 0 {
        let chain = "super::".repeat(depth);
        let mut rest = code;
        while let Some(i) = rest.find(&chain) {
            let before = rest[..i].chars().next_back();
            let after = &rest[i + chain.len()..];
            rest = after;
            if before.is_some_and(|c| c == ':' || c.is_ascii_alphanumeric() || c == '_') {
                continue; // part of a longer `super::` chain
            }
            out.push(ident_at(after).to_string());
        }
    }
    out
}

/// `pub use module::{A, B}` and `pub use module::A` lines of a crate root: item name → module.
fn root_reexports(root_file: &Path) -> BTreeMap<String, String> {
    let code = code_of(&std::fs::read_to_string(root_file).unwrap_or_default());
    let mut out = BTreeMap::new();
    for stmt in code.split(';') {
        let Some(path) = stmt.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = path.split_once("::") else {
            continue;
        };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.split(" as ").last().unwrap_or(item).trim();
            let name = name.rsplit("::").next().unwrap_or(name);
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// The module graph of the crate whose sources are in `src`.
fn module_graph(src: &Path) -> Graph {
    let root_file = ["lib.rs", "main.rs"]
        .into_iter()
        .map(|f| src.join(f))
        .find(|p| p.is_file())
        .expect("a crate root");
    let reexports = root_reexports(&root_file);
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let top = |p: &Path| -> Option<(String, usize)> {
        let rel = p.strip_prefix(src).ok()?;
        let parts: Vec<&str> = rel.iter().filter_map(|s| s.to_str()).collect();
        if parts.len() == 1 && matches!(parts[0], "lib.rs" | "main.rs") {
            return None;
        }
        let name = parts[0].trim_end_matches(".rs").to_string();
        // Module depth: `a.rs` and `a/mod.rs` are 1, `a/b.rs` 2, `a/b/mod.rs` 2.
        let depth = parts.len() - usize::from(parts.last() == Some(&"mod.rs"));
        Some((name, depth))
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|p| top(p)).map(|t| t.0).collect();
    let mut graph: Graph = modules
        .iter()
        .map(|m| (m.clone(), BTreeMap::new()))
        .collect();
    for f in &files {
        let Some((from, depth)) = top(f) else {
            continue;
        };
        let code = code_of(&std::fs::read_to_string(f).expect("a source file"));
        for name in root_names(&code, depth) {
            let to = if modules.contains(&name) {
                Some(name)
            } else {
                reexports.get(&name).cloned()
            };
            if let Some(to) = to.filter(|t| *t != from && modules.contains(t)) {
                let rel = f.strip_prefix(ROOT).unwrap_or(f).display().to_string();
                graph
                    .get_mut(&from)
                    .expect("a module")
                    .entry(to)
                    .or_default()
                    .insert(rel);
            }
        }
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct Tarjan<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> Tarjan<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph[v].keys() {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn no_crate_has_a_module_cycle() {
    let mut report = String::new();
    for src in crate_sources() {
        let graph = module_graph(&src);
        for comp in cycles(&graph) {
            report.push_str(&format!(
                "\n{}: the modules {} import each other in a circle:\n",
                src.strip_prefix(ROOT).unwrap_or(&src).display(),
                comp.join(", ")
            ));
            for from in &comp {
                for (to, files) in &graph[from] {
                    if comp.contains(to) {
                        let files: Vec<&str> = files.iter().map(String::as_str).take(3).collect();
                        report.push_str(&format!("  {from} -> {to} ({})\n", files.join(", ")));
                    }
                }
            }
        }
    }
    assert!(
        report.is_empty(),
        "module cycles found; move the shared item down into the lower module (see \
         ARCHITECTURE.md, \"Invariants\"):{report}"
    );
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    // The scanner itself: a two-module circle written as a crate on disk is found, and a
    // submodule using its parent is not a cycle.
    let dir = std::env::temp_dir().join(format!("genroute-layers-{}", std::process::id()));
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("b")).unwrap();
    std::fs::write(src.join("lib.rs"), "mod a;\nmod b;\npub use b::Thing;\n").unwrap();
    std::fs::write(
        src.join("a.rs"),
        "use crate::Thing;\n// crate::c is a comment\n",
    )
    .unwrap();
    std::fs::write(src.join("b/mod.rs"), "mod inner;\npub struct Thing;\n").unwrap();
    std::fs::write(
        src.join("b/inner.rs"),
        "use super::Thing;\nfn f() { super::super::a::g(); }\n",
    )
    .unwrap();
    let graph = module_graph(&src);
    assert_eq!(cycles(&graph), vec![vec!["a".to_string(), "b".to_string()]]);
    std::fs::write(src.join("b/inner.rs"), "use crate::{b::Thing, };\n").unwrap();
    assert!(cycles(&module_graph(&src)).is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_core_names_no_io_crate() {
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("crates/core/Cargo.toml"))
        .expect("crates/core/Cargo.toml");
    let deps = manifest
        .split("\n[")
        .find(|s| s.starts_with("dependencies]"))
        .unwrap_or_default();
    for forbidden in [
        "tokio",
        "reqwest",
        "rusqlite",
        "redis",
        "axum",
        "hyper",
        "genroute-",
    ] {
        assert!(
            !deps.lines().any(|l| l.trim_start().starts_with(forbidden)),
            "crates/core/Cargo.toml depends on `{forbidden}`; the core takes IO, the clock and \
             state as values (see ARCHITECTURE.md)"
        );
    }
}
