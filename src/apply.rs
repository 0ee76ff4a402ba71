//! The apply pipeline's core: from a parsed answer to a plan of file changes (safe paths only,
//! protected files kept, `<edit>` blocks resolved against the current text), to the result
//! object of DESIGN.md §2. Delivery is the caller's: the LSP edge sends one
//! `workspace/applyEdit`, the CLI writes to disk. Nothing here knows LSP.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use serde::Serialize;

use crate::conversation::{ConversationState, Edit};
use crate::edits::path::resolve;
use crate::edits::protected_reason;
use crate::edits::search_replace::apply_search_replace;
use crate::edits::write::{write_all_atomic, WriteError, WriteOutcome};
use crate::events::{Event, Reporter};
use crate::response::ParsedResponse;

/// Current text of files open in an editor, which wins over the disk.
pub trait TextSource {
    fn open_text(&self, path: &Path) -> Option<String>;
}

/// No editor: the disk is the only source.
pub struct DiskOnly;
impl TextSource for DiskOnly {
    fn open_text(&self, _: &Path) -> Option<String> {
        None
    }
}

#[derive(Debug, Clone, Default)]
pub struct ApplyOptions {
    /// Allow overwriting package.json, lockfiles, build configs and `.env*`.
    pub allow_protected: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Create,
    Update,
    /// Only reverts delete (a file a generation created); `new_text` is empty.
    Delete,
}

/// What a change did to a file, as results, the history and reviews report it.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Created,
    Updated,
    Deleted,
}

/// One file of a change set under review.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct ReviewFile {
    pub path: String,
    pub change: Change,
}

/// How a change set went to review (in `builder.apply` / `builder.generate` results).
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOutcome {
    /// `annotated`: the editor showed its preview (only what the user kept landed);
    /// `pending`: held until `builder.review.accept` / `builder.review.discard`.
    pub mode: String,
    pub files: Vec<ReviewFile>,
    /// A pending set that was still waiting and is now replaced by this one.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replaced_pending: bool,
}

