//! Vercel Sandbox provider over the v1 REST API (PROTOCOLS.md §6): an ephemeral VM created
//! with `runtime: node22` and port 5173 declared, commands run through `/cmd` with their output
//! streamed as NDJSON, files written as one gzip'd tarball per call, preview on the route the
//! API hands out for port 5173. Tested against `tests/fakes/vercel.rs`, a loopback fake of the
//! same API, so every byte on the wire here is one the fake checks.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use reqwest::Method;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::http::retry::{ceil_secs, retry_after};

use super::{
    CommandOutput, CommandSpec, LineSink, OutputStream, ProviderKind, Result, Sandbox,
    SandboxError, SandboxFile, SandboxInfo, DEV_PORT,
};

const PROVIDER: &str = "Vercel";

pub const DEFAULT_API_URL: &str = "https://vercel.com/api";
pub const DEFAULT_RUNTIME: &str = "node22";
/// 15 minutes: well inside every plan's maximum (Hobby allows 45), so create never fails on
/// it; [`Sandbox::keep_alive`] extends it while the user works.
pub const DEFAULT_TIMEOUT_MS: u64 = 15 * 60 * 1000;
pub const DEFAULT_VCPUS: u32 = 2;
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

/// Where and as whom to create sandboxes. `Debug` prints the token as `***`.
#[derive(Clone)]
pub struct VercelConfig {
    /// Without a trailing slash, e.g. `https://vercel.com/api`.
    pub api_url: String,
    /// Secret: sent only as the bearer header, scrubbed from every message.
    pub token: String,
    /// The variable the token came from, named by auth errors.
    pub token_var: &'static str,
    pub team_id: String,
    pub project_id: String,
    /// Sandbox lifetime in milliseconds (the API's unit).
    pub timeout_ms: u64,
    pub runtime: String,
    pub vcpus: u32,
}

impl fmt::Debug for VercelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VercelConfig")
            .field("api_url", &self.api_url)
            .field("token", &"***")
            .field("token_var", &self.token_var)
            .field("team_id", &self.team_id)
            .field("project_id", &self.project_id)
            .field("timeout_ms", &self.timeout_ms)
            .field("runtime", &self.runtime)
            .field("vcpus", &self.vcpus)
            .finish()
    }
}

impl VercelConfig {
    /// Reads the SDK's variables: `VERCEL_TOKEN` + `VERCEL_TEAM_ID` + `VERCEL_PROJECT_ID`, or
    /// else `VERCEL_OIDC_TOKEN` (whose claims name team and project); `VERCEL_API_URL`
    /// overrides the endpoint (tests point it at loopback). Blank values count as unset.
    pub fn from_env(get: &dyn Fn(&str) -> Option<String>) -> Result<VercelConfig> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let api_url = var("VERCEL_API_URL")
            .unwrap_or_else(|| DEFAULT_API_URL.to_string())
            .trim_end_matches('/')
            .to_string();
        check_api_url(&api_url)?;

        let (token, team, project) = (
            var("VERCEL_TOKEN"),
            var("VERCEL_TEAM_ID"),
            var("VERCEL_PROJECT_ID"),
        );
        let (token, token_var, team_id, project_id) = match (token, team, project) {
            (Some(t), Some(team), Some(p)) => (t, "VERCEL_TOKEN", team, p),
            (t, team, p) => match var("VERCEL_OIDC_TOKEN") {
                Some(oidc) => {
                    let (team, project) = oidc_claims(&oidc)?;
                    (oidc, "VERCEL_OIDC_TOKEN", team, project)
                }
                None => return Err(missing_vars(t.is_none(), team.is_none(), p.is_none())),
            },
        };
        if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(SandboxError::Config(format!(
                "{token_var} contains characters that cannot be sent in an HTTP header"
            )));
        }
        Ok(VercelConfig {
            api_url,
            token,
            token_var,
            team_id,
            project_id,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            runtime: DEFAULT_RUNTIME.to_string(),
            vcpus: DEFAULT_VCPUS,
        })
    }
}

