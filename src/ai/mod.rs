//! The AI provider layer: one request type, one event stream, whatever the provider.
//!
//! [`AiClient::stream`] does everything up to the first text: it sends the request, retries
//! what is worth retrying (connection errors, 408/409/429/5xx/529, and an error or cut that
//! arrives before any text) and returns a [`ChatStream`] that already holds the first text.
//! From then on nothing is retried: a later failure is an `Err` from [`ChatStream::next`], so
//! the caller never sees text twice. Wire formats: `PROTOCOLS.md` §0–§4.

pub mod anthropic;
pub mod config;
mod error;
pub mod gemini;
pub mod model_id;
pub mod models_list;
pub mod openai;
pub mod sse;
mod stream;

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Keys out of a service's message, and the message capped (sandboxes use it too).
pub(crate) use crate::http::scrub;
/// The HTTP helpers every provider shares (they live in `crate::http`: sandboxes use them too).
pub(crate) use crate::http::{endpoint, error_chain, read_capped, secret_header};
pub use crate::http::{http_client, redact_url, redact_url_str};
pub use config::{AiConfig, ProviderConfig, Secret};
pub use error::AiError;
pub use model_id::{ModelId, Provider};

use crate::http::retry;
use error::{classify_status, stream_kind_retryable, Context, Failure};
use model_id::Wire;
use sse::{SseEvent, SseParser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

#[derive(Debug, Clone)]
pub struct ChatRequest {
    pub model: ModelId,
    pub system: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    /// `None` leaves the provider's default. Dropped for models that refuse it (OpenAI
    /// reasoning models, Claude Opus 4.7+).
    pub temperature: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StopReason {
    EndTurn,
    /// The answer was cut by the token limit: the last file may be incomplete.
    MaxTokens,
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    Text(String),
    /// Sent once, just before `Stop`, when the provider reported usage.
    Usage {
        input_tokens: u64,
        output_tokens: u64,
    },
    Stop(StopReason),
}

/// Consecutive messages of one role joined (Anthropic and Gemini want alternating turns).
pub(crate) fn merged_turns(messages: &[ChatMessage]) -> Vec<(Role, String)> {
    let mut out: Vec<(Role, String)> = Vec::with_capacity(messages.len());
    for m in messages {
        match out.last_mut() {
            Some((role, text)) if *role == m.role => {
                text.push_str("\n\n");
                text.push_str(&m.content);
            }
            _ => out.push((m.role, m.content.clone())),
        }
    }
    out
}

/// Plain `http://` to a non-loopback host sends the key in clear: warn, once per host.
fn warn_plain_http(provider: Provider, url: &reqwest::Url) {
    if url.scheme() != "http" {
        return;
    }
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.is_empty()
        || host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if loopback {
        return;
    }
    static WARNED: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let host = host.to_string();
    let first = WARNED
        .get_or_init(|| Mutex::new(HashSet::new()))
        .lock()
        .map(|mut set| set.insert(host.clone()))
        .unwrap_or(false);
    if first {
        tracing::warn!(
            provider = provider.id(),
            host = %host,
            "the {} base URL uses plain http to a non-local host: the API key travels unencrypted",
            provider.display()
        );
    }
}

/// One provider dialect's stream decoder: SSE events in, [`StreamEvent`]s out.
pub(crate) trait Decode: Send {
    fn on_event(&mut self, ev: &SseEvent, out: &mut VecDeque<StreamEvent>) -> Result<(), AiError>;
    /// The terminal marker was seen (a `Stop` has been queued).
    fn is_done(&self) -> bool;
    /// At EOF before the marker: may the stream still count as complete? (queues `Stop` if so)
    fn on_eof(&mut self, _out: &mut VecDeque<StreamEvent>) -> bool {
        self.is_done()
    }
    /// The marker's name, for "broke off before …" messages.
    fn terminal(&self) -> &'static str;
}

/// A request ready to send (again, on retry).
struct Prepared {
    model: ModelId,
    url: reqwest::Url,
    redacted_url: String,
    headers: HeaderMap,
    body: Value,
    key: Option<String>,
    key_source: String,
}

/// Holds one `reqwest::Client` (its connection pool is shared by every clone and by
/// [`AiClient::with_config`]) and the configuration. Cheap to clone.
#[derive(Clone)]
pub struct AiClient {
    http: reqwest::Client,
    config: AiConfig,
}

impl fmt::Debug for AiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AiClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AiClient {
    pub fn new(config: AiConfig) -> AiClient {
        AiClient {
            http: http_client(),
            config,
        }
    }

    /// Over an existing HTTP client (from [`http_client`]), sharing its connection pool.
    pub fn with_http(http: reqwest::Client, config: AiConfig) -> AiClient {
        AiClient { http, config }
    }

    /// Another configuration (another project's settings) over the same connection pool.
    pub fn with_config(&self, config: AiConfig) -> AiClient {
        AiClient {
            http: self.http.clone(),
            config,
        }
    }

    pub fn config(&self) -> &AiConfig {
        &self.config
    }

    /// Plain `&mut self`: the orchestration keeps the client per project (or uses
    /// [`AiClient::with_config`]); no interior mutability so `config()` can hand out `&`.
    pub fn set_config(&mut self, c: AiConfig) {
        self.config = c;
    }

    fn total_deadline(&self) -> Duration {
        if self.config.total_deadline.is_zero() {
            config::DEFAULT_TOTAL_DEADLINE
        } else {
            self.config.total_deadline
        }
    }

    /// Checks the configuration (missing key, base URL) and builds the request, before any I/O.
    fn prepare(&self, req: &ChatRequest) -> Result<Prepared, AiError> {
        let provider = req.model.provider;
        let pc = self.config.provider(provider);
        let Some(base) = pc.base_url.as_deref().filter(|b| !b.trim().is_empty()) else {
            return Err(AiError::NotConfigured {
                provider: provider.display(),
                var: provider.base_var().to_string(),
            });
        };
        if provider.key_required() && pc.api_key.is_none() {
            return Err(AiError::MissingKey {
                provider: provider.display(),
                var: provider.key_var().unwrap_or("apiKeys").to_string(),
            });
        }
        let key = pc.api_key.as_ref();
        let built = match provider.wire() {
            Wire::Anthropic => anthropic::build(req, base, key),
            Wire::OpenAi => openai::build(req, base, key),
            Wire::Gemini => gemini::build(req, base, key),
        };
        let (url, headers, body) = built.map_err(|message| AiError::InvalidBaseUrl {
            provider: provider.display(),
            var: format!(
                "{} or settings baseUrls.{}",
                provider.base_var(),
                provider.id()
            ),
            message: scrub(&message, key.map(Secret::expose)),
        })?;
        warn_plain_http(provider, &url);
        Ok(Prepared {
            model: req.model.clone(),
            redacted_url: redact_url(&url),
            url,
            headers,
            body,
            key: key.map(|k| k.expose().to_string()),
            key_source: pc.key_source,
        })
    }

    /// Sends the request and returns once the answer has begun (first text, or a complete
    /// empty answer). Retries connection errors, 408/409/429/5xx/529 and errors or cuts before
    /// the first text, with jittered exponential backoff honouring `retry-after-ms` /
    /// `retry-after` (a hint over 60 s ends the retries at once), at most `max_retries` times
    /// and within `total_deadline`, which also bounds the returned stream. Cancellation
    /// returns [`AiError::Cancelled`] at once, dropping the connection.
    pub async fn stream(
        &self,
        req: &ChatRequest,
        cancel: CancellationToken,
    ) -> Result<ChatStream, AiError> {
        let total = self.total_deadline();
        let deadline = Instant::now() + total;
        let timeout = AiError::Timeout {
            seconds: retry::ceil_secs(total),
        };
        let prepared = self.prepare(req)?;
        let mut retries = 0u32;
        loop {
            if cancel.is_cancelled() {
                return Err(AiError::Cancelled);
            }
            tracing::debug!(
                provider = prepared.model.provider.id(),
                url = %prepared.redacted_url,
                attempt = retries + 1,
                "AI request"
            );
            let outcome = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(AiError::Cancelled),
                _ = tokio::time::sleep_until(deadline) => return Err(timeout),
                r = self.attempt(&prepared, &cancel, deadline) => r,
            };
            let failure = match outcome {
                Ok(stream) => return Ok(stream),
                Err(f) => f,
            };
            if !failure.retryable || retries >= self.config.max_retries {
                return Err(failure.error);
            }
            let delay = match failure.hint {
                Some(h) if retry::hint_usable(h) => h,
                Some(h) if h > retry::MAX_HINT => return Err(failure.error),
                _ => retry::backoff(retries),
            };
            if Instant::now() + delay >= deadline {
                return Err(failure.error);
            }
            tracing::debug!(
                provider = prepared.model.provider.id(),
                delay_ms = delay.as_millis() as u64,
                error = %failure.error,
                "AI request failed; retrying"
            );
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(AiError::Cancelled),
                _ = tokio::time::sleep(delay) => {}
            }
            retries += 1;
        }
    }

    async fn attempt(
        &self,
        p: &Prepared,
        cancel: &CancellationToken,
        deadline: Instant,
    ) -> Result<ChatStream, Failure> {
        let provider = p.model.provider.display();
        let response = self
            .http
            .post(p.url.clone())
            .headers(p.headers.clone())
            .json(&p.body)
            .send()
            .await
            .map_err(|e| {
                Failure::retry(AiError::Connect {
                    provider,
                    url: p.redacted_url.clone(),
                    message: scrub(&error_chain(&e), p.key.as_deref()),
                })
            })?;
        let status = response.status().as_u16();
        tracing::debug!(provider = p.model.provider.id(), status, "AI response");
        let ctx = Context {
            model: &p.model,
            key_source: &p.key_source,
            key: p.key.as_deref(),
            url: &p.redacted_url,
        };
        if !response.status().is_success() {
            let headers = response.headers().clone();
            let body = read_capped(response).await;
            return Err(classify_status(&ctx, status, &headers, &body));
        }
        let json_body = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if json_body {
            // A server that ignored `stream: true` or reports an error with status 200.
            let body = read_capped(response).await;
            let info = error::parse_error_body(&body, status);
            return Err(Failure::fatal(AiError::BadRequest {
                provider,
                message: if info.message.is_empty() || !body.contains("\"error\"") {
                    "the server answered with JSON instead of an event stream (does it support \"stream\": true?)".into()
                } else {
                    scrub(&info.message, p.key.as_deref())
                },
            }));
        }
        let decoder: Box<dyn Decode> = match p.model.provider.wire() {
            Wire::Anthropic => Box::new(anthropic::Decoder::new(provider, p.key.clone())),
            Wire::OpenAi => Box::new(openai::Decoder::new(provider, p.key.clone())),
            Wire::Gemini => Box::new(gemini::Decoder::new(provider, p.key.clone())),
        };
        let mut stream = ChatStream {
            provider,
            body: Some(response),
            parser: SseParser::new(),
            decoder,
            queue: VecDeque::new(),
            pending_err: None,
            done: false,
            cancel: cancel.clone(),
            deadline,
            deadline_secs: retry::ceil_secs(self.total_deadline()),
            text_chars: 0,
        };
        stream.prefetch().await.map_err(|e| {
            let retryable = match &e {
                AiError::StreamCut { .. } => true,
                AiError::StreamError { kind, .. } => stream_kind_retryable(kind),
                _ => false,
            };
            Failure {
                error: e,
                retryable,
                hint: None,
            }
        })?;
        Ok(stream)
    }
}

