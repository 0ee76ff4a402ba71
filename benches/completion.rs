//! Inline completions over stdio against the release binary and the loopback FIM fake
//! (llama.cpp `/infill`, 128 streamed tokens): (1) server overhead = `textDocument/
//! inlineCompletion` round trip minus a bare HTTP client reading the same answer from the same
//! fake, (2) a superseded request: from the newer request being sent to the fake seeing the
//! older connection closed, (3) a cache hit's round trip, (4) idle RSS after initialize +
//! didOpen, (5) with `LLM_LS_BIN` set, llm-ls's `llm-ls/getCompletions` beside builder-lsp on
//! the same fake in the same run (skipped otherwise: CI has no llm-ls). `BENCH_QUICK=1`: fewer
//! iterations (CI). Talks to 127.0.0.1 only.

#[path = "../tests/fakes/mod.rs"]
mod fakes;
mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use fakes::fim::{FakeFim, FimReply};
use serde_json::{json, Value};
use support::{median, pct, uri, Client};

const TOKENS: usize = 128;

/// 128 tokens of one line of code without brackets (nothing for the post-processor to cut).
fn answer() -> Vec<String> {
    (0..TOKENS).map(|i| format!(" v{i}")).collect()
}

fn doc(i: usize) -> String {
    format!("// run {i}\nexport function f(a, b) {{\n  const total = a + b\n  return total\n}}\nconst x =")
}

fn start(dir: &Path, fake: &FakeFim) -> (Client, String) {
    start_with(dir, "llamacpp/bench", "llamacpp", &fake.url())
}

/// builder-lsp with `completion.model` = `model`, `baseUrls.<base_id>` = `base`, a file open.
fn start_with(dir: &Path, model: &str, base_id: &str, base: &str) -> (Client, String) {
    let mut c = Client::start(dir, &[]);
    let r = c.request(
        "initialize",
        json!({
            "processId": null,
            "rootUri": uri(dir),
            "capabilities": {"textDocument": {"inlineCompletion": {}}, "general": {"positionEncodings": ["utf-16"]}},
            "initializationOptions": {
                "completion": {"model": model, "debounceMs": 0, "maxTokens": TOKENS},
                "baseUrls": {base_id: base},
            },
            "workspaceFolders": [{"uri": uri(dir), "name": "p"}],
        }),
    );
    assert_eq!(
        r["result"]["capabilities"]["inlineCompletionProvider"],
        json!(true),
        "{r}"
    );
    c.notify("initialized", json!({}));
    let file = dir.join("src/app.js");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(&file, doc(0)).unwrap();
    let u = uri(&file);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": u, "languageId": "javascript", "version": 1, "text": doc(0)}}),
    );
    (c, u)
}

fn change(c: &mut Client, u: &str, version: i32, text: &str) {
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": u, "version": version}, "contentChanges": [{"text": text}]}),
    );
}

fn inline(c: &mut Client, u: &str) -> (Value, f64) {
    let t = Instant::now();
    let r = c.request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": u}, "position": {"line": 5, "character": 9}, "context": {"triggerKind": 2}}),
    );
    (r, t.elapsed().as_secs_f64() * 1e3)
}

/// A bare HTTP/1.1 client: POST /infill, read the chunked stream to its end.
fn raw_infill(addr: &str) -> f64 {
    let body = json!({"input_prefix": doc(0), "input_suffix": "", "input_extra": [], "prompt": "",
        "n_predict": TOKENS, "temperature": 0.2, "stream": true, "cache_prompt": true});
    raw_post(addr, "/infill", "text/event-stream", &body).0
}

/// A bare HTTP/1.1 client: POST `body` to `path` on a fresh connection and read the answer to
/// its end (a chunked stream or a content-length body). The time, and the body (de-chunked).
fn raw_post(addr: &str, path: &str, accept: &str, body: &Value) -> (f64, Vec<u8>) {
    let body = body.to_string();
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\naccept: {accept}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{path}: {line}");
    let (mut chunked, mut len) = (false, 0usize);
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
        let l = line.to_ascii_lowercase();
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        } else if l.starts_with("transfer-encoding:") && l.contains("chunked") {
            chunked = true;
        }
    }
    let mut out = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            let n = usize::from_str_radix(line.trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&chunk[..n]);
        }
    } else {
        out.resize(len, 0);
        r.read_exact(&mut out).unwrap();
    }
    (t.elapsed().as_secs_f64() * 1e3, out)
}

