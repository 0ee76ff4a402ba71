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
use crate::server::Backend;
use crate::tasks::TaskState;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApplyArgs {
    /// The model's answer text.
    pub response: String,
    /// Accepted now for the contract; edit mode matters once generation and installs land.
    #[allow(dead_code)]
    pub is_edit: Option<bool>,
    pub packages: Option<Vec<String>>,
    #[allow(dead_code)]
    pub install_packages: Option<bool>,
    pub run_commands: Option<bool>,
    pub allow_protected: Option<bool>,
    /// The user's request that produced the answer, for the conversation record.
    pub request: Option<String>,
    pub project: Option<String>,
    pub wait: Option<bool>,
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
    // Installs and commands arrive with later issues; until then an apply is quick, so it
    // answers inline unless the caller asks for a task with `wait: false`.
    let wait = args.wait.unwrap_or(true);
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
            let state = if ctx.cancel.is_cancelled() {
                TaskState::Cancelled
            } else if result.applied || result.errors.is_empty() {
                TaskState::Done
            } else {
                TaskState::Failed
            };
            Outcome {
                state,
                summary: result.message.clone(),
                result: serde_json::to_value(&result).unwrap_or(Value::Null),
            }
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

    if args.run_commands == Some(true) && !result.commands.is_empty() {
        result.errors.push(format!(
            "runCommands: running commands needs a sandbox, which this version does not have; not run: {}",
            result.commands.join("; ")
        ));
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
        let delivered = LspDeliver::new(b, project).deliver(&plan.changes).await;
        let landed = delivered.landed();
        delivered.merge_into(&mut result);
        result.applied = landed == total;
    } else {
        result.applied = result.errors.is_empty();
    }
    core::summarize(&mut result);

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
