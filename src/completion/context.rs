//! What the model sees: the text around the cursor, the file's imports that fell outside that
//! window, and short snippets of the open files that share the most identifiers with the code
//! being written — all under one token budget (≈ 4 bytes a token), the window first.

use std::collections::HashSet;

#[derive(Debug, Clone, Copy)]
pub struct ContextOptions {
    /// Lines of the file before the cursor; half as many after it (at least 8).
    pub context_lines: usize,
    /// Everything sent (window, imports, snippets), in tokens.
    pub budget_tokens: usize,
    /// Related open files included at most.
    pub max_snippets: usize,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            context_lines: 80,
            budget_tokens: 2048,
            max_snippets: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snippet {
    /// Path as shown to the model (relative to the project when possible).
    pub path: String,
    pub text: String,
}

#[derive(Debug, Clone, Default)]
pub struct FimContext {
    /// Window before the cursor (ends at the cursor).
    pub prefix: String,
    /// Window after the cursor (starts at the cursor).
    pub suffix: String,
    /// The current line up to the cursor, and from the cursor to its end.
    pub line_prefix: String,
    pub line_suffix: String,
    /// Import lines of the file that are above the prefix window.
    pub imports: String,
    pub snippets: Vec<Snippet>,
    /// Brackets opened before the cursor and not closed there, innermost last.
    pub open_brackets: Vec<char>,
    /// The document's path as shown to the model.
    pub path: String,
    /// Lowercased extension (`ts`, `py`, …); empty when unknown.
    pub language: String,
}

const BYTES_PER_TOKEN: usize = 4;

/// The largest char boundary `<= i`.
pub fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The smallest char boundary `>= i`.
fn ceil_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Byte offset where the line `n` lines above the one holding `at` starts.
fn lines_back(text: &str, at: usize, n: usize) -> usize {
    let bytes = &text.as_bytes()[..at];
    memchr::memrchr_iter(b'\n', bytes)
        .nth(n)
        .map_or(0, |i| i + 1)
}

/// Byte offset of the end of the line `n` lines below the one holding `at`.
fn lines_forward(text: &str, at: usize, n: usize) -> usize {
    memchr::memchr_iter(b'\n', &text.as_bytes()[at..])
        .nth(n)
        .map_or(text.len(), |i| at + i)
}

/// A line that brings names into scope, in the languages people write apps in.
fn is_import(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("import ")
        || l.starts_with("import{")
        || l.starts_with("from ") && l.contains(" import ")
        || l.starts_with("use ")
        || l.starts_with("#include")
        || l.starts_with("require ")
        || (l.starts_with("const ") || l.starts_with("let ") || l.starts_with("var "))
            && l.contains("require(")
        || l.starts_with("@import ")
}

/// Keywords every file shares: they say nothing about relatedness.
const COMMON: &[&str] = &[
    "const",
    "let",
    "var",
    "function",
    "return",
    "export",
    "import",
    "from",
    "default",
    "this",
    "new",
    "class",
    "def",
    "self",
    "await",
    "async",
    "true",
    "false",
    "null",
    "undefined",
    "type",
    "interface",
    "public",
    "private",
    "static",
    "void",
    "int",
    "string",
    "number",
    "for",
    "while",
    "else",
    "elif",
    "pub",
    "impl",
    "struct",
    "enum",
    "use",
    "mut",
    "and",
    "not",
    "None",
    "True",
    "False",
    "props",
    "div",
    "span",
    "className",
    "the",
];

fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .filter(|w| w.len() >= 3 && !w.as_bytes()[0].is_ascii_digit() && !COMMON.contains(w))
}

/// The comment leader for snippet headers given to plain-completion endpoints.
pub fn comment_leader(language: &str) -> &'static str {
    match language {
        "py" | "rb" | "sh" | "bash" | "zsh" | "yaml" | "yml" | "toml" | "r" | "pl" | "ex"
        | "exs" | "nim" | "jl" => "#",
        "lua" | "sql" | "hs" | "elm" => "--",
        "html" | "xml" | "svelte" | "vue" | "md" => "<!--",
        "css" | "scss" | "less" => "/*",
        _ => "//",
    }
}

fn extension(path: &str) -> String {
    std::path::Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default()
}