/// A fake that streams the 128-token answer in 4-byte chunks with no delay, so what is
/// measured is the servers, not the model.
fn instant_fake() -> FakeFim {
    FakeFim::start(
        vec![FimReply::Text {
            text: answer().concat(),
            chunk: 4,
            first_delay: Duration::ZERO,
            delay: Duration::ZERO,
        }],
        None,
    )
}

/// Returns the server overhead (median, p90) in ms.
fn overhead(quick: bool, dir: &Path) -> (f64, f64) {
    let runs = if quick { 30 } else { 300 };
    let fake = instant_fake();
    let addr = fake.url().trim_start_matches("http://").to_string();
    let (mut c, u) = start(dir, &fake);
    let mut lsp = Vec::new();
    let mut raw = Vec::new();
    for i in 0..runs + 5 {
        // A new first line each time: never a cache hit.
        change(&mut c, &u, i as i32 + 2, &doc(i + 1));
        let (r, ms) = inline(&mut c, &u);
        let text = r["result"]["items"][0]["insertText"].as_str().unwrap_or("");
        assert_eq!(text, answer().concat().trim_end(), "{r}");
        let b = raw_infill(&addr);
        if i >= 5 {
            lsp.push(ms);
            raw.push(b);
        }
    }
    c.stop();
    // The same request in-process (no stdio, no LSP): where the time goes.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = builder_lsp::ai::http_client();
    let urls: std::collections::HashMap<String, String> =
        [("llamacpp".to_string(), fake.url())].into();
    let ep = builder_lsp::completion::model::resolve(
        "llamacpp/bench",
        &Default::default(),
        &urls,
        &Default::default(),
    )
    .unwrap();
    let mut inproc = Vec::new();
    for i in 0..runs {
        let text = doc(i + 1000);
        let ctx = builder_lsp::completion::context::build(
            &text,
            text.len(),
            "src/app.js",
            &[],
            &Default::default(),
        );
        let t = Instant::now();
        let limits = builder_lsp::completion::fim::Limits {
            max_tokens: TOKENS as u32,
            temperature: 0.2,
        };
        let r = rt
            .block_on(builder_lsp::completion::fim::fetch(
                &http, &ep, &ctx, limits,
            ))
            .unwrap();
        inproc.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(r.trim(), answer().concat().trim());
    }
    println!(
        "    in-process fim::fetch of the same answer (current-thread runtime, as the server runs it): median {:.3} ms, p90 {:.3} ms",
        median(&inproc),
        pct(&inproc, 0.9)
    );
    let over: Vec<f64> = lsp.iter().zip(&raw).map(|(a, b)| a - b).collect();
    println!(
        "[1] {TOKENS} tokens streamed: inlineCompletion round trip median {:.3} ms, bare HTTP client {:.3} ms; server overhead median {:.3} ms, p90 {:.3} ms ({runs} runs)",
        median(&lsp),
        median(&raw),
        median(&over),
        pct(&over, 0.9)
    );
    (median(&over), pct(&over, 0.9))
}

const FIM_PREFIX: &str = "<fim_prefix>";
const FIM_SUFFIX: &str = "<fim_suffix>";
const FIM_MIDDLE: &str = "<fim_middle>";

