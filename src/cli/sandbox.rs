//! `builder-lsp sandbox create|status|kill --dir DIR`, and the serving behind `apply --serve`
//! and `generate --serve` (`start`, `serve_until`).
//!
//! `create` keeps running (the sandbox lives as long as this process; Ctrl-C or `kill`
//! stops it) and leaves a record so `status` and `kill` from another shell find it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use builder_lsp::config;
use builder_lsp::events::Reporter;
use builder_lsp::sandbox::local::Isolation;
use builder_lsp::sandbox::record::{self, Record};
use builder_lsp::sandbox::session::{self, CreateOptions, Status};
use builder_lsp::sandbox::ProviderKind;
use tokio_util::sync::CancellationToken;

pub struct CreateFlags {
    pub provider: Option<String>,
    pub template: Option<String>,
    pub isolation: Option<String>,
}

pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn canonical(dir: &Path) -> Result<PathBuf, String> {
    std::fs::canonicalize(dir).map_err(|e| format!("--dir {}: {e}", dir.display()))
}

/// The sandbox options for `root` from the flags and the folder's settings.
pub fn create_options(root: &Path, flags: CreateFlags) -> Result<CreateOptions, String> {
    let env = config::environment(Some(root));
    let (settings, _) = config::resolve(&env, None, None);
    let provider_name = flags.provider.unwrap_or(settings.sandbox.provider);
    let provider = ProviderKind::parse(&provider_name)
        .ok_or_else(|| format!("--provider {provider_name}: expected local, e2b or vercel"))?;
    let iso_name = flags.isolation.unwrap_or(settings.sandbox.isolation);
    let isolation = Isolation::parse(&iso_name)
        .ok_or_else(|| format!("--isolation {iso_name}: expected auto, bwrap or none"))?;
    if let Some(t) = &flags.template {
        session::template_files(t).map_err(|e| format!("--template: {e}"))?;
    }
    let env = Arc::new(env);
    let opts = CreateOptions {
        provider,
        template: flags.template.clone(),
        isolation,
        env: Arc::new(move |k: &str| env.get(k).cloned()),
        http: builder_lsp::http::http_client(),
        project_key: root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into()),
        preview_base: None,
    };
    Ok(opts)
}

/// Refuses a folder whose sandbox another `builder-lsp` process already serves.
pub fn ensure_not_running(root: &Path) -> Result<(), String> {
    match record::load(root) {
        Some(r) => Err(format!(
            "a sandbox for {} is already running at {} (process {}); stop it with `builder-lsp sandbox kill --dir {}`",
            root.display(),
            r.url,
            r.pid,
            root.display()
        )),
        None => Ok(()),
    }
}

/// Echoes dev-server lines as `  vite | …` when stderr is a terminal.
pub fn echo_hook() -> session::LineHook {
    let quiet = !std::io::IsTerminal::is_terminal(&std::io::stderr());
    Arc::new(move |l: &str| {
        if !quiet {
            eprintln!("  vite | {l}");
        }
    })
}

/// Creates the sandbox for `root` (canonical), writes the template's files into an empty
/// workspace, and leaves the record `sandbox status|kill` read. `on_line` sees every
/// dev-server line.
pub async fn start(
    root: &Path,
    opts: &CreateOptions,
    reporter: &Reporter,
    on_line: session::LineHook,
    cancel: &CancellationToken,
) -> Result<(session::Session, session::CreateResult), String> {
    let (s, mut result) = session::create(root, opts, reporter, Some(on_line), cancel)
        .await
        .map_err(|e| e.to_string())?;
    // An empty workspace gets the template too, so the user can edit what is served.
    let changes =
        match session::workspace_changes(root, opts.template.as_deref(), &mut result, &|p| {
            std::fs::read_to_string(p).ok()
        }) {
            Ok(c) => c,
            Err(e) => {
                let _ = s.kill().await;
                return Err(e.to_string());
            }
        };
    let delivered = builder_lsp::apply::deliver_to_disk(&changes, &builder_lsp::events::silent());
    for e in &delivered.errors {
        eprintln!("warning: {e}");
    }
    if !result.template_applied.is_empty() {
        result.template_applied = delivered.created;
    }
    record::save(root, &Record::new(&s.sandbox.info()));
    Ok((s, result))
}

/// Serves until `cancel` (Ctrl-C/SIGTERM): files saved in the folder reach the sandbox; then
/// kills it and removes the record.
pub async fn serve_until(root: &Path, s: session::Session, cancel: &CancellationToken) {
    // Files saved in the folder reach the sandbox: poll mtimes cheaply.
    let watcher = tokio::spawn(mirror_changes(root.to_path_buf(), s.sandbox.clone()));
    cancel.cancelled().await;
    watcher.abort();
    eprintln!("Stopping the sandbox…");
    stop(root, s).await;
}

