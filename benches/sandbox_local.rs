//! The local sandbox against doing it by hand, with a warm npm cache: (a) template + `npm
//! install --prefer-offline` + `node_modules/.bin/vite` + poll until the first HTTP 200;
//! (b) the same through `LocalSandbox` (create, write_files, run, start_dev_server,
//! wait_ready), without isolation and with `auto` (bubblewrap where it works). Also the delay
//! from Vite's "ready" line to the first 200, and edit → served: `write_files` of a changed
//! App.jsx until `GET /src/App.jsx` has it. Needs the npm registry. `BENCH_QUICK=1`: one
//! iteration, fewer edits.

#[path = "../tests/support/http_get.rs"]
mod http_get;

use std::io::BufRead;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use builder_lsp::sandbox::local::{create, wait_ready, Isolation, LocalOptions};
use builder_lsp::sandbox::{template, CommandSpec, LineSink, Sandbox, SandboxFile};
use http_get::get as http_get;
use tokio_util::sync::CancellationToken;

fn median(v: &[f64]) -> f64 {
    pct(v, 0.5)
}

fn pct(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    s[((s.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn is_ready_line(l: &str) -> bool {
    l.contains("VITE") && l.contains(" ready in ")
}

fn write_template(dir: &Path) {
    for (path, text) in template::files("react-vite").unwrap() {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn npm_install(dir: &Path) {
    let ok = Command::new("npm")
        .args(["install", "--prefer-offline", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "npm install failed in {}", dir.display());
}

/// (a) By hand: total time to the first 200, and ready line → first 200.
fn by_hand(base: &Path) -> (Duration, Duration) {
    let dir = tempfile::tempdir_in(base).unwrap();
    let t0 = Instant::now();
    write_template(dir.path());
    npm_install(dir.path());
    let port = TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(dir.path().join("node_modules/.bin/vite"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--strictPort",
        ])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let ready_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let r = ready_at.clone();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if is_ready_line(&line) {
                *r.lock().unwrap() = Some(Instant::now());
            }
        }
    });
    while http_get(port, "/").map(|(s, _)| s) != Some(200) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "vite never answered"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let total = t0.elapsed();
    let answered = Instant::now();
    let ready = loop {
        if let Some(at) = *ready_at.lock().unwrap() {
            break at;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    // SAFETY: our child leads its own group.
    unsafe {
        libc::killpg(child.id() as i32, libc::SIGKILL);
    }
    child.wait().unwrap();
    reader.join().unwrap();
    (total, answered.saturating_duration_since(ready))
}

struct SandboxRun {
    total: Duration,
    ready_to_200: Duration,
    edits: Vec<f64>,
    isolation: String,
}

/// (b) Through LocalSandbox; `edits` changes of App.jsx measured after the first 200.
async fn through_sandbox(base: &Path, isolation: Isolation, edits: usize) -> SandboxRun {
    let t0 = Instant::now();
    let sb = create(LocalOptions {
        base_dir: base.to_path_buf(),
        isolation,
        project_key: "bench".into(),
        preview_base: None,
    })
    .await
    .unwrap();
    let files: Vec<SandboxFile> = template::files("react-vite")
        .unwrap()
        .into_iter()
        .map(|(p, c)| SandboxFile {
            path: p.into(),
            bytes: c.as_bytes().to_vec(),
        })
        .collect();
    sb.write_files(&files).await.unwrap();
    let spec = CommandSpec::new(
        "npm",
        ["install", "--prefer-offline", "--no-audit", "--no-fund"],
    );
    let out = sb
        .run(&spec, Arc::new(|_, _| {}), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    let ready_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let r = ready_at.clone();
    let sink: LineSink = Arc::new(move |_, l: &str| {
        if is_ready_line(l) {
            *r.lock().unwrap() = Some(Instant::now());
        }
    });
    sb.start_dev_server(sink).await.unwrap();
    wait_ready(&sb, Duration::from_secs(120), &CancellationToken::new())
        .await
        .unwrap();
    let total = t0.elapsed();
    let ready = ready_at.lock().unwrap().expect("no ready line");
    let ready_to_200 = Instant::now().saturating_duration_since(ready);

    let port: u16 = sb
        .info()
        .url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap();
    // Load the page's modules like a browser would, then let Vite's dependency scan finish
    // (the first edit right after start waits on it; that is startup, not edit latency).
    for p in ["/", "/src/main.jsx", "/src/App.jsx", "/src/index.css"] {
        let _ = http_get(port, p);
    }
    let mut lat = Vec::new();
    for i in 0..edits + 2 {
        let marker = format!("EDIT-{i}-{}", fastrand::u32(..));
        let app = format!(
            "export default function App() {{\n  return <main className=\"p-4\">{marker}</main>;\n}}\n"
        );
        sb.write_files(&[SandboxFile {
            path: "src/App.jsx".into(),
            bytes: app.into_bytes(),
        }])
        .await
        .unwrap();
        let t = Instant::now();
        loop {
            if http_get(port, "/src/App.jsx").is_some_and(|(_, b)| b.contains(&marker)) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "edit {i} never served"
            );
        }
        // The first two are warm-up.
        if i >= 2 {
            lat.push(ms(t.elapsed()));
        }
    }
    let isolation = sb.info().isolation;
    sb.kill().await.unwrap();
    SandboxRun {
        total,
        ready_to_200,
        edits: lat,
        isolation,
    }
}

fn registry_reachable() -> bool {
    Command::new("npm")
        .args(["view", "vite", "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn main() {
    if !registry_reachable() {
        println!("SKIPPED: no npm registry (`npm view vite version` failed)");
        return;
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let iters = if quick { 1 } else { 5 };
    let edits = if quick { 5 } else { 10 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::canonicalize(tmp.path()).unwrap();

    // Warm the npm cache (not measured).
    let warm = tempfile::tempdir_in(&base).unwrap();
    write_template(warm.path());
    npm_install(warm.path());
    drop(warm);

    let (mut hand, mut hand_r2) = (Vec::new(), Vec::new());
    let mut runs: Vec<(Isolation, Vec<SandboxRun>)> =
        vec![(Isolation::None, Vec::new()), (Isolation::Auto, Vec::new())];
    for _ in 0..iters {
        // Interleaved, so drifting machine load hits every variant alike.
        let (t, r) = by_hand(&base);
        hand.push(ms(t));
        hand_r2.push(ms(r));
        for (iso, v) in runs.iter_mut() {
            v.push(rt.block_on(through_sandbox(&base.join("sandboxes"), *iso, edits)));
        }
    }

    let h = median(&hand);
    println!("sandbox_local: {iters} iteration(s), warm npm cache");
    println!(
        "  by hand      install + vite + first 200: median {h:7.0} ms   ready line -> 200: median {:5.1} ms",
        median(&hand_r2)
    );
    for (iso, v) in &runs {
        let total: Vec<f64> = v.iter().map(|r| ms(r.total)).collect();
        let r2: Vec<f64> = v.iter().map(|r| ms(r.ready_to_200)).collect();
        let edits: Vec<f64> = v.iter().flat_map(|r| r.edits.iter().copied()).collect();
        let shown = v.first().map(|r| r.isolation.clone()).unwrap_or_default();
        let m = median(&total);
        println!(
            "  LocalSandbox {:<5} ({:<5}) total: median {m:7.0} ms ({:.2}x by hand, target <= 1.2x)   ready line -> 200: median {:5.1} ms (target <= 200)",
            iso.as_str(),
            shown,
            m / h,
            median(&r2),
        );
        println!(
            "  LocalSandbox {:<5} edit -> served over {} edits: median {:5.1} ms, p90 {:5.1} ms (target <= 100)",
            iso.as_str(),
            edits.len(),
            median(&edits),
            pct(&edits, 0.9)
        );
    }
}
