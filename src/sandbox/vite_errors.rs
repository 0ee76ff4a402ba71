//! Compile errors from the Vite dev server's output, as file/line/column diagnostics.
//!
//! Vite reports an error only when a module is requested (by the browser, a health check, an
//! HMR update), as a multi-line block. The formats handled here were captured from real runs
//! (`tests/fixtures/vite/`): Vite 8 with oxc (`Transform failed with N error(s):` and a
//! `╭─[ src/App.jsx:5:19 ]` label, 1-based), import analysis and PostCSS/Tailwind
//! (`File: /abs/path:LINE:COL`, column 0-based), Vite ≤ 7 with Babel
//! (`/abs/src/App.jsx: Unexpected token (5:18)`, column 0-based) and esbuild's dependency scan
//! (`✘ [ERROR] msg` then `src/App.jsx:5:18:`, column 0-based). Oxc prints ANSI colours even
//! with `NO_COLOR`, so every line is stripped first.

use std::path::Path;

/// One compile error, located in the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViteError {
    /// Relative to the project root with `/` separators (absolute only when outside it).
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// 1-based.
    pub column: u32,
    pub message: String,
}

/// Drops "Failed to resolve import" errors of a relative file that now exists in the
/// project at `project_root`: Vite logs the error when the importer is requested before the
/// file is written (a generation writes `App.jsx`, then the component it imports) and logs
/// nothing once it resolves, so the error would stay until the importer itself changed.
pub fn drop_resolved_imports(errors: &mut Vec<ViteError>, project_root: &Path) {
    errors.retain(|e| !resolves_now(e, project_root));
}

fn resolves_now(e: &ViteError, project_root: &Path) -> bool {
    const PREFIX: &str = "Failed to resolve import \"";
    let Some(rest) = e
        .message
        .find(PREFIX)
        .map(|i| &e.message[i + PREFIX.len()..])
    else {
        return false;
    };
    let Some(spec) = rest.split('"').next() else {
        return false;
    };
    if !(spec.starts_with("./") || spec.starts_with("../")) || Path::new(&e.file).is_absolute() {
        return false;
    }
    let Some(base) = project_root.join(&e.file).parent().map(|d| d.join(spec)) else {
        return false;
    };
    // Vite's resolution of a relative import: the path, with an extension, or an index file.
    const EXTS: [&str; 6] = ["js", "jsx", "ts", "tsx", "mjs", "json"];
    base.is_file()
        || EXTS.iter().any(|x| {
            let mut p = base.clone().into_os_string();
            p.push(format!(".{x}"));
            Path::new(&p).is_file() || base.join(format!("index.{x}")).is_file()
        })
}

/// The errors in `lines` (dev-server output, oldest first), one per file: a later error for a
/// file replaces an earlier one, and a later HMR update or page reload of a file clears it
/// (the file changed; Vite reports again if it is still broken when next requested).
pub fn parse(lines: &[String], project_dir: &Path) -> Vec<ViteError> {
    let clean: Vec<String> = lines.iter().map(|l| strip_ansi(l)).collect();
    let roots = roots(project_dir);
    let mut out: Vec<ViteError> = Vec::new();
    let mut i = 0;
    while i < clean.len() {
        let line = clean[i].as_str();
        if let Some(files) = updated_files(line) {
            for f in files {
                let f = relative(&f, &roots, true);
                out.retain(|e| e.file != f);
            }
            i += 1;
            continue;
        }
        let Some(header) = error_header(line) else {
            i += 1;
            continue;
        };
        let mut end = i + 1;
        while end < clean.len() && !starts_entry(&clean[end]) {
            end += 1;
        }
        if let Some(mut e) = block_error(header, &clean[i + 1..end]) {
            e.file = relative(&e.file, &roots, false);
            out.retain(|x| x.file != e.file);
            out.push(e);
        }
        i = end;
    }
    out
}

