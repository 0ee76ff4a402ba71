//! Files between the workspace and a sandbox: what a sandbox is seeded with, what the workspace
//! gets back after a create, and copying a sandbox's files out (for a zip).

use std::path::Path;

use walkdir::WalkDir;

use super::{template_files, CreateResult};
use crate::sandbox::{Sandbox, SandboxError, SandboxFile};

/// Files larger than this are not copied into a sandbox (videos, datasets); the dev server
/// does not need them and cloud uploads would crawl.
const MAX_SEED_FILE: u64 = 8 * 1024 * 1024;

/// What the workspace gets after a create: the template's files it lacks (an empty workspace;
/// its package.json already carrying what the sandbox installed for the code), or else the
/// sandbox's updated package.json. `read` gives a file's current text (editor buffer or disk).
/// Takes `result.manifest`.
pub fn workspace_changes(
    root: &Path,
    template: Option<&str>,
    result: &mut CreateResult,
    read: &dyn Fn(&Path) -> Option<String>,
) -> Result<Vec<crate::apply::FileChange>, SandboxError> {
    use crate::apply::{ChangeKind, FileChange};
    let mut manifest = result.manifest.take();
    let mut changes = Vec::new();
    if !result.template_applied.is_empty() {
        for (p, c) in template_files(template.unwrap_or("react-vite"))? {
            let abs = root.join(p);
            if abs.exists() {
                continue;
            }
            // The template's package.json plus what the sandbox installed for the code.
            let new_text = match manifest.take_if(|_| p == "package.json") {
                Some(m) => m,
                None => c.to_string(),
            };
            changes.push(FileChange {
                rel: p.to_string(),
                abs,
                kind: ChangeKind::Create,
                new_text,
                old_text: None,
                open: false,
            });
        }
    }
    if let Some(text) = manifest {
        let abs = root.join("package.json");
        let old = read(&abs);
        if old.as_deref() != Some(text.as_str()) {
            changes.push(FileChange {
                rel: "package.json".into(),
                kind: if old.is_some() {
                    ChangeKind::Update
                } else {
                    ChangeKind::Create
                },
                open: false,
                abs,
                new_text: text,
                old_text: old,
            });
        }
    }
    Ok(changes)
}

/// Copies the sandbox's files (what `list_files` gives: no `node_modules`, VCS or build
/// output; secrets left out as in a zip) into `dest`, for `builder.createZip {source:
/// "sandbox"}`. Stops with an error past `max_total_bytes`.
pub async fn copy_out(
    sb: &dyn Sandbox,
    dest: &Path,
    max_total_bytes: u64,
) -> Result<usize, SandboxError> {
    let mut total: u64 = 0;
    let mut n = 0;
    for rel in sb.list_files().await? {
        let Ok(rel_norm) = crate::edits::path::normalize(&rel) else {
            continue;
        };
        let name = Path::new(&rel_norm)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if crate::archive::file_reason(&name).is_some() {
            continue;
        }
        let Some(bytes) = sb.read_file(&rel).await? else {
            continue;
        };
        total += bytes.len() as u64;
        if total > max_total_bytes {
            return Err(SandboxError::Failed(format!(
                "the sandbox's files add up to more than {max_total_bytes} bytes; raise builder.zip.maxTotalBytes"
            )));
        }
        let path = dest.join(&rel_norm);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::write(&path, &bytes).await?;
        n += 1;
    }
    Ok(n)
}

/// The workspace files a sandbox gets: everything a zip would hold (no node_modules, VCS,
/// build output, `.env*` or secret-looking files, no symlinks), under a per-file size cap.
pub fn workspace_files(root: &Path) -> Result<Vec<SandboxFile>, SandboxError> {
    let mut out = Vec::new();
    let walker = WalkDir::new(root)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_dir()
                    && crate::archive::dir_reason(&e.file_name().to_string_lossy()).is_some())
        });
    for e in walker.filter_map(|e| e.ok()) {
        if !e.file_type().is_file() {
            continue;
        }
        let name = e.file_name().to_string_lossy();
        if crate::archive::file_reason(&name).is_some() {
            continue;
        }
        if e.metadata()
            .map(|m| m.len() > MAX_SEED_FILE)
            .unwrap_or(true)
        {
            continue;
        }
        let Ok(rel) = e.path().strip_prefix(root) else {
            continue;
        };
        let Some(rel) = rel.to_str() else { continue };
        // Zips the user exported into the folder are not part of the app.
        if rel.ends_with(".zip") {
            continue;
        }
        let bytes = std::fs::read(e.path())?;
        out.push(SandboxFile {
            path: rel.replace('\\', "/"),
            bytes,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeding_leaves_out_secrets_and_dependencies() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("src")).unwrap();
        std::fs::create_dir_all(p.join("node_modules/x")).unwrap();
        std::fs::create_dir_all(p.join(".git")).unwrap();
        std::fs::write(p.join("src/App.jsx"), "x").unwrap();
        std::fs::write(p.join("package.json"), "{}").unwrap();
        std::fs::write(p.join(".env"), "KEY=1").unwrap();
        std::fs::write(p.join(".env.example"), "KEY=").unwrap();
        std::fs::write(p.join("node_modules/x/index.js"), "").unwrap();
        std::fs::write(p.join(".git/HEAD"), "").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", p.join("src/link")).unwrap();
        let got: Vec<String> = workspace_files(p)
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(got, [".env.example", "package.json", "src/App.jsx"]);
    }
}
