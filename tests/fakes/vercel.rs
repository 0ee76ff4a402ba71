//! Loopback fake of the Vercel Sandbox v1 REST API (PROTOCOLS.md §6, "Fake server must").
//!
//! Plain tokio TCP and hand-written HTTP/1.1 like the LLM fakes, so every byte is ours: NDJSON
//! sent one chunk per record (one record deliberately cut in two writes), a `wait: true` answer
//! whose final record comes only when the command ends, a clean EOF before that record when a
//! truncation is scripted. Behind the API sits a small in-memory VM: a file system that
//! `/fs/write` really gunzips and untars into, a command "interpreter" (`npm install`, `cat`,
//! `ls`, `find`, `echo`, `sleep`, `false`, Vite) and, per declared port, a loopback listener that
//! the route URL points at and that answers like the preview proxy (200 while Vite runs, 502
//! otherwise, connection refused once the sandbox stopped).
//!
//! Use: `let fake = FakeVercel::start();` then build a config from `fake.env()`, script
//! failures with `fake.inject(..)`, and assert on `fake.requests()` and the VM state.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::http::{reason, resolve};

pub const TOKEN: &str = "vcl_fake_token_8c1f2e77";
pub const TEAM_ID: &str = "team_fake01";
pub const PROJECT_ID: &str = "prj_fake01";
pub const CWD: &str = "/vercel/sandbox";

/// One API request as the fake saw it (preview requests are not recorded).
#[derive(Debug, Clone)]
pub struct VercelRequest {
    pub method: String,
    /// Without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl VercelRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        super::http::header(&self.headers, name)
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// A scripted answer for the next request matching a method and a path fragment.
#[derive(Debug, Clone)]
pub enum Inject {
    /// Answer this instead of handling the request (the request has no effect).
    Status(super::http::Canned),
    /// For `POST …/cmd` with `wait: true`: run the command, send the first record, then end
    /// the stream cleanly without the final `command` record.
    TruncateWait,
}

impl Inject {
    pub fn status(status: u16, body: impl Into<String>) -> Inject {
        Inject::Status(super::http::Canned::new(status, &[], body))
    }
    pub fn status_with(status: u16, headers: &[(&str, &str)], body: impl Into<String>) -> Inject {
        Inject::Status(super::http::Canned::new(status, headers, body))
    }
}

/// `{"error":{"code","message"}}`, the API's error body.
pub fn error_body(code: &str, message: &str) -> String {
    json!({"error": {"code": code, "message": message}}).to_string()
}

struct Shared {
    state: Mutex<State>,
    stop: CancellationToken,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("fake state lock")
    }
}

struct State {
    tokens: Vec<String>,
    requests: Vec<VercelRequest>,
    injections: Vec<(String, String, Inject)>,
    /// How many GETs after create still answer `pending`.
    pending_polls: u32,
    next_id: u64,
    sandboxes: BTreeMap<String, Sb>,
}

struct Sb {
    id: String,
    runtime: String,
    vcpus: u64,
    timeout_ms: u64,
    status: &'static str,
    pending_left: u32,
    created_at: i64,
    routes: Vec<(u16, String)>,
    /// Absolute path -> (bytes, mode).
    files: BTreeMap<String, (Vec<u8>, u32)>,
    dirs: BTreeSet<String>,
    cmds: BTreeMap<String, Arc<Cmd>>,
    /// Ports a (fake) process listens on: the preview answers 200 for these.
    listening: HashSet<u16>,
    preview_stop: CancellationToken,
}

impl Sb {
    fn json(&self) -> Value {
        json!({
            "id": self.id, "memory": self.vcpus * 2048, "vcpus": self.vcpus, "region": "iad1",
            "runtime": self.runtime, "timeout": self.timeout_ms, "status": self.status,
            "requestedAt": self.created_at, "createdAt": self.created_at,
            "updatedAt": now_ms(), "cwd": CWD,
        })
    }

    fn routes_json(&self) -> Value {
        Value::Array(
            self.routes
                .iter()
                .map(|(port, url)| {
                    json!({"url": url, "subdomain": format!("sb-{}-{port}", self.id), "port": port})
                })
                .collect(),
        )
    }

    fn add_dirs(&mut self, dir: &str) {
        let mut cur = String::new();
        self.dirs.insert("/".into());
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            self.dirs.insert(cur.clone());
        }
    }

    fn put(&mut self, path: &str, bytes: Vec<u8>, mode: u32) {
        self.add_dirs(parent(path));
        self.files.insert(path.to_string(), (bytes, mode));
    }

    /// Stops like the platform does: running commands die, their log streams end with an
    /// error record, the preview listeners close.
    fn stop(&mut self) {
        if matches!(self.status, "stopping" | "stopped") {
            return;
        }
        self.status = "stopping";
        for cmd in self.cmds.values() {
            cmd.stopped_with_sandbox();
        }
        self.listening.clear();
        self.preview_stop.cancel();
    }
}

