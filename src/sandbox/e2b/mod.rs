//! E2B cloud sandboxes (PROTOCOLS.md §5): the control-plane REST API (create, keep alive,
//! delete) plus the agent inside the VM, `envd` (file upload/download over plain HTTP, commands
//! over Connect server-streaming RPC).
//!
//! Written against the wire format rather than an SDK (there is no Rust one), so the loopback
//! fake in `tests/fakes/e2b.rs` can check every request. Choices, and why:
//! - Commands run as `/bin/bash -l -c <line>` (what the official SDKs do, so the template's
//!   login profile puts `node` on `PATH`). The line `exec`s the program under `setsid -w`, so it
//!   leads its own process group: cancelling can then kill its children too (npm's scripts,
//!   Vite's esbuild), which envd's `SendSignal` alone does not (it signals one pid).
//! - `list_files` runs `find` with `-prune`: one round trip on every envd version, and
//!   `node_modules` is never walked (a `ListDir` with depth would walk it, then filter).
//! - `healthy` runs `curl` (or `node` when there is no curl) against `127.0.0.1:5173` inside the
//!   VM: it works on real E2B and against the fake alike, and does not depend on the public
//!   preview host, whose edge answers 502 for a closed port.
//! - Template `base` (the SDK default): Debian with Node 20, npm, curl and util-linux. open-lovable
//!   uses `code-interpreter-v1` only because it drives setup through Jupyter; this provider talks
//!   to envd directly. `E2B_TEMPLATE` selects a custom template (e.g. one with deps baked in).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use futures::TryStreamExt;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::http::retry::{ceil_secs, retry_after};

use super::{
    CommandOutput, CommandSpec, LineSink, OutputStream, ProviderKind, Result, Sandbox,
    SandboxError, SandboxFile, SandboxInfo, DEV_PORT,
};

mod api;
mod connect;
use api::*;
use connect::*;

/// The `provider` name in errors.
pub const PROVIDER: &str = "E2B";
/// envd listens here inside every sandbox.
pub const ENVD_PORT: u16 = 49983;
/// Where the project lives inside the VM (the home of the template's default user).
pub const PROJECT_DIR: &str = "/home/user/app";
pub const DEFAULT_DOMAIN: &str = "e2b.app";
pub const DEFAULT_TEMPLATE: &str = "base";
/// Sandbox lifetime set at create and by every `keep_alive` (E2B counts it from "now").
pub const DEFAULT_TIMEOUT_SECS: u64 = 900;
pub const KEY_VAR: &str = "E2B_API_KEY";
const KEYS_PAGE: &str = "https://e2b.dev/dashboard?tab=keys";

/// The OS user envd runs commands and owns files as (`Authorization: Basic base64("user:")`).
const USER: &str = "user";
const USER_BASIC_AUTH: &str = "Basic dXNlcjo=";

const CREATE_ATTEMPTS: u32 = 3;
/// A `retry-after` longer than this is reported (`RateLimited`) instead of waited for.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// envd pings every `Keepalive-Ping-Interval` seconds; silence far beyond that is a dead link.
const KEEPALIVE_SECS: u64 = 50;
const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(KEEPALIVE_SECS * 5 / 2);
/// How long a cancelled command may take to learn its pid and be killed.
const KILL_BUDGET: Duration = Duration::from_secs(4);
const HEALTH_TIMEOUT: Duration = Duration::from_secs(8);
/// A previous dev server gets this long to exit (and free its port) after SIGKILL.
const DEV_STOP_WAIT: Duration = Duration::from_secs(3);
/// Reattach attempts after the dev server's output stream is cut (0.2 s, doubling).
const DEV_REATTACH_TRIES: u32 = 5;
const UPLOAD_CONCURRENCY: usize = 4;
/// Bounds on what a remote can make us buffer.
const MAX_ENVELOPE: usize = 16 * 1024 * 1024;
const MAX_LINE: usize = 1024 * 1024;
const MAX_CAPTURE: usize = 8 * 1024 * 1024;
/// Directories `list_files` leaves out (dependencies, VCS, build output), as `archive.rs` does.
const SKIP_DIRS: &[&str] = &["node_modules", ".git", "dist", "build", ".vite", ".next"];

// ---------------------------------------------------------------------------------------------
// Configuration

