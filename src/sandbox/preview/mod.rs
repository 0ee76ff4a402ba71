//! Errors the running app throws in the browser, reported by a Vite plugin the sandbox adds
//! on its own command line (no change to the user's files): `vite.config.mjs` here is written
//! to `node_modules/.builder/` in the sandbox and passed as `--config`; it loads the user's
//! config and adds a plugin whose injected script posts each uncaught error, unhandled
//! rejection, `console.error` and failed load to the dev server, which prints it as one line
//! `[builder:preview] {json}` with the stack already mapped through Vite's source maps.
//! Local, E2B and Vercel sandboxes all stream that output, so one parser serves all three.

use serde::{Deserialize, Serialize};

/// The overlay config (see the module doc and `README.md` beside it).
pub const OVERLAY_CONFIG: &str = include_str!("vite.config.mjs");
/// Where the overlay goes, relative to the sandbox root (`node_modules/` is never seeded,
/// listed, zipped or mirrored back, and Node resolves `vite` from there).
pub const OVERLAY_PATH: &str = "node_modules/.builder/vite.config.mjs";
/// What starts each report line on the dev server's stdout.
pub const LINE_PREFIX: &str = "[builder:preview] ";
/// The overlay as a file to write into a sandbox.
pub fn overlay_file() -> super::SandboxFile {
    super::SandboxFile {
        path: OVERLAY_PATH.to_string(),
        bytes: OVERLAY_CONFIG.as_bytes().to_vec(),
    }
}

/// The dev server's extra arguments once the overlay is in place.
pub fn config_args() -> [String; 2] {
    ["--config".to_string(), OVERLAY_PATH.to_string()]
}

/// The environment variable that gives the overlay the preview's URL path behind a
/// path-prefix proxy (code-server's `/proxy/PORT/`): Vite's `base` becomes it, and requests
/// that arrive without it (a proxy that strips the prefix, or the direct loopback URL) are
/// served as if they had it, so both routes render the app.
pub const BASE_ENV: &str = "BUILDER_PREVIEW_BASE";
/// What stands for the dev server's port in a preview base.
pub const PORT_PLACEHOLDER: &str = "{{port}}";

/// Checks a preview base (`previewBase` argument or setting): an absolute URL path of
/// unreserved characters, `{{port}}` allowed; answers it with one trailing `/`. `Err` says
/// what is wrong, for the caller to name the field. An empty string or `/` means none.
pub fn parse_base(raw: &str) -> Result<Option<String>, String> {
    let t = raw.trim();
    if t.is_empty() || t == "/" {
        return Ok(None);
    }
    if !t.starts_with('/') || t.starts_with("//") {
        return Err(format!(
            "`{t}` is not an absolute URL path (expected e.g. /proxy/{PORT_PLACEHOLDER}/)"
        ));
    }
    let bare = t.replace(PORT_PLACEHOLDER, "");
    if let Some(c) = bare
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/-._~".contains(*c)))
    {
        return Err(format!(
            "`{t}` has `{c}` (only letters, digits, / - . _ ~ and {PORT_PLACEHOLDER})"
        ));
    }
    if bare.split('/').any(|seg| seg == "..") {
        return Err(format!("`{t}` has a `..` segment"));
    }
    Ok(Some(format!("{}/", t.trim_end_matches('/'))))
}

/// `base` with the port filled in.
pub fn base_for_port(base: &str, port: u16) -> String {
    base.replace(PORT_PLACEHOLDER, &port.to_string())
}

/// The query parameter a headless check adds so the page says when it has settled.
pub const CHECK_PARAM: &str = "__builder_check";
/// Reports kept per project (an error loop must not grow memory).
const MAX_ERRORS: usize = 100;
/// A message longer than this is cut (a `console.error` of a huge object).
const MAX_MESSAGE: usize = 2000;

/// One stack frame, positions already mapped to the original source by the plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Frame {
    #[serde(default, rename = "fn", skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Relative to the project (`/` separators); absolute outside it; none for dependencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

/// A report line as the plugin prints it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    kind: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    stack: Option<String>,
    #[serde(default)]
    frames: Vec<Frame>,
    /// Browser clock, ms since the epoch, when the error happened.
    #[serde(default)]
    at: Option<f64>,
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    check: Option<String>,
    /// For `vite` reports: where the compile error is.
    #[serde(default)]
    loc: Option<Loc>,
}

#[derive(Debug, Clone, Deserialize)]
struct Loc {
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    line: Option<u32>,
    #[serde(default)]
    column: Option<u32>,
}

/// What one report line means.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The app threw, rejected, logged an error or failed to load something.
    Error(RuntimeError),
    /// A page (re)loaded.
    Page { page: String },
    /// A headless check's page has settled (no new error for a while after `load`).
    Settled { check: String },
}

/// An error from the browser, located at its first frame in a project file.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeError {
    /// `error` (uncaught), `rejection`, `console`, `load` (a script or stylesheet that
    /// failed), `vite` (a compile error the page was shown).
    pub kind: String,
    pub message: String,
    /// Relative to the project; none when no frame is in a project file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// 1-based.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    pub frames: Vec<Frame>,
    /// How many times it was reported (duplicates collapse).
    pub count: u32,
    /// Browser clock (ms since the epoch) of the first report.
    #[serde(skip)]
    pub at_ms: Option<f64>,
}

