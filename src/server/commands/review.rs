//! Review before apply at the edge: presenting a change set (the editor's own preview when it
//! supports change annotations, else the project's pending set), and `builder.review.show`,
//! `builder.review.accept`, `builder.review.discard` for the pending one.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::{invalid_params, parse_args, project_for, request_failed, to_value, Command};
use crate::apply::{self as core, ApplyResult, Deliver};
use crate::project::Project;
use crate::review::{self, PendingReview, ReviewError, ReviewFile};
use crate::server::deliver::LspDeliver;
use crate::server::Backend;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ReviewArgs {
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AcceptArgs {
    /// Only these paths of the pending set (relative to the project); the others are dropped.
    /// Default: all of them.
    files: Option<Vec<String>>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ShowResult {
    /// The read-only unified diff file (under the state dir).
    pub path: String,
    pub files: Vec<ReviewFile>,
    /// The same diff, for scripts.
    pub diff: String,
    /// The editor opened the file (`window/showDocument`); otherwise a message names the path.
    pub shown: bool,
    pub message: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DiscardResult {
    /// The files of the dropped change set (nothing of it was written).
    pub files: Vec<ReviewFile>,
    pub message: String,
}

fn review_error(cmd: Command, e: ReviewError) -> tower_lsp_server::jsonrpc::Error {
    match e {
        ReviewError::UnknownFile(_) => {
            invalid_params(format!("{}: invalid argument `files`: {e}", cmd.name()))
        }
        ReviewError::NothingPending => request_failed(format!(
            "{}: {e} (set `review` to `on`, or pass `review: true` to builder.apply or builder.generate)",
            cmd.name()
        )),
        other => request_failed(format!("{}: {other}", cmd.name())),
    }
}

fn pending_clone(project: &Project) -> Option<PendingReview> {
    project
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

pub async fn run(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    match cmd {
        Command::ReviewShow => show(b, cmd, args).await,
        Command::ReviewAccept => accept(b, cmd, args).await,
        _ => {
            let a: ReviewArgs = parse_args(cmd, args)?;
            let project = project_for(b, a.project.as_deref())?;
            let taken = project
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            let Some(p) = taken else {
                return Err(review_error(cmd, ReviewError::NothingPending));
            };
            let files = review::files_of(&p.changes);
            let message = format!(
                "discarded {}; nothing was written",
                crate::wording::count(files.len(), "pending file")
            );
            Ok(to_value(DiscardResult { files, message }))
        }
    }
}

async fn show(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    let a: ReviewArgs = parse_args(cmd, args)?;
    let project = project_for(b, a.project.as_deref())?;
    let Some(p) = pending_clone(&project) else {
        return Err(review_error(cmd, ReviewError::NothingPending));
    };
    let diff = p.diff();
    let dir = project.review_dir.clone();
    let d2 = diff.clone();
    let path = tokio::task::spawn_blocking(move || review::write_diff(&dir, &d2))
        .await
        .map_err(|e| request_failed(format!("{}: {e}", cmd.name())))?
        .map_err(|e| review_error(cmd, e))?;
    let mut shown = false;
    if b.caps().show_document {
        if let Some(uri) = Uri::from_file_path(&path) {
            shown = matches!(
                b.client
                    .show_document(ShowDocumentParams {
                        uri,
                        external: Some(false),
                        take_focus: Some(true),
                        selection: None,
                    })
                    .await,
                Ok(true)
            );
        }
    }
    let files = review::files_of(&p.changes);
    let message = format!(
        "{}; diff in {}",
        crate::wording::count(files.len(), "pending file"),
        path.display()
    );
    if !shown {
        b.client
            .show_message(MessageType::INFO, format!("Builder: {message}"))
            .await;
    }
    Ok(serde_json::to_value(ShowResult {
        path: path.display().to_string(),
        files,
        diff,
        shown,
        message,
    })
    .unwrap_or(Value::Null))
}

async fn accept(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    let a: AcceptArgs = parse_args(cmd, args)?;
    let project = project_for(b, a.project.as_deref())?;
    // Checked before the set is taken: bad input loses nothing.
    let (pending, selected) = {
        let mut g = project.pending.lock().unwrap_or_else(|e| e.into_inner());
        let selected = match g.as_ref() {
            Some(p) => p
                .select(a.files.as_deref())
                .map_err(|e| review_error(cmd, e))?,
            None => return Err(review_error(cmd, ReviewError::NothingPending)),
        };
        match g.take() {
            Some(p) => (p, selected),
            None => return Err(review_error(cmd, ReviewError::NothingPending)),
        }
    };
    let mut result = ApplyResult {
        applied_via: "none".into(),
        ..Default::default()
    };
    result.files_declined = pending
        .changes
        .iter()
        .filter(|c| !selected.iter().any(|s| s.rel == c.rel))
        .map(|c| c.rel.clone())
        .collect();
    let d = LspDeliver::recording(b, &project, pending.meta.clone());
    // The files may have changed since the set was prepared: such a file is left alone.
    let mut fresh = Vec::new();
    for mut c in selected {
        let open = d.open_text(&c.abs);
        let now = open.clone().or_else(|| {
            std::fs::read(&c.abs)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        });
        if now != c.old_text {
            result.files_skipped.push(core::SkippedFile {
                path: c.rel.clone(),
                reason: "changed since the review was prepared; not applied".into(),
            });
            continue;
        }
        c.open = open.is_some();
        fresh.push(c);
    }
    let total = fresh.len();
    if total > 0 {
        let delivered = d.deliver(&fresh).await;
        let landed = delivered.landed();
        if landed == 0 && !delivered.errors.is_empty() {
            // Nothing landed: keep the set for another try.
            let mut g = project.pending.lock().unwrap_or_else(|e| e.into_inner());
            if g.is_none() {
                *g = Some(pending);
            }
        }
        delivered.merge_into(&mut result);
        result.applied = landed == total && result.files_skipped.is_empty();
        result.checkpoint = d.checkpoint_id();
    } else {
        result.applied = result.files_skipped.is_empty();
    }
    core::summarize(&mut result);
    if !result.files_declined.is_empty() {
        result.message.push_str(&format!(
            "; {} not accepted, dropped",
            crate::wording::count(result.files_declined.len(), "pending file")
        ));
    }
    Ok(to_value(result))
}
