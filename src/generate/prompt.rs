//! Prompts for the code model: the system rules (output format of `DESIGN.md` §5, code style,
//! new app vs edit), the user message with context files, compacted history, and the
//! "finish this truncated file" continuation.

use crate::generate::context::ContextFile;

/// Everything [`build`] needs for one generation call.
pub struct PromptInput<'a> {
    /// The user's prompt.
    pub request: &'a str,
    pub is_edit: bool,
    pub context: &'a [ContextFile],
    /// Recent conversation as `(role, content)`, oldest first; roles "user"/"assistant".
    pub history: &'a [(String, String)],
    /// Paths edited recently.
    pub recently_edited: &'a [String],
    /// Path of the file the request is about (prompt comment / open document).
    pub primary: Option<&'a str>,
    /// Output tokens the call allows; the prompt states exactly this budget.
    pub max_tokens: u32,
    /// Every project file path (edit mode lists those not shown, so the model reuses what exists
    /// instead of recreating it).
    pub project_files: &'a [String],
}

/// A system prompt plus chat messages `(role, content)`: the first is "user", roles
/// alternate, the last is the user's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPrompt {
    pub system: String,
    pub messages: Vec<(String, String)>,
}

/// At most this many history messages are replayed (four exchanges).
const HISTORY_MESSAGES: usize = 8;
/// Per-message caps for replayed history, in bytes.
const HISTORY_USER_CAP: usize = 1200;
const HISTORY_ASSISTANT_CAP: usize = 700;
/// A partial file larger than this is shown as head + tail in a continuation prompt.
const CONTINUATION_CAP: usize = 256 * 1024;
/// How many trailing lines of the partial file are quoted as "where it stopped".
const TAIL_LINES: usize = 4;

const INTRO: &str = "You are a senior front-end engineer who builds and edits React apps. \
The project uses React 18 (function components and hooks), Vite (page `index.html`, entry \
`src/main.jsx`) and Tailwind CSS 3. A program parses your answer and writes it straight into the \
user's project, so follow the output format exactly.";

const FORMAT: &str = "## Output format
- Put each file you create or rewrite in one block with its complete content, raw code only (no Markdown fences inside):
<file path=\"src/components/Badge.jsx\">
export default function Badge({ label }) {
  return <span className=\"rounded-full bg-indigo-100 px-3 py-1 text-sm text-indigo-700\">{label}</span>;
}
</file>
- Paths are relative to the project root (no leading `/`, no `..`). One block per file; never send two versions of the same file.
- Begin with <explanation>1-3 plain sentences on what you built or changed</explanation>.
- Add <package>name</package> for every npm package your code imports that the project may not have yet (one tag each; react and react-dom are always present). Never edit package.json to add dependencies.
- <command>the shell command</command> only when a shell command is truly required, which is rare; never to install packages or start the dev server.
- Write nothing else outside these tags.";

const COMPLETENESS: &str = "## Complete, working code
- Every file is complete from its first line to its last. Never write `...`, \"rest unchanged\", \"existing code here\", placeholder comments, TODOs or stub functions; write real content and working code instead.
- Close every JSX tag, string, bracket and brace. Every import must resolve to a package you list, a file that exists, or a file in your answer.
- A file cut off by the output limit is thrown away, so fewer complete files beat many partial ones.";

const STYLE: &str = "## Code style
- Function components with hooks, one component per file in `src/components/`, PascalCase names, default exports. Use `.jsx`, or `.tsx` if the project's files are TypeScript.
- Style only with standard Tailwind 3 utility classes (no invented classes such as `shadow-3xl`); mobile-first responsive (`sm:`, `md:`, `lg:`). No custom CSS unless the user asks for it, and no CSS imports in components: only `src/main.jsx` imports `./index.css`, which keeps the `@tailwind` directives.
- Accessible markup: semantic elements (header, nav, main, section, footer, button), alt text, labelled inputs, `aria-label` on icon-only buttons, visible focus styles, readable contrast.
- No external image URLs: use inline SVG, emoji or Tailwind gradients.
- Never write package.json, lockfiles, `vite.config.*`, `tailwind.config.*`, `postcss.config.*`, `tsconfig*.json` or `.env*`: they are managed for the user and such blocks are refused. Request packages with <package>.";