/// Parses one dev-server output line; `None` for every other line.
pub fn parse_line(line: &str) -> Option<Event> {
    let json = line.trim_start().strip_prefix(LINE_PREFIX)?;
    let r: Report = serde_json::from_str(json.trim_end()).ok()?;
    match r.kind.as_str() {
        "page" => Some(Event::Page {
            page: r.page.unwrap_or_default(),
        }),
        "settled" => Some(Event::Settled {
            check: r.check.unwrap_or_default(),
        }),
        _ => Some(Event::Error(locate(r))),
    }
}

fn locate(r: Report) -> RuntimeError {
    let mut message = clean_message(r.message.as_deref().unwrap_or(""));
    if message.is_empty() {
        message = first_line(r.stack.as_deref().unwrap_or("")).to_string();
    }
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    let first = r
        .frames
        .iter()
        .find(|f| f.file.as_deref().is_some_and(is_project_file));
    let (mut path, mut line, mut column) = match first {
        Some(f) => (f.file.clone(), f.line, f.column),
        None => (None, None, None),
    };
    if path.is_none() {
        if let Some(loc) = &r.loc {
            if let Some(f) = loc.file.as_deref().filter(|f| is_project_file(f)) {
                path = Some(f.to_string());
                line = loc.line;
                column = loc.column;
            }
        }
    }
    RuntimeError {
        kind: r.kind,
        message,
        path: path.map(|p| p.trim_start_matches("./").to_string()),
        line,
        column,
        stack: r.stack.filter(|s| !s.trim().is_empty()),
        frames: r.frames,
        count: 1,
        at_ms: r.at,
    }
}

/// A file of the project, not a dependency or an absolute path outside it.
fn is_project_file(f: &str) -> bool {
    !f.is_empty()
        && !f.starts_with('/')
        && !f.contains(":\\")
        && !f.starts_with("..")
        && !f.split('/').any(|c| c == "node_modules")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}

/// Browsers say "Uncaught Error: x" in one place and "Error: x" in another; one form keeps
/// the same error from showing twice.
fn clean_message(m: &str) -> String {
    let m = m.trim();
    let m = m.strip_prefix("Uncaught ").unwrap_or(m);
    m.strip_prefix("Error: ").unwrap_or(m).trim().to_string()
}

/// The runtime errors of one project's preview: duplicates collapse, a file's errors are
/// forgotten when the file changes (the next load reports them again if they remain).
#[derive(Debug, Default)]
pub struct PreviewErrors {
    errors: Vec<RuntimeError>,
}

impl PreviewErrors {
    /// Adds a report; `false` when it repeats one already held (only its count grows).
    pub fn add(&mut self, e: RuntimeError) -> bool {
        // React logs a render error it rethrows: the same message at the same place twice.
        if let Some(old) = self
            .errors
            .iter_mut()
            .find(|o| o.message == e.message && o.path == e.path && o.line == e.line)
        {
            old.count = old.count.saturating_add(1);
            if old.stack.is_none() {
                old.stack = e.stack;
                old.frames = e.frames;
            }
            return false;
        }
        if self.errors.len() >= MAX_ERRORS {
            self.errors.remove(0);
        }
        self.errors.push(e);
        true
    }

    /// Forgets the errors located in `rel` or whose stack passes through it; `true` if any.
    pub fn forget_file(&mut self, rel: &str) -> bool {
        let before = self.errors.len();
        self.errors.retain(|e| {
            e.path.as_deref() != Some(rel)
                && !e.frames.iter().any(|f| f.file.as_deref() == Some(rel))
        });
        self.errors.len() != before
    }

    /// Forgets the errors nothing located (they cannot be cleared by a file change).
    pub fn forget_unlocated(&mut self) -> bool {
        let before = self.errors.len();
        self.errors.retain(|e| e.path.is_some());
        self.errors.len() != before
    }

    pub fn clear(&mut self) {
        self.errors.clear();
    }

    pub fn all(&self) -> &[RuntimeError] {
        &self.errors
    }

