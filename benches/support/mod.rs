//! The stdio client the benchmarks share: it starts the release binary, answers the server's
//! requests at once (like a fast editor) and timestamps every notification on arrival.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn send(stdin: &Mutex<ChildStdin>, v: &Value) {
    let body = v.to_string();
    let mut s = stdin.lock().unwrap();
    write!(s, "Content-Length: {}\r\n\r\n{}", body.len(), body).unwrap();
    s.flush().unwrap();
}

/// A stdio client whose reader thread answers server requests at once (like a fast editor) and
/// timestamps every message on arrival.
pub struct Client {
    child: Child,
    stdin: Arc<Mutex<ChildStdin>>,
    responses: mpsc::Receiver<Value>,
    pub notes: mpsc::Receiver<(Value, Instant)>,
    next_id: u64,
}

impl Client {
    /// Starts the release binary with `env` added to its environment.
    pub fn start(state_dir: &Path, env: &[(&str, &str)]) -> Client {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_builder-lsp"));
        cmd.env("BUILDER_STATE_DIR", state_dir)
            .env("BUILDER_LOG", "error");
        for (k, v) in env {
            cmd.env(k, v);
        }
        Client::spawn(cmd)
    }

    /// Starts another language server (a peer measured beside builder-lsp) from `cmd`.
    pub fn spawn(mut cmd: Command) -> Client {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.get_program()));
        let stdin = Arc::new(Mutex::new(child.stdin.take().unwrap()));
        let stdout = child.stdout.take().unwrap();
        let (rtx, responses) = mpsc::channel();
        let (ntx, notes) = mpsc::channel();
        let answer = stdin.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let l = line.trim_end();
                    if l.is_empty() {
                        break;
                    }
                    if let Some(v) = l.strip_prefix("Content-Length: ") {
                        len = v.parse().unwrap();
                    }
                }
                let mut body = vec![0; len];
                if r.read_exact(&mut body).is_err() {
                    return;
                }
                let at = Instant::now();
                let v: Value = serde_json::from_slice(&body).unwrap();
                match (v.get("method").and_then(Value::as_str), v.get("id")) {
                    (Some(method), Some(id)) => {
                        let result = match method {
                            "workspace/applyEdit" => json!({"applied": true}),
                            _ => Value::Null,
                        };
                        send(
                            &answer,
                            &json!({"jsonrpc": "2.0", "id": id, "result": result}),
                        );
                    }
                    (Some(_), None) => {
                        if ntx.send((v, at)).is_err() {
                            return;
                        }
                    }
                    _ => {
                        if rtx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Client {
            child,
            stdin,
            responses,
            notes,
            next_id: 0,
        }
    }

    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.send_request(method, params);
        self.response(id)
    }

    /// Sends a request without waiting; [`Client::response`] collects the answer.
    pub fn send_request(&mut self, method: &str, params: Value) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        send(
            &self.stdin,
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        id
    }

    /// Waits for the answer to request `id` (answers to others are dropped).
    pub fn response(&mut self, id: u64) -> Value {
        loop {
            let msg = self
                .responses
                .recv_timeout(Duration::from_secs(60))
                .expect("server answered");
            if msg["id"] == json!(id) {
                return msg;
            }
        }
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        send(
            &self.stdin,
            &json!({"jsonrpc": "2.0", "method": method, "params": params}),
        );
    }

    /// `initialize` (timed) then `initialized`.
    pub fn init(&mut self, roots: &[&Path], options: Value) -> Duration {
        self.init_with(roots, options, false)
    }

    /// [`Client::init`], saying whether the client takes `$/progress` (work done progress).
    pub fn init_with(&mut self, roots: &[&Path], options: Value, progress: bool) -> Duration {
        let folders: Vec<Value> = roots
            .iter()
            .enumerate()
            .map(|(i, r)| json!({"uri": uri(r), "name": format!("p{i}")}))
            .collect();
        let t = Instant::now();
        let r = self.request(
            "initialize",
            json!({
                "processId": null,
                "rootUri": uri(roots[0]),
                "capabilities": {
                    "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true, "resourceOperations": ["create", "rename", "delete"]}, "configuration": false, "workspaceFolders": true},
                    "window": {"workDoneProgress": progress}
                },
                "initializationOptions": options,
                "workspaceFolders": folders
            }),
        );
        let took = t.elapsed();
        assert!(r["result"]["capabilities"].is_object(), "{r}");
        self.notify("initialized", json!({}));
        took
    }

    pub fn status(&self, key: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// CPU time the server has used so far (user + system, all threads), in ms.
    pub fn cpu_ms(&self) -> f64 {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which may hold spaces) start at field 3.
        let rest = &s[s.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        ticks * 1e3 / hz
    }

    /// [`Client::stop`] for a server that may keep running after `exit` while its stdin is
    /// open (llm-ls on tower-lsp): killed if it has not exited after `grace`.
    pub fn stop_within(mut self, grace: Duration) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let _ = self.child.wait();
    }
}

pub fn uri(p: &Path) -> String {
    format!("file://{}", p.display())
}

pub fn pct(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() - 1) as f64 * q).round() as usize]
}

pub fn median(v: &[f64]) -> f64 {
    pct(v, 0.5)
}