/// Kills the sandbox and removes the record.
pub async fn stop(root: &Path, s: session::Session) {
    let _ = s.kill().await;
    record::remove_own(root);
}

/// A cancellation token cancelled by Ctrl-C or SIGTERM (inside a runtime).
pub fn cancel_on_signal() -> CancellationToken {
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        stop_signal().await;
        c2.cancel();
    });
    cancel
}

/// Creates a sandbox for `dir`, prints its result as JSON, and serves until Ctrl-C/SIGTERM.
pub fn create_and_serve(
    dir: &Path,
    flags: CreateFlags,
    reporter: Reporter,
) -> Result<ExitCode, String> {
    let root = canonical(dir)?;
    ensure_not_running(&root)?;
    let opts = create_options(&root, flags)?;
    session::check_credentials(&opts).map_err(|e| e.to_string())?;
    let rt = runtime()?;
    rt.block_on(async move {
        let cancel = cancel_on_signal();
        let (s, result) = start(&root, &opts, &reporter, echo_hook(), &cancel).await?;
        crate::print_json(&result);
        eprintln!("Preview: {}  (Ctrl-C to stop)", result.url);
        serve_until(&root, s, &cancel).await;
        Ok(ExitCode::SUCCESS)
    })
}

/// Pushes files changed in the workspace to the sandbox (the headless stand-in for didSave).
async fn mirror_changes(root: PathBuf, sb: Arc<dyn builder_lsp::sandbox::Sandbox>) {
    use std::collections::HashMap;
    let snapshot = |root: PathBuf| {
        session::workspace_files(&root)
            .map(|v| {
                v.into_iter()
                    .map(|f| (f.path, f.bytes))
                    .collect::<HashMap<_, _>>()
            })
            .unwrap_or_default()
    };
    let r = root.clone();
    let mut last = tokio::task::spawn_blocking(move || snapshot(r))
        .await
        .unwrap_or_default();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let r = root.clone();
        let Ok(now) = tokio::task::spawn_blocking(move || snapshot(r)).await else {
            continue;
        };
        let changed: Vec<builder_lsp::sandbox::SandboxFile> = now
            .iter()
            .filter(|(p, b)| last.get(*p) != Some(*b))
            .map(|(p, b)| builder_lsp::sandbox::SandboxFile {
                path: p.clone(),
                bytes: b.clone(),
            })
            .collect();
        if !changed.is_empty() {
            if let Err(e) = sb.write_files(&changed).await {
                eprintln!(
                    "warning: pushing {} files to the sandbox failed: {e}",
                    changed.len()
                );
            }
        }
        last = now;
    }
}

/// Ctrl-C or SIGTERM, whichever comes first.
pub(crate) async fn stop_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

pub fn status(dir: &Path) -> Result<ExitCode, String> {
    let root = canonical(dir)?;
    let status = match record::load(&root) {
        None => Status::none(),
        Some(r) => {
            let rt = runtime()?;
            let healthy = rt.block_on(async {
                let client = builder_lsp::http::http_client();
                matches!(
                    tokio::time::timeout(Duration::from_secs(3), client.get(&r.url).send()).await,
                    Ok(Ok(resp)) if resp.status().as_u16() < 500
                )
            });
            let uptime = chrono::DateTime::parse_from_rfc3339(&r.created_at)
                .ok()
                .map(|t| {
                    (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                        .num_seconds()
                        .max(0) as u64
                });
            Status {
                active: true,
                healthy,
                provider: Some(r.provider),
                sandbox_id: Some(r.sandbox_id),
                url: Some(r.url),
                uptime_seconds: uptime,
                isolation: Some(r.isolation),
                created_at: Some(r.created_at),
            }
        }
    };
    crate::print_json(&status);
    Ok(ExitCode::SUCCESS)
}

pub fn kill(dir: &Path) -> Result<ExitCode, String> {
    let root = canonical(dir)?;
    let Some(r) = record::load(&root) else {
        crate::print_json(&serde_json::json!({"killed": false, "sandboxId": null,
            "message": format!("no sandbox is running for {}", root.display())}));
        return Ok(ExitCode::from(1));
    };
    // The owner kills its sandbox (and every process of it) on SIGTERM.
    // SAFETY: plain syscall on a pid read from our own record.
    unsafe {
        libc::kill(r.pid as i32, libc::SIGTERM);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while r.owner_alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = !r.owner_alive();
    crate::print_json(&serde_json::json!({"killed": killed, "sandboxId": r.sandbox_id}));
    Ok(if killed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