#[derive(Debug, Clone)]
pub struct FileChange {
    pub rel: String,
    pub abs: PathBuf,
    pub kind: ChangeKind,
    pub new_text: String,
    /// The text being replaced (editor buffer if open, else disk); `None` for new files.
    pub old_text: Option<String>,
    /// Open in the editor: only the editor may change it.
    pub open: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct SkippedFile {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct ApplyPlan {
    pub changes: Vec<FileChange>,
    pub skipped: Vec<SkippedFile>,
    pub errors: Vec<String>,
}

pub use crate::packages::install::FailedPackage;

/// The result of `builder.apply` (DESIGN.md §2), also the CLI's JSON output.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResult {
    pub files_created: Vec<String>,
    pub files_updated: Vec<String>,
    /// Files removed (only a revert removes files).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_deleted: Vec<String>,
    pub files_skipped: Vec<SkippedFile>,
    pub packages_installed: Vec<String>,
    pub packages_already_installed: Vec<String>,
    pub packages_failed: Vec<FailedPackage>,
    pub commands_executed: Vec<String>,
    pub errors: Vec<String>,
    pub explanation: String,
    /// Packages the answer asked for (`<package>` tags).
    pub packages: Vec<String>,
    /// Commands the answer asked for (`<command>` tags), not run unless `runCommands`.
    pub commands: Vec<String>,
    /// Files whose block never closed; never applied.
    pub truncated: Vec<String>,
    /// True when every planned change landed.
    pub applied: bool,
    /// `workspaceEdit`, `disk`, `workspaceEdit+disk`, or `none`.
    pub applied_via: String,
    /// Files the server wrote itself (no client edit support, or the client refused the edit).
    pub written_to_disk: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// The checkpoint recorded before the files landed (`builder.revert` takes it back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Files the user left out when reviewing (not applied, not in the checkpoint).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_declined: Vec<String>,
    /// Set when the change set went to review (setting `review`, or `review: true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<ReviewOutcome>,
    /// One line for a person.
    pub message: String,
}

fn read_current(path: &Path, source: &dyn TextSource) -> Result<Option<(String, bool)>, String> {
    if let Some(t) = source.open_text(path) {
        return Ok(Some((t, true)));
    }
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(|s| Some((s, false)))
            .map_err(|_| "the existing file is not UTF-8 text".to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read the existing file: {e}")),
    }
}

/// Plans the changes of `parsed` against the project at `root` (canonical).
pub fn plan(
    root: &Path,
    parsed: &ParsedResponse,
    opts: &ApplyOptions,
    source: &dyn TextSource,
) -> ApplyPlan {
    let mut plan = ApplyPlan::default();
    // Index by normalized path: `./src/A.jsx` and `src/A.jsx` are one file; the last one wins.
    let mut index: HashMap<String, usize> = HashMap::new();

    let admit = |raw: &str, plan: &mut ApplyPlan| -> Option<(String, PathBuf)> {
        let safe = match resolve(root, raw) {
            Ok(s) => s,
            Err(e) => {
                plan.skipped.push(SkippedFile {
                    path: raw.to_string(),
                    reason: format!("unsafe path: {e}"),
                });
                return None;
            }
        };
        if !opts.allow_protected {
            if let Some(reason) =
                protected_reason(&safe.rel).or_else(|| protected_reason(&safe.real_rel))
            {
                plan.skipped.push(SkippedFile {
                    path: safe.rel,
                    reason: reason.to_string(),
                });
                return None;
            }
        }
        Some((safe.rel, safe.abs))
    };

    for file in &parsed.files {
        if !file.complete {
            plan.skipped.push(SkippedFile {
                path: file.path.clone(),
                reason: "truncated: the closing </file> tag never arrived".into(),
            });
            continue;
        }
        let Some((rel, abs)) = admit(&file.path, &mut plan) else {
            continue;
        };
        let current = match read_current(&abs, source) {
            Ok(c) => c,
            Err(reason) => {
                plan.skipped.push(SkippedFile { path: rel, reason });
                continue;
            }
        };
        let (old_text, open) = match current {
            Some((t, open)) => (Some(t), open),
            None => (None, false),
        };
        let change = FileChange {
            kind: if old_text.is_some() {
                ChangeKind::Update
            } else {
                ChangeKind::Create
            },
            rel: rel.clone(),
            abs,
            new_text: file.content.clone(),
            old_text,
            open,
        };
        match index.get(&rel) {
            Some(&i) => plan.changes[i] = change,
            None => {
                index.insert(rel, plan.changes.len());
                plan.changes.push(change);
            }
        }
    }

    // `<edit>` blocks, in order, each against the text as changed so far.
    let mut failed_edit_files: Vec<String> = Vec::new();
    for (n, edit) in parsed.edits.iter().enumerate() {
        if !edit.complete {
            plan.skipped.push(SkippedFile {
                path: edit.path.clone(),
                reason: "truncated: the <edit> block never closed".into(),
            });
            continue;
        }
        let Some((rel, abs)) = admit(&edit.path, &mut plan) else {
            continue;
        };
        if failed_edit_files.contains(&rel) {
            continue;
        }
        let (base, old_text, open) = match index.get(&rel) {
            Some(&i) => (
                plan.changes[i].new_text.clone(),
                plan.changes[i].old_text.clone(),
                plan.changes[i].open,
            ),
            None => match read_current(&abs, source) {
                Ok(Some((t, open))) => (t.clone(), Some(t), open),
                Ok(None) => {
                    plan.errors
                        .push(format!("{rel}: edit {}: the file does not exist", n + 1));
                    plan.skipped.push(SkippedFile {
                        path: rel.clone(),
                        reason: "edit target does not exist".into(),
                    });
                    failed_edit_files.push(rel);
                    continue;
                }
                Err(reason) => {
                    plan.skipped.push(SkippedFile { path: rel, reason });
                    continue;
                }
            },
        };
        match apply_search_replace(&base, &edit.search, &edit.replace) {
            Ok(new_text) => match index.get(&rel) {
                Some(&i) => plan.changes[i].new_text = new_text,
                None => {
                    index.insert(rel.clone(), plan.changes.len());
                    plan.changes.push(FileChange {
                        rel,
                        abs,
                        kind: ChangeKind::Update,
                        new_text,
                        old_text,
                        open,
                    });
                }
            },
            Err(e) => {
                plan.errors.push(format!("{rel}: edit {}: {e}", n + 1));
                plan.skipped.push(SkippedFile {
                    path: rel.clone(),
                    reason: format!("edit failed: {e}"),
                });
                if let Some(i) = index.remove(&rel) {
                    plan.changes.remove(i);
                    for v in index.values_mut() {
                        if *v > i {
                            *v -= 1;
                        }
                    }
                }
                failed_edit_files.push(rel);
            }
        }
    }

    // Identical content needs no edit.
    plan.changes.retain(|c| {
        if c.old_text.as_deref() == Some(c.new_text.as_str()) {
            plan.skipped.push(SkippedFile {
                path: c.rel.clone(),
                reason: "unchanged: identical content".into(),
            });
            false
        } else {
            true
        }
    });
    plan
}

/// The result skeleton for a plan, before delivery.
pub fn result_for(parsed: &ParsedResponse, plan: &ApplyPlan) -> ApplyResult {
    ApplyResult {
        files_skipped: plan.skipped.clone(),
        errors: plan.errors.clone(),
        explanation: parsed.explanation.clone(),
        packages: parsed.packages.clone(),
        commands: parsed.commands.clone(),
        truncated: parsed.truncated.clone(),
        applied_via: "none".into(),
        ..Default::default()
    }
}

/// What became of a batch of changes handed to a [`Deliver`].
#[derive(Debug, Default)]
pub struct Delivered {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
    pub written_to_disk: Vec<String>,
    pub errors: Vec<String>,
    pub failure_reason: Option<String>,
    pub via_editor: bool,
    pub via_disk: bool,
    /// Reviewed in the editor and left out by the user: not landed.
    pub declined: Vec<String>,
}

impl Delivered {
    /// How many of the changes landed (in the editor or on disk).
    pub fn landed(&self) -> usize {
        self.created.len() + self.updated.len() + self.deleted.len()
    }