/// The answer as it arrives. Dropping it closes the connection.
pub struct ChatStream {
    provider: &'static str,
    body: Option<reqwest::Response>,
    parser: SseParser,
    decoder: Box<dyn Decode>,
    queue: VecDeque<StreamEvent>,
    /// Delivered after the events queued before it, so no text is lost before an error.
    pending_err: Option<AiError>,
    done: bool,
    cancel: CancellationToken,
    deadline: Instant,
    deadline_secs: u64,
    text_chars: usize,
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream")
            .field("provider", &self.provider)
            .field("done", &self.done)
            .field("text_chars", &self.text_chars)
            .finish_non_exhaustive()
    }
}

impl ChatStream {
    /// The next event; `None` after `Stop` (or after an error). EOF without the provider's
    /// terminal marker is `Err(StreamCut)`; an in-stream error event is `Err(StreamError)`;
    /// cancellation is `Err(Cancelled)` at once and closes the connection.
    pub async fn next(&mut self) -> Option<Result<StreamEvent, AiError>> {
        loop {
            if self.done {
                return None;
            }
            if self.cancel.is_cancelled() {
                self.close();
                return Some(Err(AiError::Cancelled));
            }
            if let Some(ev) = self.queue.pop_front() {
                match &ev {
                    StreamEvent::Stop(_) => self.close(),
                    StreamEvent::Text(t) => self.text_chars += t.chars().count(),
                    StreamEvent::Usage { .. } => {}
                }
                return Some(Ok(ev));
            }
            if let Some(e) = self.pending_err.take() {
                self.close();
                return Some(Err(e));
            }
            if self.body.is_none() {
                self.close();
                return None;
            }
            self.fill().await;
        }
    }

