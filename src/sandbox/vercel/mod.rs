//! Vercel Sandbox provider over the v1 REST API (PROTOCOLS.md §6): an ephemeral VM created
//! with `runtime: node22` and port 5173 declared, commands run through `/cmd` with their output
//! streamed as NDJSON, files written as one gzip'd tarball per call, preview on the route the
//! API hands out for port 5173. Tested against `tests/fakes/vercel.rs`, a loopback fake of the
//! same API, so every byte on the wire here is one the fake checks.
//!
//! `config` reads the credentials, `api` is the REST layer, `stream` the NDJSON framing
//! and tarballs; here the sandbox itself.

use std::collections::{BTreeSet, VecDeque};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::http::retry::{ceil_secs, retry_after};

use super::{
    CommandOutput, CommandSpec, LineSink, OutputStream, ProviderKind, Result, Sandbox,
    SandboxError, SandboxFile, SandboxInfo, DEV_PORT,
};

mod api;
mod config;
mod stream;
use api::*;
use config::check_api_url;
pub use config::{
    VercelConfig, DEFAULT_API_URL, DEFAULT_RUNTIME, DEFAULT_TIMEOUT_MS, DEFAULT_VCPUS,
};
use stream::*;

const PROVIDER: &str = "Vercel";

/// What one `keep_alive` adds to the sandbox's lifetime. Vercel adds it to the timeout (it
/// does not reset it), so it equals the session's keep-alive cadence (3 min): the remaining
/// time stays put instead of growing toward the plan's limit.
pub const KEEP_ALIVE_MS: u64 = 3 * 60 * 1000;

const USER_AGENT_VALUE: &str = concat!(
    "builder-lsp/",
    env!("CARGO_PKG_VERSION"),
    " (vercel-sandbox v1; rust)"
);
/// How long create waits for `pending` to become `running`; boots take seconds.
const READY_DEADLINE: Duration = Duration::from_secs(120);
const POLL_FIRST: Duration = Duration::from_millis(100);
const POLL_MAX: Duration = Duration::from_secs(1);
/// The SDK's policy: 2 retries, 400 ms minimum, factor 2.
const MAX_RETRIES: u32 = 2;
const RETRY_MIN: Duration = Duration::from_millis(400);
/// A 429 hint above this is surfaced instead of slept through (the SDK's rule).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(20);
/// Deadline of an ordinary call; streams (logs, waiting for a command) have none.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(300);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// Bound on the clean-up calls made on the way out (kill a command, stop a half-made sandbox).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);
/// After the exit code arrives, how long the log stream may take to end on its own.
const LOGS_GRACE: Duration = Duration::from_secs(10);
/// An NDJSON record longer than this is refused rather than buffered without bound.
pub const MAX_RECORD: usize = 16 * 1024 * 1024;
/// Output without a line break is handed on as a line once it gets this long.
const MAX_OUTPUT_LINE: usize = 64 * 1024;
/// How many last output lines a failure message carries.
const TAIL_LINES: usize = 20;
const SIGTERM: i32 = 15;

// ---------------------------------------------------------------------------------------------
// The sandbox.

/// The dev server's command and the task forwarding its output.
struct DevServer {
    cmd_id: String,
    task: tokio::task::JoinHandle<()>,
}

/// A running Vercel sandbox (one VM); see the module docs.
pub struct VercelSandbox {
    api: Api,
    id: String,
    /// The project dir inside the VM: the sandbox's `cwd` (`/vercel/sandbox`).
    cwd: String,
    info: SandboxInfo,
    /// Set once stopped by us: later calls answer `Gone` without a round trip.
    stopped: AtomicBool,
    /// Held across the whole restart so concurrent starts cannot race for the port.
    dev: tokio::sync::Mutex<Option<DevServer>>,
}

/// What the API says about a sandbox (`{sandbox, routes}`).
struct SandboxState {
    id: String,
    status: String,
    cwd: Option<String>,
    created_at_ms: Option<i64>,
    routes: Vec<(u64, String)>,
}