fn missing_vars(token: bool, team: bool, project: bool) -> SandboxError {
    let missing: Vec<&str> = [
        ("VERCEL_TOKEN", token),
        ("VERCEL_TEAM_ID", team),
        ("VERCEL_PROJECT_ID", project),
    ]
    .into_iter()
    .filter_map(|(name, gone)| gone.then_some(name))
    .collect();
    let message = if missing.len() == 3 {
        "the Vercel sandbox needs VERCEL_TOKEN, VERCEL_TEAM_ID and VERCEL_PROJECT_ID, or \
         VERCEL_OIDC_TOKEN (`vercel env pull` writes it)"
            .to_string()
    } else {
        format!(
            "the Vercel sandbox needs {} as well (VERCEL_TOKEN, VERCEL_TEAM_ID and \
             VERCEL_PROJECT_ID go together), or VERCEL_OIDC_TOKEN instead",
            missing.join(" and ")
        )
    };
    SandboxError::Config(message)
}

fn check_api_url(api_url: &str) -> Result<()> {
    let bad = || {
        SandboxError::Config(
            "VERCEL_API_URL must be an http(s) URL such as https://vercel.com/api".to_string(),
        )
    };
    let url = reqwest::Url::parse(api_url).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(bad());
    }
    let loopback = matches!(
        url.host_str(),
        Some("localhost" | "127.0.0.1" | "[::1]" | "::1")
    );
    if url.scheme() == "http" && !loopback {
        tracing::warn!(
            "VERCEL_API_URL uses plain http to a remote host: the token travels in clear"
        );
    }
    Ok(())
}

/// Team and project from an OIDC token's claims (`owner_id`, `project_id`), read without
/// verifying the signature: the API verifies it, we only need to know where to send it.
fn oidc_claims(token: &str) -> Result<(String, String)> {
    let bad = |why: &str| {
        SandboxError::Config(format!(
            "VERCEL_OIDC_TOKEN is not a usable OIDC token ({why}); refresh it with `vercel env pull`"
        ))
    };
    let parts: Vec<&str> = token.split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return Err(bad("not a JWT"));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| bad("its payload is not base64url"))?;
    let claims: Value =
        serde_json::from_slice(&bytes).map_err(|_| bad("its payload is not JSON"))?;
    let claim = |name: &str| {
        claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let team = claim("owner_id").ok_or_else(|| bad("no owner_id claim"))?;
    let project = claim("project_id").ok_or_else(|| bad("no project_id claim"))?;
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        if exp < chrono::Utc::now().timestamp() {
            return Err(bad("it has expired"));
        }
    }
    Ok((team, project))
}

// ---------------------------------------------------------------------------------------------
// The HTTP layer: auth, `teamId`, retries, error mapping.

enum Body {
    Empty,
    Json(Value),
    Gzip(Vec<u8>),
}

