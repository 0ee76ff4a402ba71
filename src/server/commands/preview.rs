//! `builder.sandbox.errors` (what the running app gets wrong: Vite's compile errors and the
//! browser's runtime errors) and `builder.sandbox.check` (load the preview in a headless
//! Chromium so both are produced, optionally with a screenshot).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{ShowDocumentParams, Uri};

use super::{parse_args, project_for, request_failed, to_value, Command};
use crate::project::Project;
use crate::sandbox::preview::RuntimeError;
use crate::server::preview::{check_page, current, CompileError};
use crate::server::Backend;

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
    let limit = Duration::from_millis(a.timeout_ms.unwrap_or(30_000).clamp(1_000, 120_000));
    let c = check_page(b, project, &s, a.screenshot.unwrap_or(false), limit)
        .await
        .map_err(|e| request_failed(format!("{}: {e}", cmd.name())))?;
    if let Some(p) = &c.screenshot {
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
        url: c.url,
        settled: c.settled,
        browser: c.browser,
        elapsed_ms: c.elapsed_ms,
        screenshot: c.screenshot.map(|p| p.display().to_string()),
        count: c.compile.len() + c.runtime.len(),
        compile: c.compile,
        runtime: c.runtime,
    }))
}
