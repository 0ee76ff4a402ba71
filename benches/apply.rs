//! End-to-end figures over stdio against the release binary, with a minimal client that answers
//! `workspace/applyEdit` at once: `initialize` round-trip, idle RSS, and `builder.apply` of a
//! 200-file, 2 MB answer. `BENCH_QUICK=1` runs few iterations (CI).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{median, pct, Client};

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
        let mut c = Client::start(&state, &[]);
        let took = c.init(&[&root], json!({}));
        rtt.push(took.as_secs_f64() * 1e3);
        cold.push(t0.elapsed().as_secs_f64() * 1e3);
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
        median(&rtt),
        pct(&rtt, 0.9),
        spawns
    );
    println!(
        "spawn → initialize answered: median {:.2} ms",
        median(&cold)
    );
    println!(
        "idle RSS after initialize + didOpen: median {:.1} MB",
        median(&idle_rss)
    );

    // builder.apply, 200 files, ~2 MB, client answers applyEdit at once.
    let mut c = Client::start(&state, &[]);
    c.init(&[&root], json!({}));
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
        median(&times),
        pct(&times, 0.9),
        applies
    );
    println!(
        "peak RSS (VmHWM) after the applies: {:.1} MB",
        c.status("VmHWM:") as f64 / 1024.0
    );
    c.stop();
}