/// One API call, described rather than built so a retry can send it again.
struct Call {
    method: Method,
    segments: Vec<String>,
    query: Vec<(&'static str, String)>,
    body: Body,
    headers: Vec<(&'static str, String)>,
    /// Safe to send twice: then 5xx answers and broken connections are retried too. Calls
    /// that start something (create, `/cmd`) are retried only when the server provably did
    /// not act (429, connection refused).
    idempotent: bool,
    /// Whole-exchange deadline; `None` for answers that last as long as a command.
    timeout: Option<Duration>,
    /// The sandbox the call is about: its 404/410 then mean the sandbox is gone.
    sandbox: Option<String>,
}

impl Call {
    fn new(method: Method, segments: &[&str]) -> Call {
        Call {
            idempotent: method == Method::GET,
            method,
            segments: segments.iter().map(|s| s.to_string()).collect(),
            query: Vec::new(),
            body: Body::Empty,
            headers: Vec::new(),
            timeout: Some(CALL_TIMEOUT),
            sandbox: None,
        }
    }

    /// `{method} /v1/sandboxes/{id}/{rest..}`.
    fn on(method: Method, sandbox: &str, rest: &[&str]) -> Call {
        let mut segments = vec!["v1", "sandboxes", sandbox];
        segments.extend_from_slice(rest);
        let mut call = Call::new(method, &segments);
        call.sandbox = Some(sandbox.to_string());
        call
    }

    fn json(mut self, body: Value) -> Call {
        self.body = Body::Json(body);
        self
    }

    fn idempotent(mut self, yes: bool) -> Call {
        self.idempotent = yes;
        self
    }

    fn timeout(mut self, timeout: Option<Duration>) -> Call {
        self.timeout = timeout;
        self
    }

    fn query(mut self, name: &'static str, value: &str) -> Call {
        self.query.push((name, value.to_string()));
        self
    }

    fn describe(&self) -> String {
        format!("{} /{}", self.method, self.segments.join("/"))
    }
}

/// The API client shared by a sandbox and its dev-server task. Cheap to clone.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: reqwest::Url,
    auth: HeaderValue,
    /// Kept only to scrub echoes of it from server messages.
    token: String,
    token_var: &'static str,
    team_id: String,
}

impl Api {
    fn new(http: reqwest::Client, cfg: &VercelConfig) -> Result<Api> {
        check_api_url(&cfg.api_url)?;
        let base = reqwest::Url::parse(&cfg.api_url)
            .map_err(|_| SandboxError::Config("VERCEL_API_URL is not a valid URL".into()))?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", cfg.token)).map_err(|_| {
            SandboxError::Config(format!(
                "{} contains characters that cannot be sent in an HTTP header",
                cfg.token_var
            ))
        })?;
        auth.set_sensitive(true);
        Ok(Api {
            http,
            base,
            auth,
            token: cfg.token.clone(),
            token_var: cfg.token_var,
            team_id: cfg.team_id.clone(),
        })
    }

    fn url(&self, call: &Call) -> Result<reqwest::Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| SandboxError::Config("VERCEL_API_URL cannot take a path".into()))?
            .pop_if_empty()
            .extend(&call.segments);
        {
            let mut q = url.query_pairs_mut();
            // Every call names the team, as the SDK does; the API scopes tokens by it.
            q.append_pair("teamId", &self.team_id);
            for (k, v) in &call.query {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// Sends `call`, retrying per the SDK's policy; answers any status that is not retried.
    async fn send(&self, call: &Call) -> Result<reqwest::Response> {
        let url = self.url(call)?;
        let mut rate_retry_used = false;
        let mut retries = 0u32;
        loop {
            let mut req = self
                .http
                .request(call.method.clone(), url.clone())
                .header(AUTHORIZATION, self.auth.clone())
                .header(USER_AGENT, USER_AGENT_VALUE);
            req = match &call.body {
                Body::Empty => req.header(CONTENT_TYPE, "application/json"),
                Body::Json(v) => req
                    .header(CONTENT_TYPE, "application/json")
                    .body(v.to_string()),
                Body::Gzip(bytes) => req
                    .header(CONTENT_TYPE, "application/gzip")
                    .body(bytes.clone()),
            };
            for (k, v) in &call.headers {
                req = req.header(*k, v.as_str());
            }
            if let Some(t) = call.timeout {
                req = req.timeout(t);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) => {
                    // A refused connection never reached the server: safe to send again. A
                    // timeout is not retried: it would multiply an already long deadline.
                    let again =
                        e.is_connect() || (call.idempotent && !e.is_builder() && !e.is_timeout());
                    if again && retries < MAX_RETRIES {
                        tokio::time::sleep(backoff(retries)).await;
                        retries += 1;
                        continue;
                    }
                    return Err(self.network(call, e));
                }
            };
            let status = resp.status().as_u16();
            if status == 429 {
                let hint = retry_after(resp.headers());
                if let Some(h) = hint.filter(|h| *h > MAX_RETRY_AFTER) {
                    return Err(SandboxError::RateLimited {
                        provider: PROVIDER,
                        retry_after_secs: Some(ceil_secs(h)),
                    });
                }
                if !rate_retry_used {
                    rate_retry_used = true;
                    tokio::time::sleep(hint.unwrap_or_else(|| backoff(0))).await;
                    continue;
                }
                return Err(SandboxError::RateLimited {
                    provider: PROVIDER,
                    retry_after_secs: hint.map(ceil_secs),
                });
            }
            if status >= 500 && call.idempotent && retries < MAX_RETRIES {
                tokio::time::sleep(backoff(retries)).await;
                retries += 1;
                continue;
            }
            return Ok(resp);
        }
    }

    /// `send`, then any non-2xx status becomes its error.
    async fn send_ok(&self, call: &Call) -> Result<reqwest::Response> {
        let resp = self.send(call).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(self.error_from(resp, call).await)
        }
    }

    async fn json(&self, call: &Call) -> Result<Value> {
        let resp = self.send_ok(call).await?;
        let bytes = resp.bytes().await.map_err(|e| self.network(call, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            protocol(format!(
                "{} answered something that is not JSON ({e})",
                call.describe()
            ))
        })
    }

    async fn error_from(&self, resp: reqwest::Response, call: &Call) -> SandboxError {
        let status = resp.status().as_u16();
        let hint = retry_after(resp.headers());
        let text = tokio::time::timeout(CALL_TIMEOUT, resp.text())
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let field = |name: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.pointer(&format!("/error/{name}")))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        let code = field("code");
        let message = field("message").unwrap_or_else(|| text.trim().to_string());
        match (status, call.sandbox.as_deref()) {
            (401 | 403, _) => SandboxError::Auth {
                provider: PROVIDER,
                var: self.token_var,
                status,
            },
            (404 | 410, Some(id)) => gone(id),
            (_, Some(id)) if code.as_deref() == Some("sandbox_stopped") => gone(id),
            (429, _) => SandboxError::RateLimited {
                provider: PROVIDER,
                retry_after_secs: hint.map(ceil_secs),
            },
            _ => SandboxError::Api {
                provider: PROVIDER,
                status,
                message: self.scrub(&match code {
                    Some(c) => format!("{c}: {message} ({})", call.describe()),
                    None => format!("{message} ({})", call.describe()),
                }),
            },
        }
    }

    fn network(&self, call: &Call, e: reqwest::Error) -> SandboxError {
        // The whole cause chain: reqwest's own text is just "error sending request".
        let e = e.without_url();
        let mut message = format!("{}: {e}", call.describe());
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        SandboxError::Network {
            provider: PROVIDER,
            message: self.scrub(&message),
        }
    }

    /// Removes any echo of the token and caps the length of a server-provided message.
    fn scrub(&self, message: &str) -> String {
        crate::http::scrub(message, Some(&self.token))
    }

    /// Streams a command's output (`GET …/cmd/{id}/logs`) into `out` and `sink` until the
    /// stream ends, which it does when the command exits.
    async fn stream_logs(
        &self,
        sandbox: &str,
        cmd: &str,
        sink: &LineSink,
        out: &mut Collected,
    ) -> Result<()> {
        let call = Call::on(Method::GET, sandbox, &["cmd", cmd, "logs"]).timeout(None);
        let resp = self.send_ok(&call).await?;
        let mut stream = NdjsonStream::new(resp, "log")?;
        while let Some(v) = stream.next().await? {
            let which = match v.get("stream").and_then(Value::as_str) {
                Some("stdout") => OutputStream::Stdout,
                Some("stderr") => OutputStream::Stderr,
                Some("error") => {
                    out.finish(sink);
                    return Err(self.stream_error(sandbox, v.get("data"), out));
                }
                _ => continue, // future stream kinds
            };
            let Some(data) = v.get("data").and_then(Value::as_str) else {
                return Err(protocol("a log record's `data` is not a string"));
            };
            out.push(which, data, sink);
        }
        out.finish(sink);
        Ok(())
    }

    fn stream_error(&self, sandbox: &str, data: Option<&Value>, out: &Collected) -> SandboxError {
        let data = data.unwrap_or(&Value::Null);
        let code = data
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let message = data
            .get("message")
            .and_then(Value::as_str)
            .or(data.as_str())
            .unwrap_or("");
        if code == "sandbox_stopped" {
            return gone(sandbox);
        }
        SandboxError::Failed(self.scrub(&format!(
            "the command's log stream failed ({code}: {message}){}",
            out.tail_text()
        )))
    }

    /// Blocks until the command exits (`GET …/cmd/{id}?wait=true`) and answers its exit code.
    async fn wait_command(&self, sandbox: &str, cmd: &str, limit: Duration) -> Result<i32> {
        let call = Call::on(Method::GET, sandbox, &["cmd", cmd])
            .query("wait", "true")
            .timeout(Some(limit));
        let v = self.json(&call).await?;
        exit_code_of(&v)?.ok_or_else(|| protocol("a finished command has no exit code"))
    }

    /// Sends SIGTERM to a command; best effort (it may have exited already), bounded.
    async fn kill_command(&self, sandbox: &str, cmd: &str) {
        // v1 has no `/cmd/` segment here (REST reference "Kill a command").
        let call = Call::on(Method::POST, sandbox, &[cmd, "kill"])
            .json(json!({ "signal": SIGTERM }))
            .idempotent(true)
            .timeout(Some(CLEANUP_TIMEOUT));
        if let Err(e) = self.send_ok(&call).await {
            tracing::debug!("killing Vercel command {cmd}: {e}");
        }
    }
}

