//! Zip export of a project folder (`builder.createZip`).
//!
//! The seed shipped `.env` files in its zip; here anything that looks like a
//! secret, VCS metadata, dependencies and build output is left out and listed
//! in the result, so the user sees what was skipped and why.
//!
//! Choices:
//! - Entries are sorted by their '/'-separated relative path and keep each
//!   file's mtime (as local time, the zip convention), so zipping an unchanged
//!   tree twice gives identical bytes while unzipped files keep real dates.
//! - Only files are stored (no directory entries); permissions are normalized
//!   to 0644, or 0755 when any execute bit is set.
//! - Symlinks are never followed (listed as excluded), and neither are
//!   sockets, FIFOs or devices ("special file").
//! - `.env.example`, `.env.sample` and `.env.template` (and any `.env.*`
//!   ending in those) are kept: they are meant to be shared.
//! - Excluded directories are listed once, with a trailing '/'.
//! - Every limit is checked on a full scan before anything is written; the
//!   zip is written to a temp file beside the output and renamed into place,
//!   so on error no (partial) output remains and an older output is untouched.

use std::fs;
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;
use walkdir::WalkDir;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

/// Caps that keep an export from swallowing a huge tree by accident.
#[derive(Debug, Clone)]
pub struct ZipOptions {
    pub max_files: usize,
    pub max_file_bytes: u64,
    pub max_total_bytes: u64,
}

impl Default for ZipOptions {
    fn default() -> Self {
        ZipOptions {
            max_files: 5000,
            max_file_bytes: 16 * 1024 * 1024,
            max_total_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Something left out of the zip, with a reason a person understands.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Excluded {
    /// Relative, '/'-separated; directories end with '/'.
    pub path: String,
    /// One of `"node_modules"`, `"git metadata"`, `"vcs metadata"` (.hg, .svn),
    /// `"secret (.env)"`, `"secret-looking file"`, `"symlink"`, `"build output"`,
    /// `"output archive itself"`, `"special file"`, `"non-UTF-8 name"`.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZipResult {
    pub path: String,
    /// Files stored in the zip.
    pub files: usize,
    /// Size of the zip file.
    pub bytes: u64,
    pub excluded: Vec<Excluded>,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error(
        "more than {limit} files to zip; remove some, or raise the limit with the setting \
         builder.zip.maxFiles"
    )]
    TooManyFiles { limit: usize },
    #[error(
        "{path} is {size} bytes, over the per-file limit of {limit} bytes; remove it, or raise \
         the limit with the setting builder.zip.maxFileBytes"
    )]
    FileTooLarge { path: String, size: u64, limit: u64 },
    #[error(
        "the files to zip add up to more than {limit} bytes; remove some, or raise the limit \
         with the setting builder.zip.maxTotalBytes"
    )]
    TotalTooLarge { limit: u64 },
    #[error("{} is not a directory; choose a folder to zip", .0.display())]
    NotADirectory(PathBuf),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("writing the zip failed: {0}")]
    Zip(#[from] zip::result::ZipError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One file to store, found by the scan.
struct Planned {
    name: String,
    path: PathBuf,
    mtime: Option<SystemTime>,
    executable: bool,
    /// (dev, ino) at scan time, to notice a file swapped (e.g. for a symlink) before it is read.
    #[cfg(unix)]
    id: (u64, u64),
}

/// Why a directory (or a VCS marker of any kind) is skipped as a whole.
pub(crate) fn dir_reason(name: &str) -> Option<&'static str> {
    match name {
        "node_modules" => Some("node_modules"),
        ".git" => Some("git metadata"),
        ".hg" | ".svn" => Some("vcs metadata"),
        "dist" | "build" | ".vite" | ".next" => Some("build output"),
        _ => None,
    }
}