/// Where and how to reach E2B. `Debug` never shows the key.
#[derive(Clone)]
pub struct E2bConfig {
    pub api_key: String,
    /// Control plane, no trailing slash (`https://api.e2b.app`).
    pub api_url: String,
    /// Sandbox domain, used for envd and preview hosts when the create answer has none.
    pub domain: String,
    /// envd base URL override (`E2B_SANDBOX_URL`); requests are then routed by header.
    pub sandbox_url: Option<String>,
    pub template: String,
    pub timeout_secs: u64,
}

impl fmt::Debug for E2bConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("E2bConfig")
            .field("api_key", &"<redacted>")
            .field("api_url", &self.api_url)
            .field("domain", &self.domain)
            .field("sandbox_url", &self.sandbox_url)
            .field("template", &self.template)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

impl E2bConfig {
    /// Reads `E2B_API_KEY` (required), `E2B_DOMAIN`, `E2B_API_URL`, `E2B_SANDBOX_URL` and
    /// `E2B_TEMPLATE` through `get` (the environment, `.env` and settings merged by the caller);
    /// empty values count as unset.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<E2bConfig, SandboxError> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let api_key = var(KEY_VAR).ok_or_else(|| {
            SandboxError::Config(format!(
                "{KEY_VAR} is not set: create an API key at {KEYS_PAGE} and put it in \
                 {KEY_VAR} (environment or the project's .env) to use E2B sandboxes"
            ))
        })?;
        if api_key.chars().any(|c| c.is_control()) {
            return Err(SandboxError::Config(format!(
                "{KEY_VAR} contains control characters; copy the key again from {KEYS_PAGE}"
            )));
        }
        let domain = var("E2B_DOMAIN").unwrap_or_else(|| DEFAULT_DOMAIN.to_string());
        if domain.contains("://") || domain.contains('/') || domain.contains(char::is_whitespace) {
            return Err(SandboxError::Config(format!(
                "E2B_DOMAIN must be a bare domain such as {DEFAULT_DOMAIN}, not {domain:?}"
            )));
        }
        let api_url = match var("E2B_API_URL") {
            Some(u) => checked_url("E2B_API_URL", &u)?,
            None => format!("https://api.{domain}"),
        };
        let sandbox_url = var("E2B_SANDBOX_URL")
            .map(|u| checked_url("E2B_SANDBOX_URL", &u))
            .transpose()?;
        for u in std::iter::once(&api_url).chain(sandbox_url.as_ref()) {
            if u.starts_with("http://") && !is_loopback_url(u) {
                tracing::warn!("E2B endpoint {u} is plain http: credentials travel unencrypted");
            }
        }
        Ok(E2bConfig {
            api_key,
            api_url,
            domain,
            sandbox_url,
            template: var("E2B_TEMPLATE").unwrap_or_else(|| DEFAULT_TEMPLATE.to_string()),
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        })
    }
}

