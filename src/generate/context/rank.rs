//! Ranking a file for the request: the request's words (stop words dropped, plurals stemmed,
//! synonyms added) matched against file names, path segments and content, plus boosts for
//! styling requests, recent edits and structure files (app root, entry point).

use std::collections::HashMap;

/// Request words used for ranking.
const MAX_REQUEST_WORDS: usize = 32;

pub(super) fn is_project_code(path: &str) -> bool {
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
pub(super) struct Candidate {
    pub(super) path: String,
    pub(super) score: i64,
    /// Points from the request's words (name, path, content, theme).
    pub(super) matched: i64,
    /// File-name match: worth trimming rather than dropping.
    pub(super) strong: bool,
    pub(super) reason: String,
    pub(super) content: Option<String>,
}

/// The request's search words: stemmed word → (request word shown in reasons, direct?).
pub(super) struct Terms {
    map: HashMap<String, (String, bool)>,
    /// A request word about styling, if any.
    theme: Option<String>,
}

impl Terms {
    pub(super) fn new(request: &str) -> Terms {
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
    pub(super) fn score(&self, path: &str, content: Option<&str>, recent: bool) -> Candidate {
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
pub(super) fn stem(w: &str) -> String {
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
pub(super) fn for_each_word(s: &str, mut f: impl FnMut(&str)) {
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