/// Why a regular file is skipped (names compared case-insensitively).
pub(crate) fn file_reason(name: &str) -> Option<&'static str> {
    match name {
        "node_modules" => return Some("node_modules"),
        // A `.git` file marks a worktree or submodule and points at its metadata.
        ".git" => return Some("git metadata"),
        _ => {}
    }
    let lower = name.to_ascii_lowercase();
    if lower == ".env" || lower.starts_with(".env.") {
        let shared = [".example", ".sample", ".template"]
            .iter()
            .any(|s| lower.ends_with(s));
        return (!shared).then_some("secret (.env)");
    }
    let ext = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    let secret = matches!(ext, "pem" | "key" | "p12" | "pfx" | "keystore" | "jks")
        || ["id_rsa", "id_ed25519", "id_ecdsa", "id_dsa"]
            .iter()
            .any(|p| lower.starts_with(p))
        || matches!(
            lower.as_str(),
            ".npmrc" | ".netrc" | ".pypirc" | ".git-credentials" | "credentials.json"
        )
        || (lower.starts_with("service-account") && lower.ends_with(".json"));
    secret.then_some("secret-looking file")
}

/// Zip-stored mtime: local time (what unzip tools assume), 1980-01-01 when out of range.
fn zip_time(mtime: Option<SystemTime>) -> zip::DateTime {
    use chrono::{Datelike, Timelike};
    let Some(t) = mtime else {
        return zip::DateTime::default();
    };
    let local: chrono::DateTime<chrono::Local> = t.into();
    let (Ok(year), Ok(month), Ok(day), Ok(hour), Ok(minute), Ok(second)) = (
        u16::try_from(local.year()),
        u8::try_from(local.month()),
        u8::try_from(local.day()),
        u8::try_from(local.hour()),
        u8::try_from(local.minute()),
        u8::try_from(local.second()),
    ) else {
        return zip::DateTime::default();
    };
    zip::DateTime::from_date_and_time(year, month, day, hour, minute, second).unwrap_or_default()
}

/// The output's absolute path with its parent resolved, to recognise it during the scan.
fn resolved_output(output: &Path) -> Result<PathBuf, ArchiveError> {
    let file_name = output.file_name().ok_or_else(|| ArchiveError::Io {
        path: output.to_path_buf(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the output needs a file name"),
    })?;
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let parent = fs::canonicalize(&parent).or_else(|_| std::path::absolute(&parent));
    Ok(parent.map_err(io_err(output))?.join(file_name))
}

/// Walks the tree without following links, applying exclusions and limits.
fn scan(
    root: &Path,
    output: &Path,
    opts: &ZipOptions,
) -> Result<(Vec<Planned>, Vec<Excluded>), ArchiveError> {
    let mut planned = Vec::new();
    let mut excluded = Vec::new();
    let mut total: u64 = 0;
    let mut walk = WalkDir::new(root)
        .follow_links(false)
        .min_depth(1)
        .into_iter();
    while let Some(entry) = walk.next() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).to_path_buf();
            let source = e
                .into_io_error()
                .unwrap_or_else(|| io::Error::other("directory walk failed"));
            ArchiveError::Io { path, source }
        })?;
        let ft = entry.file_type();
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
        let Some(parts) = parts else {
            let lossy = rel.to_string_lossy().replace('\\', "/");
            excluded.push(Excluded {
                path: if ft.is_dir() { lossy + "/" } else { lossy },
                reason: "non-UTF-8 name".into(),
            });
            if ft.is_dir() {
                walk.skip_current_dir();
            }
            continue;
        };
        let name = parts.join("/");
        let base = parts.last().copied().unwrap_or("");
        let mut exclude = |path: String, reason: &str| {
            excluded.push(Excluded {
                path,
                reason: reason.to_string(),
            })
        };
        if ft.is_symlink() {
            exclude(name, "symlink");
        } else if ft.is_dir() {
            if let Some(reason) = dir_reason(base) {
                exclude(name + "/", reason);
                walk.skip_current_dir();
            }
        } else if !ft.is_file() {
            exclude(name, "special file");
        } else if entry.path() == output {
            exclude(name, "output archive itself");
        } else if let Some(reason) = file_reason(base) {
            exclude(name, reason);
        } else {
            let meta = entry.metadata().map_err(|e| ArchiveError::Io {
                path: entry.path().to_path_buf(),
                source: e
                    .into_io_error()
                    .unwrap_or_else(|| io::Error::other("cannot read metadata")),
            })?;
            let size = meta.len();
            if size > opts.max_file_bytes {
                return Err(ArchiveError::FileTooLarge {
                    path: name,
                    size,
                    limit: opts.max_file_bytes,
                });
            }
            if planned.len() >= opts.max_files {
                return Err(ArchiveError::TooManyFiles {
                    limit: opts.max_files,
                });
            }
            total = total.saturating_add(size);
            if total > opts.max_total_bytes {
                return Err(ArchiveError::TotalTooLarge {
                    limit: opts.max_total_bytes,
                });
            }
            #[cfg(unix)]
            let (executable, id) = {
                use std::os::unix::fs::{MetadataExt, PermissionsExt};
                (
                    meta.permissions().mode() & 0o111 != 0,
                    (meta.dev(), meta.ino()),
                )
            };
            #[cfg(not(unix))]
            let executable = false;
            planned.push(Planned {
                name,
                path: entry.path().to_path_buf(),
                mtime: meta.modified().ok(),
                executable,
                #[cfg(unix)]
                id,
            });
        }
    }
    planned.sort_by(|a, b| a.name.cmp(&b.name));
    excluded.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((planned, excluded))
}

