//! A block's content once it closes: a wrapping markdown fence removed (not for markdown
//! files), trailing blank lines collapsed, search/replace text trimmed.

use memchr::memchr;

pub(super) fn is_markdown(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    lower.ends_with(".md") || lower.ends_with(".mdx") || lower.ends_with(".markdown")
}

/// Removes one markdown fence wrapping the whole content (models sometimes add one inside
/// the tag). Skipped for markdown files, where a fenced body is legitimate.
pub(super) fn strip_wrapping_fence(content: &mut String) {
    let lead = content.len() - content.trim_start().len();
    let rest = &content[lead..];
    if !rest.starts_with("```") {
        return;
    }
    let ticks = rest.bytes().take_while(|&c| c == b'`').count();
    let Some(nl) = rest.find('\n') else {
        return;
    };
    if rest[ticks..nl].contains('`') {
        return;
    }
    let body_start = lead + nl + 1;
    let end = content.trim_end().len();
    let last_start = content[..end].rfind('\n').map_or(0, |p| p + 1);
    if last_start < body_start {
        return;
    }
    let last = content[last_start..end].trim();
    if last.len() < ticks || !last.bytes().all(|c| c == b'`') {
        return;
    }
    content.truncate(last_start);
    content.drain(..body_start);
}

/// Trailing blank lines (and the closing tag's indentation) are not content: the file ends
/// with the line ending that follows its last non-blank character, if there is one.
/// Whitespace-only content becomes empty.
pub(super) fn normalize_trailing(content: &mut String) {
    let t = content
        .trim_end_matches(|c: char| c.is_ascii_whitespace())
        .len();
    if t == 0 {
        content.clear();
        return;
    }
    if let Some(p) = memchr(b'\n', &content.as_bytes()[t..]) {
        content.truncate(t + p + 1);
    }
}

/// Search/replace text: drop the closing tag's indentation, then one newline.
pub(super) fn trim_inner_end(text: &mut String) {
    let t = text.trim_end_matches([' ', '\t']).len();
    if text[..t].ends_with('\n') {
        text.truncate(t);
    }
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
}