/// llm-ls (huggingface/llm-ls) started from `bin` over stdio, with one file open.
fn start_llm_ls(bin: &str, dir: &Path) -> (Client, String) {
    let home = dir.join("llm-ls-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut cmd = std::process::Command::new(bin);
    // It writes its log under $HOME/.cache/llm_ls; keep that in the bench's temporary dir.
    cmd.env("HOME", &home).env("LLM_LOG_LEVEL", "warn");
    let mut c = Client::spawn(cmd);
    let r = c.request(
        "initialize",
        json!({"processId": null, "rootUri": uri(dir), "capabilities": {"general": {"positionEncodings": ["utf-16"]}},
            "workspaceFolders": [{"uri": uri(dir), "name": "p"}]}),
    );
    assert_eq!(r["result"]["serverInfo"]["name"], json!("llm-ls"), "{r}");
    c.notify("initialized", json!({}));
    let u = uri(&dir.join("src/llm-ls.js"));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": u, "languageId": "javascript", "version": 1, "text": doc(0)}}),
    );
    (c, u)
}

/// `llm-ls/getCompletions` as llm.nvim sends it, against an OpenAI-compatible server: FIM
/// tokens around prefix and suffix, no tokenizer (lengths in bytes), 128 tokens asked for.
fn llm_ls_params(u: &str, url: &str) -> Value {
    json!({
        "textDocument": {"uri": u},
        "position": {"line": 5, "character": 9},
        "ide": "neovim",
        "fim": {"enabled": true, "prefix": FIM_PREFIX, "middle": FIM_MIDDLE, "suffix": FIM_SUFFIX},
        "apiToken": null,
        "model": "bench",
        "backend": "openai",
        "url": url,
        "tokensToClear": ["<|endoftext|>"],
        "tokenizerConfig": null,
        "contextWindow": 1024,
        "tlsSkipVerifyInsecure": false,
        "requestBody": {"max_tokens": TOKENS, "temperature": 0.2},
    })
}

