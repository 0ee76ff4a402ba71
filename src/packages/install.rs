//! Installing npm packages: the package manager chosen by lockfile, no shell, names validated
//! before anything runs, output streamed line by line, and a failed or cancelled install that
//! leaves `package.json` and the lockfile byte-identical to before.
//!
//! Where it runs is an [`InstallHost`]: the workspace itself, or the project's sandbox when one
//! runs (the sandbox then hands back its new `package.json`/lockfile for the workspace).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::launcher::{Launcher, PackageManager};
use super::manifest::Manifest;
use super::specifier::parse_install_arg;
use crate::events::{Event, Reporter};
use crate::exec::{CommandOutput, CommandSpec, LineSink, OutputStream};

/// Files an install may change and that must come back byte-identical when it fails.
pub const GUARDED: &[&str] = &[
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "pnpm-lock.yaml",
    "yarn.lock",
    "bun.lockb",
    "bun.lock",
];

#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Host(String),
    #[error("cannot read {file}: {message}")]
    Manifest { file: String, message: String },
}

/// Where an install runs.
#[async_trait]
pub trait InstallHost: Send + Sync {
    /// For messages: "the workspace", "the local sandbox".
    fn describe(&self) -> String;
    async fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, InstallError>;
    /// Puts a guarded file back as it was (`None`: it did not exist).
    async fn restore(&self, rel: &str, before: Option<&[u8]>) -> Result<(), InstallError>;
    async fn run(
        &self,
        spec: &CommandSpec,
        sink: LineSink,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, RunError>;
    /// How `manager` is started here (see [`super::launcher`]).
    async fn launcher(
        &self,
        manager: PackageManager,
        package_json: Option<&[u8]>,
        cancel: &CancellationToken,
    ) -> Result<Launcher, RunError>;
}

/// Why a command did not run to an exit code.
#[derive(Debug)]
pub enum RunError {
    Cancelled,
    Failed(String),
}

/// The workspace folder itself (no sandbox running).
pub struct WorkspaceHost {
    pub dir: PathBuf,
}

#[async_trait]
impl InstallHost for WorkspaceHost {
    fn describe(&self) -> String {
        "the workspace".into()
    }

    async fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, InstallError> {
        match tokio::fs::read(self.dir.join(rel)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(InstallError::Host(format!("{rel}: {e}"))),
        }
    }

    async fn restore(&self, rel: &str, before: Option<&[u8]>) -> Result<(), InstallError> {
        let path = self.dir.join(rel);
        match before {
            Some(bytes) => crate::edits::write::write_atomic(&path, bytes)
                .map_err(|e| InstallError::Host(format!("restoring {rel}: {e}"))),
            None => match std::fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(InstallError::Host(format!("removing {rel}: {e}"))),
            },
        }
    }

    async fn run(
        &self,
        spec: &CommandSpec,
        sink: LineSink,
        cancel: &CancellationToken,
    ) -> Result<CommandOutput, RunError> {
        match crate::exec::process::run(spec, &self.dir, sink, cancel).await {
            Ok(o) => Ok(o),
            Err(crate::exec::process::ProcessError::Cancelled) => Err(RunError::Cancelled),
            Err(e) => Err(RunError::Failed(e.to_string())),
        }
    }

    /// The user's own manager: nothing is fetched onto their machine behind their back.
    async fn launcher(
        &self,
        manager: PackageManager,
        _package_json: Option<&[u8]>,
        _cancel: &CancellationToken,
    ) -> Result<Launcher, RunError> {
        Ok(Launcher::direct(manager))
    }
}

/// A package that could not be installed, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct FailedPackage {
    pub name: String,
    pub reason: String,
}

/// What `builder.installPackages` answers (DESIGN.md §2) plus what the edge needs.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstallOutcome {
    pub installed: Vec<String>,
    pub already_installed: Vec<String>,
    pub failed: Vec<FailedPackage>,
    /// Every output line of the package manager, in order.
    pub log: Vec<String>,
    pub warnings: Vec<String>,
    /// npm reported a peer-dependency conflict (`ERESOLVE`).
    pub conflict: bool,
    pub manager: Option<PackageManager>,
    /// "the workspace" or "the local sandbox".
    pub target: String,
    /// `package.json`/lockfile were put back after a failure.
    pub restored: bool,
    pub cancelled: bool,
    /// Guarded files that changed (relative path, new bytes), for mirroring a sandbox's
    /// install back into the workspace.
    #[serde(skip)]
    pub changed: Vec<(String, Vec<u8>)>,
}

