//! `<edit>` blocks: replace one unique piece of a file.
//!
//! Models copy the code they want to change imperfectly: indentation,
//! trailing spaces, blank lines and line endings drift. Those drifts are
//! tolerated; anything else (a changed token, a missing line) is a miss that
//! the caller reports, because a guessed edit silently corrupts a file.

use memchr::memmem;

/// Why an edit could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("search text not found")]
    NotFound,
    #[error("search text matches {0} places; add more context")]
    Ambiguous(usize),
    #[error("empty search text")]
    EmptySearch,
}

/// Replaces the one place in `content` that `search` names.
///
/// 1. Exact match (also with `search` converted to the file's line endings);
///    it must be unique.
/// 2. Otherwise whole lines, compared with each line's leading and trailing
///    whitespace ignored and blank lines skipped; it must be unique. The
///    matched lines are replaced by `replace`, re-indented by the difference
///    between the search's first line and the matched first line, with blank
///    lines at the edges of `replace` dropped. An empty `replace` deletes the
///    matched lines.
///
/// The replacement always takes the file's line ending (CRLF or LF).
pub fn apply_search_replace(
    content: &str,
    search: &str,
    replace: &str,
) -> Result<String, EditError> {
    if search.trim().is_empty() {
        return Err(EditError::EmptySearch);
    }
    let crlf = uses_crlf(content);
    let replace_fixed = with_eol(replace, crlf);

    let converted = with_eol(search, crlf);
    let mut candidates = vec![search];
    if converted != search {
        candidates.push(&converted);
    }
    for needle in candidates {
        match find_unique(content, needle) {
            Found::One(at) => {
                return splice(content, at, at + needle.len(), &replace_fixed)
                    .ok_or(EditError::NotFound);
            }
            Found::Many(n) => return Err(EditError::Ambiguous(n)),
            Found::None => {}
        }
    }
    line_match(content, search, replace, crlf)
}

enum Found {
    None,
    One(usize),
    Many(usize),
}

/// Counts every occurrence, overlapping ones too: `aa` in `aaa` is two
/// places, and picking either would be a guess.
fn find_unique(haystack: &str, needle: &str) -> Found {
    let finder = memmem::Finder::new(needle.as_bytes());
    let hay = haystack.as_bytes();
    let mut first = None;
    let mut count = 0usize;
    let mut pos = 0usize;
    while pos <= hay.len() {
        let Some(i) = hay.get(pos..).and_then(|h| finder.find(h)) else {
            break;
        };
        let at = pos + i;
        first.get_or_insert(at);
        count += 1;
        pos = at + 1;
    }
    match (count, first) {
        (1, Some(at)) => Found::One(at),
        (0, _) | (_, None) => Found::None,
        (n, _) => Found::Many(n),
    }
}

/// `content[..start] + insert + content[end..]`, or `None` off a char boundary.
fn splice(content: &str, start: usize, end: usize, insert: &str) -> Option<String> {
    let head = content.get(..start)?;
    let tail = content.get(end..)?;
    let mut out = String::with_capacity(head.len() + insert.len() + tail.len());
    out.push_str(head);
    out.push_str(insert);
    out.push_str(tail);
    Some(out)
}

/// Whether the file's first line ends in CRLF (its convention, then).
fn uses_crlf(content: &str) -> bool {
    let b = content.as_bytes();
    memchr::memchr(b'\n', b).is_some_and(|i| i > 0 && b[i - 1] == b'\r')
}

/// `text` with every line ending made CRLF or LF.
fn with_eol(text: &str, crlf: bool) -> String {
    let lf = text.replace("\r\n", "\n");
    if crlf {
        lf.replace('\n', "\r\n")
    } else {
        lf
    }
}

/// One line of the content as byte offsets: `end` excludes the line ending,
/// `next` is where the following line starts.
struct Line {
    start: usize,
    end: usize,
    next: usize,
}

fn split_lines(content: &str) -> Vec<Line> {
    let b = content.as_bytes();
    let mut lines = Vec::new();
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', b) {
        let end = if nl > start && b[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        lines.push(Line {
            start,
            end,
            next: nl + 1,
        });
        start = nl + 1;
    }
    if start < b.len() {
        lines.push(Line {
            start,
            end: b.len(),
            next: b.len(),
        });
    }
    lines
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// The whitespace-tolerant, whole-line fallback.
fn line_match(content: &str, search: &str, replace: &str, crlf: bool) -> Result<String, EditError> {
    let wanted: Vec<&str> = search
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let Some(search_first) = search.lines().find(|l| !l.trim().is_empty()) else {
        return Err(EditError::EmptySearch);
    };
    let lines = split_lines(content);
    let text = |l: &Line| content.get(l.start..l.end).unwrap_or("");
    // Non-blank content lines, as (line index, trimmed text).
    let solid: Vec<(usize, &str)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| (i, text(l).trim()))
        .filter(|(_, t)| !t.is_empty())
        .collect();
    if solid.len() < wanted.len() {
        return Err(EditError::NotFound);
    }
    let mut first = None;
    let mut count = 0usize;
    for p in 0..=solid.len() - wanted.len() {
        if solid[p..p + wanted.len()]
            .iter()
            .zip(&wanted)
            .all(|((_, have), want)| have == want)
        {
            first.get_or_insert(p);
            count += 1;
        }
    }
    let p = match (count, first) {
        (1, Some(p)) => p,
        (0, _) | (_, None) => return Err(EditError::NotFound),
        (n, _) => return Err(EditError::Ambiguous(n)),
    };
    let first_line = &lines[solid[p].0];
    let last_line = &lines[solid[p + wanted.len() - 1].0];

    let body = reindent(
        replace,
        indent_of(search_first),
        indent_of(text(first_line)),
        if crlf { "\r\n" } else { "\n" },
    );
    let out = if body.is_empty() {
        // Deleting: the matched lines go with their line ending.
        splice(content, first_line.start, last_line.next, "")
    } else {
        splice(content, first_line.start, last_line.end, &body)
    };
    out.ok_or(EditError::NotFound)
}

