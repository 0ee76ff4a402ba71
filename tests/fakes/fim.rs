//! A loopback fake of every completion endpoint builder-lsp speaks, routed by path, each on its
//! own wire format: llama.cpp `POST /infill` (SSE `data: {content, stop}` without `[DONE]`, or
//! one JSON body), OpenAI-compatible `POST /v1/completions` (SSE `choices[0].text` + `[DONE]`),
//! Ollama `POST /api/generate` (NDJSON `{response, done}`), Mistral `POST /v1/fim/completions`
//! (chat-completion-shaped chunks), DeepSeek `POST /beta/completions` (text-completion chunks),
//! and the chat fallbacks `POST /v1/chat/completions` (OpenAI) and `POST /v1/messages`
//! (Anthropic). Requests missing a field the real API requires get the API's 400; a wrong
//! key gets its 401. It records every request and when each connection ended, so tests can see
//! a superseded or cancelled request's connection closed.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::http;

#[derive(Debug, Clone)]
pub enum FimReply {
    /// The answer `text`, streamed in pieces of `chunk` bytes (one HTTP chunk each) when the
    /// request asked for a stream, else as one body; `first_delay` before the first piece,
    /// `delay` between pieces.
    Text {
        text: String,
        chunk: usize,
        first_delay: Duration,
        delay: Duration,
    },
    /// Any status with a JSON body.
    Status { status: u16, body: String },
    /// Reads the request and never answers, until the client closes the connection.
    Hang,
}

impl FimReply {
    pub fn text(t: &str) -> FimReply {
        FimReply::Text {
            text: t.to_string(),
            chunk: 4,
            first_delay: Duration::ZERO,
            delay: Duration::ZERO,
        }
    }

    pub fn slow(t: &str, first_delay: Duration) -> FimReply {
        FimReply::Text {
            text: t.to_string(),
            chunk: 4,
            first_delay,
            delay: Duration::ZERO,
        }
    }
}

#[derive(Debug, Clone)]
pub struct FimRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    pub at: Instant,
}

impl FimRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How one request's connection ended.
#[derive(Debug, Clone, Copy)]
pub struct Ending {
    /// Index of the request (arrival order).
    pub request: usize,
    pub at: Instant,
    /// The whole reply was written before the connection ended.
    pub completed: bool,
}

struct Shared {
    script: Vec<FimReply>,
    next: AtomicUsize,
    key: Option<String>,
    requests: Mutex<Vec<FimRequest>>,
    endings: Mutex<Vec<Ending>>,
}

pub struct FakeFim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: http::Server,
}