    /// The paths that landed.
    pub fn landed_paths(&self) -> std::collections::HashSet<&str> {
        self.created
            .iter()
            .chain(&self.updated)
            .chain(&self.deleted)
            .map(String::as_str)
            .collect()
    }

    pub fn merge_into(self, r: &mut ApplyResult) {
        r.files_created.extend(self.created);
        r.files_updated.extend(self.updated);
        r.files_deleted.extend(self.deleted);
        r.written_to_disk.extend(self.written_to_disk);
        r.files_declined.extend(self.declined);
        r.errors.extend(self.errors);
        if self.failure_reason.is_some() {
            r.failure_reason = self.failure_reason;
        }
        let editor = self.via_editor || r.applied_via.contains("workspaceEdit");
        let disk = self.via_disk || r.applied_via.contains("disk");
        r.applied_via = applied_via(editor, disk).into();
    }
}

/// The `appliedVia` of a result: `workspaceEdit`, `disk`, `workspaceEdit+disk` or `none`.
pub fn applied_via(editor: bool, disk: bool) -> &'static str {
    match (editor, disk) {
        (true, true) => "workspaceEdit+disk",
        (true, false) => "workspaceEdit",
        (false, true) => "disk",
        (false, false) => "none",
    }
}

/// Where planned changes go: the editor (one `workspace/applyEdit` per batch) or the disk.
/// The orchestration (apply, generate) is the same for both; only this differs.
pub trait Deliver: Send + Sync {
    /// Current text of a file open in the editor, by canonical path.
    fn open_text(&self, path: &Path) -> Option<String>;
    fn deliver<'a>(
        &'a self,
        changes: &'a [FileChange],
    ) -> Pin<Box<dyn Future<Output = Delivered> + Send + 'a>>;
}

/// The headless deliverer: everything is written to disk, atomically, all or nothing.
pub struct DiskDeliver {
    pub reporter: Reporter,
}

impl Deliver for DiskDeliver {
    fn open_text(&self, _: &Path) -> Option<String> {
        None
    }

    fn deliver<'a>(
        &'a self,
        changes: &'a [FileChange],
    ) -> Pin<Box<dyn Future<Output = Delivered> + Send + 'a>> {
        Box::pin(async move { deliver_to_disk(changes, &self.reporter) })
    }
}

