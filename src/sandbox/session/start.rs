//! The create flow after provisioning: seed the template and the workspace's files, install
//! (what package.json declares, then what the code imports but it lacks), start the dev server
//! and wait until it answers. An older Node gets the template's Vite 6 variant.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::files::workspace_files;
use super::logs::last_lines;
use super::{wait_ready, CreateResult, LineHook, Session, Timings, LOG_LINES, READY_TIMEOUT};
use crate::events::{Event, Reporter};
use crate::packages::launcher::PackageManager;
use crate::sandbox::{template, CommandSpec, Sandbox, SandboxError, SandboxFile, SandboxInfo};

pub(super) async fn seed_and_start(
    root: &Path,
    sandbox: Arc<dyn Sandbox>,
    template: &[(&'static str, &'static str)],
    reporter: &Reporter,
    on_line: Option<LineHook>,
    cancel: &CancellationToken,
    t0: Instant,
) -> Result<(Session, CreateResult), SandboxError> {
    let mut timings = Timings {
        provision_ms: t0.elapsed().as_millis() as u64,
        ..Default::default()
    };

    // Seed: template first, the workspace's own files over it.
    let t = Instant::now();
    reporter(Event::Status("Copying project files".into()));
    let mut files: Vec<SandboxFile> = template
        .iter()
        .map(|(p, c)| SandboxFile {
            path: p.to_string(),
            bytes: c.as_bytes().to_vec(),
        })
        .collect();
    let root2 = root.to_path_buf();
    let own = tokio::task::spawn_blocking(move || workspace_files(&root2))
        .await
        .map_err(|e| SandboxError::Failed(format!("reading the workspace failed: {e}")))??;
    for f in own {
        match files.iter_mut().find(|x| x.path == f.path) {
            Some(x) => *x = f,
            None => files.push(f),
        }
    }
    let count = files.len();
    if cancel.is_cancelled() {
        return Err(SandboxError::Cancelled);
    }
    // The template wants Vite 8 (Node ≥ 20.19); cloud images can be older (E2B's `base` has
    // Node 20.9) and so can the user's own machine (Debian 12 and Ubuntu 24.04 ship Node 18).
    // Then the template's own package.json asks for Vite 6, which runs there, and the workspace
    // gets that same package.json.
    let mut template_manifest_text = None;
    let mut warnings = Vec::new();
    let mut warn = |w: String| {
        reporter(Event::Warning(w.clone()));
        warnings.push(w);
    };
    let template_manifest =
        template.iter().any(|(p, _)| *p == "package.json") && !root.join("package.json").exists();
    if template_manifest {
        let out = sandbox
            .run(
                &CommandSpec::new("node", ["--version"]),
                crate::sandbox::no_lines(),
                cancel.clone(),
            )
            .await?;
        if out.exit_code == 0 && !node_runs_vite8(out.stdout.trim()) {
            warn(format!(
                "the sandbox has Node {}; using Vite 6 (Vite 8 needs Node 20.19 or newer)",
                out.stdout.trim()
            ));
            if let Some(f) = files.iter_mut().find(|f| f.path == "package.json") {
                let text = template::for_older_node(&String::from_utf8_lossy(&f.bytes));
                f.bytes = text.clone().into_bytes();
                template_manifest_text = Some(text);
            }
        }
    }
    sandbox.write_files(&files).await?;
    timings.seed_ms = t.elapsed().as_millis() as u64;

    // Install what package.json declares.
    let t = Instant::now();
    let names: Vec<String> = files.iter().map(|f| f.path.clone()).collect();
    let manager = PackageManager::from_lockfiles(&|f| names.iter().any(|n| n == f));
    let manifest_text = files
        .iter()
        .find(|f| f.path == "package.json")
        .map(|f| String::from_utf8_lossy(&f.bytes).into_owned());
    let launcher = crate::sandbox::install_host::for_sandbox(
        sandbox.as_ref(),
        manager,
        manifest_text.as_deref(),
        cancel,
    )
    .await?;
    if launcher.fetched() {
        warn(format!(
            "the sandbox has no {}; it is fetched with npx for this project's lockfile",
            manager.program()
        ));
    }
    reporter(Event::Status(format!(
        "Installing dependencies ({})",
        launcher.describe()
    )));
    let rep = reporter.clone();
    let install_log = Arc::new(Mutex::new(VecDeque::new()));
    let sink = Session::log_sink(
        install_log.clone(),
        Some(Arc::new(move |l: &str| rep(Event::Output(l.to_string())))),
    );
    let spec = launcher.spec(manager.install_all_args());
    let out = sandbox.run(&spec, sink, cancel.clone()).await?;
    if out.exit_code != 0 {
        let tail = last_lines(&install_log, 8);
        return Err(SandboxError::Failed(format!(
            "`{} install` failed in the sandbox (exit {}):\n{tail}",
            launcher.describe(),
            out.exit_code
        )));
    }
    // The code may import packages package.json lacks (an answer applied into the template):
    // install them too, or the preview starts with an error.
    let sources: Vec<(PathBuf, String)> = files
        .iter()
        .filter(|f| {
            !matches!(
                crate::packages::scan::source_kind(Path::new(&f.path)),
                crate::packages::scan::SourceKind::Other
            ) || f.path == "package.json"
        })
        .map(|f| {
            (
                PathBuf::from(&f.path),
                String::from_utf8_lossy(&f.bytes).into_owned(),
            )
        })
        .collect();
    let root2 = root.to_path_buf();
    let missing: Vec<String> = tokio::task::spawn_blocking(move || {
        crate::packages::index::detect(&sources, &root2).packages
    })
    .await
    .unwrap_or_default()
    .into_iter()
    .filter(|p| crate::packages::specifier::parse_install_arg(p).is_ok())
    .collect();
    let mut packages_installed = Vec::new();
    let mut manifest = template_manifest_text;
    if !missing.is_empty() {
        reporter(Event::Status(format!("Installing {}", missing.join(", "))));
        let rep = reporter.clone();
        let sink = Session::log_sink(
            install_log.clone(),
            Some(Arc::new(move |l: &str| rep(Event::Output(l.to_string())))),
        );
        let spec = launcher.spec(manager.add_args(&missing, false, false));
        let out = sandbox.run(&spec, sink, cancel.clone()).await?;
        if out.exit_code == 0 {
            packages_installed = missing;
            manifest = sandbox
                .read_file("package.json")
                .await?
                .and_then(|b| String::from_utf8(b).ok());
        } else {
            warn(format!(
                "could not install {} in the sandbox:\n{}",
                missing.join(", "),
                last_lines(&install_log, 4)
            ));
        }
    }
    timings.install_ms = t.elapsed().as_millis() as u64;

    // Dev server, then readiness by polling (never a fixed sleep).
    let t = Instant::now();
    reporter(Event::Status("Starting the dev server".into()));
    let logs = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_LINES)));
    let sink = Session::log_sink(logs.clone(), on_line);
    sandbox.start_dev_server(sink).await?;
    wait_ready(sandbox.as_ref(), READY_TIMEOUT, cancel, &logs).await?;
    timings.ready_ms = t.elapsed().as_millis() as u64;
    timings.total_ms = t0.elapsed().as_millis() as u64;

    let info: SandboxInfo = sandbox.info();
    reporter(Event::Status(format!("Preview ready at {}", info.url)));
    let session = Session {
        sandbox,
        started: Instant::now(),
        logs,
        stop: CancellationToken::new(),
    };
    session.keep_alive_in_background();
    let result = CreateResult {
        sandbox_id: info.sandbox_id,
        provider: info.provider,
        url: info.url,
        created_at: info.created_at,
        isolation: info.isolation,
        template_applied: Vec::new(),
        files_seeded: count,
        packages_installed,
        manifest,
        warnings,
        timings,
    };
    Ok((session, result))
}

/// Whether `node --version` output (`v20.9.0`) is new enough for Vite 8 (^20.19 || >=22.12).
pub fn node_runs_vite8(version: &str) -> bool {
    let v: Vec<u32> = version
        .trim_start_matches('v')
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect();
    match (
        v.first().copied().unwrap_or(0),
        v.get(1).copied().unwrap_or(0),
    ) {
        (20, minor) => minor >= 19,
        (22, minor) => minor >= 12,
        (major, _) => major > 22,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vite8_needs_a_recent_node() {
        assert!(node_runs_vite8("v20.19.0"));
        assert!(node_runs_vite8("v22.12.1"));
        assert!(node_runs_vite8("v24.1.0"));
        assert!(!node_runs_vite8("v20.9.0"));
        assert!(!node_runs_vite8("v22.11.0"));
        assert!(!node_runs_vite8("v18.20.0"));
        assert!(!node_runs_vite8("v21.7.0"));
        assert!(!node_runs_vite8("garbage"));
    }
}
