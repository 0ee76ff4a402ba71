//! `builder.generate` end to end over stdio against the release binary, with loopback fake
//! providers: (1) overhead over reading the raw SSE stream, (2) latency from a chunk written on
//! the socket to its `builder/generationDelta` on stdout, (3) `textDocument/codeAction`
//! round-trips while 8 projects generate at once, plus peak RSS, (4) `$/cancelRequest` of a
//! generation whose provider hangs, to its answer, (5) what per-token paths (deltas, progress,
//! info logging) cost on a flat-out 20k-token stream. `BENCH_QUICK=1`: few
//! iterations and smaller sizes (CI). Talks to 127.0.0.1 only.

#[path = "../tests/fakes/mod.rs"]
mod fakes;
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use builder_lsp::ai::Provider;
use fakes::{chunk_text, openai_frames, FakeProvider, Reply};
use serde_json::{json, Value};
use support::{pct, uri, Client};

const MODEL: &str = "openai/gpt-4.1";

fn generate(c: &mut Client, args: Value) -> Value {
    c.request(
        "workspace/executeCommand",
        json!({"command": "builder.generate", "arguments": [args]}),
    )
}

/// A project folder with a small app on disk.
fn project(dir: &Path) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("package.json"),
        "{\"name\":\"app\",\"private\":true}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("src/App.jsx"),
        "export default function App() {\n  return <div className=\"p-4\">Hello</div>;\n}\n",
    )
    .unwrap();
}

/// A realistic answer of `files` JSX files of about `per_file` bytes each.
fn answer(files: usize, per_file: usize) -> String {
    let mut s = String::from("I'll build the dashboard with these components.\n\n");
    for i in 0..files {
        s.push_str(&format!("<file path=\"src/components/Panel{i}.jsx\">\n"));
        s.push_str(&format!(
            "import {{ useState }} from 'react';\n\nexport default function Panel{i}({{ items = [] }}) {{\n  const [open, setOpen] = useState(false);\n  return (\n    <section className=\"p-6 grid gap-4 md:grid-cols-2\">\n"
        ));
        let mut n = 0;
        let mut k = 0;
        while n < per_file {
            let line = format!("      <div className=\"rounded-xl bg-white shadow p-4\" onClick={{() => setOpen(!open)}}>Item {k} — {{items[{k}]?.label ?? 'none'}}</div>\n");
            n += line.len();
            k += 1;
            s.push_str(&line);
        }
        s.push_str("    </section>\n  );\n}\n</file>\n\n");
    }
    s.push_str("<explanation>A dashboard split into panels.</explanation>\n");
    s
}

// ---------------------------------------------------------------------------------------------
// 1. Overhead over the raw stream.