pub use crate::exec::process::strip_ansi;

/// The project dir as given and canonicalized (`/tmp` may be a symlink; Vite prints real paths).
fn roots(project_dir: &Path) -> Vec<String> {
    let mut v = vec![slashes(&project_dir.to_string_lossy())];
    if let Ok(c) = project_dir.canonicalize() {
        let c = slashes(&c.to_string_lossy());
        if !v.contains(&c) {
            v.push(c);
        }
    }
    v.into_iter()
        .map(|r| r.trim_end_matches('/').to_string())
        .filter(|r| !r.is_empty())
        .collect()
}

fn slashes(s: &str) -> String {
    s.replace('\\', "/")
}

/// `path` relative to the project root: absolute paths inside it lose the prefix, `./` and (for
/// `url_style` paths, which are root-relative like `/src/App.jsx`) `/` prefixes are dropped,
/// queries (`?v=…`, `?import`) removed. Absolute paths elsewhere stay absolute.
fn relative(path: &str, roots: &[String], url_style: bool) -> String {
    let p = slashes(path.trim());
    let p = p.split('?').next().unwrap_or_default().to_string();
    for r in roots {
        if let Some(rest) = p.strip_prefix(r.as_str()) {
            if let Some(rest) = rest.strip_prefix('/') {
                return rest.to_string();
            }
        }
    }
    if url_style {
        return p.trim_start_matches('/').to_string();
    }
    p.trim_start_matches("./").to_string()
}

/// What kind of line opens an error block, with the text after the marker.
enum Header<'a> {
    /// `[vite] Internal server error: …`, `Pre-transform error: …`, `[plugin:…] …`.
    Vite(&'a str),
    /// esbuild: `✘ [ERROR] message`.
    Esbuild(&'a str),
}

fn error_header(line: &str) -> Option<Header<'_>> {
    for marker in ["Internal server error: ", "Pre-transform error: "] {
        if let Some(pos) = line.find(marker) {
            if line[..pos].contains("[vite]") {
                return Some(Header::Vite(line[pos + marker.len()..].trim()));
            }
        }
    }
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix("[plugin:") {
        let rest = rest.split_once(']').map(|(_, r)| r).unwrap_or_default();
        return Some(Header::Vite(rest.trim()));
    }
    if let Some(rest) = t.strip_prefix("✘ [ERROR]") {
        return Some(Header::Esbuild(rest.trim()));
    }
    None
}

/// Whether a line starts a new log entry (ending the current error block): a timestamped
/// `[vite]` line, an error header, or Vite's non-indented notices.
fn starts_entry(line: &str) -> bool {
    if error_header(line).is_some() || line.starts_with(CHANGED_MARKER) {
        return true;
    }
    let t = line.trim_start();
    let timestamped = t
        .split_once(' ')
        .map(|(first, _)| first.len() >= 7 && first.chars().filter(|c| *c == ':').count() == 2)
        .unwrap_or(false)
        && t.contains("[vite]");
    timestamped || t.starts_with("[vite]") || t.starts_with("(!)")
}

/// Files named in `hmr update /src/A.jsx, /src/b.css` or `page reload src/App.jsx`.
/// A log line the server adds when it writes files into the sandbox: what Vite logged before
/// it about those files is stale (without a connected page Vite never says "hmr update").
pub const CHANGED_MARKER: &str = "[builder] files changed: ";

fn updated_files(line: &str) -> Option<Vec<String>> {
    if let Some(rest) = line.strip_prefix(CHANGED_MARKER) {
        return Some(
            rest.split(", ")
                .map(str::trim)
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect(),
        );
    }
    if !line.contains("[vite]") {
        return None;
    }
    for marker in ["hmr update ", "page reload "] {
        if let Some(pos) = line.find(marker) {
            let rest = &line[pos + marker.len()..];
            let files = rest
                .split(',')
                .map(|f| f.split_whitespace().next().unwrap_or_default().to_string())
                .filter(|f| !f.is_empty())
                .collect();
            return Some(files);
        }
    }
    None
}

