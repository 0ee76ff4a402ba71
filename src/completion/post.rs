//! Makes a model's answer safe to insert at the cursor: cut at end-of-text tokens, take the code
//! out of markdown fences, drop an echo of the text before the cursor, keep one line when code
//! follows the cursor on its line, stop where the answer leaves the enclosing block (a closer
//! the suffix already has is not repeated; a mismatched closer ends it), and never repeat what
//! follows the cursor (character overlap, and whole lines equal to the next ones).

use super::context::FimContext;

/// Tokens some servers leave in the text; everything from one of them on is dropped.
const END_TOKENS: &[&str] = &[
    "<|endoftext|>",
    "<|file_sep|>",
    "<|fim_pad|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_prefix|>",
    "<|im_end|>",
    "<|eot_id|>",
    "<EOT>",
    " <EOT>",
    "</s>",
    "<｜end▁of▁sentence｜>",
    "<｜fim▁end｜>",
];

/// The marker the chat prompt puts at the cursor; a model that repeats it has it removed.
pub const CURSOR_MARKER: &str = "<CURSOR>";

fn cut_end_tokens(s: &str) -> &str {
    let mut end = s.len();
    for t in END_TOKENS {
        if let Some(i) = s.find(t) {
            end = end.min(i);
        }
    }
    &s[..end]
}

/// The body of the first fenced block when the answer opens one in its first two lines;
/// otherwise the text before a closing fence, if any.
fn strip_fences(s: &str) -> &str {
    let mut offset = 0;
    for (n, line) in s.split_inclusive('\n').enumerate() {
        if n >= 2 {
            break;
        }
        if line.trim_start().starts_with("```") {
            let body = &s[offset + line.len()..];
            return match closing_fence(body) {
                Some(i) => &body[..i],
                None => body,
            };
        }
        if !line.trim().is_empty() && n == 0 && !line.trim_end().ends_with(':') {
            // Code on the first line: no prose introduction, so no opening fence expected.
            break;
        }
        offset += line.len();
    }
    match closing_fence(s) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// Byte index of the line break before a line that starts with ``` (or 0 if it is the first).
fn closing_fence(s: &str) -> Option<usize> {
    if s.trim_start_matches([' ', '\t']).starts_with("```") {
        return Some(0);
    }
    let mut at = 0;
    for line in s.split_inclusive('\n') {
        if at > 0 && line.trim_start().starts_with("```") {
            // Drop the line break before the fence too.
            let before = &s[..at];
            return Some(
                before
                    .strip_suffix('\n')
                    .map_or(at, |b| b.trim_end_matches('\r').len()),
            );
        }
        at += line.len();
    }
    None
}

/// Drops a repeat of the text just before the cursor (the current line, maybe with the few
/// lines above it) from the start of the answer.
fn strip_echo<'a>(s: &'a str, ctx: &FimContext) -> &'a str {
    let p = ctx.prefix.as_str();
    let mut start = p.len().saturating_sub(ctx.line_prefix.len());
    if !p.is_char_boundary(start) {
        start = 0;
    }
    let mut best = 0;
    for _ in 0..6 {
        let tail = &p[start..];
        if tail.chars().filter(|c| !c.is_whitespace()).count() >= 3 {
            if s.starts_with(tail) {
                best = best.max(tail.len());
            } else {
                let ts = s.trim_start();
                let tt = tail.trim_start();
                if ts.starts_with(tt) {
                    best = best.max(s.len() - ts.len() + tt.len());
                }
            }
        }
        if start == 0 {
            break;
        }
        start = p[..start - 1].rfind('\n').map_or(0, |i| i + 1);
    }
    &s[best..]
}

fn opener(close: char) -> char {
    match close {
        ')' => '(',
        ']' => '[',
        _ => '{',
    }
}

/// Where the text before byte `i` should end when the character at `i` must go: at the start
/// of its line (with the line break) when only indentation precedes it there.
fn cut_before(s: &str, i: usize) -> usize {
    let line_start = s[..i].rfind('\n').map_or(0, |n| n + 1);
    if s[line_start..i].trim().is_empty() {
        s[..line_start]
            .strip_suffix('\n')
            .map_or(line_start, |b| b.trim_end_matches('\r').len())
    } else {
        i
    }
}

