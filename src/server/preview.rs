//! Errors the running app throws in the browser, as diagnostics (`source: "builder (preview)"`):
//! the preview plugin's report lines (`sandbox/preview`) arrive on the dev server's output; new
//! ones are published at once, a file's are forgotten when the file changes (pushed to the
//! sandbox), all are dropped with the sandbox. Also wakes a headless check when its page settles.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tower_lsp_server::ls_types::*;

use super::diagnostics::publish_source;
use super::Backend;
use crate::project::Project;
use crate::sandbox::browser;
use crate::sandbox::preview::{self, Event, RuntimeError};
use crate::sandbox::session::{self, Session};

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
            s.compile_errors(&project.canonical_root)
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
    let runtime = project.preview_errors();
    (compile, runtime)
}

/// After the browser is done: how long the page's "settled" report may still take to arrive.
const SETTLE_GRACE: Duration = Duration::from_secs(3);
/// Vite prints a compile error over several lines; its diagnostics follow ~60 ms later.
const COMPILE_GRACE: Duration = Duration::from_millis(150);

/// What a headless check saw.
pub struct Checked {
    pub url: String,
    pub settled: bool,
    pub browser: String,
    pub elapsed_ms: u64,
    pub screenshot: Option<PathBuf>,
    pub compile: Vec<CompileError>,
    pub runtime: Vec<RuntimeError>,
}

/// Loads the preview once in a headless Chromium and returns the errors known afterwards.
pub async fn check_page(
    b: &Backend,
    project: &Arc<Project>,
    s: &Session,
    screenshot: bool,
    limit: Duration,
) -> Result<Checked, browser::BrowserError> {
    // Say "no Chromium" before anything else happens.
    browser::find()?;
    let id = format!("{:016x}", fastrand::u64(..));
    let url = preview::check_url(&s.sandbox.info().url, &id);
    let (tx, rx) = tokio::sync::oneshot::channel();
    b.st.checks.insert(id.clone(), tx);
    let shot = screenshot.then(|| {
        std::env::temp_dir()
            .join("builder-lsp")
            .join(format!("check-{id}.png"))
    });
    if let Some(dir) = shot.as_deref().and_then(Path::parent) {
        let _ = std::fs::create_dir_all(dir);
    }
    let loaded = browser::load(&url, shot.as_deref(), limit).await;
    let settled = match &loaded {
        Ok(_) => tokio::time::timeout(SETTLE_GRACE, rx)
            .await
            .is_ok_and(|r| r.is_ok()),
        Err(_) => false,
    };
    b.st.checks.remove(&id);
    let loaded = loaded?;
    tokio::time::sleep(COMPILE_GRACE).await;
    let (compile, runtime) = current(project, Some(s));
    Ok(Checked {
        url,
        settled,
        browser: loaded.browser.display().to_string(),
        elapsed_ms: loaded.elapsed.as_millis() as u64,
        screenshot: loaded.screenshot,
        compile,
        runtime,
    })
}

/// Handles one dev-server line; `true` when it was a preview report.
pub fn on_line(b: &Backend, project: &Arc<Project>, line: &str) -> bool {
    let Some(event) = preview::parse_line(line) else {
        return false;
    };
    match event {
        // A compile error the page was shown is already a `vite` diagnostic, from the log.
        Event::Error(e) if e.kind == "vite" => {}
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

/// The files `rels` changed in the sandbox: their errors are stale until the dev server or
/// the page says again.
pub async fn files_changed(b: &Backend, project: &Arc<Project>, rels: &[String]) {
    if rels.is_empty() {
        return;
    }
    // Vite says a file is fine again only to a connected page; the marker tells the compile
    // error parser that errors logged before it for these files are stale.
    if let Some(s) = project.sandbox() {
        s.note_changed(rels);
        let had_compile_errors =
            b.st.vite_files
                .get(&project.root)
                .is_some_and(|v| !v.is_empty());
        if had_compile_errors {
            publish_vite_diagnostics(b, project).await;
        }
    }
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
    let errors = project.preview_errors();
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

/// Turns dev-server output into diagnostics: errors Vite reports are published on the file
/// and line they name; a later successful update of that file clears them.
pub fn vite_line_handler(b: &Backend, project: &Arc<Project>) -> session::LineHook {
    let this = b.clone();
    let project = project.clone();
    let pending = Arc::new(std::sync::atomic::AtomicBool::new(false));
    Arc::new(move |line: &str| {
        if on_line(&this, &project, line) {
            return;
        }
        let lower = line.to_ascii_lowercase();
        let relevant = lower.contains("error")
            || lower.contains("hmr update")
            || lower.contains("page reload")
            || lower.contains("failed to resolve");
        if !relevant || pending.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let this = this.clone();
        let project = project.clone();
        let pending = pending.clone();
        tokio::spawn(async move {
            // Let the rest of a multi-line error arrive, then parse once.
            tokio::time::sleep(std::time::Duration::from_millis(60)).await;
            pending.store(false, std::sync::atomic::Ordering::SeqCst);
            publish_vite_diagnostics(&this, &project).await;
        });
    })
}

pub async fn publish_vite_diagnostics(b: &Backend, project: &Arc<Project>) {
    let Some(s) = project.sandbox() else { return };
    let errors = s.compile_errors(&project.canonical_root);
    let mut by_file: HashMap<PathBuf, Vec<Diagnostic>> = HashMap::new();
    for e in errors {
        let Ok(rel) = crate::edits::path::normalize(&e.file) else {
            continue;
        };
        let path = project.root.join(rel);
        by_file.entry(path).or_default().push(Diagnostic {
            range: Range {
                start: Position {
                    line: e.line.saturating_sub(1),
                    character: e.column.saturating_sub(1),
                },
                end: Position {
                    line: e.line.saturating_sub(1),
                    character: e.column,
                },
            },
            severity: Some(DiagnosticSeverity::ERROR),
            source: Some("vite".into()),
            message: e.message,
            ..Default::default()
        });
    }
    let old =
        b.st.vite_files
            .remove(&project.root)
            .map(|(_, v)| v)
            .unwrap_or_default();
    // Files that had errors and have none now are cleared.
    for f in old.iter().filter(|f| !by_file.contains_key(*f)) {
        if let Some(uri) = Uri::from_file_path(f) {
            publish_source(b, &uri, "vite", Vec::new(), None).await;
        }
    }
    let mut shown = Vec::new();
    for (path, diags) in by_file {
        if let Some(uri) = Uri::from_file_path(&path) {
            publish_source(b, &uri, "vite", diags, None).await;
        }
        shown.push(path);
    }
    b.st.vite_files.insert(project.root.clone(), shown);
}

pub async fn clear_vite_diagnostics(b: &Backend, project: &Arc<Project>) {
    clear(b, project).await;
    let files =
        b.st.vite_files
            .remove(&project.root)
            .map(|(_, v)| v)
            .unwrap_or_default();
    for f in files {
        if let Some(uri) = Uri::from_file_path(&f) {
            publish_source(b, &uri, "vite", Vec::new(), None).await;
        }
    }
}
