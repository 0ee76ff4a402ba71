//! E2B's wire: the shell lines commands run as, error answers mapped to [`SandboxError`], and
//! the envd client (file upload/download, commands over Connect streams).

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// Shell command lines

/// POSIX single-quote quoting: the result is one shell word with exactly `arg`'s bytes.
/// Plain words (letters, digits, `-_./=:,+@%`) stay bare so logged command lines read well.
pub fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

pub(super) fn argv_line(program: &str, args: &[String]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(shell_quote)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `argv` as the line's only process, leading its own process group so the group can be
/// killed (`-w` keeps the exit status should setsid have to fork). Falls back to a plain `exec`
/// on templates without util-linux.
pub(super) fn exec_line(argv: &str) -> String {
    format!(
        "if command -v setsid >/dev/null 2>&1; then exec setsid -w -- {argv}; else exec {argv}; fi"
    )
}

pub(super) fn command_line(cmd: &CommandSpec) -> String {
    exec_line(&argv_line(&cmd.program, &cmd.args))
}

/// The project's own Vite (a single `node` process, unlike `npx`, which forks one), on the port
/// the preview URL points at; `--strictPort` fails loudly instead of drifting to 5174.
/// With `overlay`, the preview-error overlay config written beforehand (`sandbox/preview`).
pub(super) fn dev_server_line(overlay: bool) -> String {
    let vite = "node_modules/.bin/vite";
    let port = DEV_PORT.to_string();
    let mut args: Vec<String> = vec![
        "--host".into(),
        "0.0.0.0".into(),
        "--port".into(),
        port,
        "--strictPort".into(),
    ];
    if overlay {
        args.extend(crate::sandbox::preview::config_args());
    }
    let argv = argv_line(vite, &args);
    format!(
        "[ -x {vite} ] || {{ echo 'vite is not installed in {PROJECT_DIR}: run npm install first' >&2; exit 127; }}; {}",
        exec_line(&argv)
    )
}

/// Prints the dev server's HTTP status (`000` when nothing listens).
pub(super) fn health_line() -> String {
    let url = format!("http://127.0.0.1:{DEV_PORT}/");
    format!(
        "if command -v curl >/dev/null 2>&1; then curl -s -o /dev/null -w '%{{http_code}}' --max-time 3 {url}; \
         else node -e \"fetch('{url}').then(r => process.stdout.write(String(r.status)), () => {{ process.stdout.write('000'); process.exit(7); }})\"; fi"
    )
}

/// Kills a process group led by `pid` (see [`exec_line`]); never fails.
pub(super) fn kill_group_line(pid: u32) -> String {
    format!("kill -s KILL -- -{pid} 2>/dev/null || true")
}

pub(super) fn find_args() -> Vec<String> {
    let mut a: Vec<String> = vec![".".into(), "(".into()];
    for (i, d) in SKIP_DIRS.iter().enumerate() {
        if i > 0 {
            a.push("-o".into());
        }
        a.extend(["-name".to_string(), d.to_string()]);
    }
    a.extend(
        [")", "-prune", "-o", "-type", "f", "-print0"]
            .iter()
            .map(|s| s.to_string()),
    );
    a
}

/// `rel` (relative to the project dir) as an absolute sandbox path; refuses escapes.
pub(super) fn project_path(rel: &str) -> Result<String> {
    let invalid = |why: &str| {
        SandboxError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("invalid sandbox path {rel:?}: {why}"),
        ))
    };
    let norm = rel.replace('\\', "/");
    if norm.starts_with('/') {
        return Err(invalid("must be relative to the project"));
    }
    if norm.chars().any(char::is_control) {
        return Err(invalid("contains control characters"));
    }
    let mut parts = Vec::new();
    for part in norm.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid("leaves the project")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(invalid("names no file"));
    }
    Ok(format!("{PROJECT_DIR}/{}", parts.join("/")))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Where an error answer came from: decides what 404 and 502 mean.
#[derive(Clone, Copy)]
pub(super) enum Origin<'a> {
    /// `POST /sandboxes`, before any sandbox exists.
    Create,
    /// A control-plane call about one sandbox: 404 = it is gone.
    Sandbox(&'a str),
    /// envd behind the E2B edge: 502 = the sandbox is gone.
    Envd(&'a str),
}

/// The `message` of an E2B/envd/Connect error body, else the body itself (shortened).
pub(super) fn body_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let msg = parsed
        .as_ref()
        .and_then(|v| v.get("message"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| body.trim().chars().take(300).collect());
    if msg.is_empty() {
        "(empty answer)".to_string()
    } else {
        msg
    }
}

/// Removes secrets a server might echo back.
pub(super) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "[redacted]");
    }
    out
}

