//! The shape of the house, checked from the imports (`use crate::…`, `crate::x::…` paths,
//! `super::` resolved) of every file under `src/`: only `src/server/` (and the entry points)
//! speaks LSP; `exec/` is the bottom layer; `packages/` never knows sandboxes; sandboxes never
//! import `ai/`; no command handler imports a sibling handler; and the core's top-level modules
//! form no cycle. A self-test feeds the checker a
//! small tree with each kind of violation, so the guard itself can fail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A file as a module path (`src/sandbox/e2b.rs` → `["sandbox", "e2b"]`) and its text.
struct Source {
    module: Vec<String>,
    file: String,
    text: String,
}

fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs").to_string();
        if stem != "mod" && stem != "lib" && stem != "main" {
            parts.push(stem);
        }
    }
    parts
}

fn read_tree(root: &Path) -> Vec<Source> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| {
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            Source {
                module: module_of(&rel),
                file: rel.to_string_lossy().replace('\\', "/"),
                text: std::fs::read_to_string(e.path()).unwrap(),
            }
        })
        .collect()
}

/// The text without `//` comments (doc comments name modules freely).
fn code(text: &str) -> String {
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) if !l[..i].contains('"') => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every crate module path the text refers to, absolute (`crate::a::b`, `super::x` resolved
/// against `module`, and the items of `use crate::{a, b::c}` groups).
fn references(module: &[String], is_mod_rs: bool, text: &str) -> BTreeSet<Vec<String>> {
    let text = code(text);
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = text[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            // Resolve the base.
            let mut base: Vec<String> = if start == "crate::" {
                Vec::new()
            } else {
                // `super` of a mod.rs is its parent folder's parent.
                let mut m = module.to_vec();
                if !is_mod_rs || !m.is_empty() {
                    m.pop();
                }
                m
            };
            let mut rest = &text[from..];
            while let Some(r) = rest.strip_prefix("super::") {
                base.pop();
                rest = r;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let path: Vec<String> = item
                        .trim()
                        .split("::")
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty() && s != "self" && s != "*")
                        .collect();
                    if let Some(first) = path.first() {
                        let mut p = base.clone();
                        p.push(first.clone());
                        out.insert(p);
                    }
                }
                continue;
            }
            let word: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                let mut p = base;
                p.push(word);
                out.insert(p);
            }
        }
    }
    out
}

/// The violations in the tree at `root` (the `src/` folder).
fn check(root: &Path) -> Vec<String> {
    let sources = read_tree(root);
    let top: BTreeSet<String> = sources
        .iter()
        .filter_map(|s| s.module.first().cloned())
        .collect();
    // The handler modules (files under server/commands/ other than the router).
    let handlers: BTreeSet<String> = sources
        .iter()
        .filter(|s| s.module.len() == 3 && s.module[..2] == ["server", "commands"])
        .map(|s| s.module[2].clone())
        .collect();
    let mut bad = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &sources {
        let first = s.module.first().map(String::as_str).unwrap_or("");
        let entry = s.file == "lib.rs" || s.file == "main.rs" || s.file.starts_with("cli/");
        let is_mod_rs = s.file.ends_with("mod.rs");
        let refs = references(&s.module, is_mod_rs, &s.text);
        let core = first != "server" && !entry;
        if core {
            for lsp in ["tower_lsp_server", "ls_types", "crate::server"] {
                if code(&s.text).contains(lsp) {
                    bad.push(format!(
                        "{}: the core names `{lsp}` (only server/ speaks LSP)",
                        s.file
                    ));
                }
            }
        }
        for r in &refs {
            let target = r.first().map(String::as_str).unwrap_or("");
            if !top.contains(target) || target == first {
                continue;
            }
            match first {
                "exec" => bad.push(format!(
                    "{}: exec/ imports crate::{target} (it is the bottom layer)",
                    s.file
                )),
                "packages" if target == "sandbox" || target == "project" => bad.push(format!(
                    "{}: packages/ imports crate::{target} (sandboxes build on packages, not the other way)",
                    s.file
                )),
                "sandbox" if target == "ai" => bad.push(format!(
                    "{}: sandbox/ imports crate::ai (HTTP helpers are in crate::http)",
                    s.file
                )),
                _ => {}
            }
            if core {
                graph
                    .entry(first.to_string())
                    .or_default()
                    .insert(target.to_string());
            }
        }
        // Command handlers: no sibling imports (the router and the reference excepted).
        if s.module.len() == 3 && s.module[..2] == ["server", "commands"] {
            let me = &s.module[2];
            if me != "schema" {
                for r in &refs {
                    if r.len() >= 3
                        && r[..2] == ["server", "commands"]
                        && &r[2] != me
                        && handlers.contains(&r[2])
                    {
                        bad.push(format!(
                            "{}: a handler imports the sibling handler commands::{} (shared steps go in server/steps.rs)",
                            s.file, r[2]
                        ));
                    }
                }
            }
        }
    }
    // Cycles among the core's top-level modules: strongly connected components.
    for scc in components(&graph) {
        let names: Vec<&str> = scc.iter().map(String::as_str).collect();
        if names.len() > 1 {
            bad.push(format!(
                "core modules import each other in a cycle: {}",
                names.join(" ↔ ")
            ));
        }
    }
    bad
}

