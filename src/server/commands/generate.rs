//! `builder.generate` (a task): prompt → model stream → files applied as they complete.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::{ProgressToken, Uri};

use super::{
    invalid_params, parse_args, project_for, request_failed, run_task, Command, Outcome, TaskCtx,
};
use crate::apply::Deliver;
use crate::generate::context::ContextFile;
use crate::generate::fix::rounds::{Attempt, FixHost};
use crate::generate::fix::{self, Problem};
use crate::generate::run::GenerateResult;
use crate::generate::{self, GenerateInput, Hooks, ModelChoiceError, PromptComment};
use crate::project::Project;
use crate::server::deliver::LspDeliver;
use crate::server::ext::{GenerationDelta, GenerationDeltaParams};
use crate::server::steps::ai_config;
use crate::server::Backend;
use crate::tasks::TaskState;

/// How long a new generation waits for a cancelled one of the same project to wind down.
const CANCELLED_WIND_DOWN: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum ContextArg {
    /// A path (relative to the project, or absolute inside it) or a `file://` URI.
    Path(String),
    /// A file given inline, or a path whose content should be read.
    File {
        path: String,
        content: Option<String>,
    },
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct GenerateArgs {
    /// What to build or change.
    prompt: String,
    /// `provider/model`, e.g. `anthropic/claude-sonnet-4-5` (default: setting `model`, else the first provider with a key).
    model: Option<String>,
    /// Edit the existing app (default: true when the project has source files).
    is_edit: Option<bool>,
    /// Apply the answer's files as they arrive (default true); false only returns them.
    apply: Option<bool>,
    /// Extra files for the prompt: `{path}` or `{uri}`, optionally with `content`.
    context: Option<Vec<ContextArg>>,
    /// Ask the model once to finish a file its answer cut off (default: setting `continueTruncated`).
    continue_truncated: Option<bool>,
    /// Let the answer overwrite package.json, lockfiles, build configs and `.env*`.
    allow_protected: Option<bool>,
    /// The document the request is about (primary context).
    uri: Option<String>,
    /// Line of a `@builder` prompt comment in `uri`, removed when the edit lands.
    comment_line: Option<u32>,
    /// Install the packages the answer needs (default: setting `installPackages`).
    install_packages: Option<bool>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
    /// Answer with the full result when done instead of `{taskId, started}` at once.
    wait: Option<bool>,
    /// Hold the files for review until the answer is complete instead of streaming them into
    /// the workspace (default: setting `review`).
    review: Option<bool>,
}

fn rel_of(project: &Project, path: &Path) -> Option<String> {
    let rel = path
        .strip_prefix(&project.root)
        .or_else(|_| path.strip_prefix(&project.canonical_root))
        .ok()?;
    Some(rel.to_string_lossy().replace('\\', "/"))
}

fn uri_path(s: &str) -> Option<PathBuf> {
    let uri: Uri = s.parse().ok()?;
    uri.to_file_path().map(|p| p.into_owned())
}

pub async fn run(
    b: &Backend,
    cmd: Command,
    args: Value,
    token: Option<ProgressToken>,
) -> Result<Value> {
    let a: GenerateArgs = parse_args(cmd, args)?;
    if a.prompt.trim().is_empty() {
        return Err(invalid_params(
            "builder.generate: invalid argument `prompt`: must not be empty",
        ));
    }
    start(b, cmd, a, token, "generate").await
}

/// Everything a generation needs, checked before its task starts.
struct Job {
    config: crate::ai::config::AiConfig,
    input: GenerateInput,
    review: bool,
    install: bool,
    stream_deltas: bool,
    source: &'static str,
}

struct Prepared {
    project: Arc<Project>,
    wait: bool,
    title: String,
    auto_fix: crate::config::AutoFixSettings,
    job: Job,
}

/// The `uri` argument as a path, and the project: named by `project`, else `uri`'s.
fn doc_and_project(
    b: &Backend,
    cmd: Command,
    uri: Option<&str>,
    project: Option<&str>,
) -> Result<(Option<PathBuf>, Arc<Project>)> {
    let doc_path = match uri {
        Some(u) => Some(uri_path(u).ok_or_else(|| {
            invalid_params(format!(
                "{}: invalid argument `uri`: `{u}` is not a file URI",
                cmd.name()
            ))
        })?),
        None => None,
    };
    let hint = project
        .map(str::to_string)
        .or_else(|| doc_path.as_ref().map(|p| p.display().to_string()));
    Ok((doc_path, project_for(b, hint.as_deref())?))
}

/// Checks the arguments and gathers the input (no task yet, so errors answer the request).
fn prepare(b: &Backend, cmd: Command, a: GenerateArgs, source: &'static str) -> Result<Prepared> {
    let (doc_path, project) = doc_and_project(b, cmd, a.uri.as_deref(), a.project.as_deref())?;
    let settings = project.settings();
    let config = ai_config(&project);
    // Say which credential is missing now, not after a task was started.
    let model = generate::choose_model(&config, a.model.as_deref()).map_err(|e| match e {
        ModelChoiceError::Invalid(m) => {
            invalid_params(format!("{}: invalid argument `model`: {m}", cmd.name()))
        }
        other => request_failed(format!("{}: {other}", cmd.name())),
    })?;

    // Primary file and prompt comment (from the code action).
    let mut primary = None;
    let mut comment = None;
    if let Some(path) = &doc_path {
        if let Some(rel) = rel_of(&project, path) {
            let text =
                b.st.docs
                    .text_of_path(path)
                    .or_else(|| std::fs::read_to_string(path).ok())
                    .unwrap_or_default();
            if let (Some(n), Some(u)) = (
                a.comment_line,
                a.uri.as_deref().and_then(|u| u.parse::<Uri>().ok()),
            ) {
                if let Some(line) = b.st.docs.line(&u, n as usize) {
                    if generate::comments::prompt_in_line(&line).is_some() {
                        comment = Some(PromptComment {
                            path: rel.clone(),
                            line,
                        });
                    }
                }
            }
            primary = Some(ContextFile {
                path: rel,
                content: text,
                reason: "primary".into(),
            });
        }
    }
    let mut requested = Vec::new();
    for (i, c) in a.context.unwrap_or_default().into_iter().enumerate() {
        let (raw, content) = match c {
            ContextArg::Path(p) => (p, None),
            ContextArg::File { path, content } => (path, content),
        };
        let abs = if raw.starts_with("file:") {
            uri_path(&raw)
        } else {
            Some(super::user_path(&project, &raw))
        };
        let rel = abs
            .as_deref()
            .and_then(|p| rel_of(&project, p))
            .ok_or_else(|| {
                invalid_params(format!(
                    "{}: invalid argument `context[{i}]`: {raw} is outside the project",
                    cmd.name()
                ))
            })?;
        let content = match content {
            Some(c) => c,
            None => {
                let p = abs.unwrap_or_default();
                b.st.docs
                    .text_of_path(&p)
                    .or_else(|| std::fs::read_to_string(&p).ok())
                    .ok_or_else(|| {
                        invalid_params(format!(
                            "{}: invalid argument `context[{i}]`: cannot read {raw}",
                            cmd.name()
                        ))
                    })?
            }
        };
        requested.push(ContextFile {
            path: rel,
            content,
            reason: "requested".into(),
        });
    }
    let open_documents: Vec<ContextFile> =
        b.st.docs
            .texts_under(&project.root)
            .into_iter()
            .filter_map(|(p, text)| {
                rel_of(&project, &p).map(|rel| ContextFile {
                    path: rel,
                    content: text,
                    reason: "open in the editor".into(),
                })
            })
            .collect();
    let (history, recently_edited) = project
        .with_conversation(|c| {
            let h: Vec<(String, String)> = c
                .recent_messages(6)
                .iter()
                .map(|m| (m.role.clone(), m.content.clone()))
                .collect();
            (h, c.recently_edited_files(10))
        })
        .map(|(v, _)| v)
        .unwrap_or_default();
    let is_edit = a
        .is_edit
        .unwrap_or_else(|| !generate::context::list_files(&project.canonical_root, 1).is_empty());
    let input = GenerateInput {
        prompt: a.prompt.clone(),
        model,
        is_edit,
        apply: a.apply.unwrap_or(true),
        continue_truncated: a.continue_truncated.unwrap_or(settings.continue_truncated),
        allow_protected: a.allow_protected.unwrap_or(settings.allow_protected),
        primary,
        requested,
        open_documents,
        history,
        recently_edited,
        comment,
        context_tokens: settings.context_tokens,
        max_tokens: config.max_tokens,
        temperature: config.temperature,
    };
    let review = input.apply
        && a.review
            .unwrap_or(settings.review == crate::config::ReviewMode::On);
    // Under review nothing changes before the user has seen it, packages included.
    let install = !review && input.apply && a.install_packages.unwrap_or(settings.install_packages);
    let stream_deltas = b.caps().stream_deltas || settings.stream_deltas;
    let wait = a.wait.unwrap_or(false);
    let title = match source {
        "fix" => format!(
            "Fixing: {}",
            a.prompt
                .lines()
                .find(|l| l.starts_with("Error 1 of"))
                .unwrap_or("errors")
                .chars()
                .take(60)
                .collect::<String>()
        ),
        _ => format!(
            "Generating: {}",
            a.prompt.chars().take(60).collect::<String>()
        ),
    };
    Ok(Prepared {
        project,
        wait,
        title,
        auto_fix: settings.auto_fix.clone(),
        job: Job {
            config,
            input,
            review,
            install,
            stream_deltas,
            source,
        },
    })
}

/// The work of one generation, inside its task: stream, apply, install, review, record.
async fn execute(this: &Backend, p2: &Arc<Project>, job: Job, ctx: &TaskCtx) -> GenerateResult {
    let Job {
        config,
        input,
        review,
        install,
        stream_deltas,
        source,
    } = job;
    let client = this.ai_client(config);
    let meta = crate::history::Meta {
        source: source.into(),
        summary: input.prompt.chars().take(120).collect(),
        model: Some(input.model.to_string()),
        prompt: Some(input.prompt.clone()),
    };
    let deliver = LspDeliver::recording(this, p2, meta.clone());
    // Under review the files stream into a collector, not the workspace.
    let plain = LspDeliver::new(this, p2);
    let collecting = crate::review::Collecting::new(&plain);
    // Deltas go through a channel so the stream loop never awaits the client.
    let (dtx, drx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let forward = if stream_deltas {
        let c = this.client.clone();
        let task_id = ctx.task.id.clone();
        Some(tokio::spawn(crate::coalesce::forward(
            drx,
            crate::coalesce::Batching::DISPLAY,
            move |text| {
                let c = c.clone();
                let task_id = task_id.clone();
                async move {
                    c.send_notification::<GenerationDelta>(GenerationDeltaParams { task_id, text })
                        .await;
                }
            },
        )))
    } else {
        None
    };
    let on_delta = move |t: &str| {
        let _ = dtx.send(t.to_string());
    };
    let hooks = Hooks {
        reporter: ctx.reporter.clone(),
        on_delta: if stream_deltas { Some(&on_delta) } else { None },
        deliver: if review { &collecting } else { &deliver },
    };
    let prompt = input.prompt.clone();
    let mut result = generate::run(
        &client,
        &p2.canonical_root,
        input,
        hooks,
        ctx.cancel.clone(),
    )
    .await;
    drop(on_delta);
    if let Some(f) = forward {
        let _ = f.await;
    }
    // Files land as they stream; the packages they import are installed once the answer
    // is complete (a half-seen answer cannot say what it needs).
    if install && !ctx.cancel.is_cancelled() {
        let files: Vec<(String, String)> = result
            .files_created
            .iter()
            .chain(result.files_updated.iter())
            .filter_map(|rel| {
                let abs = p2.canonical_root.join(rel);
                let text = deliver
                    .open_text(&abs)
                    .or_else(|| std::fs::read_to_string(&abs).ok())?;
                Some((rel.clone(), text))
            })
            .collect();
        let needed = crate::install::needed_by_answer(&p2.canonical_root, &result.packages, &files);
        let mut r = crate::apply::ApplyResult::default();
        crate::server::steps::install_needed(this, p2, needed, &mut r, ctx).await;
        result.packages_installed = r.packages_installed;
        result.packages_already_installed = r.packages_already_installed;
        result.packages_failed = r.packages_failed;
        result.errors.extend(r.errors);
    }
    result.checkpoint = deliver.checkpoint_id();
    if review {
        let changes = collecting.take();
        result.files_created.clear();
        result.files_updated.clear();
        result.written_to_disk.clear();
        result.applied = false;
        if !changes.is_empty() && !ctx.cancel.is_cancelled() {
            let total = changes.len();
            let p = crate::server::steps::present(this, p2, changes, meta).await;
            result.checkpoint = p.checkpoint;
            let d = p.delivered;
            result.applied = d.landed() == total;
            result.files_created = d.created;
            result.files_updated = d.updated;
            result.written_to_disk = d.written_to_disk;
            result.files_declined = d.declined;
            result.errors.extend(d.errors);
            let note = crate::server::steps::describe(&p.outcome, result.files_declined.len());
            result.message = if p.outcome.mode == "pending" {
                note
            } else {
                let landed = result.files_created.len() + result.files_updated.len();
                let mut m = format!(
                    "{landed} of {} applied after review",
                    crate::wording::count(total, "file")
                );
                if !note.is_empty() {
                    m.push_str(&format!("; {note}"));
                }
                m
            };
            result.review = Some(p.outcome);
        }
    }
    if let Err(e) = p2.with_conversation(|c| generate::run::record(c, &prompt, &result)) {
        tracing::warn!("conversation not saved: {e}");
    }
    result
}

/// Starts a generation (`source` names it in the history: `generate`, `fix`).
async fn start(
    b: &Backend,
    cmd: Command,
    a: GenerateArgs,
    token: Option<ProgressToken>,
    source: &'static str,
) -> Result<Value> {
    let Prepared {
        project,
        wait,
        title,
        auto_fix,
        job,
    } = prepare(b, cmd, a, source)?;
    for other in [Command::Generate, Command::Fix] {
        if let Some(t) =
            b.st.tasks
                .busy(&project.root, other.name(), CANCELLED_WIND_DOWN)
                .await
        {
            return Err(request_failed(format!(
                "{}: busy: {} is still generating in this project; wait for it or cancel it with builder.task.cancel",
                cmd.name(),
                t.id
            )));
        }
    }
    let this = b.clone();
    let p2: Arc<Project> = project.clone();
    run_task(b, cmd, project, wait, token, title, move |ctx| async move {
        let model = job.input.model.clone();
        let mut result = execute(&this, &p2, job, &ctx).await;
        if auto_fix.mode == crate::config::AutoFixMode::On
            && !ctx.cancel.is_cancelled()
            && p2.sandbox().is_some()
        {
            let host = AutoFix {
                b: &this,
                project: &p2,
                ctx: &ctx,
                model,
            };
            let rounds =
                fix::rounds::run(&host, auto_fix.max_rounds, &ctx.reporter, &ctx.cancel).await;
            result.errors_left = rounds.errors_left;
            result.fix_rounds = Some(rounds.rounds);
            result.fix_stopped = Some(rounds.stop.as_str().to_string());
        }
        let state = if ctx.cancel.is_cancelled() {
            TaskState::Cancelled
        } else if result.errors.is_empty() {
            TaskState::Done
        } else {
            TaskState::Failed
        };
        Outcome {
            state,
            summary: result.message.clone(),
            result: serde_json::to_value(&result).unwrap_or(Value::Null),
        }
    })
    .await
}

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