pub(super) fn status_error(
    status: u16,
    headers: &HeaderMap,
    body: &str,
    origin: Origin<'_>,
    secrets: &[&str],
) -> SandboxError {
    match (status, origin) {
        (401 | 403, _) => SandboxError::Auth {
            provider: PROVIDER,
            var: KEY_VAR,
            status,
        },
        (404, Origin::Sandbox(id)) | (502, Origin::Envd(id)) => SandboxError::Gone {
            provider: PROVIDER,
            id: id.to_string(),
        },
        (429, _) => SandboxError::RateLimited {
            provider: PROVIDER,
            retry_after_secs: retry_after(headers).map(ceil_secs),
        },
        _ => {
            // Connect errors carry a string `code`; map the ones with a meaning of their own.
            if let Some(code) = serde_json::from_str::<Value>(body)
                .ok()
                .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_string))
            {
                let id = match origin {
                    Origin::Envd(id) | Origin::Sandbox(id) => id,
                    Origin::Create => "",
                };
                return connect_error(&code, &body_message(body), id, secrets);
            }
            SandboxError::Api {
                provider: PROVIDER,
                status,
                message: scrub(&body_message(body), secrets),
            }
        }
    }
}

/// A Connect error code (unary error body or end-stream envelope) as an error.
pub(super) fn connect_error(code: &str, message: &str, id: &str, secrets: &[&str]) -> SandboxError {
    let message = scrub(message, secrets);
    match code {
        "unauthenticated" | "permission_denied" => SandboxError::Auth {
            provider: PROVIDER,
            var: KEY_VAR,
            status: if code == "unauthenticated" { 401 } else { 403 },
        },
        // What the SDK reports as "sandbox timed out or was killed".
        "unavailable" => SandboxError::Gone {
            provider: PROVIDER,
            id: id.to_string(),
        },
        "resource_exhausted" => SandboxError::RateLimited {
            provider: PROVIDER,
            retry_after_secs: None,
        },
        "deadline_exceeded" | "canceled" => {
            SandboxError::Timeout(format!("E2B sandbox command: {message}"))
        }
        "not_found" => SandboxError::NotFound(message),
        _ => SandboxError::Api {
            provider: PROVIDER,
            status: connect_http_status(code),
            message: format!("{code}: {message}"),
        },
    }
}

/// The HTTP status the Connect protocol pairs with each code.
pub(super) fn connect_http_status(code: &str) -> u16 {
    match code {
        "canceled" => 499,
        "invalid_argument" | "failed_precondition" | "out_of_range" => 400,
        "deadline_exceeded" => 504,
        "not_found" => 404,
        "already_exists" | "aborted" => 409,
        "permission_denied" => 403,
        "resource_exhausted" => 429,
        "unimplemented" => 501,
        "unavailable" => 503,
        "unauthenticated" => 401,
        _ => 500,
    }
}

pub(super) fn request_error(e: reqwest::Error, what: &str, timeout: Duration) -> SandboxError {
    if e.is_timeout() {
        return SandboxError::Timeout(format!(
            "E2B did not answer {what} within {} s",
            timeout.as_secs()
        ));
    }
    SandboxError::Network {
        provider: PROVIDER,
        message: format!("{what}: {}", error_chain(&e)),
    }
}

pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

pub(super) fn protocol(message: impl Into<String>) -> SandboxError {
    SandboxError::Protocol {
        provider: PROVIDER,
        message: message.into(),
    }
}