impl FakeFim {
    /// Serves `script` in order (the last reply repeats). `key`: the bearer token required
    /// (`x-api-key` on `/v1/messages`), or none.
    pub fn start(script: Vec<FimReply>, key: Option<&str>) -> FakeFim {
        assert!(!script.is_empty());
        let listener = http::bind_loopback();
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            script,
            next: AtomicUsize::new(0),
            key: key.map(str::to_string),
            requests: Mutex::new(Vec::new()),
            endings: Mutex::new(Vec::new()),
        });
        let stop = CancellationToken::new();
        let s2 = shared.clone();
        let server = http::serve(vec![(listener, ())], stop, move |sock, ()| {
            connection(sock, s2.clone())
        });
        FakeFim {
            addr,
            shared,
            _server: server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<FimRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    pub fn endings(&self) -> Vec<Ending> {
        self.shared.endings.lock().unwrap().clone()
    }

    /// Waits until request `i`'s connection has ended.
    pub fn wait_ended(&self, i: usize, limit: Duration) -> Option<Ending> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(e) = self.endings().into_iter().find(|e| e.request == i) {
                return Some(e);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn wait_requests(&self, n: usize, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while self.request_count() < n {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dialect {
    LlamaCpp,
    Completions,
    Ollama,
    Mistral,
    DeepSeek,
    Chat,
    Anthropic,
}

fn dialect(path: &str) -> Option<Dialect> {
    Some(match path {
        "/infill" => Dialect::LlamaCpp,
        "/v1/completions" => Dialect::Completions,
        "/api/generate" => Dialect::Ollama,
        "/v1/fim/completions" => Dialect::Mistral,
        "/beta/completions" => Dialect::DeepSeek,
        "/v1/chat/completions" => Dialect::Chat,
        "/v1/messages" => Dialect::Anthropic,
        _ => return None,
    })
}

/// The field the real API refuses the request without, if missing.
fn missing_field(d: Dialect, body: &Value) -> Option<&'static str> {
    let need: &[&'static str] = match d {
        Dialect::LlamaCpp => &["input_prefix", "input_suffix"],
        Dialect::Completions | Dialect::DeepSeek => &["model", "prompt"],
        Dialect::Mistral => &["model", "prompt"],
        Dialect::Ollama => &["model"],
        Dialect::Chat => &["model", "messages"],
        Dialect::Anthropic => &["model", "messages", "max_tokens"],
    };
    need.iter().copied().find(|f| body.get(*f).is_none())
}

fn error_body(d: Dialect, status: u16, message: &str) -> String {
    match d {
        Dialect::LlamaCpp => json!({"error": {"code": status, "message": message, "type": "invalid_request_error"}}),
        Dialect::Ollama => json!({"error": message}),
        Dialect::Mistral if status == 401 => json!({"message": "Unauthorized", "request_id": "fake"}),
        Dialect::Anthropic => json!({"type": "error", "error": {"type": "invalid_request_error", "message": message}}),
        _ => json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": null}}),
    }
    .to_string()
}

/// Whether the client closed while we wait `d` (then `false`).
async fn pause(sock: &mut TcpStream, d: Duration) -> bool {
    if d.is_zero() {
        return true;
    }
    let mut tmp = [0u8; 256];
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        r = sock.read(&mut tmp) => !matches!(r, Ok(0) | Err(_)),
    }
}

async fn chunk(sock: &mut TcpStream, data: &str) -> bool {
    let out = format!("{:x}\r\n{data}\r\n", data.len());
    sock.write_all(out.as_bytes()).await.is_ok() && sock.flush().await.is_ok()
}

fn pieces(text: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if cur.len() + c.len_utf8() > n.max(1) && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One streamed event carrying `piece`, in the dialect's framing (with its line ending).
fn stream_event(d: Dialect, model: &str, piece: &str, k: usize) -> String {
    let v = match d {
        Dialect::LlamaCpp => json!({"index": 0, "content": piece, "tokens": [], "stop": false,
            "id_slot": 0, "tokens_predicted": k + 1, "tokens_evaluated": 30}),
        Dialect::Completions | Dialect::DeepSeek => {
            json!({"id": "cmpl-fake", "object": "text_completion",
            "created": 1733300000, "model": model,
            "choices": [{"text": piece, "index": 0, "logprobs": null, "finish_reason": null}]})
        }
        Dialect::Mistral => {
            json!({"id": "fim-fake", "object": "chat.completion.chunk", "created": 1733300000,
            "model": model, "choices": [{"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": null}]})
        }
        Dialect::Ollama => {
            return format!(
                "{}\n",
                json!({"model": model, "created_at": "2026-12-04T17:00:00.000000Z", "response": piece, "done": false})
            )
        }
        Dialect::Chat | Dialect::Anthropic => {
            unreachable!("chat frames come from the shared builders")
        }
    };
    format!("data: {v}\n\n")
}

fn final_events(d: Dialect, model: &str, n: usize) -> Vec<String> {
    match d {
        Dialect::LlamaCpp => vec![format!(
            "data: {}\n\n",
            json!({"index": 0, "content": "", "tokens": [], "id_slot": 0, "stop": true, "model": model,
                "tokens_predicted": n, "tokens_evaluated": 30, "stop_type": "eos", "stopping_word": "",
                "truncated": false, "timings": {"prompt_n": 30, "predicted_n": n}})
        )],
        Dialect::Completions | Dialect::DeepSeek => vec![
            format!(
                "data: {}\n\n",
                json!({"id": "cmpl-fake", "object": "text_completion", "created": 1733300000,
                "model": model, "choices": [{"text": "", "index": 0, "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 30, "completion_tokens": n, "total_tokens": 30 + n}})
            ),
            "data: [DONE]\n\n".into(),
        ],
        Dialect::Mistral => vec![
            format!(
                "data: {}\n\n",
                json!({"id": "fim-fake", "object": "chat.completion.chunk", "created": 1733300000,
                "model": model, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 30, "completion_tokens": n, "total_tokens": 30 + n}})
            ),
            "data: [DONE]\n\n".into(),
        ],
        Dialect::Ollama => vec![format!(
            "{}\n",
            json!({"model": model, "created_at": "2026-12-04T17:00:01.000000Z", "response": "", "done": true,
                "done_reason": "stop", "context": [1, 2, 3], "total_duration": 1000, "eval_count": n})
        )],
        Dialect::Chat | Dialect::Anthropic => Vec::new(),
    }
}

/// The non-streamed answer.
fn whole(d: Dialect, model: &str, text: &str) -> Value {
    match d {
        Dialect::LlamaCpp => {
            json!({"index": 0, "content": text, "tokens": [], "id_slot": 0, "stop": true,
            "model": model, "tokens_predicted": 1, "stop_type": "eos"})
        }
        Dialect::Completions | Dialect::DeepSeek => {
            json!({"id": "cmpl-fake", "object": "text_completion",
            "created": 1733300000, "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": null, "finish_reason": "stop"}]})
        }
        Dialect::Mistral => {
            json!({"id": "fim-fake", "object": "chat.completion", "created": 1733300000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "tool_calls": null}, "finish_reason": "stop"}]})
        }
        Dialect::Ollama => {
            json!({"model": model, "created_at": "2026-12-04T17:00:01Z", "response": text, "done": true, "done_reason": "stop"})
        }
        Dialect::Chat | Dialect::Anthropic => {
            json!({"error": "the fake streams chat answers only"})
        }
    }
}

async fn connection(mut sock: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    loop {
        let Some(raw) = http::read_request(&mut sock, &mut buf).await else {
            return;
        };
        let body: Value = serde_json::from_slice(&raw.body).unwrap_or(Value::Null);
        let idx = shared.next.fetch_add(1, Ordering::SeqCst);
        let path = raw.target.split('?').next().unwrap_or("").to_string();
        shared.requests.lock().unwrap().push(FimRequest {
            path: path.clone(),
            headers: raw.headers.clone(),
            body: body.clone(),
            at: Instant::now(),
        });
        let reply = shared.script[idx.min(shared.script.len() - 1)].clone();
        let completed = respond(&mut sock, &shared, &raw.headers, &path, &body, reply).await;
        shared.endings.lock().unwrap().push(Ending {
            request: idx,
            at: Instant::now(),
            completed,
        });
        if !completed {
            return;
        }
    }
}

async fn plain(sock: &mut TcpStream, status: u16, ctype: &str, body: &str) -> bool {
    let head = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n",
        http::reason(status),
        body.len()
    );
    sock.write_all(head.as_bytes()).await.is_ok()
        && sock.write_all(body.as_bytes()).await.is_ok()
        && sock.flush().await.is_ok()
}

