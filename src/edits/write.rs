//! Atomic disk writes: the fallback when no editor takes the edit.
//!
//! Every file is written to a fresh temp file beside its target and renamed
//! over it, so a crash or a full disk never leaves a half-written source
//! file, and a batch either lands as a whole or leaves the tree as it was.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Why a write failed; every message names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("refusing to write through the symlink at {}", .path.display())]
    Symlink { path: PathBuf },
    #[error("{} is a directory", .path.display())]
    IsDirectory { path: PathBuf },
    #[error("{} is listed twice in one write", .path.display())]
    Duplicate { path: PathBuf },
    #[error("{} has no file name", .path.display())]
    NoFileName { path: PathBuf },
    #[error("cannot inspect {}: {source}", .path.display())]
    Inspect { path: PathBuf, source: io::Error },
    #[error("cannot create directory {}: {source}", .path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot replace {}: {source}", .path.display())]
    Rename { path: PathBuf, source: io::Error },
}

impl WriteError {
    /// The file (or directory) the error is about, for per-file reports.
    pub fn path(&self) -> &Path {
        match self {
            WriteError::Symlink { path }
            | WriteError::IsDirectory { path }
            | WriteError::Duplicate { path }
            | WriteError::NoFileName { path }
            | WriteError::Inspect { path, .. }
            | WriteError::CreateDir { path, .. }
            | WriteError::Write { path, .. }
            | WriteError::Rename { path, .. } => path,
        }
    }
}

/// Whether a write made a new file or replaced an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Created,
    Updated,
}

/// Atomic replace of one file; see [`write_all_atomic`] for the details,
/// which are the same for a batch of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_batch(&[(path, bytes)], None).map(|_| ())
}

/// Writes several files so that either all land or none changes.
///
/// Order: check every target (a symlink or directory there is refused, and
/// never followed), create missing parent directories, write and fsync a
/// temp file (random name, `O_EXCL`) beside each target, then rename them
/// all and fsync the directories (best effort). A failure before the renames
/// removes the temps and the directories it created. A rename failing half
/// way (rare: the temps are already on the same file system) is undone from
/// hard-link backups of the replaced files, where the file system has them.
/// Existing files keep their permissions; new ones get the umask default.
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>)]) -> Result<Vec<WriteOutcome>, WriteError> {
    let refs: Vec<(&Path, &[u8])> = files
        .iter()
        .map(|(p, b)| (p.as_path(), b.as_slice()))
        .collect();
    write_batch(&refs, None)
}

/// One file of a batch while it is in flight.
struct Pending<'a> {
    target: &'a Path,
    dir: PathBuf,
    perms: Option<Permissions>,
    temp: Option<PathBuf>,
    backup: Option<PathBuf>,
    renamed: bool,
}

/// The batch writer; `fail_rename_at` lets tests exercise the rollback of
/// the rename phase, which real file systems almost never trigger.
fn write_batch(
    files: &[(&Path, &[u8])],
    fail_rename_at: Option<usize>,
) -> Result<Vec<WriteOutcome>, WriteError> {
    let mut pending: Vec<Pending> = Vec::with_capacity(files.len());
    for (i, (target, _)) in files.iter().enumerate() {
        if files[..i].iter().any(|(p, _)| p == target) {
            return Err(WriteError::Duplicate {
                path: target.to_path_buf(),
            });
        }
        if target.file_name().is_none() {
            return Err(WriteError::NoFileName {
                path: target.to_path_buf(),
            });
        }
        let perms = inspect_target(target)?;
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        pending.push(Pending {
            target,
            dir,
            perms,
            temp: None,
            backup: None,
            renamed: false,
        });
    }

    let mut created_dirs: Vec<PathBuf> = Vec::new();
    let want_backups = files.len() > 1;
    for (p, (_, bytes)) in pending.iter_mut().zip(files) {
        if let Err(e) = stage(p, bytes, want_backups, &mut created_dirs) {
            rollback(&mut pending, &created_dirs);
            return Err(e);
        }
    }

    for i in 0..pending.len() {
        let p = &pending[i];
        let Some(temp) = p.temp.as_deref() else {
            continue;
        };
        let result = if fail_rename_at == Some(i) {
            Err(io::Error::other("injected failure"))
        } else {
            fs::rename(temp, p.target)
        };
        match result {
            Ok(()) => pending[i].renamed = true,
            Err(source) => {
                let path = p.target.to_path_buf();
                rollback(&mut pending, &created_dirs);
                return Err(WriteError::Rename { path, source });
            }
        }
    }

    let mut synced: Vec<&Path> = Vec::new();
    for p in &pending {
        if let Some(b) = &p.backup {
            let _ = fs::remove_file(b);
        }
        if !synced.contains(&p.dir.as_path()) {
            sync_dir(&p.dir);
            synced.push(&p.dir);
        }
    }
    for d in &created_dirs {
        if let Some(parent) = d.parent() {
            if !synced.contains(&parent) {
                sync_dir(parent);
                synced.push(parent);
            }
        }
    }
    Ok(pending
        .iter()
        .map(|p| {
            if p.perms.is_some() {
                WriteOutcome::Updated
            } else {
                WriteOutcome::Created
            }
        })
        .collect())
}

