//! Steps several command handlers share (review, installs, AI settings), so no handler
//! imports another: `builder.apply`, `builder.generate`, `builder.installPackages` and the
//! review commands all come here.

use std::sync::Arc;

use crate::ai::AiConfig;
use crate::apply::{ApplyResult, ChangeKind, Deliver, Delivered, FileChange};
use crate::history::Meta;
use crate::install::install_in_project;
use crate::packages::install::{InstallOutcome, InstallRequest};
use crate::project::Project;
use crate::review::{self, PendingReview, ReviewOutcome};
use crate::server::commands::TaskCtx;
use crate::server::deliver::LspDeliver;
use crate::server::Backend;
use crate::{config, generate};

/// Whether the client reviews the change set itself (an annotated edit it can show).
fn client_reviews(b: &Backend, changes: &[FileChange]) -> bool {
    let caps = b.caps();
    caps.apply_edit
        && caps.document_changes
        && caps.change_annotations
        && (caps.create_files || !changes.iter().any(|c| c.kind == ChangeKind::Create))
        && (caps.delete_files || !changes.iter().any(|c| c.kind == ChangeKind::Delete))
}

/// What became of a change set sent to review.
pub struct Presented {
    /// What landed (empty for a pending set).
    pub delivered: Delivered,
    pub checkpoint: Option<String>,
    pub outcome: ReviewOutcome,
}

/// Sends `changes` to review: the editor's preview (only what the user keeps lands, and only
/// that is checkpointed) or, for clients without change annotations, the pending set.
pub async fn present(
    b: &Backend,
    project: &Arc<Project>,
    changes: Vec<FileChange>,
    meta: Meta,
) -> Presented {
    let files = review::files_of(&changes);
    if client_reviews(b, &changes) {
        let d = LspDeliver::reviewing(b, project, meta);
        let delivered = d.deliver(&changes).await;
        return Presented {
            delivered,
            checkpoint: d.checkpoint_id(),
            outcome: ReviewOutcome {
                mode: "annotated".into(),
                files,
                replaced_pending: false,
            },
        };
    }
    let replaced = project
        .pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .replace(PendingReview::new(changes, meta))
        .is_some();
    Presented {
        delivered: Delivered::default(),
        checkpoint: None,
        outcome: ReviewOutcome {
            mode: "pending".into(),
            files,
            replaced_pending: replaced,
        },
    }
}

/// The result message's review part.
pub fn describe(outcome: &ReviewOutcome, declined: usize) -> String {
    match outcome.mode.as_str() {
        "pending" => format!(
            "{} held for review{}: builder.review.show to see the diff, builder.review.accept or builder.review.discard",
            crate::wording::count(outcome.files.len(), "file"),
            if outcome.replaced_pending {
                " (replacing the change set that was pending)"
            } else {
                ""
            }
        ),
        _ if declined > 0 => format!(
            "{} left out in review",
            crate::wording::count(declined, "file")
        ),
        _ => String::new(),
    }
}

/// Installs what an answer needs and records the outcome in its result.
pub async fn install_needed(
    b: &Backend,
    project: &Arc<Project>,
    needed: Vec<String>,
    result: &mut ApplyResult,
    ctx: &TaskCtx,
) {
    let (valid, failed) = crate::install::installable(project, needed);
    result.packages_failed.extend(failed);
    if valid.is_empty() {
        return;
    }
    let req = crate::packages::install::InstallRequest {
        packages: valid,
        dev: false,
    };
    let out = install_and_refresh(b, project, &req, &ctx.reporter, &ctx.cancel).await;
    result.packages_installed.extend(out.installed);
    result
        .packages_already_installed
        .extend(out.already_installed);
    for f in &out.failed {
        result
            .errors
            .push(format!("package {}: {}", f.name, f.reason));
    }
    result.packages_failed.extend(out.failed);
}

/// The AI settings of one project (see [`generate::ai_config`]).
pub fn ai_config(project: &Project) -> AiConfig {
    generate::ai_config(
        &config::environment(Some(&project.root)),
        &project.settings(),
    )
}

/// Runs an install for `project` and republishes its diagnostics.
pub async fn install_and_refresh(
    b: &Backend,
    project: &Arc<Project>,
    req: &InstallRequest,
    reporter: &crate::events::Reporter,
    cancel: &tokio_util::sync::CancellationToken,
) -> InstallOutcome {
    let deliver = LspDeliver::recording(
        b,
        project,
        crate::history::Meta {
            source: "install".into(),
            summary: format!("install {}", req.packages.join(", ")),
            prompt: Some(format!("install {}", req.packages.join(" "))),
            ..Default::default()
        },
    );
    let out = install_in_project(project, req, &deliver, reporter, cancel).await;
    crate::server::diagnostics::refresh_project(b, project).await;
    out
}