fn gone(id: &str) -> SandboxError {
    SandboxError::Gone {
        provider: PROVIDER,
        id: id.to_string(),
    }
}

fn protocol(message: impl Into<String>) -> SandboxError {
    SandboxError::Protocol {
        provider: PROVIDER,
        message: message.into(),
    }
}

/// 400 ms × 2^n, plus up to 25 % jitter so clients do not retry in lockstep.
fn backoff(retry: u32) -> Duration {
    RETRY_MIN.mul_f64(2f64.powi(retry.min(10) as i32) * (1.0 + 0.25 * fastrand::f64()))
}

fn exit_code_of(v: &Value) -> Result<Option<i32>> {
    match v.pointer("/command/exitCode") {
        None | Some(Value::Null) => Ok(None),
        Some(c) => c
            .as_i64()
            .and_then(|c| i32::try_from(c).ok())
            .map(Some)
            .ok_or_else(|| protocol(format!("a command's exitCode is not an integer: {c}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Framing: NDJSON records and output lines.

/// Splits a byte stream into NDJSON records. Bytes arrive cut anywhere, so only complete lines
/// are handed out; `\r\n` endings and blank lines are tolerated, and [`finish`] hands out a
/// last record that has no line break.
///
/// [`finish`]: NdjsonSplitter::finish
#[derive(Debug, Default)]
pub struct NdjsonSplitter {
    buf: Vec<u8>,
}

impl NdjsonSplitter {
    /// Appends `bytes`; complete records (without their line break) go to `out`.
    pub fn push(
        &mut self,
        bytes: &[u8],
        out: &mut VecDeque<Vec<u8>>,
    ) -> std::result::Result<(), String> {
        // Bytes already buffered hold no line break, so only the new ones are scanned.
        let mut from = self.buf.len();
        self.buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(off) = self.buf[from..].iter().position(|&b| b == b'\n') {
            let end = from + off;
            push_record(&self.buf[start..end], out);
            start = end + 1;
            from = start;
        }
        self.buf.drain(..start);
        if self.buf.len() > MAX_RECORD {
            return Err(format!("an NDJSON record exceeded {MAX_RECORD} bytes"));
        }
        Ok(())
    }

    /// At EOF: the last record, if it came without a line break.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let mut out = VecDeque::new();
        push_record(&std::mem::take(&mut self.buf), &mut out);
        out.pop_front()
    }
}

fn push_record(line: &[u8], out: &mut VecDeque<Vec<u8>>) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !line.iter().all(u8::is_ascii_whitespace) {
        out.push_back(line.to_vec());
    }
}

/// An NDJSON response read record by record.
struct NdjsonStream {
    resp: reqwest::Response,
    split: NdjsonSplitter,
    ready: VecDeque<Vec<u8>>,
    eof: bool,
    what: &'static str,
}

impl NdjsonStream {
    /// Refuses any other content type, as the SDK does: a JSON error page is not a stream.
    fn new(resp: reqwest::Response, what: &'static str) -> Result<NdjsonStream> {
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !ct.starts_with("application/x-ndjson") {
            return Err(protocol(format!(
                "the {what} stream came as `{ct}`, not application/x-ndjson"
            )));
        }
        Ok(NdjsonStream {
            resp,
            split: NdjsonSplitter::default(),
            ready: VecDeque::new(),
            eof: false,
            what,
        })
    }

    /// The next record; `None` at a clean end of the stream.
    async fn next(&mut self) -> Result<Option<Value>> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return serde_json::from_slice(&line).map(Some).map_err(|e| {
                    protocol(format!(
                        "a record of the {} stream is not JSON ({e}); the stream was cut?",
                        self.what
                    ))
                });
            }
            if self.eof {
                return Ok(None);
            }
            match self.resp.chunk().await {
                Ok(Some(bytes)) => self.split.push(&bytes, &mut self.ready).map_err(protocol)?,
                Ok(None) => {
                    self.eof = true;
                    self.ready.extend(self.split.finish());
                }
                Err(e) => {
                    return Err(protocol(format!(
                        "the {} stream broke off ({})",
                        self.what,
                        e.without_url()
                    )))
                }
            }
        }
    }
}

