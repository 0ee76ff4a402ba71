//! The flow every provider shares: provision, seed (template + workspace files), install,
//! start the dev server, wait until it answers; then keep its logs, push edits, and report
//! status. Providers only supply the primitives of the [`Sandbox`] trait.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use walkdir::WalkDir;

use super::{
    e2b, local, template, vercel, CommandSpec, LineSink, OutputStream, ProviderKind, Sandbox,
    SandboxError, SandboxFile, SandboxInfo,
};
use crate::events::{Event, Reporter};
use crate::packages::launcher::PackageManager;

/// Lines of dev-server output kept for `builder.sandbox.logs` and error diagnostics.
pub const LOG_LINES: usize = 1000;

/// Files larger than this are not copied into a sandbox (videos, datasets); the dev server
/// does not need them and cloud uploads would crawl.
const MAX_SEED_FILE: u64 = 8 * 1024 * 1024;

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

    pub fn recent_logs(&self, n: usize) -> Vec<String> {
        let l = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().skip(l.len().saturating_sub(n)).cloned().collect()
    }

    /// A sink that keeps dev-server lines (not the preview plugin's reports) and forwards each
    /// to `also`.
    pub fn log_sink(logs: Arc<Mutex<VecDeque<String>>>, also: Option<LineHook>) -> LineSink {
        Arc::new(move |_s: OutputStream, line: &str| {
            // The preview plugin's reports are data, not log text (`builder.sandbox.errors`).
            if !line.trim_start().starts_with(super::preview::LINE_PREFIX) {
                let mut l = logs.lock().unwrap_or_else(|e| e.into_inner());
                if l.len() >= LOG_LINES {
                    l.pop_front();
                }
                l.push_back(line.to_string());
            }
            if let Some(f) = &also {
                f(line);
            }
        })
    }

    /// Notes in the log that the server changed `rels` in the sandbox (see
    /// `vite_errors::CHANGED_MARKER`).
    pub fn note_changed(&self, rels: &[String]) {
        let mut l = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() >= LOG_LINES {
            l.pop_front();
        }
        l.push_back(format!(
            "{}{}",
            super::vite_errors::CHANGED_MARKER,
            rels.join(", ")
        ));
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

async fn seed_and_start(
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
                super::no_lines(),
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

/// Polls `healthy()` until the dev server answers; fails early with its last lines when it
/// cannot come up.
pub async fn wait_ready(
    sb: &dyn Sandbox,
    timeout: Duration,
    cancel: &CancellationToken,
    logs: &Arc<Mutex<VecDeque<String>>>,
) -> Result<Duration, SandboxError> {
    let start = Instant::now();
    // Locally a probe is a socket connect; in the cloud it is a request (E2B: a process), so
    // poll those less often.
    let (first, cap) = if sb.info().provider == ProviderKind::Local {
        (Duration::from_millis(10), Duration::from_millis(50))
    } else {
        (Duration::from_millis(250), Duration::from_secs(1))
    };
    let mut interval = first;
    loop {
        if sb.healthy().await {
            return Ok(start.elapsed());
        }
        if cancel.is_cancelled() {
            return Err(SandboxError::Cancelled);
        }
        if start.elapsed() > timeout {
            return Err(SandboxError::Timeout(format!(
                "the dev server did not answer within {} s; its last output:\n{}",
                timeout.as_secs(),
                last_lines(logs, 10)
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return Err(SandboxError::Cancelled),
        }
        interval = (interval * 2).min(cap);
    }
}

fn last_lines(logs: &Arc<Mutex<VecDeque<String>>>, n: usize) -> String {
    let l = logs.lock().unwrap_or_else(|e| e.into_inner());
    let v: Vec<&str> = l
        .iter()
        .skip(l.len().saturating_sub(n))
        .map(String::as_str)
        .collect();
    if v.is_empty() {
        "(no output)".into()
    } else {
        v.join("\n")
    }
}

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

/// Runs an answer's `<command>` lines in the sandbox, one after another: split like a shell
/// but never through one (no expansion, pipes or globs; a model's command line is untrusted).
/// Returns the lines that exited 0 and an error per line that did not.
pub async fn run_commands(
    sb: &dyn Sandbox,
    commands: &[String],
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> (Vec<String>, Vec<String>) {
    let mut executed = Vec::new();
    let mut errors = Vec::new();
    for line in commands {
        let Some(words) = super::split_command_line(line) else {
            errors.push(format!("command `{line}`: unbalanced quotes; not run"));
            continue;
        };
        let Some((program, args)) = words.split_first() else {
            continue;
        };
        let spec = CommandSpec::new(program.clone(), args.to_vec());
        let rep = reporter.clone();
        let sink: LineSink = Arc::new(move |_, l: &str| rep(Event::Output(l.to_string())));
        reporter(Event::Status(format!("Running {line}")));
        match sb.run(&spec, sink, cancel.clone()).await {
            Ok(o) if o.exit_code == 0 => executed.push(line.clone()),
            Ok(o) => errors.push(format!(
                "command `{line}` exited with {}: {}",
                o.exit_code,
                o.stderr.lines().last().unwrap_or("")
            )),
            Err(e) => errors.push(format!("command `{line}`: {e}")),
        }
    }
    (executed, errors)
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
