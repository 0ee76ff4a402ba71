//! History figures over stdio against the release binary: what a checkpoint adds to the
//! 200-file / 2 MB `builder.apply` (history on vs `history.maxCheckpoints: 0`, interleaved so
//! machine load hits both alike), `builder.revert` of that checkpoint, and the disk a second
//! checkpoint of the same files with one changed costs. `BENCH_QUICK=1` runs few iterations (CI).

mod support;

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{json, Value};
use support::{median, pct, Client};

const FILES: usize = 200;

/// The text of component `i` in `variant` (about 10 KB).
fn component(i: usize, variant: usize) -> String {
    let mut s = format!(
        "export default function C{i}() {{\n  return (\n    <section className=\"p-6 grid gap-4\">\n"
    );
    let mut n = 0;
    while n < 10_000 {
        let line = format!("      <div className=\"rounded-xl shadow p-4\" data-v=\"{variant}\">Item {n} of C{i} — ✨ {{items[{n}]?.label ?? 'none'}}</div>\n");
        n += line.len();
        s.push_str(&line);
    }
    s.push_str("    </section>\n  );\n}\n");
    s
}

fn rel(i: usize) -> String {
    format!("src/components/C{i}.jsx")
}

/// An answer rewriting every component to `variant`.
fn answer(variant: usize) -> String {
    let mut s = String::from("Here is the app.\n");
    for i in 0..FILES {
        s.push_str(&format!(
            "<file path=\"{}\">\n{}</file>\n",
            rel(i),
            component(i, variant)
        ));
    }
    s.push_str("<explanation>200 components.</explanation>\n");
    s
}

/// Writes every component of `variant` to disk (what an editor's save does after an apply).
fn write_all(root: &Path, variant: usize) {
    for i in 0..FILES {
        std::fs::write(root.join(rel(i)), component(i, variant)).unwrap();
    }
}

fn project(tmp: &Path, name: &str) -> PathBuf {
    let root = tmp.join(name);
    std::fs::create_dir_all(root.join("src/components")).unwrap();
    write_all(&root, 0);
    root
}

fn apply(c: &mut Client, text: &str) -> (f64, Value) {
    let t = Instant::now();
    let r = c.request(
        "workspace/executeCommand",
        json!({"command": "builder.apply", "arguments": [{"response": text, "wait": true}]}),
    );
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let res = r["result"].clone();
    assert_eq!(res["applied"], json!(true), "{r}");
    (ms, res)
}

