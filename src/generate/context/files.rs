//! The project's text sources: listing them (skipping dependencies, build output, hidden and
//! large files) and reading one safely (no symlinks out of the project, no binaries).

use std::path::{Component, Path, PathBuf};

use walkdir::{DirEntry, WalkDir};

use super::ProjectFile;

/// Files larger than this are never listed or read.
const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Directories never descended into (hidden ones are skipped too).
const SKIP_DIRS: &[&str] = &["node_modules", "dist", "build", "coverage"];
const EXTENSIONS: &[&str] = &[
    "js", "jsx", "ts", "tsx", "mjs", "cjs", "css", "html", "json", "md", "vue", "svelte",
];
const LOCKFILES: &[&str] = &["package-lock.json", "npm-shrinkwrap.json"];
/// Walk at most this many directory entries, so a huge tree cannot stall a request.
const MAX_WALK: usize = 100_000;

/// Text source files of the project (js, jsx, ts, tsx, css, html, json except lockfiles, md,
/// vue, svelte), skipping node_modules, .git, dist, build, .vite, .next, coverage, hidden
/// dirs, files > 256 KiB; sorted; at most `limit` files.
pub fn list_files(root: &Path, limit: usize) -> Vec<ProjectFile> {
    let mut out = Vec::new();
    if limit == 0 {
        return out;
    }
    let walker = WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !skipped(e));
    for entry in walker.take(MAX_WALK).flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str() else {
            continue;
        };
        if !is_source_name(name) {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.len() > MAX_FILE_BYTES {
            continue;
        }
        if let Some(path) = relative(root, entry.path()) {
            out.push(ProjectFile {
                path,
                size: meta.len(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.truncate(limit);
    out
}

fn skipped(e: &DirEntry) -> bool {
    let name = e.file_name().to_string_lossy();
    name.starts_with('.') || (e.file_type().is_dir() && SKIP_DIRS.contains(&name.as_ref()))
}

fn is_source_name(name: &str) -> bool {
    if LOCKFILES.contains(&name) {
        return false;
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => {
            EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
        }
        _ => false,
    }
}

/// `path` relative to `root`, `/`-separated; None for non-UTF-8 or escaping paths.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

pub(super) fn is_safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains('\0')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Reads a text file under `root`: not through symlinks out of the project, not binary,
/// not larger than the listing limit, valid UTF-8.
pub(super) fn read_text(root: &Path, canon_root: Option<&Path>, rel: &str) -> Option<String> {
    if !is_safe_relative(rel) {
        return None;
    }
    let full: PathBuf = root.join(rel);
    let canon = full.canonicalize().ok()?;
    if !canon.starts_with(canon_root?) {
        return None;
    }
    let meta = std::fs::metadata(&canon).ok()?;
    if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
        return None;
    }
    let bytes = std::fs::read(&canon).ok()?;
    if bytes.len() as u64 > MAX_FILE_BYTES || memchr::memchr(0, &bytes).is_some() {
        return None;
    }
    String::from_utf8(bytes).ok()
}
