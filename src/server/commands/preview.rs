//! `builder.sandbox.errors` (what the running app gets wrong: Vite's compile errors and the
//! browser's runtime errors) and `builder.sandbox.check` (load the preview in a headless
//! Chromium so both are produced, optionally with a screenshot).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{ShowDocumentParams, Uri};

use super::{parse_args, project_for, request_failed, Command};
use crate::project::Project;
use crate::sandbox::browser;
use crate::sandbox::preview::{self, RuntimeError};
use crate::server::preview::{current, CompileError};
use crate::server::Backend;

/// After the browser is done: how long the page's "settled" report may still take to arrive.
const SETTLE_GRACE: Duration = Duration::from_secs(3);
/// Vite prints a compile error over several lines; its diagnostics follow ~60 ms later.
const COMPILE_GRACE: Duration = Duration::from_millis(150);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ErrorsArgs {
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CheckArgs {
    /// Also save a PNG of the page (1280×800) and open it.
    screenshot: Option<bool>,
    /// How long the page may take to load (default 30000, at most 120000).
    timeout_ms: Option<u64>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

/// The answer of `builder.sandbox.errors`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorsResult {
    /// Whether a sandbox runs (without one both lists are empty).
    running: bool,
    compile: Vec<CompileError>,
    runtime: Vec<RuntimeError>,
    /// `compile` + `runtime`.
    count: usize,
}

/// The answer of `builder.sandbox.check`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CheckResult {
    /// The page loaded (with the check marker).
    url: String,
    /// The page reported that it settled (no new error for 500 ms after `load`).
    settled: bool,
    /// The Chromium that loaded it.
    browser: String,
    elapsed_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    screenshot: Option<String>,
    compile: Vec<CompileError>,
    runtime: Vec<RuntimeError>,
    count: usize,
}

fn to_value(v: impl Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

pub async fn run(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    match cmd {
        Command::SandboxErrors => {
            let a: ErrorsArgs = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            let s = project.sandbox();
            let (compile, runtime) = current(&project, s.as_deref());
            Ok(to_value(ErrorsResult {
                running: s.is_some(),
                count: compile.len() + runtime.len(),
                compile,
                runtime,
            }))
        }
        Command::SandboxCheck => {
            let a: CheckArgs = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            check(b, cmd, &project, a).await
        }
        _ => Err(request_failed(format!(
            "{} is not a preview command",
            cmd.name()
        ))),
    }
}

async fn check(b: &Backend, cmd: Command, project: &Arc<Project>, a: CheckArgs) -> Result<Value> {
    let s = project.sandbox().ok_or_else(|| {
        request_failed(format!(
            "{}: no sandbox is running for this project; start one with builder.sandbox.create",
            cmd.name()
        ))
    })?;
    // Say "no Chromium" before anything else happens.
    browser::find().map_err(|e| request_failed(format!("{}: {e}", cmd.name())))?;
    let limit = Duration::from_millis(a.timeout_ms.unwrap_or(30_000).clamp(1_000, 120_000));
    let id = format!("{:016x}", fastrand::u64(..));
    let url = preview::check_url(&s.sandbox.info().url, &id);
    let (tx, rx) = tokio::sync::oneshot::channel();
    b.st.checks.insert(id.clone(), tx);
    let shot = a.screenshot.unwrap_or(false).then(|| {
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
    let loaded = loaded.map_err(|e| request_failed(format!("{}: {e}", cmd.name())))?;
    tokio::time::sleep(COMPILE_GRACE).await;
    let (compile, runtime) = current(project, Some(&s));
    let screenshot = loaded.screenshot.as_ref().map(|p| p.display().to_string());
    if let Some(p) = &loaded.screenshot {
        if b.caps().show_document {
            if let Some(uri) = Uri::from_file_path(p) {
                let _ = b
                    .client
                    .show_document(ShowDocumentParams {
                        uri,
                        external: Some(false),
                        take_focus: Some(false),
                        selection: None,
                    })
                    .await;
            }
        }
    }
    Ok(to_value(CheckResult {
        url,
        settled,
        browser: loaded.browser.display().to_string(),
        elapsed_ms: loaded.elapsed.as_millis() as u64,
        screenshot,
        count: compile.len() + runtime.len(),
        compile,
        runtime,
    }))
}
