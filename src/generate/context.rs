//! Choosing which project files the model sees: list the project's text sources, rank them
//! for the request (file names, path segments, content, synonyms, recent edits, structure
//! files) and keep what fits a token budget.

use std::collections::{HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use walkdir::{DirEntry, WalkDir};

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

/// Files larger than this are never listed or read.
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Directories never descended into (hidden ones are skipped too).
const SKIP_DIRS: &[&str] = &["node_modules", "dist", "build", "coverage"];
const EXTENSIONS: &[&str] = &[
    "js", "jsx", "ts", "tsx", "mjs", "cjs", "css", "html", "json", "md", "vue", "svelte",
];
const LOCKFILES: &[&str] = &["package-lock.json", "npm-shrinkwrap.json"];
/// Walk at most this many directory entries, so a huge tree cannot stall a request.
const MAX_WALK: usize = 100_000;
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
/// Request words used for ranking.
const MAX_REQUEST_WORDS: usize = 32;

/// Text source files of the project (js, jsx, ts, tsx, css, html, json except lockfiles, md,
/// vue, svelte), skipping node_modules, .git, dist, build, .vite, .next, coverage, hidden
/// dirs, files > 256 KiB; sorted; at most `limit` files.
pub fn list_files(root: &Path, limit: usize) -> Vec<ProjectFile> {
    let mut out = Vec::new();
    if limit == 0 {
        return out;
    }
    let walker = WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !skipped(e));
    for entry in walker.take(MAX_WALK).flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str() else {
            continue;
        };
        if !is_source_name(name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.len() > MAX_FILE_BYTES {
            continue;
        }
        if let Some(path) = relative(root, entry.path()) {
            out.push(ProjectFile {
                path,
                size: meta.len(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.truncate(limit);
    out
}

fn skipped(e: &DirEntry) -> bool {
    let name = e.file_name().to_string_lossy();
    name.starts_with('.') || (e.file_type().is_dir() && SKIP_DIRS.contains(&name.as_ref()))
}

fn is_source_name(name: &str) -> bool {
    if LOCKFILES.contains(&name) {
        return false;
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => {
            EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        }
        _ => false,
    }
}

/// `path` relative to `root`, `/`-separated; None for non-UTF-8 or escaping paths.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

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

fn is_safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\0')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Reads a text file under `root`: not through symlinks out of the project, not binary,
/// not larger than the listing limit, valid UTF-8.
fn read_text(root: &Path, canon_root: Option<&Path>, rel: &str) -> Option<String> {
    if !is_safe_relative(rel) {
        return None;
    }
    let full: PathBuf = root.join(rel);
    let canon = full.canonicalize().ok()?;
    if !canon.starts_with(canon_root?) {
        return None;
    }
    let meta = std::fs::metadata(&canon).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let bytes = std::fs::read(&canon).ok()?;
    if bytes.len() as u64 > MAX_FILE_BYTES || memchr::memchr(0, &bytes).is_some() {
        return None;
    }
    String::from_utf8(bytes).ok()
}

fn is_project_code(path: &str) -> bool {
    path.starts_with("src/")
        && matches!(
            ext_of(path).as_str(),
            "js" | "jsx" | "ts" | "tsx" | "css" | "vue" | "svelte"
        )
}

fn ext_of(path: &str) -> String {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

fn is_app_root(path: &str) -> bool {
    matches!(
        path,
        "src/App.jsx"
            | "src/App.tsx"
            | "src/App.js"
            | "src/App.ts"
            | "src/App.vue"
            | "src/App.svelte"
    )
}

/// The app's entry module (what `index.html` loads in a Vite app).
pub(crate) fn is_entry(path: &str) -> bool {
    matches!(
        path,
        "src/main.jsx"
            | "src/main.tsx"
            | "src/main.js"
            | "src/main.ts"
            | "src/index.jsx"
            | "src/index.tsx"
            | "src/index.js"
            | "src/index.ts"
    )
}

/// Words that say nothing about which file is meant.
const STOP_WORDS: &[&str] = &[
    "the",
    "a",
    "an",
    "and",
    "or",
    "to",
    "of",
    "in",
    "on",
    "for",
    "with",
    "at",
    "by",
    "as",
    "from",
    "into",
    "it",
    "its",
    "is",
    "be",
    "are",
    "this",
    "that",
    "these",
    "those",
    "my",
    "me",
    "we",
    "you",
    "your",
    "our",
    "can",
    "could",
    "would",
    "should",
    "will",
    "want",
    "need",
    "please",
    "make",
    "add",
    "change",
    "update",
    "modify",
    "edit",
    "set",
    "put",
    "use",
    "using",
    "create",
    "new",
    "some",
    "more",
    "less",
    "bit",
    "little",
    "so",
    "very",
    "really",
    "just",
    "also",
    "all",
    "there",
    "here",
    "now",
    "them",
    "then",
    "than",
    "like",
    "look",
    "looks",
    "component",
    "components",
    "section",
    "page",
    "file",
    "files",
    "app",
    "src",
    "jsx",
    "tsx",
    "js",
    "ts",
    "code",
    "thing",
    "part",
    "way",
    "do",
    "does",
    "get",
    "let",
    "have",
    "has",
    "not",
    "no",
    "but",
    "if",
    "when",
    "which",
    "what",
    "how",
    "too",
    "into",
    "onto",
    "instead",
    "everything",
];

/// Words that name the same part of a page, as the seed's keyword fallback did.
const SYNONYMS: &[&[&str]] = &[
    &[
        "header",
        "nav",
        "navbar",
        "navigation",
        "menu",
        "topbar",
        "appbar",
        "navlink",
    ],
    &["footer", "copyright"],
    &["hero", "banner", "landing", "jumbotron", "splash"],
    &["button", "btn", "cta"],
    &[
        "form",
        "login",
        "signup",
        "signin",
        "register",
        "input",
        "field",
        "auth",
        "contact",
        "newsletter",
    ],
    &["card", "grid", "feature", "tile"],
    &["modal", "dialog", "popup", "overlay", "lightbox"],
    &["pricing", "price", "plan", "tier", "subscription"],
    &["testimonial", "review", "quote"],
    &["sidebar", "drawer", "aside"],
    &["faq", "accordion", "question"],
    &["gallery", "image", "photo", "carousel", "slider"],
];

/// Words that point at global styling: stylesheets, Tailwind config and the app root.
const THEME_WORDS: &[&str] = &[
    "theme",
    "dark",
    "light",
    "color",
    "colour",
    "style",
    "styling",
    "palette",
    "font",
    "typography",
    "background",
    "css",
    "tailwind",
    "mode",
    "gradient",
];

/// A ranked file.
struct Candidate {
    path: String,
    score: i64,
    /// Points from the request's words (name, path, content, theme).
    matched: i64,
    /// File-name match: worth trimming rather than dropping.
    strong: bool,
    reason: String,
    content: Option<String>,
}

/// The request's search words: stemmed word → (request word shown in reasons, direct?).
struct Terms {
    map: HashMap<String, (String, bool)>,
    /// A request word about styling, if any.
    theme: Option<String>,
}

impl Terms {
    fn new(request: &str) -> Terms {
        let mut map: HashMap<String, (String, bool)> = HashMap::new();
        let mut theme = None;
        let mut request_words = Vec::new();
        for_each_word(request, |w| {
            if request_words.len() < MAX_REQUEST_WORDS
                && !STOP_WORDS.contains(&w)
                && !request_words.iter().any(|r: &String| r == w)
            {
                request_words.push(w.to_string());
            }
        });
        for w in &request_words {
            let s = stem(w);
            map.insert(s.clone(), (w.clone(), true));
            if theme.is_none() && THEME_WORDS.iter().any(|t| *t == w || stem(t) == s) {
                theme = Some(w.clone());
            }
        }
        for w in &request_words {
            let s = stem(w);
            for group in SYNONYMS {
                if group.iter().any(|g| stem(g) == s) {
                    for g in *group {
                        map.entry(stem(g)).or_insert_with(|| (w.clone(), false));
                    }
                }
            }
        }
        Terms { map, theme }
    }

    fn lookup(&self, word: &str) -> Option<&(String, bool)> {
        self.map.get(&stem(word))
    }

    /// Scores one file; `content` is None when it was not read.
    fn score(&self, path: &str, content: Option<&str>, recent: bool) -> Candidate {
        let mut best: Option<(i64, String)> = None;
        let mut note = |points: i64, label: &str| {
            if best.as_ref().is_none_or(|(p, _)| points > *p) {
                best = Some((points, label.to_string()));
            }
        };
        let (dirs, name) = path.rsplit_once('/').unwrap_or(("", path));
        let stem_part = name.split('.').find(|s| !s.is_empty()).unwrap_or(name);

        let mut name_score = 0i64;
        let mut name_hits = 0i64;
        for_each_word(stem_part, |w| {
            if let Some((label, direct)) = self.lookup(w) {
                let p = if *direct { 100 } else { 70 };
                note(p, label);
                name_score = name_score.max(p);
                name_hits += 1;
            }
        });
        if name_hits > 1 {
            name_score += 10 * (name_hits - 1);
        }

        let mut dir_score = 0i64;
        for_each_word(dirs, |w| {
            if let Some((label, direct)) = self.lookup(w) {
                let p = if *direct { 40 } else { 28 };
                note(p, label);
                dir_score = dir_score.max(p);
            }
        });

        let mut content_score = 0i64;
        if let Some(text) = content {
            let mut counts: HashMap<&str, i64> = HashMap::new();
            for_each_word(text, |w| {
                if let Some((k, (label, direct))) = self.map.get_key_value(&stem(w)) {
                    let n = counts.entry(k.as_str()).or_insert(0);
                    if *n < 4 {
                        *n += 1;
                        content_score += if *direct { 3 } else { 2 };
                        note(1, label);
                    }
                }
            });
            content_score = content_score.min(30);
        }

        let mut theme_score = 0i64;
        if let Some(t) = &self.theme {
            let ext = ext_of(path);
            if ext == "css" {
                theme_score = if name == "index.css" { 65 } else { 60 };
            } else if name.starts_with("tailwind.config.") {
                theme_score = 35;
            } else if is_app_root(path) {
                theme_score = 45;
            }
            if theme_score > 0 {
                note(theme_score, t);
            }
        }

        let matched = name_score + dir_score + content_score + theme_score;
        let app = is_app_root(path);
        let entry = is_entry(path);
        let score = matched
            + if recent { 30 } else { 0 }
            + if app { 20 } else { 0 }
            + if entry { 8 } else { 0 };
        let reason = match best {
            Some((_, label)) if matched > 0 => format!("matches '{label}'"),
            _ if recent => "recently edited".to_string(),
            _ if app => "app root".to_string(),
            _ if entry => "entry point".to_string(),
            _ => String::new(),
        };
        Candidate {
            path: path.to_string(),
            score,
            matched,
            strong: name_score > 0,
            reason,
            content: None,
        }
    }
}

/// Singular-ish form: "links" → "link", "categories" → "category".
fn stem(w: &str) -> String {
    if w.len() > 4 && w.ends_with("ies") {
        format!("{}y", &w[..w.len() - 3])
    } else if w.len() > 3 && w.ends_with('s') && !w.ends_with("ss") {
        w[..w.len() - 1].to_string()
    } else {
        w.to_string()
    }
}

/// Calls `f` with each lowercased word of `s` (at least two characters): split on
/// non-alphanumerics (kebab, snake, spaces, punctuation) and camelCase humps
/// (`HTMLParser` → html, parser).
fn for_each_word(s: &str, mut f: impl FnMut(&str)) {
    let mut buf = String::new();
    let mut prev: Option<char> = None;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if !c.is_alphanumeric() {
            flush(&mut buf, &mut f);
            prev = None;
            continue;
        }
        if let Some(p) = prev {
            let hump = c.is_uppercase() && (p.is_lowercase() || p.is_numeric());
            let acronym_end =
                c.is_uppercase() && p.is_uppercase() && it.peek().is_some_and(|n| n.is_lowercase());
            if hump || acronym_end {
                flush(&mut buf, &mut f);
            }
        }
        buf.extend(c.to_lowercase());
        prev = Some(c);
    }
    flush(&mut buf, &mut f);
}

fn flush(buf: &mut String, f: &mut dyn FnMut(&str)) {
    if buf.chars().nth(1).is_some() {
        f(buf);
    }
    buf.clear();
}

#[cfg(test)]
mod tests {
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
        let r = dir.path();
        write(
            r,
            "package.json",
            r#"{"name":"site","dependencies":{"react":"^18.2.0"}}"#,
        );
        write(r, "package-lock.json", r#"{"lockfileVersion":3}"#);
        write(r, "index.html", "<!doctype html>\n<html><body><div id=\"root\"></div><script type=\"module\" src=\"/src/main.jsx\"></script></body></html>\n");
        write(r, "vite.config.js", "import { defineConfig } from 'vite'\nimport react from '@vitejs/plugin-react'\nexport default defineConfig({ plugins: [react()] })\n");
        write(r, "tailwind.config.js", "export default { content: ['./index.html', './src/**/*.{js,jsx}'], theme: { extend: {} }, plugins: [] }\n");
        write(
            r,
            "postcss.config.js",
            "export default { plugins: { tailwindcss: {}, autoprefixer: {} } }\n",
        );
        write(
            r,
            "README.md",
            "# Site\n\nA landing page built with Vite.\n",
        );
        write(r, "src/main.jsx", "import React from 'react'\nimport ReactDOM from 'react-dom/client'\nimport App from './App.jsx'\nimport './index.css'\n\nReactDOM.createRoot(document.getElementById('root')).render(<App />)\n");
        write(
            r,
            "src/index.css",
            "@tailwind base;\n@tailwind components;\n@tailwind utilities;\n",
        );
        write(r, "src/App.jsx", "import Header from './components/Header'\nimport Hero from './components/Hero'\nimport Features from './components/Features'\nimport Pricing from './components/Pricing'\nimport Footer from './components/Footer'\n\nexport default function App() {\n  return (\n    <div className=\"min-h-screen bg-white text-gray-900\">\n      <Header />\n      <main>\n        <Hero />\n        <Features />\n        <Pricing />\n      </main>\n      <Footer />\n    </div>\n  )\n}\n");
        write(r, "src/components/Header.jsx", "const links = ['Features', 'Pricing', 'Contact']\n\nexport default function Header() {\n  return (\n    <header className=\"border-b\">\n      <nav className=\"mx-auto flex max-w-6xl gap-6 p-4\">\n        {links.map((l) => <a key={l} href={`#${l.toLowerCase()}`} className=\"text-sm hover:text-indigo-600\">{l}</a>)}\n      </nav>\n    </header>\n  )\n}\n");
        write(r, "src/components/Hero.jsx", "export default function Hero() {\n  return (\n    <section className=\"bg-gradient-to-br from-indigo-600 to-purple-600 py-24 text-center text-white\">\n      <h1 className=\"text-4xl font-bold\">Ship faster</h1>\n      <p className=\"mt-4 text-lg\">Everything you need to launch.</p>\n    </section>\n  )\n}\n");
        write(r, "src/components/Features.jsx", "const features = [{ title: 'Fast', text: 'Vite powered' }, { title: 'Styled', text: 'Tailwind' }]\n\nexport default function Features() {\n  return (\n    <section id=\"features\" className=\"grid gap-6 p-8 md:grid-cols-2\">\n      {features.map((f) => <div key={f.title} className=\"rounded-xl border p-6\"><h3 className=\"font-semibold\">{f.title}</h3><p>{f.text}</p></div>)}\n    </section>\n  )\n}\n");
        write(r, "src/components/Pricing.jsx", "export default function Pricing() {\n  return <section id=\"pricing\" className=\"p-8\"><h2 className=\"text-3xl\">Plans</h2></section>\n}\n");
        write(r, "src/components/Footer.jsx", "export default function Footer() {\n  return <footer className=\"border-t p-6 text-sm text-gray-500\">© 2025 Site</footer>\n}\n");
        write(r, "src/components/ContactForm.jsx", "export default function ContactForm() {\n  return <form className=\"space-y-4\"><label>Email<input type=\"email\" className=\"border\" /></label><button className=\"bg-indigo-600 text-white\">Send</button></form>\n}\n");
        write(r, "src/hooks/useScrollSpy.js", "import { useEffect, useState } from 'react'\nexport function useScrollSpy(ids) {\n  const [active, setActive] = useState(null)\n  useEffect(() => {}, [ids])\n  return active\n}\n");
        write(
            r,
            "public/favicon.svg",
            "<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>\n",
        );
        // Noise that must never show up.
        write(
            r,
            "node_modules/react/index.js",
            "module.exports = require('./hero.js') // Hero hero hero\n",
        );
        write(
            r,
            "node_modules/hero-lib/Hero.jsx",
            "export const Hero = 1\n",
        );
        write(
            r,
            "dist/assets/index-abc123.js",
            "var Hero=function(){return 'hero'};\n",
        );
        write(r, "dist/index.html", "<html>hero</html>\n");
        write(r, ".git/HEAD", "ref: refs/heads/main\n");
        write(r, ".vite/deps/Hero.js", "hero\n");
        write(
            r,
            "coverage/lcov-report/Hero.jsx.html",
            "<html>hero</html>\n",
        );
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
