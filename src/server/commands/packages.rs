//! `builder.installPackages` and `builder.detectPackages`: argument checking and task plumbing;
//! the work is in `packages::service` (installs) and `packages::index` (detection).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::ProgressToken;

use super::{invalid_params, parse_args, project_for, run_task, Command, Outcome};
use crate::edits::path::normalize;
use crate::packages::install::{InstallOutcome, InstallRequest};
use crate::packages::specifier::parse_install_arg;
use crate::server::steps::install_and_refresh;
use crate::server::Backend;
use crate::tasks::TaskState;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct InstallArgs {
    /// Names, optionally with `@version`.
    packages: Vec<String>,
    /// Install as devDependencies.
    dev: Option<bool>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
    /// Answer with the full result when done instead of `{taskId, started}` at once.
    wait: Option<bool>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct DetectArgs {
    /// `{path: content}` to scan instead of the project's files.
    files: Option<std::collections::BTreeMap<String, String>>,
    /// Install what is missing (default true).
    install: Option<bool>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
    /// Answer with the full result when done instead of `{taskId, started}` at once.
    wait: Option<bool>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DetectResult {
    /// Every distinct specifier seen.
    imports: Vec<String>,
    /// Runtime packages no package.json declares.
    packages: Vec<String>,
    /// Missing packages imported only for types (`import type`).
    type_packages: Vec<String>,
    /// Installed by this call.
    installed: Vec<String>,
    /// Already declared.
    already_installed: Vec<String>,
    /// Not installed, with the reason.
    failed: Vec<crate::packages::install::FailedPackage>,
    /// The package manager's output lines.
    log: Vec<String>,
    /// One-line summary.
    message: String,
}

pub async fn run(
    b: &Backend,
    cmd: Command,
    args: Value,
    token: Option<ProgressToken>,
) -> Result<Value> {
    match cmd {
        Command::InstallPackages => install_cmd(b, cmd, args, token).await,
        _ => detect_cmd(b, cmd, args, token).await,
    }
}

async fn install_cmd(
    b: &Backend,
    cmd: Command,
    args: Value,
    token: Option<ProgressToken>,
) -> Result<Value> {
    let a: InstallArgs = parse_args(cmd, args)?;
    if a.packages.iter().all(|p| p.trim().is_empty()) {
        return Err(invalid_params(format!(
            "{}: invalid argument `packages`: give at least one package name, e.g. [\"axios\"]",
            cmd.name()
        )));
    }
    // A name that is not valid never reaches a command line: refuse the whole request.
    for (i, p) in a.packages.iter().enumerate() {
        if let Err(why) = parse_install_arg(p.trim()) {
            return Err(invalid_params(format!(
                "{}: invalid argument `packages[{i}]`: `{p}` {why}",
                cmd.name()
            )));
        }
    }
    let project = project_for(b, a.project.as_deref())?;
    let req = InstallRequest {
        packages: a.packages.iter().map(|p| p.trim().to_string()).collect(),
        dev: a.dev.unwrap_or(false),
    };
    let this = b.clone();
    let p2 = project.clone();
    run_task(
        b,
        cmd,
        project,
        a.wait.unwrap_or(false),
        token,
        "Installing packages".into(),
        move |ctx| async move {
            let out = install_and_refresh(&this, &p2, &req, &ctx.reporter, &ctx.cancel).await;
            install_outcome(out)
        },
    )
    .await
}

fn install_outcome(out: InstallOutcome) -> Outcome {
    Outcome::ended(out.cancelled, out.failed.is_empty(), out.summary(), &out)
}

async fn detect_cmd(
    b: &Backend,
    cmd: Command,
    args: Value,
    token: Option<ProgressToken>,
) -> Result<Value> {
    let a: DetectArgs = parse_args(cmd, args)?;
    let project = project_for(b, a.project.as_deref())?;
    let mut files: Option<Vec<(PathBuf, String)>> = None;
    if let Some(map) = &a.files {
        let mut v = Vec::with_capacity(map.len());
        for (path, content) in map {
            let rel = normalize(path).map_err(|e| {
                invalid_params(format!(
                    "{}: invalid argument `files`: key `{path}`: {e}",
                    cmd.name()
                ))
            })?;
            v.push((PathBuf::from(rel), content.clone()));
        }
        files = Some(v);
    }
    let install = a.install.unwrap_or(true);
    let this = b.clone();
    let p2 = project.clone();
    // Detection alone is quick: answer inline unless asked otherwise; installing is a task.
    let wait = a.wait.unwrap_or(!install);
    run_task(
        b,
        cmd,
        project,
        wait,
        token,
        "Detecting packages".into(),
        move |ctx| async move {
            let root = p2.canonical_root.clone();
            let p3 = p2.clone();
            let open = this.st.docs.texts_under(&p2.root);
            let missing = tokio::task::spawn_blocking(move || match files {
                Some(f) => crate::packages::index::detect(&f, &root),
                None => p3.with_packages(|idx| {
                    // Open buffers are newer than the disk.
                    for (path, text) in &open {
                        idx.update_file(path, text);
                    }
                    idx.missing()
                }),
            })
            .await;
            let missing = match missing {
                Ok(m) => m,
                Err(e) => {
                    return Outcome {
                        state: TaskState::Failed,
                        summary: format!("detection failed: {e}"),
                        result: Value::Null,
                    }
                }
            };
            let mut r = DetectResult {
                imports: missing.imports,
                packages: missing.packages,
                type_packages: missing.type_packages,
                installed: Vec::new(),
                already_installed: Vec::new(),
                failed: Vec::new(),
                log: Vec::new(),
                message: String::new(),
            };
            let mut state = TaskState::Done;
            if install && !r.packages.is_empty() {
                let req = InstallRequest {
                    packages: r.packages.clone(),
                    dev: false,
                };
                let out = install_and_refresh(&this, &p2, &req, &ctx.reporter, &ctx.cancel).await;
                if out.cancelled {
                    state = TaskState::Cancelled;
                } else if !out.failed.is_empty() {
                    state = TaskState::Failed;
                }
                r.message = out.summary();
                r.installed = out.installed;
                r.already_installed = out.already_installed;
                r.failed = out.failed;
                r.log = out.log;
            } else {
                r.message = if r.packages.is_empty() {
                    "no missing packages".into()
                } else {
                    format!("missing: {}", r.packages.join(", "))
                };
            }
            Outcome::of(state, r.message.clone(), &r)
        },
    )
    .await
}