fn checked_url(var: &str, url: &str) -> Result<String> {
    let ok = ["http://", "https://"]
        .iter()
        .any(|s| url.len() > s.len() && url.starts_with(s))
        && reqwest::Url::parse(url).is_ok();
    if !ok {
        return Err(SandboxError::Config(format!(
            "{var} must be an http(s) URL, got {url:?}"
        )));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn is_loopback_url(url: &str) -> bool {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]")
}

// ---------------------------------------------------------------------------------------------
// The sandbox

struct DevServer {
    pid: u32,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// A running E2B sandbox (a Firecracker VM) with the project under [`PROJECT_DIR`].
pub struct E2bSandbox {
    http: reqwest::Client,
    cfg: E2bConfig,
    info: SandboxInfo,
    envd: Envd,
    killed: AtomicBool,
    /// Held across stop+start so two restarts cannot both leave a server running.
    dev: tokio::sync::Mutex<Option<DevServer>>,
    /// Parent of every dev server's stop token; cancelled on drop.
    shutdown: CancellationToken,
}

#[derive(serde::Deserialize)]
struct CreateAnswer {
    #[serde(rename = "sandboxID")]
    sandbox_id: String,
    #[serde(rename = "envdAccessToken", default)]
    envd_access_token: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(rename = "envdVersion", default)]
    envd_version: Option<String>,
}

fn api_headers(cfg: &E2bConfig) -> Result<HeaderMap> {
    let mut h = HeaderMap::new();
    h.insert("x-api-key", secret_header(&cfg.api_key, KEY_VAR)?);
    Ok(h)
}

/// `min(0.25 * 2^n, 2)` s, minus up to a quarter of jitter.
fn backoff(retry: u32) -> Duration {
    let base = (0.25 * 2f64.powi(retry.min(8) as i32)).min(2.0);
    Duration::from_secs_f64(base * (1.0 - 0.25 * fastrand::f64()))
}

/// Creates a sandbox from `cfg.template`, makes the project dir, and answers the handle.
/// `POST /sandboxes` is retried (at most 3 attempts) on 429/500/502/503/504 and on connection
/// failures, waiting `retry-after` when it is at most 10 s; if a later step fails, the new
/// sandbox is deleted rather than left to run out its timeout.
pub async fn create(http: reqwest::Client, cfg: E2bConfig) -> Result<E2bSandbox, SandboxError> {
    let headers = api_headers(&cfg)?;
    let body = json!({
        "templateID": cfg.template,
        "timeout": cfg.timeout_secs,
        "secure": true,
        "allow_internet_access": true,
        "metadata": {"createdBy": "builder-lsp"},
    });
    let url = format!("{}/sandboxes", cfg.api_url);
    let mut attempt = 0;
    let answer: CreateAnswer = loop {
        attempt += 1;
        let last = attempt >= CREATE_ATTEMPTS;
        let sent = http
            .post(&url)
            .headers(headers.clone())
            .json(&body)
            .timeout(CREATE_TIMEOUT)
            .send()
            .await;
        let resp = match sent {
            // Only a refused connection surely created nothing; a timeout may have.
            Err(e) if e.is_connect() && !last => {
                let wait = backoff(attempt - 1);
                tracing::warn!("E2B create: {}; retrying in {wait:?}", error_chain(&e));
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(e) => return Err(request_error(e, "sandbox create", CREATE_TIMEOUT)),
            Ok(r) => r,
        };
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            let text = resp
                .text()
                .await
                .map_err(|e| request_error(e, "sandbox create", CREATE_TIMEOUT))?;
            break serde_json::from_str(&text).map_err(|e| {
                protocol(format!("the create answer lacks the sandbox fields ({e})"))
            })?;
        }
        let hdrs = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        let err = match status {
            // The one create failure a setting fixes.
            404 => SandboxError::Config(format!(
                "E2B has no template {:?} ({}); set E2B_TEMPLATE to one your team can use, \
                 or leave it unset for {DEFAULT_TEMPLATE:?}",
                cfg.template,
                scrub(&body_message(&text), &[&cfg.api_key])
            )),
            _ => status_error(status, &hdrs, &text, Origin::Create, &[&cfg.api_key]),
        };
        if last || !matches!(status, 429 | 500 | 502 | 503 | 504) {
            return Err(err);
        }
        let wait = match retry_after(&hdrs) {
            Some(d) if d > MAX_RETRY_WAIT => return Err(err),
            Some(d) => d,
            None => backoff(attempt - 1),
        };
        tracing::warn!("E2B create answered {status}; retrying in {wait:?}");
        tokio::time::sleep(wait).await;
    };

    let id = answer.sandbox_id;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(protocol(format!(
            "the create answer has an odd sandbox id {id:?}"
        )));
    }
    let domain = answer
        .domain
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| cfg.domain.clone());
    let envd_base = match &cfg.sandbox_url {
        Some(u) => u.clone(),
        // The SDK rule: E2B's own domains share one host routed by header.
        None if ["e2b.app", "e2b.dev", "e2b.pro", "e2b-staging.dev"].contains(&domain.as_str()) => {
            format!("https://sandbox.{domain}")
        }
        None => format!("https://{ENVD_PORT}-{id}.{domain}"),
    };
    let mut envd_headers = HeaderMap::new();
    let mut secrets = vec![cfg.api_key.clone()];
    if let Some(t) = answer.envd_access_token.filter(|t| !t.is_empty()) {
        envd_headers.insert(
            "x-access-token",
            secret_header(&t, "the envd access token")?,
        );
        secrets.push(t);
    }
    envd_headers.insert(
        HeaderName::from_static("e2b-sandbox-id"),
        HeaderValue::from_str(&id).map_err(|_| protocol("unusable sandbox id"))?,
    );
    envd_headers.insert(
        HeaderName::from_static("e2b-sandbox-port"),
        HeaderValue::from(ENVD_PORT),
    );
    envd_headers.insert(
        reqwest::header::AUTHORIZATION,
        HeaderValue::from_static(USER_BASIC_AUTH),
    );
    tracing::info!(
        sandbox = %id,
        envd = answer.envd_version.as_deref().unwrap_or("?"),
        "E2B sandbox created"
    );
    let sandbox = E2bSandbox {
        info: SandboxInfo {
            sandbox_id: id.clone(),
            provider: ProviderKind::E2b,
            url: format!("https://{DEV_PORT}-{id}.{domain}"),
            created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            isolation: "vm".into(),
        },
        envd: Envd {
            http: http.clone(),
            base: envd_base,
            sandbox_id: id,
            headers: envd_headers,
            secrets,
        },
        http,
        cfg,
        killed: AtomicBool::new(false),
        dev: tokio::sync::Mutex::new(None),
        shutdown: CancellationToken::new(),
    };
    if let Err(e) = sandbox.envd.make_dir(PROJECT_DIR).await {
        if let Err(k) = sandbox.kill().await {
            tracing::warn!("E2B: deleting the half-made sandbox failed: {k}");
        }
        return Err(e);
    }
    Ok(sandbox)
}