/// Refuses what must never be written through; returns the permissions of
/// an existing regular file (which marks it as an update).
fn inspect_target(target: &Path) -> Result<Option<Permissions>, WriteError> {
    match fs::symlink_metadata(target) {
        Ok(meta) if meta.file_type().is_symlink() => Err(WriteError::Symlink {
            path: target.to_path_buf(),
        }),
        Ok(meta) if meta.is_dir() => Err(WriteError::IsDirectory {
            path: target.to_path_buf(),
        }),
        Ok(meta) => Ok(Some(meta.permissions())),
        // A missing parent, or a parent that is a file: creating the
        // directories reports the latter with a clearer message.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(WriteError::Inspect {
            path: target.to_path_buf(),
            source,
        }),
    }
}

/// Parents, temp file and (for batches) a backup link of one file.
fn stage(
    p: &mut Pending,
    bytes: &[u8],
    want_backup: bool,
    created_dirs: &mut Vec<PathBuf>,
) -> Result<(), WriteError> {
    create_parents(&p.dir, created_dirs)?;
    let write_err = |source| WriteError::Write {
        path: p.target.to_path_buf(),
        source,
    };
    let (temp, mut file) = create_unique(&p.dir, "tmp", |path| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        if let Some(perms) = &p.perms {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            opts.mode(perms.mode() & 0o777);
        }
        opts.open(path)
    })
    .map_err(write_err)?;
    p.temp = Some(temp);
    if let Some(perms) = &p.perms {
        // The umask narrowed the create mode; restore it exactly.
        file.set_permissions(perms.clone()).map_err(write_err)?;
    }
    file.write_all(bytes).map_err(write_err)?;
    file.sync_all().map_err(write_err)?;
    drop(file);
    if want_backup && p.perms.is_some() {
        // Without hard links (some FUSE or FAT mounts) the batch is still
        // all-or-nothing up to the renames, just not during them.
        p.backup = create_unique(&p.dir, "bak", |b| fs::hard_link(p.target, b))
            .ok()
            .map(|(b, ())| b);
    }
    Ok(())
}

/// Creates `dir` and its missing ancestors, recording each one it made so
/// a rollback can remove exactly those.
fn create_parents(dir: &Path, created: &mut Vec<PathBuf>) -> Result<(), WriteError> {
    let mut missing = Vec::new();
    let mut cur = dir;
    loop {
        match fs::metadata(cur) {
            Ok(meta) if meta.is_dir() => break,
            Ok(_) => {
                return Err(WriteError::CreateDir {
                    path: cur.to_path_buf(),
                    source: io::Error::new(io::ErrorKind::NotADirectory, "a file is in the way"),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                missing.push(cur.to_path_buf());
                match cur.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => cur = parent,
                    _ => break,
                }
            }
            Err(source) => {
                return Err(WriteError::CreateDir {
                    path: cur.to_path_buf(),
                    source,
                })
            }
        }
    }
    for d in missing.into_iter().rev() {
        match fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(source) => return Err(WriteError::CreateDir { path: d, source }),
        }
    }
    Ok(())
}