/// A position parsed from text; `zero_based` columns are shifted to 1-based.
struct Loc {
    file: String,
    line: u32,
    column: u32,
}

fn loc(file: &str, line: &str, col: &str, zero_based: bool) -> Option<Loc> {
    let line: u32 = line.trim().parse().ok()?;
    let col: u32 = col.trim().parse().ok()?;
    let file = file.trim();
    if file.is_empty() || line == 0 {
        return None;
    }
    Some(Loc {
        file: file.to_string(),
        line,
        column: if zero_based { col + 1 } else { col.max(1) },
    })
}

/// `path:LINE:COL` (a trailing `:` allowed), split from the right so colons in the path are kept.
fn path_line_col(s: &str, zero_based: bool) -> Option<Loc> {
    let s = s.trim().trim_end_matches(':');
    let (rest, col) = s.rsplit_once(':')?;
    let (file, line) = rest.rsplit_once(':')?;
    loc(file, line, col, zero_based)
}

fn block_error(header: Header<'_>, body: &[String]) -> Option<ViteError> {
    match header {
        Header::Vite(text) => vite_block(text, body),
        Header::Esbuild(text) => {
            // The location is the first `path:L:C:` line of the block.
            let l = body.iter().find_map(|b| {
                let t = b.trim();
                if t.ends_with(':') && !t.starts_with("at ") {
                    path_line_col(t, true)
                } else {
                    None
                }
            })?;
            Some(ViteError {
                file: l.file,
                line: l.line,
                column: l.column,
                message: text.to_string(),
            })
        }
    }
}

fn vite_block(text: &str, body: &[String]) -> Option<ViteError> {
    let mut message = text.to_string();
    let mut location: Option<Loc> = None;
    let mut file_only: Option<String> = None;

    // Oxc: the real message and a 1-based label follow "Transform failed with N error(s):".
    if text.starts_with("Transform failed with") {
        if let Some(m) = body.iter().map(|b| b.trim()).find(|b| {
            !b.is_empty() && !b.starts_with(|c: char| "╭│─╰┬╯".contains(c)) && !is_meta(b)
        }) {
            message = strip_code(m).to_string();
        }
        location = body.iter().find_map(|b| oxc_label(b));
    }

    // PostCSS / Tailwind: "[postcss] /abs/src/index.css:5:1: Unclosed block" (1-based).
    if let Some(rest) = text.strip_prefix("[postcss] ") {
        if let Some((pos, msg)) = split_pos_message(rest) {
            if let Some(l) = path_line_col(pos, false) {
                message = msg.to_string();
                location = location.or(Some(l));
            }
        }
    }

    // Babel: "/abs/src/App.jsx: Unexpected token (5:18)" (0-based column).
    if location.is_none() {
        if let Some((file, rest)) = text.split_once(": ") {
            if looks_like_path(file) {
                let rest = rest.trim();
                if let Some(open) = rest.rfind(" (") {
                    if let Some((l, c)) = rest[open + 2..]
                        .strip_suffix(')')
                        .and_then(|lc| lc.split_once(':'))
                    {
                        if let Some(found) = loc(file, l, c, true) {
                            message = rest[..open].to_string();
                            location = Some(found);
                        }
                    }
                }
            }
        }
    }

    // `File: /abs/path:LINE:COL` (0-based column) or `File: /abs/path`.
    for b in body {
        if let Some(f) = b.trim().strip_prefix("File: ") {
            let f = f.trim();
            match path_line_col(f, true) {
                Some(l) => {
                    if location.is_none() {
                        location = Some(l);
                    }
                }
                None => file_only = Some(f.to_string()),
            }
            break;
        }
    }

    // Import analysis without a File line: `… from "src/App.jsx". Does the file exist?`
    if location.is_none() && file_only.is_none() {
        if let Some(pos) = text.find("\" from \"") {
            let rest = &text[pos + 8..];
            if let Some(end) = rest.find('"') {
                file_only = Some(rest[..end].to_string());
            }
        }
    }

    let (file, line, column) = match (location, file_only) {
        (Some(l), _) => (l.file, l.line, l.column),
        (None, Some(f)) => (f, 1, 1),
        (None, None) => return None,
    };
    Some(ViteError {
        file,
        line,
        column,
        message: message.trim().to_string(),
    })
}