/// Writes the reply; `false` when the connection ended before all of it was written.
async fn respond(
    sock: &mut TcpStream,
    shared: &Shared,
    headers: &[(String, String)],
    path: &str,
    body: &Value,
    reply: FimReply,
) -> bool {
    let Some(d) = dialect(path) else {
        return plain(sock, 404, "application/json", r#"{"error":"not found"}"#).await;
    };
    if let Some(key) = &shared.key {
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        let ok = if d == Dialect::Anthropic {
            get("x-api-key") == Some(key.as_str())
        } else {
            get("authorization") == Some(format!("Bearer {key}").as_str())
        };
        if !ok {
            return plain(
                sock,
                401,
                "application/json",
                &error_body(d, 401, "Invalid API key"),
            )
            .await;
        }
    }
    if let Some(f) = missing_field(d, body) {
        let m = format!("\"{f}\" is required");
        return plain(sock, 400, "application/json", &error_body(d, 400, &m)).await;
    }
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("fake-model")
        .to_string();
    match reply {
        FimReply::Hang => {
            // Wait for the client to give up; never answer.
            super::http::hang_until_closed(sock).await
        }
        FimReply::Status { status, body } => plain(sock, status, "application/json", &body).await,
        FimReply::Text {
            text,
            chunk: n,
            first_delay,
            delay,
        } => {
            let stream = body
                .get("stream")
                .and_then(Value::as_bool)
                .unwrap_or(d == Dialect::Ollama);
            if !pause(sock, first_delay).await {
                return false;
            }
            if !stream {
                let v = whole(d, &model, &text).to_string();
                return plain(sock, 200, "application/json", &v).await;
            }
            let ctype = if d == Dialect::Ollama {
                "application/x-ndjson"
            } else {
                "text/event-stream"
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            if sock.write_all(head.as_bytes()).await.is_err() {
                return false;
            }
            let parts = pieces(&text, n);
            let events: Vec<String> = match d {
                Dialect::Chat => super::openai_frames(&parts, "stop"),
                Dialect::Anthropic => {
                    super::anthropic_frames(&parts, "end_turn", parts.len() as u64)
                }
                _ => {
                    let mut ev: Vec<String> = parts
                        .iter()
                        .enumerate()
                        .map(|(k, p)| stream_event(d, &model, p, k))
                        .collect();
                    ev.extend(final_events(d, &model, parts.len()));
                    ev
                }
            };
            for (i, e) in events.iter().enumerate() {
                if i > 0 && !pause(sock, delay).await {
                    return false;
                }
                if !chunk(sock, e).await {
                    return false;
                }
            }
            sock.write_all(b"0\r\n\r\n").await.is_ok() && sock.flush().await.is_ok()
        }
    }
}
