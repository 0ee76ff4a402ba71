//! `builder.fix` (the errors become the prompt of an edit-mode generation) and auto-fix after
//! a generation (the core's fix loop over [`AutoFix`], the server's `FixHost`).

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::ProgressToken;

use super::super::{invalid_params, parse_args, request_failed, Command, TaskCtx};
use super::{doc_and_project, execute, prepare, rel_of, start, uri_path, ContextArg, GenerateArgs};
use crate::generate::fix::rounds::{Attempt, FixHost};
use crate::generate::fix::{self, Problem};
use crate::generate::run::GenerateResult;
use crate::project::Project;
use crate::server::Backend;

/// A diagnostic as the client sends it (LSP's shape; extra fields are ignored).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DiagnosticArg {
    message: String,
    /// LSP range (0-based); where the error is.
    range: Option<RangeArg>,
    /// The file, when it is not the command's `uri`.
    uri: Option<String>,
    source: Option<String>,
    /// Ours carry `{stack}` here.
    data: Option<Value>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct RangeArg {
    start: PositionArg,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct PositionArg {
    line: u32,
    character: u32,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FixArgs {
    /// The file the errors are in (`file://` URI).
    uri: Option<String>,
    /// The errors to fix, e.g. the code action's `context.diagnostics` (any server's).
    diagnostics: Option<Vec<DiagnosticArg>>,
    /// Also every error the server knows (Vite's, the preview's) in `uri`, or in the whole
    /// project without `uri`. Default: true when no `diagnostics` are given.
    all: Option<bool>,
    /// `provider/model` (default: setting `model`).
    model: Option<String>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
    /// Answer with the full result when done instead of `{taskId, started}` at once.
    wait: Option<bool>,
    /// Hold the fix for review (default: setting `review`).
    review: Option<bool>,
}

/// `builder.fix`: the errors become the prompt of an edit-mode generation.
pub async fn fix(
    b: &Backend,
    cmd: Command,
    args: Value,
    token: Option<ProgressToken>,
) -> Result<Value> {
    let a: FixArgs = parse_args(cmd, args)?;
    let (doc_path, project) = doc_and_project(b, cmd, a.uri.as_deref(), a.project.as_deref())?;
    let doc_rel = doc_path.as_deref().and_then(|p| rel_of(&project, p));
    let mut problems = Vec::new();
    let given = a.diagnostics.unwrap_or_default();
    for (i, d) in given.iter().enumerate() {
        let path = match d.uri.as_deref() {
            Some(u) => Some(
                uri_path(u)
                    .and_then(|p| rel_of(&project, &p))
                    .ok_or_else(|| {
                        invalid_params(format!(
                            "{}: invalid argument `diagnostics[{i}].uri`: `{u}` is not a file of the project",
                            cmd.name()
                        ))
                    })?,
            ),
            None => doc_rel.clone(),
        };
        if d.message.trim().is_empty() {
            return Err(invalid_params(format!(
                "{}: invalid argument `diagnostics[{i}].message`: must not be empty",
                cmd.name()
            )));
        }
        problems.push(Problem {
            path,
            line: d.range.as_ref().map(|r| r.start.line + 1),
            column: d.range.as_ref().map(|r| r.start.character + 1),
            message: d.message.clone(),
            source: d.source.clone(),
            stack: d
                .data
                .as_ref()
                .and_then(|v| v.get("stack"))
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    if a.all.unwrap_or(given.is_empty()) {
        problems.extend(known_problems(&project, doc_rel.as_deref()));
    }
    let problems = fix::dedupe(problems);
    if problems.is_empty() {
        return Err(request_failed(format!(
            "{}: nothing to fix: no diagnostics were given and the project has no known errors",
            cmd.name()
        )));
    }
    let mut g = fix_args(b, &project, &problems, a.model);
    g.uri = a.uri;
    g.wait = a.wait;
    g.review = a.review;
    start(b, cmd, g, token, "fix").await
}

/// The errors the server knows (Vite's compile errors, the preview's runtime errors), in
/// `only` when given.
fn known_problems(project: &Arc<Project>, only: Option<&str>) -> Vec<Problem> {
    let session = project.sandbox();
    let (compile, runtime) = crate::server::preview::current(project, session.as_deref());
    let wanted = |p: &str| only.is_none_or(|d| d == p);
    let mut out = Vec::new();
    for e in compile.iter().filter(|e| wanted(&e.path)) {
        out.push(Problem {
            path: Some(e.path.clone()),
            line: Some(e.line),
            column: Some(e.column),
            message: e.message.clone(),
            source: Some("vite".into()),
            stack: None,
        });
    }
    for e in runtime
        .iter()
        .filter(|e| e.path.as_deref().is_none_or(wanted))
    {
        out.push(Problem {
            path: e.path.clone(),
            line: e.line,
            column: e.column,
            message: e.message.clone(),
            source: Some(crate::server::preview::SOURCE.into()),
            stack: e.stack.clone(),
        });
    }
    out
}

/// The generation that fixes `problems`: their files and the files their stacks pass through
/// as context, the prompt from `generate::fix`.
fn fix_args(
    b: &Backend,
    project: &Arc<Project>,
    problems: &[Problem],
    model: Option<String>,
) -> GenerateArgs {
    let runtime = project.preview_errors();
    let stack_files: Vec<String> = runtime
        .iter()
        .filter(|e| {
            problems
                .iter()
                .any(|p| p.message == e.message && p.path == e.path)
        })
        .flat_map(|e| e.frames.iter().filter_map(|f| f.file.clone()))
        .filter(|f| !f.starts_with('/') && !f.contains("node_modules"))
        .collect();
    let files = fix::files_named(problems, &stack_files);
    let read = |rel: &str| -> Option<String> {
        let abs = project.root.join(rel);
        b.st.docs
            .text_of_path(&abs)
            .or_else(|| std::fs::read_to_string(&abs).ok())
    };
    let prompt = fix::prompt(problems, &read);
    let context: Vec<ContextArg> = files
        .into_iter()
        .filter(|f| project.root.join(f).is_file())
        .take(8)
        .map(ContextArg::Path)
        .collect();
    GenerateArgs {
        prompt,
        model,
        is_edit: Some(true),
        apply: Some(true),
        context: Some(context),
        continue_truncated: None,
        allow_protected: None,
        uri: None,
        comment_line: None,
        install_packages: None,
        project: Some(project.root.display().to_string()),
        wait: Some(true),
        review: Some(false),
    }
}

/// How long the dev server may take to go quiet after a generation's files reached it.
const SETTLE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);
/// Quiet time that counts as settled.
const QUIET: std::time::Duration = std::time::Duration::from_millis(300);

/// Waits until the dev server's output is quiet, loads the page headlessly when a Chromium is
/// installed, and returns the errors then known.
async fn settle_and_collect(b: &Backend, project: &Arc<Project>) -> Vec<Problem> {
    let Some(s) = project.sandbox() else {
        return Vec::new();
    };
    let start = std::time::Instant::now();
    let mut last = s.recent_logs(1);
    let mut quiet_since = std::time::Instant::now();
    while start.elapsed() < SETTLE_LIMIT && quiet_since.elapsed() < QUIET {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = s.recent_logs(1);
        if now != last {
            last = now;
            quiet_since = std::time::Instant::now();
        }
    }
    if crate::sandbox::browser::find().is_ok() {
        if let Err(e) = crate::server::preview::check_page(
            b,
            project,
            &s,
            false,
            crate::sandbox::browser::LOAD_LIMIT,
        )
        .await
        {
            tracing::warn!("auto-fix: the headless check failed: {e}");
        }
    }
    fix::dedupe(known_problems(project, None))
}

/// Auto-fix on the server's project: checks settle the dev server and load the page; a fix
/// is a generation (`prepare` → `execute`), delivered and recorded like any other.
struct AutoFix<'a> {
    b: &'a Backend,
    project: &'a Arc<Project>,
    ctx: &'a TaskCtx,
    model: crate::ai::ModelId,
}

impl FixHost for AutoFix<'_> {
    async fn check(&self) -> std::result::Result<Vec<Problem>, String> {
        if self.project.sandbox().is_none() {
            return Err("the sandbox is no longer running".into());
        }
        Ok(settle_and_collect(self.b, self.project).await)
    }

    async fn fix(&self, round: u32, problems: &[Problem]) -> Attempt {
        let args = fix_args(self.b, self.project, problems, Some(self.model.to_string()));
        let job = match prepare(self.b, Command::Fix, args, "fix") {
            Ok(p) => p.job,
            Err(e) => {
                tracing::warn!("auto-fix round {round} not started: {}", e.message);
                return Attempt {
                    message: e.message.to_string(),
                    ..Attempt::default()
                };
            }
        };
        let r: GenerateResult = execute(self.b, self.project, job, self.ctx).await;
        let mut files = r.files_created.clone();
        files.extend(r.files_updated.iter().cloned());
        Attempt {
            ok: r.errors.is_empty() && (r.applied || files.is_empty()),
            files_changed: files,
            checkpoint: r.checkpoint,
            message: r.message,
        }
    }
}

/// Auto-fix after a generation: the core's fix loop on the project's running sandbox.
pub(super) async fn auto_fix(
    b: &Backend,
    project: &Arc<Project>,
    ctx: &TaskCtx,
    max_rounds: u32,
    model: crate::ai::ModelId,
) -> fix::rounds::Outcome {
    let host = AutoFix {
        b,
        project,
        ctx,
        model,
    };
    fix::rounds::run(&host, max_rounds, &ctx.reporter, &ctx.cancel).await
}