impl SandboxState {
    fn parse(v: &Value) -> Result<SandboxState> {
        let sb = v
            .get("sandbox")
            .ok_or_else(|| protocol("the answer has no `sandbox` object"))?;
        let text = |name: &str| sb.get(name).and_then(Value::as_str).map(str::to_string);
        let routes = v
            .get("routes")
            .and_then(Value::as_array)
            .map(|rs| {
                rs.iter()
                    .filter_map(|r| {
                        Some((
                            r.get("port")?.as_u64()?,
                            r.get("url")?.as_str()?.trim_end_matches('/').to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(SandboxState {
            id: text("id").ok_or_else(|| protocol("the sandbox has no `id`"))?,
            status: text("status").ok_or_else(|| protocol("the sandbox has no `status`"))?,
            cwd: text("cwd").filter(|c| c.starts_with('/')),
            created_at_ms: sb.get("createdAt").and_then(Value::as_i64),
            routes,
        })
    }
}

impl VercelSandbox {
    /// Creates a sandbox (`POST /v1/sandboxes`) and waits until it runs. A sandbox that never
    /// gets there is stopped again, so a failed create leaves nothing billed behind.
    pub async fn create(http: reqwest::Client, cfg: VercelConfig) -> Result<VercelSandbox> {
        let api = Api::new(http, &cfg)?;
        let body = json!({
            "projectId": cfg.project_id,
            "runtime": cfg.runtime,
            "ports": [DEV_PORT],
            "timeout": cfg.timeout_ms,
            "resources": { "vcpus": cfg.vcpus },
        });
        let call = Call::new(Method::POST, &["v1", "sandboxes"]).json(body);
        let first = SandboxState::parse(&api.json(&call).await?)?;
        let id = first.id.clone();
        let ready = match wait_running(&api, first).await {
            Ok(state) => Self::from_state(api.clone(), state),
            Err(e) => Err(e),
        };
        match ready {
            Ok(sandbox) => Ok(sandbox),
            Err(e) => {
                abandon(&api, &id).await;
                Err(e)
            }
        }
    }

    fn from_state(api: Api, state: SandboxState) -> Result<VercelSandbox> {
        let Some((_, url)) = state
            .routes
            .iter()
            .find(|(port, _)| *port == u64::from(DEV_PORT))
        else {
            return Err(protocol(format!(
                "the sandbox has no route for port {DEV_PORT} although it was declared"
            )));
        };
        let created = state
            .created_at_ms
            .and_then(chrono::DateTime::from_timestamp_millis)
            .unwrap_or_else(chrono::Utc::now);
        let info = SandboxInfo {
            sandbox_id: state.id.clone(),
            provider: ProviderKind::Vercel,
            url: url.clone(),
            created_at: created.to_rfc3339(),
            isolation: "vm".to_string(),
        };
        Ok(VercelSandbox {
            api,
            cwd: state.cwd.unwrap_or_else(|| "/vercel/sandbox".to_string()),
            id: state.id,
            info,
            stopped: AtomicBool::new(false),
            dev: tokio::sync::Mutex::new(None),
        })
    }

    /// The project dir inside the VM.
    pub fn project_dir(&self) -> &str {
        &self.cwd
    }

    fn alive(&self) -> Result<()> {
        if self.stopped.load(Ordering::SeqCst) {
            Err(gone(&self.id))
        } else {
            Ok(())
        }
    }

    fn command_body(&self, cmd: &CommandSpec, wait: bool) -> Value {
        let mut body = json!({
            "command": cmd.program,
            "args": cmd.args,
            "cwd": self.cwd,
            "env": cmd.env,
        });
        if wait {
            body["wait"] = json!(true);
        }
        body
    }

    /// `POST …/cmd` with `wait: true`: the answer is NDJSON whose first record carries the
    /// command id and whose last carries the exit code. Never retried once answered.
    async fn start_waiting(&self, cmd: &CommandSpec) -> Result<(String, NdjsonStream)> {
        let call = Call::on(Method::POST, &self.id, &["cmd"])
            .json(self.command_body(cmd, true))
            .timeout(None);
        let resp = self.api.send_ok(&call).await?;
        let mut stream = NdjsonStream::new(resp, "command")?;
        let first = stream
            .next()
            .await?
            .ok_or_else(|| protocol("the command stream ended before naming the command"))?;
        Ok((command_id(&first)?, stream))
    }

    /// `POST …/cmd` without waiting: the command id.
    async fn start_detached(&self, cmd: &CommandSpec) -> Result<String> {
        let call = Call::on(Method::POST, &self.id, &["cmd"]).json(self.command_body(cmd, false));
        command_id(&self.api.json(&call).await?)
    }

    /// Kills the dev server in `slot`, if any, and waits (bounded) for it to exit so its port
    /// is free for the next `--strictPort` start.
    async fn stop_dev_server(&self, slot: &mut Option<DevServer>) {
        if let Some(dev) = slot.take() {
            dev.task.abort();
            self.api.kill_command(&self.id, &dev.cmd_id).await;
            if let Err(e) = self
                .api
                .wait_command(&self.id, &dev.cmd_id, CLEANUP_TIMEOUT)
                .await
            {
                tracing::debug!("waiting for the old Vercel dev server to exit: {e}");
            }
        }
    }
}

impl Drop for VercelSandbox {
    fn drop(&mut self) {
        // The VM itself ends with its timeout; only the local forwarding task is ours to end.
        if let Ok(mut slot) = self.dev.try_lock() {
            if let Some(dev) = slot.take() {
                dev.task.abort();
            }
        }
    }
}

fn command_id(v: &Value) -> Result<String> {
    v.pointer("/command/id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| protocol("the command answer has no `command.id`"))
}

/// Polls `GET /v1/sandboxes/{id}` (100 ms, growing to 1 s) until `running`.
async fn wait_running(api: &Api, mut state: SandboxState) -> Result<SandboxState> {
    let deadline = Instant::now() + READY_DEADLINE;
    let mut delay = POLL_FIRST;
    loop {
        match state.status.as_str() {
            "running" => return Ok(state),
            "pending" | "snapshotting" => {}
            other => {
                return Err(SandboxError::Failed(format!(
                    "the Vercel sandbox {} is `{other}` instead of starting",
                    state.id
                )))
            }
        }
        if Instant::now() + delay > deadline {
            return Err(SandboxError::Timeout(format!(
                "the Vercel sandbox {} was not running after {} s",
                state.id,
                READY_DEADLINE.as_secs()
            )));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(POLL_MAX);
        let v = api.json(&Call::on(Method::GET, &state.id, &[])).await?;
        let next = SandboxState::parse(&v)?;
        // Routes come with create; a poll that omits them keeps the ones we have.
        let routes = if next.routes.is_empty() {
            std::mem::take(&mut state.routes)
        } else {
            next.routes
        };
        state = SandboxState { routes, ..next };
    }
}

/// Best-effort stop of a sandbox we are giving up on.
async fn abandon(api: &Api, id: &str) {
    let call = Call::on(Method::POST, id, &["stop"])
        .idempotent(true)
        .timeout(Some(CLEANUP_TIMEOUT));
    if let Err(e) = api.send_ok(&call).await {
        tracing::warn!("could not stop the Vercel sandbox {id} after a failed create: {e}");
    }
}

async fn read_exit(stream: &mut NdjsonStream) -> Result<i32> {
    while let Some(v) = stream.next().await? {
        if let Some(code) = exit_code_of(&v)? {
            return Ok(code);
        }
    }
    Err(protocol(
        "the command stream ended before the command finished (no final `command` record)",
    ))
}

#[async_trait]
impl Sandbox for VercelSandbox {
    fn info(&self) -> SandboxInfo {
        self.info.clone()
    }

    fn project_dir(&self) -> String {
        self.cwd.clone()
    }

    async fn write_files(&self, files: &[SandboxFile]) -> Result<()> {
        self.alive()?;
        if files.is_empty() {
            return Ok(());
        }
        let entries = files
            .iter()
            .map(|f| Ok((clean_path(&f.path)?, f.bytes.clone())))
            .collect::<Result<Vec<_>>>()?;
        let mtime = chrono::Utc::now().timestamp().max(0) as u64;
        // Compressing a whole project takes a while; keep it off the async workers.
        let tarball = tokio::task::spawn_blocking(move || build_tarball(&entries, mtime))
            .await
            .map_err(|e| SandboxError::Io(std::io::Error::other(e)))??;
        let mut call = Call::on(Method::POST, &self.id, &["fs", "write"])
            .idempotent(true)
            .timeout(Some(TRANSFER_TIMEOUT));
        call.body = Body::Gzip(tarball);
        call.headers.push(("x-cwd", self.cwd.clone()));
        self.api.send_ok(&call).await?;
        Ok(())
    }

    async fn delete_files(&self, paths: &[String]) -> Result<()> {
        self.alive()?;
        if paths.is_empty() {
            return Ok(());
        }
        // The API has no delete call: `rm` in the project dir (no shell, so no expansion).
        let mut args = vec!["-f".to_string(), "--".to_string()];
        for p in paths {
            args.push(clean_path(p)?);
        }
        let out = self
            .run(
                &CommandSpec::new("rm", args),
                super::no_lines(),
                CancellationToken::new(),
            )
            .await?;
        super::exited_ok(&out, "deleting files in the sandbox")
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        self.alive()?;
        let path = clean_path(path)?;
        let call = Call::on(Method::POST, &self.id, &["fs", "read"])
            .json(json!({ "path": path, "cwd": self.cwd }))
            .idempotent(true)
            .timeout(Some(TRANSFER_TIMEOUT));
        let resp = self.api.send(&call).await?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.api.error_from(resp, &call).await);
        }
        let ct = crate::http::content_type(&resp);
        if !ct.starts_with("application/octet-stream") {
            return Err(protocol(format!(
                "fs/read answered `{ct}` instead of application/octet-stream"
            )));
        }
        let bytes = resp.bytes().await.map_err(|e| self.api.network(&call, e))?;
        Ok(Some(bytes.to_vec()))
    }

    async fn list_files(&self) -> Result<Vec<String>> {
        // v1 has no listing endpoint; `find` prunes the dirs that are not project sources.
        let find = CommandSpec::new(
            "find",
            [
                ".",
                "-type",
                "d",
                "(",
                "-name",
                "node_modules",
                "-o",
                "-name",
                ".git",
                "-o",
                "-name",
                "dist",
                ")",
                "-prune",
                "-o",
                "-type",
                "f",
                "-print",
            ],
        );
        let out = self
            .run(&find, super::no_lines(), CancellationToken::new())
            .await?;
        super::exited_ok(&out, "listing the sandbox's files")?;
        let mut files: Vec<String> = out
            .stdout
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .map(|l| l.strip_prefix("./").unwrap_or(l))
            .filter(|l| !l.is_empty() && *l != ".")
            .map(str::to_string)
            .collect();
        files.sort();
        files.dedup();
        Ok(files)
    }

    async fn run(
        &self,
        cmd: &CommandSpec,
        sink: LineSink,
        cancel: CancellationToken,
    ) -> Result<CommandOutput> {
        self.alive()?;
        if cancel.is_cancelled() {
            return Err(SandboxError::Cancelled);
        }
        let start = self.start_waiting(cmd);
        tokio::pin!(start);
        let (cmd_id, mut status) = tokio::select! {
            r = &mut start => r?,
            _ = cancel.cancelled() => {
                // The command may be starting already: learn its id (briefly) to kill it.
                if let Ok(Ok((id, _))) = tokio::time::timeout(CLEANUP_TIMEOUT, &mut start).await {
                    self.api.kill_command(&self.id, &id).await;
                }
                return Err(SandboxError::Cancelled);
            }
        };

        // Output (logs) and exit code (the rest of the `wait` stream) arrive on two responses.
        let mut out = Collected::new(true);
        let mut exit_code = None;
        let outcome: Result<()> = {
            let logs = self.api.stream_logs(&self.id, &cmd_id, &sink, &mut out);
            let exit = read_exit(&mut status);
            tokio::pin!(logs);
            tokio::pin!(exit);
            let mut logs_done = false;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break Err(SandboxError::Cancelled),
                    r = &mut logs, if !logs_done => match r {
                        Ok(()) if exit_code.is_some() => break Ok(()),
                        Ok(()) => logs_done = true,
                        Err(e) => break Err(e),
                    },
                    r = &mut exit, if exit_code.is_none() => match r {
                        Ok(code) if logs_done => { exit_code = Some(code); break Ok(()) }
                        Ok(code) => exit_code = Some(code),
                        Err(e) => break Err(e),
                    },
                    _ = tokio::time::sleep(LOGS_GRACE), if exit_code.is_some() => {
                        tracing::warn!("the Vercel log stream of {cmd_id} outlived its command");
                        break Ok(());
                    }
                }
            }
        };
        match (outcome, exit_code) {
            (Ok(()), Some(exit_code)) => Ok(CommandOutput {
                exit_code,
                stdout: out.stdout,
                stderr: out.stderr,
            }),
            (Ok(()), None) => Err(protocol("the command finished without an exit code")),
            (Err(e), _) => {
                // Whatever went wrong, do not leave the command running in the VM.
                if !matches!(e, SandboxError::Gone { .. }) {
                    self.api.kill_command(&self.id, &cmd_id).await;
                }
                Err(e)
            }
        }
    }

    async fn start_dev_server(&self, sink: LineSink) -> Result<()> {
        self.alive()?;
        let mut slot = self.dev.lock().await;
        self.stop_dev_server(&mut slot).await;
        let port = DEV_PORT.to_string();
        let mut vite = CommandSpec::new(
            "npx",
            [
                "vite",
                "--host",
                "0.0.0.0",
                "--port",
                port.as_str(),
                "--strictPort",
            ],
        );
        // The preview-error overlay; without it the app still runs.
        match self.write_files(&[super::preview::overlay_file()]).await {
            Ok(()) => vite.args.extend(super::preview::config_args()),
            Err(e) => tracing::warn!("the preview-error overlay was not written: {e}"),
        }
        let cmd_id = self.start_detached(&vite).await?;
        let (api, sandbox, cmd) = (self.api.clone(), self.id.clone(), cmd_id.clone());
        let task = tokio::spawn(async move {
            let mut out = Collected::new(false);
            match api.stream_logs(&sandbox, &cmd, &sink, &mut out).await {
                Ok(()) => match api.wait_command(&sandbox, &cmd, CALL_TIMEOUT).await {
                    Ok(code) => tracing::info!("the Vercel dev server exited with code {code}"),
                    Err(e) => tracing::debug!("the Vercel dev server's exit code: {e}"),
                },
                Err(e) => tracing::warn!("the Vercel dev server's output stopped: {e}"),
            }
        });
        *slot = Some(DevServer { cmd_id, task });
        Ok(())
    }

    async fn healthy(&self) -> bool {
        if self.stopped.load(Ordering::SeqCst) {
            return false;
        }
        // The public preview route: no token, no teamId (it is not an API call).
        match self
            .api
            .http
            .get(&self.info.url)
            .timeout(HEALTH_TIMEOUT)
            .send()
            .await
        {
            Ok(resp) => resp.status().as_u16() < 500,
            Err(_) => false,
        }
    }

    async fn keep_alive(&self) -> Result<()> {
        self.alive()?;
        let call = Call::on(Method::POST, &self.id, &["extend-timeout"])
            .json(json!({ "duration": KEEP_ALIVE_MS }))
            .idempotent(true);
        self.api.send_ok(&call).await?;
        Ok(())
    }

    async fn kill(&self) -> Result<()> {
        if self.stopped.load(Ordering::SeqCst) {
            return Ok(());
        }
        if let Some(dev) = self.dev.lock().await.take() {
            dev.task.abort(); // stopping the VM ends the command itself
        }
        let call = Call::on(Method::POST, &self.id, &["stop"]).idempotent(true);
        match self.api.send_ok(&call).await {
            Ok(_) | Err(SandboxError::Gone { .. }) => {
                self.stopped.store(true, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
