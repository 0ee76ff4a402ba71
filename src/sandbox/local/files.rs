//! The sandbox directory: its private creation, paths that stay inside it, atomic writes,
//! the file listing, and the HTTP probe of the preview port.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

use super::*;

/// Letters, digits, `-` and `_` of `key` (others become `-`), at most 40, never empty.
pub(super) fn sanitize_key(key: &str) -> String {
    let s: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "project".into()
    } else {
        s
    }
}

/// Claims a fresh id (its lock file, see [`orphans`]) and makes its dir.
pub(super) fn make_private_dir(
    base: &Path,
    key: &str,
) -> Result<(String, PathBuf, orphans::Owner)> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(base)?;
    let mut last = None;
    for _ in 0..5 {
        let suffix: String = (0..10)
            .map(|_| fastrand::choice(b"abcdefghijklmnopqrstuvwxyz0123456789").unwrap_or(&b'x'))
            .map(|b| *b as char)
            .collect();
        let id = format!("{key}-{suffix}");
        let Some(owner) = orphans::claim(base, &id)? else {
            continue;
        };
        let dir = base.join(&id);
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            // Real path: bwrap binds it and Vite prints it in errors.
            Ok(()) => return Ok((id, dir.canonicalize()?, owner)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                // A dir nobody has a lock file for: not ours, leave it and our claim.
                owner.release();
                last = Some(e)
            }
            Err(e) => {
                owner.release();
                return Err(e.into());
            }
        }
    }
    Err(last
        .map(SandboxError::Io)
        .unwrap_or_else(|| SandboxError::Failed("cannot create the sandbox dir".into())))
}

/// `path` as a relative path inside the sandbox, or an error when it is empty, absolute or
/// climbs out with `..`.
pub(super) fn safe_rel(path: &str) -> Result<PathBuf> {
    let refuse = |why: &str| {
        SandboxError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("refusing path `{path}`: {why}"),
        ))
    };
    if path.contains('\0') {
        return Err(refuse("it contains a NUL byte"));
    }
    let mut rel = PathBuf::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => rel.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(refuse("`..` would leave the sandbox dir")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refuse("absolute paths are not allowed"))
            }
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(refuse("it names no file"));
    }
    Ok(rel)
}

/// Errors unless `p` (which exists) resolves inside `dir` (symlinks may point anywhere).
pub(super) fn ensure_inside(dir: &Path, p: &Path, shown: &str) -> Result<()> {
    if p.canonicalize()?.starts_with(dir) {
        Ok(())
    } else {
        Err(SandboxError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("refusing path `{shown}`: it resolves outside the sandbox dir"),
        )))
    }
}

/// Writes each file as temp + rename, so the dev server never reads half a file.
pub(super) fn write_files_blocking(
    dir: &Path,
    files: Vec<(PathBuf, String, Vec<u8>)>,
) -> Result<()> {
    for (rel, shown, bytes) in files {
        let target = dir.join(&rel);
        let parent = target.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent)?;
        ensure_inside(dir, parent, &shown)?;
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}{TMP_MARK}{:08x}", fastrand::u32(..)));
        let written = write_stamped(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &target));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
    }
    Ok(())
}

/// Writes `bytes` to a new file and stamps it with the precise current time: the kernel's
/// coarse clock gives two writes a few ms apart the same mtime, and Vite's watcher (chokidar)
/// then ignores the second one, serving stale code.
pub(super) fn write_stamped(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)?;
    f.set_modified(std::time::SystemTime::now())
}

pub(super) fn list_files_blocking(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_dir()
                    && SKIP_DIRS.contains(&e.file_name().to_string_lossy().as_ref()))
        });
    for entry in walker {
        let entry = entry.map_err(|e| {
            SandboxError::Io(
                e.into_io_error()
                    .unwrap_or_else(|| std::io::Error::other("directory walk failed")),
            )
        })?;
        if !entry.file_type().is_file() || entry.file_name().to_string_lossy().contains(TMP_MARK) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(dir) else {
            continue;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        out.push(parts.join("/"));
    }
    out.sort();
    Ok(out)
}

/// Whether something answers HTTP on 127.0.0.1:`port` within `limit` (any status counts).
pub(super) fn http_answers(port: u16, limit: Duration) -> bool {
    let start = Instant::now();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, limit) else {
        return false;
    };
    let left = limit
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(1));
    if s.set_read_timeout(Some(left)).is_err() || s.set_write_timeout(Some(left)).is_err() {
        return false;
    }
    let req = format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut got = Vec::with_capacity(16);
    let mut buf = [0u8; 16];
    while got.len() < 5 && start.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got.starts_with(b"HTTP/")
}