/// `╭─[ src/App.jsx:5:19 ]` → the 1-based location.
fn oxc_label(line: &str) -> Option<Loc> {
    let t = line.trim();
    if !t.starts_with('╭') {
        return None;
    }
    let open = t.find('[')?;
    let close = t.rfind(']')?;
    if close <= open {
        return None;
    }
    path_line_col(&t[open + 1..close], false)
}

/// Lines of a block that are not the message: `Plugin:`, `File:`, stack frames.
fn is_meta(l: &str) -> bool {
    l.starts_with("Plugin:") || l.starts_with("File:") || l.starts_with("at ")
}

/// `[PARSE_ERROR] Unexpected token` → `Unexpected token`.
fn strip_code(m: &str) -> &str {
    if m.starts_with('[') {
        if let Some((code, rest)) = m.split_once(']') {
            if code[1..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_')
            {
                return rest.trim();
            }
        }
    }
    m
}

/// `/abs/x.css:5:1: message` → (`/abs/x.css:5:1`, `message`).
fn split_pos_message(s: &str) -> Option<(&str, &str)> {
    // The first ":N:M:" run: the position ends at the colon after two numeric parts.
    let idx: Vec<usize> = s.match_indices(':').map(|(i, _)| i).collect();
    for w in idx.windows(3) {
        let (a, b, c) = (w[0], w[1], w[2]);
        let l = &s[a + 1..b];
        let col = &s[b + 1..c];
        if !l.is_empty()
            && !col.is_empty()
            && l.bytes().all(|x| x.is_ascii_digit())
            && col.bytes().all(|x| x.is_ascii_digit())
        {
            return Some((&s[..c], s[c + 1..].trim()));
        }
    }
    None
}

fn looks_like_path(s: &str) -> bool {
    let s = s.trim();
    !s.contains(' ') && (s.contains('/') || s.contains('\\')) && s.contains('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A captured Vite log under `tests/fixtures/vite/`.
    macro_rules! vite_log {
        ($name:literal) => {
            include_str!(concat!("../../tests/fixtures/vite/", $name))
        };
    }

    #[test]
    fn the_servers_changed_marker_clears_that_files_errors() {
        let dir = Path::new("/work/app");
        let mut lines: Vec<String> = vec![
            "12:00:00 [vite] Internal server error: Failed to resolve import \"./Missing.jsx\" from \"src/App.jsx\". Does the file exist?".into(),
            "  Plugin: vite:import-analysis".into(),
            "  File: /work/app/src/App.jsx:2:20".into(),
        ];
        assert_eq!(parse(&lines, dir).len(), 1, "{:?}", parse(&lines, dir));
        lines.push(format!("{CHANGED_MARKER}src/Other.jsx"));
        assert_eq!(parse(&lines, dir).len(), 1);
        lines.push(format!("{CHANGED_MARKER}src/Other.jsx, src/App.jsx"));
        assert!(parse(&lines, dir).is_empty());
    }

    #[test]
    fn an_import_error_goes_once_the_file_exists() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("src/components")).unwrap();
        let errors = || {
            let mut e = parse(
                &fixture(vite_log!("missing_file.log")),
                Path::new("/tmp/tpl"),
            );
            drop_resolved_imports(&mut e, root);
            e
        };
        assert_eq!(errors().len(), 1, "reported while the file is missing");
        // A file of that name elsewhere is no help.
        std::fs::write(root.join("src/Card.jsx"), "x").unwrap();
        assert_eq!(errors().len(), 1);
        std::fs::write(root.join("src/components/Card.jsx"), "export default 1\n").unwrap();
        assert!(errors().is_empty(), "{:?}", errors());
        // Extensionless and index imports resolve the way Vite resolves them.
        let e = |spec: &str| ViteError {
            file: "src/App.jsx".into(),
            line: 1,
            column: 1,
            message: format!(
                "Failed to resolve import \"{spec}\" from \"src/App.jsx\". Does the file exist?"
            ),
        };
        let mut v = vec![
            e("./components/Card"),
            e("./components"),
            e("./Gone"),
            e("react-gone"),
        ];
        std::fs::write(root.join("src/components/index.ts"), "").unwrap();
        drop_resolved_imports(&mut v, root);
        let left: Vec<&str> = v
            .iter()
            .map(|x| x.message.split('"').nth(1).unwrap())
            .collect();
        assert_eq!(left, ["./Gone", "react-gone"]);
    }

    fn fixture(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    fn one(text: &str, dir: &str) -> ViteError {
        let errs = parse(&fixture(text), Path::new(dir));
        assert_eq!(errs.len(), 1, "{errs:?}");
        errs.into_iter().next().unwrap_or_else(|| unreachable!())
    }

    /// The one error of a log from the template project at `/tmp/tpl`.
    fn one_in_tpl(text: &str) -> ViteError {
        one(text, "/tmp/tpl")
    }

    #[test]
    fn oxc_syntax_error_uses_the_label_position() {
        let e = one_in_tpl(vite_log!("syntax_error.log"));
        assert_eq!(
            e,
            ViteError {
                file: "src/App.jsx".into(),
                line: 5,
                column: 19,
                message: "Unexpected token".into()
            }
        );
    }

    #[test]
    fn oxc_two_errors_in_a_nested_file_report_the_first() {
        let e = one_in_tpl(vite_log!("nested_jsx_error.log"));
        assert_eq!(e.file, "src/components/Card.jsx");
        assert_eq!((e.line, e.column), (5, 7));
        assert_eq!(
            e.message,
            "Expected corresponding JSX closing tag for 'span'."
        );
    }

    #[test]
    fn oxc_semantic_error() {
        let e = one_in_tpl(vite_log!("redeclare.log"));
        assert_eq!((e.file.as_str(), e.line, e.column), ("src/App.jsx", 2, 9));
        assert_eq!(e.message, "Identifier `a` has already been declared");
    }

    #[test]
    fn missing_package_deduped_from_many_pre_transform_errors() {
        let e = one_in_tpl(vite_log!("missing_package.log"));
        assert_eq!((e.file.as_str(), e.line, e.column), ("src/App.jsx", 1, 22));
        assert!(e.message.starts_with(
            "Failed to resolve import \"canvas-confetti-not-installed\" from \"src/App.jsx\""
        ));
    }

    #[test]
    fn missing_relative_file() {
        let e = one_in_tpl(vite_log!("missing_file.log"));
        assert_eq!((e.file.as_str(), e.line, e.column), ("src/App.jsx", 1, 18));
        assert!(e.message.contains("./components/Card.jsx"));
    }

    #[test]
    fn import_position_is_mapped_to_the_source_line() {
        let e = one_in_tpl(vite_log!("import_mapped.log"));
        assert_eq!((e.file.as_str(), e.line, e.column), ("src/App.jsx", 5, 22));
    }

    #[test]
    fn postcss_unclosed_block() {
        let e = one_in_tpl(vite_log!("css_syntax.log"));
        assert_eq!(
            e,
            ViteError {
                file: "src/index.css".into(),
                line: 5,
                column: 1,
                message: "Unclosed block".into()
            }
        );
    }

    #[test]
    fn tailwind_apply_of_unknown_class() {
        let e = one_in_tpl(vite_log!("css_apply.log"));
        assert_eq!((e.file.as_str(), e.line, e.column), ("src/index.css", 6, 3));
        assert!(e
            .message
            .starts_with("The `no-such-class` class does not exist."));
    }

    #[test]
    fn vite7_babel_and_esbuild_scan_collapse_to_one_error() {
        let lines = fixture(vite_log!("vite7_react_babel.log"));
        // The esbuild dependency scan alone (block before the babel error).
        let scan_end = lines
            .iter()
            .position(|l| l.contains("Internal server error"))
            .unwrap_or(lines.len());
        let scan = parse(&lines[..scan_end], Path::new("/tmp/tplb"));
        assert_eq!(scan.len(), 1, "{scan:?}");
        assert_eq!(
            (scan[0].file.as_str(), scan[0].line, scan[0].column),
            ("src/App.jsx", 5, 19)
        );
        assert_eq!(scan[0].message, "Unexpected \"}\"");
        let all = parse(&lines, Path::new("/tmp/tplb"));
        assert_eq!(
            all,
            vec![ViteError {
                file: "src/App.jsx".into(),
                line: 5,
                column: 19,
                message: "Unexpected token".into()
            }]
        );
    }

    #[test]
    fn plugin_prefixed_babel_line() {
        let lines = fixture(
            "[plugin:vite:react-babel] /home/u/app/src/App.jsx: Unexpected token (5:12)\n  3 | x",
        );
        let errs = parse(&lines, Path::new("/home/u/app"));
        assert_eq!(
            errs,
            vec![ViteError {
                file: "src/App.jsx".into(),
                line: 5,
                column: 13,
                message: "Unexpected token".into()
            }]
        );
    }

    #[test]
    fn latest_error_per_file_wins_and_files_stay_separate() {
        let mut lines = fixture(vite_log!("syntax_error.log"));
        lines.extend(fixture(vite_log!("css_syntax.log")));
        lines.extend(fixture(vite_log!("redeclare.log")));
        let errs = parse(&lines, Path::new("/tmp/tpl"));
        let got: Vec<(&str, u32)> = errs.iter().map(|e| (e.file.as_str(), e.line)).collect();
        assert_eq!(got, vec![("src/index.css", 5), ("src/App.jsx", 2)]);
    }

    #[test]
    fn hmr_update_after_an_error_clears_it() {
        let mut lines = fixture(vite_log!("syntax_error.log"));
        lines.push("7:07:40 AM [vite] (client) hmr update /src/App.jsx, /src/index.css".into());
        assert!(parse(&lines, Path::new("/tmp/tpl")).is_empty());
        // The error reported after the update stays.
        let mut again = vec!["7:07:40 AM [vite] (client) hmr update /src/App.jsx".to_string()];
        again.extend(fixture(vite_log!("syntax_error.log")));
        assert_eq!(parse(&again, Path::new("/tmp/tpl")).len(), 1);
    }

    #[test]
    fn clean_output_has_no_errors() {
        let lines = fixture(
            "\n  VITE v8.3.8  ready in 227 ms\n\n  ➜  Local:   http://127.0.0.1:5199/\n7:07:08 AM [vite] (client) hmr update /src/App.jsx",
        );
        assert!(parse(&lines, Path::new("/tmp/tpl")).is_empty());
    }

    #[test]
    fn strip_ansi_removes_csi_and_osc() {
        assert_eq!(
            strip_ansi("\u{1b}[31m[PARSE_ERROR] \u{1b}[0mUnexpected"),
            "[PARSE_ERROR] Unexpected"
        );
        assert_eq!(
            strip_ansi(
                "a\u{1b}[38;5;246m╭\u{1b}[0mb\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\c"
            ),
            "a╭blinkc"
        );
        assert_eq!(strip_ansi("plain ✓"), "plain ✓");
    }
}