#[derive(Clone)]
struct LogItem {
    stream: &'static str,
    data: String,
    /// Send this record in two writes, cut mid-JSON.
    split: bool,
}

#[derive(Default)]
struct CmdData {
    logs: Vec<LogItem>,
    exit: Option<i32>,
    error: Option<(String, String)>,
    signal: Option<i32>,
}

struct Cmd {
    id: String,
    name: String,
    args: Vec<String>,
    cwd: String,
    sandbox: String,
    started_at: i64,
    data: Mutex<CmdData>,
    changed: watch::Sender<u64>,
    kill: CancellationToken,
}

impl Cmd {
    fn data(&self) -> MutexGuard<'_, CmdData> {
        self.data.lock().expect("command lock")
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn push(&self, stream: &'static str, data: impl Into<String>, split: bool) {
        self.data().logs.push(LogItem {
            stream,
            data: data.into(),
            split,
        });
        self.bump();
    }

    fn out(&self, data: impl Into<String>) {
        self.push("stdout", data, false);
    }

    fn err(&self, data: impl Into<String>) {
        self.push("stderr", data, false);
    }

    fn finish(&self, code: i32) {
        self.data().exit.get_or_insert(code);
        self.bump();
    }

    fn fail_stream(&self, code: &str, message: &str, exit: i32) {
        {
            let mut d = self.data();
            d.error = Some((code.to_string(), message.to_string()));
            d.exit.get_or_insert(exit);
        }
        self.bump();
    }

    fn stopped_with_sandbox(&self) {
        let running = self.data().exit.is_none();
        if running {
            self.data().signal = Some(9);
            self.kill.cancel();
            self.fail_stream("sandbox_stopped", "The sandbox was stopped", 137);
        }
    }

    fn exit_code(&self) -> Option<i32> {
        self.data().exit
    }

    /// 128 + the signal that killed it (SIGTERM unless told otherwise).
    fn killed_code(&self) -> i32 {
        128 + self.data().signal.unwrap_or(15)
    }

    fn json(&self) -> Value {
        json!({
            "id": self.id, "name": self.name, "args": self.args, "cwd": self.cwd,
            "sandboxId": self.sandbox, "exitCode": self.exit_code(), "startedAt": self.started_at,
        })
    }
}

/// A command as the test sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    pub id: String,
    pub name: String,
    pub args: Vec<String>,
    pub cwd: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

pub struct FakeVercel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _server: super::http::Server,
}

