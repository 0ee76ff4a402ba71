//! `textDocument/codeAction`: "Builder: <request>" on a prompt comment line runs
//! `builder.generate` in edit mode with that file as primary context; "Install X" quick fixes;
//! "Builder: Fix this error" on any server's diagnostic (runs `builder.fix`); and, in any file
//! of a project with a change set pending review, accept / discard it.

use serde_json::json;
use tower_lsp_server::ls_types::*;

use super::diagnostics::{CODE, SOURCE};
use super::Backend;
use crate::generate::comments::prompt_in_line;
use crate::packages::specifier::types_package;

/// Lines scanned per request, so a select-all never costs much.
const MAX_LINES: u32 = 400;

pub fn code_actions(b: &Backend, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let mut out = quick_fixes(b, params);
    out.extend(fix_actions(b, params));
    out.extend(prompt_actions(b, params));
    out.extend(review_actions(b, params));
    out
}

/// Severity error or warning (or unset: some servers leave it out).
fn fixable(d: &Diagnostic) -> bool {
    let missing_package =
        d.source.as_deref() == Some(SOURCE) && d.code == Some(NumberOrString::String(CODE.into()));
    !missing_package
        && matches!(
            d.severity,
            None | Some(DiagnosticSeverity::ERROR) | Some(DiagnosticSeverity::WARNING)
        )
}

/// "Builder: Fix this error" for each diagnostic the client passes (ours, Vite's, the
/// preview's, and other servers' — TypeScript, ESLint), and "Builder: Fix all errors in this
/// file" when the file has several.
fn fix_actions(b: &Backend, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    if uri
        .to_file_path()
        .and_then(|p| b.st.projects.for_path(&p))
        .is_none()
    {
        return Vec::new();
    }
    let here: Vec<&Diagnostic> = params
        .context
        .diagnostics
        .iter()
        .filter(|d| fixable(d))
        .collect();
    let mut out = Vec::new();
    let several = here.len() > 1;
    for d in &here {
        let title = if several {
            let msg: String = d
                .message
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(60)
                .collect();
            format!("Builder: Fix this error: {msg}")
        } else {
            "Builder: Fix this error".to_string()
        };
        out.push(quick_fix(
            title,
            "builder.fix",
            json!({ "uri": uri.as_str(), "diagnostics": [d] }),
            vec![(*d).clone()],
            false,
        ));
    }
    // Every fixable diagnostic the server published for the file, plus the client's.
    let mut known = super::diagnostics::published(b, uri);
    known.retain(fixable);
    for d in &here {
        if !known
            .iter()
            .any(|k| k.range == d.range && k.message == d.message)
        {
            known.push((*d).clone());
        }
    }
    if known.len() > 1 {
        out.push(quick_fix(
            format!("Builder: Fix all errors in this file ({})", known.len()),
            "builder.fix",
            json!({ "uri": uri.as_str(), "diagnostics": known, "all": true }),
            here.iter().map(|d| (*d).clone()).collect(),
            false,
        ));
    }
    out
}

/// "Builder: Accept pending changes" / "Builder: Discard pending changes" while the file's
/// project holds a change set for review.
fn review_actions(b: &Backend, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let Some(project) = uri.to_file_path().and_then(|p| b.st.projects.for_path(&p)) else {
        return Vec::new();
    };
    if project
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_none()
    {
        return Vec::new();
    }
    let root = project.root.display().to_string();
    [
        ("Accept", "builder.review.accept"),
        ("Discard", "builder.review.discard"),
    ]
    .into_iter()
    .map(|(verb, command)| {
        let title = format!("Builder: {verb} pending changes");
        CodeActionOrCommand::CodeAction(CodeAction {
            title: title.clone(),
            kind: Some(CodeActionKind::REFACTOR_REWRITE),
            command: Some(Command {
                title,
                command: command.into(),
                arguments: Some(vec![json!({ "project": root })]),
            }),
            ..Default::default()
        })
    })
    .collect()
}

