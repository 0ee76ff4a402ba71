//! Checkpoints: before any change set lands (apply, each generation, quick fixes that write
//! files, reverts), the bytes every touched path had before (or "did not exist") are stored,
//! so any change set — and everything after it — can be taken back later (`revert`), long
//! after the editor's undo is gone. `store.rs` is the disk; this module is the model, the
//! recorder the delivery path calls, and the revert plan.

pub mod revert;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::apply::Change;
use crate::apply::{ChangeKind, FileChange};
pub use store::HistoryStore;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("history: cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("history: checkpoint data is missing: blob {0} is gone")]
    MissingBlob(String),
    #[error("history: checkpoint data is corrupt: {0}")]
    Corrupt(String),
    #[error("unknown checkpoint `{0}`")]
    UnknownCheckpoint(String),
    #[error("file `{path}` is not part of checkpoint {checkpoint} or any later one")]
    UnknownFile { path: String, checkpoint: String },
    #[error("history: {path} cannot be restored: its stored content is not UTF-8 text")]
    NotText { path: String },
}

/// How a file whose after-content was not recorded (`FileRecord::after_pending`) is reported.
const AFTER_NOT_RECORDED: &str =
    "its content after the checkpoint was not recorded (the server stopped first)";

/// One path a checkpoint touched: its content before and after, by blob hash
/// (`None`: the file did not exist).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FileRecord {
    pub path: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// The file has content after the checkpoint but it was not recorded: the after-contents
    /// are stored while the edit is delivered (off the apply's path), and the process ended
    /// first. `after` is then unknown, so a revert reports the file as a conflict (unless
    /// forced) instead of guessing; the before-content, what a revert needs, is stored.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub after_pending: bool,
}

impl FileRecord {
    pub fn change(&self) -> Change {
        match (&self.before, &self.after) {
            (None, _) => Change::Created,
            (Some(_), None) if !self.after_pending => Change::Deleted,
            _ => Change::Updated,
        }
    }
}

/// One change set, as stored (`checkpoints/<id>.json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub id: String,
    /// Order of creation in this project (ids sort the same way).
    pub seq: u64,
    /// RFC 3339, UTC.
    pub time: String,
    /// `apply`, `generate`, `install`, `revert`, `review`…
    pub source: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The prompt or command that made the change set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    pub files: Vec<FileRecord>,
}

impl Checkpoint {
    pub fn blob_hashes(&self) -> impl Iterator<Item = &str> {
        self.files
            .iter()
            .flat_map(|f| [f.before.as_deref(), f.after.as_deref()])
            .flatten()
    }
}

/// What a change set is, for its checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub source: String,
    pub summary: String,
    pub model: Option<String>,
    pub prompt: Option<String>,
}

/// The bounds of a project's history (settings `history.maxCheckpoints`, `history.maxBytes`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_checkpoints: usize,
    pub max_bytes: u64,
}

/// A known file's `(after, after_pending)` before a batch touched it again (restored if the
/// batch does not land).
type PriorAfter = (Option<String>, bool);

/// Records ONE checkpoint for a change set that may land in several batches (a generation
/// delivers files as they stream): each file's before-bytes are taken the first time the
/// change set touches it.
pub struct Recorder {
    store: HistoryStore,
    meta: Meta,
    limits: Limits,
    cp: Option<Checkpoint>,
    /// The batch in flight: path → what it had before this batch (`None`: new in this batch).
    pending: HashMap<String, Option<PriorAfter>>,
    /// The fsyncs of the last batch's packs and manifests, running while the batch is
    /// delivered (they are the cost of a checkpoint); joined before the next batch and in
    /// `landed`.
    syncing: Vec<std::thread::JoinHandle<Result<(), (PathBuf, std::io::Error)>>>,
    /// The fsyncs of the packs `before` wrote, held for `after` to run with its own in one
    /// pass (an fsync costs ~1 ms of CPU in a VM; a checkpoint made six). Run by
    /// [`Recorder::durable`] if no `after` comes.
    held: Vec<crate::private_file::PendingSync>,
    /// The fsync of the pending manifest `before` wrote: dropped by `after` once the final
    /// manifest is renamed over it, run otherwise.
    held_manifest: Vec<crate::private_file::PendingSync>,
    /// How many files the last fsync pass covered (what the tests check of the one pass).
    last_pass: usize,
    /// Why the batch's after-contents could not be recorded ([`Recorder::after`]), reported
    /// by `landed`.
    after_error: Option<HistoryError>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Err(e) = self.durable() {
            tracing::warn!("{e}");
        }
    }
}