/// The best `window`-line region of `text` by hits of `wanted` identifiers, and its score.
fn best_region(text: &str, wanted: &HashSet<&str>, window: usize) -> (usize, String) {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return (0, String::new());
    }
    let hits: Vec<usize> = lines
        .iter()
        .map(|l| {
            let mut seen = HashSet::new();
            identifiers(l)
                .filter(|w| wanted.contains(w) && seen.insert(*w))
                .count()
        })
        .collect();
    let mut best = (0usize, 0usize);
    let step = (window / 2).max(1);
    let mut start = 0;
    loop {
        let end = (start + window).min(lines.len());
        let score: usize = hits[start..end].iter().sum();
        if score > best.0 {
            best = (score, start);
        }
        if end == lines.len() {
            break;
        }
        start += step;
    }
    let end = (best.1 + window).min(lines.len());
    (best.0, lines[best.1..end].join("\n"))
}

/// Builds the context for a cursor at byte `cursor` of `text` (clamped to a char boundary).
/// `others`: (path, text) of the other open documents.
pub fn build(
    text: &str,
    cursor: usize,
    path: &str,
    others: &[(String, String)],
    opts: &ContextOptions,
) -> FimContext {
    let cursor = floor_boundary(text, cursor);
    let budget = opts.budget_tokens.max(64) * BYTES_PER_TOKEN;
    let after_lines = (opts.context_lines / 2).max(8);
    let mut start = lines_back(text, cursor, opts.context_lines);
    let mut end = lines_forward(text, cursor, after_lines);
    // Three quarters of the budget may go to the text before the cursor, the rest after it.
    let before_cap = budget * 3 / 4;
    if cursor - start > before_cap {
        start = ceil_boundary(text, cursor - before_cap);
    }
    let after_cap = budget.saturating_sub(cursor - start).max(budget / 8);
    if end - cursor > after_cap {
        end = floor_boundary(text, cursor + after_cap);
    }
    let prefix = &text[start..cursor];
    let suffix = &text[cursor..end];
    let line_start = lines_back(text, cursor, 0);
    let line_end = lines_forward(text, cursor, 0);
    let mut left = budget.saturating_sub(prefix.len() + suffix.len());

    let mut imports = String::new();
    for line in text[..start].lines().filter(|l| is_import(l)) {
        if imports.len() + line.len() + 1 > left / 2 {
            break;
        }
        imports.push_str(line);
        imports.push('\n');
    }
    left = left.saturating_sub(imports.len());

    let mut snippets = Vec::new();
    if opts.max_snippets > 0 && left > 64 {
        // The code being written: the last lines before the cursor and the first after it.
        let near = &text[lines_back(text, cursor, 20)..lines_forward(text, cursor, 5)];
        let wanted: HashSet<&str> = identifiers(near).collect();
        let mut scored: Vec<(usize, &str, String)> = others
            .iter()
            .filter(|(p, _)| p != path)
            .map(|(p, t)| {
                let stem = std::path::Path::new(p)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("");
                // A file this one imports is related whatever the words say.
                let imported = !stem.is_empty()
                    && (imports.contains(stem)
                        || prefix.lines().any(|l| is_import(l) && l.contains(stem)));
                let (score, region) = best_region(t, &wanted, 20);
                (score + if imported { 5 } else { 0 }, p.as_str(), region)
            })
            .filter(|(s, _, r)| *s > 0 && !r.trim().is_empty())
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        for (_, p, region) in scored.into_iter().take(opts.max_snippets) {
            let cost = region.len() + p.len() + 16;
            if cost > left {
                continue;
            }
            left -= cost;
            snippets.push(Snippet {
                path: p.to_string(),
                text: region,
            });
        }
    }

    FimContext {
        open_brackets: super::post::unclosed(prefix),
        prefix: prefix.to_string(),
        suffix: suffix.to_string(),
        line_prefix: text[line_start..cursor].to_string(),
        line_suffix: text[cursor..line_end].trim_end_matches('\r').to_string(),
        imports,
        snippets,
        path: path.to_string(),
        language: extension(path),
    }
}

impl FimContext {
    /// The cursor is inside a line with code after it: only the rest of this line is wanted.
    pub fn single_line(&self) -> bool {
        !self.line_suffix.trim().is_empty()
            && !self
                .line_suffix
                .trim()
                .chars()
                .all(|c| matches!(c, ')' | ']' | '}' | '"' | '\'' | '`' | ';' | ',' | '>'))
    }

