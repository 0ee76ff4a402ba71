//! Loopback fake of E2B (PROTOCOLS.md §5): the control plane and envd, each on its own
//! listener, in the style of the LLM fakes — plain tokio TCP, hand-written HTTP/1.1, own thread
//! and runtime, every byte under the test's control.
//!
//! - Control plane: `POST/GET/DELETE /sandboxes[/{id}]`, `GET /sandboxes`,
//!   `POST /sandboxes/{id}/timeout|refreshes`; 401 on a bad `X-API-Key`, 404 JSON for unknown
//!   or expired ids, scripted create failures, a TTL after which the sandbox is gone.
//! - envd, routed by `E2b-Sandbox-Id` (like the shared `sandbox.e2b.app` host): 502 for a
//!   gone sandbox, 401 for a wrong `X-Access-Token`, `/health`, `/files` (multipart and raw
//!   octet-stream, parents auto-created) over an in-memory filesystem per sandbox,
//!   `filesystem.Filesystem/MakeDir`, `process.Process/Start`, `/Connect` and `/SendSignal`.
//! - `Start` parses the request envelope and "runs" the client's command lines against the
//!   in-memory filesystem: `npm install`, `cat`, `ls`, `echo`, `find`, `sleep`, `true`/`false`,
//!   `sh -c` scripts (`;`, `&&`, `||`, `>&2`, `exit N`), the Vite dev server (banner,
//!   keepalives, runs until killed, holds port 5173), the health probe, the group kill. Output
//!   envelopes go out batched (several in one write) and split inside headers and bodies.
//! - Scripted stream faults: end-stream error, connection cut before the end event, clean EOF
//!   without end-stream, plain HTTP 502, a compressed-flag envelope.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use builder_lsp::sandbox::e2b::E2bConfig;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::http::{reason, resolve};

/// The key the fake accepts.
pub const FAKE_KEY: &str = "e2b_0f1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d4";
/// The `domain` create answers with (deliberately not the configured one: clients must build
/// URLs from the answer).
pub const FAKE_DOMAIN: &str = "fake.e2b.test";
pub const HOME: &str = "/home/user";
const ENVD_VERSION: &str = "0.4.1";
/// Pause between keepalive envelopes of long-running processes.
const KEEPALIVE_EVERY: Duration = Duration::from_millis(150);

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `"api"` or `"envd"`.
    pub side: &'static str,
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::http::header(&self.headers, name)
    }
    pub fn route(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(&self.path, name)
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    /// The JSON message inside a Connect request envelope.
    pub fn envelope_json(&self) -> Value {
        if self.body.len() < 5 {
            return Value::Null;
        }
        serde_json::from_slice(&self.body[5..]).unwrap_or(Value::Null)
    }
}

/// A scripted plain HTTP answer (create failures).
#[derive(Debug, Clone)]
pub struct FakeReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl FakeReply {
    /// The E2B error body shape: `{"code":status,"message":...}`.
    pub fn error(status: u16, message: &str) -> FakeReply {
        FakeReply {
            status,
            headers: Vec::new(),
            body: json!({"code": status, "message": message}).to_string(),
        }
    }
    pub fn retry_after(mut self, value: &str) -> FakeReply {
        self.headers.push(("retry-after".into(), value.into()));
        self
    }
}

/// What goes wrong with the next `process.Process/Start`.
#[derive(Debug, Clone)]
pub enum StreamFault {
    /// After the start event and one more, an end-stream envelope with this Connect error.
    EndStreamError { code: String, message: String },
    /// After the start event and one more, the socket closes (no terminating chunk).
    CutBeforeEnd,
    /// After the start event and one more, the HTTP body ends cleanly but without end-stream.
    EofWithoutEndStream,
    /// The edge answers a plain `502 Bad Gateway` instead of a stream.
    Http502,
    /// After the start event, an envelope with the compressed flag (0x01).
    Compressed,
    /// After the start event and one more, the socket closes and the process runs on (a
    /// network blip): `process.Process/Connect` reattaches to its output.
    Dropped,
}

/// Where a process's events go: the stream currently attached (`Start`, then any `Connect`).
#[derive(Clone, Default)]
struct Tap(Arc<Mutex<Option<mpsc::UnboundedSender<Ev>>>>);

impl Tap {
    fn send(&self, ev: Ev) {
        if let Some(tx) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            let _ = tx.send(ev);
        }
    }

    /// Attaches a new stream, detaching the previous one.
    fn attach(&self) -> mpsc::UnboundedReceiver<Ev> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
        rx
    }
}

struct Proc {
    line: String,
    kill: CancellationToken,
    tap: Tap,
}

struct FakeSandbox {
    token: String,
    template: String,
    timeout_secs: u64,
    expires_at: Instant,
    deleted: bool,
    /// Cancelled when the VM goes away (delete, expiry): its streams are cut.
    alive: CancellationToken,
    files: BTreeMap<String, Vec<u8>>,
    dirs: BTreeSet<String>,
    procs: HashMap<u32, Proc>,
    /// Port 5173: the pid of the dev server listening on it.
    dev_port: Option<u32>,
}

impl FakeSandbox {
    fn live(&self) -> bool {
        !self.deleted && Instant::now() < self.expires_at
    }

    fn is_dir(&self, path: &str) -> bool {
        let prefix = format!("{}/", path.trim_end_matches('/'));
        self.dirs.contains(path) || self.files.keys().any(|f| f.starts_with(&prefix))
    }

    fn add_parents(&mut self, path: &str) {
        let mut cur = String::new();
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        self.dirs.insert("/".into());
        for p in &parts[..parts.len().saturating_sub(1)] {
            cur.push('/');
            cur.push_str(p);
            self.dirs.insert(cur.clone());
        }
    }

    fn write(&mut self, path: &str, bytes: Vec<u8>) {
        self.add_parents(path);
        self.files.insert(path.to_string(), bytes);
    }
}

#[derive(Default)]
struct State {
    sandboxes: HashMap<String, FakeSandbox>,
    create_script: VecDeque<FakeReply>,
    stream_faults: VecDeque<StreamFault>,
    upload_faults: VecDeque<u16>,
    ttl: Option<Duration>,
    /// `Some`: the only templates create accepts.
    templates: Option<Vec<String>>,
    envd_down: bool,
    next_pid: u32,
    requests: Vec<Recorded>,
    /// (sandbox, pid) of every `SendSignal` SIGKILL.
    signals: Vec<(String, u32)>,
    /// (sandbox, pgid) of every `kill -s KILL -- -PGID` command line.
    group_kills: Vec<(String, u32)>,
    /// (sandbox, line) of every started process.
    started: Vec<(String, String)>,
    /// Stream writes that carried several envelopes / that were split across HTTP chunks.
    multi_envelope_writes: usize,
    split_writes: usize,
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

pub struct FakeE2b {
    api_addr: SocketAddr,
    envd_addr: SocketAddr,
    state: Shared,
    _server: super::http::Server,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Api,
    Envd,
}

impl FakeE2b {
    pub fn start() -> FakeE2b {
        let (api, envd) = (super::http::bind_loopback(), super::http::bind_loopback());
        let (api_addr, envd_addr) = (
            api.local_addr().expect("addr"),
            envd.local_addr().expect("addr"),
        );
        let state: Shared = Arc::new(Mutex::new(State {
            next_pid: 341,
            ..State::default()
        }));
        let stop = CancellationToken::new();
        let (st, stop2) = (state.clone(), stop.clone());
        let server = super::http::serve(
            vec![(api, Side::Api), (envd, Side::Envd)],
            stop,
            move |sock, side| serve_connection(sock, side, st.clone(), stop2.clone()),
        );
        FakeE2b {
            api_addr,
            envd_addr,
            state,
            _server: server,
        }
    }

    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    pub fn envd_url(&self) -> String {
        format!("http://{}", self.envd_addr)
    }

