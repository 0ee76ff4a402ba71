//! `builder.apply`: parse the answer, plan safe changes, deliver them as ONE
//! `workspace/applyEdit`, fall back to atomic disk writes where that is safe, record it.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::ProgressToken;

use super::{invalid_params, parse_args, project_for, run_task, Command, Outcome, TaskCtx};
use crate::apply::{self as core, ApplyOptions, ApplyResult, ChangeKind, FileChange};
use crate::edits::write::WriteOutcome;
use crate::events::Event;
use crate::project::Project;
use crate::server::documents::Documents;
use crate::server::workspace_edit;
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

/// Current editor text by canonical path (the plan works on canonical paths).
struct ProjectDocs<'a> {
    docs: &'a Documents,
    project: &'a Project,
}

impl crate::apply::TextSource for ProjectDocs<'_> {
    fn open_text(&self, path: &Path) -> Option<String> {
        let client =
            workspace_edit::client_path(path, &self.project.canonical_root, &self.project.root);
        self.docs
            .text_of_path(&client)
            .or_else(|| self.docs.text_of_path(path))
    }
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
        let source = ProjectDocs {
            docs: &b.st.docs,
            project,
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
        deliver(b, project, &plan.changes, &mut result, ctx).await;
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

/// One `workspace/applyEdit` for everything the client can take; disk writes for the rest and,
/// if the client refuses, for the files it does not have open.
async fn deliver(
    b: &Backend,
    project: &Project,
    changes: &[FileChange],
    result: &mut ApplyResult,
    ctx: &TaskCtx,
) {
    let caps = b.caps();
    let total = changes.len();
    for (i, c) in changes.iter().enumerate() {
        (ctx.reporter)(Event::File {
            path: c.rel.clone(),
            current: i + 1,
            total,
        });
    }
    let built = if caps.apply_edit {
        workspace_edit::build(
            changes,
            &caps,
            &b.st.docs,
            &project.canonical_root,
            &project.root,
        )
    } else {
        workspace_edit::BuiltEdit {
            edit: Default::default(),
            in_edit: Vec::new(),
            to_disk: (0..changes.len()).collect(),
        }
    };
    let mut to_disk: Vec<usize> = built.to_disk.clone();
    let mut via_editor = false;
    if !built.in_edit.is_empty() {
        let answer = b.client.apply_edit(built.edit).await;
        let refused =
            match answer {
                Ok(r) if r.applied => None,
                Ok(r) => Some(r.failure_reason.unwrap_or_else(|| {
                    "the editor did not apply the edit (no reason given)".into()
                })),
                Err(e) => Some(format!(
                    "the editor answered the edit with an error: {}",
                    e.message
                )),
            };
        match refused {
            None => {
                via_editor = true;
                for &i in &built.in_edit {
                    push_outcome(result, &changes[i]);
                }
            }
            Some(reason) => {
                tracing::warn!("workspace/applyEdit refused: {reason}");
                result.failure_reason = Some(reason.clone());
                for &i in &built.in_edit {
                    if changes[i].open {
                        result.errors.push(format!(
                            "{}: not applied — it is open in the editor, which refused the edit ({reason})",
                            changes[i].rel
                        ));
                    } else {
                        to_disk.push(i);
                    }
                }
            }
        }
    }
    to_disk.sort_unstable();
    // Never write a file the editor has open: its buffer (maybe unsaved) is the truth there.
    let mut disk: Vec<&FileChange> = Vec::new();
    for &i in &to_disk {
        let c = &changes[i];
        if c.open {
            if !caps.apply_edit {
                result.errors.push(format!(
                    "{}: not applied — it is open in the editor, and the editor does not accept workspace edits",
                    c.rel
                ));
            }
        } else {
            disk.push(c);
        }
    }
    let mut via_disk = false;
    if !disk.is_empty() {
        let silent = crate::events::silent();
        let write = {
            let owned: Vec<FileChange> = disk.iter().map(|c| (*c).clone()).collect();
            tokio::task::spawn_blocking(move || {
                let refs: Vec<&FileChange> = owned.iter().collect();
                core::write_to_disk(&refs, &silent)
            })
            .await
        };
        match write {
            Ok(Ok(outcomes)) => {
                via_disk = true;
                for (rel, o) in outcomes {
                    match o {
                        WriteOutcome::Created => result.files_created.push(rel.clone()),
                        WriteOutcome::Updated => result.files_updated.push(rel.clone()),
                    }
                    result.written_to_disk.push(rel);
                }
            }
            Ok(Err(e)) => result
                .errors
                .push(format!("writing files failed, none of them changed: {e}")),
            Err(e) => result.errors.push(format!("writing files failed: {e}")),
        }
    }
    result.applied_via = match (via_editor, via_disk) {
        (true, true) => "workspaceEdit+disk",
        (true, false) => "workspaceEdit",
        (false, true) => "disk",
        (false, false) => "none",
    }
    .into();
    let landed = result.files_created.len() + result.files_updated.len();
    result.applied = landed == changes.len();
}

fn push_outcome(result: &mut ApplyResult, c: &FileChange) {
    match c.kind {
        ChangeKind::Create => result.files_created.push(c.rel.clone()),
        ChangeKind::Update => result.files_updated.push(c.rel.clone()),
    }
}
