//! Loopback fake LLM providers speaking the real wire formats (PROTOCOLS.md §1–§4).
//!
//! Plain tokio TCP and hand-written HTTP/1.1, so a test controls every byte: one chunked
//! `Transfer-Encoding` chunk per SSE frame (flushed, Nagle off), pauses between frames, a socket
//! closed mid-stream, a server that never answers. Each fake runs on its own thread and runtime,
//! so it works under any test runtime and keeps serving while the test blocks.
//!
//! Use: `let fake = FakeProvider::start(vec![Reply::sse(anthropic_frames(..))]);` then point a
//! client at `fake.base_url_for(Provider::Anthropic)` (or `fake.config(..)`), and assert on
//! `fake.requests()`.
#![allow(dead_code)]

pub mod e2b;
pub mod fim;
pub mod http;
pub mod vercel;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use builder_lsp::ai::{AiConfig, Provider};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

/// Input tokens every frame helper reports (Anthropic `message_start`, OpenAI `prompt_tokens`,
/// Gemini `promptTokenCount`), so tests can assert usage parsing.
pub const INPUT_TOKENS: u64 = 25;

/// What the fake does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 `text/event-stream`; each frame is a complete SSE event text (with its blank line)
    /// sent as its own chunk. `cut_after: Some(n)`: close the socket after n frames, without
    /// the terminating chunk.
    Sse {
        frames: Vec<String>,
        delay_between: Duration,
        cut_after: Option<usize>,
    },
    /// 200 `text/event-stream` from raw byte pieces, each its own write with a pause, so the
    /// client sees splits inside lines, `\r\n` pairs and UTF-8 characters.
    SseBytes {
        chunks: Vec<Vec<u8>>,
        delay_between: Duration,
    },
    /// Any status with a body (`content-length`), plus extra headers (`retry-after`, …).
    Status(http::Canned),
    /// Reads the request and never answers (until the client goes away).
    Hang,
}

impl Reply {
    pub fn sse(frames: Vec<String>) -> Reply {
        Reply::Sse {
            frames,
            delay_between: Duration::ZERO,
            cut_after: None,
        }
    }
    pub fn sse_slow(frames: Vec<String>, delay_between: Duration) -> Reply {
        Reply::Sse {
            frames,
            delay_between,
            cut_after: None,
        }
    }
    pub fn sse_cut(frames: Vec<String>, cut_after: usize) -> Reply {
        Reply::Sse {
            frames,
            delay_between: Duration::ZERO,
            cut_after: Some(cut_after),
        }
    }
    /// Pieces of `bytes` of `n` bytes each (ignoring character boundaries on purpose).
    pub fn sse_bytes(bytes: &[u8], n: usize) -> Reply {
        Reply::SseBytes {
            chunks: bytes.chunks(n.max(1)).map(<[u8]>::to_vec).collect(),
            delay_between: Duration::from_millis(1),
        }
    }
    pub fn status(status: u16, body: impl Into<String>) -> Reply {
        Reply::Status(http::Canned::new(status, &[], body))
    }
    pub fn status_with(status: u16, headers: &[(&str, &str)], body: impl Into<String>) -> Reply {
        Reply::Status(http::Canned::new(status, headers, body))
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query, e.g. `/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse`.
    pub path: String,
    /// Names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` when it is not JSON).
    pub body: Value,
    pub body_text: String,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }
}

struct Shared {
    script: Vec<Reply>,
    next: AtomicUsize,
    requests: Mutex<Vec<RecordedRequest>>,
}

pub struct FakeProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: http::Server,
}

