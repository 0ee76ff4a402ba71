//! Delivery to the editor: ONE `workspace/applyEdit` per batch for what the client can take,
//! atomic disk writes for the rest and — when the client refuses — for files it does not have
//! open. Shared by `builder.apply` and `builder.generate`.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use super::workspace_edit;
use super::Backend;
use crate::apply::{self as core, ChangeKind, Deliver, Delivered, FileChange};
use crate::history::{Meta, Recorder, Recording};
use crate::project::Project;

pub struct LspDeliver {
    backend: Backend,
    project: Arc<Project>,
    /// The change set's checkpoint, recorded before each batch lands.
    recorder: Option<Recording>,
    /// Send the edit for review (change annotations): only what the user keeps lands.
    review: bool,
}

impl LspDeliver {
    /// Delivery without a checkpoint (planning only: nothing delivered through it lands
    /// untracked, because every landing path uses [`LspDeliver::recording`]).
    pub fn new(b: &Backend, project: &Arc<Project>) -> Self {
        LspDeliver {
            backend: b.clone(),
            project: project.clone(),
            recorder: None,
            review: false,
        }
    }

    /// Delivery that records ONE checkpoint for everything delivered through it
    /// (none when `history.maxCheckpoints` is 0: the user turned history off).
    pub fn recording(b: &Backend, project: &Arc<Project>, meta: Meta) -> Self {
        let limits = project.settings().history.limits();
        LspDeliver {
            backend: b.clone(),
            project: project.clone(),
            recorder: (limits.max_checkpoints > 0)
                .then(|| Recording::new(Recorder::new(project.history.clone(), meta, limits))),
            review: false,
        }
    }

    /// Recording delivery through the client's review preview (it must support change
    /// annotations): the checkpoint ends up holding only the files that really landed.
    pub fn reviewing(b: &Backend, project: &Arc<Project>, meta: Meta) -> Self {
        LspDeliver {
            review: true,
            ..Self::recording(b, project, meta)
        }
    }

    /// The id of the checkpoint recorded so far, if any.
    pub fn checkpoint_id(&self) -> Option<String> {
        self.recorder.as_ref()?.id()
    }
}

impl Deliver for LspDeliver {
    fn open_text(&self, path: &Path) -> Option<String> {
        let client =
            workspace_edit::client_path(path, &self.project.canonical_root, &self.project.root);
        let docs = &self.backend.st.docs;
        docs.text_of_path(&client)
            .or_else(|| docs.text_of_path(path))
    }

    fn deliver<'a>(
        &'a self,
        changes: &'a [FileChange],
    ) -> Pin<Box<dyn Future<Output = Delivered> + Send + 'a>> {
        Box::pin(async move {
            if let Some(r) = &self.recorder {
                if let Some(refused) = r.before(changes) {
                    return refused;
                }
            }
            let delivery = async {
                if self.review {
                    deliver_reviewed(&self.backend, &self.project, changes).await
                } else {
                    deliver(&self.backend, &self.project, changes).await
                }
            };
            let d = match &self.recorder {
                // The after-contents are recorded while the editor applies the edit (the
                // delivery is polled first, so the edit is on its way): hashing and packing
                // them was half of a checkpoint's cost on the apply's path.
                Some(r) => {
                    let (mut d, ()) = tokio::join!(delivery, async { r.after(changes) });
                    r.landed(&mut d);
                    d
                }
                None => delivery.await,
            };
            push_to_sandbox(&self.project, changes, &d).await;
            if self.project.sandbox().is_some() {
                let touched: Vec<String> = d
                    .created
                    .iter()
                    .chain(&d.updated)
                    .chain(&d.deleted)
                    .cloned()
                    .collect();
                super::preview::files_changed(&self.backend, &self.project, &touched).await;
            }
            d
        })
    }
}

/// The same bytes go to the project's running sandbox, so its preview updates at once; files
/// deleted (by a revert) are removed there too.
async fn push_to_sandbox(project: &Project, changes: &[FileChange], d: &Delivered) {
    let Some(session) = project.sandbox() else {
        return;
    };
    let landed: Vec<crate::sandbox::SandboxFile> = changes
        .iter()
        .filter(|c| d.created.contains(&c.rel) || d.updated.contains(&c.rel))
        .map(|c| crate::sandbox::SandboxFile {
            path: c.rel.clone(),
            bytes: c.new_text.as_bytes().to_vec(),
        })
        .collect();
    if !landed.is_empty() {
        if let Err(e) = session.sandbox.write_files(&landed).await {
            tracing::warn!("pushing {} files to the sandbox failed: {e}", landed.len());
        }
    }
    // Deletions (a revert of created files) reach the sandbox too.
    if !d.deleted.is_empty() {
        if let Err(e) = session.sandbox.delete_files(&d.deleted).await {
            tracing::warn!(
                "deleting {} files in the sandbox failed: {e}",
                d.deleted.len()
            );
        }
    }
}

