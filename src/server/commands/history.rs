//! `builder.history`, `builder.revert`, `builder.diff`: the project's checkpoints, taking a
//! change set (and everything after it) back as one undoable edit, and what a checkpoint changed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;

use super::{invalid_params, parse_args, project_for, request_failed, Command};
use crate::apply::Deliver;
use crate::history::{self, Conflict, HistoryError, Meta};
use crate::server::deliver::LspDeliver;
use crate::server::Backend;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct HistoryArgs {
    /// At most this many checkpoints, newest first (default: all).
    limit: Option<usize>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RevertArgs {
    /// The checkpoint to undo, with every later one (an `id` from `builder.history`).
    checkpoint: String,
    /// Only these paths (relative to the project); default: every file the checkpoints touched.
    files: Option<Vec<String>>,
    /// Also revert files changed since the checkpoint (default: they are listed as conflicts and left alone).
    force: Option<bool>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DiffArgs {
    /// The checkpoint whose changes to show.
    checkpoint: String,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RevertResult {
    /// The checkpoint this revert recorded (revert it to redo).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    pub files_restored: Vec<String>,
    pub files_deleted: Vec<String>,
    /// Files changed since the checkpoint, left alone (pass `force: true` to revert them too).
    pub conflicts: Vec<Conflict>,
    /// Files already as they were before the checkpoint.
    pub unchanged: Vec<String>,
    pub applied: bool,
    /// `workspaceEdit`, `disk`, `workspaceEdit+disk`, or `none`.
    pub applied_via: String,
    pub written_to_disk: Vec<String>,
    pub errors: Vec<String>,
    pub message: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DiffResult {
    pub checkpoint: String,
    /// Unified diff, `a/` before and `b/` after (`/dev/null` for created or deleted files).
    pub diff: String,
}

fn history_error(cmd: Command, e: HistoryError) -> tower_lsp_server::jsonrpc::Error {
    match e {
        HistoryError::UnknownCheckpoint(_) => invalid_params(format!(
            "{}: invalid argument `checkpoint`: {e}",
            cmd.name()
        )),
        HistoryError::UnknownFile { .. } => {
            invalid_params(format!("{}: invalid argument `files`: {e}", cmd.name()))
        }
        other => request_failed(format!("{}: {other}; nothing was written", cmd.name())),
    }
}

pub async fn run(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    match cmd {
        Command::History => {
            let a: HistoryArgs = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            let list =
                history::list(&project.history, a.limit).map_err(|e| history_error(cmd, e))?;
            Ok(serde_json::to_value(list).unwrap_or(Value::Null))
        }
        Command::Diff => {
            let a: DiffArgs = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            let diff = history::diff(&project.history, &a.checkpoint)
                .map_err(|e| history_error(cmd, e))?;
            Ok(serde_json::to_value(DiffResult {
                checkpoint: a.checkpoint,
                diff,
            })
            .unwrap_or(Value::Null))
        }
        _ => revert(b, cmd, args).await,
    }
}

async fn revert(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    let a: RevertArgs = parse_args(cmd, args)?;
    let project = project_for(b, a.project.as_deref())?;
    let d = LspDeliver::recording(
        b,
        &project,
        Meta {
            source: "revert".into(),
            summary: format!("revert {}", a.checkpoint),
            prompt: Some(format!("revert {}", a.checkpoint)),
            ..Default::default()
        },
    );
    let current = |p: &std::path::Path| match d.open_text(p) {
        Some(t) => Some((t, true)),
        None => history::disk_text(p),
    };
    let plan = history::plan_revert(
        &project.history,
        &project.canonical_root,
        &a.checkpoint,
        a.files.as_deref(),
        a.force.unwrap_or(false),
        &current,
    )
    .map_err(|e| history_error(cmd, e))?;
    let mut r = RevertResult {
        conflicts: plan.conflicts,
        unchanged: plan.unchanged,
        applied_via: "none".into(),
        ..Default::default()
    };
    let total = plan.changes.len();
    if total > 0 {
        let delivered = d.deliver(&plan.changes).await;
        r.applied = delivered.landed() == total;
        r.applied_via = crate::apply::applied_via(delivered.via_editor, delivered.via_disk).into();
        r.files_restored = delivered
            .created
            .into_iter()
            .chain(delivered.updated)
            .collect();
        r.files_deleted = delivered.deleted;
        r.written_to_disk = delivered.written_to_disk;
        r.errors = delivered.errors;
        r.checkpoint = d.checkpoint_id();
    } else {
        r.applied = r.conflicts.is_empty();
    }
    r.message = format!(
        "reverted {}: {} restored, {} deleted, {} conflict(s){}",
        a.checkpoint,
        r.files_restored.len(),
        r.files_deleted.len(),
        r.conflicts.len(),
        match r.conflicts.first() {
            Some(c) => format!(
                " ({} {}; pass force: true to revert it too)",
                c.path, c.reason
            ),
            None => String::new(),
        }
    );
    if let Some(e) = r.errors.first() {
        r.message.push_str(&format!("; error: {e}"));
    }
    Ok(serde_json::to_value(r).unwrap_or(Value::Null))
}