fn du(dir: &Path) -> u64 {
    let mut total = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let m = e.metadata().unwrap();
            total += if m.is_dir() { du(&e.path()) } else { m.len() };
        }
    }
    total
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    // Enough rounds for a median that holds still on a shared 2-core machine.
    let rounds = if quick { 4 } else { 60 };
    let tmp = tempfile::tempdir().unwrap();
    let tmp = std::fs::canonicalize(tmp.path()).unwrap();

    // [1] Checkpoint overhead: two servers, one with history off, applies interleaved. Every
    // apply changes all 200 files, so each checkpoint stores 2 MB of new content.
    let off_root = project(&tmp, "off");
    let on_root = project(&tmp, "on");
    let mut off = Client::start(&tmp.join("state-off"), &[]);
    off.init(&[&off_root], json!({"history": {"maxCheckpoints": 0}}));
    let mut on = Client::start(&tmp.join("state-on"), &[]);
    on.init(&[&on_root], json!({}));
    let (mut t_off, mut t_on) = (Vec::new(), Vec::new());
    let mut cpu0 = (0.0, 0.0);
    for i in 0..rounds + 1 {
        if i == 1 {
            cpu0 = (off.cpu_ms(), on.cpu_ms());
        }
        let text = answer(i + 1);
        // Alternating which goes first, so neither always runs in the other's wake (its
        // writeback, a cold cache).
        let ((a, ra), (b, rb)) = if i % 2 == 0 {
            let a = apply(&mut off, &text);
            (a, apply(&mut on, &text))
        } else {
            let b = apply(&mut on, &text);
            (apply(&mut off, &text), b)
        };
        assert!(
            ra["checkpoint"].is_null(),
            "history off records nothing: {ra}"
        );
        assert!(rb["checkpoint"].is_string(), "history on records: {rb}");
        if i > 0 {
            // The first round warms both up (page cache, allocator).
            t_off.push(a);
            t_on.push(b);
        }
    }
    let (m_off, m_on) = (median(&t_off), median(&t_on));
    // Each round's on/off ratio too: a pair runs back to back, so a slow stretch of the
    // machine weighs on both of its sides and cancels out.
    let ratios: Vec<f64> = t_on.iter().zip(&t_off).map(|(b, a)| b / a).collect();
    println!(
        "[1] builder.apply 200 files / 2 MB: history off median {m_off:.1} ms (p90 {:.1}), on median {m_on:.1} ms (p90 {:.1}): overhead {:+.1}%, median of paired rounds {:+.1}% (target ≤ 10%)",
        pct(&t_off, 0.9),
        pct(&t_on, 0.9),
        (m_on / m_off - 1.0) * 100.0,
        (median(&ratios) - 1.0) * 100.0
    );
    let n = rounds as f64;
    let (cpu_off, cpu_on) = ((off.cpu_ms() - cpu0.0) / n, (on.cpu_ms() - cpu0.1) / n);
    println!(
        "    server CPU per apply: off {cpu_off:.1} ms, on {cpu_on:.1} ms ({:+.1} ms, {:+.1}%)",
        cpu_on - cpu_off,
        (cpu_on / cpu_off - 1.0) * 100.0
    );
    off.stop();
    on.stop();

    // [2] Revert of such a checkpoint over stdio. The bench client accepts edits without
    // writing them, so the bench writes what an editor would save: after the apply, the new
    // text; the revert then finds no conflict and restores all 200 files.
    let root = project(&tmp, "revert");
    let mut c = Client::start(&tmp.join("state-revert"), &[]);
    c.init(&[&root], json!({}));
    let mut t_rev = Vec::new();
    for i in 0..rounds {
        let v = i + 1;
        let (_, res) = apply(&mut c, &answer(v));
        let cp = res["checkpoint"].as_str().unwrap().to_string();
        write_all(&root, v);
        let t = Instant::now();
        let r = c.request(
            "workspace/executeCommand",
            json!({"command": "builder.revert", "arguments": [{"checkpoint": cp}]}),
        );
        t_rev.push(t.elapsed().as_secs_f64() * 1e3);
        let res = &r["result"];
        assert_eq!(
            res["filesRestored"].as_array().map(Vec::len),
            Some(FILES),
            "{r}"
        );
        assert_eq!(res["conflicts"], json!([]), "{r}");
        write_all(&root, v - 1);
    }
    println!(
        "[2] builder.revert of a 200-file / 2 MB checkpoint: median {:.1} ms, p90 {:.1} ms (target ≤ 50 ms median)",
        median(&t_rev),
        pct(&t_rev, 0.9)
    );
    c.stop();

    // [3] Disk: a second checkpoint of the same 2 MB with one file changed.
    let root = project(&tmp, "disk");
    let state = tmp.join("state-disk");
    let mut c = Client::start(&state, &[]);
    c.init(&[&root], json!({}));
    apply(&mut c, &answer(1));
    write_all(&root, 1);
    let history = state.join("history");
    let before = du(&history);
    let file_size = component(7, 2).len() as u64;
    // The same 200 files, one of them changed.
    let mut second = String::from("Again.\n");
    for i in 0..FILES {
        let v = if i == 7 { 2 } else { 1 };
        second.push_str(&format!(
            "<file path=\"{}\">\n{}</file>\n",
            rel(i),
            component(i, v)
        ));
    }
    apply(&mut c, &second);
    let grown = du(&history) - before;
    println!(
        "[3] disk: second checkpoint of the 200 files with one changed added {grown} B; that file is {file_size} B (target ≤ file + 4096 B: {})",
        if grown <= file_size + 4096 { "met" } else { "MISSED" }
    );
    c.stop();
}