impl InstallOutcome {
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if !self.installed.is_empty() {
            parts.push(format!("installed {}", self.installed.join(", ")));
        }
        if !self.already_installed.is_empty() {
            parts.push(format!(
                "already in package.json: {}",
                self.already_installed.join(", ")
            ));
        }
        if !self.failed.is_empty() {
            let f: Vec<String> = self
                .failed
                .iter()
                .map(|f| format!("{} ({})", f.name, f.reason))
                .collect();
            parts.push(format!("failed: {}", f.join(", ")));
        }
        if self.cancelled {
            parts.push("cancelled".into());
        }
        if parts.is_empty() {
            "nothing to install".into()
        } else {
            parts.join("; ")
        }
    }
}

/// What to install.
#[derive(Debug, Clone, Default)]
pub struct InstallRequest {
    /// `name` or `name@version`.
    pub packages: Vec<String>,
    pub dev: bool,
}

/// Installs `req` on `host`. Never returns half-done manifest changes: on failure or
/// cancellation the guarded files are restored byte for byte.
pub async fn install(
    host: &dyn InstallHost,
    req: &InstallRequest,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Result<InstallOutcome, InstallError> {
    let mut out = InstallOutcome {
        target: host.describe(),
        ..Default::default()
    };

    // Validate every name before anything runs; a bad one never reaches a command line.
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    let mut seen = BTreeSet::new();
    for raw in &req.packages {
        let raw = raw.trim();
        if raw.is_empty() {
            continue;
        }
        match parse_install_arg(raw) {
            Ok((name, version)) => {
                if seen.insert(name.clone()) {
                    wanted.push((name, version));
                }
            }
            Err(why) => out.failed.push(FailedPackage {
                name: raw.to_string(),
                reason: why,
            }),
        }
    }

    let before = snapshot(host).await?;
    let manifest = match before.iter().find(|(n, _)| *n == "package.json") {
        Some((_, Some(bytes))) => Some(
            Manifest::parse(
                std::path::Path::new("package.json"),
                &String::from_utf8_lossy(bytes),
            )
            .map_err(|e| InstallError::Manifest {
                file: "package.json".into(),
                message: e.to_string(),
            })?,
        ),
        _ => None,
    };
    let mut to_install = Vec::new();
    for (name, version) in wanted {
        let declared = manifest.as_ref().is_some_and(|m| m.declares(&name));
        match version {
            None if declared => out.already_installed.push(name),
            Some(v) => to_install.push((name.clone(), format!("{name}@{v}"))),
            None => to_install.push((name.clone(), name)),
        }
    }
    if to_install.is_empty() {
        return Ok(out);
    }

    let manager =
        PackageManager::from_lockfiles(&|f| before.iter().any(|(n, b)| *n == f && b.is_some()));
    out.manager = Some(manager);
    let manifest = before
        .iter()
        .find(|(n, _)| *n == "package.json")
        .and_then(|(_, b)| b.as_deref());
    let launcher = match host.launcher(manager, manifest, cancel).await {
        Ok(l) => l,
        Err(e) => {
            let reason = match e {
                RunError::Cancelled => {
                    out.cancelled = true;
                    "cancelled".to_string()
                }
                RunError::Failed(why) => why,
            };
            out.failed
                .extend(to_install.into_iter().map(|(name, _)| FailedPackage {
                    name,
                    reason: reason.clone(),
                }));
            return Ok(out);
        }
    };
    reporter(Event::Status(format!(
        "Installing {} with {} in {}",
        to_install
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        launcher.describe(),
        out.target
    )));

    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut legacy = false;
    let mut remaining = to_install;
    // At most: one run, one retry without packages the registry does not have, one retry
    // with --legacy-peer-deps after a peer conflict.
    for _attempt in 0..3 {
        let specs: Vec<String> = remaining.iter().map(|(_, s)| s.clone()).collect();
        let spec = launcher.spec(manager.add_args(&specs, req.dev, legacy));
        let sink = line_sink(reporter.clone(), log.clone());
        let run = host.run(&spec, sink, cancel).await;
        out.log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match run {
            Ok(o) if o.exit_code == 0 => {
                out.installed
                    .extend(remaining.iter().map(|(n, _)| n.clone()));
                collect_warnings(&mut out);
                out.changed = changed(host, &before).await?;
                return Ok(out);
            }
            Ok(o) => {
                let text = format!("{}\n{}", o.stdout, o.stderr);
                if manager == PackageManager::Npm && !legacy && text.contains("ERESOLVE") {
                    out.conflict = true;
                    out.warnings.push(
                        "npm found a peer-dependency conflict (ERESOLVE); retrying with --legacy-peer-deps"
                            .into(),
                    );
                    reporter(Event::Warning(
                        "Peer-dependency conflict (ERESOLVE): retrying with --legacy-peer-deps"
                            .into(),
                    ));
                    restore_all(host, &before, &mut out).await?;
                    legacy = true;
                    continue;
                }
                let missing: Vec<usize> = remaining
                    .iter()
                    .enumerate()
                    .filter(|(_, (name, _))| not_in_registry(&text, name))
                    .map(|(i, _)| i)
                    .collect();
                restore_all(host, &before, &mut out).await?;
                if !missing.is_empty() && missing.len() < remaining.len() {
                    for i in missing.into_iter().rev() {
                        let (name, _) = remaining.remove(i);
                        out.failed.push(FailedPackage {
                            name,
                            reason: "not found in the registry".into(),
                        });
                    }
                    continue;
                }
                let reason = if !missing.is_empty() {
                    "not found in the registry".to_string()
                } else {
                    error_summary(&text, o.exit_code, manager)
                };
                out.failed
                    .extend(remaining.drain(..).map(|(name, _)| FailedPackage {
                        name,
                        reason: reason.clone(),
                    }));
                collect_warnings(&mut out);
                return Ok(out);
            }
            Err(RunError::Cancelled) => {
                out.cancelled = true;
                restore_all(host, &before, &mut out).await?;
                out.failed
                    .extend(remaining.drain(..).map(|(name, _)| FailedPackage {
                        name,
                        reason: "cancelled".into(),
                    }));
                return Ok(out);
            }
            Err(RunError::Failed(why)) => {
                restore_all(host, &before, &mut out).await?;
                let reason = if why.contains("No such file") {
                    let p = manager.program();
                    format!(
                        "{p} is not installed or not on PATH ({why}); the project's lockfile asks for {p}: `npm install -g {p}`{}",
                        if manager == PackageManager::Bun { "" } else { " or `corepack enable`" }
                    )
                } else {
                    why
                };
                out.failed
                    .extend(remaining.drain(..).map(|(name, _)| FailedPackage {
                        name,
                        reason: reason.clone(),
                    }));
                return Ok(out);
            }
        }
    }
    restore_all(host, &before, &mut out).await?;
    out.failed
        .extend(remaining.drain(..).map(|(name, _)| FailedPackage {
            name,
            reason: "the package manager kept failing".into(),
        }));
    Ok(out)
}

type Snapshot = Vec<(&'static str, Option<Vec<u8>>)>;

async fn snapshot(host: &dyn InstallHost) -> Result<Snapshot, InstallError> {
    let mut v = Vec::with_capacity(GUARDED.len());
    for f in GUARDED {
        v.push((*f, host.read(f).await?));
    }
    Ok(v)
}

async fn restore_all(
    host: &dyn InstallHost,
    before: &Snapshot,
    out: &mut InstallOutcome,
) -> Result<(), InstallError> {
    for (rel, bytes) in before {
        let now = host.read(rel).await?;
        if now.as_deref() != bytes.as_deref() {
            host.restore(rel, bytes.as_deref()).await?;
            out.restored = true;
        }
    }
    Ok(())
}

async fn changed(
    host: &dyn InstallHost,
    before: &Snapshot,
) -> Result<Vec<(String, Vec<u8>)>, InstallError> {
    let mut v = Vec::new();
    for (rel, bytes) in before {
        if let Some(now) = host.read(rel).await? {
            if Some(&now) != bytes.as_ref() {
                v.push((rel.to_string(), now));
            }
        }
    }
    Ok(v)
}

fn line_sink(reporter: Reporter, log: Arc<Mutex<Vec<String>>>) -> LineSink {
    Arc::new(move |_stream: OutputStream, line: &str| {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("npm warn") || lower.contains(" warn ") || lower.starts_with("warning")
        {
            reporter(Event::Warning(line.to_string()));
        } else {
            reporter(Event::Output(line.to_string()));
        }
        log.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line.to_string());
    })
}

fn collect_warnings(out: &mut InstallOutcome) {
    for l in &out.log {
        let lower = l.to_ascii_lowercase();
        if (lower.starts_with("npm warn")
            || lower.starts_with("warning")
            || lower.contains(" warn "))
            && !out.warnings.contains(l)
        {
            out.warnings.push(l.clone());
        }
    }
}

/// Whether the package manager's output says the registry has no package `name`
/// (npm `E404 … /name - Not found`, `'name@*' is not in this registry`; pnpm `ERR_PNPM_FETCH_404`;
/// yarn `…/name: Not found` and `Couldn't find package "name" on the "npm" registry`; bun
/// `GET …/name - 404`).
pub fn not_in_registry(output: &str, name: &str) -> bool {
    let encoded = name.replace('/', "%2f");
    let encoded_upper = name.replace('/', "%2F");
    // `needle` occurs in `line` followed by something that cannot continue a package name.
    let names = |line: &str, needle: &str| {
        line.match_indices(needle).any(|(i, m)| {
            line[i + m.len()..]
                .chars()
                .next()
                .is_none_or(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
        })
    };
    output.lines().any(|l| {
        let lower = l.to_ascii_lowercase();
        let is_404 = lower.contains("404")
            || lower.contains("not in this registry")
            || lower.contains("not found")
            || lower.contains("couldn't find package");
        is_404
            && (l.contains(&format!("'{name}@"))
                || l.contains(&format!("\"{name}\""))
                || names(l, &format!("/{name}"))
                || names(l, &format!("/{encoded}"))
                || names(l, &format!("/{encoded_upper}")))
    })
}

/// The lines that explain a failed install, for the result's `failed[].reason`.
fn error_summary(output: &str, code: i32, manager: PackageManager) -> String {
    let errors: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| {
            let lower = l.to_ascii_lowercase();
            (lower.starts_with("npm error")
                || lower.starts_with("npm err!")
                || lower.starts_with("error")
                || lower.contains("err_pnpm"))
                && !lower.contains("a complete log of this run")
                && !lower.ends_with("error")
        })
        .take(3)
        .collect();
    if errors.is_empty() {
        format!("{} exited with code {code}", manager.program())
    } else {
        errors.join(" | ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manager_by_lockfile() {
        let only = |name: &'static str| move |f: &str| f == name;
        assert_eq!(
            PackageManager::from_lockfiles(&only("pnpm-lock.yaml")),
            PackageManager::Pnpm
        );
        assert_eq!(
            PackageManager::from_lockfiles(&only("yarn.lock")),
            PackageManager::Yarn
        );
        assert_eq!(
            PackageManager::from_lockfiles(&only("bun.lockb")),
            PackageManager::Bun
        );
        assert_eq!(
            PackageManager::from_lockfiles(&only("bun.lock")),
            PackageManager::Bun
        );
        assert_eq!(
            PackageManager::from_lockfiles(&only("package-lock.json")),
            PackageManager::Npm
        );
        assert_eq!(
            PackageManager::from_lockfiles(&|_| false),
            PackageManager::Npm
        );
    }

    #[test]
    fn names_come_after_double_dash() {
        let a =
            PackageManager::Npm.add_args(&["axios".into(), "@types/node@20".into()], true, false);
        assert_eq!(
            a,
            [
                "install",
                "--no-audit",
                "--no-fund",
                "--save-dev",
                "--",
                "axios",
                "@types/node@20"
            ]
        );
        let a = PackageManager::Yarn.add_args(&["x".into()], true, true);
        assert_eq!(a, ["add", "--dev", "--", "x"]);
        let a = PackageManager::Npm.add_args(&["x".into()], false, true);
        assert!(a.contains(&"--legacy-peer-deps".to_string()));
    }

    #[test]
    fn registry_misses_are_attributed() {
        let npm = "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/no-such-pkg-xyz - Not found\nnpm error 404  'no-such-pkg-xyz@*' is not in this registry.";
        assert!(not_in_registry(npm, "no-such-pkg-xyz"));
        assert!(!not_in_registry(npm, "axios"));
        let scoped =
            "npm error 404 Not Found - GET https://registry.npmjs.org/@acme%2fnope - Not found";
        assert!(not_in_registry(scoped, "@acme/nope"));
        let pnpm = " ERR_PNPM_FETCH_404  GET https://registry.npmjs.org/nopkg: Not Found - 404";
        assert!(not_in_registry(pnpm, "nopkg"));
        assert!(!not_in_registry(pnpm, "nop"));
        let yarn = "error Couldn't find package \"nopkg\" on the \"npm\" registry.";
        assert!(not_in_registry(yarn, "nopkg"));
        assert!(!not_in_registry(yarn, "nop"));
        let bun = "error: GET https://registry.npmjs.org/@acme-zz%2fnope-qq - 404";
        assert!(not_in_registry(bun, "@acme-zz/nope-qq"));
        assert!(!not_in_registry(bun, "@acme-zz/nope"));
    }

    #[test]
    fn error_summary_picks_error_lines() {
        let out = "npm error code ERESOLVE\nnpm error ERESOLVE unable to resolve dependency tree\nnpm error A complete log of this run can be found in: /x";
        let s = error_summary(out, 1, PackageManager::Npm);
        assert!(s.contains("ERESOLVE unable to resolve"), "{s}");
        assert!(!s.contains("complete log"));
        assert_eq!(
            error_summary("", 2, PackageManager::Pnpm),
            "pnpm exited with code 2"
        );
    }
}
