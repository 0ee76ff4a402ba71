//! Private state files (conversations, history): folders 0700, files 0600 on unix — they may
//! hold the user's code — written atomically (temp file beside the target, fsync, rename, fsync
//! the folder), so a crash leaves the old bytes or the new ones, never a torn file.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Creates `dir` and its missing parents, 0700 on unix.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Replaces `path` with `bytes` atomically: `<name>.tmp-<random>` (`O_EXCL`, 0600), fsync,
/// rename, fsync the folder (best effort). The temp file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomic_parts(path, &[bytes])
}

/// [`write_atomic`] of the concatenation of `parts`, without building it in memory.
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> io::Result<()> {
    write_parts(path, parts, true).map(|_| ())
}

/// A file already renamed into place whose fsync (and its folder's) is still to come.
pub struct PendingSync {
    file: fs::File,
    path: std::path::PathBuf,
}

/// Like [`write_atomic_parts`] (temp file, rename: readers never see a partial file, and
/// any write error is returned here) but the fsyncs are left to [`sync_all`], so a caller
/// can overlap them with other work and wait for them before it reports success.
pub fn write_atomic_parts_deferred(path: &Path, parts: &[&[u8]]) -> io::Result<PendingSync> {
    let file = write_parts(path, parts, false)?;
    Ok(PendingSync {
        file,
        path: path.to_path_buf(),
    })
}

/// Makes `pending` durable: every file, then each folder once. An error names its file.
pub fn sync_all(pending: Vec<PendingSync>) -> Result<(), (std::path::PathBuf, io::Error)> {
    let mut dirs = Vec::new();
    for p in pending {
        p.file.sync_all().map_err(|e| (p.path.clone(), e))?;
        if let Some(d) = p.path.parent() {
            if !dirs.iter().any(|x: &std::path::PathBuf| x == d) {
                dirs.push(d.to_path_buf());
            }
        }
    }
    for d in dirs {
        sync_dir(&d);
    }
    Ok(())
}

/// Writes `parts` to a temp file beside `path` and renames it there; with `durable` the file
/// is fsynced before the rename and the folder after it.
fn write_parts(path: &Path, parts: &[&[u8]], durable: bool) -> io::Result<fs::File> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp-{:016x}", fastrand::u64(..)));
    let tmp = path.with_file_name(name);
    let result = (|| {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        let mut w = io::BufWriter::with_capacity(256 * 1024, &mut f);
        for p in parts {
            w.write_all(p)?;
        }
        w.flush()?;
        drop(w);
        if durable {
            f.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        Ok(f)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    if durable {
        if let Some(parent) = path.parent() {
            sync_dir(parent);
        }
    }
    result
}

/// Makes a rename or removal durable; not all platforms can open a folder, so errors are ignored.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_atomically_privately_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b");
        create_dir(&dir).unwrap();
        let p = dir.join("state.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "no temp file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
                0o700
            );
        }
        // A target that cannot be renamed over (a folder) fails and leaves no temp behind.
        fs::create_dir(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/x"), "x").unwrap();
        assert!(write_atomic(&dir.join("sub"), b"x").is_err());
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 2);
    }
}