/// Assembles output lines from pieces of text: a line may span several `data` values.
#[derive(Debug, Default)]
pub struct LineBuffer {
    partial: String,
}

impl LineBuffer {
    /// Appends `data`; each complete line (without `\n` / `\r\n`) goes to `emit`.
    pub fn push(&mut self, data: &str, emit: &mut dyn FnMut(&str)) {
        let mut rest = data;
        while let Some(i) = rest.find('\n') {
            self.partial.push_str(&rest[..i]);
            emit(self.partial.strip_suffix('\r').unwrap_or(&self.partial));
            self.partial.clear();
            rest = &rest[i + 1..];
        }
        self.partial.push_str(rest);
        // Progress bars redraw with `\r` and never end a line; do not buffer them forever.
        if self.partial.len() > MAX_OUTPUT_LINE {
            self.finish(emit);
        }
    }

    /// At the end: the last line, if it had no line break.
    pub fn finish(&mut self, emit: &mut dyn FnMut(&str)) {
        if !self.partial.is_empty() {
            emit(self.partial.strip_suffix('\r').unwrap_or(&self.partial));
            self.partial.clear();
        }
    }
}

/// One command's output: lines go to the sink as they complete; the text is kept whole for
/// `run`, only as a tail for the dev server (which runs for hours).
struct Collected {
    keep_all: bool,
    stdout: String,
    stderr: String,
    out_lines: LineBuffer,
    err_lines: LineBuffer,
    tail: VecDeque<String>,
}

