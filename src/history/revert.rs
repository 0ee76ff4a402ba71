//! Running a revert: the plan of [`super::plan_revert`] delivered like any change set and
//! reported the same way, for the server (`builder.revert`) and the CLI (`builder-lsp revert`).

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use serde::Serialize;

use super::{
    disk_text, plan_revert, Conflict, HistoryError, HistoryStore, Limits, Meta, Recorder, Recording,
};
use crate::apply::{deliver_to_disk, Deliver, Delivered, FileChange};
use crate::events::Reporter;

/// The result of a revert (`builder.revert`, `builder-lsp revert --json`).
#[derive(Debug, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RevertResult {
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

/// What a revert records as its own checkpoint (so a revert can be reverted).
pub fn meta(checkpoint: &str) -> Meta {
    Meta {
        source: "revert".into(),
        summary: format!("revert {checkpoint}"),
        prompt: Some(format!("revert {checkpoint}")),
        ..Default::default()
    }
}

/// Puts the project at `root` (canonical) back to how it was before `checkpoint`, through `d`
/// (which records the revert's checkpoint); `recorded` names it afterwards. Bad input and
/// unreadable history fail before anything is written.
pub async fn revert(
    store: &HistoryStore,
    root: &Path,
    checkpoint: &str,
    files: Option<&[String]>,
    force: bool,
    d: &dyn Deliver,
    recorded: &(dyn Fn() -> Option<String> + Sync),
) -> Result<RevertResult, HistoryError> {
    let current = |p: &Path| match d.open_text(p) {
        Some(t) => Some((t, true)),
        None => disk_text(p),
    };
    let plan = plan_revert(store, root, checkpoint, files, force, &current)?;
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
        r.checkpoint = recorded();
    } else {
        r.applied = r.conflicts.is_empty();
    }
    r.message = format!(
        "reverted {}: {} restored, {} deleted, {}{}",
        checkpoint,
        r.files_restored.len(),
        r.files_deleted.len(),
        crate::wording::count(r.conflicts.len(), "conflict"),
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
    Ok(r)
}

/// The headless deliverer with a checkpoint: the change set's before-bytes are recorded,
/// then it is written to disk atomically (all or nothing). A checkpoint that cannot be
/// written refuses the change set.
pub struct RecordingDisk {
    recorder: Recording,
    reporter: Reporter,
}

impl RecordingDisk {
    pub fn new(store: HistoryStore, meta: Meta, limits: Limits, reporter: Reporter) -> Self {
        RecordingDisk {
            recorder: Recording::new(Recorder::new(store, meta, limits)),
            reporter,
        }
    }

    /// The id of the checkpoint recorded so far, if any.
    pub fn checkpoint_id(&self) -> Option<String> {
        self.recorder.id()
    }
}

impl Deliver for RecordingDisk {
    fn open_text(&self, _: &Path) -> Option<String> {
        None
    }

    fn deliver<'a>(
        &'a self,
        changes: &'a [FileChange],
    ) -> Pin<Box<dyn Future<Output = Delivered> + Send + 'a>> {
        Box::pin(async move {
            if let Some(refused) = self.recorder.before(changes) {
                return refused;
            }
            let mut d = deliver_to_disk(changes, &self.reporter);
            self.recorder.after(changes);
            self.recorder.landed(&mut d);
            d
        })
    }
}