impl E2bSandbox {
    pub fn id(&self) -> &str {
        &self.info.sandbox_id
    }

    fn alive(&self) -> Result<()> {
        if self.killed.load(Ordering::SeqCst) {
            return Err(self.envd.gone());
        }
        Ok(())
    }

    fn api_url(&self, suffix: &str) -> String {
        format!("{}/sandboxes/{}{suffix}", self.cfg.api_url, self.id())
    }

    async fn api_error(&self, resp: reqwest::Response) -> SandboxError {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        status_error(
            status,
            &headers,
            &body,
            Origin::Sandbox(self.id()),
            &[&self.cfg.api_key],
        )
    }

    /// Stops the dev server task; with `kill_remote`, also kills its process and waits (a
    /// little) for it to exit, so a successor can bind the port.
    async fn stop_dev(&self, slot: &mut Option<DevServer>, kill_remote: bool) {
        let Some(dev) = slot.take() else { return };
        let DevServer {
            pid,
            stop,
            mut task,
        } = dev;
        if kill_remote {
            self.envd.kill_tree(pid).await;
            if tokio::time::timeout(DEV_STOP_WAIT, &mut task).await.is_ok() {
                return;
            }
        }
        stop.cancel();
        if tokio::time::timeout(Duration::from_secs(1), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for E2bSandbox {
    fn drop(&mut self) {
        // Ends the dev server's output pump; the VM itself runs out its timeout.
        self.shutdown.cancel();
    }
}

/// Forwards a background process's output to `sink` until it ends or `stop` fires.
/// Forwards the dev server's output to `sink` for as long as it runs. A stream cut before the
/// process ended (the edge proxy, a network blip) is reattached with `Connect`, so `logs` and
/// the Vite-error diagnostics keep coming; it gives up when the process or sandbox is gone.
async fn pump_dev(
    envd: Envd,
    pid: u32,
    mut stream: ProcessStream,
    sink: LineSink,
    stop: CancellationToken,
) {
    let (mut out, mut err) = (Pipe::default(), Pipe::default());
    let mut failures = 0u32;
    'streams: loop {
        let cut = loop {
            let ev = tokio::select! {
                ev = stream.next() => ev,
                _ = stop.cancelled() => break 'streams,
            };
            match ev {
                Ok(Some(ProcEvent::Stdout(b))) => {
                    failures = 0;
                    out.push(&b, |l| sink(OutputStream::Stdout, l))
                }
                Ok(Some(ProcEvent::Stderr(b))) => {
                    failures = 0;
                    err.push(&b, |l| sink(OutputStream::Stderr, l))
                }
                Ok(Some(ProcEvent::End(e))) => {
                    tracing::info!(code = e.exit_code, status = %e.status, "E2B dev server exited");
                    break 'streams;
                }
                Ok(Some(_)) => {}
                Ok(None) => break "the stream ended before the process did".to_string(),
                // Connect answers an unknown pid inside the stream: the process is gone.
                Err(SandboxError::Gone { .. } | SandboxError::NotFound(_)) => break 'streams,
                Err(e) => break e.to_string(),
            }
        };
        // Reattach, with a growing pause; a process or sandbox that is gone ends it.
        loop {
            failures += 1;
            if failures > DEV_REATTACH_TRIES {
                tracing::warn!("E2B dev server output stopped: {cut}");
                break 'streams;
            }
            let pause = Duration::from_millis(200 << (failures - 1).min(4));
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.cancelled() => break 'streams,
            }
            match envd.connect(pid).await {
                Ok(s) => {
                    tracing::info!("E2B dev server output reattached after: {cut}");
                    stream = s;
                    continue 'streams;
                }
                Err(SandboxError::Gone { .. } | SandboxError::NotFound(_)) => break 'streams,
                Err(e) => tracing::debug!("reattaching to the dev server failed: {e}"),
            }
        }
    }
    out.finish(|l| sink(OutputStream::Stdout, l));
    err.finish(|l| sink(OutputStream::Stderr, l));
}

#[async_trait]
impl Sandbox for E2bSandbox {
    fn info(&self) -> SandboxInfo {
        self.info.clone()
    }

