//! Import aliases a project configured, so `@/lib/x` or `@components/Button` is not taken for a
//! package that needs installing.
//!
//! Two sources: Vite's `resolve.alias` (read textually with the import scanner's tokenizer,
//! because the config is code and cannot be evaluated here) and `compilerOptions.paths` of
//! `tsconfig.json`/`jsconfig.json` (JSONC, following relative `extends` and solution-style
//! `references`, as the Vite templates split their config that way). A `baseUrl` (the config's
//! own, else the one it inherits through `extends`, relative to the config that sets it) makes a
//! bare specifier a project module when its first segment exists under that folder as a folder
//! or as a file with one of TypeScript's extensions — as TypeScript resolves it, with or
//! without `paths`. That is checked on disk when asked, so a folder a generation just created
//! counts at once.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::scan::{Lexer, Tok, Token};

/// Vite config file names tried, in Vite's own order.
const VITE_CONFIGS: &[&str] = &[
    "vite.config.js",
    "vite.config.mjs",
    "vite.config.ts",
    "vite.config.cjs",
    "vite.config.mts",
    "vite.config.cts",
];

/// How many `extends` hops are followed.
const MAX_EXTENDS_DEPTH: usize = 2;

/// Config files above this size are not read (they are not configs).
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Default, Debug, Clone)]
pub struct Aliases {
    /// Keys matched as `key` or `key/…` (Vite's rule; also tsconfig keys without `*`).
    keys: Vec<String>,
    /// Wildcard patterns as (prefix, suffix): `@/*` is ("@/", "").
    wildcards: Vec<(String, String)>,
    /// Prefixes from `find: /^…/` regexes.
    prefixes: Vec<String>,
    /// `baseUrl` folders: bare specifiers are resolved against them first.
    base_dirs: Vec<PathBuf>,
}

/// The file extensions TypeScript (and Vite) try for an extensionless module under `baseUrl`.
const MODULE_EXTENSIONS: &[&str] = &[
    ".ts", ".tsx", ".d.ts", ".js", ".jsx", ".mts", ".cts", ".mjs", ".cjs", ".json",
];

impl Aliases {
    /// Reads the aliases configured at `project_root`. Missing or unreadable files add nothing:
    /// aliases only ever remove false alarms.
    pub fn load(project_root: &Path) -> Aliases {
        let mut a = Aliases::default();
        for name in VITE_CONFIGS {
            if let Some(text) = read_small(&project_root.join(name)) {
                a.add_vite_config(&text);
            }
        }
        let mut seen = HashSet::new();
        for name in ["tsconfig.json", "jsconfig.json"] {
            a.add_tsconfig(&project_root.join(name), 0, true, &mut seen);
        }
        a
    }

