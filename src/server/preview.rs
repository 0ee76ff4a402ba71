//! Errors the running app throws in the browser, as diagnostics (`source: "builder (preview)"`):
//! the preview plugin's report lines (`sandbox/preview`) arrive on the dev server's output; new
//! ones are published at once, a file's are forgotten when the file changes (pushed to the
//! sandbox), all are dropped with the sandbox. Also wakes a headless check when its page settles.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use tower_lsp_server::ls_types::*;

use super::diagnostics::publish_source;
use super::Backend;
use crate::project::Project;
use crate::sandbox::preview::{self, Event, RuntimeError};
use crate::sandbox::session::Session;
use crate::sandbox::vite_errors;

/// The diagnostics' source, so users (and the fix action) tell them from Vite's compile errors.
pub const SOURCE: &str = "builder (preview)";

/// A compile error Vite reported.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompileError {
    /// Relative to the project.
    pub path: String,
    /// 1-based.
    pub line: u32,
    /// 1-based.
    pub column: u32,
    pub message: String,
}

/// The project's current errors (compile errors from the dev server's recent output).
pub fn current(project: &Project, s: Option<&Session>) -> (Vec<CompileError>, Vec<RuntimeError>) {
    let compile = s
        .map(|s| {
            let dir = s.sandbox.project_dir();
            vite_errors::parse(&s.recent_logs(300), Path::new(&dir))
                .into_iter()
                .map(|e| CompileError {
                    path: e.file,
                    line: e.line,
                    column: e.column,
                    message: e.message,
                })
                .collect()
        })
        .unwrap_or_default();
    let runtime = project
        .preview
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .all()
        .to_vec();
    (compile, runtime)
}

/// Handles one dev-server line; `true` when it was a preview report.
pub fn on_line(b: &Backend, project: &Arc<Project>, line: &str) -> bool {
    let Some(event) = preview::parse_line(line) else {
        return false;
    };
    match event {
        Event::Error(e) => {
            tracing::debug!(kind = %e.kind, path = ?e.path, "preview error: {}", e.message);
            let new = project
                .preview
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .add(e);
            if new {
                let (b, project) = (b.clone(), project.clone());
                tokio::spawn(async move { publish(&b, &project).await });
            }
        }
        Event::Page { .. } => {}
        Event::Settled { check } => {
            if let Some((_, tx)) = b.st.checks.remove(&check) {
                let _ = tx.send(());
            }
        }
    }
    true
}

/// The files `rels` changed in the sandbox: their errors are stale until the page says again.
pub async fn files_changed(b: &Backend, project: &Arc<Project>, rels: &[String]) {
    let changed = {
        let mut p = project.preview.lock().unwrap_or_else(|e| e.into_inner());
        let mut any = false;
        for r in rels {
            any |= p.forget_file(r);
        }
        // An error no frame located cannot be tied to a file: any change may have fixed it.
        any | p.forget_unlocated()
    };
    if changed {
        publish(b, project).await;
    }
}

/// Drops every runtime error of the project (its sandbox went away).
pub async fn clear(b: &Backend, project: &Arc<Project>) {
    project
        .preview
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clear();
    publish(b, project).await;
}

fn diagnostic(e: &preview::RuntimeError) -> Diagnostic {
    let line = e.line.unwrap_or(1).saturating_sub(1);
    let col = e.column.unwrap_or(1).saturating_sub(1);
    let message = match e.kind.as_str() {
        "rejection" => format!("Unhandled rejection: {}", e.message),
        "load" => format!("Failed to load: {}", e.message),
        _ => e.message.clone(),
    };
    Diagnostic {
        range: Range {
            start: Position {
                line,
                character: col,
            },
            end: Position {
                line,
                character: col + 1,
            },
        },
        severity: Some(DiagnosticSeverity::ERROR),
        code: Some(NumberOrString::String(e.kind.clone())),
        source: Some(SOURCE.into()),
        message,
        // The stack rides along so "Fix this error" can give it to the model.
        data: Some(json!({ "kind": e.kind, "stack": e.stack, "count": e.count })),
        ..Default::default()
    }
}

/// Publishes the project's runtime errors, clearing files that no longer have any.
pub async fn publish(b: &Backend, project: &Arc<Project>) {
    let _one = b.st.preview_publish.lock().await;
    let errors = project
        .preview
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .all()
        .to_vec();
    let mut by_file: HashMap<PathBuf, Vec<Diagnostic>> = HashMap::new();
    for e in &errors {
        let Some(rel) = e.path.as_deref() else {
            continue;
        };
        let Ok(rel) = crate::edits::path::normalize(rel) else {
            continue;
        };
        by_file
            .entry(project.root.join(rel))
            .or_default()
            .push(diagnostic(e));
    }
    let old =
        b.st.preview_files
            .remove(&project.root)
            .map(|(_, v)| v)
            .unwrap_or_default();
    for f in old.iter().filter(|f| !by_file.contains_key(*f)) {
        if let Some(uri) = Uri::from_file_path(f) {
            publish_source(b, &uri, SOURCE, Vec::new(), None).await;
        }
    }
    let mut shown = Vec::new();
    for (path, diags) in by_file {
        if let Some(uri) = Uri::from_file_path(&path) {
            publish_source(b, &uri, SOURCE, diags, None).await;
        }
        shown.push(path);
    }
    b.st.preview_files.insert(project.root.clone(), shown);
}
