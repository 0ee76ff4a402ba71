//! `builder.generate` (a task): prompt → model stream → files applied as they complete.
//! `builder.fix` and auto-fix, which are generations too, are in [`fix`].

mod fix;

pub use fix::fix;
pub(crate) use fix::FixArgs;

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
use crate::generate::run::GenerateResult;
use crate::generate::{self, GenerateInput, Hooks, ModelChoiceError, PromptComment};
use crate::project::Project;
use crate::server::deliver::LspDeliver;
use crate::server::ext::{GenerationDelta, GenerationDeltaParams};
use crate::server::steps::ai_config;
use crate::server::Backend;

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
            let rounds = fix::auto_fix(&this, &p2, &ctx, auto_fix.max_rounds, model).await;
            result.errors_left = rounds.errors_left;
            result.fix_rounds = Some(rounds.rounds);
            result.fix_stopped = Some(rounds.stop.as_str().to_string());
        }
        Outcome::ended(
            ctx.cancel.is_cancelled(),
            result.errors.is_empty(),
            result.message.clone(),
            &result,
        )
    })
    .await
}