    fn project_dir(&self) -> String {
        PROJECT_DIR.to_string()
    }

    async fn write_files(&self, files: &[SandboxFile]) -> Result<()> {
        self.alive()?;
        let planned = files
            .iter()
            .map(|f| project_path(&f.path).map(|abs| (abs, f.bytes.as_slice())))
            .collect::<Result<Vec<_>>>()?;
        futures::stream::iter(planned.into_iter().map(Ok))
            .try_for_each_concurrent(UPLOAD_CONCURRENCY, |(abs, bytes)| async move {
                self.envd.upload(&abs, bytes).await
            })
            .await
    }

    async fn delete_files(&self, paths: &[String]) -> Result<()> {
        self.alive()?;
        let planned = paths
            .iter()
            .map(|p| project_path(p))
            .collect::<Result<Vec<_>>>()?;
        for abs in planned {
            self.envd.remove(&abs).await?;
        }
        Ok(())
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let abs = project_path(path)?;
        self.alive()?;
        self.envd.download(&abs).await
    }

    async fn list_files(&self) -> Result<Vec<String>> {
        self.alive()?;
        let line = exec_line(&argv_line("find", &find_args()));
        let out = self
            .envd
            .run_line(
                &line,
                &HashMap::new(),
                &super::no_lines(),
                &CancellationToken::new(),
                None,
            )
            .await?;
        super::exited_ok(&out, "listing the sandbox files")?;
        let mut files: Vec<String> = out
            .stdout
            .split('\0')
            .filter_map(|p| p.strip_prefix("./"))
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        files.sort();
        Ok(files)
    }

    async fn run(
        &self,
        cmd: &CommandSpec,
        sink: LineSink,
        cancel: CancellationToken,
    ) -> Result<CommandOutput> {
        self.alive()?;
        self.envd
            .run_line(&command_line(cmd), &cmd.env, &sink, &cancel, None)
            .await
    }