    /// Adds one pattern: with a `*` it is a wildcard (`@/*`, `~/*`), else a key that also
    /// matches its subpaths. A lone `*` (a catch-all that falls back to packages) is ignored.
    pub fn add(&mut self, pattern: &str) {
        if pattern.is_empty() || pattern == "*" {
            return;
        }
        match pattern.split_once('*') {
            Some((pre, suf)) => {
                self.wildcards.push((pre.to_owned(), suf.to_owned()));
            }
            None => self.keys.push(pattern.trim_end_matches('/').to_owned()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.wildcards.is_empty()
            && self.prefixes.is_empty()
            && self.base_dirs.is_empty()
    }

    /// True when `spec` resolves through an alias rather than `node_modules`.
    pub fn matches(&self, spec: &str) -> bool {
        let key_hit = self.keys.iter().any(|k| {
            !k.is_empty()
                && spec.starts_with(k.as_str())
                && (spec.len() == k.len() || spec.as_bytes().get(k.len()) == Some(&b'/'))
        });
        key_hit
            || self.wildcards.iter().any(|(p, s)| {
                spec.len() >= p.len() + s.len()
                    && spec.starts_with(p.as_str())
                    && spec.ends_with(s.as_str())
            })
            || self.prefixes.iter().any(|p| spec.starts_with(p.as_str()))
            || self.under_base_url(spec)
    }

    /// Whether the specifier's first segment is a folder, or a module file, under a `baseUrl`.
    fn under_base_url(&self, spec: &str) -> bool {
        let first = spec.split('/').next().unwrap_or(spec);
        if first.is_empty() || first == "node_modules" || first.contains(['\\', '\0']) {
            return false;
        }
        self.base_dirs.iter().any(|dir| {
            let entry = dir.join(first);
            entry.is_dir()
                || entry.is_file()
                || MODULE_EXTENSIONS.iter().any(|ext| {
                    let mut name = entry.clone().into_os_string();
                    name.push(ext);
                    Path::new(&name).is_file()
                })
        })
    }

    /// Collects alias keys from a Vite config: `alias: { '@': …, key: … }` and
    /// `alias: [{ find: '@', replacement: … }, { find: /^~\//, … }]`.
    pub fn add_vite_config(&mut self, src: &str) {
        let mut lx = Lexer::new(src, false);
        let mut toks: Vec<Token> = Vec::new();
        loop {
            let t = lx.next_token();
            if t.kind == Tok::Eof {
                break;
            }
            toks.push(t);
        }
        let word = |t: &Token| {
            if t.kind == Tok::Ident {
                lx.text(*t)
            } else {
                ""
            }
        };
        let mut i = 0;
        while i + 2 < toks.len() {
            let is_alias = matches!(word(&toks[i]), "alias" | "aliases")
                && matches!(toks[i + 1].kind, Tok::Punct(b':') | Tok::Punct(b'='))
                && (i == 0 || toks[i - 1].kind != Tok::Punct(b'.'));
            if !is_alias {
                i += 1;
                continue;
            }
            let open = toks[i + 2].kind;
            let mut depth = 0usize;
            let mut j = i + 2;
            while j < toks.len() {
                let t = toks[j];
                match t.kind {
                    Tok::Punct(b'{') | Tok::Punct(b'[') | Tok::Punct(b'(') => depth += 1,
                    Tok::Punct(b'}') | Tok::Punct(b']') | Tok::Punct(b')') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                let next_is_colon = toks.get(j + 1).map(|n| n.kind) == Some(Tok::Punct(b':'));
                let prev = toks[j - 1].kind;
                match open {
                    // Object form: keys at depth 1.
                    Tok::Punct(b'{')
                        if depth == 1
                            && next_is_colon
                            && matches!(t.kind, Tok::Ident | Tok::Str)
                            && matches!(prev, Tok::Punct(b'{') | Tok::Punct(b',')) =>
                    {
                        self.add_key(lx.text(t));
                    }
                    // Array form: `find:` inside each object.
                    Tok::Punct(b'[') if depth == 2 && next_is_colon && word(&t) == "find" => {
                        if let Some(v) = toks.get(j + 2) {
                            match v.kind {
                                Tok::Str | Tok::Template => self.add_key(lx.text(*v)),
                                Tok::Regex => {
                                    if let Some(p) = regex_prefix(lx.text(*v)) {
                                        self.prefixes.push(p);
                                    }
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j.max(i + 1);
        }
    }

    /// Vite keys match `key` and `key/…`; a trailing `/` in the key is the same key.
    fn add_key(&mut self, key: &str) {
        let key = key.trim_end_matches('/');
        if !key.is_empty() {
            self.keys.push(key.to_owned());
        }
    }

    /// Reads `compilerOptions.paths` from one tsconfig, then what it extends; returns the
    /// `baseUrl` in effect for it (its own, else the first one it inherits).
    fn add_tsconfig(
        &mut self,
        path: &Path,
        depth: usize,
        top: bool,
        seen: &mut HashSet<PathBuf>,
    ) -> Option<PathBuf> {
        if !seen.insert(path.to_path_buf()) {
            return None;
        }
        let text = read_small(path)?;
        let json = serde_json::from_str::<serde_json::Value>(&strip_jsonc(&text)).ok()?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let opts = json.get("compilerOptions");
        self.add_paths(&json);
        let mut base_url = opts
            .and_then(|o| o.get("baseUrl"))
            .and_then(|b| b.as_str())
            .map(|b| dir.join(b));
        let extends: Vec<&str> = match json.get("extends") {
            Some(serde_json::Value::String(s)) => vec![s.as_str()],
            Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
            _ => Vec::new(),
        };
        if depth < MAX_EXTENDS_DEPTH {
            for e in extends {
                // Package configs (`@tsconfig/node20`) hold no project aliases.
                if e.starts_with('.') || Path::new(e).is_absolute() {
                    let mut p = dir.join(e);
                    if p.extension().is_none_or(|x| x != "json") && !p.is_file() {
                        // `./tsconfig.base` means `./tsconfig.base.json`: append, not replace.
                        let mut s = p.into_os_string();
                        s.push(".json");
                        p = PathBuf::from(s);
                    }
                    let inherited = self.add_tsconfig(&p, depth + 1, false, seen);
                    base_url = base_url.or(inherited);
                }
            }
        }
        if top {
            if let Some(b) = &base_url {
                self.add_base_dir(b.clone());
            }
        }
        if top {
            let refs = json.get("references").and_then(|r| r.as_array());
            for r in refs.into_iter().flatten() {
                if let Some(p) = r.get("path").and_then(|p| p.as_str()) {
                    let mut p = dir.join(p);
                    if p.is_dir() {
                        p.push("tsconfig.json");
                    }
                    if let Some(b) = self.add_tsconfig(&p, 0, false, seen) {
                        self.add_base_dir(b);
                    }
                }
            }
        }
        base_url
    }

    fn add_base_dir(&mut self, dir: PathBuf) {
        if !self.base_dirs.contains(&dir) {
            self.base_dirs.push(dir);
        }
    }

    /// Adds the `compilerOptions.paths` keys of tsconfig text that is not on disk (so no
    /// `extends` to follow).
    pub fn add_tsconfig_text(&mut self, text: &str) {
        if let Ok(json) = serde_json::from_str::<serde_json::Value>(&strip_jsonc(text)) {
            self.add_paths(&json);
        }
    }

    /// Adds the `paths` keys; returns the `paths` object when there is one.
    fn add_paths<'j>(
        &mut self,
        json: &'j serde_json::Value,
    ) -> Option<&'j serde_json::Map<String, serde_json::Value>> {
        let paths = json
            .get("compilerOptions")
            .and_then(|o| o.get("paths"))
            .and_then(|p| p.as_object())?;
        for key in paths.keys() {
            self.add(key);
        }
        Some(paths)
    }
}

fn read_small(path: &Path) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_CONFIG_BYTES {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// The literal prefix a `/^…/` regex requires (`/^@\//` → `@/`), if it has one.
fn regex_prefix(re: &str) -> Option<String> {
    let body = re.strip_prefix('/')?;
    let body = &body[..body.rfind('/')?];
    let mut chars = body.strip_prefix('^')?.chars();
    let mut out = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e) if !e.is_ascii_alphanumeric() => out.push(e),
                _ => break,
            },
            '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '$' => {
                // A quantifier makes the previous char optional.
                if matches!(c, '*' | '?' | '{') {
                    out.pop();
                }
                break;
            }
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// JSON with comments and trailing commas (tsconfig's dialect) to plain JSON. Comments become
/// spaces so error positions stay meaningful.
pub(crate) fn strip_jsonc(text: &str) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                out.extend_from_slice(&b[start..i]);
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    out.push(b' ');
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end =
                    memchr::memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |k| i + 2 + k + 2);
                out.extend(
                    b[i..end]
                        .iter()
                        .map(|&c| if c == b'\n' { b'\n' } else { b' ' }),
                );
                i = end;
                continue;
            }
            b',' => {
                // Drop the comma when only space and comments stand before `}` or `]`.
                let mut j = i + 1;
                loop {
                    while j < b.len() && b[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'/') && b.get(j + 1) == Some(&b'/') {
                        j = memchr::memchr(b'\n', &b[j..]).map_or(b.len(), |k| j + k);
                    } else if b.get(j) == Some(&b'/') && b.get(j + 1) == Some(&b'*') {
                        j = memchr::memmem::find(&b[j + 2..], b"*/")
                            .map_or(b.len(), |k| j + 2 + k + 2);
                    } else {
                        break;
                    }
                }
                out.push(if matches!(b.get(j), Some(b'}') | Some(b']')) {
                    b' '
                } else {
                    b','
                });
            }
            _ => out.push(c),
        }
        i += 1;
    }
    // Only ASCII bytes were replaced, by ASCII: the text is still UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vite_object_form_keys() {
        let mut a = Aliases::default();
        a.add_vite_config(
            r#"
            import { defineConfig } from 'vite'
            import path from 'path'
            // alias: { 'commented': 1 }
            export default defineConfig({
              resolve: {
                alias: {
                  '@': path.resolve(__dirname, './src'),
                  "~components": path.resolve(__dirname, 'src/components', `x${1}`),
                  utils: fileURLToPath(new URL('./src/utils', import.meta.url)),
                  '@lib/': '/src/lib/',
                },
              },
              define: { 'process.env': {} },
            })
            "#,
        );
        assert!(a.matches("@"));
        assert!(a.matches("@/components/Button"));
        assert!(a.matches("~components/Card"));
        assert!(a.matches("utils"));
        assert!(a.matches("utils/date"));
        assert!(a.matches("@lib/x"));
        assert!(
            !a.matches("@tanstack/query"),
            "`@` only matches `@` and `@/…`"
        );
        assert!(!a.matches("commented"));
        assert!(!a.matches("./src"), "values are not keys");
        assert!(!a.matches("process.env"), "other objects are not aliases");
        assert!(!a.matches("utilsx"));
    }