    /// The variables `E2bConfig::from_env` reads, pointing at this fake.
    pub fn env(&self, key: Option<&str>) -> HashMap<String, String> {
        let mut m = HashMap::new();
        m.insert("E2B_API_URL".to_string(), self.api_url());
        m.insert("E2B_SANDBOX_URL".to_string(), self.envd_url());
        if let Some(k) = key {
            m.insert("E2B_API_KEY".to_string(), k.to_string());
        }
        m
    }

    /// A config for this fake with `key`.
    pub fn config_with_key(&self, key: &str) -> E2bConfig {
        let env = self.env(Some(key));
        E2bConfig::from_env(&|k: &str| env.get(k).cloned()).expect("fake config")
    }

    pub fn config(&self) -> E2bConfig {
        self.config_with_key(FAKE_KEY)
    }

    /// The next creates answer these, in order, before creates succeed again.
    pub fn fail_creates(&self, replies: Vec<FakeReply>) {
        lock(&self.state).create_script.extend(replies);
    }

    pub fn fail_next_stream(&self, fault: StreamFault) {
        lock(&self.state).stream_faults.push_back(fault);
    }

    /// The next `POST /files` answers `status` (e.g. 507, disk full).
    pub fn fail_next_upload(&self, status: u16) {
        lock(&self.state).upload_faults.push_back(status);
    }

    /// Lifetime of sandboxes created or kept alive from now on (instead of their `timeout`).
    pub fn set_ttl(&self, ttl: Option<Duration>) {
        lock(&self.state).ttl = ttl;
    }

    /// Create accepts only these templates (default: any).
    pub fn only_templates(&self, names: &[&str]) {
        lock(&self.state).templates = Some(names.iter().map(|n| n.to_string()).collect());
    }

    /// Every envd request answers 502 (the edge cannot reach the VM).
    pub fn set_envd_down(&self, down: bool) {
        lock(&self.state).envd_down = down;
    }

    /// Ends the sandbox's life now (as its timeout would).
    pub fn expire(&self, id: &str) {
        let mut st = lock(&self.state);
        if let Some(sb) = st.sandboxes.get_mut(id) {
            sb.expires_at = Instant::now();
            sb.alive.cancel();
        }
    }

    /// Gives the sandbox a new envd token, so the client's one is wrong.
    pub fn rotate_token(&self, id: &str) {
        if let Some(sb) = lock(&self.state).sandboxes.get_mut(id) {
            sb.token = format!("tok-rotated-{}", fastrand::u64(..));
        }
    }

    pub fn is_live(&self, id: &str) -> bool {
        lock(&self.state)
            .sandboxes
            .get(id)
            .is_some_and(|s| s.live())
    }

    pub fn sandbox_ids(&self) -> Vec<String> {
        lock(&self.state).sandboxes.keys().cloned().collect()
    }

    pub fn token(&self, id: &str) -> Option<String> {
        lock(&self.state).sandboxes.get(id).map(|s| s.token.clone())
    }

    /// A file by absolute path.
    pub fn file(&self, id: &str, path: &str) -> Option<Vec<u8>> {
        lock(&self.state)
            .sandboxes
            .get(id)
            .and_then(|s| s.files.get(path).cloned())
    }

    pub fn put_file(&self, id: &str, path: &str, bytes: &[u8]) {
        if let Some(s) = lock(&self.state).sandboxes.get_mut(id) {
            s.write(path, bytes.to_vec());
        }
    }

    pub fn is_dir(&self, id: &str, path: &str) -> bool {
        lock(&self.state)
            .sandboxes
            .get(id)
            .is_some_and(|s| s.is_dir(path))
    }

    /// Running processes: (pid, command line).
    pub fn running(&self, id: &str) -> Vec<(u32, String)> {
        let st = lock(&self.state);
        let mut v: Vec<(u32, String)> = st
            .sandboxes
            .get(id)
            .map(|s| s.procs.iter().map(|(p, x)| (*p, x.line.clone())).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// The pid listening on port 5173, if any.
    /// Makes running process `pid` write `text` to its stderr (Vite reporting an error later).
    pub fn print_from(&self, id: &str, pid: u32, text: &str) -> bool {
        let tap = lock(&self.state)
            .sandboxes
            .get(id)
            .and_then(|sb| sb.procs.get(&pid).map(|p| p.tap.clone()));
        tap.map(|t| t.send(Ev::Err(text.as_bytes().to_vec())))
            .is_some()
    }

    /// Ends process `pid` as a kill would, without a client asking.
    pub fn end_process(&self, id: &str, pid: u32) -> bool {
        kill_proc(&mut lock(&self.state), id, pid)
    }

    pub fn dev_server_pid(&self, id: &str) -> Option<u32> {
        lock(&self.state).sandboxes.get(id).and_then(|s| s.dev_port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state).requests.clone()
    }

    /// Requests whose path (without query) is `route`.
    pub fn requests_to(&self, method: &str, route: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.route() == route)
            .collect()
    }

    pub fn signals(&self) -> Vec<(String, u32)> {
        lock(&self.state).signals.clone()
    }

    pub fn group_kills(&self) -> Vec<(String, u32)> {
        lock(&self.state).group_kills.clone()
    }

    pub fn started(&self) -> Vec<(String, String)> {
        lock(&self.state).started.clone()
    }

    /// (writes with several envelopes, writes split across chunks) over all streams so far.
    pub fn stream_write_stats(&self) -> (usize, usize) {
        let s = lock(&self.state);
        (s.multi_envelope_writes, s.split_writes)
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1

fn query_param(path: &str, name: &str) -> Option<String> {
    let q = path.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads one request; `None` at EOF.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>, side: Side) -> Option<Recorded> {
    let raw = super::http::read_request(sock, buf).await?;
    Some(Recorded {
        side: if side == Side::Api { "api" } else { "envd" },
        method: raw.method,
        path: raw.target,
        headers: raw.headers,
        body: raw.body,
    })
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Answer {
    fn json(status: u16, v: Value) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: v.to_string().into_bytes(),
        }
    }
    fn empty(status: u16) -> Answer {
        Answer {
            status,
            headers: Vec::new(),
            content_type: "",
            body: Vec::new(),
        }
    }
    fn bytes(bytes: Vec<u8>) -> Answer {
        Answer {
            status: 200,
            headers: Vec::new(),
            content_type: "application/octet-stream",
            body: bytes,
        }
    }
    /// E2B's error body.
    fn error(status: u16, message: &str) -> Answer {
        Answer::json(status, json!({"code": status, "message": message}))
    }
    /// A Connect unary error.
    fn connect_error(status: u16, code: &str, message: &str) -> Answer {
        Answer::json(status, json!({"code": code, "message": message}))
    }
}

async fn send(sock: &mut TcpStream, a: Answer) -> bool {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-length: {}\r\n",
        a.status,
        reason(a.status),
        a.body.len()
    );
    if !a.content_type.is_empty() {
        head.push_str(&format!("content-type: {}\r\n", a.content_type));
    }
    for (k, v) in &a.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&a.body);
    sock.write_all(&out).await.is_ok() && sock.flush().await.is_ok()
}

async fn write_chunk(sock: &mut TcpStream, data: &[u8]) -> bool {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    sock.write_all(&out).await.is_ok() && sock.flush().await.is_ok()
}

/// Writes `buf` as three HTTP chunks (cut inside the first envelope header and mid-buffer),
/// with pauses, so the client sees envelopes split across reads.
async fn write_split(sock: &mut TcpStream, buf: &[u8]) -> bool {
    if buf.is_empty() {
        return true; // an empty chunk would end the body
    }
    if buf.len() < 8 {
        return write_chunk(sock, buf).await;
    }
    let mid = buf.len() / 2 + 1;
    for (i, piece) in [&buf[..3], &buf[3..mid], &buf[mid..]].iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if !write_chunk(sock, piece).await {
            return false;
        }
    }
    true
}