impl FakeVercel {
    /// Binds 127.0.0.1:0 on its own thread and runtime, accepting [`TOKEN`] for [`TEAM_ID`].
    pub fn start() -> FakeVercel {
        let listener = super::http::bind_loopback();
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                tokens: vec![TOKEN.to_string()],
                requests: Vec::new(),
                injections: Vec::new(),
                pending_polls: 1,
                next_id: 1,
                sandboxes: BTreeMap::new(),
            }),
            stop: CancellationToken::new(),
        });
        let s2 = shared.clone();
        let server = super::http::serve(
            vec![(listener, ())],
            shared.stop.clone(),
            move |sock, ()| serve_connection(sock, s2.clone()),
        );
        FakeVercel {
            addr,
            shared,
            _server: server,
        }
    }

    /// `http://127.0.0.1:PORT` — what `VERCEL_API_URL` should be.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An environment with explicit credentials pointing at this fake.
    pub fn env(&self) -> HashMap<String, String> {
        HashMap::from([
            ("VERCEL_API_URL".to_string(), self.api_url()),
            ("VERCEL_TOKEN".to_string(), TOKEN.to_string()),
            ("VERCEL_TEAM_ID".to_string(), TEAM_ID.to_string()),
            ("VERCEL_PROJECT_ID".to_string(), PROJECT_ID.to_string()),
        ])
    }

    /// Accepts another bearer token (an OIDC token, say).
    pub fn accept_token(&self, token: &str) {
        self.shared.lock().tokens.push(token.to_string());
    }

    /// Answers the next request whose method is `method` and whose path contains
    /// `path_fragment` with `inject` (once; injections match in the order given).
    pub fn inject(&self, method: &str, path_fragment: &str, inject: Inject) {
        self.shared
            .lock()
            .injections
            .push((method.to_string(), path_fragment.to_string(), inject));
    }

    /// How many GETs after create still answer `pending` (default 1).
    pub fn set_pending_polls(&self, n: u32) {
        self.shared.lock().pending_polls = n;
    }

    pub fn requests(&self) -> Vec<VercelRequest> {
        self.shared.lock().requests.clone()
    }

    /// Requests with this method whose path contains `path_fragment`.
    pub fn requests_to(&self, method: &str, path_fragment: &str) -> Vec<VercelRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == method && r.path.contains(path_fragment))
            .collect()
    }

    /// A file of the VM by absolute path, with its mode.
    pub fn file(&self, sandbox: &str, path: &str) -> Option<(Vec<u8>, u32)> {
        self.shared
            .lock()
            .sandboxes
            .get(sandbox)?
            .files
            .get(path)
            .cloned()
    }

    pub fn has_dir(&self, sandbox: &str, path: &str) -> bool {
        self.shared
            .lock()
            .sandboxes
            .get(sandbox)
            .is_some_and(|sb| sb.dirs.contains(path))
    }

    /// Puts a file into the VM directly (absolute path).
    pub fn put_file(&self, sandbox: &str, path: &str, bytes: &[u8]) {
        if let Some(sb) = self.shared.lock().sandboxes.get_mut(sandbox) {
            sb.put(path, bytes.to_vec(), 0o644);
        }
    }

    pub fn status(&self, sandbox: &str) -> Option<String> {
        self.shared
            .lock()
            .sandboxes
            .get(sandbox)
            .map(|sb| sb.status.to_string())
    }

    pub fn timeout_ms(&self, sandbox: &str) -> Option<u64> {
        self.shared
            .lock()
            .sandboxes
            .get(sandbox)
            .map(|sb| sb.timeout_ms)
    }

    pub fn commands(&self, sandbox: &str) -> Vec<CommandRecord> {
        let st = self.shared.lock();
        let Some(sb) = st.sandboxes.get(sandbox) else {
            return Vec::new();
        };
        sb.cmds
            .values()
            .map(|c| {
                let d = c.data();
                CommandRecord {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    args: c.args.clone(),
                    cwd: c.cwd.clone(),
                    exit_code: d.exit,
                    signal: d.signal,
                }
            })
            .collect()
    }

    /// Stops a sandbox from the platform's side (expiry, the dashboard).
    pub fn stop_sandbox(&self, sandbox: &str) {
        if let Some(sb) = self.shared.lock().sandboxes.get_mut(sandbox) {
            sb.stop();
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP.

async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<VercelRequest> {
    let raw = super::http::read_request(sock, buf).await?;
    let (path, query) = raw.split_target();
    Some(VercelRequest {
        method: raw.method,
        path,
        query,
        headers: raw.headers,
        body: raw.body,
    })
}

enum Resp {
    Raw {
        status: u16,
        content_type: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `POST /cmd` with `wait: true`.
    WaitStream {
        cmd: Arc<Cmd>,
        truncate: bool,
    },
    /// `GET /cmd/{id}?wait=true`: JSON once the command exits.
    WaitJson {
        cmd: Arc<Cmd>,
    },
    Logs {
        cmd: Arc<Cmd>,
    },
}

fn json_resp(status: u16, v: Value) -> Resp {
    Resp::Raw {
        status,
        content_type: "application/json; charset=utf-8".into(),
        headers: Vec::new(),
        body: v.to_string().into_bytes(),
    }
}

fn err(status: u16, code: &str, message: &str) -> Resp {
    Resp::Raw {
        status,
        content_type: "application/json; charset=utf-8".into(),
        headers: Vec::new(),
        body: error_body(code, message).into_bytes(),
    }
}

async fn write_all(sock: &mut TcpStream, bytes: &[u8]) -> bool {
    sock.write_all(bytes).await.is_ok() && sock.flush().await.is_ok()
}

async fn write_chunk(sock: &mut TcpStream, data: &[u8]) -> bool {
    let mut out = format!("{:x}\r\n", data.len()).into_bytes();
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
    write_all(sock, &out).await
}

const NDJSON_HEAD: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n\
transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n";

async fn serve_connection(mut sock: TcpStream, shared: Arc<Shared>) {
    let mut buf = Vec::new();
    loop {
        let req = tokio::select! {
            _ = shared.stop.cancelled() => return,
            r = read_request(&mut sock, &mut buf) => match r { Some(r) => r, None => return },
        };
        let resp = route(&shared, req);
        let keep = tokio::select! {
            _ = shared.stop.cancelled() => false,
            k = send(&mut sock, resp) => k,
        };
        if !keep {
            return;
        }
    }
}

/// Writes one answer; `false` when the connection must (or did) close.
async fn send(sock: &mut TcpStream, resp: Resp) -> bool {
    match resp {
        Resp::Raw {
            status,
            content_type,
            headers,
            body,
        } => {
            let mut head = format!(
                "HTTP/1.1 {status} {}\r\ncontent-length: {}\r\ncontent-type: {content_type}\r\n",
                reason(status),
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let mut out = head.into_bytes();
            out.extend_from_slice(&body);
            write_all(sock, &out).await
        }
        Resp::WaitStream { cmd, truncate } => {
            let mut rx = cmd.changed.subscribe();
            if !write_all(sock, NDJSON_HEAD.as_bytes()).await
                || !write_chunk(
                    sock,
                    format!("{}\n", json!({"command": cmd.json()})).as_bytes(),
                )
                .await
            {
                return false;
            }
            if !truncate {
                while cmd.exit_code().is_none() {
                    if rx.changed().await.is_err() {
                        return false;
                    }
                }
                let last = format!("{}\n", json!({"command": cmd.json()}));
                if !write_chunk(sock, last.as_bytes()).await {
                    return false;
                }
            }
            write_all(sock, b"0\r\n\r\n").await
        }
        Resp::WaitJson { cmd } => {
            let mut rx = cmd.changed.subscribe();
            while cmd.exit_code().is_none() {
                if rx.changed().await.is_err() {
                    return false;
                }
            }
            Box::pin(send(sock, json_resp(200, json!({"command": cmd.json()})))).await
        }
        Resp::Logs { cmd } => {
            let mut rx = cmd.changed.subscribe();
            if !write_all(sock, NDJSON_HEAD.as_bytes()).await {
                return false;
            }
            let mut next = 0;
            loop {
                let (items, exit, error) = {
                    let d = cmd.data();
                    (d.logs[next..].to_vec(), d.exit, d.error.clone())
                };
                next += items.len();
                for item in items {
                    let line = format!("{}\n", json!({"stream": item.stream, "data": item.data}));
                    if item.split {
                        // One record over two writes, cut inside the JSON.
                        let (a, b) = line.as_bytes().split_at(line.len() / 2);
                        if !write_chunk(sock, a).await {
                            return false;
                        }
                        tokio::time::sleep(Duration::from_millis(15)).await;
                        if !write_chunk(sock, b).await {
                            return false;
                        }
                    } else if !write_chunk(sock, line.as_bytes()).await {
                        return false;
                    }
                }
                if let Some((code, message)) = error {
                    let line =
                        json!({"stream": "error", "data": {"code": code, "message": message}});
                    if !write_chunk(sock, format!("{line}\n").as_bytes()).await {
                        return false;
                    }
                    break;
                }
                if exit.is_some() {
                    break;
                }
                if rx.changed().await.is_err() {
                    return false;
                }
            }
            write_all(sock, b"0\r\n\r\n").await
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Routes.

fn route(shared: &Arc<Shared>, req: VercelRequest) -> Resp {
    let mut st = shared.lock();
    st.requests.push(req.clone());
    match req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    {
        None => {
            return err(
                401,
                "unauthorized",
                "Missing or malformed Authorization header",
            )
        }
        // Echoes the token on purpose: clients must not pass server messages on unscrubbed.
        Some(t) if !st.tokens.iter().any(|k| k == t) => {
            return err(403, "forbidden", &format!("The token {t} is not valid"))
        }
        Some(_) => {}
    }
    if req.query("teamId") != Some(TEAM_ID) {
        return err(
            403,
            "forbidden",
            "You don't have access to this team (teamId)",
        );
    }
    let mut truncate = false;
    if let Some(i) = st
        .injections
        .iter()
        .position(|(m, p, _)| *m == req.method && req.path.contains(p.as_str()))
    {
        match st.injections.remove(i).2 {
            Inject::Status(super::http::Canned {
                status,
                headers,
                body,
            }) => {
                return Resp::Raw {
                    status,
                    content_type: "application/json; charset=utf-8".into(),
                    headers,
                    body: body.into_bytes(),
                }
            }
            Inject::TruncateWait => truncate = true,
        }
    }
    let path = req.path.clone();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (method, body) = (req.method.as_str(), req.json());
    match (method, segs.as_slice()) {
        ("POST", ["v1", "sandboxes"]) => create(shared, &mut st, &body),
        ("GET", ["v1", "sandboxes", id]) => {
            let Some(sb) = st.sandboxes.get_mut(*id) else {
                return err(404, "not_found", "Sandbox not found");
            };
            match sb.status {
                "pending" if sb.pending_left > 0 => sb.pending_left -= 1,
                "pending" => sb.status = "running",
                "stopping" => sb.status = "stopped",
                _ => {}
            }
            json_resp(
                200,
                json!({"sandbox": sb.json(), "routes": sb.routes_json()}),
            )
        }
        ("POST", ["v1", "sandboxes", id, "stop"]) => {
            let Some(sb) = st.sandboxes.get_mut(*id) else {
                return err(404, "not_found", "Sandbox not found");
            };
            if matches!(sb.status, "stopping" | "stopped") {
                return err(410, "sandbox_stopped", "The sandbox is already stopped");
            }
            sb.stop();
            json_resp(200, json!({"sandbox": sb.json()}))
        }
        ("POST", ["v1", "sandboxes", id, rest @ ..])
        | ("GET", ["v1", "sandboxes", id, rest @ ..]) => {
            let id = id.to_string();
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            let Some(sb) = st.sandboxes.get_mut(&id) else {
                return err(404, "not_found", "Sandbox not found");
            };
            match sb.status {
                "running" => {}
                "pending" => return err(400, "bad_request", "The sandbox is not running yet"),
                _ => return err(410, "sandbox_stopped", "The sandbox was stopped"),
            }
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            in_sandbox(shared, sb, method, &rest, &req, &body, truncate)
        }
        _ => err(404, "not_found", "No such route"),
    }
}

fn create(shared: &Arc<Shared>, st: &mut State, body: &Value) -> Resp {
    let Some(project) = body
        .get("projectId")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    else {
        return err(400, "bad_request", "projectId is required");
    };
    let ports: Vec<u16> = match body.get("ports") {
        None => Vec::new(),
        Some(Value::Array(ps)) => {
            let ports: Option<Vec<u16>> = ps
                .iter()
                .map(|p| p.as_u64().and_then(|p| u16::try_from(p).ok()))
                .collect();
            match ports {
                Some(p) => p,
                None => return err(400, "bad_request", "ports must be port numbers"),
            }
        }
        Some(_) => return err(400, "bad_request", "ports must be an array"),
    };
    if ports.len() > 15 {
        return err(400, "bad_request", "At most 15 ports can be exposed");
    }
    if project != PROJECT_ID {
        return err(404, "not_found", "Project not found");
    }
    let runtime = body
        .get("runtime")
        .and_then(Value::as_str)
        .unwrap_or("node22");
    if !matches!(runtime, "node22" | "node24" | "python3.13") {
        return err(400, "bad_request", "Unsupported runtime");
    }
    let id = format!("sbx_fake{:04}", st.next_id);
    st.next_id += 1;
    let preview_stop = shared.stop.child_token();
    let mut routes = Vec::new();
    for port in ports {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind preview");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("preview addr");
        routes.push((port, format!("http://{addr}")));
        tokio::spawn(serve_preview(
            listener,
            shared.clone(),
            id.clone(),
            port,
            preview_stop.clone(),
        ));
    }
    let mut sb = Sb {
        id: id.clone(),
        runtime: runtime.to_string(),
        vcpus: body
            .pointer("/resources/vcpus")
            .and_then(Value::as_u64)
            .unwrap_or(2),
        timeout_ms: body
            .get("timeout")
            .and_then(Value::as_u64)
            .unwrap_or(300_000),
        status: "pending",
        pending_left: st.pending_polls,
        created_at: now_ms(),
        routes,
        files: BTreeMap::new(),
        dirs: BTreeSet::new(),
        cmds: BTreeMap::new(),
        listening: HashSet::new(),
        preview_stop,
    };
    sb.add_dirs(CWD);
    let resp = json_resp(
        200,
        json!({"sandbox": sb.json(), "routes": sb.routes_json()}),
    );
    st.sandboxes.insert(id, sb);
    resp
}

fn in_sandbox(
    shared: &Arc<Shared>,
    sb: &mut Sb,
    method: &str,
    rest: &[&str],
    req: &VercelRequest,
    body: &Value,
    truncate: bool,
) -> Resp {
    match (method, rest) {
        ("POST", ["extend-timeout"]) => match body.get("duration").and_then(Value::as_u64) {
            Some(d) if d > 0 => {
                sb.timeout_ms += d;
                json_resp(200, json!({"sandbox": sb.json()}))
            }
            _ => err(400, "bad_request", "duration must be a positive number"),
        },
        ("POST", ["cmd"]) => start_command(shared, sb, body, truncate),
        ("GET", ["cmd", cid]) => {
            let Some(cmd) = sb.cmds.get(*cid).cloned() else {
                return err(404, "not_found", "Command not found");
            };
            if req.query("wait") == Some("true") {
                Resp::WaitJson { cmd }
            } else {
                json_resp(200, json!({"command": cmd.json()}))
            }
        }
        ("GET", ["cmd", cid, "logs"]) => match sb.cmds.get(*cid) {
            Some(cmd) => Resp::Logs { cmd: cmd.clone() },
            None => err(404, "not_found", "Command not found"),
        },
        ("POST", ["fs", "write"]) => fs_write(sb, req),
        ("POST", ["fs", "read"]) => {
            let Some(path) = body.get("path").and_then(Value::as_str) else {
                return err(400, "bad_request", "path is required");
            };
            let cwd = body.get("cwd").and_then(Value::as_str).unwrap_or(CWD);
            match sb.files.get(&resolve(cwd, path)) {
                Some((bytes, _)) => Resp::Raw {
                    status: 200,
                    content_type: "application/octet-stream".into(),
                    headers: Vec::new(),
                    body: bytes.clone(),
                },
                None => err(404, "not_found", "File not found"),
            }
        }
        ("POST", ["fs", "mkdir"]) => {
            let Some(path) = body.get("path").and_then(Value::as_str) else {
                return err(400, "bad_request", "path is required");
            };
            let cwd = body.get("cwd").and_then(Value::as_str).unwrap_or(CWD);
            let abs = resolve(cwd, path);
            if sb.dirs.contains(&abs) || sb.files.contains_key(&abs) {
                return err(400, "bad_request", "The path already exists");
            }
            if !sb.dirs.contains(parent(&abs)) {
                return err(400, "bad_request", "The parent directory does not exist");
            }
            sb.dirs.insert(abs);
            json_resp(200, json!({}))
        }
        // v1 kill: `/v1/sandboxes/{id}/{cmdId}/kill`, no `/cmd/` segment.
        ("POST", [cid, "kill"]) => {
            let Some(cmd) = sb.cmds.get(*cid).cloned() else {
                return err(404, "not_found", "Command not found");
            };
            let Some(signal) = body.get("signal").and_then(Value::as_i64) else {
                return err(400, "bad_request", "signal is required");
            };
            if cmd.exit_code().is_some() {
                return err(400, "bad_request", "The command is not running");
            }
            cmd.data().signal = Some(signal as i32);
            cmd.kill.cancel();
            json_resp(200, json!({"command": cmd.json()}))
        }
        _ => err(404, "not_found", "No such route"),
    }
}

fn start_command(shared: &Arc<Shared>, sb: &mut Sb, body: &Value, truncate: bool) -> Resp {
    let Some(name) = body.get("command").and_then(Value::as_str) else {
        return err(400, "bad_request", "command is required");
    };
    let args: Option<Vec<String>> = match body.get("args") {
        None => Some(Vec::new()),
        Some(Value::Array(a)) => a.iter().map(|x| x.as_str().map(str::to_string)).collect(),
        Some(_) => None,
    };
    let Some(args) = args else {
        return err(400, "bad_request", "args must be strings");
    };
    if let Some(env) = body.get("env") {
        let ok = env
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string));
        if !ok {
            return err(400, "bad_request", "env must map names to strings");
        }
    }
    let n = sb.cmds.len() + 1;
    let (changed, _) = watch::channel(0);
    let cmd = Arc::new(Cmd {
        id: format!("cmd_{n:04}_{}", sb.id), // padded: ids sort in start order
        name: name.to_string(),
        args,
        cwd: body
            .get("cwd")
            .and_then(Value::as_str)
            .unwrap_or(CWD)
            .to_string(),
        sandbox: sb.id.clone(),
        started_at: now_ms(),
        data: Mutex::new(CmdData::default()),
        changed,
        kill: CancellationToken::new(),
    });
    sb.cmds.insert(cmd.id.clone(), cmd.clone());
    tokio::spawn(interpret(shared.clone(), cmd.clone()));
    if body.get("wait").and_then(Value::as_bool) == Some(true) {
        Resp::WaitStream { cmd, truncate }
    } else {
        json_resp(200, json!({"command": cmd.json()}))
    }
}

fn fs_write(sb: &mut Sb, req: &VercelRequest) -> Resp {
    if !req.body.starts_with(&[0x1f, 0x8b]) {
        return err(400, "bad_request", "Expected a gzip'd tarball");
    }
    let cwd = req.header("x-cwd").unwrap_or(CWD).to_string();
    if !cwd.starts_with('/') {
        return err(400, "bad_request", "x-cwd must be absolute");
    }
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(req.body.as_slice()));
    // Extract fully first, then commit: a bad archive changes nothing.
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let Ok(entries) = archive.entries() else {
        return err(400, "bad_request", "Not a tar archive");
    };
    for entry in entries {
        let Ok(mut e) = entry else {
            return err(400, "bad_request", "Corrupt tar archive");
        };
        let Ok(name) = e.path().map(|p| p.to_string_lossy().into_owned()) else {
            return err(400, "bad_request", "Bad entry name");
        };
        if name.starts_with('/') || name.split('/').any(|p| p == "..") {
            return err(400, "bad_request", "Entry leaves the target directory");
        }
        let abs = resolve(&cwd, &name);
        let mode = e.header().mode().unwrap_or(0o644);
        match e.header().entry_type() {
            tar::EntryType::Directory => dirs.push(abs),
            tar::EntryType::Regular => {
                let mut bytes = Vec::new();
                if e.read_to_end(&mut bytes).is_err() {
                    return err(400, "bad_request", "Truncated tar entry");
                }
                files.push((abs, bytes, mode));
            }
            _ => return err(400, "bad_request", "Unsupported tar entry type"),
        }
    }
    for d in dirs {
        sb.add_dirs(&d);
    }
    for (path, bytes, mode) in files {
        sb.put(&path, bytes, mode);
    }
    json_resp(200, json!({}))
}

// ---------------------------------------------------------------------------------------------
// The preview proxy in front of the VM's ports.

async fn serve_preview(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    sandbox: String,
    port: u16,
    stop: CancellationToken,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return, // the listener closes: connection refused
            accepted = listener.accept() => {
                let Ok((mut sock, _)) = accepted else { continue };
                let (shared, sandbox) = (shared.clone(), sandbox.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    if read_request(&mut sock, &mut buf).await.is_none() {
                        return;
                    }
                    let up = shared
                        .lock()
                        .sandboxes
                        .get(&sandbox)
                        .is_some_and(|sb| sb.listening.contains(&port));
                    let (status, ct, body) = if up {
                        (200, "text/html", "<!doctype html><html><body><div id=\"root\"></div></body></html>")
                    } else {
                        (502, "text/plain", "Bad Gateway: nothing listens on this port")
                    };
                    let resp = format!(
                        "HTTP/1.1 {status} {}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\
                         connection: close\r\n\r\n{body}",
                        reason(status),
                        body.len()
                    );
                    let _ = write_all(&mut sock, resp.as_bytes()).await;
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The command interpreter.

async fn interpret(shared: Arc<Shared>, cmd: Arc<Cmd>) {
    let code = run_program(&shared, &cmd).await;
    cmd.finish(code);
}

/// Sleeps unless killed first; `false` when killed.
async fn pause(cmd: &Cmd, ms: u64) -> bool {
    tokio::select! {
        _ = cmd.kill.cancelled() => false,
        _ = tokio::time::sleep(Duration::from_millis(ms)) => true,
    }
}

fn with_sb<T>(shared: &Shared, cmd: &Cmd, f: impl FnOnce(&mut Sb) -> T) -> Option<T> {
    shared.lock().sandboxes.get_mut(&cmd.sandbox).map(f)
}

async fn run_program(shared: &Shared, cmd: &Cmd) -> i32 {
    let args: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
    let name = cmd.name.as_str();
    let vite = (name == "npx" && args.first() == Some(&"vite"))
        || name == "vite"
        || name.ends_with("node_modules/.bin/vite");
    if vite {
        return run_vite(shared, cmd, &args).await;
    }
    match (name, args.as_slice()) {
        ("npm", ["install" | "i" | "ci", ..]) => npm_install(shared, cmd).await,
        ("echo", words) => {
            cmd.out(format!("{}\n", words.join(" ")));
            0
        }
        ("true", _) => 0,
        ("false", _) => 1,
        ("cat", paths) => {
            let mut code = 0;
            for p in paths.iter() {
                let abs = resolve(&cmd.cwd, p);
                match with_sb(shared, cmd, |sb| sb.files.get(&abs).map(|f| f.0.clone())).flatten() {
                    Some(bytes) => cmd.out(String::from_utf8_lossy(&bytes).into_owned()),
                    None => {
                        cmd.err(format!("cat: {p}: No such file or directory\n"));
                        code = 1;
                    }
                }
            }
            code
        }
        ("ls", rest) => {
            let target = rest.first().copied().unwrap_or(".");
            let dir = resolve(&cmd.cwd, target);
            let names = with_sb(shared, cmd, |sb| {
                if !sb.dirs.contains(&dir) {
                    return None;
                }
                let prefix = dir_prefix(&dir);
                let children: BTreeSet<String> = sb
                    .dirs
                    .iter()
                    .chain(sb.files.keys())
                    .filter_map(|p| p.strip_prefix(&prefix))
                    .filter(|rest| !rest.is_empty() && !rest.contains('/'))
                    .map(str::to_string)
                    .collect();
                Some(children)
            })
            .flatten();
            match names {
                Some(names) => {
                    let text: String = names.iter().map(|n| format!("{n}\n")).collect();
                    cmd.out(text);
                    0
                }
                None => {
                    cmd.err(format!(
                        "ls: cannot access '{target}': No such file or directory\n"
                    ));
                    2
                }
            }
        }
        ("rm", rest) => {
            // `rm [-f] [--] FILE…`: files only (no -r), as the client uses it.
            let force = rest.contains(&"-f");
            let mut code = 0;
            let mut operands = false;
            for p in rest.iter() {
                if !operands && p.starts_with('-') {
                    operands = *p == "--";
                    continue;
                }
                operands = true;
                let abs = resolve(&cmd.cwd, p);
                let removed = with_sb(shared, cmd, |sb| sb.files.remove(&abs).is_some());
                if removed != Some(true) && !force {
                    cmd.err(format!(
                        "rm: cannot remove '{p}': No such file or directory\n"
                    ));
                    code = 1;
                }
            }
            code
        }
        ("find", rest) => run_find(shared, cmd, rest),
        ("sleep", [secs]) => {
            let Ok(secs) = secs.parse::<f64>() else {
                cmd.err(format!("sleep: invalid time interval '{secs}'\n"));
                return 1;
            };
            if pause(cmd, (secs * 1000.0) as u64).await {
                0
            } else {
                cmd.killed_code()
            }
        }
        ("fake-stream-error", _) => {
            cmd.out("working\n");
            pause(cmd, 5).await;
            cmd.fail_stream("internal_error", "The log service failed", 1);
            1
        }
        _ => {
            cmd.err(format!("{name}: command not found\n"));
            127
        }
    }
}

/// `find ROOT … -name X … -prune -o -type f -print`: files under ROOT, skipping directories
/// named by `-name` when `-prune` is given.
fn run_find(shared: &Shared, cmd: &Cmd, args: &[&str]) -> i32 {
    let root = args
        .first()
        .filter(|a| !a.starts_with('-') && **a != "(")
        .copied()
        .unwrap_or(".");
    let pruned: HashSet<&str> = if args.contains(&"-prune") {
        args.windows(2)
            .filter(|w| w[0] == "-name")
            .map(|w| w[1])
            .collect()
    } else {
        HashSet::new()
    };
    let base = resolve(&cmd.cwd, root);
    let found = with_sb(shared, cmd, |sb| {
        if !sb.dirs.contains(&base) {
            return None;
        }
        let prefix = dir_prefix(&base);
        Some(
            sb.files
                .keys()
                .filter_map(|p| p.strip_prefix(&prefix))
                .filter(|rel| {
                    let dirs: Vec<&str> = rel.split('/').collect();
                    !dirs[..dirs.len() - 1].iter().any(|d| pruned.contains(d))
                })
                .map(|rel| format!("{}/{rel}\n", root.trim_end_matches('/')))
                .collect::<String>(),
        )
    })
    .flatten();
    match found {
        Some(text) => {
            if !text.is_empty() {
                cmd.out(text);
            }
            0
        }
        None => {
            cmd.err(format!("find: '{root}': No such file or directory\n"));
            1
        }
    }
}

/// npm's shape: stderr warnings between stdout lines, a line cut across two `data` values
/// (and that record cut across two writes), then `node_modules` appears.
async fn npm_install(shared: &Shared, cmd: &Cmd) -> i32 {
    let pkg = resolve(&cmd.cwd, "package.json");
    let has_pkg = with_sb(shared, cmd, |sb| sb.files.contains_key(&pkg)).unwrap_or(false);
    if !has_pkg {
        cmd.err(format!(
            "npm error code ENOENT\nnpm error syscall open\nnpm error path {pkg}\n\
             npm error enoent Could not read package.json\n"
        ));
        return 254;
    }
    let steps: [(&'static str, &str, bool); 5] = [
        (
            "stderr",
            "npm warn deprecated inflight@1.0.6: This module is not supported\n",
            false,
        ),
        ("stdout", "\nadded 3 pack", false),
        ("stdout", "ages, and audited 4 packages in 2s\n", true),
        (
            "stderr",
            "npm notice New minor version of npm available! 10.8.2 -> 10.9.0\n",
            false,
        ),
        ("stdout", "\nfound 0 vulnerabilities\n", false),
    ];
    for (stream, data, split) in steps {
        cmd.push(stream, data, split);
        if !pause(cmd, 5).await {
            return cmd.killed_code();
        }
    }
    let nm = resolve(&cmd.cwd, "node_modules");
    with_sb(shared, cmd, |sb| {
        sb.put(&format!("{nm}/.package-lock.json"), b"{}".to_vec(), 0o644);
        sb.put(
            &format!("{nm}/vite/package.json"),
            b"{\"name\":\"vite\"}".to_vec(),
            0o644,
        );
        sb.put(
            &format!("{nm}/.bin/vite"),
            b"#!/usr/bin/env node\n".to_vec(),
            0o755,
        );
    });
    0
}

/// Prints Vite's banner, listens on `--port` until killed; `--strictPort` fails on a busy port.
async fn run_vite(shared: &Shared, cmd: &Cmd, args: &[&str]) -> i32 {
    let port = args
        .windows(2)
        .find(|w| w[0] == "--port")
        .and_then(|w| w[1].parse::<u16>().ok())
        .unwrap_or(5173);
    let strict = args.contains(&"--strictPort");
    let taken = with_sb(shared, cmd, |sb| !sb.listening.insert(port)).unwrap_or(true);
    if taken && strict {
        cmd.err(format!(
            "error when starting dev server:\nError: Port {port} is already in use\n"
        ));
        return 1;
    }
    cmd.out("\n  VITE v5.4.10  ready in 312 ms\n\n");
    cmd.out(format!(
        "  ➜  Local:   http://localhost:{port}/\n  ➜  Network: http://169.254.100.2:{port}/\n"
    ));
    cmd.kill.cancelled().await;
    with_sb(shared, cmd, |sb| sb.listening.remove(&port));
    cmd.killed_code()
}

/// `dir` with one trailing `/` (the root stays `/`): what every path under it starts with.
fn dir_prefix(dir: &str) -> String {
    if dir == "/" {
        "/".to_string()
    } else {
        format!("{dir}/")
    }
}
