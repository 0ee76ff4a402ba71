//! `builder.history`, `builder.revert`, `builder.diff`: the project's checkpoints, taking a
//! change set (and everything after it) back as one undoable edit, and what a checkpoint changed.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;

use super::{invalid_params, parse_args, project_for, request_failed, to_value, Command};
use crate::history::{self, HistoryError};
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

pub(crate) use crate::history::revert::RevertResult;

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
            Ok(to_value(list))
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
    let d = LspDeliver::recording(b, &project, history::revert::meta(&a.checkpoint));
    let r = history::revert::revert(
        &project.history,
        &project.canonical_root,
        &a.checkpoint,
        a.files.as_deref(),
        a.force.unwrap_or(false),
        &d,
        &|| d.checkpoint_id(),
    )
    .await
    .map_err(|e| history_error(cmd, e))?;
    Ok(to_value(r))
}