async fn serve_connection(mut sock: TcpStream, side: Side, st: Shared, stop: CancellationToken) {
    let mut buf = Vec::new();
    loop {
        let req = tokio::select! {
            _ = stop.cancelled() => return,
            r = read_request(&mut sock, &mut buf, side) => match r { Some(r) => r, None => return },
        };
        lock(&st).requests.push(req.clone());
        let keep = tokio::select! {
            _ = stop.cancelled() => false,
            k = handle(&mut sock, side, &st, req) => k,
        };
        if !keep {
            return;
        }
    }
}

async fn handle(sock: &mut TcpStream, side: Side, st: &Shared, req: Recorded) -> bool {
    match side {
        Side::Api => {
            let a = control_plane(st, &req);
            send(sock, a).await
        }
        Side::Envd => envd(sock, st, req).await,
    }
}

// ---------------------------------------------------------------------------------------------
// Control plane

fn random_id(prefix: &str, n: usize) -> String {
    let chars: Vec<char> = "abcdefghijklmnopqrstuvwxyz0123456789".chars().collect();
    let mut s = prefix.to_string();
    for _ in 0..n {
        s.push(chars[fastrand::usize(..chars.len())]);
    }
    s
}

fn listed(id: &str, sb: &FakeSandbox) -> Value {
    json!({"templateID": "rki5dems9wqfm4r03t7g", "alias": sb.template, "sandboxID": id,
        "clientID": "6532622b", "startedAt": "2025-01-01T00:00:00Z", "endAt": "2025-01-01T00:15:00Z",
        "cpuCount": 2, "memoryMB": 512, "diskSizeMB": 2048, "metadata": {}, "state": "running",
        "envdVersion": ENVD_VERSION})
}

fn control_plane(st: &Shared, req: &Recorded) -> Answer {
    if req.header("x-api-key") != Some(FAKE_KEY) {
        return Answer::error(401, "Invalid API key");
    }
    let mut s = lock(st);
    let ttl_override = s.ttl;
    let route = req.route().to_string();
    let parts: Vec<&str> = route.trim_matches('/').split('/').collect();
    match (req.method.as_str(), parts.as_slice()) {
        ("POST", ["sandboxes"]) => {
            if let Some(r) = s.create_script.pop_front() {
                return Answer {
                    status: r.status,
                    headers: r.headers,
                    content_type: "application/json",
                    body: r.body.into_bytes(),
                };
            }
            let body = req.json();
            let Some(template) = body.get("templateID").and_then(Value::as_str) else {
                return Answer::error(400, "templateID is required");
            };
            if s.templates
                .as_ref()
                .is_some_and(|t| !t.iter().any(|n| n == template))
            {
                return Answer::error(404, &format!("template '{template}' not found"));
            }
            let timeout_secs = body.get("timeout").and_then(Value::as_u64).unwrap_or(15);
            let id = random_id("i", 19);
            let token = random_id("tok", 24);
            let ttl = ttl_override.unwrap_or(Duration::from_secs(timeout_secs));
            let mut sb = FakeSandbox {
                token: token.clone(),
                template: template.to_string(),
                timeout_secs,
                expires_at: Instant::now() + ttl,
                deleted: false,
                alive: CancellationToken::new(),
                files: BTreeMap::new(),
                dirs: BTreeSet::new(),
                procs: HashMap::new(),
                dev_port: None,
            };
            sb.add_parents(&format!("{HOME}/.profile"));
            sb.files
                .insert(format!("{HOME}/.profile"), b"# fake".to_vec());
            s.sandboxes.insert(id.clone(), sb);
            Answer::json(
                201,
                json!({"templateID": "rki5dems9wqfm4r03t7g", "alias": template, "sandboxID": id,
                    "clientID": "6532622b", "envdVersion": ENVD_VERSION, "envdAccessToken": token,
                    "trafficAccessToken": null, "domain": FAKE_DOMAIN}),
            )
        }
        ("GET", ["sandboxes"]) => {
            let list: Vec<Value> = s
                .sandboxes
                .iter()
                .filter(|(_, sb)| sb.live())
                .map(|(id, sb)| listed(id, sb))
                .collect();
            Answer::json(200, Value::Array(list))
        }
        (method, ["sandboxes", id, rest @ ..]) => {
            let id = id.to_string();
            let Some(sb) = s.sandboxes.get_mut(&id).filter(|sb| sb.live()) else {
                return Answer::error(
                    404,
                    &format!("sandbox \"{id}\" doesn't exist or you don't have access to it"),
                );
            };
            match (method, rest) {
                ("GET", []) => {
                    let mut v = listed(&id, sb);
                    v["envdAccessToken"] = json!(sb.token);
                    v["domain"] = json!(FAKE_DOMAIN);
                    Answer::json(200, v)
                }
                ("DELETE", []) => {
                    sb.deleted = true;
                    sb.alive.cancel();
                    sb.procs.clear();
                    sb.dev_port = None;
                    Answer::empty(204)
                }
                ("POST", ["timeout"]) => {
                    let Some(t) = req.json().get("timeout").and_then(Value::as_u64) else {
                        return Answer::error(400, "timeout is required");
                    };
                    sb.timeout_secs = t;
                    sb.expires_at = Instant::now() + ttl_override.unwrap_or(Duration::from_secs(t));
                    Answer::empty(204)
                }
                ("POST", ["refreshes"]) => {
                    let d = req
                        .json()
                        .get("duration")
                        .and_then(Value::as_u64)
                        .unwrap_or(60);
                    sb.expires_at =
                        Instant::now() + ttl_override.unwrap_or(Duration::from_secs(d.min(3600)));
                    Answer::empty(204)
                }
                _ => Answer::error(404, "not found"),
            }
        }
        _ => Answer::error(404, "not found"),
    }
}

// ---------------------------------------------------------------------------------------------
// envd

fn file_entry(path: &str) -> Value {
    let name = path.rsplit('/').next().unwrap_or("");
    json!({"path": path, "name": name, "type": "file"})
}

/// One multipart part: field name, filename, content.
type Part = (String, Option<String>, Vec<u8>);

/// The parts of a multipart body.
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delim = format!("--{boundary}").into_bytes();
    let find = |hay: &[u8], from: usize| {
        hay[from..]
            .windows(delim.len())
            .position(|w| w == delim.as_slice())
            .map(|i| i + from)
    };
    let mut parts = Vec::new();
    let mut pos = find(body, 0)? + delim.len();
    loop {
        if body[pos..].starts_with(b"--") {
            return Some(parts);
        }
        let start = pos + 2; // CRLF after the delimiter
        let next = find(body, start)?;
        let part = &body[start..next - 2]; // CRLF before the next delimiter
        let head_end = part.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&part[..head_end]).into_owned();
        let content = part[head_end + 4..].to_vec();
        let disposition = head
            .split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))?
            .to_string();
        let param = |name: &str| -> Option<String> {
            let key = format!("{name}=\"");
            let i = disposition.find(&key)? + key.len();
            let mut out = String::new();
            let mut chars = disposition[i..].chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => out.push(chars.next()?),
                    '"' => return Some(out),
                    c => out.push(c),
                }
            }
            None
        };
        parts.push((param("name")?, param("filename"), content));
        pos = next + delim.len();
    }
}