fn overhead(quick: bool, tmp: &Path) {
    let runs = if quick { 2 } else { 10 };
    let text = answer(20, 4000);
    let chunks = chunk_text(&text, 4);
    let frames = openai_frames(&chunks, "stop");
    let fake = FakeProvider::start(vec![Reply::sse(frames.clone())]);
    let base = fake.base_url_for(Provider::OpenAi);
    let wire: usize = frames.iter().map(String::len).sum();
    println!(
        "[1] answer: {:.1} KB, 20 files, {} SSE frames ({:.1} MB on the wire)",
        text.len() as f64 / 1e3,
        frames.len(),
        wire as f64 / 1e6
    );

    // (a) a bare reqwest client reading the whole body.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let raw: Vec<f64> = rt.block_on(async {
        let http = reqwest::Client::new();
        let body = json!({"model": "gpt-4.1", "stream": true, "messages": [{"role": "user", "content": "a dashboard"}]});
        let mut out = Vec::new();
        for i in 0..=runs {
            let t = Instant::now();
            let resp = http
                .post(format!("{base}/chat/completions"))
                .bearer_auth("sk-bench")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success());
            let mut resp = resp;
            let mut got = 0;
            while let Some(c) = resp.chunk().await.unwrap() {
                got += c.len();
            }
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert!(got >= wire, "short body: {got}");
            if i > 0 {
                out.push(ms);
            }
        }
        out
    });
    drop(rt);

    // (b) builder.generate {wait: true} until its response (all files applied).
    let root = tmp.join("overhead");
    project(&root);
    let mut c = Client::start(
        &tmp.join("state1"),
        &[("OPENAI_BASE_URL", &base), ("OPENAI_API_KEY", "sk-bench")],
    );
    c.init(&[&root], json!({}));
    let mut gen = Vec::new();
    for i in 0..=runs {
        let t = Instant::now();
        let r = generate(
            &mut c,
            json!({"prompt": "Build a dashboard", "model": MODEL, "wait": true}),
        );
        let ms = t.elapsed().as_secs_f64() * 1e3;
        let res = &r["result"];
        let files = res["files"].as_array().map(Vec::len);
        let landed = res["filesCreated"].as_array().map_or(0, Vec::len)
            + res["filesUpdated"].as_array().map_or(0, Vec::len);
        assert_eq!(files, Some(20), "{r}");
        assert_eq!(landed, 20, "{r}");
        assert!(res["errors"].as_array().is_none_or(Vec::is_empty), "{r}");
        if i > 0 {
            gen.push(ms);
        }
    }
    c.stop();
    let (ra, ga) = (pct(&raw, 0.5), pct(&gen, 0.5));
    println!(
        "[1a] raw stream, reqwest reads the whole body: median {:.1} ms, p90 {:.1} ms ({runs} runs)",
        ra,
        pct(&raw, 0.9)
    );
    println!(
        "[1b] builder.generate wait:true → response (20 files applied): median {:.1} ms, p90 {:.1} ms ({runs} runs)",
        ga,
        pct(&gen, 0.9)
    );
    println!(
        "[1] overhead ratio generate / raw (medians): {:.3}× (target ≤ 1.05×)",
        ga / ra
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Chunk on the socket → builder/generationDelta on stdout.

/// Reads one HTTP request (head + content-length body); false at EOF.
fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut tmp = [0u8; 16384];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        match sock.read(&mut tmp) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + 4 + len {
        match sock.read(&mut tmp) {
            Ok(0) | Err(_) => return false,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    buf.drain(..head_end + 4 + len);
    true
}

fn write_chunk(sock: &mut TcpStream, data: &str) -> std::io::Result<()> {
    let out = format!("{:x}\r\n{data}\r\n", data.len());
    sock.write_all(out.as_bytes())?;
    sock.flush()
}

/// Each frame's token and the Instant it was written.
type SentLog = Arc<Mutex<Vec<(String, Instant)>>>;

/// A tiny OpenAI-style SSE server: each request gets `n` content frames `w{i} ` with `gap`
/// between them; the Instant each frame was written is recorded under its token.
fn paced_server(n: usize, gap: Duration) -> (String, SentLog) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let sent = Arc::new(Mutex::new(Vec::new()));
    let s2 = sent.clone();
    std::thread::spawn(move || {
        let mut round = 0usize;
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let _ = sock.set_nodelay(true);
            let mut buf = Vec::new();
            while read_request(&mut sock, &mut buf) {
                let r = round;
                round += 1;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";
                if sock.write_all(head.as_bytes()).is_err() {
                    break;
                }
                let mut ok = true;
                for i in 0..n {
                    std::thread::sleep(gap);
                    let token = format!("w{r}x{i}");
                    let frame = format!(
                        "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{token} \"}},\"finish_reason\":null}}]}}\n\n"
                    );
                    if write_chunk(&mut sock, &frame).is_err() {
                        ok = false;
                        break;
                    }
                    s2.lock().unwrap().push((token, Instant::now()));
                }
                let tail = [
                    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
                    "data: [DONE]\n\n",
                ];
                if !ok
                    || tail.iter().any(|f| write_chunk(&mut sock, f).is_err())
                    || sock.write_all(b"0\r\n\r\n").is_err()
                {
                    break;
                }
            }
        }
    });
    (base, sent)
}