/// Removes the temp file unless the rename succeeded.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

fn write_entries(
    file: fs::File,
    tmp: &Path,
    planned: &[Planned],
    opts: &ZipOptions,
) -> Result<fs::File, ArchiveError> {
    let mut zip = ZipWriter::new(BufWriter::new(file));
    let mut total: u64 = 0;
    for p in planned {
        let mut src = fs::File::open(&p.path).map_err(io_err(&p.path))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = src.metadata().map_err(io_err(&p.path))?;
            if !meta.is_file() || (meta.dev(), meta.ino()) != p.id {
                return Err(ArchiveError::Io {
                    path: p.path.clone(),
                    source: io::Error::other("the file was replaced while zipping; try again"),
                });
            }
        }
        let options = SimpleFileOptions::default()
            .compression_method(CompressionMethod::Deflated)
            .last_modified_time(zip_time(p.mtime))
            .unix_permissions(if p.executable { 0o755 } else { 0o644 })
            .large_file(opts.max_file_bytes >= u64::from(u32::MAX));
        zip.start_file(p.name.as_str(), options)?;
        // Read at most one byte past the limit: a file that grew since the scan is caught.
        let mut limited = (&mut src).take(opts.max_file_bytes.saturating_add(1));
        let n = io::copy(&mut limited, &mut zip).map_err(io_err(&p.path))?;
        if n > opts.max_file_bytes {
            return Err(ArchiveError::FileTooLarge {
                path: p.name.clone(),
                size: n,
                limit: opts.max_file_bytes,
            });
        }
        total = total.saturating_add(n);
        if total > opts.max_total_bytes {
            return Err(ArchiveError::TotalTooLarge {
                limit: opts.max_total_bytes,
            });
        }
    }
    let buffered = zip.finish()?;
    buffered.into_inner().map_err(|e| ArchiveError::Io {
        path: tmp.to_path_buf(),
        source: e.into_error(),
    })
}