/// [5] builder-lsp and llm-ls side by side on one fake, the OpenAI-compatible `POST
/// /v1/completions` both speak (llm-ls has no llama.cpp `/infill` backend), same prompt and
/// position, 128 tokens, the two interleaved in one loop. llm-ls asks for one JSON body
/// (`stream: false`, it does not stream); builder-lsp streams. Each server's overhead is its
/// round trip minus a bare HTTP client reading that same reply from the same fake.
fn side_by_side(quick: bool, dir: &Path, infill: (f64, f64)) {
    let Ok(bin) = std::env::var("LLM_LS_BIN") else {
        println!(
            "[5] llm-ls side by side: skipped: LLM_LS_BIN not set (point it at an llm-ls binary)"
        );
        return;
    };
    let runs = if quick { 30 } else { 300 };
    let fake = instant_fake();
    let addr = fake.url().trim_start_matches("http://").to_string();
    let url = format!("{}/v1/completions", fake.url());
    let (mut b, bu) = start_with(
        dir,
        "compatible/bench",
        "compatible",
        &format!("{}/v1", fake.url()),
    );
    let (mut l, lu) = start_llm_ls(&bin, dir);
    let want = answer().concat();
    // llm-ls handles notifications concurrently with requests: ask until the didOpen landed.
    let mut ready = false;
    for _ in 0..100 {
        let r = l.request("llm-ls/getCompletions", llm_ls_params(&lu, &url));
        if r["result"]["completions"][0]["generated_text"].is_string() {
            ready = true;
            break;
        }
        assert!(r["result"]["completions"] == json!([]), "{r}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ready, "llm-ls never answered with a completion");
    let prompt = format!("{FIM_PREFIX}{}{FIM_SUFFIX}{FIM_MIDDLE}", doc(0));
    let llm_body = json!({"max_tokens": TOKENS, "temperature": 0.2, "prompt": prompt, "model": "bench", "stream": false});
    let last = fake.requests().pop().expect("llm-ls reached the fake");
    assert_eq!(last.path, "/v1/completions");
    assert_eq!(
        last.body, llm_body,
        "the bare client sends what llm-ls sent"
    );
    let (mut bl, mut br, mut ll, mut lr) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 5 {
        change(&mut b, &bu, i as i32 + 2, &doc(i + 1));
        let (r, ms) = inline(&mut b, &bu);
        assert_eq!(
            r["result"]["items"][0]["insertText"],
            json!(want.trim_end()),
            "{r}"
        );
        let sent = fake.requests().pop().unwrap();
        assert_eq!(sent.path, "/v1/completions");
        assert_eq!(sent.body["stream"], json!(true));
        let (raw_b, _) = raw_post(&addr, "/v1/completions", "text/event-stream", &sent.body);

        let t = Instant::now();
        let r = l.request("llm-ls/getCompletions", llm_ls_params(&lu, &url));
        let lms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(
            r["result"]["completions"][0]["generated_text"],
            json!(want),
            "{r}"
        );
        let (raw_l, body) = raw_post(&addr, "/v1/completions", "application/json", &llm_body);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["choices"][0]["text"],
            json!(want),
            "the bare client read the same answer"
        );
        if i >= 5 {
            bl.push(ms);
            br.push(raw_b);
            ll.push(lms);
            lr.push(raw_l);
        }
    }
    b.stop();
    l.stop_within(Duration::from_millis(500));
    let over = |a: &[f64], r: &[f64]| -> Vec<f64> { a.iter().zip(r).map(|(x, y)| x - y).collect() };
    let (bo, lo) = (over(&bl, &br), over(&ll, &lr));
    println!("[5] side by side, same fake, same run: OpenAI-compatible POST /v1/completions, {TOKENS} tokens, same prompt and position ({runs} runs each, interleaved)");
    println!(
        "    {:<46}{:<22}{:<26}{:<18}overhead med / p90",
        "server (request)", "fake's reply", "round trip med / p90", "bare client med"
    );
    let row = |name: &str, reply: &str, rt: &[f64], raw: &[f64], o: &[f64]| {
        println!(
            "    {name:<46}{reply:<22}{:<26}{:<18}{:.3} / {:.3} ms",
            format!("{:.3} / {:.3} ms", median(rt), pct(rt, 0.9)),
            format!("{:.3} ms", median(raw)),
            median(o),
            pct(o, 0.9)
        )
    };
    row(
        "builder-lsp (textDocument/inlineCompletion)",
        "SSE, 4-byte chunks",
        &bl,
        &br,
        &bo,
    );
    row(
        "llm-ls (llm-ls/getCompletions)",
        "one JSON body",
        &ll,
        &lr,
        &lo,
    );
    println!(
        "    (builder-lsp on llama.cpp /infill, [1] above: overhead median {:.3} ms, p90 {:.3} ms)",
        infill.0, infill.1
    );
}

fn supersede(quick: bool, dir: &Path) {
    let runs = if quick { 10 } else { 100 };
    let mut script = Vec::new();
    for _ in 0..runs {
        script.push(FimReply::Hang);
        script.push(FimReply::text(" done"));
    }
    let fake = FakeFim::start(script, None);
    let (mut c, u) = start(dir, &fake);
    let mut closed = Vec::new();
    for i in 0..runs {
        change(&mut c, &u, i as i32 + 2, &doc(i + 1));
        let old = c.send_request(
            "textDocument/inlineCompletion",
            json!({"textDocument": {"uri": u}, "position": {"line": 5, "character": 9}, "context": {"triggerKind": 2}}),
        );
        assert!(fake.wait_requests(2 * i + 1, Duration::from_secs(10)));
        let t = Instant::now();
        let (r, _) = inline(&mut c, &u);
        assert_eq!(r["result"]["items"][0]["insertText"], json!(" done"), "{r}");
        let end = fake
            .wait_ended(2 * i, Duration::from_secs(10))
            .expect("the superseded connection closed");
        assert!(!end.completed);
        closed.push(end.at.saturating_duration_since(t).as_secs_f64() * 1e3);
        // (The older request's empty answer arrived while `inline` waited, and was dropped.)
        let _ = old;
    }
    c.stop();
    println!(
        "[2] superseded request: upstream connection closed {:.3} ms median, {:.3} ms p90 after the newer request was sent ({runs} runs)",
        median(&closed),
        pct(&closed, 0.9)
    );
}

fn cache_hit(quick: bool, dir: &Path) {
    let runs = if quick { 100 } else { 2000 };
    let fake = FakeFim::start(vec![FimReply::text(&answer().concat())], None);
    let (mut c, u) = start(dir, &fake);
    let (r, first) = inline(&mut c, &u);
    assert!(r["result"]["items"][0]["insertText"].is_string(), "{r}");
    let mut hits = Vec::new();
    for _ in 0..runs {
        let (r, ms) = inline(&mut c, &u);
        assert!(r["result"]["items"][0]["insertText"].is_string(), "{r}");
        hits.push(ms);
    }
    assert_eq!(
        fake.request_count(),
        1,
        "every later answer came from the cache"
    );
    std::thread::sleep(Duration::from_millis(300));
    let rss = c.status("VmRSS:") as f64 / 1024.0;
    c.stop();
    println!(
        "[3] cache hit round trip: median {:.3} ms, p90 {:.3} ms ({runs} runs; first, from the fake: {first:.2} ms)",
        median(&hits),
        pct(&hits, 0.9)
    );
    println!("    RSS after {} completions: {rss:.1} MB", runs + 1);
}

/// The stdio floor: an inlineCompletion that is answered at once (no model configured).
fn floor(quick: bool, dir: &Path) -> f64 {
    let runs = if quick { 100 } else { 2000 };
    let mut c = Client::start(dir, &[]);
    c.request(
        "initialize",
        json!({"processId": null, "rootUri": uri(dir), "capabilities": {"textDocument": {"inlineCompletion": {}}},
            "workspaceFolders": [{"uri": uri(dir), "name": "p"}]}),
    );
    c.notify("initialized", json!({}));
    let u = uri(&dir.join("src/app.js"));
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": u, "languageId": "javascript", "version": 1, "text": doc(0)}}),
    );
    let mut v = Vec::new();
    for _ in 0..runs {
        let (r, ms) = inline(&mut c, &u);
        assert_eq!(r["result"], json!({"items": []}), "{r}");
        v.push(ms);
    }
    c.stop();
    let m = median(&v);
    println!(
        "[0] stdio floor (inlineCompletion answered empty at once): median {m:.3} ms, p90 {:.3} ms",
        pct(&v, 0.9)
    );
    m
}

