//! The on-disk history of one project: `blobs/<sha256>` (file contents, content-addressed so an
//! unchanged file costs nothing) and `checkpoints/<id>.json` (one manifest per checkpoint).
//! Every file is written to a temp file, fsynced and renamed (0600, dirs 0700); a manifest is
//! written only after all its blobs are durable, so a crash at any point leaves either no
//! checkpoint or a complete one. Pruning removes whole manifests (oldest first), then blobs no
//! manifest names.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::{Checkpoint, HistoryError};

/// Serialises blob writes, manifest writes and pruning in this process, so a prune never
/// collects the blobs of a checkpoint whose manifest is about to be written.
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// Holds the in-process write lock; poisoning is harmless (all writes are atomic).
pub(crate) fn write_lock() -> std::sync::MutexGuard<'static, ()> {
    WRITE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone)]
pub struct HistoryStore {
    dir: PathBuf,
}

/// Lowercase hex SHA-256 of `bytes`: a blob's name.
pub fn hash(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn io_err(path: &Path, source: io::Error) -> HistoryError {
    HistoryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl HistoryStore {
    /// The history of the project at `canonical_root`, under `<state_dir>/history/`.
    pub fn for_project(state_dir: &Path, canonical_root: &Path) -> Self {
        let normalized: PathBuf = canonical_root.components().collect();
        let key = hash(normalized.as_os_str().as_encoded_bytes());
        let name: String = normalized
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        HistoryStore {
            dir: state_dir
                .join("history")
                .join(format!("{name}-{}", &key[..16])),
        }
    }

    /// A store rooted at `dir` exactly (tests).
    pub fn at(dir: PathBuf) -> Self {
        HistoryStore { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn blobs(&self) -> PathBuf {
        self.dir.join("blobs")
    }

    fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    fn blob_path(&self, hash: &str) -> PathBuf {
        self.blobs().join(hash)
    }

    /// Stores `bytes` (if no blob of that content exists yet) and returns its hash.
    /// Call with [`write_lock`] held.
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, HistoryError> {
        let h = hash(bytes);
        let path = self.blob_path(&h);
        if path.is_file() {
            return Ok(h);
        }
        let dir = self.blobs();
        crate::private_file::create_dir(&dir).map_err(|e| io_err(&dir, e))?;
        crate::private_file::write_atomic(&path, bytes).map_err(|e| io_err(&path, e))?;
        Ok(h)
    }

    /// A blob's bytes, checked against its name: a missing or damaged blob is an error.
    pub fn blob(&self, hash: &str) -> Result<Vec<u8>, HistoryError> {
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HistoryError::Corrupt(format!("bad blob name {hash:?}")));
        }
        let path = self.blob_path(hash);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(HistoryError::MissingBlob(hash.to_string()))
            }
            Err(e) => return Err(io_err(&path, e)),
        };
        if self::hash(&bytes) != hash {
            return Err(HistoryError::Corrupt(format!(
                "blob {hash} does not match its content"
            )));
        }
        Ok(bytes)
    }

    /// Writes (or replaces) a checkpoint's manifest. Its blobs must already be stored.
    /// Call with [`write_lock`] held.
    pub fn save(&self, cp: &Checkpoint) -> Result<(), HistoryError> {
        let dir = self.checkpoints();
        crate::private_file::create_dir(&dir).map_err(|e| io_err(&dir, e))?;
        let json = serde_json::to_vec_pretty(cp)
            .map_err(|e| HistoryError::Corrupt(format!("cannot encode checkpoint: {e}")))?;
        let path = dir.join(format!("{}.json", cp.id));
        crate::private_file::write_atomic(&path, &json).map_err(|e| io_err(&path, e))
    }

    /// Removes a checkpoint's manifest (its blobs go at the next prune).
    pub fn remove(&self, id: &str) -> Result<(), HistoryError> {
        let path = self.checkpoints().join(format!("{id}.json"));
        match fs::remove_file(&path) {
            Ok(()) => {
                crate::private_file::sync_dir(&self.checkpoints());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Every readable checkpoint, newest first. A manifest that cannot be parsed is skipped
    /// (and named in the returned warnings): one damaged file never hides the rest.
    pub fn list(&self) -> Result<(Vec<Checkpoint>, Vec<String>), HistoryError> {
        let dir = self.checkpoints();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(io_err(&dir, e)),
        };
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue;
            }
            let parsed = fs::read(entry.path())
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Checkpoint>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(cp) => out.push(cp),
                Err(e) => warnings.push(format!("checkpoint {name} is unreadable: {e}")),
            }
        }
        out.sort_by(|a, b| b.seq.cmp(&a.seq).then_with(|| b.id.cmp(&a.id)));
        Ok((out, warnings))
    }

    /// The next sequence number (one more than the newest checkpoint's).
    pub fn next_seq(&self) -> Result<u64, HistoryError> {
        Ok(self.list()?.0.first().map_or(1, |c| c.seq + 1))
    }

    /// Bytes used by manifests and blobs.
    pub fn disk_bytes(&self) -> u64 {
        [self.blobs(), self.checkpoints()]
            .iter()
            .filter_map(|d| fs::read_dir(d).ok())
            .flat_map(|rd| rd.flatten())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// Drops the oldest checkpoints until at most `max_checkpoints` remain and the store fits
    /// `max_bytes` (the newest one is always kept), then removes blobs no manifest names and
    /// temp files a crash left behind. Returns the ids pruned.
    pub fn prune(
        &self,
        max_checkpoints: usize,
        max_bytes: u64,
    ) -> Result<Vec<String>, HistoryError> {
        let _g = write_lock();
        let (mut cps, _) = self.list()?;
        let mut pruned = Vec::new();
        let max_checkpoints = max_checkpoints.max(1);
        while cps.len() > max_checkpoints {
            if let Some(old) = cps.pop() {
                self.remove(&old.id)?;
                pruned.push(old.id);
            }
        }
        let blob_size = |h: &str| {
            fs::metadata(self.blob_path(h))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        loop {
            let mut seen = HashSet::new();
            let mut total = 0u64;
            for cp in &cps {
                total += 512;
                for h in cp.blob_hashes() {
                    if seen.insert(h.to_string()) {
                        total += blob_size(h);
                    }
                }
            }
            if total <= max_bytes || cps.len() <= 1 {
                break;
            }
            if let Some(old) = cps.pop() {
                self.remove(&old.id)?;
                pruned.push(old.id);
            }
        }
        let keep: HashSet<&str> = cps.iter().flat_map(|c| c.blob_hashes()).collect();
        if let Ok(rd) = fs::read_dir(self.blobs()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(name.as_str()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        if let Ok(rd) = fs::read_dir(self.checkpoints()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().contains(".tmp-") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        Ok(pruned)
    }
}