/// Walks `s` outside string literals, calling `f(index, char)` for each bracket.
fn brackets(s: &str, mut f: impl FnMut(usize, char) -> bool) {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q || (c == '\n' && q != '`') {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' | ')' | ']' | '}' if !f(i, c) => return,
            _ => {}
        }
    }
}

/// The brackets `s` leaves open, innermost last.
pub fn unclosed(s: &str) -> Vec<char> {
    let mut stack = Vec::new();
    brackets(s, |_, c| {
        match c {
            '(' | '[' | '{' => stack.push(c),
            _ => {
                if stack.last() == Some(&opener(c)) {
                    stack.pop();
                }
            }
        }
        true
    });
    stack
}

/// Scans brackets outside string literals. `Some((cut, final))` when the answer leaves its
/// block: a closer with no opener in the answer that the suffix already starts with (cut
/// before it), one the suffix lacks (kept, cut at the end of its line; `final` once that line
/// has ended), or a closer that matches neither the answer's nor the prefix's innermost open
/// bracket (cut before it). `open`: brackets left open before the cursor.
pub fn block_cut(s: &str, suffix: &str, open: &[char]) -> Option<(usize, bool)> {
    let mut stack: Vec<char> = Vec::new();
    let mut out = None;
    brackets(s, |i, c| {
        match c {
            '(' | '[' | '{' => stack.push(c),
            _ => match stack.last() {
                Some(&o) if o == opener(c) => {
                    stack.pop();
                }
                Some(_) => {
                    out = Some((cut_before(s, i), true));
                    return false;
                }
                None => {
                    out = Some(
                        if open.last().is_some_and(|&o| o != opener(c))
                            || suffix.trim_start().starts_with(c)
                        {
                            (cut_before(s, i), true)
                        } else {
                            match s[i..].find('\n') {
                                Some(n) => (i + n, true),
                                None => (s.len(), false),
                            }
                        },
                    );
                    return false;
                }
            },
        }
        true
    });
    out
}

/// The longest `k` such that `s` ends with the first `k` bytes of `suffix`.
fn char_overlap(s: &str, suffix: &str) -> usize {
    let max = s.len().min(suffix.len()).min(4096);
    (1..=max)
        .rev()
        .find(|&k| suffix.is_char_boundary(k) && s.ends_with(&suffix[..k]))
        .unwrap_or(0)
}

/// Drops the answer's last lines when they equal (ignoring indentation) the next lines after
/// the cursor's line, so an accepted completion never duplicates the following line.
fn drop_repeated_lines<'a>(s: &'a str, ctx: &FimContext) -> &'a str {
    let next: Vec<&str> = ctx
        .suffix
        .split('\n')
        .skip(if ctx.line_suffix.trim().is_empty() {
            1
        } else {
            0
        })
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(16)
        .collect();
    let lines: Vec<&str> = s.split('\n').collect();
    if lines.len() < 2 || next.is_empty() {
        return s;
    }
    // Only whole lines after the first (the first continues the cursor's line).
    for m in (1..lines.len()).rev() {
        let tail: Vec<&str> = lines[lines.len() - m..]
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        if tail.is_empty() || tail.len() > next.len() {
            continue;
        }
        if tail[..] == next[..tail.len()] {
            let keep: usize = lines[..lines.len() - m].iter().map(|l| l.len() + 1).sum();
            return s[..keep.saturating_sub(1)].trim_end_matches('\r');
        }
    }
    s
}

/// During a stream: the text so far already holds everything that will be kept, so the rest
/// of the answer can be dropped (and the connection closed).
pub fn done_early(text: &str, ctx: &FimContext) -> bool {
    let t = cut_end_tokens(text);
    if t.len() < text.len() {
        return true;
    }
    if ctx.single_line() && t.trim_start().contains('\n') {
        return true;
    }
    matches!(
        block_cut(t, &ctx.suffix, &ctx.open_brackets),
        Some((_, true))
    )
}

