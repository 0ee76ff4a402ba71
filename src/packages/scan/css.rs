//! Stylesheets: `@import`, Sass `@use`/`@forward` and Tailwind `@plugin` targets.

use memchr::{memchr, memchr2, memchr3, memmem};

use super::{Import, ImportKind};

/// Finds `@import`, Sass `@use`/`@forward` and Tailwind `@plugin` targets in a stylesheet. Strings
/// and comments elsewhere are skipped; `//` counts as a comment only where a rule could start,
/// so `url(http://…)` is safe.
pub fn scan_css(src: &str) -> Vec<Import> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut rule_start = true;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |k| i + 2 + k + 2);
                continue;
            }
            b'/' if rule_start && b.get(i + 1) == Some(&b'/') => {
                i = memchr(b'\n', &b[i..]).map_or(b.len(), |k| i + k);
                continue;
            }
            b'"' | b'\'' => {
                i = css_string_end(b, i + 1, c).1;
                rule_start = false;
                continue;
            }
            b'@' => {
                let s = i + 1;
                let mut e = s;
                while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'-') {
                    e += 1;
                }
                let word = &b[s..e];
                i = e;
                rule_start = false;
                if word.eq_ignore_ascii_case(b"import")
                    || matches!(word, b"use" | b"forward" | b"plugin")
                {
                    i = css_targets(src, e, &mut out);
                }
                continue;
            }
            b';' | b'{' | b'}' => rule_start = true,
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => rule_start = false,
        }
        i += 1;
    }
    out
}

/// (end of content, position after the closing quote) for a CSS string.
fn css_string_end(b: &[u8], mut i: usize, quote: u8) -> (usize, usize) {
    while i < b.len() {
        match memchr3(quote, b'\\', b'\n', &b[i..]) {
            None => break,
            Some(k) => {
                let j = i + k;
                match b[j] {
                    b'\\' => i = j + 2,
                    b'\n' => return (j, j),
                    _ => return (j, j + 1),
                }
            }
        }
    }
    (b.len(), b.len())
}

fn skip_css_space(b: &[u8], mut i: usize) -> usize {
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&b'/') && b.get(i + 1) == Some(&b'*') {
            i = memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |k| i + 2 + k + 2);
        } else {
            return i;
        }
    }
}

/// Reads `'a'`, `url(a)`, `url("a")`, and Sass's comma lists of them, after an at-keyword.
fn css_targets(src: &str, mut i: usize, out: &mut Vec<Import>) -> usize {
    let b = src.as_bytes();
    loop {
        i = skip_css_space(b, i);
        let Some(&c) = b.get(i) else {
            return i;
        };
        let range = if c == b'"' || c == b'\'' {
            let (end, next) = css_string_end(b, i + 1, c);
            let r = i + 1..end;
            i = next;
            r
        } else if b.len() >= i + 4 && b[i..i + 4].eq_ignore_ascii_case(b"url(") {
            i = skip_css_space(b, i + 4);
            match b.get(i) {
                Some(&q) if q == b'"' || q == b'\'' => {
                    let (end, next) = css_string_end(b, i + 1, q);
                    let r = i + 1..end;
                    i = memchr(b')', &b[next..]).map_or(b.len(), |k| next + k + 1);
                    r
                }
                _ => {
                    let close = memchr2(b')', b'\n', &b[i..]).map_or(b.len(), |k| i + k);
                    let mut end = close;
                    while end > i && b[end - 1].is_ascii_whitespace() {
                        end -= 1;
                    }
                    let r = i..end;
                    i = (close + 1).min(b.len());
                    r
                }
            }
        } else {
            return i;
        };
        if let Some(spec) = src.get(range.clone()).filter(|s| !s.is_empty()) {
            out.push(Import {
                specifier: spec.to_owned(),
                range,
                kind: ImportKind::CssImport,
                type_only: false,
            });
        }
        i = skip_css_space(b, i);
        if b.get(i) == Some(&b',') {
            i += 1;
        } else {
            return i;
        }
    }
}
