//! Missing-package diagnostics over stdio: the time from sending a `didChange` of a 5,000-line
//! file to receiving its `publishDiagnostics` (debounce set to 0, so this is the server's own
//! work: rescanning the buffer, checking package.json, converting ranges). `BENCH_QUICK=1`
//! runs few iterations (CI).

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{median, pct, uri, Client};

/// A 5,000-line React/TS module: imports at the top (some missing), code below with strings,
/// comments, templates and JSX.
fn big_file(variant: usize) -> String {
    let mut s = String::with_capacity(260_000);
    s.push_str("import React, { useState } from 'react';\nimport axios from 'axios';\nimport { z } from 'zod';\nimport type { Dayjs } from 'dayjs';\nimport Button from './components/Button';\n");
    let mut line = 5;
    let mut i = 0;
    while line < 5_000 {
        s.push_str(&format!(
            "// item {i}: import x from 'not-a-real-import'\nexport function Item{i}({{ label }}: {{ label: string }}) {{\n  const [n, setN] = useState({variant});\n  const msg = `count ${{n}} for ${{label}}`; // {i}\n  return <div className=\"p-2\" onClick={{() => setN(n + 1)}}>{{msg}} — it's {i}</div>;\n}}\n"
        ));
        line += 6;
        i += 1;
    }
    s
}

fn wait_diagnostics(
    c: &Client,
    uri: &str,
    version: i64,
    timeout: Duration,
) -> Option<(Instant, Value)> {
    let end = Instant::now() + timeout;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match c.notes.recv_timeout(left) {
            Ok((v, at)) => {
                if v["method"] == json!("textDocument/publishDiagnostics")
                    && v["params"]["uri"] == json!(uri)
                    && v["params"]["version"] == json!(version)
                {
                    return Some((at, v));
                }
            }
            Err(_) => return None,
        }
    }
    None
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let rounds = if quick { 10 } else { 100 };
    let tmp = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(tmp.path()).unwrap().join("project");
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(
        root.join("package.json"),
        "{\"dependencies\":{\"react\":\"^19.0.0\"}}\n",
    )
    .unwrap();
    let file = root.join("src/Big.tsx");
    let text = big_file(0);
    std::fs::write(&file, &text).unwrap();
    let lines = text.lines().count();

    let mut c = Client::start(&tmp.path().join("state"), &[]);
    c.init(&[&root], json!({"diagnosticsDebounceMs": 0}));
    let u = uri(&file);
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": u, "languageId": "typescriptreact", "version": 1, "text": text}}),
    );
    let (_, first) =
        wait_diagnostics(&c, &u, 1, Duration::from_secs(30)).expect("first diagnostics");
    let n = first["params"]["diagnostics"]
        .as_array()
        .map(|d| d.len())
        .unwrap_or(0);
    assert_eq!(n, 3, "axios, zod and dayjs are missing: {first}");

    let mut ms = Vec::new();
    for r in 0..rounds {
        let version = 2 + r as i64;
        let new_text = big_file(r + 1);
        let t = Instant::now();
        c.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": u, "version": version}, "contentChanges": [{"text": new_text}]}),
        );
        let (at, _) = wait_diagnostics(&c, &u, version, Duration::from_secs(30))
            .expect("diagnostics after change");
        ms.push(at.duration_since(t).as_secs_f64() * 1000.0);
    }
    println!(
        "diagnostics: {lines}-line file, didChange (full text) → publishDiagnostics: median {:.2} ms, p90 {:.2} ms, max {:.2} ms over {rounds} changes (target ≤ 20 ms, debounce excluded)",
        median(&ms),
        pct(&ms, 0.9),
        pct(&ms, 1.0)
    );
    c.stop();
}
