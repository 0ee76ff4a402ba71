//! The text outside all blocks: fenced blocks in it that name a file (` ```jsx path="…" ` or a
//! first-line `// File: …` comment) become files, and what is left is collapsed into prose.

use memchr::memchr;

use super::content::normalize_trailing;
use super::tags::find_attr;
use super::{ParsedFile, PROSE_CAP};

/// Blocks taken out of the prose leave blank lines behind; one blank line is enough.
pub(super) fn collapse_blank_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(PROSE_CAP + 1));
    let mut blank_run = 0;
    let mut pos = 0;
    while pos < text.len() && out.len() <= PROSE_CAP {
        let (line, next) = line_at(text, pos);
        if line.trim().is_empty() {
            blank_run += 1;
        } else {
            blank_run = 0;
        }
        if blank_run <= 1 {
            out.push_str(text.get(pos..next).unwrap_or(""));
        }
        pos = next;
    }
    out
}

/// One line starting at `pos` (without its line ending) and where the next line starts.
fn line_at(text: &str, pos: usize) -> (&str, usize) {
    let rest = text.get(pos..).unwrap_or("");
    match memchr(b'\n', rest.as_bytes()) {
        Some(n) => (rest[..n].trim_end_matches('\r'), pos + n + 1),
        None => (rest, text.len()),
    }
}

/// A fence opening line: its backtick count and info string.
fn fence_open(line: &str) -> Option<(usize, &str)> {
    let t = line.trim_start_matches([' ', '\t']);
    let ticks = t.bytes().take_while(|&c| c == b'`').count();
    if ticks < 3 {
        return None;
    }
    let info = &t[ticks..];
    if info.contains('`') {
        return None;
    }
    Some((ticks, info.trim()))
}

fn fence_close(line: &str, ticks: usize) -> bool {
    let t = line.trim();
    t.len() >= ticks && t.bytes().all(|c| c == b'`')
}

/// `path="…"` / `file="…"` / `filename="…"` in a fence's info string.
fn info_path(info: &str) -> Option<String> {
    let b = info.as_bytes();
    for key in [&b"path"[..], b"file", b"filename", b"filepath"] {
        if let Some((s, e)) = find_attr(b, 0, b.len(), key) {
            let p = info.get(s..e).unwrap_or("").trim();
            if !p.is_empty() {
                return Some(p.to_string());
            }
        }
    }
    None
}

/// A first line such as `// File: src/A.jsx`: the path and the body after that line.
fn comment_path(body: &str) -> Option<(String, &str)> {
    let (line, next) = line_at(body, 0);
    let l = line.trim();
    let inner = if let Some(r) = l.strip_prefix("{/*") {
        r.trim_end().strip_suffix("*/}").unwrap_or(r)
    } else if let Some(r) = l.strip_prefix("//") {
        r
    } else if let Some(r) = l.strip_prefix("/*") {
        r.trim_end().strip_suffix("*/").unwrap_or(r)
    } else if let Some(r) = l.strip_prefix("<!--") {
        r.trim_end().strip_suffix("-->").unwrap_or(r)
    } else {
        l.strip_prefix('#')?
    };
    let inner = inner.trim();
    let key = ["file:", "filename:", "filepath:", "path:"]
        .into_iter()
        .find(|k| {
            inner
                .get(..k.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(k))
        })?;
    let path = inner[key.len()..]
        .trim()
        .trim_matches(|c| matches!(c, '"' | '\'' | '`'));
    if path.is_empty() || path.contains(char::is_whitespace) {
        return None;
    }
    Some((path.to_string(), body.get(next..).unwrap_or("")))
}

/// Finds fenced blocks naming a file in the prose. Returns them with their offset in
/// `text`, and the prose without them.
pub(super) fn scan_fences(text: &str) -> (Vec<(usize, ParsedFile)>, String) {
    let mut files = Vec::new();
    let mut prose = String::new();
    let mut copied = 0;
    let mut pos = 0;
    while pos < text.len() {
        let (line, next) = line_at(text, pos);
        let Some((ticks, info)) = fence_open(line) else {
            pos = next;
            continue;
        };
        let mut p = next;
        let mut close = None;
        while p < text.len() {
            let (l, n) = line_at(text, p);
            if fence_close(l, ticks) {
                close = Some((p, n));
                break;
            }
            p = n;
        }
        let body_end = close.map_or(text.len(), |c| c.0);
        let block_end = close.map_or(text.len(), |c| c.1);
        let mut body = text.get(next..body_end).unwrap_or("");
        let mut path = info_path(info);
        if path.is_none() {
            if let Some((p, rest)) = comment_path(body) {
                path = Some(p);
                body = rest;
            }
        }
        if let Some(path) = path {
            prose.push_str(text.get(copied..pos).unwrap_or(""));
            copied = block_end;
            let mut content = body.to_string();
            if close.is_some() {
                normalize_trailing(&mut content);
            }
            files.push((
                pos,
                ParsedFile {
                    path,
                    content,
                    complete: close.is_some(),
                },
            ));
        }
        pos = block_end;
    }
    prose.push_str(text.get(copied..).unwrap_or(""));
    (files, prose)
}
