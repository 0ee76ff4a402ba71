//! The flow every provider shares: provision, seed (template + workspace files), install,
//! start the dev server, wait until it answers; then keep its logs, push edits, and report
//! status. Providers only supply the primitives of the [`Sandbox`] trait.
//!
//! Here: the session, its options and results, provisioning and keep-alive; `start` seeds,
//! installs and starts the dev server, `ready` polls until it answers, `logs` keeps its
//! output, `files` moves files between workspace and sandbox, `commands` runs an answer's
//! command lines.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{e2b, local, template, vercel, ProviderKind, Sandbox, SandboxError};
use crate::events::{Event, Reporter};

mod commands;
mod files;
mod logs;
mod ready;
mod start;

pub use commands::run_commands;
pub use files::{copy_out, workspace_changes, workspace_files};
pub use logs::LOG_LINES;
pub use ready::wait_ready;
pub use start::node_runs_vite8;
use start::seed_and_start;

/// How often a cloud sandbox's timeout is extended (both providers' extensions last longer).
const KEEP_ALIVE_EVERY: Duration = Duration::from_secs(180);

/// How long the dev server gets to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// Sees each dev-server line (error diagnostics, the CLI's echo).
pub type LineHook = Arc<dyn Fn(&str) + Send + Sync>;
/// Environment lookup (process env merged with the project's `.env`).
pub type EnvLookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// What `create` needs besides the project folder.
#[derive(Clone)]
pub struct CreateOptions {
    pub provider: ProviderKind,
    /// `None`: `react-vite` when the workspace has no `package.json`, else none.
    pub template: Option<String>,
    pub isolation: local::Isolation,
    /// Environment lookup (process env merged with the project's `.env` and settings).
    pub env: EnvLookup,
    pub http: reqwest::Client,
    /// A name for the sandbox (the project folder's name).
    pub project_key: String,
    /// Local sandboxes behind a path-prefix proxy: the preview's URL path, `{{port}}` for the
    /// port (see [`crate::sandbox::preview::parse_base`]). Cloud previews have their own host.
    pub preview_base: Option<String>,
}

/// A running sandbox and what the server keeps about it.
pub struct Session {
    pub sandbox: Arc<dyn Sandbox>,
    pub started: Instant,
    pub logs: Arc<Mutex<VecDeque<String>>>,
    /// Ends the background tasks tied to this session (log forwarding, keep-alive).
    pub stop: CancellationToken,
}

/// The result of `builder.sandbox.create`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateResult {
    pub sandbox_id: String,
    pub provider: ProviderKind,
    pub url: String,
    pub created_at: String,
    pub isolation: String,
    /// Template files written into the (empty) workspace too.
    pub template_applied: Vec<String>,
    pub files_seeded: usize,
    /// Packages the code imports that package.json lacked, installed in the sandbox.
    pub packages_installed: Vec<String>,
    /// The sandbox's package.json after those installs, for the workspace to take over.
    #[serde(skip)]
    pub manifest: Option<String>,
    /// What the user should know although the sandbox runs (an older Node, a package the
    /// code imports that could not be installed). Also sent as progress.
    pub warnings: Vec<String>,
    /// Milliseconds per phase: provision, seed, install, start, ready.
    pub timings: Timings,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub provision_ms: u64,
    pub seed_ms: u64,
    pub install_ms: u64,
    pub ready_ms: u64,
    pub total_ms: u64,
}

/// The result of `builder.sandbox.status`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub active: bool,
    pub healthy: bool,
    pub provider: Option<ProviderKind>,
    pub sandbox_id: Option<String>,
    pub url: Option<String>,
    pub uptime_seconds: Option<u64>,
    pub isolation: Option<String>,
    pub created_at: Option<String>,
}

impl Status {
    pub fn none() -> Status {
        Status {
            active: false,
            healthy: false,
            provider: None,
            sandbox_id: None,
            url: None,
            uptime_seconds: None,
            isolation: None,
            created_at: None,
        }
    }
}

impl Session {
    pub async fn status(&self) -> Status {
        let info = self.sandbox.info();
        Status {
            active: true,
            healthy: self.sandbox.healthy().await,
            provider: Some(info.provider),
            sandbox_id: Some(info.sandbox_id),
            url: Some(info.url),
            uptime_seconds: Some(self.started.elapsed().as_secs()),
            isolation: Some(info.isolation),
            created_at: Some(info.created_at),
        }
    }

    /// Restarts the dev server and waits until it answers.
    pub async fn restart(
        &self,
        on_line: Option<LineHook>,
        cancel: &CancellationToken,
    ) -> Result<String, SandboxError> {
        let sink = Session::log_sink(self.logs.clone(), on_line);
        self.sandbox.start_dev_server(sink).await?;
        wait_ready(self.sandbox.as_ref(), READY_TIMEOUT, cancel, &self.logs).await?;
        Ok(self.sandbox.info().url)
    }