/// Zips `source_dir` into `output` (see the module docs for what is left
/// out and why). `output` may lie inside `source_dir`; its parent is created
/// if missing, and an existing file there is replaced atomically.
pub fn create_zip(
    source_dir: &Path,
    output: &Path,
    opts: &ZipOptions,
) -> Result<ZipResult, ArchiveError> {
    let meta = fs::metadata(source_dir).map_err(io_err(source_dir))?;
    if !meta.is_dir() {
        return Err(ArchiveError::NotADirectory(source_dir.to_path_buf()));
    }
    let root = fs::canonicalize(source_dir).map_err(io_err(source_dir))?;
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let resolved = resolved_output(output)?;
    let (planned, excluded) = scan(&root, &resolved, opts)?;

    let dir = resolved.parent().unwrap_or(Path::new("."));
    let file_name = resolved
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{:016x}", fastrand::u64(..)));
    let mut guard = TempGuard(None);
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    guard.0 = Some(tmp.clone());
    let file = write_entries(file, &tmp, &planned, opts)?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, &resolved).map_err(io_err(&resolved))?;
    guard.0 = None;
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    let bytes = fs::metadata(&resolved).map_err(io_err(&resolved))?.len();
    tracing::debug!(
        output = %resolved.display(),
        files = planned.len(),
        excluded = excluded.len(),
        bytes,
        "zip written"
    );
    Ok(ZipResult {
        path: output.to_string_lossy().into_owned(),
        files: planned.len(),
        bytes,
        excluded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn write(root: &Path, rel: &str, content: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    fn read_zip(path: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut archive = zip::ZipArchive::new(fs::File::open(path).unwrap()).unwrap();
        let mut out = BTreeMap::new();
        for i in 0..archive.len() {
            let mut f = archive.by_index(i).unwrap();
            let mut buf = Vec::new();
            f.read_to_end(&mut buf).unwrap();
            out.insert(f.name().to_string(), buf);
        }
        out
    }

    fn reasons(r: &ZipResult) -> BTreeMap<String, String> {
        r.excluded
            .iter()
            .map(|e| (e.path.clone(), e.reason.clone()))
            .collect()
    }

    fn only_entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A source tree in `<tmp>/src` and an output dir `<tmp>/out`.
    fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        let src = t.path().join("src");
        let out = t.path().join("out");
        fs::create_dir_all(&src).unwrap();
        (t, src, out)
    }

    #[test]
    fn round_trip_with_nested_slash_paths_and_deflate() {
        let (_t, src, out) = setup();
        let big = "hello world\n".repeat(1000);
        write(&src, "package.json", b"{}");
        write(&src, "src/components/Hero.jsx", big.as_bytes());
        write(&src, "src/App.jsx", "export default () => 'ü'".as_bytes());
        let zip_path = out.join("p.zip");
        let r = create_zip(&src, &zip_path, &ZipOptions::default()).unwrap();
        assert_eq!(r.files, 3);
        assert!(r.excluded.is_empty());
        assert_eq!(r.bytes, fs::metadata(&zip_path).unwrap().len());
        assert_eq!(r.path, zip_path.to_string_lossy());
        let files = read_zip(&zip_path);
        let names: Vec<&String> = files.keys().collect();
        assert_eq!(
            names,
            ["package.json", "src/App.jsx", "src/components/Hero.jsx"]
        );
        assert_eq!(files["src/components/Hero.jsx"], big.as_bytes());
        assert_eq!(files["src/App.jsx"], "export default () => 'ü'".as_bytes());
        let mut archive = zip::ZipArchive::new(fs::File::open(&zip_path).unwrap()).unwrap();
        let hero = archive.by_name("src/components/Hero.jsx").unwrap();
        assert_eq!(hero.compression(), CompressionMethod::Deflated);
        assert!(hero.compressed_size() < hero.size() / 10);
        // No temp file beside the output.
        assert_eq!(only_entries(&out), ["p.zip"]);
    }

    #[test]
    fn output_is_reproducible_and_sorted() {
        let (t, src, _out) = setup();
        for name in ["b.txt", "a/z.txt", "a.txt", "a/b/c.txt", "A.txt"] {
            write(&src, name, name.as_bytes());
        }
        let (z1, z2) = (t.path().join("1.zip"), t.path().join("2.zip"));
        create_zip(&src, &z1, &ZipOptions::default()).unwrap();
        create_zip(&src, &z2, &ZipOptions::default()).unwrap();
        assert_eq!(fs::read(&z1).unwrap(), fs::read(&z2).unwrap());
        let mut archive = zip::ZipArchive::new(fs::File::open(&z1).unwrap()).unwrap();
        let order: Vec<String> = (0..archive.len())
            .map(|i| archive.by_index(i).unwrap().name().to_string())
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, sorted);
    }

    #[test]
    fn node_modules_excluded_once_at_any_depth() {
        let (_t, src, out) = setup();
        write(&src, "index.js", b"x");
        write(&src, "node_modules/react/index.js", b"x");
        write(&src, "node_modules/react/package.json", b"x");
        write(&src, "packages/ui/node_modules/a/b.js", b"x");
        let r = create_zip(&src, &out.join("p.zip"), &ZipOptions::default()).unwrap();
        assert_eq!(r.files, 1);
        assert_eq!(
            r.excluded,
            vec![
                Excluded {
                    path: "node_modules/".into(),
                    reason: "node_modules".into()
                },
                Excluded {
                    path: "packages/ui/node_modules/".into(),
                    reason: "node_modules".into()
                },
            ]
        );
    }

    #[test]
    fn vcs_metadata_excluded() {
        let (_t, src, out) = setup();
        write(&src, ".git/HEAD", b"ref");
        write(&src, ".git/objects/ab/cd", b"x");
        write(&src, "sub/.git", b"gitdir: ../.git/modules/sub");
        write(&src, ".hg/store", b"x");
        write(&src, ".svn/entries", b"x");
        write(&src, ".gitignore", b"node_modules");
        let r = create_zip(&src, &out.join("p.zip"), &ZipOptions::default()).unwrap();
        let m = reasons(&r);
        assert_eq!(m[".git/"], "git metadata");
        assert_eq!(m["sub/.git"], "git metadata");
        assert_eq!(m[".hg/"], "vcs metadata");
        assert_eq!(m[".svn/"], "vcs metadata");
        assert_eq!(m.len(), 4);
        assert_eq!(
            read_zip(&out.join("p.zip")).keys().collect::<Vec<_>>(),
            [".gitignore"]
        );
    }

    #[test]
    fn env_files_excluded_but_examples_kept() {
        let (_t, src, out) = setup();
        for n in [
            ".env",
            ".env.local",
            ".ENV.production",
            "app/.env.development",
        ] {
            write(&src, n, b"SECRET=1");
        }
        for n in [
            ".env.example",
            ".env.sample",
            ".env.template",
            ".env.local.example",
            "env.js",
        ] {
            write(&src, n, b"KEY=");
        }
        let zip_path = out.join("p.zip");
        let r = create_zip(&src, &zip_path, &ZipOptions::default()).unwrap();
        let m = reasons(&r);
        assert_eq!(m.len(), 4, "{m:?}");
        assert!(m.values().all(|v| v == "secret (.env)"));
        assert!(m.contains_key("app/.env.development"));
        let kept: Vec<String> = read_zip(&zip_path).into_keys().collect();
        assert_eq!(
            kept,
            [
                ".env.example",
                ".env.local.example",
                ".env.sample",
                ".env.template",
                "env.js"
            ]
        );
    }

    #[test]
    fn secret_looking_files_excluded() {
        let (_t, src, out) = setup();
        let secrets = [
            "cert.pem",
            "server.KEY",
            "store.p12",
            "a.pfx",
            "release.keystore",
            "id_rsa",
            "id_rsa.pub",
            "keys/id_ed25519",
            ".npmrc",
            ".netrc",
            ".pypirc",
            "credentials.json",
            "service-account-prod.json",
        ];
        for s in secrets {
            write(&src, s, b"x");
        }
        write(&src, "keys.js", b"x");
        write(&src, "monkey.txt", b"x");
        write(&src, "service-account.md", b"x");
        let r = create_zip(&src, &out.join("p.zip"), &ZipOptions::default()).unwrap();
        let m = reasons(&r);
        for s in secrets {
            assert_eq!(
                m.get(s).map(String::as_str),
                Some("secret-looking file"),
                "{s}"
            );
        }
        assert_eq!(r.files, 3);
    }

    #[test]
    fn build_output_dirs_excluded_at_any_depth() {
        let (_t, src, out) = setup();
        for d in [
            "dist/a.js",
            "build/x/y.js",
            ".vite/deps/z.js",
            "apps/web/.next/cache/c",
        ] {
            write(&src, d, b"x");
        }
        // A file (not a directory) named like an output dir is kept.
        write(&src, "scripts/build", b"#!/bin/sh");
        let r = create_zip(&src, &out.join("p.zip"), &ZipOptions::default()).unwrap();
        let m = reasons(&r);
        for d in ["dist/", "build/", ".vite/", "apps/web/.next/"] {
            assert_eq!(m[d], "build output", "{d}");
        }
        assert_eq!(m.len(), 4);
        assert_eq!(r.files, 1);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_excluded_and_not_followed() {
        use std::os::unix::fs::symlink;
        let (t, src, out) = setup();
        let outside = t.path().join("outside");
        write(&outside, "secret.txt", b"outside data");
        write(&src, "real.txt", b"real");
        symlink(outside.join("secret.txt"), src.join("link.txt")).unwrap();
        symlink(&outside, src.join("linked_dir")).unwrap();
        symlink(src.join("nowhere"), src.join("dangling")).unwrap();
        let zip_path = out.join("p.zip");
        let r = create_zip(&src, &zip_path, &ZipOptions::default()).unwrap();
        let m = reasons(&r);
        assert_eq!(m["link.txt"], "symlink");
        assert_eq!(m["linked_dir"], "symlink");
        assert_eq!(m["dangling"], "symlink");
        let files = read_zip(&zip_path);
        assert_eq!(files.keys().collect::<Vec<_>>(), ["real.txt"]);
        assert!(files.values().all(|v| v != b"outside data"));
    }

    #[cfg(unix)]
    #[test]
    fn special_files_excluded() {
        let (_t, src, out) = setup();
        let _sock = std::os::unix::net::UnixListener::bind(src.join("dev.sock")).unwrap();
        write(&src, "a.txt", b"a");
        let r = create_zip(&src, &out.join("p.zip"), &ZipOptions::default()).unwrap();
        assert_eq!(reasons(&r)["dev.sock"], "special file");
        assert_eq!(r.files, 1);
    }

    #[cfg(unix)]
    #[test]
    fn executable_bit_kept() {
        use std::os::unix::fs::PermissionsExt;
        let (_t, src, out) = setup();
        write(&src, "run.sh", b"#!/bin/sh");
        write(&src, "a.txt", b"a");
        fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o700)).unwrap();
        let zip_path = out.join("p.zip");
        create_zip(&src, &zip_path, &ZipOptions::default()).unwrap();
        let mut archive = zip::ZipArchive::new(fs::File::open(&zip_path).unwrap()).unwrap();
        assert_eq!(
            archive.by_name("run.sh").unwrap().unix_mode().unwrap() & 0o777,
            0o755
        );
        assert_eq!(
            archive.by_name("a.txt").unwrap().unix_mode().unwrap() & 0o777,
            0o644
        );
    }

    #[test]
    fn output_inside_source_is_not_zipped_into_itself() {
        let (_t, src, _out) = setup();
        write(&src, "a.txt", b"a");
        let zip_path = src.join("project.zip");
        let first = create_zip(&src, &zip_path, &ZipOptions::default()).unwrap();
        assert_eq!(first.files, 1);
        // The second run sees the first zip and leaves it out.
        let second = create_zip(&src, &zip_path, &ZipOptions::default()).unwrap();
        assert_eq!(second.files, 1);
        assert_eq!(reasons(&second)["project.zip"], "output archive itself");
        assert_eq!(read_zip(&zip_path).keys().collect::<Vec<_>>(), ["a.txt"]);
        assert_eq!(only_entries(&src), ["a.txt", "project.zip"]);
        // Also when the output is given through a relative-looking path with `..`.
        let odd = src.join("sub").join("..").join("project.zip");
        fs::create_dir_all(src.join("sub")).unwrap();
        let third = create_zip(&src, &odd, &ZipOptions::default()).unwrap();
        assert_eq!(reasons(&third)["project.zip"], "output archive itself");
    }

    #[test]
    fn too_many_files_errors_and_leaves_nothing() {
        let (_t, src, out) = setup();
        for i in 0..4 {
            write(&src, &format!("f{i}.txt"), b"x");
        }
        let opts = ZipOptions {
            max_files: 3,
            ..ZipOptions::default()
        };
        let err = create_zip(&src, &out.join("p.zip"), &opts).unwrap_err();
        assert!(matches!(err, ArchiveError::TooManyFiles { limit: 3 }));
        assert!(err.to_string().contains("builder.zip.maxFiles"));
        assert!(only_entries(&out).is_empty());
        // Exactly at the limit is fine.
        let ok = ZipOptions {
            max_files: 4,
            ..ZipOptions::default()
        };
        assert_eq!(create_zip(&src, &out.join("p.zip"), &ok).unwrap().files, 4);
    }

    #[test]
    fn file_too_large_errors_and_leaves_nothing() {
        let (_t, src, out) = setup();
        write(&src, "small.txt", b"x");
        write(&src, "assets/big.bin", &[7u8; 101]);
        let opts = ZipOptions {
            max_file_bytes: 100,
            ..ZipOptions::default()
        };
        let err = create_zip(&src, &out.join("p.zip"), &opts).unwrap_err();
        match &err {
            ArchiveError::FileTooLarge { path, size, limit } => {
                assert_eq!(path, "assets/big.bin");
                assert_eq!((*size, *limit), (101, 100));
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("builder.zip.maxFileBytes"));
        assert!(only_entries(&out).is_empty());
    }

    #[test]
    fn total_too_large_errors_and_keeps_old_output() {
        let (_t, src, out) = setup();
        fs::create_dir_all(&out).unwrap();
        fs::write(out.join("p.zip"), b"old").unwrap();
        write(&src, "a.bin", &[1u8; 60]);
        write(&src, "b.bin", &[2u8; 60]);
        let opts = ZipOptions {
            max_total_bytes: 100,
            ..ZipOptions::default()
        };
        let err = create_zip(&src, &out.join("p.zip"), &opts).unwrap_err();
        assert!(matches!(err, ArchiveError::TotalTooLarge { limit: 100 }));
        assert!(err.to_string().contains("builder.zip.maxTotalBytes"));
        assert_eq!(only_entries(&out), ["p.zip"]);
        assert_eq!(fs::read(out.join("p.zip")).unwrap(), b"old");
    }

    #[test]
    fn excluded_files_do_not_count_towards_limits() {
        let (_t, src, out) = setup();
        write(&src, "a.txt", b"a");
        write(&src, "node_modules/huge.bin", &[0u8; 500]);
        write(&src, ".env", &[0u8; 500]);
        let opts = ZipOptions {
            max_files: 1,
            max_file_bytes: 10,
            max_total_bytes: 10,
        };
        assert_eq!(
            create_zip(&src, &out.join("p.zip"), &opts).unwrap().files,
            1
        );
    }

    #[test]
    fn empty_dir_gives_empty_zip() {
        let (_t, src, out) = setup();
        fs::create_dir_all(src.join("empty/nested")).unwrap();
        let zip_path = out.join("nested/dir/p.zip");
        let r = create_zip(&src, &zip_path, &ZipOptions::default()).unwrap();
        assert_eq!(r.files, 0);
        assert!(r.excluded.is_empty());
        assert!(read_zip(&zip_path).is_empty());
    }

    #[test]
    fn source_must_be_a_directory() {
        let (t, src, out) = setup();
        write(&src, "a.txt", b"a");
        let err = create_zip(
            &src.join("a.txt"),
            &out.join("p.zip"),
            &ZipOptions::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ArchiveError::NotADirectory(_)));
        let missing = t.path().join("missing");
        let err = create_zip(&missing, &out.join("p.zip"), &ZipOptions::default()).unwrap_err();
        assert!(matches!(err, ArchiveError::Io { ref path, .. } if *path == missing));
        assert!(!out.join("p.zip").exists());
    }

    #[test]
    fn result_serializes_camel_case() {
        let r = ZipResult {
            path: "/p.zip".into(),
            files: 2,
            bytes: 10,
            excluded: vec![Excluded {
                path: ".env".into(),
                reason: "secret (.env)".into(),
            }],
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"path": "/p.zip", "files": 2, "bytes": 10,
                "excluded": [{"path": ".env", "reason": "secret (.env)"}]})
        );
    }
}
