//! Local sandbox dirs that outlive their server. `kill` and `Drop` remove a sandbox's dir, but a
//! server that dies hard (SIGKILL, OOM killer, power loss) leaves it behind, `node_modules` and
//! all (100 MB or more each). So each dir `<base>/<id>` has a lock file `<base>/<id>.lock` on
//! which its server holds an exclusive `flock` for the sandbox's whole life; the kernel drops
//! the lock when that process dies, however it dies. [`sweep`], run before a new sandbox is
//! made, removes every dir whose lock nobody holds. The lock file sits outside the sandbox dir,
//! so code running in the sandbox cannot touch it.
//!
//! Races: a creator makes the lock file with `create_new`, locks it, then checks the path still
//! names the file it locked (a sweeper may have unlinked it in between) before it makes the dir;
//! a sweeper removes a dir only while it holds the lock and the path still names that file.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const LOCK_SUFFIX: &str = ".lock";

/// Proof that this process owns a sandbox dir: the held lock. Dropping it releases the lock.
#[derive(Debug)]
pub struct Owner {
    _lock: File,
    lock_path: PathBuf,
}

impl Owner {
    /// Removes the lock file (after the dir is gone); the lock itself ends with `self`.
    pub fn release(self) {
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// The lock file of sandbox `id`.
pub fn lock_path(base: &Path, id: &str) -> PathBuf {
    base.join(format!("{id}{LOCK_SUFFIX}"))
}

/// Exclusive, non-blocking `flock`; false when another open file description holds it.
fn try_lock(f: &File) -> bool {
    // SAFETY: `flock` on a descriptor `f` owns and keeps open for the call.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Whether `path` still names the open file `f` (same device and inode).
fn still_names(path: &Path, f: &File) -> bool {
    match (std::fs::metadata(path), f.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Claims the name `id` in `base`: `Ok(None)` when it is taken (or being swept), so the caller
/// picks another id.
pub fn claim(base: &Path, id: &str) -> std::io::Result<Option<Owner>> {
    let lock_path = lock_path(base, id);
    let file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&lock_path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => return Err(e),
    };
    if !try_lock(&file) || !still_names(&lock_path, &file) {
        return Ok(None);
    }
    Ok(Some(Owner {
        _lock: file,
        lock_path,
    }))
}

/// Removes the dirs in `base` whose owner is gone; returns their ids. Dirs without a lock file
/// are left alone (not ours to judge).
pub fn sweep(base: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(id) = name.to_str().and_then(|n| n.strip_suffix(LOCK_SUFFIX)) else {
            continue;
        };
        if id.is_empty() || id.starts_with('.') {
            continue;
        }
        let lock = entry.path();
        let Ok(file) = File::open(&lock) else {
            continue;
        };
        if !try_lock(&file) || !still_names(&lock, &file) {
            continue;
        }
        let dir = base.join(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(
                    "could not remove the orphaned sandbox {}: {e}",
                    dir.display()
                );
                continue;
            }
        }
        let _ = std::fs::remove_file(&lock);
        removed.push(id.to_string());
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_whose_lock_is_held_survives_and_an_unlocked_one_is_removed() {
        let base = tempfile::tempdir().unwrap();
        let live = claim(base.path(), "live-1").unwrap().expect("claimed");
        std::fs::create_dir(base.path().join("live-1")).unwrap();
        std::fs::write(base.path().join("live-1/a.txt"), "x").unwrap();
        // A dead server's leftovers: the lock file exists, nobody holds it.
        let dead = claim(base.path(), "dead-1").unwrap().expect("claimed");
        std::fs::create_dir_all(base.path().join("dead-1/node_modules/x")).unwrap();
        drop(dead);
        // Not ours: no lock file at all.
        std::fs::create_dir(base.path().join("other")).unwrap();

        assert_eq!(sweep(base.path()), vec!["dead-1".to_string()]);
        assert!(!base.path().join("dead-1").exists());
        assert!(!lock_path(base.path(), "dead-1").exists());
        assert!(base.path().join("live-1/a.txt").is_file());
        assert!(base.path().join("other").is_dir());

        live.release();
        assert!(!lock_path(base.path(), "live-1").exists());
        assert!(sweep(base.path()).is_empty(), "no lock file, no sweep");
    }

    #[test]
    fn a_taken_name_is_not_claimed_twice() {
        let base = tempfile::tempdir().unwrap();
        let first = claim(base.path(), "p-1").unwrap();
        assert!(first.is_some());
        assert!(claim(base.path(), "p-1").unwrap().is_none());
        assert!(sweep(base.path()).is_empty(), "held: not swept");
    }

    #[test]
    fn a_missing_base_sweeps_nothing() {
        let base = tempfile::tempdir().unwrap();
        assert!(sweep(&base.path().join("nope")).is_empty());
    }
}