    #[test]
    fn vite_array_form_with_regex() {
        let mut a = Aliases::default();
        a.add_vite_config(
            r#"export default {
              resolve: { alias: [
                { find: '@components', replacement: path.resolve('src/components') },
                { find: /^~\//, replacement: '/src/' },
                { find: /^#app(.*)$/, replacement: '/app$1' },
              ] },
            }"#,
        );
        assert!(a.matches("@components/Button"));
        assert!(a.matches("~/x"));
        assert!(a.matches("#app/y"));
        assert!(!a.matches("~x"));
        assert!(!a.matches("replacement"));
    }

    #[test]
    fn regex_prefixes() {
        assert_eq!(regex_prefix(r"/^@\//").as_deref(), Some("@/"));
        assert_eq!(regex_prefix(r"/^~/").as_deref(), Some("~"));
        assert_eq!(regex_prefix(r"/^abc?/").as_deref(), Some("ab"));
        assert_eq!(regex_prefix(r"/^\w+/"), None);
        assert_eq!(regex_prefix(r"/x/"), None);
    }

    #[test]
    fn jsonc_comments_and_trailing_commas() {
        let s = strip_jsonc(
            "{\n // c\n \"a\": \"//not\", /* b */ \"b\": [1, 2,], \"c\": {\"d\": 1,/*x*/},\n}",
        );
        let v: serde_json::Value = serde_json::from_str(&s).expect(&s);
        assert_eq!(v["a"], "//not");
        assert_eq!(v["b"], serde_json::json!([1, 2]));
        assert_eq!(v["c"]["d"], 1);
    }

    #[test]
    fn tsconfig_paths_extends_and_references() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("tsconfig.json"),
            r##"{
              // solution-style, as `npm create vite` writes it
              "files": [],
              "references": [{ "path": "./tsconfig.app.json" }],
              "compilerOptions": { "paths": { "#lib": ["./lib/index.ts"], }, },
            }"##,
        )
        .unwrap();
        std::fs::write(
            root.join("tsconfig.app.json"),
            r#"{ "extends": "./tsconfig.base", "compilerOptions": { /* x */ "paths": { "@/*": ["./src/*"] } } }"#,
        )
        .unwrap();
        std::fs::write(
            root.join("tsconfig.base.json"),
            r#"{ "compilerOptions": { "paths": { "~/*": ["./*"], "*": ["./types/*"] } } }"#,
        )
        .unwrap();
        let a = Aliases::load(root);
        assert!(a.matches("#lib"));
        assert!(a.matches("@/components/x"));
        assert!(a.matches("~/x"));
        assert!(
            !a.matches("react"),
            "a lone `*` path must not swallow every package"
        );
    }

    #[test]
    fn base_url_makes_top_level_entries_importable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/components")).unwrap();
        std::fs::write(root.join("src/utils.js"), "").unwrap();
        std::fs::write(
            root.join("jsconfig.json"),
            r#"{ "compilerOptions": { "baseUrl": "src" } }"#,
        )
        .unwrap();
        let a = Aliases::load(root);
        assert!(a.matches("components/Button"));
        assert!(a.matches("utils"));
        assert!(!a.matches("lodash"));
    }

    #[test]
    fn base_url_is_inherited_through_extends_and_works_beside_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/components")).unwrap();
        std::fs::create_dir_all(root.join("config")).unwrap();
        std::fs::write(root.join("src/utils.ts"), "").unwrap();
        std::fs::write(root.join("vite.config.js"), "").unwrap();
        std::fs::write(root.join("index.html"), "").unwrap();
        // The base config sets baseUrl relative to itself: `..` is the project root.
        std::fs::write(
            root.join("config/tsconfig.base.json"),
            r#"{ "compilerOptions": { "baseUrl": ".." } }"#,
        )
        .unwrap();
        std::fs::write(
            root.join("tsconfig.json"),
            r#"{ "extends": "./config/tsconfig.base.json", "compilerOptions": { "paths": { "@/*": ["src/*"] } } }"#,
        )
        .unwrap();
        let a = Aliases::load(root);
        assert!(a.matches("src/utils"), "a folder under baseUrl");
        assert!(a.matches("src"));
        assert!(a.matches("@/utils"), "paths still apply");
        // `vite.config.js` is not the module `vite`; `index.html` is not `index`.
        assert!(!a.matches("vite"));
        assert!(!a.matches("index"));
        assert!(!a.matches("react"));
        // Created after loading: still found (checked on disk when asked).
        std::fs::write(root.join("helpers.js"), "").unwrap();
        assert!(a.matches("helpers/format"));
        // A child's own baseUrl wins over the inherited one.
        std::fs::write(
            root.join("tsconfig.json"),
            r#"{ "extends": "./config/tsconfig.base.json", "compilerOptions": { "baseUrl": "src" } }"#,
        )
        .unwrap();
        let a = Aliases::load(root);
        assert!(a.matches("components/Button"));
        assert!(!a.matches("src/utils"), "the root is no longer a baseUrl");
    }

    #[test]
    fn wildcard_with_suffix() {
        let mut a = Aliases::default();
        a.add("icons/*.svg");
        assert!(a.matches("icons/home.svg"));
        assert!(!a.matches("icons/home.png"));
        assert!(!a.matches("icons.svg"));
        assert!(Aliases::default().is_empty());
        assert!(!Aliases::default().matches("anything"));
    }
}
