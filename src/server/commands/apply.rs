//! `builder.apply`: parse the answer, plan safe changes, deliver them as ONE
//! `workspace/applyEdit`, fall back to atomic disk writes where that is safe, record it.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::ProgressToken;

use super::{invalid_params, parse_args, project_for, run_task, Command, Outcome, TaskCtx};
use crate::apply::{self as core, ApplyOptions, ApplyResult, Deliver};
use crate::events::Event;
use crate::project::Project;
use crate::server::deliver::LspDeliver;
use crate::server::steps::install_needed;
use crate::server::Backend;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyArgs {
    /// The model's answer text.
    pub response: String,
    /// Accepted for compatibility with the seed's API; applying works the same either way.
    #[allow(dead_code)]
    pub is_edit: Option<bool>,
    /// More packages to install besides the answer's `<package>` tags and imports.
    pub packages: Option<Vec<String>>,
    /// Install what the answer needs before writing files (default: setting `installPackages`).
    pub install_packages: Option<bool>,
    /// Run the answer's `<command>`s in the project's sandbox (never on the host).
    pub run_commands: Option<bool>,
    /// Let the answer overwrite package.json, lockfiles, build configs and `.env*`.
    pub allow_protected: Option<bool>,
    /// The user's request that produced the answer, for the conversation record.
    pub request: Option<String>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    pub project: Option<String>,
    /// Answer with the full result when done instead of `{taskId, started}` at once.
    pub wait: Option<bool>,
    /// Show the changes for review before anything lands (default: setting `review`).
    pub review: Option<bool>,
}

pub async fn run(
    b: &Backend,
    cmd: Command,
    args: Value,
    token: Option<ProgressToken>,
) -> Result<Value> {
    let args: ApplyArgs = parse_args(cmd, args)?;
    let project = project_for(b, args.project.as_deref())?;
    let settings = project.settings();
    if args.response.len() as u64 > settings.max_response_bytes {
        return Err(invalid_params(format!(
            "invalid argument `response`: {:.1} MB exceeds the {:.1} MB limit (setting builder.maxResponseBytes)",
            args.response.len() as f64 / 1e6,
            settings.max_response_bytes as f64 / 1e6
        )));
    }
    // A plain apply is quick and answers inline; one that installs packages or runs commands
    // is long work, so by default it answers `{taskId, started}` at once (DESIGN.md §2:
    // Helix gives a request 20 s).
    let wait = match args.wait {
        Some(w) => w,
        None => !long_work(&project, &args, settings.install_packages),
    };
    let opts = ApplyOptions {
        allow_protected: args.allow_protected.unwrap_or(settings.allow_protected),
    };
    let this = b.clone();
    let p2 = project.clone();
    run_task(
        b,
        cmd,
        project,
        wait,
        token,
        "Applying answer".into(),
        move |ctx| async move {
            let result = apply_answer(&this, &p2, &args, &opts, &ctx).await;
            Outcome::ended(
                ctx.cancel.is_cancelled(),
                result.applied || result.errors.is_empty(),
                result.message.clone(),
                &result,
            )
        },
    )
    .await
}

