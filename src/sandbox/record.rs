//! A small file per project saying which process holds its sandbox, so the headless
//! `builder-lsp sandbox status|kill` can find a sandbox another process (the editor's server,
//! or `sandbox create`) started.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ProviderKind, SandboxInfo};
use crate::conversation::ConversationStore;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The process that owns the sandbox (it kills the sandbox when it ends).
    pub pid: u32,
    pub sandbox_id: String,
    pub provider: ProviderKind,
    pub url: String,
    pub created_at: String,
    pub isolation: String,
}

impl Record {
    pub fn new(info: &SandboxInfo) -> Record {
        Record {
            pid: std::process::id(),
            sandbox_id: info.sandbox_id.clone(),
            provider: info.provider,
            url: info.url.clone(),
            created_at: info.created_at.clone(),
            isolation: info.isolation.clone(),
        }
    }

    /// Whether the owning process still runs: it exists, is not a zombie, and is a
    /// builder-lsp (a recycled pid must never be signalled).
    pub fn owner_alive(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // The state letter follows the `(comm)` field, which may itself contain spaces.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if matches!(state, None | Some('Z') | Some('X')) {
            return false;
        }
        std::fs::read(format!("/proc/{}/cmdline", self.pid))
            .map(|c| String::from_utf8_lossy(&c).contains("builder-lsp"))
            .unwrap_or(false)
    }
}

fn file_for(root: &Path) -> PathBuf {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    ConversationStore::new(ConversationStore::default_dir().join("sandboxes")).path_for(&root)
}

pub fn save(root: &Path, r: &Record) {
    let path = file_for(root);
    let Ok(bytes) = serde_json::to_vec_pretty(r) else {
        return;
    };
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = crate::edits::write::write_atomic(&path, &bytes) {
        tracing::debug!("sandbox record not saved: {e}");
    }
}

/// The record of `root`'s sandbox, if its owner still runs (stale records are removed).
pub fn load(root: &Path) -> Option<Record> {
    let path = file_for(root);
    let r: Record = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    if r.owner_alive() {
        Some(r)
    } else {
        let _ = std::fs::remove_file(&path);
        None
    }
}

/// Removes the record if this process owns it.
pub fn remove_own(root: &Path) {
    let path = file_for(root);
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(r) = serde_json::from_slice::<Record>(&bytes) {
            if r.pid != std::process::id() {
                return;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
}
