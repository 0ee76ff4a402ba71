//! Choosing which project files the model sees: list the project's text sources, rank them
//! for the request (file names, path segments, content, synonyms, recent edits, structure
//! files) and keep what fits a token budget.
//!
//! Here: the types, the selection under the budget and trimming; `files` lists and reads the
//! project's files, `rank` scores them for the request's words.

use std::collections::{HashMap, HashSet};
use std::path::Path;

mod files;
mod rank;

pub use files::list_files;
use files::{is_safe_relative, read_text};
pub(crate) use rank::is_entry;
use rank::{is_project_code, Candidate, Terms};

/// Cheap token estimate: about one token per four bytes (rounded up).
pub fn estimate_tokens(s: &str) -> usize {
    s.len().div_ceil(4)
}

/// One file shown to the model, with why it was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextFile {
    /// Relative to the project root, `/`-separated.
    pub path: String,
    pub content: String,
    /// "primary", "requested", "recently edited", "matches 'hero'", "entry point", "app root",
    /// "project file"; a trimmed file adds "(truncated: …)".
    pub reason: String,
}

/// A listed project file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    pub path: String,
    pub size: u64,
}

/// Files considered for ranking.
const MAX_CANDIDATES: usize = 5_000;
/// Total bytes read for content matching; beyond it files are ranked by name only.
const MAX_SCAN_BYTES: usize = 16 * 1024 * 1024;
/// Tokens charged per file for its `<current_file>` tags.
const BLOCK_OVERHEAD: usize = 16;
/// Files chosen by ranking (primary and requested files come on top).
const MAX_RANKED: usize = 24;
/// A strong match that does not fit is trimmed when at least this many tokens remain.
const MIN_TRIM_TOKENS: usize = 256;

/// What [`select`] chooses from.
pub struct Selection<'a> {
    pub root: &'a Path,
    pub request: &'a str,
    /// Always included first (already has its content: the editor buffer).
    pub primary: Option<ContextFile>,
    /// Explicit `context` files: always included (trimmed if they alone exceed the budget).
    /// An empty content is read from an open document or disk.
    pub requested: Vec<ContextFile>,
    pub recently_edited: &'a [String],
    /// Editor buffers win over disk for these paths.
    pub open_documents: Vec<ContextFile>,
    pub budget_tokens: usize,
}