    /// The files that hold at least one error.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = self.errors.iter().filter_map(|e| e.path.clone()).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// The preview URL with the check marker added (before any `#fragment`).
pub fn check_url(preview: &str, check: &str) -> String {
    let (base, frag) = match preview.find('#') {
        Some(i) => (&preview[..i], &preview[i..]),
        None => (preview, ""),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{CHECK_PARAM}={check}{frag}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> String {
        format!("{LINE_PREFIX}{json}")
    }

    #[test]
    fn an_uncaught_error_is_located_at_its_first_project_frame() {
        let l = line(
            r#"{"kind":"error","message":"Uncaught Error: render boom","stack":"Error: render boom\n    at App (http://127.0.0.1:5173/src/App.jsx?t=1:5:9)","frames":[{"fn":"renderWithHooks","url":"http://127.0.0.1:5173/node_modules/.vite/deps/react-dom.js?v=1","file":null,"line":10,"column":2},{"fn":"App","url":"http://127.0.0.1:5173/src/App.jsx?t=1","file":"src/App.jsx","line":5,"column":9}],"at":1700000000000.5,"page":"p1"}"#,
        );
        let Some(Event::Error(e)) = parse_line(&l) else {
            panic!("not an error")
        };
        assert_eq!(e.message, "render boom");
        assert_eq!(e.path.as_deref(), Some("src/App.jsx"));
        assert_eq!((e.line, e.column), (Some(5), Some(9)));
        assert_eq!(e.kind, "error");
        assert_eq!(e.at_ms, Some(1700000000000.5));
        assert!(e.stack.unwrap().contains("at App"));
    }

    #[test]
    fn other_lines_page_and_settled_markers() {
        assert_eq!(parse_line("  VITE v8.0.0  ready in 200 ms"), None);
        assert_eq!(parse_line(&line("{not json")), None);
        assert_eq!(
            parse_line(&line(r#"{"kind":"page","page":"p2","at":1}"#)),
            Some(Event::Page { page: "p2".into() })
        );
        assert_eq!(
            parse_line(&line(r#"{"kind":"settled","check":"c9","page":"p2"}"#)),
            Some(Event::Settled { check: "c9".into() })
        );
    }

    #[test]
    fn a_compile_error_uses_its_location_and_deps_are_not_project_files() {
        let l = line(
            r#"{"kind":"vite","message":"Transform failed","loc":{"file":"src/Broken.jsx","line":3,"column":7},"frames":[{"file":"/abs/outside.js","line":1,"column":1}]}"#,
        );
        let Some(Event::Error(e)) = parse_line(&l) else {
            panic!()
        };
        assert_eq!(e.path.as_deref(), Some("src/Broken.jsx"));
        assert_eq!(e.line, Some(3));
        let none = line(
            r#"{"kind":"rejection","message":"x","frames":[{"file":"node_modules/a/b.js","line":1}]}"#,
        );
        let Some(Event::Error(e)) = parse_line(&none) else {
            panic!()
        };
        assert_eq!(e.path, None);
    }

    #[test]
    fn duplicates_collapse_and_a_changed_file_forgets_its_errors() {
        let mk = |m: &str, p: &str, l: u32| RuntimeError {
            kind: "error".into(),
            message: m.into(),
            path: Some(p.into()),
            line: Some(l),
            column: Some(1),
            stack: None,
            frames: vec![Frame {
                file: Some("src/main.jsx".into()),
                ..Default::default()
            }],
            count: 1,
            at_ms: None,
        };
        let mut s = PreviewErrors::default();
        assert!(s.add(mk("boom", "src/App.jsx", 5)));
        assert!(!s.add(mk("boom", "src/App.jsx", 5)));
        assert!(s.add(mk("boom", "src/App.jsx", 6)));
        assert!(s.add(mk("other", "src/B.jsx", 1)));
        assert_eq!(s.all()[0].count, 2);
        assert_eq!(s.files(), vec!["src/App.jsx", "src/B.jsx"]);
        assert!(s.forget_file("src/App.jsx"));
        assert_eq!(s.all().len(), 1);
        assert!(!s.forget_file("src/App.jsx"));
        // A file its stack passes through counts as its file too.
        assert!(s.forget_file("src/main.jsx"));
        assert!(s.all().is_empty());
        for i in 0..(MAX_ERRORS + 5) {
            s.add(mk(&format!("e{i}"), "src/A.jsx", 1));
        }
        assert_eq!(s.all().len(), MAX_ERRORS);
    }

    #[test]
    fn the_check_marker_goes_before_a_fragment() {
        assert_eq!(
            check_url("http://h:1/", "a1"),
            "http://h:1/?__builder_check=a1"
        );
        assert_eq!(
            check_url("http://h:1/x?y=1#top", "a1"),
            "http://h:1/x?y=1&__builder_check=a1#top"
        );
    }

    #[test]
    fn a_preview_base_is_an_absolute_path_with_one_trailing_slash() {
        assert_eq!(parse_base("").unwrap(), None);
        assert_eq!(parse_base(" / ").unwrap(), None);
        assert_eq!(
            parse_base("/proxy/{{port}}").unwrap().as_deref(),
            Some("/proxy/{{port}}/")
        );
        assert_eq!(
            parse_base("/absproxy/5173//").unwrap().as_deref(),
            Some("/absproxy/5173/")
        );
        assert_eq!(base_for_port("/proxy/{{port}}/", 5173), "/proxy/5173/");
        for bad in [
            "proxy/1/",
            "//evil.example/",
            "/a b/",
            "/x/../y/",
            "/q?x=1",
            "/{{host}}/",
        ] {
            assert!(parse_base(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE);
        let l = line(&format!(r#"{{"kind":"console","message":"{long}"}}"#));
        let Some(Event::Error(e)) = parse_line(&l) else {
            panic!()
        };
        assert!(e.message.len() <= MAX_MESSAGE + 3);
        assert!(e.message.ends_with('…'));
    }
}