impl Collected {
    fn new(keep_all: bool) -> Collected {
        Collected {
            keep_all,
            stdout: String::new(),
            stderr: String::new(),
            out_lines: LineBuffer::default(),
            err_lines: LineBuffer::default(),
            tail: VecDeque::new(),
        }
    }

    fn push(&mut self, which: OutputStream, data: &str, sink: &LineSink) {
        let (text, lines) = match which {
            OutputStream::Stdout => (&mut self.stdout, &mut self.out_lines),
            OutputStream::Stderr => (&mut self.stderr, &mut self.err_lines),
        };
        if self.keep_all {
            text.push_str(data);
        }
        let tail = &mut self.tail;
        lines.push(data, &mut |line| {
            sink(which, line);
            remember(tail, line);
        });
    }

    fn finish(&mut self, sink: &LineSink) {
        let tail = &mut self.tail;
        self.out_lines.finish(&mut |line| {
            sink(OutputStream::Stdout, line);
            remember(tail, line);
        });
        self.err_lines.finish(&mut |line| {
            sink(OutputStream::Stderr, line);
            remember(tail, line);
        });
    }

    fn tail_text(&self) -> String {
        if self.tail.is_empty() {
            return String::new();
        }
        let lines: Vec<&str> = self.tail.iter().map(String::as_str).collect();
        format!("; last output:\n{}", lines.join("\n"))
    }
}

fn remember(tail: &mut VecDeque<String>, line: &str) {
    if tail.len() == TAIL_LINES {
        tail.pop_front();
    }
    tail.push_back(line.to_string());
}

// ---------------------------------------------------------------------------------------------
// Files.