    /// Cloud sandboxes expire (E2B and Vercel count down a timeout); while the session lives,
    /// its lifetime is extended every few minutes so it never expires mid-session. Ends with
    /// `stop` (kill), or when the provider says the sandbox is gone.
    fn keep_alive_in_background(&self) {
        if self.sandbox.info().provider == ProviderKind::Local {
            return;
        }
        spawn_keep_alive(self.sandbox.clone(), KEEP_ALIVE_EVERY, self.stop.clone());
    }

    /// Kills the sandbox and ends its background tasks.
    pub async fn kill(&self) -> Result<(), SandboxError> {
        self.stop.cancel();
        self.sandbox.kill().await
    }
}

/// Calls `keep_alive` every `every` until `stop` fires or the provider says the sandbox is
/// gone; other failures (a network blip) are retried at the next tick. Returns how many
/// keep-alives succeeded.
pub fn spawn_keep_alive(
    sb: Arc<dyn Sandbox>,
    every: Duration,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut ok = 0;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return ok,
                _ = tokio::time::sleep(every) => {}
            }
            match sb.keep_alive().await {
                Ok(()) => ok += 1,
                Err(e @ SandboxError::Gone { .. }) => {
                    tracing::warn!("sandbox keep-alive: {e}");
                    return ok;
                }
                Err(e) => tracing::warn!("sandbox keep-alive failed (will retry): {e}"),
            }
        }
    })
}

/// Provisions a sandbox of `opts.provider` (no files, nothing running yet).
pub async fn provision(opts: &CreateOptions) -> Result<Arc<dyn Sandbox>, SandboxError> {
    let get = |k: &str| (opts.env)(k);
    Ok(match opts.provider {
        ProviderKind::Local => {
            let base = match get("BUILDER_CACHE_DIR") {
                Some(d) if !d.is_empty() => PathBuf::from(d).join("sandboxes"),
                _ => local::default_base_dir(),
            };
            Arc::new(
                local::create(local::LocalOptions {
                    base_dir: base,
                    isolation: opts.isolation,
                    project_key: opts.project_key.clone(),
                    preview_base: opts.preview_base.clone(),
                })
                .await?,
            )
        }
        ProviderKind::E2b => {
            let cfg = e2b::E2bConfig::from_env(&get)?;
            Arc::new(e2b::create(opts.http.clone(), cfg).await?)
        }
        ProviderKind::Vercel => {
            let cfg = vercel::VercelConfig::from_env(&get)?;
            Arc::new(vercel::VercelSandbox::create(opts.http.clone(), cfg).await?)
        }
    })
}

/// Fails fast, before any task starts, when the provider's credentials are missing (the
/// message names the variable).
pub fn check_credentials(opts: &CreateOptions) -> Result<(), SandboxError> {
    let get = |k: &str| (opts.env)(k);
    match opts.provider {
        ProviderKind::Local => Ok(()),
        ProviderKind::E2b => e2b::E2bConfig::from_env(&get).map(|_| ()),
        ProviderKind::Vercel => vercel::VercelConfig::from_env(&get).map(|_| ()),
    }
}

/// A template's files, or a clear error listing the known names.
pub fn template_files(name: &str) -> Result<Vec<(&'static str, &'static str)>, SandboxError> {
    template::files(name).ok_or_else(|| {
        SandboxError::Config(format!(
            "unknown template `{name}`; available: {}",
            template::NAMES.join(", ")
        ))
    })
}

/// Everything from provisioning to a dev server that answers. `on_line` sees every
/// dev-server line (for error diagnostics); the returned session owns the sandbox.
pub async fn create(
    root: &Path,
    opts: &CreateOptions,
    reporter: &Reporter,
    on_line: Option<LineHook>,
    cancel: &CancellationToken,
) -> Result<(Session, CreateResult), SandboxError> {
    let t0 = Instant::now();
    let workspace_has_manifest = root.join("package.json").is_file();
    let template_name = match (&opts.template, workspace_has_manifest) {
        (Some(t), _) => Some(t.clone()),
        (None, false) => Some("react-vite".to_string()),
        (None, true) => None,
    };
    // Refuse an unknown template before paying for a sandbox.
    let template = match &template_name {
        Some(t) => template_files(t)?,
        None => Vec::new(),
    };

    reporter(Event::Status(format!(
        "Provisioning a {} sandbox",
        opts.provider.as_str()
    )));
    let sandbox = tokio::select! {
        s = provision(opts) => s?,
        _ = cancel.cancelled() => return Err(SandboxError::Cancelled),
    };
    // From here on, any failure must not leak the sandbox.
    match seed_and_start(
        root,
        sandbox.clone(),
        &template,
        reporter,
        on_line,
        cancel,
        t0,
    )
    .await
    {
        Ok((session, mut result)) => {
            result.template_applied = if workspace_has_manifest {
                Vec::new()
            } else {
                template.iter().map(|(p, _)| p.to_string()).collect()
            };
            Ok((session, result))
        }
        Err(e) => {
            let _ = sandbox.kill().await;
            Err(e)
        }
    }
}