async fn envd(sock: &mut TcpStream, st: &Shared, req: Recorded) -> bool {
    let route = req.route().to_string();
    let id = req.header("e2b-sandbox-id").unwrap_or("").to_string();
    let gone = || {
        Answer::json(
            502,
            json!({"sandboxId": id, "message": "The sandbox was not found", "code": 502}),
        )
    };
    let early: Option<Answer> = {
        let s = lock(st);
        let sb = s.sandboxes.get(&id).filter(|sb| sb.live());
        match sb {
            _ if s.envd_down || req.header("e2b-sandbox-port") != Some("49983") => Some(gone()),
            None => Some(gone()),
            Some(_) if route == "/health" && req.method == "GET" => Some(Answer::empty(204)),
            Some(sb) if req.header("x-access-token") != Some(sb.token.as_str()) => Some(
                Answer::error(401, "unauthorized access, invalid access token"),
            ),
            Some(_) => None,
        }
    };
    if let Some(a) = early {
        return send(sock, a).await;
    }
    let is_connect = route.starts_with("/process.") || route.starts_with("/filesystem.");
    if is_connect && req.header("connect-protocol-version") != Some("1") {
        let a = Answer::connect_error(
            400,
            "invalid_argument",
            "missing required header: set Connect-Protocol-Version to \"1\"",
        );
        return send(sock, a).await;
    }
    let handler: fn(&Shared, &str, &Recorded) -> Answer =
        match (req.method.as_str(), route.as_str()) {
            ("GET", "/files") => download,
            ("POST", "/files") => upload,
            ("POST", "/filesystem.Filesystem/MakeDir") => make_dir,
            ("POST", "/filesystem.Filesystem/Remove") => remove,
            ("POST", "/process.Process/SendSignal") => send_signal,
            ("POST", "/process.Process/Start") => return start(sock, st, &id, &req).await,
            ("POST", "/process.Process/Connect") => return connect(sock, st, &id, &req).await,
            _ => {
                let a = Answer::connect_error(
                    404,
                    "unimplemented",
                    &format!("{route} is not a method"),
                );
                return send(sock, a).await;
            }
        };
    let a = handler(st, &id, &req);
    send(sock, a).await
}

fn download(st: &Shared, id: &str, req: &Recorded) -> Answer {
    if req.query("username").as_deref() != Some("user") {
        return Answer::error(401, "invalid username");
    }
    let Some(p) = req.query("path") else {
        return Answer::error(400, "path is required");
    };
    let path = resolve(HOME, &p);
    let s = lock(st);
    let Some(sb) = s.sandboxes.get(id) else {
        return Answer::error(404, "no sandbox");
    };
    if let Some(b) = sb.files.get(&path) {
        return Answer::bytes(b.clone());
    }
    if sb.is_dir(&path) {
        return Answer::error(400, &format!("path '{path}' is a directory"));
    }
    Answer::error(404, &format!("path '{path}' does not exist"))
}

fn upload(st: &Shared, id: &str, req: &Recorded) -> Answer {
    let mut s = lock(st);
    if let Some(status) = s.upload_faults.pop_front() {
        return Answer::error(status, "not enough disk space");
    }
    if req.query("username").as_deref() != Some("user") {
        return Answer::error(401, "invalid username");
    }
    let ctype = req.header("content-type").unwrap_or("").to_string();
    let query_path = req.query("path").map(|p| resolve(HOME, &p));
    let mut written: Vec<(String, Vec<u8>)> = Vec::new();
    if ctype.starts_with("multipart/form-data") {
        let Some(parts) = multipart(&ctype, &req.body) else {
            return Answer::error(400, "malformed multipart body");
        };
        let files: Vec<_> = parts.into_iter().filter(|(n, _, _)| n == "file").collect();
        if files.is_empty() {
            return Answer::error(400, "no file part");
        }
        match &query_path {
            // With `path`, the (first) part is that file.
            Some(p) => written.push((p.clone(), files[0].2.clone())),
            // Without it, each part's filename names its target.
            None => {
                for (_, filename, content) in files {
                    let Some(f) = filename else {
                        return Answer::error(400, "a part has no filename");
                    };
                    written.push((resolve(HOME, &f), content));
                }
            }
        }
    } else if ctype.starts_with("application/octet-stream") {
        let Some(p) = query_path else {
            return Answer::error(400, "path is required for octet-stream uploads");
        };
        written.push((p, req.body.clone()));
    } else {
        return Answer::error(400, &format!("unsupported content type {ctype:?}"));
    }
    let Some(sb) = s.sandboxes.get_mut(id) else {
        return Answer::error(404, "no sandbox");
    };
    let mut entries = Vec::new();
    for (path, bytes) in written {
        if sb.is_dir(&path) {
            return Answer::error(400, &format!("path '{path}' is a directory"));
        }
        sb.write(&path, bytes);
        entries.push(file_entry(&path));
    }
    Answer::json(200, Value::Array(entries))
}

/// A filesystem RPC on one sandbox: `f` gets the sandbox and the body's `path` resolved under
/// HOME; a missing `path` is `invalid_argument`, an unknown sandbox `not_found` (as envd answers).
fn with_path_arg(
    st: &Shared,
    id: &str,
    req: &Recorded,
    f: impl FnOnce(&mut FakeSandbox, String) -> Answer,
) -> Answer {
    let Some(p) = req
        .json()
        .get("path")
        .and_then(Value::as_str)
        .map(str::to_string)
    else {
        return Answer::connect_error(400, "invalid_argument", "path is required");
    };
    let path = resolve(HOME, &p);
    let mut s = lock(st);
    let Some(sb) = s.sandboxes.get_mut(id) else {
        return Answer::connect_error(404, "not_found", "no sandbox");
    };
    f(sb, path)
}

/// `filesystem.Filesystem/Remove`: a file, or a directory with everything under it;
/// `not_found` when nothing is there (as envd answers).
fn remove(st: &Shared, id: &str, req: &Recorded) -> Answer {
    with_path_arg(st, id, req, |sb, path| {
        if sb.files.remove(&path).is_some() {
            return Answer::json(200, json!({}));
        }
        if sb.is_dir(&path) {
            let prefix = format!("{}/", path.trim_end_matches('/'));
            sb.files.retain(|f, _| !f.starts_with(&prefix));
            sb.dirs.retain(|d| d != &path && !d.starts_with(&prefix));
            return Answer::json(200, json!({}));
        }
        Answer::connect_error(404, "not_found", &format!("path '{path}' does not exist"))
    })
}

fn make_dir(st: &Shared, id: &str, req: &Recorded) -> Answer {
    with_path_arg(st, id, req, |sb, path| {
        if sb.is_dir(&path) || sb.files.contains_key(&path) {
            return Answer::connect_error(
                409,
                "already_exists",
                &format!("path '{path}' already exists"),
            );
        }
        sb.add_parents(&format!("{path}/x"));
        let name = path.rsplit('/').next().unwrap_or("");
        Answer::json(
            200,
            json!({"entry": {"name": name, "type": "FILE_TYPE_DIRECTORY", "path": path}}),
        )
    })
}

/// Removes a process and frees its port; its emulation sees the cancelled token.
fn kill_proc(s: &mut State, id: &str, pid: u32) -> bool {
    let Some(sb) = s.sandboxes.get_mut(id) else {
        return false;
    };
    let Some(p) = sb.procs.remove(&pid) else {
        return false;
    };
    if sb.dev_port == Some(pid) {
        sb.dev_port = None;
    }
    p.kill.cancel();
    true
}