pub(super) fn secret_header(value: &str, what: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        SandboxError::Config(format!(
            "{what} contains characters that cannot be sent in an HTTP header"
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

// ---------------------------------------------------------------------------------------------
// envd client

/// Everything needed to talk to one sandbox's envd; cheap to clone into background tasks.
#[derive(Clone)]
pub(super) struct Envd {
    pub(super) http: reqwest::Client,
    /// No trailing slash.
    pub(super) base: String,
    pub(super) sandbox_id: String,
    pub(super) headers: HeaderMap,
    pub(super) secrets: Vec<String>,
}

impl Envd {
    pub(super) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(super) fn gone(&self) -> SandboxError {
        SandboxError::Gone {
            provider: PROVIDER,
            id: self.sandbox_id.clone(),
        }
    }

    pub(super) async fn error_from(&self, resp: reqwest::Response) -> SandboxError {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        status_error(
            status,
            &headers,
            &body,
            Origin::Envd(&self.sandbox_id),
            &secrets,
        )
    }

    /// One file, one multipart request (the form every envd version accepts), `path` in the
    /// query so the part's filename does not matter.
    pub(super) async fn upload(&self, abs: &str, bytes: &[u8]) -> Result<()> {
        let boundary = loop {
            let b = format!(
                "----builder-lsp-{:016x}{:016x}",
                fastrand::u64(..),
                fastrand::u64(..)
            );
            if !bytes.windows(b.len()).any(|w| w == b.as_bytes()) {
                break b;
            }
        };
        let filename = abs.replace('\\', "\\\\").replace('"', "\\\"");
        let mut body = Vec::with_capacity(bytes.len() + 256);
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let what = format!("upload of {abs}");
        let resp = self
            .http
            .post(self.url("/files"))
            .headers(self.headers.clone())
            .query(&[("path", abs), ("username", USER)])
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| request_error(e, &what, REQUEST_TIMEOUT))?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(self.error_from(resp).await)
    }

    pub(super) async fn download(&self, abs: &str) -> Result<Option<Vec<u8>>> {
        let what = format!("download of {abs}");
        let resp = self
            .http
            .get(self.url("/files"))
            .headers(self.headers.clone())
            .query(&[("path", abs), ("username", USER)])
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| request_error(e, &what, REQUEST_TIMEOUT))?;
        match resp.status() {
            StatusCode::OK => {
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| request_error(e, &what, REQUEST_TIMEOUT))?;
                Ok(Some(bytes.to_vec()))
            }
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.error_from(resp).await),
        }
    }

    /// A Connect unary call with the JSON codec.
    pub(super) async fn unary(&self, method: &str, body: Value) -> Result<Value> {
        let resp = self
            .http
            .post(self.url(&format!("/{method}")))
            .headers(self.headers.clone())
            .header("connect-protocol-version", "1")
            .header(
                "connect-timeout-ms",
                REQUEST_TIMEOUT.as_millis().to_string(),
            )
            .json(&body)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| request_error(e, method, REQUEST_TIMEOUT))?;
        if !resp.status().is_success() {
            return Err(self.error_from(resp).await);
        }
        let text = resp
            .text()
            .await
            .map_err(|e| request_error(e, method, REQUEST_TIMEOUT))?;
        serde_json::from_str(&text)
            .map_err(|e| protocol(format!("{method} answered non-JSON ({e})")))
    }

    pub(super) async fn make_dir(&self, path: &str) -> Result<()> {
        match self
            .unary("filesystem.Filesystem/MakeDir", json!({ "path": path }))
            .await
        {
            Ok(_) => Ok(()),
            Err(SandboxError::Api { status: 409, .. }) => Ok(()), // already_exists
            Err(e) => Err(e),
        }
    }

    /// `filesystem.Filesystem/Remove`; a path already gone (`not_found`) is fine.
    pub(super) async fn remove(&self, path: &str) -> Result<()> {
        match self
            .unary("filesystem.Filesystem/Remove", json!({ "path": path }))
            .await
        {
            Ok(_) => Ok(()),
            Err(SandboxError::NotFound(_)) | Err(SandboxError::Api { status: 404, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn signal_kill(&self, pid: u32) -> Result<()> {
        let body = json!({"process": {"pid": pid}, "signal": "SIGNAL_SIGKILL"});
        self.unary("process.Process/SendSignal", body)
            .await
            .map(|_| ())
    }

    /// Starts `/bin/bash -l -c <line>` in the project dir; the answer is the event stream.
    pub(super) async fn start(
        &self,
        line: &str,
        envs: &HashMap<String, String>,
        timeout_ms: Option<u64>,
    ) -> Result<ProcessStream> {
        let msg = json!({
            "process": {"cmd": "/bin/bash", "args": ["-l", "-c", line], "envs": envs, "cwd": PROJECT_DIR},
            "stdin": false,
        });
        self.open_stream("Start", &msg, timeout_ms).await
    }

    /// Reattaches to the output of running process `pid` (`process.Process/Connect`): what it
    /// writes from now on, then its end.
    pub(super) async fn connect(&self, pid: u32) -> Result<ProcessStream> {
        self.open_stream("Connect", &json!({"process": {"pid": pid}}), None)
            .await
    }

    /// A server-streaming `process.Process/{rpc}` call with one request envelope.
    pub(super) async fn open_stream(
        &self,
        rpc: &str,
        msg: &Value,
        timeout_ms: Option<u64>,
    ) -> Result<ProcessStream> {
        let body = encode_envelope(0, msg.to_string().as_bytes());
        let mut req = self
            .http
            .post(self.url(&format!("/process.Process/{rpc}")))
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/connect+json")
            .header("connect-protocol-version", "1")
            .header("keepalive-ping-interval", KEEPALIVE_SECS.to_string())
            .body(body);
        if let Some(ms) = timeout_ms {
            req = req.header("connect-timeout-ms", ms.to_string());
        }
        // Only the answer's head is bounded here; the stream has its idle timeout.
        let resp = tokio::time::timeout(REQUEST_TIMEOUT, req.send())
            .await
            .map_err(|_| {
                SandboxError::Timeout(format!(
                    "E2B did not start the command within {} s",
                    REQUEST_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| request_error(e, "command start", REQUEST_TIMEOUT))?;
        if resp.status() != StatusCode::OK {
            return Err(self.error_from(resp).await);
        }
        let ctype = crate::http::content_type(&resp);
        if !ctype.starts_with("application/connect+json") {
            return Err(protocol(format!(
                "the command start answered {ctype:?} instead of a Connect stream"
            )));
        }
        Ok(ProcessStream {
            resp,
            decoder: EnvelopeDecoder::default(),
            queue: VecDeque::new(),
            done: false,
            sandbox_id: self.sandbox_id.clone(),
            secrets: self.secrets.clone(),
        })
    }

    /// Runs `line` to its end, streaming lines to `sink`. On cancel: drops the stream, kills
    /// the process group and answers `Cancelled`. Nothing is retried once the request is out.
    pub(super) async fn run_line(
        &self,
        line: &str,
        envs: &HashMap<String, String>,
        sink: &LineSink,
        cancel: &CancellationToken,
        timeout_ms: Option<u64>,
    ) -> Result<CommandOutput> {
        if cancel.is_cancelled() {
            return Err(SandboxError::Cancelled);
        }
        let start = self.start(line, envs, timeout_ms);
        tokio::pin!(start);
        let mut stream = tokio::select! {
            r = &mut start => r?,
            _ = cancel.cancelled() => {
                // The request may have started the process already: learn its pid, kill it.
                let _ = tokio::time::timeout(KILL_BUDGET, async {
                    if let Ok(mut s) = start.await {
                        if let Ok(Some(pid)) = s.pid().await {
                            drop(s);
                            self.kill_tree(pid).await;
                        }
                    }
                })
                .await;
                return Err(SandboxError::Cancelled);
            }
        };
        let (mut out, mut err) = (Pipe::default(), Pipe::default());
        let mut pid = None;
        let mut end = None;
        loop {
            let ev = tokio::select! {
                ev = stream.next() => ev,
                _ = cancel.cancelled() => {
                    let _ = tokio::time::timeout(KILL_BUDGET, async {
                        let pid = match pid {
                            Some(p) => Some(p),
                            None => stream.pid().await.ok().flatten(),
                        };
                        drop(stream);
                        if let Some(pid) = pid {
                            self.kill_tree(pid).await;
                        }
                    })
                    .await;
                    return Err(SandboxError::Cancelled);
                }
            };
            match ev? {
                Some(ProcEvent::Start { pid: p }) => pid = Some(p),
                Some(ProcEvent::Stdout(b)) => out.push(&b, |l| sink(OutputStream::Stdout, l)),
                Some(ProcEvent::Stderr(b)) => err.push(&b, |l| sink(OutputStream::Stderr, l)),
                Some(ProcEvent::Keepalive) => {}
                Some(ProcEvent::End(e)) => end = Some(e),
                None => break,
            }
        }
        let stdout = out.finish(|l| sink(OutputStream::Stdout, l));
        let stderr = err.finish(|l| sink(OutputStream::Stderr, l));
        let end = end.ok_or_else(|| {
            protocol("the command stream finished without reporting the command's end")
        })?;
        if !end.exited {
            tracing::debug!(status = %end.status, "E2B command ended without exiting normally");
        }
        Ok(CommandOutput {
            exit_code: end.exit_code,
            stdout,
            stderr,
        })
    }

    /// Best effort, bounded: the process group first (children), then the pid itself through
    /// the RPC made for it (which alone would leave children running).
    pub(super) async fn kill_tree(&self, pid: u32) {
        let work = async {
            let group = async {
                let mut s = self
                    .start(&kill_group_line(pid), &HashMap::new(), Some(3000))
                    .await?;
                while s.next().await?.is_some() {}
                Ok::<(), SandboxError>(())
            };
            if let Err(e) = group.await {
                tracing::debug!("E2B: killing process group {pid} failed: {e}");
            }
            match self.signal_kill(pid).await {
                Ok(()) | Err(SandboxError::NotFound(_)) => {}
                Err(e) => tracing::warn!("E2B: SIGKILL to process {pid} failed: {e}"),
            }
        };
        if tokio::time::timeout(KILL_BUDGET, work).await.is_err() {
            tracing::warn!("E2B: killing process {pid} timed out");
        }
    }
}
