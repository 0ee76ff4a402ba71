//! The prompt of a fix round (`builder.fix`, the "Fix this error" action, auto-fix): the
//! errors with where they are, their stacks, and the failing code with line numbers, so the
//! model changes what is broken and nothing else. The loop around it is [`rounds`].

pub mod rounds;

/// One error to fix, from any source (Vite, the preview, TypeScript, ESLint, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Relative to the project.
    pub path: Option<String>,
    /// 1-based.
    pub line: Option<u32>,
    /// 1-based.
    pub column: Option<u32>,
    pub message: String,
    /// Who reported it (`vite`, `builder (preview)`, `ts`, `eslint`, …).
    pub source: Option<String>,
    pub stack: Option<String>,
}

/// One auto-fix round, as the result reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FixRound {
    /// 1-based.
    pub round: u32,
    /// The errors this round was asked to fix (`path:line: message`).
    pub errors: Vec<String>,
    pub files_changed: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    pub message: String,
}

/// Why auto-fix stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Clean,
    /// The same errors came back after a round: another round would not help.
    Repeated,
    MaxRounds,
    Cancelled,
    /// The round itself failed (the model or the apply).
    Failed,
}

impl Stop {
    /// The name results carry (`fixStopped`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stop::Clean => "clean",
            Stop::Repeated => "repeated",
            Stop::MaxRounds => "maxRounds",
            Stop::Cancelled => "cancelled",
            Stop::Failed => "failed",
        }
    }
}

/// The one-line form of a problem used to tell rounds apart.
pub fn key(p: &Problem) -> String {
    format!(
        "{}:{}: {}",
        p.path.as_deref().unwrap_or("?"),
        p.line.unwrap_or(0),
        p.message.lines().next().unwrap_or("").trim()
    )
}

/// Lines of code shown around each error.
const AROUND: u32 = 12;
/// Stack lines kept per error (the rest is framework internals).
const STACK_LINES: usize = 12;
/// Errors put in one prompt (more would drown the model; the next round gets the rest).
pub const MAX_PROBLEMS: usize = 20;

/// Drops repeats (same file, line and message) and keeps at most [`MAX_PROBLEMS`].
pub fn dedupe(problems: Vec<Problem>) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for p in problems {
        if out
            .iter()
            .any(|o| o.path == p.path && o.line == p.line && o.message.trim() == p.message.trim())
        {
            continue;
        }
        out.push(p);
        if out.len() == MAX_PROBLEMS {
            break;
        }
    }
    out
}

/// The files a fix should see: the errors' own files first, then those their stacks name.
pub fn files_named(problems: &[Problem], stack_files: &[String]) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    for f in problems
        .iter()
        .filter_map(|p| p.path.clone())
        .chain(stack_files.iter().cloned())
    {
        if !v.contains(&f) {
            v.push(f);
        }
    }
    v
}

fn location(p: &Problem) -> String {
    match (&p.path, p.line, p.column) {
        (Some(f), Some(l), Some(c)) => format!("{f}:{l}:{c}"),
        (Some(f), Some(l), None) => format!("{f}:{l}"),
        (Some(f), None, _) => f.clone(),
        (None, _, _) => "no file".into(),
    }
}

/// `text`'s lines around `line` (1-based), numbered, the error's line marked with `>`.
pub fn excerpt(text: &str, line: u32) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let line = line.clamp(1, lines.len() as u32);
    let from = line.saturating_sub(AROUND).max(1);
    let to = (line + AROUND).min(lines.len() as u32);
    let width = to.to_string().len();
    let mut out = String::new();
    for n in from..=to {
        let mark = if n == line { '>' } else { ' ' };
        out.push_str(&format!(
            "{mark} {n:>width$} | {}\n",
            lines[(n - 1) as usize]
        ));
    }
    out
}

/// The user message of a fix round. `read` gives a project file's current text.
pub fn prompt(problems: &[Problem], read: &dyn Fn(&str) -> Option<String>) -> String {
    let n = problems.len();
    let mut out = format!(
        "Fix {} in the app. Change only what is needed to fix {}; keep everything else as it \
         is. If an import names a file that does not exist, either write that file or remove \
         the import.\n",
        crate::wording::count(n, "error"),
        if n == 1 { "it" } else { "them" }
    );
    for (i, p) in problems.iter().enumerate() {
        out.push_str(&format!("\nError {} of {n} — {}", i + 1, location(p)));
        if let Some(s) = &p.source {
            out.push_str(&format!(" ({s})"));
        }
        out.push_str(&format!(":\n{}\n", p.message.trim()));
        if let Some(stack) = p.stack.as_deref().filter(|s| !s.trim().is_empty()) {
            out.push_str("Stack:\n");
            for l in stack.lines().take(STACK_LINES) {
                out.push_str(&format!("    {}\n", l.trim()));
            }
        }
        if let (Some(path), Some(line)) = (&p.path, p.line) {
            if let Some(text) = read(path) {
                let ex = excerpt(&text, line);
                if !ex.is_empty() {
                    out.push_str(&format!("The code ({path}):\n{ex}"));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str, line: u32, msg: &str) -> Problem {
        Problem {
            path: Some(path.into()),
            line: Some(line),
            column: Some(3),
            message: msg.into(),
            source: Some("ts".into()),
            stack: None,
        }
    }

    #[test]
    fn the_prompt_carries_message_place_stack_and_numbered_code() {
        let mut a = p("src/App.jsx", 3, "Cannot find name 'foo'.");
        a.stack = Some("Error: x\n    at App (src/App.jsx:3:3)".into());
        let text = "line1\nline2\nfoo();\nline4\n";
        let out = prompt(&[a], &|f| (f == "src/App.jsx").then(|| text.to_string()));
        assert!(out.starts_with("Fix 1 error in the app."), "{out}");
        assert!(out.contains("Error 1 of 1 — src/App.jsx:3:3 (ts):\nCannot find name 'foo'."));
        assert!(out.contains("    at App (src/App.jsx:3:3)"));
        assert!(out.contains("> 3 | foo();"), "{out}");
        assert!(out.contains("  1 | line1"), "{out}");
    }

    #[test]
    fn repeats_collapse_and_files_are_listed_once() {
        let v = dedupe(vec![
            p("a.js", 1, "x"),
            p("a.js", 1, "x "),
            p("a.js", 2, "x"),
        ]);
        assert_eq!(v.len(), 2);
        assert_eq!(
            files_named(&v, &["b.js".into(), "a.js".into()]),
            vec!["a.js", "b.js"]
        );
        let many: Vec<Problem> = (0..50).map(|i| p("a.js", i, "e")).collect();
        assert_eq!(dedupe(many).len(), MAX_PROBLEMS);
    }

    #[test]
    fn excerpts_stay_inside_the_file() {
        let text: String = (1..=40).map(|i| format!("l{i}\n")).collect();
        let ex = excerpt(&text, 40);
        assert!(ex.contains("> 40 | l40"));
        assert!(ex.starts_with("  28 |"), "{ex}");
        assert_eq!(excerpt("", 3), "");
        assert!(excerpt("only\n", 99).contains("> 1 | only"));
    }
}