const NEW_APP: &str = "## This request: a new app
- Build a complete, polished, responsive app for the request, with realistic copy: as it fits, a header with navigation, a hero, content sections and a footer.
- `src/App.jsx` imports and arranges the components from `src/components/`; write App.jsx and every component it imports.
- Keep `src/main.jsx` (renders <App /> into #root and imports ./index.css) and `index.html` unless they must change. Files shown to you are the starter scaffold: replace them as needed.";

const EDIT: &str = "## This request: an edit of an existing app
- Change only what the request needs and touch only the files needed. Never regenerate the whole app or rewrite files the request does not concern.
- Keep the existing structure, names and visual style; do not rename or move files unless asked.
- The <current_file> blocks in the user message hold the current contents: they are the truth, newer than anything earlier in the conversation. Base every change on them.
- For a small change in a larger file, send an edit block instead of the whole file:
<edit path=\"src/components/Hero.jsx\">
<search>
      <h1 className=\"text-4xl font-bold\">Welcome</h1>
</search>
<replace>
      <h1 className=\"text-6xl font-bold\">Welcome</h1>
</replace>
</edit>
  Copy the search text exactly from the current file, indentation included, and make it match exactly once (add neighbouring lines if needed). One edit block may hold several search/replace pairs. Use <edit> only on files shown to you.
- For a new file, or a file you change heavily, send the whole file in a <file> block. Never send both a <file> and an <edit> for the same path.
- Wire new components in: import and render them in their parent (usually `src/App.jsx`).";

/// The system prompt for a generation call.
fn system_prompt(is_edit: bool, max_tokens: u32) -> String {
    let mode = if is_edit { EDIT } else { NEW_APP };
    let budget = format!(
        "## Output budget\nYour whole answer may use at most {max_tokens} tokens (roughly {} characters of code). \
Plan to finish well within it: prefer fewer, complete files, and keep prose minimal. \
Earlier assistant turns in the conversation are shown abbreviated; your answer must still contain complete blocks.",
        u64::from(max_tokens) * 3
    );
    [INTRO, FORMAT, COMPLETENESS, STYLE, mode, &budget].join("\n\n")
}

/// Builds the prompt for one generation call.
pub fn build(input: &PromptInput) -> BuiltPrompt {
    let system = system_prompt(input.is_edit, input.max_tokens);
    let request = input.request.trim();
    let (mut messages, unanswered) = history_messages(input.history, request);
    messages.push(("user".to_string(), user_message(input, &unanswered)));
    BuiltPrompt { system, messages }
}

/// The final user message: context files, notes, then the request.
fn user_message(input: &PromptInput, unanswered: &[String]) -> String {
    let mut out = String::new();
    if !input.context.is_empty() {
        out.push_str(if input.is_edit {
            "Current project files (their contents now):\n\n"
        } else {
            "Existing project files (starter scaffold):\n\n"
        });
        for f in input.context {
            out.push_str("<current_file path=\"");
            out.push_str(&attr(&f.path));
            out.push_str("\" reason=\"");
            out.push_str(&attr(&f.reason));
            out.push_str("\">\n");
            out.push_str(&f.content);
            if !f.content.is_empty() && !f.content.ends_with('\n') {
                out.push('\n');
            }
            out.push_str("</current_file>\n\n");
        }
        if input.context.iter().any(|f| f.reason.contains("truncated")) {
            out.push_str(
                "A file marked truncated is only partly shown: change it with <edit> blocks on the shown part, never rewrite it whole.\n\n",
            );
        }
    }
    if input.is_edit {
        let others: Vec<&str> = input
            .project_files
            .iter()
            .map(String::as_str)
            .filter(|p| !input.context.iter().any(|f| f.path == *p))
            .collect();
        if !others.is_empty() {
            const SHOWN: usize = 80;
            out.push_str("Other files in the project (not shown): ");
            out.push_str(
                &others
                    .iter()
                    .take(SHOWN)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            if others.len() > SHOWN {
                out.push_str(&format!(" and {} more", others.len() - SHOWN));
            }
            out.push_str(".\n");
        }
    }
    if let Some(p) = input.primary.map(str::trim).filter(|p| !p.is_empty()) {
        if input.context.iter().any(|f| f.path == p) {
            out.push_str(&format!(
                "The request is about `{p}` (the file marked primary above).\n"
            ));
        } else {
            out.push_str(&format!("The request is about `{p}`.\n"));
        }
    }
    let recent: Vec<&str> = input
        .recently_edited
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .take(10)
        .collect();
    if !recent.is_empty() {
        out.push_str(&format!("Recently edited files: {}.\n", recent.join(", ")));
    }
    for u in unanswered {
        out.push_str(&format!(
            "An earlier request got no reply: {}\n",
            shorten(u, HISTORY_USER_CAP)
        ));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out.push_str("Request:\n");
    let request = input.request.trim();
    out.push_str(if request.is_empty() {
        "(empty request: make no changes and say so in the explanation)"
    } else {
        request
    });
    out
}

/// Normalises history into alternating messages starting with "user" and ending with
/// "assistant"; returns them plus trailing user messages that never got an answer.
fn history_messages(
    history: &[(String, String)],
    request: &str,
) -> (Vec<(String, String)>, Vec<String>) {
    // The caller may already have recorded the current request as the last user message.
    let mut history = history;
    if let Some(((role, content), rest)) = history.split_last() {
        if role.trim().eq_ignore_ascii_case("user") && content.trim() == request {
            history = rest;
        }
    }
    let mut msgs: Vec<(String, String)> = Vec::new();
    for (role, content) in history {
        let role = role.trim().to_ascii_lowercase();
        if role != "user" && role != "assistant" {
            continue;
        }
        let content = if role == "assistant" {
            compact_assistant(content)
        } else {
            shorten(content.trim(), HISTORY_USER_CAP)
        };
        if content.is_empty() {
            continue;
        }
        match msgs.last_mut() {
            Some((r, c)) if *r == role => {
                c.push_str("\n\n");
                c.push_str(&content);
            }
            _ => msgs.push((role, content)),
        }
    }
    let mut unanswered = Vec::new();
    if msgs.last().is_some_and(|(r, _)| r == "user") {
        if let Some((_, c)) = msgs.pop() {
            unanswered.push(c);
        }
    }
    if msgs.len() > HISTORY_MESSAGES {
        msgs.drain(..msgs.len() - HISTORY_MESSAGES);
    }
    while msgs.first().is_some_and(|(r, _)| r == "assistant") {
        msgs.remove(0);
    }
    (msgs, unanswered)
}

/// Replaces file and edit bodies in an earlier answer with short markers, keeps the
/// explanation and a little prose, and caps the length.
fn compact_assistant(content: &str) -> String {
    let mut out = String::new();
    let mut rest = content;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let block = ["file", "edit"]
            .into_iter()
            .find(|t| tail.starts_with(&format!("<{t} ")) || tail.starts_with(&format!("<{t}>")));
        if let Some(tag) = block {
            let path = tag_path(tail).unwrap_or_default();
            let close = format!("</{tag}>");
            match tail.find(&close) {
                Some(j) => {
                    let verb = if tag == "file" { "wrote" } else { "edited" };
                    out.push_str(&format!(" [{verb} {path}] "));
                    rest = &tail[j + close.len()..];
                }
                None => {
                    out.push_str(&format!(" [{path} cut off]"));
                    rest = "";
                }
            }
        } else if let Some(t) = tail.strip_prefix("<explanation>") {
            let end = t.find("</explanation>").unwrap_or(t.len());
            out.push_str(t[..end].trim());
            out.push(' ');
            rest = t.get(end + "</explanation>".len()..).unwrap_or("");
        } else {
            out.push('<');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    let joined = out.split_whitespace().collect::<Vec<_>>().join(" ");
    shorten(&joined, HISTORY_ASSISTANT_CAP)
}

/// The `path` attribute of an opening tag at the start of `s`.
fn tag_path(s: &str) -> Option<String> {
    let head = &s[..s.find('>')?];
    let at = head.find("path=")? + "path=".len();
    let v = &head[at..];
    let q = v.chars().next()?;
    if q == '"' || q == '\'' {
        let v = &v[1..];
        Some(v[..v.find(q).unwrap_or(v.len())].to_string())
    } else {
        Some(v.split_whitespace().next().unwrap_or("").to_string())
    }
}

/// Caps `s` at about `max` bytes on a char boundary, marking the cut.
fn shorten(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} [shortened]", s[..end].trim_end())
}

/// Escapes a value for a double-quoted attribute on one line.
fn attr(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace(['\n', '\r'], " ")
}

const CONTINUATION_SYSTEM: &str = "You are a senior front-end engineer finishing a file for a React + Vite + Tailwind CSS project. \
A program parses your answer and writes the file into the project.
- Reply with only the complete file in one block: <file path=\"PATH\">entire content</file>, using exactly the given path. No explanation, no Markdown fences, no other blocks.
- Keep everything already written (fix only a line cut in the middle) and finish the rest so the file works.
- Never write `...`, \"rest unchanged\", placeholder comments or TODOs. Close every JSX tag, string, bracket and brace.
- Style with standard Tailwind utility classes only; no CSS imports in components.";

/// Asks the model to finish ONE truncated file: given its path and the partial content,
/// reply with only the complete file in one `<file path>` block.
pub fn continuation(path: &str, partial: &str, original_request: &str) -> BuiltPrompt {
    let path = attr(path.trim());
    let shown = if partial.len() > CONTINUATION_CAP {
        let half = CONTINUATION_CAP / 2;
        let mut a = half;
        while !partial.is_char_boundary(a) {
            a -= 1;
        }
        let mut b = partial.len() - half;
        while !partial.is_char_boundary(b) {
            b += 1;
        }
        format!(
            "{}\n[middle omitted for length]\n{}",
            &partial[..a],
            &partial[b..]
        )
    } else {
        partial.to_string()
    };
    let lines: Vec<&str> = partial.trim_end().lines().collect();
    let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n");
    let request = original_request.trim();
    let mut user = String::new();
    if !request.is_empty() {
        user.push_str("The original request was:\n");
        user.push_str(&shorten(request, 4000));
        user.push_str("\n\n");
    }
    user.push_str(&format!(
        "Your previous answer was cut off while writing `{path}`. What was written so far:\n\n<partial_file path=\"{path}\">\n{shown}"
    ));
    if !shown.ends_with('\n') {
        user.push('\n');
    }
    user.push_str("</partial_file>\n\n");
    if lines.len() > TAIL_LINES && !tail.trim().is_empty() {
        user.push_str(&format!("It stopped right after:\n{tail}\n\n"));
    }
    user.push_str(&format!(
        "Reply with only the complete `{path}`, from its first line to its last, in one <file path=\"{path}\"> block."
    ));
    BuiltPrompt {
        system: CONTINUATION_SYSTEM.replace("PATH", &path),
        messages: vec![("user".to_string(), user)],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::context::estimate_tokens;

    fn cf(path: &str, content: &str, reason: &str) -> ContextFile {
        ContextFile {
            path: path.into(),
            content: content.into(),
            reason: reason.into(),
        }
    }

    fn input<'a>(
        request: &'a str,
        is_edit: bool,
        context: &'a [ContextFile],
        history: &'a [(String, String)],
    ) -> PromptInput<'a> {
        PromptInput {
            request,
            is_edit,
            context,
            history,
            recently_edited: &[],
            primary: None,
            max_tokens: 8192,
            project_files: &[],
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(r, c)| (r.to_string(), c.to_string()))
            .collect()
    }

    fn assert_alternates(p: &BuiltPrompt, request: &str) {
        assert!(!p.messages.is_empty());
        assert_eq!(p.messages[0].0, "user");
        for w in p.messages.windows(2) {
            assert_ne!(w[0].0, w[1].0, "roles must alternate: {:?}", p.messages);
        }
        let last = p.messages.last().unwrap();
        assert_eq!(last.0, "user");
        assert!(last.1.trim_end().ends_with(request.trim()));
    }

    #[test]
    fn system_states_the_given_budget_and_nothing_more() {
        for max in [1024u32, 4000, 8192] {
            let p = build(&PromptInput {
                max_tokens: max,
                project_files: &[],
                ..input("x", true, &[], &[])
            });
            assert!(p.system.contains(&format!("at most {max} tokens")));
            assert!(!p.system.contains("16384") || max == 16384);
        }
        let p = build(&PromptInput {
            max_tokens: 4000,
            project_files: &[],
            ..input("x", false, &[], &[])
        });
        assert!(!p.system.contains("8192"));
    }

    #[test]
    fn system_prompt_fits_its_token_budget() {
        for edit in [false, true] {
            let s = system_prompt(edit, u32::MAX);
            let t = estimate_tokens(&s);
            assert!(t <= 1500, "system prompt is {t} tokens (edit={edit})");
        }
    }

    #[test]
    fn edit_and_new_prompts_differ() {
        let edit = build(&input("x", true, &[], &[])).system;
        let new = build(&input("x", false, &[], &[])).system;
        assert_ne!(edit, new);
        assert!(edit.contains("<edit path="));
        assert!(edit.contains("<search>") && edit.contains("<replace>"));
        assert!(edit.contains("only the files needed"));
        assert!(edit.contains("Never regenerate the whole app"));
        assert!(!new.contains("<edit path="));
        assert!(new.contains("src/components/"));
        assert!(new.contains("footer"));
    }

    #[test]
    fn system_covers_format_and_rules() {
        let s = build(&input("x", true, &[], &[])).system;
        for needle in [
            "<file path=\"",
            "</file>",
            "<explanation>",
            "<package>",
            "<command>",
            "relative to the project root",
            "Tailwind",
            "src/main.jsx",
            "index.html",
            "./index.css",
            "package.json",
            "vite.config",
            "tailwind.config",
            "postcss.config",
            "inline SVG",
            "fewer complete files",
        ] {
            assert!(s.contains(needle), "missing {needle:?}");
        }
    }

    #[test]
    fn placeholders_are_forbidden_never_suggested() {
        for edit in [false, true] {
            let s = system_prompt(edit, 8192);
            assert!(s.contains("Never write `...`"));
            // The only "..." in the prompt is inside the prohibition.
            assert_eq!(s.matches("...").count(), 1, "{s}");
            assert!(s.contains("TODO"));
            assert!(s.contains("rest unchanged"));
        }
        let c = continuation("a.js", "x", "y").system;
        assert_eq!(c.matches("...").count(), 1);
        assert!(c.contains("Never write `...`"));
    }

    #[test]
    fn context_blocks_are_in_the_user_message() {
        let ctx = [
            cf(
                "src/components/Hero.jsx",
                "export default function Hero() {}",
                "primary",
            ),
            cf(
                "src/App.jsx",
                "import Hero from './components/Hero'\n",
                "app root",
            ),
        ];
        let p = build(&PromptInput {
            primary: Some("src/components/Hero.jsx"),
            ..input("make the hero bigger", true, &ctx, &[])
        });
        let user = &p.messages.last().unwrap().1;
        assert!(user.contains(
            "<current_file path=\"src/components/Hero.jsx\" reason=\"primary\">\nexport default function Hero() {}\n</current_file>"
        ));
        assert!(user.contains("<current_file path=\"src/App.jsx\" reason=\"app root\">"));
        assert!(user.contains("marked primary"));
        assert!(user.find("Hero.jsx").unwrap() < user.find("src/App.jsx").unwrap());
        assert!(!p.system.contains("export default function Hero() {}"));
        assert!(user.ends_with("make the hero bigger"));
    }

    #[test]
    fn attributes_are_escaped_and_truncation_noted() {
        let ctx = [cf("a\"b.jsx", "x", "requested (truncated: 10 of 90 lines)")];
        let p = build(&input("r", true, &ctx, &[]));
        let user = &p.messages[0].1;
        assert!(user.contains("path=\"a&quot;b.jsx\""));
        assert!(user.contains("never rewrite it whole"));
    }

    #[test]
    fn history_alternates_and_ends_with_request() {
        let hist = h(&[
            ("assistant", "stray greeting"),
            ("user", "build a landing page"),
            (
                "assistant",
                "<explanation>Built it.</explanation>\n<file path=\"src/App.jsx\">\nexport default function App(){return <div/>}\n</file>",
            ),
            ("user", "add pricing"),
            ("user", "with three tiers"),
            ("system", "ignored"),
            ("assistant", "<edit path=\"src/App.jsx\"><search>a</search><replace>b</replace></edit> Done"),
            ("user", "now make the hero blue"),
        ]);
        let p = build(&input("now make the hero blue", true, &[], &hist));
        assert_alternates(&p, "now make the hero blue");
        assert_eq!(p.messages.len(), 5);
        assert_eq!(p.messages[0].1, "build a landing page");
        assert!(p.messages[1].1.contains("Built it."));
        assert!(p.messages[1].1.contains("[wrote src/App.jsx]"));
        assert!(!p.messages[1].1.contains("export default"));
        assert!(p.messages[2].1.contains("add pricing") && p.messages[2].1.contains("three tiers"));
        assert!(p.messages[3].1.contains("[edited src/App.jsx]"));
        // The duplicated current request is not repeated as history.
        assert_eq!(
            p.messages
                .iter()
                .filter(|(_, c)| c.contains("now make the hero blue"))
                .count(),
            1
        );
    }

    #[test]
    fn unanswered_and_long_history_is_bounded() {
        let mut pairs = Vec::new();
        for i in 0..30 {
            pairs.push((
                "user".to_string(),
                format!("request {i} {}", "é".repeat(2000)),
            ));
            pairs.push((
                "assistant".to_string(),
                format!("answer {i} <file path=\"a.js\">\nunclosed"),
            ));
        }
        pairs.push(("user".to_string(), "dangling question".to_string()));
        let p = build(&input("final ask", true, &[], &pairs));
        assert_alternates(&p, "final ask");
        assert!(p.messages.len() <= HISTORY_MESSAGES + 1);
        assert!(p.messages.iter().all(|(_, c)| c.len() < 20_000));
        assert!(p.messages[1].1.contains("[a.js cut off]"));
        assert!(p.messages.last().unwrap().1.contains("dangling question"));
        assert!(p.messages[0].1.contains("[shortened]"));
    }

    #[test]
    fn empty_and_unicode_inputs_do_not_panic() {
        let hist = h(&[
            ("assistant", "<file path="),
            ("user", ""),
            ("assistant", "<<<>>><edit"),
        ]);
        for req in ["", "   ", "把标题改大 🚀", "<file path=\"x\">"] {
            let p = build(&PromptInput {
                primary: Some(""),
                recently_edited: &["".to_string(), "src/App.jsx".to_string()],
                ..input(req, true, &[], &hist)
            });
            assert_eq!(p.messages.last().unwrap().0, "user");
            assert_eq!(p.messages[0].0, "user");
        }
        let c = continuation("", "", "");
        assert_eq!(c.messages.len(), 1);
        assert_eq!(shorten("ééé", 3), "é [shortened]");
    }

    #[test]
    fn edit_mode_lists_the_other_project_files() {
        let files = vec![
            "src/App.jsx".to_string(),
            "src/components/Footer.jsx".to_string(),
        ];
        let ctx = vec![ContextFile {
            path: "src/App.jsx".into(),
            content: "x".into(),
            reason: "app root".into(),
        }];
        let mut input = PromptInput {
            request: "add a footer",
            is_edit: true,
            context: &ctx,
            history: &[],
            recently_edited: &[],
            primary: None,
            max_tokens: 4000,
            project_files: &files,
        };
        let user = build(&input).messages.last().unwrap().1.clone();
        assert!(
            user.contains("Other files in the project (not shown): src/components/Footer.jsx."),
            "{user}"
        );
        input.is_edit = false;
        let user = build(&input).messages.last().unwrap().1.clone();
        assert!(!user.contains("Other files in the project"));
    }

    #[test]
    fn recently_edited_and_primary_outside_context_are_mentioned() {
        let recent = ["src/components/Footer.jsx".to_string()];
        let p = build(&PromptInput {
            recently_edited: &recent,
            primary: Some("src/components/Nav.jsx"),
            ..input("fix it", true, &[], &[])
        });
        let user = &p.messages[0].1;
        assert!(user.contains("Recently edited files: src/components/Footer.jsx."));
        assert!(user.contains("The request is about `src/components/Nav.jsx`."));
    }

    #[test]
    fn continuation_names_the_path_and_quotes_the_tail() {
        let partial = "import React from 'react'\n\nexport default function Pricing() {\n  return (\n    <section>\n      <h2 className=\"text-3xl\">Plans</h2>\n      <div className=\"grid";
        let p = continuation(
            "src/components/Pricing.jsx",
            partial,
            "add a pricing section",
        );
        assert_eq!(p.messages.len(), 1);
        assert_eq!(p.messages[0].0, "user");
        let user = &p.messages[0].1;
        assert!(user.contains("src/components/Pricing.jsx"));
        assert!(user.contains(partial));
        assert!(user.contains("It stopped right after:\n"));
        assert!(user.contains("<div className=\"grid\n\n"));
        assert!(user.contains("add a pricing section"));
        assert!(user.contains("<file path=\"src/components/Pricing.jsx\">"));
        assert!(p
            .system
            .contains("<file path=\"src/components/Pricing.jsx\">"));
        assert!(p.system.contains("only the complete file"));
    }

    #[test]
    fn continuation_caps_huge_partials() {
        let partial = "line ✓\n".repeat(100_000);
        let p = continuation("big.jsx", &partial, "r");
        assert!(p.messages[0].1.len() < CONTINUATION_CAP + 10_000);
        assert!(p.messages[0].1.contains("[middle omitted for length]"));
    }

    #[test]
    fn estimate_is_about_a_quarter_of_bytes() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcd"), 1);
        assert_eq!(estimate_tokens("abcde"), 2);
        assert_eq!(estimate_tokens(&"x".repeat(4000)), 1000);
    }
}
