//! Review before apply: a change set held back until the user has seen it. Clients with
//! change annotations review it in their own preview (the edge sends an annotated edit);
//! for the others it is held here as the project's **pending** set, shown as a unified diff
//! and landed (`accept`, all or some files) or dropped (`discard`) later. Nothing here knows
//! LSP; landing goes through the same delivery and checkpoint path as any apply.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;

use crate::apply::{ChangeKind, Deliver, Delivered, FileChange};
pub use crate::apply::{ReviewFile, ReviewOutcome};
use crate::history::{Change, Meta};

/// The change set held for a project until accepted or discarded.
#[derive(Debug, Clone)]
pub struct PendingReview {
    pub changes: Vec<FileChange>,
    /// What its checkpoint will say when it lands.
    pub meta: Meta,
    /// RFC 3339, UTC.
    pub created: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no change set is pending review in this project")]
    NothingPending,
    #[error("file `{0}` is not part of the pending change set")]
    UnknownFile(String),
    #[error("cannot write the review diff {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub fn change_of(kind: ChangeKind) -> Change {
    match kind {
        ChangeKind::Create => Change::Created,
        ChangeKind::Update => Change::Updated,
        ChangeKind::Delete => Change::Deleted,
    }
}

/// A file's one-line summary: the label of its change annotation ("create src/App.jsx").
pub fn label(c: &FileChange) -> String {
    let verb = match c.kind {
        ChangeKind::Create => "create",
        ChangeKind::Update => "update",
        ChangeKind::Delete => "delete",
    };
    format!("{verb} {}", c.rel)
}

pub fn files_of(changes: &[FileChange]) -> Vec<ReviewFile> {
    changes
        .iter()
        .map(|c| ReviewFile {
            path: c.rel.clone(),
            change: change_of(c.kind),
        })
        .collect()
}

impl PendingReview {
    pub fn new(changes: Vec<FileChange>, meta: Meta) -> Self {
        PendingReview {
            changes,
            meta,
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }

    /// The unified diff of the whole set (`a/` now, `b/` after accepting).
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for c in &self.changes {
            let old = c.old_text.as_deref().unwrap_or("");
            let new = if c.kind == ChangeKind::Delete {
                ""
            } else {
                c.new_text.as_str()
            };
            let a = match c.kind {
                ChangeKind::Create => "/dev/null".to_string(),
                _ => format!("a/{}", c.rel),
            };
            let b = match c.kind {
                ChangeKind::Delete => "/dev/null".to_string(),
                _ => format!("b/{}", c.rel),
            };
            out.push_str(&crate::history::unified(old, new, &a, &b));
        }
        out
    }

    /// The changes for `files` (all when `None`), or the first path not in the set.
    pub fn select(&self, files: Option<&[String]>) -> Result<Vec<FileChange>, ReviewError> {
        let Some(only) = files else {
            return Ok(self.changes.clone());
        };
        let norm = |p: &str| p.replace('\\', "/").trim_start_matches("./").to_string();
        let wanted: Vec<String> = only.iter().map(|p| norm(p)).collect();
        if let Some(bad) = wanted
            .iter()
            .find(|p| !self.changes.iter().any(|c| &c.rel == *p))
        {
            return Err(ReviewError::UnknownFile(bad.clone()));
        }
        Ok(self
            .changes
            .iter()
            .filter(|c| wanted.contains(&c.rel))
            .cloned()
            .collect())
    }
}

/// Writes the diff to `<dir>/pending.diff`, read-only (0444), replacing an older one.
pub fn write_diff(dir: &Path, diff: &str) -> Result<PathBuf, ReviewError> {
    let path = dir.join("pending.diff");
    let io = |source| ReviewError::Io {
        path: path.clone(),
        source,
    };
    crate::private_file::create_dir(dir).map_err(io)?;
    crate::private_file::write_atomic(&path, diff.as_bytes()).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).map_err(io)?;
    }
    Ok(path)
}

/// A deliverer that lands nothing: a generation under review streams into it, and the edge
/// presents what it collected once the answer is complete. It answers as if each batch
/// landed, so later `<edit>` blocks plan against the text earlier files would leave.
pub struct Collecting<'a> {
    pub inner: &'a dyn Deliver,
    collected: Mutex<Vec<FileChange>>,
}

impl<'a> Collecting<'a> {
    pub fn new(inner: &'a dyn Deliver) -> Self {
        Collecting {
            inner,
            collected: Mutex::new(Vec::new()),
        }
    }

    /// One change per path, in first-touched order: the first old text, the last new text.
    pub fn take(&self) -> Vec<FileChange> {
        std::mem::take(&mut *self.collected.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Deliver for Collecting<'_> {
    fn open_text(&self, path: &Path) -> Option<String> {
        self.inner.open_text(path)
    }

    fn deliver<'b>(
        &'b self,
        changes: &'b [FileChange],
    ) -> Pin<Box<dyn Future<Output = Delivered> + Send + 'b>> {
        Box::pin(async move {
            let mut d = Delivered::default();
            let mut all = self.collected.lock().unwrap_or_else(|e| e.into_inner());
            let index: HashMap<String, usize> = all
                .iter()
                .enumerate()
                .map(|(i, c)| (c.rel.clone(), i))
                .collect();
            for c in changes {
                match index.get(&c.rel) {
                    Some(&i) => {
                        let first = &mut all[i];
                        first.new_text = c.new_text.clone();
                        if c.kind == ChangeKind::Delete {
                            first.kind = ChangeKind::Delete;
                        }
                    }
                    None => all.push(c.clone()),
                }
                match c.kind {
                    ChangeKind::Create => d.created.push(c.rel.clone()),
                    ChangeKind::Update => d.updated.push(c.rel.clone()),
                    ChangeKind::Delete => d.deleted.push(c.rel.clone()),
                }
            }
            d
        })
    }
}