    /// The provider's display name.
    pub fn provider(&self) -> &'static str {
        self.provider
    }

    /// Characters of text handed out so far.
    pub fn text_chars(&self) -> usize {
        self.text_chars
    }

    fn close(&mut self) {
        self.done = true;
        self.body = None;
        self.queue.clear();
    }

    /// Reads until the first text or the end of the answer; an error before that is returned
    /// (so [`AiClient::stream`] can retry it), one after it waits its turn in `next`.
    async fn prefetch(&mut self) -> Result<(), AiError> {
        loop {
            if self
                .queue
                .iter()
                .any(|e| matches!(e, StreamEvent::Text(_) | StreamEvent::Stop(_)))
            {
                return Ok(());
            }
            if let Some(e) = self.pending_err.take() {
                self.close();
                return Err(e);
            }
            if self.body.is_none() {
                return Ok(());
            }
            self.fill().await;
        }
    }

    /// One read from the body: queues decoded events, or sets `pending_err`.
    async fn fill(&mut self) {
        let Some(body) = self.body.as_mut() else {
            return;
        };
        let read = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Err(AiError::Cancelled),
            _ = tokio::time::sleep_until(self.deadline) => Err(AiError::Timeout { seconds: self.deadline_secs }),
            c = body.chunk() => Ok(c),
        };
        let mut events = Vec::new();
        let eof = match read {
            Err(e) => {
                self.fail(e);
                return;
            }
            Ok(Err(e)) => {
                let message = format!(
                    "the connection failed before {} ({}), after {} characters of text",
                    self.decoder.terminal(),
                    error_chain(&e),
                    self.text_chars
                );
                self.fail(AiError::StreamCut {
                    provider: self.provider,
                    message,
                });
                return;
            }
            Ok(Ok(Some(bytes))) => {
                if let Err(message) = self.parser.feed(&bytes, &mut events) {
                    self.fail(AiError::StreamError {
                        provider: self.provider,
                        kind: "invalid_stream".into(),
                        message,
                    });
                    return;
                }
                false
            }
            Ok(Ok(None)) => {
                self.parser.finish(&mut events);
                true
            }
        };
        for ev in &events {
            if self.decoder.is_done() {
                break;
            }
            if let Err(e) = self.decoder.on_event(ev, &mut self.queue) {
                // An unparsable last fragment at EOF is a cut, not a protocol error.
                let e = match e {
                    AiError::StreamError { kind, .. } if eof && kind == "invalid_event" => {
                        AiError::StreamCut {
                            provider: self.provider,
                            message: format!(
                                "the connection closed inside an event, before {}",
                                self.decoder.terminal()
                            ),
                        }
                    }
                    other => other,
                };
                self.fail(e);
                return;
            }
        }
        if self.decoder.is_done() {
            // Everything needed has arrived; drop the body so the socket is released.
            self.body = None;
        } else if eof {
            self.body = None;
            if !self.decoder.on_eof(&mut self.queue) {
                let queued: usize = self
                    .queue
                    .iter()
                    .map(|e| match e {
                        StreamEvent::Text(t) => t.chars().count(),
                        _ => 0,
                    })
                    .sum();
                self.pending_err = Some(AiError::StreamCut {
                    provider: self.provider,
                    message: format!(
                        "the connection closed before {}, after {} characters of text",
                        self.decoder.terminal(),
                        self.text_chars + queued
                    ),
                });
            }
        }
    }

    fn fail(&mut self, e: AiError) {
        self.body = None;
        self.pending_err = Some(e);
    }
}