/// The answer cleaned for insertion at the cursor (maybe empty).
pub fn clean(raw: &str, ctx: &FimContext) -> String {
    let s = cut_end_tokens(raw);
    let s = strip_fences(s);
    let owned = s.replace(CURSOR_MARKER, "");
    let s = strip_echo(&owned, ctx);
    let mut s = s;
    if ctx.single_line() {
        if let Some(i) = s.find('\n') {
            s = &s[..i];
        }
    }
    if let Some((cut, _)) = block_cut(s, &ctx.suffix, &ctx.open_brackets) {
        s = &s[..cut];
    }
    let s = drop_repeated_lines(s, ctx);
    let k = char_overlap(s, &ctx.suffix);
    let s = &s[..s.len() - k];
    let s = s.trim_end_matches([' ', '\t']);
    let s = if s.trim().is_empty() {
        ""
    } else if ctx.line_suffix.trim().is_empty() {
        // Nothing follows on this line: trailing blank lines would only push the suffix down.
        s.trim_end()
    } else {
        s
    };
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::super::context::{build, ContextOptions};
    use super::*;

    /// `|` marks the cursor.
    fn ctx(doc: &str) -> FimContext {
        let at = doc.find('|').expect("cursor mark");
        let text = format!("{}{}", &doc[..at], &doc[at + 1..]);
        build(&text, at, "a.ts", &[], &ContextOptions::default())
    }

    #[test]
    fn fences_are_stripped() {
        let c = ctx("const a = |\n");
        assert_eq!(clean("```ts\n42;\n```\n", &c), "42;");
        assert_eq!(clean("Here you go:\n```\n42;\n```", &c), "42;");
        assert_eq!(clean("42;\n```", &c), "42;");
        assert_eq!(clean("42;", &c), "42;");
    }

    #[test]
    fn end_tokens_cut_the_answer() {
        let c = ctx("let x = |\n");
        assert_eq!(clean("1;<|endoftext|>garbage", &c), "1;");
        assert_eq!(clean("1; <EOT>", &c), "1;");
    }

    #[test]
    fn prefix_echo_is_dropped() {
        let c = ctx("function f() {\n  const total = |\n}\n");
        assert_eq!(clean("const total = items.length;", &c), "items.length;");
        assert_eq!(
            clean("function f() {\n  const total = items.length;", &c),
            "items.length;"
        );
        // Not an echo: kept whole.
        assert_eq!(clean("items.length;", &c), "items.length;");
    }

    #[test]
    fn suffix_overlap_is_removed() {
        let c = ctx("console.log(|);\n");
        assert_eq!(clean("\"hi\");", &c), "\"hi\"");
        let c = ctx("if (a) {\n  |\n  return b;\n}\n");
        // The model repeats the next line: it is dropped, never duplicated.
        assert_eq!(clean("log(a);\n  return b;", &c), "log(a);");
    }

    #[test]
    fn stops_at_the_end_of_the_enclosing_block() {
        let c = ctx("function f() {\n  |\n}\n\nfunction g() {}\n");
        assert_eq!(
            clean("return 1;\n}\n\nfunction h() {\n  return 2;\n}", &c),
            "return 1;"
        );
        // No closer after the cursor: keep the model's, stop after it.
        let c = ctx("function f() {\n  |");
        assert_eq!(clean("return 1;\n}\n\nfunction h() {}", &c), "return 1;\n}");
    }

    #[test]
    fn brackets_balance_where_the_model_overran() {
        let c = ctx("const v = [1, |]);\n");
        assert_eq!(clean("2, 3]);", &c), "2, 3");
        let c = ctx("call(|\n");
        // `]` closes nothing it opened: cut there.
        assert_eq!(clean("a, (b)]", &c), "a, (b)");
        // Brackets inside strings do not count.
        let c = ctx("log(|)\n");
        assert_eq!(clean("\"a)\" + x)", &c), "\"a)\" + x");
    }

    #[test]
    fn single_line_when_code_follows() {
        let c = ctx("foo(|, b)\n");
        assert_eq!(clean("a\nmore lines", &c), "a");
    }

    #[test]
    fn whitespace_only_is_empty() {
        let c = ctx("x|\n");
        assert_eq!(clean("\n\n  ", &c), "");
        assert_eq!(clean("", &c), "");
    }

    #[test]
    fn done_early_signals_a_finished_answer() {
        let c = ctx("foo(|, b)\n");
        assert!(!done_early("abc", &c));
        assert!(done_early("abc\n", &c));
        let c = ctx("function f() {\n  |\n}\n");
        assert!(!done_early("return 1;\n", &c));
        assert!(done_early("return 1;\n}", &c));
    }
}