impl FakeProvider {
    /// Binds 127.0.0.1:0 and serves `script` in order, one reply per request (the last one
    /// repeats). Connections are kept alive, as real servers do.
    pub fn start(script: Vec<Reply>) -> FakeProvider {
        assert!(!script.is_empty(), "a fake needs at least one reply");
        let listener = http::bind_loopback();
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            script,
            next: AtomicUsize::new(0),
            requests: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        let (s2, stop2) = (shared.clone(), stop.clone());
        let server = http::serve(vec![(listener, ())], stop, move |sock, ()| {
            serve_connection(sock, s2.clone(), stop2.clone())
        });
        FakeProvider {
            addr,
            shared,
            _server: server,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` — the base for Anthropic and Gemini.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The base URL a provider's client expects: root for Anthropic and Gemini (they append
    /// `/v1/messages`, `/v1beta/...`), `…/v1` for the OpenAI-style ones.
    pub fn base_url_for(&self, provider: Provider) -> String {
        match provider {
            Provider::Anthropic | Provider::Google => self.root_url(),
            _ => format!("{}/v1", self.root_url()),
        }
    }

    /// An `AiConfig` resolved from an environment pointing `provider` at this fake, with `key`
    /// in the provider's key variable, and a 10 s total deadline.
    pub fn config(&self, provider: Provider, key: Option<&str>) -> AiConfig {
        let mut env = HashMap::new();
        env.insert(provider.base_var().to_string(), self.base_url_for(provider));
        if let (Some(var), Some(k)) = (provider.key_var(), key) {
            env.insert(var.to_string(), k.to_string());
        }
        let mut c = AiConfig::resolve(&env, &HashMap::new(), &HashMap::new());
        c.total_deadline = Duration::from_secs(10);
        c
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().expect("requests lock").clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().expect("requests lock").len()
    }

    /// The only request; panics if there were none or several.
    pub fn single_request(&self) -> RecordedRequest {
        let r = self.requests();
        assert_eq!(r.len(), 1, "expected exactly one request, got {}", r.len());
        r.into_iter().next().expect("one request")
    }
}

/// Reads one request; `None` at EOF.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<RecordedRequest> {
    let raw = http::read_request(sock, buf).await?;
    let body_text = String::from_utf8_lossy(&raw.body).into_owned();
    Some(RecordedRequest {
        method: raw.method,
        path: raw.target,
        headers: raw.headers,
        body: serde_json::from_str(&body_text).unwrap_or(Value::Null),
        body_text,
    })
}

const SSE_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
cache-control: no-cache\r\ntransfer-encoding: chunked\r\n";

async fn write_chunk(sock: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    sock.write_all(&out).await?;
    sock.flush().await
}

async fn serve_connection(mut sock: TcpStream, shared: Arc<Shared>, stop: CancellationToken) {
    let mut buf = Vec::new();
    loop {
        let req = tokio::select! {
            _ = stop.cancelled() => return,
            r = read_request(&mut sock, &mut buf) => match r { Some(r) => r, None => return },
        };
        let idx = shared.next.fetch_add(1, Ordering::SeqCst);
        shared.requests.lock().expect("requests lock").push(req);
        let reply = shared.script[idx.min(shared.script.len() - 1)].clone();
        let ids = format!("request-id: req_fake{idx}\r\nx-request-id: req_fake{idx}\r\n");
        let keep = tokio::select! {
            _ = stop.cancelled() => false,
            k = send_reply(&mut sock, reply, &ids) => k,
        };
        if !keep {
            return;
        }
    }
}

/// Writes the SSE response head (chunked); `false` when the write failed.
async fn write_sse_head(sock: &mut TcpStream, ids: &str) -> bool {
    sock.write_all(format!("{SSE_HEAD}{ids}\r\n").as_bytes())
        .await
        .is_ok()
}

/// Writes one reply; `false` when the connection must (or did) close.
async fn send_reply(sock: &mut TcpStream, reply: Reply, ids: &str) -> bool {
    match reply {
        Reply::Hang => {
            // Wait for the client to give up; never answer.
            http::hang_until_closed(sock).await
        }
        Reply::Status(http::Canned {
            status,
            headers,
            body,
        }) => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\n{ids}",
                http::reason(status),
                body.len()
            );
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            {
                head.push_str("content-type: application/json\r\n");
            }
            for (k, v) in &headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let mut out = head.into_bytes();
            out.extend_from_slice(body.as_bytes());
            sock.write_all(&out).await.is_ok() && sock.flush().await.is_ok()
        }
        Reply::Sse {
            frames,
            delay_between,
            cut_after,
        } => {
            if !write_sse_head(sock, ids).await {
                return false;
            }
            for (i, frame) in frames.iter().enumerate() {
                if cut_after == Some(i) {
                    return false;
                }
                if i > 0 && !delay_between.is_zero() {
                    tokio::time::sleep(delay_between).await;
                }
                if write_chunk(sock, frame.as_bytes()).await.is_err() {
                    return false;
                }
            }
            if cut_after.is_some() {
                return false;
            }
            sock.write_all(b"0\r\n\r\n").await.is_ok()
        }
        Reply::SseBytes {
            chunks,
            delay_between,
        } => {
            if !write_sse_head(sock, ids).await {
                return false;
            }
            for c in &chunks {
                if write_chunk(sock, c).await.is_err() {
                    return false;
                }
                tokio::time::sleep(delay_between).await;
            }
            sock.write_all(b"0\r\n\r\n").await.is_ok()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Frame builders: real shapes from PROTOCOLS.md (unknown fields included on purpose).

/// Splits `text` into pieces of at most `n` bytes, at char boundaries (a piece holds at least
/// one char).
pub fn chunk_text(text: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if !cur.is_empty() && cur.len() + c.len_utf8() > n {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The first `keep` of `frames`, then `last`: a stream that breaks off (typically with an
/// in-stream error frame).
pub fn broken_after(mut frames: Vec<String>, keep: usize, last: String) -> Vec<String> {
    frames.truncate(keep);
    frames.push(last);
    frames
}

/// `event:` + `data:` (Anthropic sends both; the SDKs dispatch on the name).
pub fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// A whole Anthropic stream: message_start (input usage), content_block_start, ping, one
/// text_delta per chunk, content_block_stop, message_delta (stop_reason + cumulative output
/// tokens), message_stop.
pub fn anthropic_frames(
    text_chunks: &[impl AsRef<str>],
    stop_reason: &str,
    output_tokens: u64,
) -> Vec<String> {
    let mut f = vec![anthropic_event(
        "message_start",
        json!({"type":"message_start","message":{"id":"msg_01Fake","type":"message","role":"assistant",
            "content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,
            "usage":{"input_tokens":INPUT_TOKENS,"output_tokens":1}}}),
    )];
    f.push(anthropic_event(
        "content_block_start",
        json!({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}),
    ));
    f.push(anthropic_event("ping", json!({"type": "ping"})));
    for c in text_chunks {
        f.push(anthropic_event(
            "content_block_delta",
            json!({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":c.as_ref()}}),
        ));
    }
    f.extend(anthropic_tail(stop_reason, output_tokens));
    f
}

/// content_block_stop, message_delta, message_stop.
pub fn anthropic_tail(stop_reason: &str, output_tokens: u64) -> Vec<String> {
    vec![
        anthropic_event(
            "content_block_stop",
            json!({"type":"content_block_stop","index":0}),
        ),
        anthropic_event(
            "message_delta",
            json!({"type":"message_delta","delta":{"stop_reason":stop_reason,"stop_sequence":null},
                "usage":{"output_tokens":output_tokens}}),
        ),
        anthropic_event("message_stop", json!({"type":"message_stop"})),
    ]
}

/// The mid-stream `event: error` Anthropic sends when the status was already 200.
pub fn anthropic_error_event(kind: &str, message: &str) -> String {
    anthropic_event(
        "error",
        json!({"type":"error","error":{"type":kind,"message":message}}),
    )
}

pub fn anthropic_error_body(kind: &str, message: &str) -> String {
    json!({"type":"error","error":{"type":kind,"message":message},"request_id":"req_011Fake"})
        .to_string()
}

fn openai_chunk(delta: Value, finish_reason: Value, extra: &[(&str, Value)]) -> String {
    let mut v = json!({"id":"chatcmpl-Fake","object":"chat.completion.chunk","created":1769092764,
        "model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_29330a9688",
        "choices":[{"index":0,"delta":delta,"logprobs":null,"finish_reason":finish_reason}],
        "usage":null,"obfuscation":"ZGF"});
    for (k, x) in extra {
        v[*k] = x.clone();
    }
    format!("data: {v}\n\n")
}

/// Data-only OpenAI stream: role chunk, one content chunk each, finish chunk, usage chunk
/// (`choices: []`, prompt = INPUT_TOKENS, completion = number of chunks), `data: [DONE]`.
pub fn openai_frames(chunks: &[impl AsRef<str>], finish_reason: &str) -> Vec<String> {
    openai_style_frames(chunks, finish_reason, &[])
}

fn openai_style_frames(
    chunks: &[impl AsRef<str>],
    finish_reason: &str,
    extra: &[(&str, Value)],
) -> Vec<String> {
    let mut f = vec![openai_chunk(
        json!({"role":"assistant","content":"","refusal":null}),
        Value::Null,
        extra,
    )];
    for c in chunks {
        f.push(openai_chunk(
            json!({"content": c.as_ref()}),
            Value::Null,
            extra,
        ));
    }
    f.push(openai_chunk(json!({}), json!(finish_reason), extra));
    f.push(openai_usage_frame(chunks.len() as u64));
    f.push("data: [DONE]\n\n".to_string());
    f
}

pub fn openai_usage_frame(completion_tokens: u64) -> String {
    let v = json!({"id":"chatcmpl-Fake","object":"chat.completion.chunk","created":1769092764,
        "model":"gpt-4o-mini-2024-07-18","choices":[],
        "usage":{"prompt_tokens":INPUT_TOKENS,"completion_tokens":completion_tokens,
                 "total_tokens":INPUT_TOKENS + completion_tokens}});
    format!("data: {v}\n\n")
}

/// A content chunk alone (for building broken streams).
pub fn openai_content_frame(text: &str) -> String {
    openai_chunk(json!({"content": text}), Value::Null, &[])
}

/// Groq: OpenAI frames with `x_groq` on each chunk.
pub fn groq_frames(chunks: &[impl AsRef<str>], finish_reason: &str) -> Vec<String> {
    openai_style_frames(
        chunks,
        finish_reason,
        &[("x_groq", json!({"id":"req_01fakegroq"}))],
    )
}

pub const OPENROUTER_COMMENT: &str = ": OPENROUTER PROCESSING\n\n";

/// OpenRouter: OpenAI frames with a `provider` field and `: OPENROUTER PROCESSING` comments
/// before the first data and between chunks (some as their own write, some glued to data).
pub fn openrouter_frames(chunks: &[impl AsRef<str>], finish_reason: &str) -> Vec<String> {
    let frames = openai_style_frames(chunks, finish_reason, &[("provider", json!("Anthropic"))]);
    let mut out = vec![
        OPENROUTER_COMMENT.to_string(),
        OPENROUTER_COMMENT.to_string(),
    ];
    for (i, f) in frames.into_iter().enumerate() {
        if i % 2 == 0 {
            out.push(format!("{OPENROUTER_COMMENT}{f}"));
        } else {
            out.push(OPENROUTER_COMMENT.to_string());
            out.push(f);
        }
    }
    out
}

/// The 200 + in-stream error frame OpenRouter sends before closing; `code` is a string or a
/// number in real traffic.
pub fn openrouter_error_frame(code: Value, message: &str) -> String {
    let v = json!({"id":"cmpl-abc123","object":"chat.completion.chunk","created":1234567890,
        "model":"gpt-3.5-turbo","provider":"openai","error":{"code":code,"message":message},
        "choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]});
    format!("data: {v}\n\n")
}

pub fn openai_error_body(message: &str, kind: &str, code: Option<&str>) -> String {
    json!({"error":{"message":message,"type":kind,"param":null,"code":code}}).to_string()
}

/// OpenRouter's pre-stream error body: numeric `code` equal to the HTTP status.
pub fn openrouter_error_body(code: u16, message: &str) -> String {
    json!({"error":{"code":code,"message":message,"metadata":{}}}).to_string()
}

/// Gemini stream: one frame per chunk, CRLF separators (Google's frontend), usage on every
/// frame, `finishReason` + final usage (candidates = number of chunks) on the last one.
pub fn gemini_frames(chunks: &[impl AsRef<str>], finish_reason: &str) -> Vec<String> {
    let n = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let last = i + 1 == n;
            let mut cand =
                json!({"content":{"role":"model","parts":[{"text":c.as_ref()}]},"index":0});
            let mut usage = json!({"promptTokenCount":INPUT_TOKENS,"totalTokenCount":INPUT_TOKENS});
            if last {
                cand["finishReason"] = json!(finish_reason);
                usage = json!({"promptTokenCount":INPUT_TOKENS,"candidatesTokenCount":n as u64,
                    "totalTokenCount":INPUT_TOKENS + n as u64});
            }
            let v = json!({"candidates":[cand],"usageMetadata":usage,
                "modelVersion":"gemini-2.5-flash","responseId":"tTCwFake"});
            format!("data: {v}\r\n\r\n")
        })
        .collect()
}

pub fn gemini_error_body(code: u16, status: &str, message: &str) -> String {
    json!({"error":{"code":code,"message":message,"status":status}}).to_string()
}

/// Gemini's answer to a bad key: 400 INVALID_ARGUMENT with reason API_KEY_INVALID.
pub fn gemini_key_invalid_body() -> String {
    json!({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.",
        "status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo",
        "reason":"API_KEY_INVALID","domain":"googleapis.com"}]}})
    .to_string()
}

/// Gemini 429 with a RetryInfo hint.
pub fn gemini_rate_limit_body(retry_delay: &str) -> String {
    json!({"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).",
        "status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay":retry_delay}]}})
    .to_string()
}