impl Recorder {
    pub fn new(store: HistoryStore, meta: Meta, limits: Limits) -> Self {
        Recorder {
            store,
            meta,
            limits,
            cp: None,
            pending: HashMap::new(),
            syncing: Vec::new(),
            held: Vec::new(),
            held_manifest: Vec::new(),
            last_pass: 0,
            after_error: None,
        }
    }

    /// Waits for the last batch's fsyncs (and runs those still held).
    fn durable(&mut self) -> Result<(), HistoryError> {
        let mut held = std::mem::take(&mut self.held);
        held.append(&mut self.held_manifest);
        self.sync_later(held);
        let mut result = Ok(());
        for h in self.syncing.drain(..) {
            let r = match h.join() {
                Ok(Ok(())) => Ok(()),
                Ok(Err((path, source))) => Err(HistoryError::Io { path, source }),
                Err(_) => Err(HistoryError::Corrupt(
                    "the history's fsync thread panicked".into(),
                )),
            };
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    fn sync_later(&mut self, syncs: Vec<crate::private_file::PendingSync>) {
        if !syncs.is_empty() {
            self.last_pass = syncs.len();
            self.syncing.push(std::thread::spawn(move || {
                crate::private_file::sync_all(syncs)
            }));
        }
    }

    /// The checkpoint's id once something was recorded.
    pub fn id(&self) -> Option<&str> {
        self.cp.as_ref().map(|c| c.id.as_str())
    }

    /// Stores the before-content of `changes` and writes the manifest (their after-content
    /// marked pending), before they land: that is all a revert needs. An error means nothing
    /// may land (no untracked changes). Writes and renames happen here (so any write error
    /// refuses the batch); the fsyncs run on a thread while the batch is delivered and are
    /// waited for in [`Recorder::landed`], before anyone reports success. The after-content
    /// follows in [`Recorder::after`], which the server runs while the editor applies the edit.
    pub fn before(&mut self, changes: &[FileChange]) -> Result<(), HistoryError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.durable()?;
        self.after_error = None;
        let _g = store::write_lock();
        let mut cp = match self.cp.take() {
            Some(cp) => cp,
            None => {
                let seq = self.store.next_seq()?;
                Checkpoint {
                    id: format!("{seq:05}-{:04x}", fastrand::u16(..)),
                    seq,
                    time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    source: self.meta.source.clone(),
                    summary: self.meta.summary.clone(),
                    model: self.meta.model.clone(),
                    prompt: self.meta.prompt.clone(),
                    files: Vec::new(),
                }
            }
        };
        self.pending.clear();
        let (mut syncs, mut manifest) = (Vec::new(), Vec::new());
        let result = (|| {
            // The batch's unseen before-contents go to the store in one write.
            let index: HashMap<&str, usize> = cp
                .files
                .iter()
                .enumerate()
                .map(|(i, f)| (f.path.as_str(), i))
                .collect();
            let mut contents: Vec<&[u8]> = Vec::new();
            let mut slots = Vec::with_capacity(changes.len());
            for c in changes {
                let known = index.get(c.rel.as_str()).copied();
                let before = match (&c.old_text, known) {
                    (Some(t), None) => {
                        contents.push(t.as_bytes());
                        Some(contents.len() - 1)
                    }
                    _ => None,
                };
                slots.push((known, before));
            }
            let hashes = self.store.put_blobs_deferred(&contents, &mut syncs)?;
            drop(index);
            for (c, (known, before)) in changes.iter().zip(slots) {
                let pending_after = c.kind != ChangeKind::Delete;
                match known {
                    Some(i) => {
                        let f = &mut cp.files[i];
                        self.pending
                            .entry(c.rel.clone())
                            .or_insert(Some((f.after.clone(), f.after_pending)));
                        f.after = None;
                        f.after_pending = pending_after;
                    }
                    None => {
                        self.pending.insert(c.rel.clone(), None);
                        cp.files.push(FileRecord {
                            path: c.rel.clone(),
                            before: before.map(|i| hashes[i].clone()),
                            after: None,
                            after_pending: pending_after,
                        });
                    }
                }
            }
            self.store.save_deferred(&cp, &mut manifest)
        })();
        self.held = syncs;
        self.held_manifest = manifest;
        if result.is_err() {
            let held = std::mem::take(&mut self.held);
            self.sync_later(held);
            self.held_manifest.clear();
            // Forget this batch's paths: they are not going to land.
            self.rollback(&mut cp);
        }
        self.cp = Some(cp);
        result
    }

    /// Stores the after-content of the batch [`Recorder::before`] recorded and rewrites the
    /// manifest with it (fsyncs deferred like `before`'s). Safe to run while the batch is
    /// being delivered: the change set is already revertable; this only lets a revert tell a
    /// file the user changed since from one they did not, and `diff` show the change. A
    /// failure leaves those files pending (reported by `landed`), never the history broken.
    pub fn after(&mut self, changes: &[FileChange]) {
        let Some(mut cp) = self.cp.take() else {
            return;
        };
        let mut syncs = std::mem::take(&mut self.held);
        let mut manifest = Vec::new();
        let result = (|| {
            let _g = store::write_lock();
            let writes: Vec<&FileChange> = changes
                .iter()
                .filter(|c| c.kind != ChangeKind::Delete && self.pending.contains_key(&c.rel))
                .collect();
            if writes.is_empty() {
                return Ok(());
            }
            let contents: Vec<&[u8]> = writes.iter().map(|c| c.new_text.as_bytes()).collect();
            let hashes = self.store.put_blobs_deferred(&contents, &mut syncs)?;
            let by_path: HashMap<&str, String> =
                writes.iter().map(|c| c.rel.as_str()).zip(hashes).collect();
            for f in cp.files.iter_mut().filter(|f| f.after_pending) {
                if let Some(h) = by_path.get(f.path.as_str()) {
                    f.after = Some(h.clone());
                    f.after_pending = false;
                }
            }
            self.store.save_deferred(&cp, &mut manifest)
        })();
        if manifest.is_empty() {
            // No final manifest (nothing to record, or a failure): the pending one stays.
            manifest = std::mem::take(&mut self.held_manifest);
        } else {
            // Renamed over the pending one: its fsync would make a replaced file durable.
            self.held_manifest.clear();
        }
        syncs.append(&mut manifest);
        self.sync_later(syncs);
        if let Err(e) = result {
            tracing::warn!("checkpoint {}: after-contents not recorded: {e}", cp.id);
            self.after_error = Some(e);
        }
        self.cp = Some(cp);
    }

    fn rollback(&mut self, cp: &mut Checkpoint) {
        for (path, prev) in self.pending.drain() {
            match prev {
                None => cp.files.retain(|f| f.path != path),
                Some((after, after_pending)) => {
                    if let Some(f) = cp.files.iter_mut().find(|f| f.path == path) {
                        f.after = after;
                        f.after_pending = after_pending;
                    }
                }
            }
        }
    }

    /// After delivery: drops what did not land from the checkpoint (an empty checkpoint is
    /// removed), then prunes the history to its limits. An error from [`Recorder::after`]
    /// comes back here, once the rest is done.
    pub fn landed(&mut self, landed: &HashSet<&str>) -> Result<(), HistoryError> {
        self.durable()?;
        let Some(mut cp) = self.cp.take() else {
            return Ok(());
        };
        let missed: Vec<(String, Option<PriorAfter>)> = self
            .pending
            .drain()
            .filter(|(p, _)| !landed.contains(p.as_str()))
            .collect();
        let changed = !missed.is_empty();
        self.pending = missed.into_iter().collect();
        self.rollback(&mut cp);
        let result = {
            let _g = store::write_lock();
            if cp.files.is_empty() {
                self.store.remove(&cp.id)
            } else if changed {
                self.store.save(&cp)
            } else {
                Ok(())
            }
        };
        let empty = cp.files.is_empty();
        if !empty {
            self.cp = Some(cp);
        }
        result?;
        self.store
            .prune(self.limits.max_checkpoints, self.limits.max_bytes)?;
        match self.after_error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A [`Recorder`] as the delivery paths use it (the server's and the headless one): the
/// checkpoint step before a batch lands, the bookkeeping after, and the one wording for a
/// checkpoint that cannot be written.
pub struct Recording(std::sync::Mutex<Recorder>);

impl Recording {
    pub fn new(r: Recorder) -> Self {
        Recording(std::sync::Mutex::new(r))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorder> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The id of the checkpoint recorded so far, if any.
    pub fn id(&self) -> Option<String> {
        self.lock().id().map(String::from)
    }

    /// Records `changes` before they land; `Some` is what to report instead of landing them
    /// (nothing may land untracked).
    pub fn before(&self, changes: &[FileChange]) -> Option<crate::apply::Delivered> {
        self.lock().before(changes).err().map(|e| {
            tracing::warn!("checkpoint not written, nothing applied: {e}");
            crate::apply::Delivered {
                errors: vec![format!(
                    "nothing was applied: the checkpoint could not be written ({e})"
                )],
                failure_reason: Some(e.to_string()),
                ..Default::default()
            }
        })
    }

    /// Records the after-content of the batch `before` took (see [`Recorder::after`]). On a
    /// multi-thread runtime the work leaves the worker's core first, so the tasks writing the
    /// edit it overlaps keep running.
    pub fn after(&self, changes: &[FileChange]) {
        let record = || self.lock().after(changes);
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(record),
            _ => record(),
        }
    }

    /// Keeps in the checkpoint only what landed in `d`; a history error joins `d`'s errors.
    pub fn landed(&self, d: &mut crate::apply::Delivered) {
        if let Err(e) = self.lock().landed(&d.landed_paths()) {
            d.errors.push(format!("history: {e}"));
        }
    }
}

/// A checkpoint as `builder.history` lists it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    pub id: String,
    pub time: String,
    pub source: String,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub files: Vec<HistoryFile>,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HistoryFile {
    pub path: String,
    pub change: Change,
}

impl From<&Checkpoint> for HistoryEntry {
    fn from(c: &Checkpoint) -> Self {
        HistoryEntry {
            id: c.id.clone(),
            time: c.time.clone(),
            source: c.source.clone(),
            summary: c.summary.clone(),
            model: c.model.clone(),
            files: c
                .files
                .iter()
                .map(|f| HistoryFile {
                    path: f.path.clone(),
                    change: f.change(),
                })
                .collect(),
        }
    }
}

/// The newest checkpoints first, at most `limit`.
pub fn list(store: &HistoryStore, limit: Option<usize>) -> Result<Vec<HistoryEntry>, HistoryError> {
    let (cps, warnings) = store.list()?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(cps
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(HistoryEntry::from)
        .collect())
}

fn find(store: &HistoryStore, id: &str) -> Result<(Checkpoint, Vec<Checkpoint>), HistoryError> {
    let (cps, _) = store.list()?;
    let Some(pos) = cps.iter().position(|c| c.id == id) else {
        return Err(HistoryError::UnknownCheckpoint(id.to_string()));
    };
    // `cps` is newest first: the target and everything after it.
    let mut range: Vec<Checkpoint> = cps[..=pos].to_vec();
    range.reverse();
    Ok((cps[pos].clone(), range))
}

fn text_of(store: &HistoryStore, path: &str, hash: Option<&str>) -> Result<String, HistoryError> {
    match hash {
        None => Ok(String::new()),
        Some(h) => String::from_utf8(store.blob(h)?).map_err(|_| HistoryError::NotText {
            path: path.to_string(),
        }),
    }
}

/// A unified diff of what checkpoint `id` changed (before → after, per file).
pub fn diff(store: &HistoryStore, id: &str) -> Result<String, HistoryError> {
    let (cp, _) = find(store, id)?;
    let mut out = String::new();
    for f in &cp.files {
        // Read (and so verified) even when the after-content is unknown: it is what a revert
        // restores.
        let old = text_of(store, &f.path, f.before.as_deref())?;
        if f.after_pending {
            out.push_str(&format!("diff {}: {AFTER_NOT_RECORDED}\n", f.path));
            continue;
        }
        let new = text_of(store, &f.path, f.after.as_deref())?;
        let a = if f.before.is_some() {
            format!("a/{}", f.path)
        } else {
            "/dev/null".to_string()
        };
        let b = if f.after.is_some() {
            format!("b/{}", f.path)
        } else {
            "/dev/null".to_string()
        };
        out.push_str(&unified(&old, &new, &a, &b));
    }
    Ok(out)
}

/// A unified diff of two texts (empty when they are equal).
pub fn unified(old: &str, new: &str, a: &str, b: &str) -> String {
    if old == new {
        return String::new();
    }
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(a, b)
        .to_string()
}

/// A file `revert` left alone: the user changed it since the checkpoint.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Conflict {
    pub path: String,
    pub reason: String,
}

/// What a revert will do: the changes (one batch, delivered like any edit) and the conflicts.
#[derive(Debug, Default)]
pub struct RevertPlan {
    pub changes: Vec<FileChange>,
    pub conflicts: Vec<Conflict>,
    /// Paths already as they were before the checkpoint.
    pub unchanged: Vec<String>,
}

/// Plans putting the project back to how it was before checkpoint `id` (undoing it and every
/// later one), or only `files`. `current` gives a path's text now (editor buffer or disk;
/// `None`: does not exist) and whether the editor has it open. Every blob needed is read and
/// checked first: a missing or damaged one fails the whole plan, so nothing is written.
pub fn plan_revert(
    store: &HistoryStore,
    root: &Path,
    id: &str,
    files: Option<&[String]>,
    force: bool,
    current: &dyn Fn(&Path) -> Option<(String, bool)>,
) -> Result<RevertPlan, HistoryError> {
    let (_, range) = find(store, id)?;
    // Per path: the content before the earliest checkpoint that touched it, and the content the
    // latest one left.
    let mut order: Vec<String> = Vec::new();
    let mut target: HashMap<String, Option<String>> = HashMap::new();
    // `None`: the content it left was not recorded (see `FileRecord::after_pending`).
    let mut expected: HashMap<String, Option<Option<String>>> = HashMap::new();
    for cp in &range {
        for f in &cp.files {
            if !target.contains_key(&f.path) {
                order.push(f.path.clone());
                target.insert(f.path.clone(), f.before.clone());
            }
            let left = (!f.after_pending).then(|| f.after.clone());
            expected.insert(f.path.clone(), left);
        }
    }
    if let Some(only) = files {
        for p in only {
            let p = normalize(p);
            if !target.contains_key(&p) {
                return Err(HistoryError::UnknownFile {
                    path: p,
                    checkpoint: id.to_string(),
                });
            }
        }
        let only: HashSet<String> = only.iter().map(|p| normalize(p)).collect();
        order.retain(|p| only.contains(p));
    }
    let mut plan = RevertPlan::default();
    for rel in order {
        let want = target.get(&rel).cloned().flatten();
        let want_text = match &want {
            Some(h) => Some(text_of(store, &rel, Some(h))?),
            None => None,
        };
        let abs = root.join(&rel);
        let now = current(&abs);
        // Whether the file now holds the content `name` names (`None`: does not exist); names
        // carry their algorithm (see `store::matches`), so a store's older names still compare.
        let holds = |name: &Option<String>| match (name, &now) {
            (None, None) => true,
            (Some(h), Some((t, _))) => store::matches(h, t.as_bytes()),
            _ => false,
        };
        if holds(&want) {
            plan.unchanged.push(rel);
            continue;
        }
        let left = expected.get(&rel).cloned().flatten();
        if !left.as_ref().is_some_and(holds) && !force {
            let reason = match (&now, &left) {
                (_, None) => format!("{AFTER_NOT_RECORDED}: it may have changed since"),
                (None, _) => "deleted since the checkpoint".to_string(),
                (Some(_), Some(None)) => "created again since the checkpoint".to_string(),
                _ => "changed since the checkpoint".to_string(),
            };
            plan.conflicts.push(Conflict { path: rel, reason });
            continue;
        }
        let (old_text, open) = match now {
            Some((t, open)) => (Some(t), open),
            None => (None, false),
        };
        let change = match (want_text, &old_text) {
            (None, None) => continue,
            (None, Some(_)) => FileChange {
                rel,
                abs,
                kind: ChangeKind::Delete,
                new_text: String::new(),
                old_text,
                open,
            },
            (Some(t), None) => FileChange {
                rel,
                abs,
                kind: ChangeKind::Create,
                new_text: t,
                old_text: None,
                open: false,
            },
            (Some(t), Some(_)) => FileChange {
                rel,
                abs,
                kind: ChangeKind::Update,
                new_text: t,
                old_text,
                open,
            },
        };
        plan.changes.push(change);
    }
    Ok(plan)
}

fn normalize(p: &str) -> String {
    let p = p.replace('\\', "/");
    p.trim_start_matches("./").to_string()
}

/// The current text of `abs` on disk (`None`: missing or not UTF-8), for the headless paths.
pub fn disk_text(abs: &Path) -> Option<(String, bool)> {
    std::fs::read(abs)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(|t| (t, false))
}

#[cfg(test)]
mod tests;