    /// Imports and snippets as a comment-headed preamble, for endpoints that take one prompt.
    pub fn preamble(&self) -> String {
        let lead = comment_leader(&self.language);
        let close = match lead {
            "<!--" => " -->",
            "/*" => " */",
            _ => "",
        };
        let mut s = String::new();
        for sn in &self.snippets {
            s.push_str(&format!("{lead} Path: {}{close}\n", sn.path));
            for line in sn.text.lines() {
                s.push_str(&format!("{lead} {line}{close}\n"));
            }
        }
        if !self.path.is_empty() && !s.is_empty() {
            s.push_str(&format!("{lead} Path: {}{close}\n", self.path));
        }
        s.push_str(&self.imports);
        s
    }

    /// Preamble + prefix: the `prompt` of plain FIM endpoints.
    pub fn prompt(&self) -> String {
        let mut p = self.preamble();
        p.push_str(&self.prefix);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(lines: usize, tokens: usize) -> ContextOptions {
        ContextOptions {
            context_lines: lines,
            budget_tokens: tokens,
            max_snippets: 3,
        }
    }

    #[test]
    fn windows_split_at_the_cursor() {
        let text = "import a from 'a';\nfn x() {\n  let y = 1;\n}\n";
        let cursor = text.find("1;").unwrap();
        let c = build(text, cursor, "src/x.ts", &[], &opts(10, 512));
        assert_eq!(c.prefix, &text[..cursor]);
        assert_eq!(c.suffix, &text[cursor..]);
        assert_eq!(c.line_prefix, "  let y = ");
        assert_eq!(c.line_suffix, "1;");
        assert!(
            c.imports.is_empty(),
            "imports inside the window are not repeated"
        );
        assert_eq!(c.language, "ts");
    }

    #[test]
    fn imports_above_the_window_are_kept() {
        let mut text = String::from("import React from 'react';\nimport { api } from './api';\n");
        for i in 0..100 {
            text.push_str(&format!("const v{i} = {i};\n"));
        }
        text.push_str("const r = ");
        let c = build(&text, text.len(), "a.tsx", &[], &opts(10, 2048));
        assert!(c.prefix.starts_with("const v90"), "{:?}", &c.prefix[..20]);
        assert_eq!(
            c.imports,
            "import React from 'react';\nimport { api } from './api';\n"
        );
    }

    #[test]
    fn budget_bounds_the_prefix_on_a_char_boundary() {
        let text = "é".repeat(5000);
        let c = build(&text, text.len(), "a.txt", &[], &opts(10, 64));
        assert!(c.prefix.len() <= 64 * 4 * 3 / 4);
        assert!(!c.prefix.is_empty());
        // Cursor inside a character is clamped to its start.
        let c = build("aé", 2, "a.txt", &[], &opts(10, 64));
        assert_eq!(c.prefix, "a");
        assert_eq!(c.suffix, "é");
    }

    #[test]
    fn related_open_files_ranked_by_shared_identifiers() {
        let text = "const total = computeCartTotal(cartItems, ";
        let others = vec![
            ("src/unrelated.ts".to_string(), "export const colors = ['red'];\n".to_string()),
            (
                "src/cart.ts".to_string(),
                "export function computeCartTotal(cartItems: Item[], tax: number) {\n  return 0;\n}\n"
                    .to_string(),
            ),
            ("a.ts".to_string(), "computeCartTotal".to_string()),
        ];
        let c = build(text, text.len(), "a.ts", &others, &opts(10, 2048));
        assert_eq!(c.snippets.len(), 1, "{:?}", c.snippets);
        assert_eq!(c.snippets[0].path, "src/cart.ts");
        assert!(c.snippets[0]
            .text
            .contains("computeCartTotal(cartItems: Item[]"));
        let p = c.prompt();
        assert!(
            p.starts_with("// Path: src/cart.ts\n// export function"),
            "{p}"
        );
        assert!(p.ends_with("// Path: a.ts\nconst total = computeCartTotal(cartItems, "));
    }

    #[test]
    fn single_line_when_code_follows_the_cursor() {
        let c = build("foo(bar)", 4, "a.js", &[], &opts(10, 512));
        assert!(c.single_line());
        let c = build("foo()", 4, "a.js", &[], &opts(10, 512));
        assert!(!c.single_line(), "only closers after the cursor");
        let c = build("fn a() {\n", 9, "a.rs", &[], &opts(10, 512));
        assert!(!c.single_line());
    }
}