fn idle_rss(dir: &Path) {
    let fake = FakeFim::start(vec![FimReply::text(" x")], None);
    let (mut c, _) = start(dir, &fake);
    // A round trip: the server has read the didOpen.
    c.request("textDocument/codeAction", json!({"textDocument": {"uri": uri(&dir.join("src/app.js"))}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "context": {"diagnostics": []}}));
    std::thread::sleep(Duration::from_millis(500));
    let rss = c.status("VmRSS:") as f64 / 1024.0;
    c.stop();
    println!("[4] idle RSS after initialize + didOpen (completions configured): {rss:.1} MB");
    if let Some((found, listed)) = text_order_coverage() {
        // The list holds two builds' names (release, bench): about half match when fresh.
        let stale = if found * 4 < listed {
            "; stale: rerun scripts/text-order.py"
        } else {
            ""
        };
        println!(
            "    build/text-order.txt: {found} of its {listed} functions are in this binary{stale}"
        );
    }
}

/// How many of the functions `build/text-order.txt` puts first (see build.rs) the server
/// binary has: names change with dependency or toolchain updates, and a stale list shows
/// here as idle RSS going back up.
fn text_order_coverage() -> Option<(usize, usize)> {
    let list =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/build/text-order.txt"))
            .ok()?;
    let nm = std::process::Command::new("nm")
        .arg(env!("CARGO_BIN_EXE_builder-lsp"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&nm.stdout);
    let symbols: std::collections::HashSet<&str> =
        text.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    let listed: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    let found = listed.iter().filter(|n| symbols.contains(*n)).count();
    Some((found, listed.len()))
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let t = Instant::now();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    floor(quick, &dir);
    let infill = overhead(quick, &dir);
    supersede(quick, &dir);
    cache_hit(quick, &dir);
    idle_rss(&dir);
    side_by_side(quick, &dir, infill);
    println!(
        "completion bench: {:.1} s in all",
        t.elapsed().as_secs_f64()
    );
}