/// Ranks the project's files for the request and returns what fits the budget, best first:
/// the primary file, requested files, then ranked matches and structure files (app root,
/// entry point). Ties are broken by path.
pub fn select(sel: Selection) -> Vec<ContextFile> {
    let root = sel.root;
    let canon_root = root.canonicalize().ok();
    let open: HashMap<String, String> = sel
        .open_documents
        .into_iter()
        .map(|d| (normalize(&d.path), d.content))
        .filter(|(p, _)| is_safe_relative(p))
        .collect();
    let load = |path: &str| -> Option<String> {
        match open.get(path) {
            Some(c) => Some(c.clone()),
            None => read_text(root, canon_root.as_deref(), path),
        }
    };

    let mut out: Vec<ContextFile> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut remaining = sel.budget_tokens;

    if let Some(p) = sel.primary {
        let path = normalize(&p.path);
        remaining = remaining.saturating_sub(cost(&p.content));
        seen.insert(path.clone());
        out.push(ContextFile {
            path,
            content: p.content,
            reason: "primary".to_string(),
        });
    }

    // Requested files: all included; if they do not fit together, share the budget evenly
    // (small files whole, the rest trimmed).
    let mut requested: Vec<ContextFile> = Vec::new();
    for r in sel.requested {
        let path = normalize(&r.path);
        if path.is_empty() || !seen.insert(path.clone()) {
            continue;
        }
        let content = if r.content.is_empty() {
            match load(&path) {
                Some(c) => c,
                None => continue, // missing, binary or outside the project
            }
        } else {
            r.content
        };
        requested.push(ContextFile {
            path,
            content,
            reason: "requested".to_string(),
        });
    }
    let total: usize = requested.iter().map(|f| cost(&f.content)).sum();
    if total <= remaining {
        remaining -= total;
    } else {
        let mut order: Vec<usize> = (0..requested.len()).collect();
        order.sort_by_key(|&i| cost(&requested[i].content));
        let mut left = order.len();
        for i in order {
            let share = remaining / left.max(1);
            left -= 1;
            let f = &mut requested[i];
            let c = cost(&f.content);
            if c <= share {
                remaining -= c;
            } else {
                let (content, note) = trim_to(&f.content, share.saturating_sub(BLOCK_OVERHEAD));
                remaining -= cost(&content).min(remaining);
                f.content = content;
                f.reason = format!("requested ({note})");
            }
        }
    }
    out.extend(requested);

    // Ranked project files.
    let terms = Terms::new(sel.request);
    let recent: HashSet<String> = sel.recently_edited.iter().map(|p| normalize(p)).collect();
    let mut files = list_files(root, MAX_CANDIDATES);
    let listed: HashSet<String> = files.iter().map(|f| f.path.clone()).collect();
    let mut extra: Vec<&String> = open.keys().filter(|p| !listed.contains(*p)).collect();
    extra.sort();
    for p in extra {
        if let Some(c) = open.get(p) {
            files.push(ProjectFile {
                path: p.clone(),
                size: c.len() as u64,
            });
        }
    }

    let mut scanned = 0usize;
    let mut candidates: Vec<Candidate> = Vec::new();
    for f in files {
        if seen.contains(&f.path) {
            continue;
        }
        let content = if scanned < MAX_SCAN_BYTES {
            let c = load(&f.path);
            if let Some(c) = &c {
                scanned += c.len();
            } else if !open.contains_key(&f.path) {
                continue; // binary or unreadable
            }
            c
        } else {
            None
        };
        let cand = terms.score(&f.path, content.as_deref(), recent.contains(&f.path));
        candidates.push(Candidate { content, ..cand });
    }
    let any_match = candidates.iter().any(|c| c.matched > 0);
    for c in &mut candidates {
        if !any_match && c.score == 0 && is_project_code(&c.path) {
            c.score = 1;
            c.reason = "project file".to_string();
        }
    }
    candidates.retain(|c| c.score > 0);
    candidates.sort_by(|a, b| b.score.cmp(&a.score).then_with(|| a.path.cmp(&b.path)));

    let mut ranked = 0;
    for c in candidates {
        if ranked >= MAX_RANKED || remaining < BLOCK_OVERHEAD {
            break;
        }
        let content = match c.content {
            Some(content) => content,
            None => match load(&c.path) {
                Some(content) => content,
                None => continue,
            },
        };
        let need = cost(&content);
        if need <= remaining {
            remaining -= need;
            out.push(ContextFile {
                path: c.path,
                content,
                reason: c.reason,
            });
            ranked += 1;
        } else if c.strong && remaining >= MIN_TRIM_TOKENS + BLOCK_OVERHEAD {
            let (content, note) = trim_to(&content, remaining - BLOCK_OVERHEAD);
            remaining = remaining.saturating_sub(cost(&content));
            out.push(ContextFile {
                path: c.path,
                content,
                reason: format!("{} ({note})", c.reason),
            });
            ranked += 1;
        }
    }
    out
}

/// Tokens a file costs in the prompt.
fn cost(content: &str) -> usize {
    estimate_tokens(content) + BLOCK_OVERHEAD
}

/// Cuts `content` to at most `tokens` (by [`estimate_tokens`]) at a line end when possible.
fn trim_to(content: &str, tokens: usize) -> (String, String) {
    let total = content.lines().count();
    let max = tokens.saturating_mul(4);
    if tokens == 0 {
        return (
            String::new(),
            "truncated: content omitted, over budget".to_string(),
        );
    }
    if content.len() <= max {
        return (content.to_string(), format!("{total} lines"));
    }
    let mut end = max;
    while !content.is_char_boundary(end) {
        end -= 1;
    }
    if let Some(nl) = content[..end].rfind('\n') {
        end = nl + 1;
    }
    let kept = &content[..end];
    let shown = kept.lines().count();
    (
        kept.to_string(),
        format!("truncated: first {shown} of {total} lines"),
    )
}