async fn apply_answer(
    b: &Backend,
    project: &Arc<Project>,
    args: &ApplyArgs,
    opts: &ApplyOptions,
    ctx: &TaskCtx,
) -> ApplyResult {
    let report = &ctx.reporter;
    report(Event::Status("Parsing answer".into()));
    let parsed = crate::response::parse(&args.response);
    let plan = {
        let d = LspDeliver::new(b, project);
        let source = core::Overlay {
            texts: &Default::default(),
            inner: &d,
        };
        core::plan(&project.canonical_root, &parsed, opts, &source)
    };
    let mut result = core::result_for(&parsed, &plan);
    if let Some(extra) = &args.packages {
        for p in extra {
            if !result.packages.contains(p) {
                result.packages.push(p.clone());
            }
        }
    }

    // Packages first, as the seed did: the files that import them land on a tree that has them.
    // Under review nothing changes before the user has seen it, packages included.
    let settings = project.settings();
    let review = args
        .review
        .unwrap_or(settings.review == crate::config::ReviewMode::On);
    if !review && args.install_packages.unwrap_or(settings.install_packages) {
        let files: Vec<(String, String)> = plan
            .changes
            .iter()
            .map(|c| (c.rel.clone(), c.new_text.clone()))
            .collect();
        let needed =
            crate::install::needed_by_answer(&project.canonical_root, &result.packages, &files);
        install_needed(b, project, needed, &mut result, ctx).await;
    }

    if ctx.cancel.is_cancelled() {
        result
            .errors
            .push("cancelled before any file was changed".into());
        core::summarize(&mut result);
        return result;
    }

    if !plan.changes.is_empty() {
        let total = plan.changes.len();
        for (i, c) in plan.changes.iter().enumerate() {
            (ctx.reporter)(Event::File {
                path: c.rel.clone(),
                current: i + 1,
                total,
            });
        }
        let summary = if parsed.explanation.trim().is_empty() {
            format!("apply {}", crate::wording::count(total, "file"))
        } else {
            parsed.explanation.trim().chars().take(120).collect()
        };
        let meta = crate::history::Meta {
            source: "apply".into(),
            summary,
            prompt: args.request.clone(),
            ..Default::default()
        };
        if review {
            let p = crate::server::steps::present(b, project, plan.changes.clone(), meta).await;
            result.checkpoint = p.checkpoint;
            let landed = p.delivered.landed();
            p.delivered.merge_into(&mut result);
            result.applied = landed == total;
            result.review = Some(p.outcome);
        } else {
            let d = LspDeliver::recording(b, project, meta);
            let delivered = d.deliver(&plan.changes).await;
            result.checkpoint = d.checkpoint_id();
            let landed = delivered.landed();
            delivered.merge_into(&mut result);
            result.applied = landed == total;
        }
    } else {
        result.applied = result.errors.is_empty();
    }
    if !review && args.run_commands == Some(true) && !result.commands.is_empty() {
        run_commands(project, &mut result, ctx).await;
    }
    core::summarize(&mut result);
    if let Some(outcome) = &result.review {
        let note = crate::server::steps::describe(outcome, result.files_declined.len());
        if outcome.mode == "pending" {
            result.message = note;
        } else if !note.is_empty() {
            result.message = format!("{}; {note}", result.message);
        }
        if !result.packages.is_empty() || !result.commands.is_empty() {
            result.message.push_str(
                "; under review, packages are not installed and commands not run (builder.installPackages after accepting)",
            );
        }
    }

    let request = args
        .request
        .clone()
        .unwrap_or_else(|| "apply a model answer".to_string());
    match project.with_conversation(|c| core::record(c, &request, &result)) {
        Ok((_, Some(w))) => result.errors.push(w),
        Ok(_) => {}
        Err(e) => tracing::warn!("conversation not saved: {e}"),
    }
    result
}

/// Whether applying this answer will install packages or run commands.
fn long_work(project: &Project, args: &ApplyArgs, install_default: bool) -> bool {
    if args
        .review
        .unwrap_or(project.settings().review == crate::config::ReviewMode::On)
    {
        return false;
    }
    let parsed = crate::response::parse(&args.response);
    if args.run_commands == Some(true) && !parsed.commands.is_empty() {
        return true;
    }
    if !args.install_packages.unwrap_or(install_default) {
        return false;
    }
    let mut tags = parsed.packages.clone();
    tags.extend(args.packages.iter().flatten().cloned());
    let files: Vec<(String, String)> = parsed
        .files
        .iter()
        .filter(|f| f.complete)
        .map(|f| (f.path.clone(), f.content.clone()))
        .collect();
    let needed = crate::install::needed_by_answer(&project.canonical_root, &tags, &files);
    !crate::install::installable(project, needed).0.is_empty()
}

/// Runs the answer's `<command>`s in the project's sandbox (never on the host: a model's
/// command line is untrusted).
async fn run_commands(project: &Arc<Project>, result: &mut ApplyResult, ctx: &TaskCtx) {
    let Some(session) = project.sandbox() else {
        result.errors.push(format!(
            "runCommands: commands run only in a sandbox; create one with builder.sandbox.create. Not run: {}",
            result.commands.join("; ")
        ));
        return;
    };
    let (executed, errors) = crate::sandbox::session::run_commands(
        session.sandbox.as_ref(),
        &result.commands,
        &ctx.reporter,
        &ctx.cancel,
    )
    .await;
    result.commands_executed.extend(executed);
    result.errors.extend(errors);
}
