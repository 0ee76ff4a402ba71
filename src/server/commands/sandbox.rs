//! `builder.sandbox.*`: create/status/kill/files/restart/logs/run, plus the links between the
//! editor and a running sandbox (saved documents pushed to it, Vite errors as diagnostics,
//! the preview opened). The flow is `sandbox::session`; this module only translates.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::{
    invalid_params, parse_args, project_for, request_failed, run_task, to_value, Command, Outcome,
};
use crate::apply::{Deliver, FileChange};
use crate::config;
use crate::project::Project;
use crate::sandbox::record;
use crate::sandbox::session::{self, CreateOptions, Session, Status};
use crate::sandbox::{local::Isolation, CommandSpec, ProviderKind, SandboxFile};
use crate::server::deliver::LspDeliver;
use crate::server::preview::{clear_vite_diagnostics, vite_line_handler};
use crate::server::Backend;
use crate::tasks::TaskState;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct CreateArgs {
    /// `local` (default), `e2b`, `vercel`.
    provider: Option<String>,
    /// `react-vite`; default: that template when the workspace has no package.json.
    template: Option<String>,
    /// `auto`, `bwrap`, `none` (local sandboxes).
    isolation: Option<String>,
    /// Local sandboxes behind a path-prefix proxy (code-server, web IDEs): the URL path the
    /// preview is served under, `{{port}}` for the dev server's port, e.g. `/proxy/{{port}}/`.
    /// Default: setting `sandbox.previewBase`, else `/`.
    preview_base: Option<String>,
    /// Open the preview when ready (default: setting `sandbox.openPreview`).
    open: Option<bool>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
    /// Answer with the full result when done instead of `{taskId, started}` at once.
    wait: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProjectOnly {
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
    /// Answer with the full result when done instead of `{taskId, started}` at once.
    wait: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct FilesArgs {
    /// A subfolder to list instead of the whole project.
    path: Option<String>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LogsArgs {
    /// How many recent lines (default 200).
    lines: Option<usize>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RunArgs {
    /// The program (no shell: pipes, globs and variables are not expanded).
    command: String,
    /// Its arguments.
    args: Option<Vec<String>>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
    /// Answer with the full result when done instead of `{taskId, started}` at once.
    wait: Option<bool>,
}

/// The answer of `builder.sandbox.kill`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct KillResult {
    killed: bool,
    sandbox_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// The answer of `builder.sandbox.logs`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct LogsResult {
    /// Most recent last, without ANSI colours.
    lines: Vec<String>,
}

/// The answer of `builder.sandbox.restart`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub(crate) struct RestartResult {
    url: Option<String>,
    errors: Vec<String>,
}

pub async fn run(
    b: &Backend,
    cmd: Command,
    args: Value,
    token: Option<ProgressToken>,
) -> Result<Value> {
    match cmd {
        Command::SandboxCreate => create(b, cmd, args, token).await,
        Command::SandboxStatus => {
            let a: ProjectOnly = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            let status = match project.sandbox() {
                Some(s) => s.status().await,
                None => Status::none(),
            };
            Ok(to_value(status))
        }
        Command::SandboxKill => {
            let a: ProjectOnly = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            let _g = project.sandbox_lock.lock().await;
            match project.set_sandbox(None) {
                Some(s) => {
                    record::remove_own(&project.root);
                    let id = s.sandbox.info().sandbox_id;
                    let killed = s.kill().await;
                    clear_vite_diagnostics(b, &project).await;
                    if let Err(e) = killed {
                        return Err(request_failed(format!("builder.sandbox.kill: {id}: {e}")));
                    }
                    Ok(to_value(KillResult {
                        killed: true,
                        sandbox_id: Some(id),
                        message: None,
                    }))
                }
                None => Ok(to_value(KillResult {
                    killed: false,
                    sandbox_id: None,
                    message: Some("no sandbox is running for this project".into()),
                })),
            }
        }
        Command::SandboxFiles => {
            let a: FilesArgs = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            let s = running(&project, cmd)?;
            let sub = match a.path.as_deref() {
                None | Some("") | Some(".") => None,
                Some(p) => Some(
                    crate::edits::path::normalize(p.trim_end_matches('/')).map_err(|e| {
                        invalid_params(format!("{}: invalid argument `path`: {p}: {e}", cmd.name()))
                    })?,
                ),
            };
            let listing = crate::sandbox::manifest::collect(s.sandbox.as_ref(), sub.as_deref())
                .await
                .map_err(|e| request_failed(format!("{}: {e}", cmd.name())))?;
            Ok(to_value(listing))
        }
        Command::SandboxLogs => {
            let a: LogsArgs = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            let s = running(&project, cmd)?;
            Ok(to_value(LogsResult {
                lines: s.recent_logs(a.lines.unwrap_or(200)),
            }))
        }
        Command::SandboxRestart => {
            let a: ProjectOnly = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            let s = running(&project, cmd)?;
            let on_line = vite_line_handler(b, &project);
            run_task(
                b,
                cmd,
                project,
                a.wait.unwrap_or(false),
                token,
                "Restarting the dev server".into(),
                move |ctx| async move {
                    match s.restart(Some(on_line), &ctx.cancel).await {
                        Ok(url) => Outcome {
                            state: TaskState::Done,
                            summary: format!("dev server restarted at {url}"),
                            result: to_value(RestartResult {
                                url: Some(url),
                                errors: Vec::new(),
                            }),
                        },
                        Err(e) => Outcome {
                            state: TaskState::Failed,
                            summary: format!("restart failed: {e}"),
                            result: to_value(RestartResult {
                                url: None,
                                errors: vec![e.to_string()],
                            }),
                        },
                    }
                },
            )
            .await
        }
        Command::SandboxRun => {
            let a: RunArgs = parse_args(cmd, args)?;
            if a.command.trim().is_empty() {
                return Err(invalid_params(format!(
                    "{}: invalid argument `command`: empty",
                    cmd.name()
                )));
            }
            let project = project_for(b, a.project.as_deref())?;
            let s = running(&project, cmd)?;
            let spec = CommandSpec::new(a.command.clone(), a.args.clone().unwrap_or_default());
            run_task(
                b,
                cmd,
                project,
                a.wait.unwrap_or(true),
                token,
                format!("Running {}", a.command),
                move |ctx| async move {
                    let rep = ctx.reporter.clone();
                    let sink: crate::sandbox::LineSink = Arc::new(move |_, l: &str| {
                        rep(crate::events::Event::Output(l.to_string()))
                    });
                    match s.sandbox.run(&spec, sink, ctx.cancel.clone()).await {
                        Ok(o) => Outcome::ended(
                            false,
                            o.exit_code == 0,
                            format!("`{}` exited with {}", spec.program, o.exit_code),
                            &o,
                        ),
                        Err(crate::sandbox::SandboxError::Cancelled) => Outcome {
                            state: TaskState::Cancelled,
                            summary: format!("`{}` cancelled", spec.program),
                            result: json!({"exitCode": null, "stdout": "", "stderr": "", "errors": ["cancelled"]}),
                        },
                        Err(e) => Outcome {
                            state: TaskState::Failed,
                            summary: format!("`{}` failed: {e}", spec.program),
                            result: json!({"exitCode": null, "stdout": "", "stderr": "", "errors": [e.to_string()]}),
                        },
                    }
                },
            )
            .await
        }
        _ => Err(request_failed(format!(
            "{} is not a sandbox command",
            cmd.name()
        ))),
    }
}

fn running(project: &Project, cmd: Command) -> Result<Arc<Session>> {
    project.sandbox().ok_or_else(|| {
        request_failed(format!(
            "{}: no sandbox is running for {}; create one with builder.sandbox.create",
            cmd.name(),
            project.root.display()
        ))
    })
}

async fn create(
    b: &Backend,
    cmd: Command,
    args: Value,
    token: Option<ProgressToken>,
) -> Result<Value> {
    let a: CreateArgs = parse_args(cmd, args)?;
    let project = project_for(b, a.project.as_deref())?;
    let settings = project.settings();
    let provider_name = a
        .provider
        .clone()
        .unwrap_or(settings.sandbox.provider.clone());
    let provider = ProviderKind::parse(&provider_name).ok_or_else(|| {
        let field = if a.provider.is_some() {
            "argument `provider`"
        } else {
            "setting `sandbox.provider`"
        };
        invalid_params(format!(
            "{}: invalid {field}: `{provider_name}` (expected local, e2b or vercel)",
            cmd.name()
        ))
    })?;
    if let Some(t) = &a.template {
        session::template_files(t).map_err(|e| {
            invalid_params(format!("{}: invalid argument `template`: {e}", cmd.name()))
        })?;
    }
    let iso_name = a
        .isolation
        .clone()
        .unwrap_or(settings.sandbox.isolation.clone());
    let isolation = Isolation::parse(&iso_name).ok_or_else(|| {
        invalid_params(format!(
            "{}: invalid argument `isolation`: `{iso_name}` (expected auto, bwrap or none)",
            cmd.name()
        ))
    })?;
    let (base_raw, base_field) = match &a.preview_base {
        Some(v) => (v.clone(), "argument `previewBase`"),
        None => (
            settings.sandbox.preview_base.clone(),
            "setting `sandbox.previewBase`",
        ),
    };
    let preview_base = crate::sandbox::preview::parse_base(&base_raw)
        .map_err(|e| invalid_params(format!("{}: invalid {base_field}: {e}", cmd.name())))?;
    let env = Arc::new(config::environment(Some(&project.root)));
    let opts = CreateOptions {
        provider,
        template: a.template.clone(),
        isolation,
        env: Arc::new(move |k: &str| env.get(k).cloned()),
        http: b.http(),
        project_key: project.name.clone(),
        preview_base,
    };
    // Missing credentials are known before any work: fail the request itself, clearly.
    session::check_credentials(&opts)
        .map_err(|e| request_failed(format!("{}: {e}", cmd.name())))?;
    let open = a.open.unwrap_or(settings.sandbox.open_preview);
    let this = b.clone();
    let p2 = project.clone();
    run_task(
        b,
        cmd,
        project,
        a.wait.unwrap_or(false),
        token,
        format!("Creating a {} sandbox", provider.as_str()),
        move |ctx| async move {
            match create_in_project(&this, &p2, &opts, &ctx.reporter, &ctx.cancel).await {
                Ok(r) => {
                    if open {
                        open_preview(&this, &r.url).await;
                    }
                    Outcome::of(TaskState::Done, format!("sandbox ready at {}", r.url), &r)
                }
                Err(e) => Outcome {
                    state: if matches!(e, crate::sandbox::SandboxError::Cancelled) {
                        TaskState::Cancelled
                    } else {
                        TaskState::Failed
                    },
                    summary: format!("sandbox not created: {e}"),
                    result: json!({"sandboxId": null, "provider": provider, "url": null,
                                   "errors": [e.to_string()]}),
                },
            }
        },
    )
    .await
}

/// Replaces the project's sandbox with a new one; an empty workspace gets the template too.
pub async fn create_in_project(
    b: &Backend,
    project: &Arc<Project>,
    opts: &CreateOptions,
    reporter: &crate::events::Reporter,
    cancel: &CancellationToken,
) -> std::result::Result<session::CreateResult, crate::sandbox::SandboxError> {
    let _g = project.sandbox_lock.lock().await;
    if let Some(old) = project.set_sandbox(None) {
        reporter(crate::events::Event::Status(
            "Stopping the previous sandbox".into(),
        ));
        let _ = old.kill().await;
        clear_vite_diagnostics(b, project).await;
    }
    let on_line = vite_line_handler(b, project);
    let (s, mut result) =
        session::create(&project.root, opts, reporter, Some(on_line), cancel).await?;
    let session = Arc::new(s);
    // The workspace's share (template files, package.json) goes out before the session is
    // registered, so these edits are not pushed back into the sandbox that has them already
    // (Vite would restart).
    let d = LspDeliver::recording(
        b,
        project,
        crate::history::Meta {
            source: "sandbox".into(),
            summary: "sandbox template and package.json".into(),
            ..Default::default()
        },
    );
    let changes = session::workspace_changes(
        &project.canonical_root,
        opts.template.as_deref(),
        &mut result,
        &|p| d.open_text(p).or_else(|| std::fs::read_to_string(p).ok()),
    )?;
    let changes: Vec<FileChange> = changes
        .into_iter()
        .map(|mut c| {
            c.open = d.open_text(&c.abs).is_some();
            c
        })
        .collect();
    let delivered = d.deliver(&changes).await;
    if !result.template_applied.is_empty() {
        result.template_applied = delivered.created;
    }
    project.set_sandbox(Some(session.clone()));
    record::save(&project.root, &record::Record::new(&session.sandbox.info()));
    Ok(result)
}

/// Opens the preview in the user's browser (`window/showDocument`), or tells them the URL.
pub async fn open_preview(b: &Backend, url: &str) {
    if b.caps().show_document {
        if let Ok(uri) = url.parse::<Uri>() {
            let shown = b
                .client
                .show_document(ShowDocumentParams {
                    uri,
                    external: Some(true),
                    take_focus: Some(true),
                    selection: None,
                })
                .await;
            if matches!(shown, Ok(true)) {
                return;
            }
        }
    }
    b.client
        .show_message(MessageType::INFO, format!("Builder: preview at {url}"))
        .await;
}

/// A saved document goes to the running sandbox (its bytes as saved on disk).
pub async fn push_saved(b: &Backend, path: &Path, text: Option<String>) {
    let Some(project) = b.st.projects.for_path(path) else {
        return;
    };
    let Some(session) = project.sandbox() else {
        return;
    };
    let rel = path
        .strip_prefix(&project.root)
        .or_else(|_| path.strip_prefix(&project.canonical_root));
    let Ok(rel) = rel else { return };
    let rel = rel.to_string_lossy().replace('\\', "/");
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if crate::archive::file_reason(&name).is_some() {
        // Secrets never leave the workspace.
        return;
    }
    let bytes = match text {
        Some(t) => t.into_bytes(),
        None => match tokio::fs::read(path).await {
            Ok(b) => b,
            Err(_) => return,
        },
    };
    if let Err(e) = session
        .sandbox
        .write_files(&[SandboxFile {
            path: rel.clone(),
            bytes,
        }])
        .await
    {
        tracing::warn!("pushing {rel} to the sandbox failed: {e}");
    }
    crate::server::preview::files_changed(b, &project, &[rel]).await;
}

/// Kills every project's sandbox (shutdown).
pub async fn kill_all(b: &Backend) {
    for p in b.st.projects.all() {
        if let Some(s) = p.set_sandbox(None) {
            record::remove_own(&p.root);
            let _ = s.kill().await;
        }
    }
}