/// Trims, uses `/`, drops leading `./`.
fn normalize(p: &str) -> String {
    let mut s = p.trim().replace('\\', "/");
    while let Some(rest) = s.strip_prefix("./") {
        s = rest.to_string();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::rank::{for_each_word, stem};
    use super::*;
    use std::fs;

    fn words(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        for_each_word(s, |w| v.push(w.to_string()));
        v
    }

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(p, content).unwrap();
    }

    /// A realistic Vite + React + Tailwind project with build and dependency noise.
    fn fixture() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let files: &[(&str, &str)] = &[
            ("package.json", r#"{"name":"site","dependencies":{"react":"^18.2.0"}}"#),
            ("package-lock.json", r#"{"lockfileVersion":3}"#),
            ("index.html", "<!doctype html>\n<html><body><div id=\"root\"></div><script type=\"module\" src=\"/src/main.jsx\"></script></body></html>\n"),
            ("vite.config.js", "import { defineConfig } from 'vite'\nimport react from '@vitejs/plugin-react'\nexport default defineConfig({ plugins: [react()] })\n"),
            ("tailwind.config.js", "export default { content: ['./index.html', './src/**/*.{js,jsx}'], theme: { extend: {} }, plugins: [] }\n"),
            ("postcss.config.js", "export default { plugins: { tailwindcss: {}, autoprefixer: {} } }\n"),
            ("README.md", "# Site\n\nA landing page built with Vite.\n"),
            ("src/main.jsx", "import React from 'react'\nimport ReactDOM from 'react-dom/client'\nimport App from './App.jsx'\nimport './index.css'\n\nReactDOM.createRoot(document.getElementById('root')).render(<App />)\n"),
            ("src/index.css", "@tailwind base;\n@tailwind components;\n@tailwind utilities;\n"),
            ("src/App.jsx", "import Header from './components/Header'\nimport Hero from './components/Hero'\nimport Features from './components/Features'\nimport Pricing from './components/Pricing'\nimport Footer from './components/Footer'\n\nexport default function App() {\n  return (\n    <div className=\"min-h-screen bg-white text-gray-900\">\n      <Header />\n      <main>\n        <Hero />\n        <Features />\n        <Pricing />\n      </main>\n      <Footer />\n    </div>\n  )\n}\n"),
            ("src/components/Header.jsx", "const links = ['Features', 'Pricing', 'Contact']\n\nexport default function Header() {\n  return (\n    <header className=\"border-b\">\n      <nav className=\"mx-auto flex max-w-6xl gap-6 p-4\">\n        {links.map((l) => <a key={l} href={`#${l.toLowerCase()}`} className=\"text-sm hover:text-indigo-600\">{l}</a>)}\n      </nav>\n    </header>\n  )\n}\n"),
            ("src/components/Hero.jsx", "export default function Hero() {\n  return (\n    <section className=\"bg-gradient-to-br from-indigo-600 to-purple-600 py-24 text-center text-white\">\n      <h1 className=\"text-4xl font-bold\">Ship faster</h1>\n      <p className=\"mt-4 text-lg\">Everything you need to launch.</p>\n    </section>\n  )\n}\n"),
            ("src/components/Features.jsx", "const features = [{ title: 'Fast', text: 'Vite powered' }, { title: 'Styled', text: 'Tailwind' }]\n\nexport default function Features() {\n  return (\n    <section id=\"features\" className=\"grid gap-6 p-8 md:grid-cols-2\">\n      {features.map((f) => <div key={f.title} className=\"rounded-xl border p-6\"><h3 className=\"font-semibold\">{f.title}</h3><p>{f.text}</p></div>)}\n    </section>\n  )\n}\n"),
            ("src/components/Pricing.jsx", "export default function Pricing() {\n  return <section id=\"pricing\" className=\"p-8\"><h2 className=\"text-3xl\">Plans</h2></section>\n}\n"),
            ("src/components/Footer.jsx", "export default function Footer() {\n  return <footer className=\"border-t p-6 text-sm text-gray-500\">© 2025 Site</footer>\n}\n"),
            ("src/components/ContactForm.jsx", "export default function ContactForm() {\n  return <form className=\"space-y-4\"><label>Email<input type=\"email\" className=\"border\" /></label><button className=\"bg-indigo-600 text-white\">Send</button></form>\n}\n"),
            ("src/hooks/useScrollSpy.js", "import { useEffect, useState } from 'react'\nexport function useScrollSpy(ids) {\n  const [active, setActive] = useState(null)\n  useEffect(() => {}, [ids])\n  return active\n}\n"),
            ("public/favicon.svg", "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\n"),
            // Noise that must never show up.
            ("node_modules/react/index.js", "module.exports = require('./hero.js') // Hero hero hero\n"),
            ("node_modules/hero-lib/Hero.jsx", "export const Hero = 1\n"),
            ("dist/assets/index-abc123.js", "var Hero=function(){return 'hero'};\n"),
            ("dist/index.html", "<html>hero</html>\n"),
            (".git/HEAD", "ref: refs/heads/main\n"),
            (".vite/deps/Hero.js", "hero\n"),
            ("coverage/lcov-report/Hero.jsx.html", "<html>hero</html>\n"),
        ];
        for (rel, content) in files {
            write(dir.path(), rel, content);
        }
        dir
    }

    fn sel<'a>(root: &'a Path, request: &'a str, budget: usize) -> Selection<'a> {
        Selection {
            root,
            request,
            primary: None,
            requested: Vec::new(),
            recently_edited: &[],
            open_documents: Vec::new(),
            budget_tokens: budget,
        }
    }

    fn paths(files: &[ContextFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn hero_request_picks_hero_first() {
        let dir = fixture();
        let got = select(sel(dir.path(), "make the hero title bigger", 8000));
        assert_eq!(got[0].path, "src/components/Hero.jsx");
        assert_eq!(got[0].reason, "matches 'hero'");
        assert!(got[0].content.contains("Ship faster"));
        assert!(paths(&got).contains(&"src/App.jsx"));
        assert!(got
            .iter()
            .all(|f| !f.path.contains("node_modules") && !f.path.starts_with("dist")));
    }

    #[test]
    fn navbar_request_picks_header() {
        let dir = fixture();
        let got = select(sel(dir.path(), "change the navbar links", 8000));
        assert!(
            got[0].path == "src/components/Header.jsx"
                || got[0].path == "src/components/Navbar.jsx",
            "{:?}",
            paths(&got)
        );
        assert_eq!(got[0].reason, "matches 'navbar'");
    }

    #[test]
    fn dark_mode_picks_styles_and_app_root() {
        let dir = fixture();
        let got = select(sel(dir.path(), "add a dark mode", 8000));
        let p = paths(&got);
        let mut top = p[..2].to_vec();
        top.sort();
        assert_eq!(top, ["src/App.jsx", "src/index.css"], "{p:?}");
        assert_eq!(got[0].reason, "matches 'dark'");
        assert!(p.contains(&"tailwind.config.js"));
    }

    #[test]
    fn synonyms_and_plurals_match_file_names() {
        let dir = fixture();
        let got = select(sel(dir.path(), "Update the signup inputs", 8000));
        assert_eq!(got[0].path, "src/components/ContactForm.jsx");
        let got = select(sel(dir.path(), "three pricing plans", 8000));
        assert_eq!(got[0].path, "src/components/Pricing.jsx");
        let got = select(sel(dir.path(), "the copyright line", 8000));
        assert_eq!(got[0].path, "src/components/Footer.jsx");
    }

    #[test]
    fn camel_kebab_snake_are_split() {
        assert_eq!(words("heroTitle"), ["hero", "title"]);
        assert_eq!(words("HTMLParser"), ["html", "parser"]);
        assert_eq!(words("nav-bar_links"), ["nav", "bar", "links"]);
        assert_eq!(words("ContactForm.jsx"), ["contact", "form", "jsx"]);
        assert_eq!(words("h1Title a"), ["h1", "title"]);
        assert_eq!(words("Ünïcode 标题"), ["ünïcode", "标题"]);
        let dir = fixture();
        let got = select(sel(dir.path(), "fix the useScrollSpy hook", 8000));
        assert_eq!(got[0].path, "src/hooks/useScrollSpy.js");
        let got = select(sel(dir.path(), "contactForm validation", 8000));
        assert_eq!(got[0].path, "src/components/ContactForm.jsx");
    }

    #[test]
    fn budget_is_respected() {
        let dir = fixture();
        for budget in [0, 50, 120, 300, 1000] {
            let got = select(sel(
                dir.path(),
                "make the hero title bigger and the footer dark",
                budget,
            ));
            let used: usize = got.iter().map(|f| estimate_tokens(&f.content)).sum();
            assert!(used <= budget, "budget {budget}: used {used}");
        }
    }

    #[test]
    fn primary_is_first_and_exempt_from_budget() {
        let dir = fixture();
        let big = "x".repeat(40_000);
        let got = select(Selection {
            primary: Some(ContextFile {
                path: "./src/components/Footer.jsx".into(),
                content: big.clone(),
                reason: "whatever".into(),
            }),
            ..sel(dir.path(), "make the hero title bigger", 500)
        });
        assert_eq!(got[0].path, "src/components/Footer.jsx");
        assert_eq!(got[0].reason, "primary");
        assert_eq!(got[0].content, big);
        assert_eq!(
            got.iter()
                .filter(|f| f.path.ends_with("Footer.jsx"))
                .count(),
            1
        );
        let rest: usize = got[1..].iter().map(|f| estimate_tokens(&f.content)).sum();
        assert_eq!(
            rest, 0,
            "nothing else fits once the primary used the budget"
        );
    }

    #[test]
    fn primary_then_requested_then_ranked() {
        let dir = fixture();
        let got = select(Selection {
            primary: Some(ContextFile {
                path: "src/components/Hero.jsx".into(),
                content: "buffer".into(),
                reason: "primary".into(),
            }),
            requested: vec![
                ContextFile {
                    path: "src/components/Pricing.jsx".into(),
                    content: String::new(),
                    reason: String::new(),
                },
                ContextFile {
                    path: "src/components/Hero.jsx".into(),
                    content: "dup".into(),
                    reason: String::new(),
                },
            ],
            ..sel(dir.path(), "make the hero title bigger", 8000)
        });
        assert_eq!(got[0].path, "src/components/Hero.jsx");
        assert_eq!(got[0].content, "buffer");
        assert_eq!(got[1].path, "src/components/Pricing.jsx");
        assert_eq!(got[1].reason, "requested");
        assert!(
            got[1].content.contains("Plans"),
            "empty requested content is read from disk"
        );
        assert_eq!(
            got.iter().filter(|f| f.path.ends_with("Hero.jsx")).count(),
            1
        );
    }

    #[test]
    fn requested_files_are_trimmed_when_over_budget() {
        let dir = fixture();
        let long: String = (0..2000)
            .map(|i| format!("const line{i} = {i};\n"))
            .collect();
        let got = select(Selection {
            requested: vec![
                ContextFile {
                    path: "src/big.js".into(),
                    content: long.clone(),
                    reason: String::new(),
                },
                ContextFile {
                    path: "src/small.js".into(),
                    content: "export const s = 1\n".into(),
                    reason: String::new(),
                },
            ],
            ..sel(dir.path(), "tidy up", 1000)
        });
        assert_eq!(&paths(&got)[..2], &["src/big.js", "src/small.js"]);
        assert!(
            got[0].reason.starts_with("requested (truncated: first "),
            "{}",
            got[0].reason
        );
        assert!(long.starts_with(&got[0].content));
        assert!(got[0].content.ends_with('\n'));
        assert_eq!(got[1].reason, "requested");
        let used: usize = got.iter().map(|f| estimate_tokens(&f.content)).sum();
        assert!(used <= 1000);
    }

    #[test]
    fn open_documents_override_disk() {
        let dir = fixture();
        let got = select(Selection {
            open_documents: vec![
                ContextFile {
                    path: "src/components/Hero.jsx".into(),
                    content: "export default function Hero() { return <h1>unsaved</h1> }\n".into(),
                    reason: String::new(),
                },
                ContextFile {
                    path: "src/components/HeroBadge.jsx".into(),
                    content: "export default function HeroBadge() {}\n".into(),
                    reason: String::new(),
                },
            ],
            ..sel(dir.path(), "make the hero title bigger", 8000)
        });
        let hero = got
            .iter()
            .find(|f| f.path == "src/components/Hero.jsx")
            .unwrap();
        assert!(hero.content.contains("unsaved"));
        assert!(
            paths(&got).contains(&"src/components/HeroBadge.jsx"),
            "unsaved open files are candidates"
        );
    }

    #[test]
    fn recently_edited_files_get_a_boost() {
        let dir = fixture();
        let recent = ["src/components/Features.jsx".to_string()];
        let got = select(Selection {
            recently_edited: &recent,
            ..sel(dir.path(), "tweak the spacing", 8000)
        });
        assert_eq!(got[0].path, "src/components/Features.jsx");
        assert_eq!(got[0].reason, "recently edited");
    }

    #[test]
    fn structure_files_and_fallback_for_vague_requests() {
        let dir = fixture();
        let got = select(sel(dir.path(), "", 8000));
        let p = paths(&got);
        assert_eq!(&p[..2], &["src/App.jsx", "src/main.jsx"], "{p:?}");
        assert_eq!(got[0].reason, "app root");
        assert_eq!(got[1].reason, "entry point");
        assert!(got
            .iter()
            .any(|f| f.reason == "project file" && f.path == "src/components/Hero.jsx"));
        assert!(!p.contains(&"package.json"));
    }

    #[test]
    fn ties_are_ordered_by_path_and_results_are_deterministic() {
        let dir = fixture();
        let a = select(sel(dir.path(), "make the buttons and cards nicer", 8000));
        let b = select(sel(dir.path(), "make the buttons and cards nicer", 8000));
        assert_eq!(a, b);
        let got = select(sel(dir.path(), "", 8000));
        let fallback: Vec<&str> = got
            .iter()
            .filter(|f| f.reason == "project file")
            .map(|f| f.path.as_str())
            .collect();
        let mut sorted = fallback.clone();
        sorted.sort();
        assert_eq!(fallback, sorted);
    }

    #[test]
    fn listing_skips_noise_lockfiles_and_hidden() {
        let dir = fixture();
        let files = list_files(dir.path(), 1000);
        let p: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert!(p.contains(&"src/components/Hero.jsx"));
        assert!(p.contains(&"package.json"));
        assert!(p.contains(&"index.html"));
        assert!(p.contains(&"README.md"));
        for f in &p {
            assert!(
                !f.starts_with("node_modules")
                    && !f.starts_with("dist")
                    && !f.starts_with('.')
                    && !f.starts_with("coverage"),
                "{f}"
            );
        }
        assert!(!p.contains(&"package-lock.json"));
        assert!(!p.contains(&"public/favicon.svg"));
        let mut sorted = p.clone();
        sorted.sort();
        assert_eq!(p, sorted);
        assert_eq!(list_files(dir.path(), 3).len(), 3);
        assert!(list_files(dir.path(), 0).is_empty());
        let hero = files
            .iter()
            .find(|f| f.path == "src/components/Hero.jsx")
            .unwrap();
        assert_eq!(
            hero.size,
            fs::metadata(dir.path().join("src/components/Hero.jsx"))
                .unwrap()
                .len()
        );
    }

    #[test]
    fn large_and_binary_files_are_skipped() {
        let dir = fixture();
        let r = dir.path();
        write(
            r,
            "src/components/HeroData.json",
            &format!("[\"{}\"]", "hero ".repeat(60_000)),
        );
        fs::write(r.join("src/components/HeroIcon.js"), b"hero\0\x01\x02\xff").unwrap();
        fs::write(r.join("src/components/HeroLatin1.jsx"), b"hero \xe9\xe9").unwrap();
        let p: Vec<String> = list_files(r, 1000).into_iter().map(|f| f.path).collect();
        assert!(!p.iter().any(|f| f.ends_with("HeroData.json")));
        assert!(
            p.iter().any(|f| f.ends_with("HeroIcon.js")),
            "listed by name"
        );
        let got = select(sel(r, "hero", 100_000));
        let gp = paths(&got);
        assert!(
            !gp.iter().any(|f| f.ends_with("HeroData.json")
                || f.ends_with("HeroIcon.js")
                || f.ends_with("HeroLatin1.jsx")),
            "{gp:?}"
        );
        assert_eq!(gp[0], "src/components/Hero.jsx");
    }

    #[test]
    fn strong_match_is_trimmed_rather_than_dropped() {
        let dir = fixture();
        let body: String = (0..400)
            .map(|i| format!("      <p className=\"text-lg\">Line {i}</p>\n"))
            .collect();
        write(dir.path(), "src/components/Hero.jsx", &format!("export default function Hero() {{\n  return (\n    <section>\n{body}    </section>\n  )\n}}\n"));
        let got = select(sel(dir.path(), "hero", 600));
        assert_eq!(got[0].path, "src/components/Hero.jsx");
        assert!(
            got[0]
                .reason
                .starts_with("matches 'hero' (truncated: first "),
            "{}",
            got[0].reason
        );
        let used: usize = got.iter().map(|f| estimate_tokens(&f.content)).sum();
        assert!(used <= 600);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_project_are_not_read() {
        let dir = fixture();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.js", "export const heroSecret = 1\n");
        std::os::unix::fs::symlink(
            outside.path().join("secret.js"),
            dir.path().join("src/heroLink.js"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("src/linked")).unwrap();
        assert!(!list_files(dir.path(), 1000)
            .iter()
            .any(|f| f.path.contains("heroLink") || f.path.starts_with("src/linked")));
        let got = select(Selection {
            requested: vec![
                ContextFile {
                    path: "src/heroLink.js".into(),
                    content: String::new(),
                    reason: String::new(),
                },
                ContextFile {
                    path: "../secret.js".into(),
                    content: String::new(),
                    reason: String::new(),
                },
            ],
            ..sel(dir.path(), "hero", 8000)
        });
        assert!(got.iter().all(|f| !f.content.contains("heroSecret")));
        assert!(!paths(&got)
            .iter()
            .any(|p| p.contains("secret") || p.contains("heroLink")));
    }

    #[test]
    fn odd_inputs_do_not_panic() {
        let dir = fixture();
        for req in [
            "",
            "   ",
            "🚀🚀",
            "把标题改大",
            "ÀÉÎ camelCaseÉtoile",
            &"a".repeat(100_000),
            "\0\u{feff}",
        ] {
            let _ = select(sel(dir.path(), req, 4000));
        }
        let missing = dir.path().join("does-not-exist");
        assert!(list_files(&missing, 10).is_empty());
        let got = select(Selection {
            requested: vec![ContextFile {
                path: "".into(),
                content: "x".into(),
                reason: String::new(),
            }],
            open_documents: vec![ContextFile {
                path: "/etc/passwd".into(),
                content: "x".into(),
                reason: String::new(),
            }],
            ..sel(&missing, "hero", 100)
        });
        assert!(got.is_empty());
        assert_eq!(stem("categories"), "category");
        assert_eq!(stem("links"), "link");
        assert_eq!(stem("class"), "class");
        assert_eq!(stem("é"), "é");
    }
}