/// The strongly connected components, each sorted (by reachability: a few dozen nodes).
fn components(g: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let nodes: BTreeSet<&String> = g.keys().chain(g.values().flatten()).collect();
    let reach = |n: &String| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![n];
        while let Some(x) = stack.pop() {
            for y in g.get(x).into_iter().flatten() {
                if seen.insert(y) {
                    stack.push(y);
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<&String>> =
        nodes.iter().map(|n| (*n, reach(n))).collect();
    let mut done: BTreeSet<&String> = BTreeSet::new();
    let mut out = Vec::new();
    for n in &nodes {
        if done.contains(n) {
            continue;
        }
        let scc: Vec<&String> = nodes
            .iter()
            .copied()
            .filter(|m| *m == *n || (reach[n].contains(m) && reach[m].contains(n)))
            .collect();
        done.extend(scc.iter().copied());
        out.push(scc.into_iter().cloned().collect());
    }
    out
}

#[test]
fn the_source_tree_keeps_its_shape() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let bad = check(&root);
    assert!(
        bad.is_empty(),
        "{} violations:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn the_guard_catches_each_kind_of_violation() {
    let t = tempfile::tempdir().unwrap();
    let w = |rel: &str, text: &str| {
        let p = t.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    w("lib.rs", "pub mod a; pub mod b; pub mod exec; pub mod packages; pub mod sandbox; pub mod ai; pub mod server;\n");
    w("a.rs", "use crate::b::X;\n");
    w(
        "b/mod.rs",
        "use crate::a::Y;\n// crate::sandbox in a comment does not count\n",
    );
    w("exec/mod.rs", "use crate::a::Z;\n");
    w(
        "packages/install.rs",
        "use crate::sandbox::{Sandbox, SandboxFile};\n",
    );
    w(
        "sandbox/e2b.rs",
        "use super::super::ai::retry;\nuse tower_lsp_server::ls_types::Uri;\n",
    );
    w("ai/mod.rs", "pub mod retry;\n");
    w("server/commands/apply.rs", "use super::review::present;\n");
    w("server/commands/review.rs", "pub fn present() {}\n");
    w("server/commands/schema.rs", "use super::{apply, review};\n");
    let bad = check(t.path()).join("\n");
    for want in [
        "core modules import each other in a cycle: a ↔ b",
        "exec/mod.rs: exec/ imports crate::a",
        "packages/install.rs: packages/ imports crate::sandbox",
        "sandbox/e2b.rs: sandbox/ imports crate::ai",
        "sandbox/e2b.rs: the core names `tower_lsp_server`",
        "sandbox/e2b.rs: the core names `ls_types`",
        "server/commands/apply.rs: a handler imports the sibling handler commands::review",
    ] {
        assert!(bad.contains(want), "missing {want:?} in:\n{bad}");
    }
    assert!(
        !bad.contains("schema.rs"),
        "the reference may import every handler:\n{bad}"
    );
    assert!(!bad.contains("b/mod.rs: packages"), "{bad}");
    assert_eq!(bad.lines().count(), 7, "{bad}");
}