/// A project-relative path as the tarball and `fs/read` carry it: `/`-separated, no `.`
/// segments; absolute paths, `..` and NUL are refused.
fn clean_path(path: &str) -> Result<String> {
    let refuse = |why: &str| {
        SandboxError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("refusing sandbox path {path:?}: {why}"),
        ))
    };
    if path.starts_with('/') {
        return Err(refuse("it is absolute"));
    }
    if path.contains('\0') {
        return Err(refuse("it contains NUL"));
    }
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    if parts.contains(&"..") {
        return Err(refuse("it leaves the project dir"));
    }
    if parts.is_empty() {
        return Err(refuse("it is empty"));
    }
    Ok(parts.join("/"))
}

/// A gzip'd tar of `files` (paths already cleaned), as `fs/write` takes it: explicit directory
/// entries (0755) for every parent, parents first, then the files (0644) stamped `mtime`.
pub fn build_tarball(files: &[(String, Vec<u8>)], mtime: u64) -> std::io::Result<Vec<u8>> {
    let dirs: BTreeSet<&str> = files
        .iter()
        .flat_map(|(path, _)| {
            path.match_indices('/')
                .map(move |(i, _)| &path[..i])
                .collect::<Vec<_>>()
        })
        .collect();
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    // BTreeSet order puts `src` before `src/components`, so parents precede children.
    for dir in dirs {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(mtime);
        tar.append_data(&mut h, format!("{dir}/"), std::io::empty())?;
    }
    for (path, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(bytes.len() as u64);
        h.set_mtime(mtime);
        tar.append_data(&mut h, path, bytes.as_slice())?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()
}

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
        if out.exit_code != 0 {
            return Err(SandboxError::Failed(format!(
                "deleting files in the sandbox failed (exit {}): {}",
                out.exit_code,
                out.stderr.trim()
            )));
        }
        Ok(())
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
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
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
        if out.exit_code != 0 {
            return Err(SandboxError::Failed(format!(
                "listing the sandbox's files failed (exit {}): {}",
                out.exit_code,
                out.stderr.trim()
            )));
        }
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
        let vite = CommandSpec::new(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn split_all(chunks: &[&[u8]]) -> Vec<String> {
        let mut s = NdjsonSplitter::default();
        let mut out = VecDeque::new();
        for c in chunks {
            s.push(c, &mut out).unwrap();
        }
        out.extend(s.finish());
        out.into_iter()
            .map(|l| String::from_utf8(l).unwrap())
            .collect()
    }

    #[test]
    fn ndjson_records_split_anywhere() {
        let text = "{\"a\":1}\n{\"b\":\"é\"}\r\n\n{\"c\":3}";
        let whole = split_all(&[text.as_bytes()]);
        assert_eq!(whole, ["{\"a\":1}", "{\"b\":\"é\"}", "{\"c\":3}"]);
        // Every split point, including inside the two-byte `é` and between `\r` and `\n`.
        let bytes = text.as_bytes();
        for i in 0..bytes.len() {
            for j in i..bytes.len() {
                let got = split_all(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(got, whole, "split at {i}/{j}");
            }
        }
        // Byte by byte.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(split_all(&singles), whole);
    }

    #[test]
    fn ndjson_holds_incomplete_record_until_finish() {
        let mut s = NdjsonSplitter::default();
        let mut out = VecDeque::new();
        s.push(b"{\"stream\":\"stdout\",\"da", &mut out).unwrap();
        assert!(out.is_empty());
        s.push(b"ta\":\"x\"}\n{\"tail\":", &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(s.finish().unwrap(), b"{\"tail\":");
        assert!(s.finish().is_none());
    }

    #[test]
    fn ndjson_refuses_endless_record() {
        let mut s = NdjsonSplitter::default();
        let mut out = VecDeque::new();
        let big = vec![b'x'; 1024 * 1024];
        let mut failed = false;
        for _ in 0..17 {
            if s.push(&big, &mut out).is_err() {
                failed = true;
                break;
            }
        }
        assert!(failed);
    }

    #[test]
    fn lines_span_data_values() {
        let mut lb = LineBuffer::default();
        let mut got = Vec::new();
        for piece in [
            "added 3 pack",
            "ages\r\nfound ",
            "0 vulner",
            "abilities\n\nlast",
        ] {
            lb.push(piece, &mut |l| got.push(l.to_string()));
        }
        assert_eq!(got, ["added 3 packages", "found 0 vulnerabilities", ""]);
        lb.finish(&mut |l| got.push(l.to_string()));
        assert_eq!(got.last().unwrap(), "last");
        let n = got.len();
        lb.finish(&mut |l| got.push(l.to_string()));
        assert_eq!(got.len(), n, "finish twice emits once");
    }

    #[test]
    fn overlong_partial_line_is_flushed() {
        let mut lb = LineBuffer::default();
        let mut got = Vec::new();
        lb.push(&"#".repeat(MAX_OUTPUT_LINE + 1), &mut |l| got.push(l.len()));
        assert_eq!(got, [MAX_OUTPUT_LINE + 1]);
    }

    #[test]
    fn collected_keeps_streams_apart() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sink: LineSink =
            std::sync::Arc::new(move |w, l: &str| s2.lock().unwrap().push((w, l.to_string())));
        let mut c = Collected::new(true);
        c.push(OutputStream::Stdout, "a", &sink);
        c.push(OutputStream::Stderr, "warn\n", &sink);
        c.push(OutputStream::Stdout, "b\n", &sink);
        c.push(OutputStream::Stderr, "tail", &sink);
        c.finish(&sink);
        assert_eq!(c.stdout, "ab\n");
        assert_eq!(c.stderr, "warn\ntail");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                (OutputStream::Stderr, "warn".to_string()),
                (OutputStream::Stdout, "ab".to_string()),
                (OutputStream::Stderr, "tail".to_string()),
            ]
        );
        assert!(c.tail_text().ends_with("warn\nab\ntail"));
    }

    #[test]
    fn tarball_round_trips() {
        let files = vec![
            ("package.json".to_string(), b"{}".to_vec()),
            ("src/components/Hero.jsx".to_string(), b"export {}".to_vec()),
            ("src/App.jsx".to_string(), Vec::new()),
            (
                format!("{}/deep.txt", "d".repeat(120)),
                b"long name".to_vec(),
            ),
        ];
        let gz = build_tarball(&files, 1_700_000_000).unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b], "gzip magic");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gz.as_slice()));
        let mut dirs = Vec::new();
        let mut got = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut e = entry.unwrap();
            let path = e.path().unwrap().to_string_lossy().into_owned();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            match h.entry_type() {
                tar::EntryType::Directory => {
                    assert_eq!(h.mode().unwrap(), 0o755);
                    assert!(got.is_empty(), "directories come first");
                    dirs.push(path.trim_end_matches('/').to_string());
                }
                tar::EntryType::Regular => {
                    assert_eq!(h.mode().unwrap(), 0o644);
                    let size = h.size().unwrap();
                    let mut bytes = Vec::new();
                    e.read_to_end(&mut bytes).unwrap();
                    assert_eq!(size, bytes.len() as u64);
                    got.push((path, bytes));
                }
                other => panic!("unexpected entry {other:?}"),
            }
        }
        assert_eq!(
            dirs,
            ["d".repeat(120), "src".into(), "src/components".into()]
        );
        assert_eq!(got, files);
    }

    #[test]
    fn paths_are_cleaned_or_refused() {
        assert_eq!(clean_path("./src//App.jsx").unwrap(), "src/App.jsx");
        assert_eq!(clean_path("a/./b").unwrap(), "a/b");
        for bad in ["/etc/passwd", "../x", "a/../../b", "", ".", "a\0b"] {
            assert!(
                matches!(clean_path(bad), Err(SandboxError::Io(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn backoff_starts_at_400ms_and_doubles() {
        for n in 0..3 {
            let d = backoff(n).as_secs_f64();
            let base = 0.4 * 2f64.powi(n as i32);
            assert!(d >= base && d <= base * 1.25, "{n}: {d}");
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            exit_code_of(&json!({"command":{"exitCode":null}})).unwrap(),
            None
        );
        assert_eq!(
            exit_code_of(&json!({"command":{"exitCode":3}})).unwrap(),
            Some(3)
        );
        assert!(exit_code_of(&json!({"command":{"exitCode":"3"}})).is_err());
    }
}