fn delta_latency(quick: bool, tmp: &Path) {
    let runs = if quick { 2 } else { 5 };
    let n = if quick { 100 } else { 300 };
    let (base, sent) = paced_server(n, Duration::from_millis(5));
    let root = tmp.join("deltas");
    project(&root);
    let mut c = Client::start(
        &tmp.join("state2"),
        &[("OPENAI_BASE_URL", &base), ("OPENAI_API_KEY", "sk-bench")],
    );
    c.init(&[&root], json!({"streamDeltas": true}));
    let mut arrivals: Vec<(String, Instant)> = Vec::new();
    for _ in 0..runs {
        let r = generate(
            &mut c,
            json!({"prompt": "Say the words", "model": MODEL, "wait": true}),
        );
        assert!(r["result"].is_object(), "{r}");
        // The delta forwarder finishes before the task does, so every delta is here now.
        while let Ok((v, at)) = c.notes.try_recv() {
            if v["method"] == "builder/generationDelta" {
                for tok in v["params"]["text"]
                    .as_str()
                    .unwrap_or("")
                    .split_whitespace()
                {
                    arrivals.push((tok.to_string(), at));
                }
            }
        }
    }
    c.stop();
    let sent = sent.lock().unwrap();
    let by_token: std::collections::HashMap<&str, Instant> =
        arrivals.iter().map(|(t, at)| (t.as_str(), *at)).collect();
    let mut lat = Vec::new();
    let mut first = Vec::new();
    for (tok, at) in sent.iter() {
        if let Some(got) = by_token.get(tok.as_str()) {
            let ms = got.saturating_duration_since(*at).as_secs_f64() * 1e3;
            lat.push(ms);
            // `w{round}x0` is the first token of a generation.
            if tok.ends_with("x0") {
                first.push(ms);
            }
        }
    }
    assert_eq!(lat.len(), sent.len(), "every frame arrived as a delta");
    assert_eq!(first.len(), runs);
    println!(
        "[2] first token written → its builder/generationDelta read: median {:.3} ms, max {:.3} ms ({} generations, 5 ms/token; target ≤ 5 ms)",
        pct(&first, 0.5),
        pct(&first, 1.0),
        first.len()
    );
    println!(
        "[2] any token written → its delta read (coalesced into ≤ 1 notification per 16 ms): median {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} frames)",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        lat.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 3. codeAction round-trips while 8 projects generate.

fn concurrent(quick: bool, tmp: &Path) {
    let projects = 8;
    let frames_n = if quick { 1000 } else { 2000 };
    let text = answer(20, 4000);
    let chunks = chunk_text(&text, text.len().div_ceil(frames_n));
    let frames = openai_frames(&chunks, "stop");
    let fake = FakeProvider::start(vec![Reply::sse_slow(frames, Duration::from_millis(1))]);
    let roots: Vec<_> = (0..projects)
        .map(|i| {
            let r = tmp.join(format!("multi{i}"));
            project(&r);
            r
        })
        .collect();
    let refs: Vec<&Path> = roots.iter().map(|r| r.as_path()).collect();
    let mut c = Client::start(
        &tmp.join("state3"),
        &[
            ("OPENAI_BASE_URL", &fake.base_url_for(Provider::OpenAi)),
            ("OPENAI_API_KEY", "sk-bench"),
        ],
    );
    c.init(&refs, json!({}));
    let doc = format!("{}/src/Page.jsx", uri(&roots[0]));
    let mut body = String::from("export default function Page() {\n  return (\n    <main>\n");
    for i in 0..150 {
        body.push_str(&format!("      <p className=\"text-sm\">Line {i}</p>\n"));
        if i % 30 == 0 {
            body.push_str("      {/* @builder make this section a card grid */}\n");
        }
    }
    body.push_str("    </main>\n  );\n}\n");
    let lines = body.lines().count() as u32;
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": doc, "languageId": "javascriptreact", "version": 1, "text": body}}),
    );
    let action = json!({
        "textDocument": {"uri": doc},
        "range": {"start": {"line": 0, "character": 0}, "end": {"line": lines - 1, "character": 0}},
        "context": {"diagnostics": []}
    });
    // Warm up, and check the document is there.
    let r = c.request("textDocument/codeAction", action.clone());
    assert!(r["result"].as_array().is_some_and(|a| !a.is_empty()), "{r}");

    let t0 = Instant::now();
    for r in &roots {
        let res = generate(
            &mut c,
            json!({"prompt": "Build a dashboard", "model": MODEL, "wait": false, "project": r.display().to_string()}),
        );
        assert!(res["result"]["taskId"].is_string(), "{res}");
    }
    let mut rtt = Vec::new();
    let mut done = 0;
    let mut failures = Vec::new();
    let deadline = t0 + Duration::from_secs(if quick { 40 } else { 90 });
    let mut next = Instant::now();
    while done < projects {
        assert!(Instant::now() < deadline, "generations did not finish");
        while let Ok((v, _)) = c.notes.try_recv() {
            if v["method"] == "window/showMessage" {
                let msg = v["params"]["message"].as_str().unwrap_or("").to_string();
                if v["params"]["type"] != 3 {
                    failures.push(msg);
                }
                done += 1;
            }
        }
        let t = Instant::now();
        let r = c.request("textDocument/codeAction", action.clone());
        rtt.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(r["result"].is_array(), "{r}");
        next += Duration::from_millis(5);
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let hwm = c.status("VmHWM:") as f64 / 1024.0;
    c.stop();
    assert!(failures.is_empty(), "generations failed: {failures:?}");
    println!(
        "[3] 8 projects generating at once ({:.1} KB / {} frames each, 1 ms apart): all done in {:.2} s",
        text.len() as f64 / 1e3,
        chunks.len(),
        wall
    );
    println!(
        "[3] textDocument/codeAction round-trip meanwhile: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} requests; target p99 ≤ 10 ms)",
        pct(&rtt, 0.5),
        pct(&rtt, 0.99),
        pct(&rtt, 1.0),
        rtt.len()
    );
    println!("[3] server peak RSS (VmHWM): {hwm:.1} MB");
}

// ---------------------------------------------------------------------------------------------
// 4. Cancel: `$/cancelRequest` of a waiting generation whose provider never answers.

fn cancel_latency(quick: bool, tmp: &Path) {
    let runs = if quick { 10 } else { 50 };
    let fake = FakeProvider::start(vec![Reply::Hang]);
    let root = tmp.join("cancel");
    project(&root);
    let mut c = Client::start(
        &tmp.join("state4"),
        &[
            ("OPENAI_BASE_URL", &fake.base_url_for(Provider::OpenAi)),
            ("OPENAI_API_KEY", "sk-bench"),
        ],
    );
    c.init(&[root.as_path()], json!({}));
    let mut lat = Vec::new();
    for i in 0..runs {
        let id = c.send_request(
            "workspace/executeCommand",
            json!({"command": "builder.generate", "arguments": [{"prompt": "Build a page", "model": MODEL, "wait": true}]}),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while fake.request_count() <= i {
            assert!(
                Instant::now() < deadline,
                "request {i} never reached the provider: {:?}",
                c.notes.try_iter().map(|n| n.0).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        let t = Instant::now();
        c.notify("$/cancelRequest", json!({"id": id}));
        let r = c.response(id);
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r["error"]["code"], json!(-32800), "{r}");
    }
    c.stop();
    println!(
        "[4] $/cancelRequest -> answer while the provider hangs: p50 {:.3} ms, max {:.3} ms ({} runs; target ≤ 100 ms)",
        pct(&lat, 0.5),
        pct(&lat, 1.0),
        lat.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 5. What per-token paths cost: 20k one-token frames flat out, with deltas, progress or info
//    logging on, against the same run with all of them off (wall time and server CPU).

fn per_token_paths(quick: bool, tmp: &Path) {
    let runs = if quick { 3 } else { 8 };
    let tokens = 20_000;
    let mut text = String::from("<file path=\"src/Words.jsx\">\nexport const words = `");
    for i in 0..tokens {
        text.push_str(&format!("w{i} "));
    }
    text.push_str("`;\n</file>\n");
    let chunks: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
    let frames = openai_frames(&chunks, "stop");
    let fake = FakeProvider::start(vec![Reply::sse(frames)]);
    let base = fake.base_url_for(Provider::OpenAi);
    let cases: [(&str, Value, bool, &str); 4] = [
        ("all off", json!({}), false, "error"),
        (
            "streamDeltas on",
            json!({"streamDeltas": true}),
            false,
            "error",
        ),
        ("$/progress on", json!({}), true, "error"),
        ("BUILDER_LOG=info", json!({}), false, "info"),
    ];
    let mut base_wall = 0.0;
    let mut base_cpu = 0.0;
    for (k, (name, opts, progress, log)) in cases.into_iter().enumerate() {
        let root = tmp.join(format!("tokens{k}"));
        project(&root);
        let mut c = Client::start(
            &tmp.join(format!("state5-{k}")),
            &[
                ("OPENAI_BASE_URL", &base),
                ("OPENAI_API_KEY", "sk-bench"),
                ("BUILDER_LOG", log),
            ],
        );
        c.init_with(&[&root], opts.clone(), progress);
        let mut walls = Vec::new();
        let mut cpus = Vec::new();
        let mut notes = 0usize;
        for i in 0..=runs {
            let cpu0 = c.cpu_ms();
            let t = Instant::now();
            let r = generate(
                &mut c,
                json!({"prompt": "words", "model": MODEL, "wait": true}),
            );
            let ms = t.elapsed().as_secs_f64() * 1e3;
            assert!(
                r["result"]["errors"].as_array().is_some_and(Vec::is_empty),
                "{r}"
            );
            // Let trailing notifications drain before reading the CPU.
            std::thread::sleep(Duration::from_millis(50));
            let cpu = c.cpu_ms() - cpu0;
            let n = c
                .notes
                .try_iter()
                .filter(|(v, _)| v["method"] == "builder/generationDelta")
                .count();
            if i > 0 {
                walls.push(ms);
                cpus.push(cpu);
                notes += n;
            }
        }
        c.stop();
        let (w, cpu) = (pct(&walls, 0.5), pct(&cpus, 0.5));
        if k == 0 {
            base_wall = w;
            base_cpu = cpu;
            println!(
                "[5] {tokens} one-token frames flat out, {name}: median {w:.1} ms, server CPU {cpu:.0} ms per generation ({runs} runs)"
            );
        } else {
            println!(
                "[5] … {name}: median {w:.1} ms ({:.2}× all off), server CPU {cpu:.0} ms ({:.2}×){} (targets: deltas ≤ 1.2× wall, ≤ 2× CPU; others ≤ 1.05×)",
                w / base_wall,
                cpu / base_cpu.max(1.0),
                if notes > 0 {
                    format!(", {} delta notifications per generation", notes / runs)
                } else {
                    String::new()
                }
            );
        }
    }
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let t = Instant::now();
    overhead(quick, &dir);
    delta_latency(quick, &dir);
    concurrent(quick, &dir);
    cancel_latency(quick, &dir);
    per_token_paths(quick, &dir);
    println!("generate bench: {:.1} s in all", t.elapsed().as_secs_f64());
}
