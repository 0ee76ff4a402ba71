//! Installs for a project: where they run (its sandbox when one runs, else the workspace),
//! one at a time, mirroring a sandbox's new `package.json`/lockfile back into the workspace,
//! and what an answer needs installed (its `<package>` tags plus the packages its files import
//! that `package.json` lacks).

use std::path::Path;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::apply::{ChangeKind, Deliver, FileChange};
use crate::events::{Event, Reporter};
use crate::packages::aliases::Aliases;
use crate::packages::install::{
    install, FailedPackage, InstallHost, InstallOutcome, InstallRequest, WorkspaceHost,
};
use crate::packages::manifest::Manifest;
use crate::packages::scan::scan_file;
use crate::packages::specifier::package_name;
use crate::project::Project;
use crate::sandbox::install_host::SandboxHost;

/// Installs `req` for `project`, waiting for any install already running there.
pub async fn install_in_project(
    project: &Arc<Project>,
    req: &InstallRequest,
    deliver: &dyn Deliver,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> InstallOutcome {
    let _one_at_a_time = tokio::select! {
        g = project.install_lock.lock() => g,
        _ = cancel.cancelled() => {
            return InstallOutcome {
                cancelled: true,
                failed: req.packages.iter().map(|p| FailedPackage { name: p.clone(), reason: "cancelled".into() }).collect(),
                ..Default::default()
            };
        }
    };
    let session = project.sandbox();
    let host: Box<dyn InstallHost> = match &session {
        Some(s) => Box::new(SandboxHost(s.sandbox.clone())),
        None => Box::new(WorkspaceHost {
            dir: project.canonical_root.clone(),
        }),
    };
    let mut out = match install(host.as_ref(), req, reporter, cancel).await {
        Ok(o) => o,
        Err(e) => InstallOutcome {
            target: host.describe(),
            failed: req
                .packages
                .iter()
                .map(|p| FailedPackage {
                    name: p.clone(),
                    reason: e.to_string(),
                })
                .collect(),
            ..Default::default()
        },
    };

    if let Some(s) = &session {
        // The workspace is the source of truth: the sandbox's new manifest comes back as an
        // edit the user can see and undo.
        if !out.changed.is_empty() {
            let changes = mirror_changes(&project.canonical_root, &out.changed, deliver);
            if !changes.is_empty() {
                reporter(Event::Status(
                    "Updating package.json in the workspace".into(),
                ));
                let d = deliver.deliver(&changes).await;
                for e in d.errors {
                    out.warnings.push(format!("mirroring package.json: {e}"));
                }
            }
        }
        // Vite picks up new dependencies itself; restart only when it stopped answering.
        if !out.installed.is_empty() && !s.sandbox.healthy().await {
            reporter(Event::Status("Restarting the dev server".into()));
            if let Err(e) = s.restart(None, cancel).await {
                out.warnings.push(format!(
                    "the dev server did not come back after the install: {e}"
                ));
            }
        }
    }

    // Diagnostics must see the new declarations.
    let manifest = project.canonical_root.join("package.json");
    if let Some(idx) = project
        .packages
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_mut()
    {
        idx.reload_manifest(&manifest);
    }
    out
}

/// Text changes for the guarded files a sandbox install changed (binary lockfiles skipped).
fn mirror_changes(
    root: &Path,
    changed: &[(String, Vec<u8>)],
    deliver: &dyn Deliver,
) -> Vec<FileChange> {
    let mut v = Vec::new();
    for (rel, bytes) in changed {
        let Ok(text) = String::from_utf8(bytes.clone()) else {
            continue;
        };
        let abs = root.join(rel);
        let open_text = deliver.open_text(&abs);
        let open = open_text.is_some();
        let old_text = open_text.or_else(|| std::fs::read_to_string(&abs).ok());
        if old_text.as_deref() == Some(text.as_str()) {
            continue;
        }
        v.push(FileChange {
            rel: rel.clone(),
            abs,
            kind: if old_text.is_some() {
                ChangeKind::Update
            } else {
                ChangeKind::Create
            },
            new_text: text,
            old_text,
            open,
        });
    }
    v
}

/// The packages an answer needs that the project does not declare: `<package>` tags first,
/// then packages its files import (aliases, builtins and relative paths are not packages).
pub fn needed_by_answer(root: &Path, tags: &[String], files: &[(String, String)]) -> Vec<String> {
    let declared = std::fs::read_to_string(root.join("package.json"))
        .ok()
        .and_then(|t| Manifest::parse(&root.join("package.json"), &t).ok());
    let aliases = Aliases::load(root);
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: &str| {
        let bare = crate::packages::specifier::parse_install_arg(name)
            .map(|(n, _)| n)
            .unwrap_or_else(|_| name.to_string());
        if declared.as_ref().is_some_and(|m| m.declares(&bare)) {
            return;
        }
        if !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    };
    for t in tags {
        push(t.trim());
    }
    for (path, content) in files {
        for imp in scan_file(Path::new(path), content) {
            if imp.type_only {
                continue;
            }
            if let Some(name) = package_name(&imp.specifier, &aliases) {
                push(name);
            }
        }
    }
    out
}

/// Splits what an answer needs into names to install and packages that cannot be: a project
/// with no `package.json` and no sandbox gets no invented manifest, and a name that fails npm's
/// rules never reaches a command line.
pub fn installable(project: &Project, needed: Vec<String>) -> (Vec<String>, Vec<FailedPackage>) {
    if project.sandbox().is_none() && !project.canonical_root.join("package.json").is_file() {
        let failed = needed
            .into_iter()
            .map(|name| FailedPackage {
                name,
                reason: "not installed: the project has no package.json (create a sandbox, or run `npm init -y`)".into(),
            })
            .collect();
        return (Vec::new(), failed);
    }
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for name in needed {
        match crate::packages::specifier::parse_install_arg(&name) {
            Ok(_) => ok.push(name),
            Err(reason) => failed.push(FailedPackage { name, reason }),
        }
    }
    (ok, failed)
}