    async fn start_dev_server(&self, sink: LineSink) -> Result<()> {
        self.alive()?;
        let mut slot = self.dev.lock().await;
        self.stop_dev(&mut slot, true).await;
        // The preview-error overlay; without it the app still runs.
        let overlay = match self.write_files(&[super::preview::overlay_file()]).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("the preview-error overlay was not written: {e}");
                false
            }
        };
        let mut stream = self
            .envd
            .start(&dev_server_line(overlay), &HashMap::new(), None)
            .await?;
        let pid = stream
            .pid()
            .await?
            .ok_or_else(|| protocol("the dev server stream ended before the process started"))?;
        let stop = self.shutdown.child_token();
        let task = tokio::spawn(pump_dev(self.envd.clone(), pid, stream, sink, stop.clone()));
        *slot = Some(DevServer { pid, stop, task });
        Ok(())
    }

    async fn healthy(&self) -> bool {
        if self.alive().is_err() {
            return false;
        }
        let (line, envs, sink, never) = (
            health_line(),
            HashMap::new(),
            super::no_lines(),
            CancellationToken::new(),
        );
        let probe = self.envd.run_line(
            &line,
            &envs,
            &sink,
            &never,
            Some(HEALTH_TIMEOUT.as_millis() as u64),
        );
        match tokio::time::timeout(HEALTH_TIMEOUT, probe).await {
            // Any HTTP status means the server answers (curl prints 000 when nothing does).
            Ok(Ok(out)) => {
                out.exit_code == 0
                    && out
                        .stdout
                        .trim()
                        .parse::<u16>()
                        .is_ok_and(|s| (100..600).contains(&s))
            }
            _ => false,
        }
    }

    async fn keep_alive(&self) -> Result<()> {
        self.alive()?;
        let resp = self
            .http
            .post(self.api_url("/timeout"))
            .headers(api_headers(&self.cfg)?)
            .json(&json!({ "timeout": self.cfg.timeout_secs }))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| request_error(e, "sandbox keep-alive", REQUEST_TIMEOUT))?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self.api_error(resp).await)
    }

    async fn kill(&self) -> Result<()> {
        if self.killed.load(Ordering::SeqCst) {
            return Ok(());
        }
        {
            // The VM takes its processes with it: only the local pump needs stopping.
            let mut slot = self.dev.lock().await;
            self.stop_dev(&mut slot, false).await;
        }
        let resp = self
            .http
            .delete(self.api_url(""))
            .headers(api_headers(&self.cfg)?)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| request_error(e, "sandbox kill", REQUEST_TIMEOUT))?;
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_FOUND {
            self.killed.store(true, Ordering::SeqCst);
            tracing::info!(sandbox = %self.id(), "E2B sandbox killed");
            return Ok(());
        }
        Err(self.api_error(resp).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events_bytes() -> Vec<u8> {
        let msgs = [
            json!({"event":{"start":{"pid":341}}}),
            json!({"event":{"data":{"stdout":"aGkK"}}}),
            json!({"event":{"keepalive":{}}}),
            json!({"event":{"data":{"stderr":"b29wcwo="}}}),
            json!({"event":{"end":{"exitCode":2,"exited":true,"status":"exit status 2"}}}),
        ];
        let mut out = Vec::new();
        for m in msgs {
            out.extend(encode_envelope(0, m.to_string().as_bytes()));
        }
        out.extend(encode_envelope(FLAG_END_STREAM, b"{}"));
        out
    }

    fn expected_events() -> Vec<ProcEvent> {
        vec![
            ProcEvent::Start { pid: 341 },
            ProcEvent::Stdout(b"hi\n".to_vec()),
            ProcEvent::Keepalive,
            ProcEvent::Stderr(b"oops\n".to_vec()),
            ProcEvent::End(EndInfo {
                exit_code: 2,
                exited: true,
                status: "exit status 2".into(),
            }),
        ]
    }

    /// Feeds `pieces` in order, draining after each; answers the events and whether the
    /// end-stream envelope was seen.
    fn decode(pieces: &[&[u8]]) -> (Vec<ProcEvent>, bool) {
        let mut d = EnvelopeDecoder::default();
        let (mut evs, mut ended) = (Vec::new(), false);
        for p in pieces {
            d.feed(p);
            while let Some(env) = d.next().expect("valid stream") {
                assert!(!ended, "nothing may follow the end-stream envelope");
                if env.flags & FLAG_END_STREAM != 0 {
                    assert_eq!(env.data, b"{}");
                    ended = true;
                } else if let Some(ev) = parse_event(&env.data).expect("valid event") {
                    evs.push(ev);
                }
            }
        }
        assert_eq!(d.buffered(), 0);
        (evs, ended)
    }

    #[test]
    fn envelopes_split_at_every_byte_boundary() {
        let bytes = events_bytes();
        for i in 0..=bytes.len() {
            let (evs, ended) = decode(&[&bytes[..i], &bytes[i..]]);
            assert_eq!(evs, expected_events(), "split at {i}");
            assert!(ended, "split at {i}");
        }
        // Two cuts at once, every pair on a stride, and one byte at a time.
        for i in (0..bytes.len()).step_by(3) {
            for j in (i..=bytes.len()).step_by(5) {
                let (evs, ended) = decode(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(evs, expected_events(), "splits at {i},{j}");
                assert!(ended);
            }
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode(&singles).0, expected_events());
    }

    #[test]
    fn a_truncated_stream_is_not_complete() {
        let bytes = events_bytes();
        let (evs, ended) = {
            let mut d = EnvelopeDecoder::default();
            d.feed(&bytes[..bytes.len() - 3]);
            let mut evs = Vec::new();
            let mut ended = false;
            while let Some(env) = d.next().expect("valid") {
                ended |= env.flags & FLAG_END_STREAM != 0;
                evs.extend(parse_event(&env.data).expect("valid"));
            }
            assert_eq!(d.buffered(), 5 + 2 - 3);
            (evs, ended)
        };
        assert_eq!(evs, expected_events());
        assert!(!ended);
    }

    #[test]
    fn compressed_unknown_and_oversized_envelopes_are_refused_from_the_header() {
        let mut d = EnvelopeDecoder::default();
        d.feed(&[FLAG_COMPRESSED, 0, 0, 0, 9]); // body not even there yet
        assert!(d.next().unwrap_err().contains("compressed"));
        let mut d = EnvelopeDecoder::default();
        d.feed(&[0x80, 0, 0, 0, 0]);
        assert!(d.next().unwrap_err().contains("flags"));
        let mut d = EnvelopeDecoder::default();
        d.feed(&[0, 0xff, 0xff, 0xff, 0xff]);
        assert!(d.next().unwrap_err().contains("limit"));
    }

    #[test]
    fn events_follow_proto3_json() {
        let end = parse_event(br#"{"event":{"end":{"exited":true,"status":"exit status 0"}}}"#);
        assert_eq!(
            end.unwrap(),
            Some(ProcEvent::End(EndInfo {
                exit_code: 0,
                exited: true,
                status: "exit status 0".into()
            }))
        );
        let killed = parse_event(br#"{"event":{"end":{"exitCode":-1,"status":"signal: killed"}}}"#);
        assert!(matches!(
            killed.unwrap(),
            Some(ProcEvent::End(EndInfo {
                exit_code: -1,
                exited: false,
                ..
            }))
        ));
        let quoted = parse_event(br#"{"event":{"start":{"pid":"77"}}}"#).unwrap();
        assert_eq!(quoted, Some(ProcEvent::Start { pid: 77 }));
        // URL-safe and unpadded base64 are accepted like protojson does.
        let url = parse_event(br#"{"event":{"data":{"stdout":"-_8"}}}"#).unwrap();
        assert_eq!(url, Some(ProcEvent::Stdout(vec![0xfb, 0xff])));
        assert_eq!(parse_event(br#"{"event":{"future":{}}}"#).unwrap(), None);
        assert!(parse_event(br#"{"event":{"start":{}}}"#).is_err());
        assert!(parse_event(b"{not json").is_err());
        assert!(parse_event(br#"{"event":{"data":{"stdout":"***"}}}"#).is_err());
    }

    fn collect(chunks: &[&[u8]]) -> (Vec<String>, String) {
        let mut p = Pipe::default();
        let mut lines = Vec::new();
        for c in chunks {
            p.push(c, |l| lines.push(l.to_string()));
        }
        let all = p.finish(|l| lines.push(l.to_string()));
        (lines, all)
    }

    #[test]
    fn lines_are_whole_across_chunks_and_utf8_splits() {
        let text = "héllo wörld\r\nsecond line\n\nlast";
        let b = text.as_bytes();
        for i in 0..=b.len() {
            let (lines, all) = collect(&[&b[..i], &b[i..]]);
            assert_eq!(
                lines,
                ["héllo wörld", "second line", "", "last"],
                "split at {i}"
            );
            assert_eq!(all, text);
        }
    }

    #[test]
    fn shell_quote_is_posix() {
        assert_eq!(shell_quote("npm"), "npm");
        assert_eq!(shell_quote("src/App.jsx"), "src/App.jsx");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote("a\nb"), "'a\nb'");
    }

    /// The exact lines this client sends, run by a real bash where there is one.
    fn bash(line: &str, dir: &std::path::Path) -> Option<std::process::Output> {
        if !std::path::Path::new("/bin/bash").exists() {
            return None;
        }
        std::process::Command::new("/bin/bash")
            .args(["-c", line])
            .current_dir(dir)
            .output()
            .ok()
    }

    #[test]
    fn command_lines_work_in_a_real_shell() {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            "plain",
            "two words",
            "it's",
            "$HOME `id` \"q\"",
            "",
            "a\nb",
            "-x",
        ];
        let spec = CommandSpec::new("printf", ["[%s]\n"].into_iter().chain(args));
        let Some(out) = bash(&command_line(&spec), dir.path()) else {
            return;
        };
        let expected: String = args.iter().map(|a| format!("[{a}]\n")).collect();
        assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
        assert!(out.status.success());

        let fail = CommandSpec::new("sh", ["-c", "echo bad >&2; exit 3"]);
        let out = bash(&command_line(&fail), dir.path()).unwrap();
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "bad\n");

        let out = bash(&dev_server_line(false), dir.path()).unwrap();
        assert_eq!(out.status.code(), Some(127));
        assert!(String::from_utf8_lossy(&out.stderr).contains("run npm install first"));

        let out = bash(&kill_group_line(999_999), dir.path()).unwrap();
        assert!(out.status.success());
    }

    #[test]
    fn find_skips_dependencies_and_build_output() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "index.html",
            "src/App.jsx",
            "src/deep/x y.js",
            "node_modules/react/index.js",
            "src/node_modules/x.js",
            ".git/HEAD",
            "dist/assets/a.js",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let Some(out) = bash(&exec_line(&argv_line("find", &find_args())), dir.path()) else {
            return;
        };
        let mut got: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split('\0')
            .filter_map(|p| p.strip_prefix("./").map(str::to_string))
            .collect();
        got.sort();
        assert_eq!(got, ["index.html", "src/App.jsx", "src/deep/x y.js"]);
    }

    #[test]
    fn project_paths_stay_inside() {
        assert_eq!(
            project_path("src/App.jsx").unwrap(),
            "/home/user/app/src/App.jsx"
        );
        assert_eq!(
            project_path("./a//b.txt").unwrap(),
            "/home/user/app/a/b.txt"
        );
        assert_eq!(
            project_path(r"src\x.js").unwrap(),
            "/home/user/app/src/x.js"
        );
        for bad in ["../x", "a/../../x", "/etc/passwd", "", ".", "a\0b", "a\nb"] {
            assert!(project_path(bad).is_err(), "{bad:?}");
        }
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn config_defaults_overrides_and_redaction() {
        let c = E2bConfig::from_env(&env(&[("E2B_API_KEY", " e2b_abc123 ")])).unwrap();
        assert_eq!(c.api_key, "e2b_abc123");
        assert_eq!(c.api_url, "https://api.e2b.app");
        assert_eq!(c.domain, "e2b.app");
        assert_eq!(c.template, "base");
        assert_eq!(c.sandbox_url, None);
        assert!(!format!("{c:?}").contains("abc123"));

        let c = E2bConfig::from_env(&env(&[
            ("E2B_API_KEY", "e2b_abc123"),
            ("E2B_DOMAIN", "e2b.dev"),
            ("E2B_SANDBOX_URL", "http://127.0.0.1:9/"),
            ("E2B_TEMPLATE", "my-vite"),
        ]))
        .unwrap();
        assert_eq!(c.api_url, "https://api.e2b.dev");
        assert_eq!(c.sandbox_url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(c.template, "my-vite");

        let e = E2bConfig::from_env(&env(&[("E2B_API_KEY", "")])).unwrap_err();
        assert!(matches!(e, SandboxError::Config(ref m) if m.contains("E2B_API_KEY")));
        for (var, val) in [
            ("E2B_API_URL", "api.e2b.app"),
            ("E2B_SANDBOX_URL", "ftp://x"),
            ("E2B_DOMAIN", "https://e2b.app"),
        ] {
            let e = E2bConfig::from_env(&env(&[("E2B_API_KEY", "k"), (var, val)])).unwrap_err();
            assert!(e.to_string().contains(var), "{e}");
        }
    }

    #[test]
    fn error_mapping() {
        let h = HeaderMap::new();
        let id = Origin::Sandbox("sbx1");
        assert!(matches!(
            status_error(
                401,
                &h,
                r#"{"code":401,"message":"Invalid API key"}"#,
                id,
                &[]
            ),
            SandboxError::Auth {
                var: "E2B_API_KEY",
                status: 401,
                ..
            }
        ));
        assert!(matches!(
            status_error(404, &h, "", id, &[]),
            SandboxError::Gone { .. }
        ));
        assert!(matches!(
            status_error(404, &h, "{}", Origin::Create, &[]),
            SandboxError::Api { status: 404, .. }
        ));
        assert!(matches!(
            status_error(502, &h, "bad gateway", Origin::Envd("sbx1"), &[]),
            SandboxError::Gone { .. }
        ));
        let mut ra = HeaderMap::new();
        ra.insert("retry-after", HeaderValue::from_static("1.5"));
        assert!(matches!(
            status_error(429, &ra, "", Origin::Create, &[]),
            SandboxError::RateLimited {
                retry_after_secs: Some(2),
                ..
            }
        ));
        let e = status_error(
            500,
            &h,
            r#"{"code":500,"message":"boom for e2b_secretkey","error_code":"internal_server_error"}"#,
            Origin::Create,
            &["e2b_secretkey"],
        );
        assert_eq!(e.to_string(), "E2B API error 500: boom for [redacted]");
        assert!(matches!(
            status_error(
                404,
                &h,
                r#"{"code":"not_found","message":"no pid"}"#,
                Origin::Envd("s"),
                &[]
            ),
            SandboxError::NotFound(_)
        ));
        assert!(matches!(
            connect_error("already_exists", "x", "s", &[]),
            SandboxError::Api { status: 409, .. }
        ));
        assert!(matches!(
            connect_error("unavailable", "x", "s", &[]),
            SandboxError::Gone { .. }
        ));
        assert!(matches!(
            connect_error("deadline_exceeded", "x", "s", &[]),
            SandboxError::Timeout(_)
        ));
    }

    #[test]
    fn backoff_is_short_and_jittered() {
        for n in 0..5 {
            let d = backoff(n).as_secs_f64();
            let base = (0.25 * 2f64.powi(n as i32)).min(2.0);
            assert!(d <= base && d >= base * 0.75, "{n}: {d}");
        }
    }
}