fn install_action(
    title: String,
    packages: Vec<String>,
    dev: bool,
    project: &str,
    diags: Vec<Diagnostic>,
    preferred: bool,
) -> CodeActionOrCommand {
    let mut args = json!({ "packages": packages, "project": project });
    if dev {
        args["dev"] = json!(true);
    }
    quick_fix(title, "builder.installPackages", args, diags, preferred)
}

/// A quick fix that runs `command` with one argument object.
fn quick_fix(
    title: String,
    command: &str,
    args: serde_json::Value,
    diags: Vec<Diagnostic>,
    preferred: bool,
) -> CodeActionOrCommand {
    CodeActionOrCommand::CodeAction(CodeAction {
        title: title.clone(),
        kind: Some(CodeActionKind::QUICKFIX),
        diagnostics: Some(diags),
        is_preferred: Some(preferred),
        command: Some(Command {
            title,
            command: command.into(),
            arguments: Some(vec![args]),
        }),
        ..Default::default()
    })
}

/// "Install X", "Install all missing packages (N)", and for type-only imports the dev
/// dependency (and `@types/X` where that is the norm).
fn quick_fixes(b: &Backend, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let ours: Vec<&Diagnostic> = params
        .context
        .diagnostics
        .iter()
        .filter(|d| {
            d.source.as_deref() == Some(SOURCE)
                && d.code == Some(NumberOrString::String(CODE.into()))
        })
        .collect();
    if ours.is_empty() {
        return Vec::new();
    }
    let Some(project) = uri.to_file_path().and_then(|p| b.st.projects.for_path(&p)) else {
        return Vec::new();
    };
    let root = project.root.display().to_string();
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for d in &ours {
        let Some(data) = d.data.as_ref() else {
            continue;
        };
        let Some(pkg) = data.get("package").and_then(|v| v.as_str()) else {
            continue;
        };
        if seen.contains(&pkg) {
            continue;
        }
        seen.push(pkg);
        let type_only = data
            .get("typeOnly")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let diag = vec![(*d).clone()];
        if type_only {
            if let Some(types) = types_package(pkg) {
                out.push(install_action(
                    format!("Install {types} as a dev dependency"),
                    vec![types],
                    true,
                    &root,
                    diag.clone(),
                    true,
                ));
            }
            out.push(install_action(
                format!("Install {pkg} as a dev dependency"),
                vec![pkg.to_string()],
                true,
                &root,
                diag,
                false,
            ));
        } else {
            out.push(install_action(
                format!("Install {pkg}"),
                vec![pkg.to_string()],
                false,
                &root,
                diag,
                true,
            ));
        }
    }
    let all =
        b.st.debounce
            .missing
            .get(uri.as_str())
            .map(|v| v.clone())
            .unwrap_or_default();
    if all.len() > 1 {
        out.push(install_action(
            format!("Install all missing packages ({})", all.len()),
            all,
            false,
            &root,
            ours.iter().map(|d| (*d).clone()).collect(),
            false,
        ));
    }
    out
}

fn prompt_actions(b: &Backend, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let docs = &b.st.docs;
    let count = docs.line_count(uri) as u32;
    let start = params.range.start.line;
    let end = params
        .range
        .end
        .line
        .min(start.saturating_add(MAX_LINES))
        .min(count.saturating_sub(1));
    let mut out = Vec::new();
    for n in start..=end {
        let Some(line) = docs.line(uri, n as usize) else {
            break;
        };
        let Some(request) = prompt_in_line(&line) else {
            continue;
        };
        let title = format!("Builder: {request}");
        out.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: title.clone(),
            kind: Some(CodeActionKind::REFACTOR_REWRITE),
            command: Some(Command {
                title,
                command: "builder.generate".into(),
                arguments: Some(vec![json!({
                    "prompt": request,
                    "uri": uri.as_str(),
                    "commentLine": n,
                    "isEdit": true,
                })]),
            }),
            ..Default::default()
        }));
    }
    out
}