/// Writes `changes` atomically, all or nothing, and says what became of them.
pub fn deliver_to_disk(changes: &[FileChange], reporter: &Reporter) -> Delivered {
    let mut d = Delivered::default();
    if changes.is_empty() {
        return d;
    }
    let (deletes, writes): (Vec<&FileChange>, Vec<&FileChange>) =
        changes.iter().partition(|c| c.kind == ChangeKind::Delete);
    match write_to_disk(&writes, reporter) {
        Ok(outcomes) => {
            d.via_disk = true;
            for (rel, o) in outcomes {
                match o {
                    WriteOutcome::Created => d.created.push(rel.clone()),
                    WriteOutcome::Updated => d.updated.push(rel.clone()),
                }
                d.written_to_disk.push(rel);
            }
        }
        Err(e) => {
            d.errors.push(format!("nothing was written: {e}"));
            d.failure_reason = Some(e.to_string());
            return d;
        }
    }
    for c in deletes {
        match std::fs::remove_file(&c.abs) {
            Ok(()) => {
                d.via_disk = true;
                d.deleted.push(c.rel.clone());
                d.written_to_disk.push(c.rel.clone());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => d.deleted.push(c.rel.clone()),
            Err(e) => d.errors.push(format!("{}: cannot delete: {e}", c.rel)),
        }
    }
    d
}

/// Lets the plan see text delivered earlier in the same job before the editor reports it.
pub struct Overlay<'a> {
    pub texts: &'a HashMap<PathBuf, String>,
    pub inner: &'a dyn Deliver,
}

impl TextSource for Overlay<'_> {
    fn open_text(&self, path: &Path) -> Option<String> {
        self.texts
            .get(path)
            .cloned()
            .or_else(|| self.inner.open_text(path))
    }
}

/// Writes `changes` to disk, all or nothing, reporting each file.
pub fn write_to_disk(
    changes: &[&FileChange],
    reporter: &Reporter,
) -> Result<Vec<(String, WriteOutcome)>, WriteError> {
    let total = changes.len();
    for (i, c) in changes.iter().enumerate() {
        reporter(Event::File {
            path: c.rel.clone(),
            current: i + 1,
            total,
        });
    }
    let files: Vec<(PathBuf, Vec<u8>)> = changes
        .iter()
        .map(|c| (c.abs.clone(), c.new_text.as_bytes().to_vec()))
        .collect();
    let outcomes = write_all_atomic(&files)?;
    Ok(changes
        .iter()
        .map(|c| c.rel.clone())
        .zip(outcomes)
        .collect())
}

/// Fills in the one-line summary.
pub fn summarize(result: &mut ApplyResult) {
    let written = result.files_created.len() + result.files_updated.len();
    result.message = if written == 0 && result.files_skipped.is_empty() && result.errors.is_empty()
    {
        "The answer contained no files to apply.".into()
    } else {
        let mut s = format!(
            "{} created, {} updated, {} skipped",
            result.files_created.len(),
            result.files_updated.len(),
            result.files_skipped.len()
        );
        if !result.errors.is_empty() {
            s.push_str(&format!(
                ", {}: {}",
                crate::wording::count(result.errors.len(), "error"),
                result.errors[0]
            ));
        }
        if !result.written_to_disk.is_empty() && result.applied_via != "disk" {
            s.push_str(&format!(
                "; {} written to disk by the server",
                result.written_to_disk.len()
            ));
        }
        s
    };
}

/// Records an apply in the conversation the way the seed did: edited files on the latest user
/// message, an edit entry, and a major change.
pub fn record(conv: &mut ConversationState, request: &str, result: &ApplyResult) {
    let files: Vec<String> = result
        .files_created
        .iter()
        .chain(result.files_updated.iter())
        .cloned()
        .collect();
    if files.is_empty() && result.errors.is_empty() {
        return;
    }
    conv.record_edited_files(&files);
    conv.add_edit(Edit::of_change(
        request,
        "apply",
        &files,
        result.errors.is_empty() && result.applied,
        &result.errors,
    ));
    if !files.is_empty() {
        let desc = if result.explanation.is_empty() {
            format!(
                "Applied {}: {} created, {} updated",
                crate::wording::count(files.len(), "file"),
                result.files_created.len(),
                result.files_updated.len()
            )
        } else {
            result.explanation.chars().take(300).collect()
        };
        conv.add_major_change(&desc, files);
    }
}

/// The headless path: plan against the disk and write everything atomically.
pub fn apply_to_dir(
    root: &Path,
    parsed: &ParsedResponse,
    opts: &ApplyOptions,
    reporter: &Reporter,
) -> ApplyResult {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let plan = plan(&root, parsed, opts, &DiskOnly);
    let mut result = result_for(parsed, &plan);
    let delivered = deliver_to_disk(&plan.changes, reporter);
    result.applied = if plan.changes.is_empty() {
        result.errors.is_empty()
    } else {
        delivered.landed() == plan.changes.len()
    };
    delivered.merge_into(&mut result);
    summarize(&mut result);
    result
}