/// How long the server waits, after the client answered a reviewed edit, for its buffers and
/// files to show what the user kept (the `didChange`s may trail the answer).
const REVIEW_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// One annotated `workspace/applyEdit` the client shows for confirmation. The answer says
/// only whether the user accepted *something*, so what landed is read back from the open
/// documents and the disk: a file the user unticked is `declined`. Nothing goes to disk
/// behind the user's back, not even when the client refuses.
async fn deliver_reviewed(b: &Backend, project: &Project, changes: &[FileChange]) -> Delivered {
    let mut d = Delivered::default();
    if changes.is_empty() {
        return d;
    }
    let caps = b.caps();
    let built = workspace_edit::build(
        changes,
        &caps,
        &b.st.docs,
        &project.canonical_root,
        &project.root,
        true,
    );
    for &i in &built.to_disk {
        d.errors.push(format!(
            "{}: not applied — the editor cannot show it for review",
            changes[i].rel
        ));
    }
    if built.in_edit.is_empty() {
        return d;
    }
    let refused = match b.client.apply_edit(built.edit).await {
        Ok(r) if r.applied => None,
        Ok(r) => Some(
            r.failure_reason
                .unwrap_or_else(|| "the change set was not accepted in review".into()),
        ),
        Err(e) => {
            let msg = format!("the editor answered the edit with an error: {}", e.message);
            d.errors.push(msg.clone());
            d.failure_reason = Some(msg);
            return d;
        }
    };
    if let Some(reason) = refused {
        d.failure_reason = Some(reason);
        d.declined = built
            .in_edit
            .iter()
            .map(|&i| changes[i].rel.clone())
            .collect();
        return d;
    }
    d.via_editor = true;
    let deadline = tokio::time::Instant::now() + REVIEW_SETTLE;
    let mut left = built.in_edit.clone();
    loop {
        left.retain(|&i| {
            let c = &changes[i];
            if !shows(b, project, c) {
                return true;
            }
            match c.kind {
                ChangeKind::Create => d.created.push(c.rel.clone()),
                ChangeKind::Update => d.updated.push(c.rel.clone()),
                ChangeKind::Delete => d.deleted.push(c.rel.clone()),
            }
            false
        });
        if left.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    left.sort_unstable();
    d.declined = left.iter().map(|&i| changes[i].rel.clone()).collect();
    d
}

/// Whether the editor's buffer (or else the disk) shows `c` landed.
fn shows(b: &Backend, project: &Project, c: &FileChange) -> bool {
    if c.kind == ChangeKind::Delete {
        return !c.abs.exists();
    }
    let client = workspace_edit::client_path(&c.abs, &project.canonical_root, &project.root);
    let docs = &b.st.docs;
    let now = docs
        .text_of_path(&client)
        .or_else(|| docs.text_of_path(&c.abs))
        .or_else(|| {
            std::fs::read(&c.abs)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        });
    now.as_deref() == Some(c.new_text.as_str())
}

async fn deliver(b: &Backend, project: &Project, changes: &[FileChange]) -> Delivered {
    let mut d = Delivered::default();
    if changes.is_empty() {
        return d;
    }
    let caps = b.caps();
    let built = if caps.apply_edit {
        workspace_edit::build(
            changes,
            &caps,
            &b.st.docs,
            &project.canonical_root,
            &project.root,
            false,
        )
    } else {
        workspace_edit::BuiltEdit {
            edit: Default::default(),
            in_edit: Vec::new(),
            to_disk: (0..changes.len()).collect(),
        }
    };
    let mut to_disk: Vec<usize> = built.to_disk.clone();
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
                d.via_editor = true;
                for &i in &built.in_edit {
                    let c = &changes[i];
                    match c.kind {
                        ChangeKind::Create => d.created.push(c.rel.clone()),
                        ChangeKind::Update => d.updated.push(c.rel.clone()),
                        ChangeKind::Delete => d.deleted.push(c.rel.clone()),
                    }
                }
            }
            Some(reason) => {
                tracing::warn!("workspace/applyEdit refused: {reason}");
                d.failure_reason = Some(reason.clone());
                for &i in &built.in_edit {
                    if changes[i].open {
                        d.errors.push(format!(
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
    let mut disk: Vec<FileChange> = Vec::new();
    for &i in &to_disk {
        let c = &changes[i];
        if c.open {
            if !caps.apply_edit {
                d.errors.push(format!(
                    "{}: not applied — it is open in the editor, and the editor does not accept workspace edits",
                    c.rel
                ));
            }
        } else {
            disk.push(c.clone());
        }
    }
    if !disk.is_empty() {
        let written = tokio::task::spawn_blocking(move || {
            core::deliver_to_disk(&disk, &crate::events::silent())
        })
        .await;
        match written {
            Ok(w) => {
                d.via_disk |= w.via_disk;
                d.created.extend(w.created);
                d.updated.extend(w.updated);
                d.deleted.extend(w.deleted);
                d.written_to_disk.extend(w.written_to_disk);
                d.errors.extend(w.errors);
            }
            Err(e) => d.errors.push(format!("writing files failed: {e}")),
        }
    }
    d
}