/// Runs `make` on fresh random names in `dir` until one is free.
fn create_unique<T>(
    dir: &Path,
    ext: &str,
    mut make: impl FnMut(&Path) -> io::Result<T>,
) -> io::Result<(PathBuf, T)> {
    let mut last = None;
    for _ in 0..16 {
        let path = dir.join(format!(".builder-{:016x}.{ext}", fastrand::u64(..)));
        match make(&path) {
            Ok(v) => return Ok((path, v)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free temp name")))
}

/// Puts the tree back as it was: replaced files from their backups, new
/// files removed, temps, backups and created directories removed.
fn rollback(pending: &mut [Pending], created_dirs: &[PathBuf]) {
    for p in pending.iter_mut() {
        if p.renamed {
            match (&p.backup, &p.perms) {
                (Some(b), _) => {
                    if fs::rename(b, p.target).is_ok() {
                        p.backup = None;
                    }
                }
                (None, None) => {
                    let _ = fs::remove_file(p.target);
                }
                // No backup could be made: the new content stays.
                (None, Some(_)) => {}
            }
        } else if let Some(t) = &p.temp {
            let _ = fs::remove_file(t);
        }
        if let Some(b) = p.backup.take() {
            let _ = fs::remove_file(b);
        }
        p.temp = None;
    }
    for d in created_dirs.iter().rev() {
        // Only empty directories go; anything else was not ours alone.
        let _ = fs::remove_dir(d);
    }
}

/// Makes renames in `dir` durable; some file systems refuse, which is fine.
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name under `root`, relative, sorted: a snapshot of the tree.
    fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                if e.file_type().unwrap().is_dir() {
                    out.push((format!("{rel}/"), Vec::new()));
                    stack.push(p);
                } else {
                    out.push((rel, fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    fn no_leftovers(root: &Path) {
        for (name, _) in tree(root) {
            assert!(!name.contains(".builder-"), "left behind: {name}");
        }
    }

    #[test]
    fn creates_parent_dirs() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("src/components/ui/Button.jsx");
        write_atomic(&p, b"export default 1\n").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"export default 1\n");
        no_leftovers(d.path());
    }

    #[test]
    fn replaces_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("index.html");
        fs::write(&p, "old old old old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        write_atomic(&p, b"").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "");
        no_leftovers(d.path());
    }

    #[test]
    fn reports_created_and_updated() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a.js"), "1").unwrap();
        let out = write_all_atomic(&[
            (d.path().join("a.js"), b"2".to_vec()),
            (d.path().join("src/b.js"), b"3".to_vec()),
        ])
        .unwrap();
        assert_eq!(out, vec![WriteOutcome::Updated, WriteOutcome::Created]);
        assert_eq!(fs::read_to_string(d.path().join("a.js")).unwrap(), "2");
        assert_eq!(fs::read_to_string(d.path().join("src/b.js")).unwrap(), "3");
        no_leftovers(d.path());
        assert_eq!(write_all_atomic(&[]).unwrap(), vec![]);
    }

    #[test]
    fn failure_leaves_every_file_untouched() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::write(root.join("a.js"), "A").unwrap();
        fs::write(root.join("blocker"), "I am a file").unwrap();
        let before = tree(root);
        let err = write_all_atomic(&[
            (root.join("a.js"), b"changed".to_vec()),
            (root.join("new/dir/c.js"), b"C".to_vec()),
            (root.join("blocker/child.js"), b"B".to_vec()),
        ])
        .unwrap_err();
        assert!(matches!(err, WriteError::CreateDir { .. }), "{err}");
        assert_eq!(err.path(), root.join("blocker"));
        assert!(err.to_string().contains("blocker"), "{err}");
        // Same files, same bytes, and the directories made on the way are gone.
        assert_eq!(tree(root), before);
    }

    #[test]
    fn deeper_blocker_is_reported_too() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::write(root.join("blocker"), "f").unwrap();
        let before = tree(root);
        let err = write_atomic(&root.join("blocker/x/y/z.js"), b"z").unwrap_err();
        assert!(matches!(err, WriteError::CreateDir { .. }), "{err}");
        assert_eq!(tree(root), before);
    }

    #[test]
    fn rename_phase_failure_rolls_back() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::write(root.join("a.js"), "A").unwrap();
        fs::write(root.join("c.js"), "C").unwrap();
        let before = tree(root);
        let a = root.join("a.js");
        let b = root.join("fresh/b.js");
        let c = root.join("c.js");
        let files: Vec<(&Path, &[u8])> = vec![(&a, b"A2"), (&b, b"B2"), (&c, b"C2")];
        let err = write_batch(&files, Some(2)).unwrap_err();
        assert!(matches!(err, WriteError::Rename { .. }), "{err}");
        assert_eq!(tree(root), before);
    }

    #[test]
    fn refuses_symlink_and_directory_targets() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        fs::create_dir(root.join("dir")).unwrap();
        let err = write_atomic(&root.join("dir"), b"x").unwrap_err();
        assert!(matches!(err, WriteError::IsDirectory { .. }), "{err}");
        #[cfg(unix)]
        {
            let outside = tempfile::tempdir().unwrap();
            let victim = outside.path().join("victim");
            fs::write(&victim, "safe").unwrap();
            std::os::unix::fs::symlink(&victim, root.join("link.js")).unwrap();
            let before = tree(root);
            let err = write_all_atomic(&[
                (root.join("ok.js"), b"1".to_vec()),
                (root.join("link.js"), b"pwned".to_vec()),
            ])
            .unwrap_err();
            assert!(matches!(err, WriteError::Symlink { .. }), "{err}");
            assert_eq!(fs::read_to_string(&victim).unwrap(), "safe");
            assert_eq!(tree(root), before);
        }
    }

    #[test]
    fn refuses_duplicates() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.js");
        let err = write_all_atomic(&[(p.clone(), b"1".to_vec()), (p.clone(), b"2".to_vec())])
            .unwrap_err();
        assert!(matches!(err, WriteError::Duplicate { .. }), "{err}");
        assert!(!p.exists());
    }

    #[cfg(unix)]
    #[test]
    fn keeps_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let script = d.path().join("run.sh");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, Permissions::from_mode(0o751)).unwrap();
        write_atomic(&script, b"#!/bin/sh\necho hi\n").unwrap();
        let mode = fs::metadata(&script).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o751);

        let ro = d.path().join("ro.txt");
        fs::write(&ro, "r").unwrap();
        fs::set_permissions(&ro, Permissions::from_mode(0o444)).unwrap();
        write_all_atomic(&[(ro.clone(), b"r2".to_vec())]).unwrap();
        assert_eq!(fs::read_to_string(&ro).unwrap(), "r2");
        let mode = fs::metadata(&ro).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o444);
        no_leftovers(d.path());
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_the_default_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let reference = d.path().join("ref");
        fs::write(&reference, "").unwrap();
        let p = d.path().join("new.js");
        write_atomic(&p, b"x").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), mode(&reference));
    }

    #[cfg(unix)]
    #[test]
    fn unwritable_dir_fails_cleanly() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let locked = d.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::write(d.path().join("a.js"), "A").unwrap();
        fs::set_permissions(&locked, Permissions::from_mode(0o555)).unwrap();
        // Root ignores directory permissions; nothing to test there.
        let probe = locked.join("probe");
        if fs::write(&probe, "").is_ok() {
            let _ = fs::remove_file(&probe);
            fs::set_permissions(&locked, Permissions::from_mode(0o755)).unwrap();
            return;
        }
        let before = tree(d.path());
        let err = write_all_atomic(&[
            (d.path().join("a.js"), b"A2".to_vec()),
            (locked.join("b.js"), b"B".to_vec()),
        ])
        .unwrap_err();
        assert!(matches!(err, WriteError::Write { .. }), "{err}");
        assert!(err.to_string().contains("b.js"), "{err}");
        assert_eq!(tree(d.path()), before);
        fs::set_permissions(&locked, Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn unicode_bytes_and_no_file_name() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("plain.txt");
        write_atomic(&p, "ünïcödé".as_bytes()).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "ünïcödé");
        let err = write_atomic(Path::new("/"), b"x").unwrap_err();
        assert!(matches!(err, WriteError::NoFileName { .. }), "{err}");
    }
}