fn send_signal(st: &Shared, id: &str, req: &Recorded) -> Answer {
    let body = req.json();
    let Some(pid) = body.pointer("/process/pid").and_then(Value::as_u64) else {
        return Answer::connect_error(400, "invalid_argument", "process.pid is required");
    };
    let pid = pid as u32;
    match body.get("signal").and_then(Value::as_str) {
        Some("SIGNAL_SIGKILL") | Some("SIGNAL_SIGTERM") => {}
        other => {
            return Answer::connect_error(
                501,
                "unimplemented",
                &format!("invalid signal: {other:?}"),
            )
        }
    }
    let mut s = lock(st);
    s.signals.push((id.to_string(), pid));
    if kill_proc(&mut s, id, pid) {
        Answer::json(200, json!({}))
    } else {
        Answer::connect_error(
            404,
            "not_found",
            &format!("process with pid {pid} not found"),
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Process streams

#[derive(Debug)]
enum Ev {
    Start(u32),
    Out(Vec<u8>),
    Err(Vec<u8>),
    Keepalive,
    End(i32),
    Killed,
    /// The VM went away: the stream is cut.
    Vanish,
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn envelope(flags: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// The envelope of one event (proto3 JSON: zero values omitted, bytes base64).
fn event_envelope(ev: &Ev) -> Vec<u8> {
    let v = match ev {
        Ev::Start(pid) => json!({"event": {"start": {"pid": pid}}}),
        Ev::Out(b) => json!({"event": {"data": {"stdout": b64(b)}}}),
        Ev::Err(b) => json!({"event": {"data": {"stderr": b64(b)}}}),
        Ev::Keepalive => json!({"event": {"keepalive": {}}}),
        Ev::End(0) => json!({"event": {"end": {"exited": true, "status": "exit status 0"}}}),
        Ev::End(c) => {
            json!({"event": {"end": {"exitCode": c, "exited": true, "status": format!("exit status {c}"), "error": format!("exit status {c}")}}})
        }
        Ev::Killed => {
            json!({"event": {"end": {"exitCode": -1, "status": "signal: killed", "error": "signal: killed"}}})
        }
        Ev::Vanish => return Vec::new(),
    };
    envelope(0, v.to_string().as_bytes())
}

const STREAM_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/connect+json\r\n\
transfer-encoding: chunked\r\n\r\n";

async fn start(sock: &mut TcpStream, st: &Shared, id: &str, req: &Recorded) -> bool {
    if req.header("content-type") != Some("application/connect+json") {
        let a = Answer::connect_error(415, "unknown", "expected application/connect+json");
        return send(sock, a).await;
    }
    let b = &req.body;
    let framed = b.len() >= 5
        && b[0] == 0
        && u32::from_be_bytes([b[1], b[2], b[3], b[4]]) as usize == b.len() - 5;
    let msg: Value = if framed {
        serde_json::from_slice(&b[5..]).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let cmd = msg.pointer("/process/cmd").and_then(Value::as_str);
    let args: Vec<String> = msg
        .pointer("/process/args")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let cwd = msg
        .pointer("/process/cwd")
        .and_then(Value::as_str)
        .unwrap_or(HOME)
        .to_string();
    let envs: HashMap<String, String> = msg
        .pointer("/process/envs")
        .and_then(Value::as_object)
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let bad = |m: &str| {
        let mut out = STREAM_HEAD.as_bytes().to_vec();
        let e = envelope(
            2,
            json!({"error": {"code": "invalid_argument", "message": m}})
                .to_string()
                .as_bytes(),
        );
        out.extend(format!("{:x}\r\n", e.len()).into_bytes());
        out.extend(e);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
        out
    };
    if cmd != Some("/bin/bash") || args.len() != 3 || args[0] != "-l" || args[1] != "-c" {
        let out = bad("the fake runs only /bin/bash -l -c <line>");
        return sock.write_all(&out).await.is_ok();
    }
    let line = args[2].clone();
    enum Begin {
        Refuse(Answer),
        Raw(Vec<u8>),
        Go(
            Option<StreamFault>,
            CancellationToken,
            u32,
            CancellationToken,
            Tap,
        ),
    }
    let begin = {
        let mut s = lock(st);
        let fault = s.stream_faults.pop_front();
        let cwd_ok = s.sandboxes.get(id).is_some_and(|sb| sb.is_dir(&cwd));
        if matches!(fault, Some(StreamFault::Http502)) {
            Begin::Refuse(Answer {
                status: 502,
                headers: Vec::new(),
                content_type: "text/plain",
                body: b"502 Bad Gateway".to_vec(),
            })
        } else if !cwd_ok {
            Begin::Raw(bad(&format!("cwd '{cwd}' does not exist")))
        } else {
            let pid = s.next_pid;
            s.next_pid += 1;
            s.started.push((id.to_string(), line.clone()));
            match s.sandboxes.get_mut(id) {
                None => Begin::Refuse(Answer::error(502, "gone")),
                Some(sb) => {
                    let kill = sb.alive.child_token();
                    let tap = Tap::default();
                    let proc_entry = Proc {
                        line: line.clone(),
                        kill: kill.clone(),
                        tap: tap.clone(),
                    };
                    sb.procs.insert(pid, proc_entry);
                    Begin::Go(fault, kill, pid, sb.alive.clone(), tap)
                }
            }
        }
    };
    let (fault, kill, pid, alive, tap) = match begin {
        Begin::Refuse(a) => return send(sock, a).await,
        Begin::Raw(out) => return sock.write_all(&out).await.is_ok(),
        Begin::Go(f, k, p, a, t) => (f, k, p, a, t),
    };
    let rx = tap.attach();
    let ctx = Ctx {
        st: st.clone(),
        id: id.to_string(),
        pid,
        cwd,
        envs,
        tx: tap,
        kill: kill.clone(),
        alive,
    };
    tokio::spawn(async move {
        ctx.tx.send(Ev::Start(ctx.pid));
        let outcome = run_line(&ctx, &line).await;
        let last = match outcome {
            Flow::Exit(c) | Flow::Next(c) => Ev::End(c),
            Flow::Killed => {
                if ctx.vm_gone() {
                    Ev::Vanish
                } else {
                    Ev::Killed
                }
            }
        };
        {
            let mut s = lock(&ctx.st);
            if let Some(sb) = s.sandboxes.get_mut(&ctx.id) {
                sb.procs.remove(&ctx.pid);
                if sb.dev_port == Some(ctx.pid) {
                    sb.dev_port = None;
                }
            }
        }
        ctx.tx.send(last);
    });

    if sock.write_all(STREAM_HEAD.as_bytes()).await.is_err() {
        return false;
    }
    stream_events(sock, st, id, pid, rx, fault, kill).await
}

/// `process.Process/Connect`: the running process's events from now on, on a new stream.
async fn connect(sock: &mut TcpStream, st: &Shared, id: &str, req: &Recorded) -> bool {
    let b = &req.body;
    let msg: Value = if b.len() >= 5 && b[0] == 0 {
        serde_json::from_slice(&b[5..]).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let Some(pid) = msg
        .pointer("/process/pid")
        .and_then(Value::as_u64)
        .map(|p| p as u32)
    else {
        let a = Answer::connect_error(400, "invalid_argument", "process.pid is required");
        return send(sock, a).await;
    };
    let found = lock(st)
        .sandboxes
        .get(id)
        .and_then(|sb| sb.procs.get(&pid).map(|p| (p.tap.clone(), p.kill.clone())));
    let Some((tap, kill)) = found else {
        // Streaming calls report RPC errors inside a 200, as an end-stream envelope.
        let mut out = STREAM_HEAD.as_bytes().to_vec();
        let e = json!({"error": {"code": "not_found", "message": format!("process with pid {pid} not found")}});
        let e = envelope(2, e.to_string().as_bytes());
        out.extend(format!("{:x}\r\n", e.len()).into_bytes());
        out.extend(e);
        out.extend_from_slice(b"\r\n0\r\n\r\n");
        return sock.write_all(&out).await.is_ok();
    };
    let rx = tap.attach();
    tap.send(Ev::Start(pid));
    if sock.write_all(STREAM_HEAD.as_bytes()).await.is_err() {
        return false;
    }
    stream_events(sock, st, id, pid, rx, None, kill).await
}

/// Writes a process's events as Connect envelopes until its end (or `fault`).
async fn stream_events(
    sock: &mut TcpStream,
    st: &Shared,
    id: &str,
    pid: u32,
    mut rx: mpsc::UnboundedReceiver<Ev>,
    fault: Option<StreamFault>,
    kill: CancellationToken,
) -> bool {
    let mut fault = fault;
    let mut sent = 0usize;
    loop {
        let Some(first) = rx.recv().await else {
            return false;
        };
        let mut batch = vec![first];
        while let Ok(e) = rx.try_recv() {
            batch.push(e);
        }
        let mut buf = Vec::new();
        let mut in_buf = 0usize;
        let note = |buf: &[u8], n: usize| {
            let mut s = lock(st);
            s.multi_envelope_writes += usize::from(n >= 2);
            s.split_writes += usize::from(buf.len() >= 8);
        };
        for ev in batch {
            let due = match &fault {
                Some(StreamFault::Compressed) => sent >= 1,
                Some(_) => sent >= 2 || matches!(ev, Ev::End(_) | Ev::Killed),
                None => false,
            };
            if due {
                if let Some(f) = fault.take() {
                    if !buf.is_empty() && !write_split(sock, &buf).await {
                        kill.cancel();
                        return false;
                    }
                    if matches!(f, StreamFault::Dropped) {
                        let _ = sock.shutdown().await;
                        return false; // the process runs on, unobserved
                    }
                    let keep = apply_fault(sock, f).await;
                    let _ = kill_proc(&mut lock(st), id, pid);
                    return keep;
                }
            }
            match ev {
                Ev::Vanish => {
                    let _ = write_split(sock, &buf).await;
                    return false; // cut, no terminating chunk: the VM is gone
                }
                Ev::End(_) | Ev::Killed => {
                    buf.extend(event_envelope(&ev));
                    buf.extend(envelope(2, b"{}"));
                    note(&buf, in_buf + 2);
                    return write_split(sock, &buf).await && write_raw_end(sock).await;
                }
                other => {
                    buf.extend(event_envelope(&other));
                    sent += 1;
                    in_buf += 1;
                }
            }
        }
        note(&buf, in_buf);
        if !write_split(sock, &buf).await {
            return false; // the client left; the process keeps running, as with envd
        }
    }
}

async fn write_raw_end(sock: &mut TcpStream) -> bool {
    sock.write_all(b"0\r\n\r\n").await.is_ok() && sock.flush().await.is_ok()
}

async fn apply_fault(sock: &mut TcpStream, f: StreamFault) -> bool {
    match f {
        StreamFault::EndStreamError { code, message } => {
            let e = json!({"error": {"code": code, "message": message}, "metadata": {}});
            write_chunk(sock, &envelope(2, e.to_string().as_bytes())).await
                && write_raw_end(sock).await
        }
        StreamFault::CutBeforeEnd | StreamFault::Dropped => {
            let _ = sock.shutdown().await;
            false
        }
        StreamFault::EofWithoutEndStream => write_raw_end(sock).await,
        StreamFault::Compressed => {
            // A gzip header as the payload, flagged compressed.
            let bad = envelope(1, &[0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03]);
            write_chunk(sock, &bad).await
                && write_chunk(sock, &envelope(2, b"{}")).await
                && write_raw_end(sock).await
        }
        StreamFault::Http502 => false,
    }
}

// ---------------------------------------------------------------------------------------------
// The "shell"

struct Ctx {
    st: Shared,
    id: String,
    pid: u32,
    cwd: String,
    envs: HashMap<String, String>,
    tx: Tap,
    kill: CancellationToken,
    alive: CancellationToken,
}

enum Flow {
    /// Statement finished with this status; go on.
    Next(i32),
    /// `exit N` / `exec`: the process ends with this status.
    Exit(i32),
    Killed,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum To {
    Out,
    Err,
    Null,
}

impl Ctx {
    fn vm_gone(&self) -> bool {
        let s = lock(&self.st);
        !s.sandboxes.get(&self.id).is_some_and(|sb| sb.live())
    }

    fn emit(&self, to: To, text: &str) {
        let b = text.as_bytes().to_vec();
        match to {
            To::Out => self.tx.send(Ev::Out(b)),
            To::Err => self.tx.send(Ev::Err(b)),
            To::Null => {}
        }
    }

    /// Waits, sending keepalives; `false` when killed or the VM is gone (TTL included).
    async fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            if self.vm_gone() {
                // An expired VM takes its processes along, as a deleted one does.
                self.alive.cancel();
                return false;
            }
            if self.kill.is_cancelled() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            let step = (until - now).min(KEEPALIVE_EVERY);
            tokio::select! {
                _ = self.kill.cancelled() => {}
                _ = tokio::time::sleep(step) => {
                    if step == KEEPALIVE_EVERY {
                        self.tx.send(Ev::Keepalive);
                    }
                }
            }
        }
    }

    fn with_sandbox<R>(&self, f: impl FnOnce(&mut FakeSandbox) -> R) -> Option<R> {
        lock(&self.st).sandboxes.get_mut(&self.id).map(f)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Op(&'static str),
}

/// Words (quotes and backslashes resolved) and `;`, `&&`, `||`, `|`.
fn tokenize(line: &str) -> Result<Vec<Tok>, String> {
    let mut toks = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(x) => cur.push(x),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = chars.next() {
                    cur.push(x);
                }
            }
            ' ' | '\t' | '\n' => {
                if in_word {
                    toks.push(Tok::Word(std::mem::take(&mut cur)));
                    in_word = false;
                }
            }
            ';' | '&' | '|' => {
                if in_word {
                    toks.push(Tok::Word(std::mem::take(&mut cur)));
                    in_word = false;
                }
                let op = match (c, chars.peek()) {
                    ('&', Some('&')) => {
                        chars.next();
                        "&&"
                    }
                    ('|', Some('|')) => {
                        chars.next();
                        "||"
                    }
                    (';', _) => ";",
                    ('|', _) => "|",
                    _ => return Err("background jobs are not supported".into()),
                };
                toks.push(Tok::Op(op));
            }
            '>' => {
                // Redirections stay one word, as the client writes them: `>&2`, `2>&1`.
                in_word = true;
                cur.push('>');
                if chars.peek() == Some(&'&') {
                    cur.push('&');
                    chars.next();
                }
            }
            x => {
                in_word = true;
                cur.push(x);
            }
        }
    }
    if in_word {
        toks.push(Tok::Word(cur));
    }
    Ok(toks)
}

fn words(toks: &[Tok]) -> Option<Vec<String>> {
    toks.iter()
        .map(|t| match t {
            Tok::Word(w) => Some(w.clone()),
            Tok::Op(_) => None,
        })
        .collect()
}

fn w(s: &str) -> Tok {
    Tok::Word(s.to_string())
}

/// `if command -v setsid >/dev/null 2>&1; then exec setsid -w -- ARGV; else exec ARGV; fi`
/// → ARGV (both branches must agree).
fn parse_exec_line(toks: &[Tok]) -> Option<Vec<String>> {
    let prefix = [
        w("if"),
        w("command"),
        w("-v"),
        w("setsid"),
        w(">/dev/null"),
        w("2>&1"),
        Tok::Op(";"),
        w("then"),
        w("exec"),
        w("setsid"),
        w("-w"),
        w("--"),
    ];
    let rest = toks.strip_prefix(&prefix[..])?;
    let semi = rest.iter().position(|t| *t == Tok::Op(";"))?;
    let argv = words(&rest[..semi])?;
    let tail = &rest[semi + 1..];
    let mut expected = vec![w("else"), w("exec")];
    expected.extend(argv.iter().map(|a| w(a)));
    expected.extend([Tok::Op(";"), w("fi")]);
    (tail == expected.as_slice() && !argv.is_empty()).then_some(argv)
}

async fn run_line(ctx: &Ctx, line: &str) -> Flow {
    let toks = match tokenize(line) {
        Ok(t) => t,
        Err(e) => {
            ctx.emit(To::Err, &format!("/bin/bash: syntax error: {e}\n"));
            return Flow::Exit(2);
        }
    };
    // The dev server line: `[ -x VITE ] || { echo MSG >&2; exit 127; }; <exec line>`.
    if toks.first() == Some(&w("[")) {
        let close = toks.iter().position(|t| *t == w("}"));
        if let (
            Some(close),
            [_, Tok::Word(test), Tok::Word(path), Tok::Word(end), Tok::Op("||"), Tok::Word(open), ..],
        ) = (close, toks.as_slice())
        {
            if test == "-x"
                && end == "]"
                && open == "{"
                && toks.get(close + 1) == Some(&Tok::Op(";"))
            {
                let present = ctx
                    .with_sandbox(|sb| sb.files.contains_key(&resolve(&ctx.cwd, path)))
                    .unwrap_or(false);
                if !present {
                    return run_statements(ctx, &toks[6..close]).await;
                }
                return match parse_exec_line(&toks[close + 2..]) {
                    Some(argv) => finish(exec_argv(ctx, &argv, To::Out).await),
                    None => unsupported(ctx, line),
                };
            }
        }
        return unsupported(ctx, line);
    }
    if let Some(argv) = parse_exec_line(&toks) {
        return finish(exec_argv(ctx, &argv, To::Out).await);
    }
    // The health probe: curl, or node's fetch, against 127.0.0.1:PORT.
    if toks.starts_with(&[w("if"), w("command"), w("-v"), w("curl")]) {
        let url = toks.iter().find_map(|t| match t {
            Tok::Word(x) if x.starts_with("http://127.0.0.1:") => Some(x.clone()),
            _ => None,
        });
        let Some(url) = url else {
            return unsupported(ctx, line);
        };
        let listening = url.starts_with("http://127.0.0.1:5173/")
            && ctx
                .with_sandbox(|sb| sb.dev_port.is_some())
                .unwrap_or(false);
        if listening {
            ctx.emit(To::Out, "200");
            return Flow::Exit(0);
        }
        ctx.emit(To::Out, "000");
        return Flow::Exit(7);
    }
    // The group kill: `kill -s KILL -- -PGID 2>/dev/null || true`.
    if let [Tok::Word(k), Tok::Word(s), Tok::Word(sig), Tok::Word(dd), Tok::Word(pg), Tok::Word(r), Tok::Op("||"), Tok::Word(t)] =
        toks.as_slice()
    {
        if k == "kill"
            && s == "-s"
            && sig == "KILL"
            && dd == "--"
            && r == "2>/dev/null"
            && t == "true"
        {
            if let Some(pgid) = pg.strip_prefix('-').and_then(|p| p.parse::<u32>().ok()) {
                let mut st = lock(&ctx.st);
                st.group_kills.push((ctx.id.clone(), pgid));
                kill_proc(&mut st, &ctx.id, pgid);
                return Flow::Exit(0);
            }
        }
    }
    unsupported(ctx, line)
}

fn unsupported(ctx: &Ctx, line: &str) -> Flow {
    ctx.emit(
        To::Err,
        &format!("fake envd: unsupported command line: {line}\n"),
    );
    Flow::Exit(2)
}

/// `exec` ends the shell with the program's status.
fn finish(f: Flow) -> Flow {
    match f {
        Flow::Next(c) => Flow::Exit(c),
        other => other,
    }
}

/// Statements separated by `;`, `&&`, `||` (no pipes).
async fn run_statements(ctx: &Ctx, toks: &[Tok]) -> Flow {
    let mut status = 0;
    let mut skip = false;
    let mut start = 0;
    let mut i = 0;
    while i <= toks.len() {
        let end = i == toks.len();
        let op = if end {
            None
        } else if let Tok::Op(o) = &toks[i] {
            Some(*o)
        } else {
            i += 1;
            continue;
        };
        if op == Some("|") {
            ctx.emit(To::Err, "fake shell: pipes are not supported\n");
            return Flow::Exit(2);
        }
        let stmt = &toks[start..i];
        if !stmt.is_empty() && !skip {
            let Some(ws) = words(stmt) else {
                return Flow::Exit(2);
            };
            let mut to = To::Out;
            let argv: Vec<String> = ws
                .into_iter()
                .filter(|x| match x.as_str() {
                    ">&2" | "1>&2" => {
                        to = To::Err;
                        false
                    }
                    ">/dev/null" | "1>/dev/null" => {
                        to = To::Null;
                        false
                    }
                    "2>&1" | "2>/dev/null" => false,
                    _ => true,
                })
                .collect();
            match exec_argv(ctx, &argv, to).await {
                Flow::Next(c) => status = c,
                other => return other,
            }
        }
        skip = match op {
            Some("&&") => status != 0,
            Some("||") => status == 0,
            _ => false,
        };
        start = i + 1;
        i += 1;
    }
    Flow::Next(status)
}

/// One program (boxed: `sh -c` recurses).
fn exec_argv<'a>(
    ctx: &'a Ctx,
    argv: &'a [String],
    to: To,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Flow> + Send + 'a>> {
    Box::pin(async move {
        let Some(prog) = argv.first() else {
            return Flow::Next(0);
        };
        let args = &argv[1..];
        match prog.as_str() {
            "true" => Flow::Next(0),
            "false" => Flow::Next(1),
            "exit" => Flow::Exit(args.first().and_then(|a| a.parse().ok()).unwrap_or(0)),
            "echo" => {
                ctx.emit(to, &format!("{}\n", args.join(" ")));
                Flow::Next(0)
            }
            "sleep" => {
                let secs: f64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(0.0);
                if ctx.pause(Duration::from_secs_f64(secs)).await {
                    Flow::Next(0)
                } else {
                    Flow::Killed
                }
            }
            "sh" | "bash" if args.first().map(String::as_str) == Some("-c") && args.len() >= 2 => {
                match tokenize(&args[1]) {
                    Ok(t) => match run_statements(ctx, &t).await {
                        Flow::Exit(c) => Flow::Next(c),
                        other => other,
                    },
                    Err(e) => {
                        ctx.emit(To::Err, &format!("sh: syntax error: {e}\n"));
                        Flow::Next(2)
                    }
                }
            }
            "env" => {
                let mut pairs: Vec<_> = ctx.envs.iter().collect();
                pairs.sort();
                for (k, v) in pairs {
                    ctx.emit(to, &format!("{k}={v}\n"));
                }
                Flow::Next(0)
            }
            "cat" => cat(ctx, args, to),
            "ls" => ls(ctx, args, to),
            "find" => find(ctx, args, to),
            "npm" => npm(ctx, args).await,
            "npx" => npx(ctx, args).await,
            "node_modules/.bin/vite" | "./node_modules/.bin/vite" => vite(ctx, args).await,
            other => {
                ctx.emit(
                    To::Err,
                    &format!("/bin/bash: line 1: exec: {other}: not found\n"),
                );
                Flow::Next(127)
            }
        }
    })
}

fn cat(ctx: &Ctx, args: &[String], to: To) -> Flow {
    let mut status = 0;
    for a in args {
        let path = resolve(&ctx.cwd, a);
        match ctx
            .with_sandbox(|sb| sb.files.get(&path).cloned())
            .flatten()
        {
            Some(b) => ctx.emit(to, &String::from_utf8_lossy(&b)),
            None => {
                ctx.emit(To::Err, &format!("cat: {a}: No such file or directory\n"));
                status = 1;
            }
        }
    }
    Flow::Next(status)
}

fn children(sb: &FakeSandbox, dir: &str) -> BTreeSet<String> {
    let prefix = format!("{}/", dir.trim_end_matches('/'));
    sb.files
        .keys()
        .chain(sb.dirs.iter())
        .filter_map(|p| p.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('/').next())
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect()
}

fn ls(ctx: &Ctx, args: &[String], to: To) -> Flow {
    let target = args.iter().find(|a| !a.starts_with('-')).cloned();
    let dir = resolve(&ctx.cwd, target.as_deref().unwrap_or("."));
    let names = ctx.with_sandbox(|sb| sb.is_dir(&dir).then(|| children(sb, &dir)));
    match names.flatten() {
        Some(names) => {
            let text: String = names.iter().map(|n| format!("{n}\n")).collect();
            ctx.emit(to, &text);
            Flow::Next(0)
        }
        None => {
            let shown = target.unwrap_or_default();
            ctx.emit(
                To::Err,
                &format!("ls: cannot access '{shown}': No such file or directory\n"),
            );
            Flow::Next(2)
        }
    }
}

/// `find . ( -name A -o -name B ... ) -prune -o -type f -print0` (the client's listing).
fn find(ctx: &Ctx, args: &[String], to: To) -> Flow {
    let shape_ok = args.first().map(String::as_str) == Some(".")
        && args.ends_with(&[
            ")".to_string(),
            "-prune".to_string(),
            "-o".to_string(),
            "-type".to_string(),
            "f".to_string(),
            "-print0".to_string(),
        ]);
    if !shape_ok {
        ctx.emit(To::Err, "fake find: unsupported expression\n");
        return Flow::Next(1);
    }
    let pruned: Vec<String> = args
        .windows(2)
        .filter(|p| p[0] == "-name")
        .map(|p| p[1].clone())
        .collect();
    let prefix = format!("{}/", ctx.cwd.trim_end_matches('/'));
    let out = ctx
        .with_sandbox(|sb| {
            let mut out = String::new();
            for path in sb.files.keys() {
                let Some(rel) = path.strip_prefix(&prefix) else {
                    continue;
                };
                if rel.split('/').any(|c| pruned.iter().any(|p| p == c)) {
                    continue;
                }
                out.push_str("./");
                out.push_str(rel);
                out.push('\0');
            }
            out
        })
        .unwrap_or_default();
    ctx.emit(to, &out);
    Flow::Next(0)
}

/// `npx --yes [-p PKG] <pnpm|yarn|bun>[@v] install|add [-- names]`: the image has only npm, so
/// another manager comes from the registry; it installs like `npm` does here.
async fn npx(ctx: &Ctx, args: &[String]) -> Flow {
    let mut rest = args.iter().map(String::as_str).peekable();
    let mut package = None;
    while let Some(a) = rest.next() {
        match a {
            "--yes" | "-y" => {}
            "-p" | "--package" => package = rest.next(),
            _ => {
                let bin = a.split('@').next().unwrap_or("");
                if !matches!(bin, "pnpm" | "yarn" | "bun") {
                    ctx.emit(
                        To::Err,
                        &format!("npm error could not determine executable to run: {a}\n"),
                    );
                    return Flow::Next(1);
                }
                let tool = package.unwrap_or(a);
                ctx.emit(To::Err, &format!("npm warn exec The following package was not found and will be installed: {tool}\n"));
                let sub: Vec<String> = rest.map(str::to_string).collect();
                let mapped: Vec<String> = match sub.first().map(String::as_str) {
                    Some("install") | None => vec!["install".into()],
                    Some("add") => std::iter::once("install".to_string())
                        .chain(sub[1..].iter().filter(|x| *x != "--").cloned())
                        .collect(),
                    Some(other) => {
                        ctx.emit(To::Err, &format!("{bin}: unknown command {other}\n"));
                        return Flow::Next(1);
                    }
                };
                return npm(ctx, &mapped).await;
            }
        }
    }
    ctx.emit(To::Err, "npm error npx needs a command\n");
    Flow::Next(1)
}

async fn npm(ctx: &Ctx, args: &[String]) -> Flow {
    let sub = args.first().map(String::as_str).unwrap_or("");
    if !matches!(sub, "install" | "i" | "ci") {
        ctx.emit(To::Err, &format!("Unknown command: \"{sub}\"\n"));
        return Flow::Next(1);
    }
    let pkg_json = resolve(&ctx.cwd, "package.json");
    if ctx
        .with_sandbox(|sb| !sb.files.contains_key(&pkg_json))
        .unwrap_or(true)
    {
        ctx.emit(
            To::Err,
            &format!(
                "npm error code ENOENT\nnpm error syscall open\nnpm error path {pkg_json}\n\
                 npm error errno -2\nnpm error enoent Could not read package.json\n"
            ),
        );
        return Flow::Next(254);
    }
    // Lines split across data events, stderr interleaved, pauses with keepalives.
    ctx.emit(
        To::Err,
        "npm warn deprecated inflight@1.0.6: This module is not supported\n",
    );
    if !ctx.pause(Duration::from_millis(40)).await {
        return Flow::Killed;
    }
    ctx.emit(To::Out, "\nadded 3 pack");
    ctx.emit(To::Out, "ages, and audited 4 packages in 2s\n");
    if !ctx.pause(Duration::from_millis(40)).await {
        return Flow::Killed;
    }
    ctx.emit(
        To::Out,
        "\n1 package is looking for funding\n  run `npm fund` for details\n\nfound 0 vul",
    );
    ctx.emit(To::Out, "nerabilities\n");
    let nm = resolve(&ctx.cwd, "node_modules");
    let pkgs: Vec<String> = args[1..]
        .iter()
        .filter(|a| !a.starts_with('-'))
        .cloned()
        .collect();
    ctx.with_sandbox(|sb| {
        sb.write(&format!("{nm}/.package-lock.json"), b"{}".to_vec());
        sb.write(
            &format!("{nm}/.bin/vite"),
            b"#!/usr/bin/env node\n".to_vec(),
        );
        sb.write(
            &format!("{nm}/vite/package.json"),
            br#"{"name":"vite"}"#.to_vec(),
        );
        for p in &pkgs {
            sb.write(
                &format!("{nm}/{p}/package.json"),
                format!("{{\"name\":\"{p}\"}}").into_bytes(),
            );
        }
    });
    Flow::Next(0)
}

async fn vite(ctx: &Ctx, args: &[String]) -> Flow {
    let port: u16 = args
        .windows(2)
        .find(|p| p[0] == "--port")
        .and_then(|p| p[1].parse().ok())
        .unwrap_or(5173);
    let taken = ctx
        .with_sandbox(|sb| {
            if port != 5173 {
                return false;
            }
            match sb.dev_port {
                Some(p) if sb.procs.contains_key(&p) => true,
                _ => {
                    sb.dev_port = Some(ctx.pid);
                    false
                }
            }
        })
        .unwrap_or(true);
    if taken {
        ctx.emit(
            To::Err,
            &format!("error when starting dev server:\nError: Port {port} is already in use\n"),
        );
        return Flow::Next(1);
    }
    ctx.emit(To::Out, "\n");
    ctx.emit(To::Out, "  VITE v5.4.10  ready in 312 ms\n\n");
    if !ctx.pause(Duration::from_millis(20)).await {
        return Flow::Killed;
    }
    ctx.emit(
        To::Out,
        &format!("  ➜  Local:   http://localhost:{port}/\n  ➜  Net"),
    );
    ctx.emit(To::Out, &format!("work: http://169.254.0.21:{port}/\n"));
    // Serves until killed (or the VM goes away).
    let _ = ctx.pause(Duration::from_secs(3600)).await;
    Flow::Killed
}