/// `replace`'s lines shifted from the search's indentation to the file's,
/// joined with `eol`, without blank lines at either edge.
fn reindent(replace: &str, from: &str, to: &str, eol: &str) -> String {
    let lines: Vec<&str> = replace.lines().collect();
    let Some(lo) = lines.iter().position(|l| !l.trim().is_empty()) else {
        return String::new();
    };
    let hi = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .unwrap_or(lo);
    let mut out = String::with_capacity(replace.len() + 16);
    for (i, line) in lines[lo..=hi].iter().enumerate() {
        if i > 0 {
            out.push_str(eol);
        }
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix(from) {
            out.push_str(to);
            out.push_str(rest);
        } else if let Some(extra) = to.strip_prefix(from) {
            // Less indented than the search's first line (a closing brace):
            // the same shift still applies.
            out.push_str(extra);
            out.push_str(line);
        } else if from.starts_with(to) {
            let cut = from.chars().count() - to.chars().count();
            let indent = indent_of(line);
            let drop: usize = indent.chars().take(cut).map(char::len_utf8).sum();
            out.push_str(&line[drop..]);
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(content: &str, search: &str, replace: &str) -> String {
        match apply_search_replace(content, search, replace) {
            Ok(s) => s,
            Err(e) => panic!("edit failed: {e}"),
        }
    }

    #[test]
    fn exact_unique() {
        let c = "const a = 1;\nconst b = 2;\n";
        assert_eq!(
            apply(c, "const b = 2;", "const b = 3;"),
            "const a = 1;\nconst b = 3;\n"
        );
        // A substring of a line is fine when it is unique.
        assert_eq!(apply(c, "b = 2", "b = 20"), "const a = 1;\nconst b = 20;\n");
    }

    #[test]
    fn exact_ambiguous() {
        let c = "<li>x</li>\n<li>x</li>\n<li>y</li>\n";
        assert_eq!(
            apply_search_replace(c, "<li>x</li>", "<li>z</li>"),
            Err(EditError::Ambiguous(2))
        );
        // More context makes it unique.
        assert_eq!(
            apply(c, "<li>x</li>\n<li>y</li>", "<li>x</li>\n<li>w</li>"),
            "<li>x</li>\n<li>x</li>\n<li>w</li>\n"
        );
    }

    #[test]
    fn overlapping_matches_count() {
        assert_eq!(
            apply_search_replace("aaa", "aa", "b"),
            Err(EditError::Ambiguous(2))
        );
    }

    #[test]
    fn not_found_and_no_fuzzy_guess() {
        let c = "function App() {\n  return <h1>Hello</h1>;\n}\n";
        assert_eq!(
            apply_search_replace(c, "<h2>Hello</h2>", "x"),
            Err(EditError::NotFound)
        );
        // One changed token is a miss, never a guess.
        assert_eq!(
            apply_search_replace(c, "function App() {\n  return <h1>Helo</h1>;", "x"),
            Err(EditError::NotFound)
        );
        // Inner whitespace is significant.
        assert_eq!(
            apply_search_replace(c, "return  <h1>Hello</h1>;\n}", "x"),
            Err(EditError::NotFound)
        );
    }

    #[test]
    fn empty_search() {
        assert_eq!(
            apply_search_replace("abc", "", "x"),
            Err(EditError::EmptySearch)
        );
        assert_eq!(
            apply_search_replace("a \n b", " \n\t", "x"),
            Err(EditError::EmptySearch)
        );
        assert_eq!(
            apply_search_replace("", "", ""),
            Err(EditError::EmptySearch)
        );
    }

    #[test]
    fn tolerant_search_less_indented_than_file() {
        let c = "function App() {\n  return (\n    <div>\n      <p>old</p>\n    </div>\n  );\n}\n";
        let search = "<div>\n  <p>old</p>\n</div>";
        let replace = "<div>\n  <p>new</p>\n  <p>more</p>\n</div>";
        assert_eq!(
            apply(c, search, replace),
            "function App() {\n  return (\n    <div>\n      <p>new</p>\n      <p>more</p>\n    </div>\n  );\n}\n"
        );
    }

    #[test]
    fn tolerant_search_more_indented_than_file() {
        let c = "if (a) {\n  go();\n}\nrest();\n";
        let search = "        if (a) {\n          go();\n        }";
        let replace = "        if (a) {\n          go();\n          stop();\n        }";
        assert_eq!(
            apply(c, search, replace),
            "if (a) {\n  go();\n  stop();\n}\nrest();\n"
        );
    }

    #[test]
    fn tolerant_dedented_lines_keep_the_shift() {
        // The search starts inside a block; the replace closes it, so some
        // lines are less indented than the search's first line.
        let c = "    a();\n    b();\n  }\n";
        let search = "  a();\n  b();";
        let replace = "  a();\n}\n  c();";
        assert_eq!(apply(c, search, replace), "    a();\n  }\n    c();\n  }\n");
    }

    #[test]
    fn tolerant_blank_lines_and_trailing_spaces() {
        let c = "one();   \n\n\ntwo();\nthree();\n";
        let search = "\none();\ntwo();  \n\n";
        assert_eq!(
            apply(c, search, "\nuno();\ndos();\n"),
            "uno();\ndos();\nthree();\n"
        );
    }

    #[test]
    fn tolerant_ambiguous() {
        let c = "  x();\n  y();\n\n    x();\n    y();\n";
        assert_eq!(
            apply_search_replace(c, "x();\n   y();", "z();"),
            Err(EditError::Ambiguous(2))
        );
    }

    #[test]
    fn tabs_in_file() {
        let c = "func() {\n\tif x {\n\t\treturn 1\n\t}\n}\n";
        let search = "if x {\nreturn 1\n}";
        let replace = "if x {\n\treturn 2\n}";
        assert_eq!(
            apply(c, search, replace),
            "func() {\n\tif x {\n\t\treturn 2\n\t}\n}\n"
        );
    }

    #[test]
    fn crlf_content_exact_and_tolerant() {
        let c = "a\r\nb\r\nc\r\n";
        assert_eq!(apply(c, "b\nc", "B\nC\nD"), "a\r\nB\r\nC\r\nD\r\n");
        let c = "x {\r\n    y;\r\n}\r\n";
        assert_eq!(
            apply(c, "x {\n  y;", "x {\n  y;\n  z;"),
            "x {\r\n  y;\r\n  z;\r\n}\r\n"
        );
        // A CRLF search against an LF file.
        assert_eq!(apply("p\nq\n", "p\r\nq", "r\r\ns"), "r\ns\n");
    }

    #[test]
    fn replacement_at_start_and_end() {
        let c = "import a from 'a';\nbody();\nexport default App;";
        assert_eq!(
            apply(c, "import a from 'a';", "import b from 'b';"),
            "import b from 'b';\nbody();\nexport default App;"
        );
        assert_eq!(
            apply(c, "export default App;", "export { App };"),
            "import a from 'a';\nbody();\nexport { App };"
        );
        // Line mode at the last line with no final newline.
        assert_eq!(
            apply(c, "  body();\n  export default App;", "done();"),
            "import a from 'a';\ndone();"
        );
        // Line mode at the first line.
        assert_eq!(
            apply(c, "   import a from 'a';\n", "// header"),
            "// header\nbody();\nexport default App;"
        );
    }

    #[test]
    fn empty_replace_deletes() {
        let c = "keep1\ndrop\nkeep2\n";
        assert_eq!(apply(c, "drop\n", ""), "keep1\nkeep2\n");
        // Line mode removes the whole lines, ending included.
        let c = "keep1\n    drop1\n    drop2\nkeep2\n";
        assert_eq!(apply(c, "drop1\ndrop2", ""), "keep1\nkeep2\n");
        assert_eq!(apply("only", "only", ""), "");
    }

    #[test]
    fn unicode() {
        let c = "const greeting = \"¡Hola, 世界! 👋\";\nconst x = 'ü';\n";
        assert_eq!(
            apply(c, "\"¡Hola, 世界! 👋\"", "\"Grüß Gott 🌍\""),
            "const greeting = \"Grüß Gott 🌍\";\nconst x = 'ü';\n"
        );
        let c = "\u{3000}\u{3000}日本();\n";
        assert_eq!(
            apply(c, "日本();\n\n", "中国();"),
            "\u{3000}\u{3000}中国();\n"
        );
    }

    #[test]
    fn never_panics() {
        let mut rng = fastrand::Rng::with_seed(11);
        let alphabet: Vec<char> = "ab \t\r\n{}é👋".chars().collect();
        let mut make = |max: usize| -> String {
            let len = rng.usize(0..max);
            (0..len)
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect()
        };
        for _ in 0..3000 {
            let c = make(40);
            let s = make(10);
            let r = make(10);
            if let Ok(out) = apply_search_replace(&c, &s, &r) {
                // Whatever succeeded was a unique place: applying again with
                // the same search either fails or finds a new unique place.
                let _ = out;
            }
        }
    }
}
