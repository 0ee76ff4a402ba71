//! End-to-end figures over stdio against the release binary, with a minimal client that answers
//! `workspace/applyEdit` at once: `initialize` round-trip, idle RSS, and `builder.apply` of a
//! 200-file, 2 MB answer. `BENCH_QUICK=1` runs few iterations (CI).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: mpsc::Receiver<Value>,
    next_id: u64,
}

fn send(stdin: &mut ChildStdin, v: &Value) {
    let body = v.to_string();
    write!(stdin, "Content-Length: {}\r\n\r\n{}", body.len(), body).unwrap();
    stdin.flush().unwrap();
}

impl Client {
    fn start(state_dir: &std::path::Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_builder-lsp"))
            .env("BUILDER_STATE_DIR", state_dir)
            .env("BUILDER_LOG", "error")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn builder-lsp");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
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
                r.read_exact(&mut body).unwrap();
                let v: Value = serde_json::from_slice(&body).unwrap();
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Client {
            child,
            stdin,
            rx,
            next_id: 0,
        }
    }

    /// Sends a request and waits for its response, answering server requests on the way.
    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        send(
            &mut self.stdin,
            &json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        );
        loop {
            let msg = self
                .rx
                .recv_timeout(Duration::from_secs(30))
                .expect("server answered");
            if msg.get("method").is_some() {
                if let Some(rid) = msg.get("id") {
                    let result = match msg["method"].as_str() {
                        Some("workspace/applyEdit") => json!({"applied": true}),
                        _ => Value::Null,
                    };
                    send(
                        &mut self.stdin,
                        &json!({"jsonrpc": "2.0", "id": rid, "result": result}),
                    );
                }
                continue;
            }
            if msg["id"] == json!(id) {
                return msg;
            }
        }
    }

    fn notify(&mut self, method: &str, params: Value) {
        send(
            &mut self.stdin,
            &json!({"jsonrpc": "2.0", "method": method, "params": params}),
        );
    }

    fn status(&self, key: &str) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        s.lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    fn stop(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let _ = self.child.wait();
    }
}

fn init_params(root: &std::path::Path) -> Value {
    let uri = format!("file://{}", root.display());
    json!({
        "processId": null,
        "rootUri": uri,
        "capabilities": {
            "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true, "resourceOperations": ["create", "rename", "delete"]}, "configuration": false},
            "window": {"workDoneProgress": true}
        },
        "workspaceFolders": [{"uri": uri, "name": "bench"}]
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn p(v: &[f64], q: f64) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[((s.len() - 1) as f64 * q).round() as usize]
}

/// A realistic 200-file answer of about 2 MB; `variant` changes every file's text.
fn answer(variant: usize) -> String {
    let mut s = String::with_capacity(2_200_000);
    s.push_str("Here is the app.\n");
    for i in 0..200 {
        s.push_str(&format!("<file path=\"src/components/C{i}.jsx\">\n"));
        s.push_str(&format!("export default function C{i}() {{\n  return (\n    <section className=\"p-6 grid gap-4\">\n"));
        let mut n = 0;
        while n < 10_000 {
            let line = format!("      <div className=\"rounded-xl shadow p-4\" data-v=\"{variant}\">Item {n} of C{i} — ✨ {{items[{n}]?.label ?? 'none'}}</div>\n");
            n += line.len();
            s.push_str(&line);
        }
        s.push_str("    </section>\n  );\n}\n</file>\n");
    }
    s.push_str("<explanation>200 components.</explanation>\n");
    s
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let spawns = if quick { 3 } else { 20 };
    let applies = if quick { 3 } else { 20 };
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap().join("project");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let state = tmp.path().join("state");

    // initialize round-trip (process already started) and start-to-answer.
    let mut rtt = Vec::new();
    let mut cold = Vec::new();
    let mut idle_rss = Vec::new();
    for _ in 0..spawns {
        let t0 = Instant::now();
        let mut c = Client::start(&state);
        let t1 = Instant::now();
        let r = c.request("initialize", init_params(&root));
        let t2 = Instant::now();
        assert!(r["result"]["capabilities"].is_object());
        rtt.push((t2 - t1).as_secs_f64() * 1e3);
        cold.push((t2 - t0).as_secs_f64() * 1e3);
        c.notify("initialized", json!({}));
        c.notify("textDocument/didOpen", json!({"textDocument": {"uri": format!("file://{}/src/App.jsx", root.display()), "languageId": "javascriptreact", "version": 1, "text": "export default function App() { return <div/>; }\n"}}));
        c.request(
            "workspace/executeCommand",
            json!({"command": "builder.conversation.get", "arguments": [{}]}),
        );
        std::thread::sleep(Duration::from_millis(200));
        idle_rss.push(c.status("VmRSS:") as f64 / 1024.0);
        c.stop();
    }
    println!(
        "initialize round-trip: median {:.2} ms, p90 {:.2} ms ({} runs)",
        median(&mut rtt.clone()),
        p(&rtt, 0.9),
        spawns
    );
    println!(
        "spawn → initialize answered: median {:.2} ms",
        median(&mut cold)
    );
    println!(
        "idle RSS after initialize + didOpen: median {:.1} MB",
        median(&mut idle_rss)
    );

    // builder.apply, 200 files, ~2 MB, client answers applyEdit at once.
    let mut c = Client::start(&state);
    c.request("initialize", init_params(&root));
    c.notify("initialized", json!({}));
    let first = answer(0);
    println!("answer size: {:.2} MB, 200 files", first.len() as f64 / 1e6);
    let mut times = Vec::new();
    for i in 0..applies {
        let text = answer(i + 1);
        let t = Instant::now();
        let r = c.request(
            "workspace/executeCommand",
            json!({"command": "builder.apply", "arguments": [{"response": text, "wait": true}]}),
        );
        times.push(t.elapsed().as_secs_f64() * 1e3);
        let res = &r["result"];
        assert_eq!(
            res["filesCreated"].as_array().map(Vec::len),
            Some(200),
            "{}",
            r
        );
    }
    println!(
        "builder.apply 200 files / 2 MB over stdio: median {:.1} ms, p90 {:.1} ms ({} runs)",
        median(&mut times.clone()),
        p(&times, 0.9),
        applies
    );
    println!(
        "peak RSS (VmHWM) after the applies: {:.1} MB",
        c.status("VmHWM:") as f64 / 1024.0
    );
    c.stop();
}
