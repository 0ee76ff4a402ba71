//! Vercel's REST layer: auth, `teamId`, retries and error mapping, and the calls the sandbox
//! makes.

#[allow(unused_imports)]
use super::*;

// ---------------------------------------------------------------------------------------------
// The HTTP layer: auth, `teamId`, retries, error mapping.

pub(super) enum Body {
    Empty,
    Json(Value),
    Gzip(Vec<u8>),
}

/// One API call, described rather than built so a retry can send it again.
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) segments: Vec<String>,
    pub(super) query: Vec<(&'static str, String)>,
    pub(super) body: Body,
    pub(super) headers: Vec<(&'static str, String)>,
    /// Safe to send twice: then 5xx answers and broken connections are retried too. Calls
    /// that start something (create, `/cmd`) are retried only when the server provably did
    /// not act (429, connection refused).
    pub(super) idempotent: bool,
    /// Whole-exchange deadline; `None` for answers that last as long as a command.
    pub(super) timeout: Option<Duration>,
    /// The sandbox the call is about: its 404/410 then mean the sandbox is gone.
    pub(super) sandbox: Option<String>,
}

impl Call {
    pub(super) fn new(method: Method, segments: &[&str]) -> Call {
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
    pub(super) fn on(method: Method, sandbox: &str, rest: &[&str]) -> Call {
        let mut segments = vec!["v1", "sandboxes", sandbox];
        segments.extend_from_slice(rest);
        let mut call = Call::new(method, &segments);
        call.sandbox = Some(sandbox.to_string());
        call
    }

    pub(super) fn json(mut self, body: Value) -> Call {
        self.body = Body::Json(body);
        self
    }

    pub(super) fn idempotent(mut self, yes: bool) -> Call {
        self.idempotent = yes;
        self
    }

    pub(super) fn timeout(mut self, timeout: Option<Duration>) -> Call {
        self.timeout = timeout;
        self
    }

    pub(super) fn query(mut self, name: &'static str, value: &str) -> Call {
        self.query.push((name, value.to_string()));
        self
    }

    pub(super) fn describe(&self) -> String {
        format!("{} /{}", self.method, self.segments.join("/"))
    }
}

/// The API client shared by a sandbox and its dev-server task. Cheap to clone.
#[derive(Clone)]
pub(super) struct Api {
    pub(super) http: reqwest::Client,
    pub(super) base: reqwest::Url,
    pub(super) auth: HeaderValue,
    /// Kept only to scrub echoes of it from server messages.
    pub(super) token: String,
    pub(super) token_var: &'static str,
    pub(super) team_id: String,
}

impl Api {
    pub(super) fn new(http: reqwest::Client, cfg: &VercelConfig) -> Result<Api> {
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

    pub(super) fn url(&self, call: &Call) -> Result<reqwest::Url> {
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
    pub(super) async fn send(&self, call: &Call) -> Result<reqwest::Response> {
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
    pub(super) async fn send_ok(&self, call: &Call) -> Result<reqwest::Response> {
        let resp = self.send(call).await?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(self.error_from(resp, call).await)
        }
    }

    pub(super) async fn json(&self, call: &Call) -> Result<Value> {
        let resp = self.send_ok(call).await?;
        let bytes = resp.bytes().await.map_err(|e| self.network(call, e))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            protocol(format!(
                "{} answered something that is not JSON ({e})",
                call.describe()
            ))
        })
    }

    pub(super) async fn error_from(&self, resp: reqwest::Response, call: &Call) -> SandboxError {
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

    pub(super) fn network(&self, call: &Call, e: reqwest::Error) -> SandboxError {
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
    pub(super) fn scrub(&self, message: &str) -> String {
        crate::http::scrub(message, Some(&self.token))
    }

    /// Streams a command's output (`GET …/cmd/{id}/logs`) into `out` and `sink` until the
    /// stream ends, which it does when the command exits.
    pub(super) async fn stream_logs(
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

    pub(super) fn stream_error(
        &self,
        sandbox: &str,
        data: Option<&Value>,
        out: &Collected,
    ) -> SandboxError {
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
    pub(super) async fn wait_command(
        &self,
        sandbox: &str,
        cmd: &str,
        limit: Duration,
    ) -> Result<i32> {
        let call = Call::on(Method::GET, sandbox, &["cmd", cmd])
            .query("wait", "true")
            .timeout(Some(limit));
        let v = self.json(&call).await?;
        exit_code_of(&v)?.ok_or_else(|| protocol("a finished command has no exit code"))
    }

    /// Sends SIGTERM to a command; best effort (it may have exited already), bounded.
    pub(super) async fn kill_command(&self, sandbox: &str, cmd: &str) {
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

pub(super) fn gone(id: &str) -> SandboxError {
    SandboxError::Gone {
        provider: PROVIDER,
        id: id.to_string(),
    }
}

pub(super) fn protocol(message: impl Into<String>) -> SandboxError {
    SandboxError::Protocol {
        provider: PROVIDER,
        message: message.into(),
    }
}

/// 400 ms × 2^n, plus up to 25 % jitter so clients do not retry in lockstep.
pub(super) fn backoff(retry: u32) -> Duration {
    RETRY_MIN.mul_f64(2f64.powi(retry.min(10) as i32) * (1.0 + 0.25 * fastrand::f64()))
}

pub(super) fn exit_code_of(v: &Value) -> Result<Option<i32>> {
    match v.pointer("/command/exitCode") {
        None | Some(Value::Null) => Ok(None),
        Some(c) => c
            .as_i64()
            .and_then(|c| i32::try_from(c).ok())
            .map(Some)
            .ok_or_else(|| protocol(format!("a command's exitCode is not an integer: {c}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
