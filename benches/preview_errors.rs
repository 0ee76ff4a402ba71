//! The fix loop's latencies over stdio with the real parts: a local sandbox (real npm, real
//! Vite with the preview overlay) and Debian's headless Chromium keeping the preview open.
//! (1) A runtime error thrown in the page → the `publishDiagnostics` carrying it: the page
//! throws `tick <Date.now()>` every 400 ms, so each diagnostic's age is its arrival time minus
//! the stamp (same machine, same clock). (2) A compile error in a saved file → its `vite`
//! diagnostic: from `didSave` to the notification. (3) Auto-fix on the broken-app scenario
//! (a syntax error, a render throw, an import of a file not written) against the loopback
//! OpenAI fake: `builder.generate` to its answer, clean after one fix round. Needs the npm
//! registry and `chromium`.
//! `BENCH_QUICK=1`: fewer samples.

#[path = "../tests/fakes/mod.rs"]
mod fakes;
mod support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use builder_lsp::ai::Provider;
use fakes::{chunk_text, openai_frames, FakeProvider, Reply};
use serde_json::{json, Value};
use support::{median, pct, uri, Client};

const BROKEN_APP: &str = "import Child from './components/Child.jsx';\nimport Header from './components/Header.jsx';\nimport Extra from './Missing.jsx';\n\nexport default function App() {\n  return <main><Header /><Child /><Extra /></main>;\n}\n";
const BROKEN_HEADER: &str =
    "export default function Header() {\n  const title = ;\n  return <h1>{title}</h1>;\n}\n";
const THROWING_CHILD: &str =
    "export default function Child() {\n  throw new Error('render boom');\n}\n";
const FIXED_APP: &str = "import Child from './components/Child.jsx';\nimport Header from './components/Header.jsx';\n\nexport default function App() {\n  return <main><Header /><Child /></main>;\n}\n";
const FIXED_HEADER: &str = "export default function Header() {\n  const title = 'Bakery';\n  return <h1>{title}</h1>;\n}\n";
const FIXED_CHILD: &str = "export default function Child() {\n  return <p>all good</p>;\n}\n";

fn answer(files: &[(&str, &str)]) -> Reply {
    let text: String = files
        .iter()
        .map(|(p, c)| format!("<file path=\"{p}\">{c}</file>\n"))
        .collect();
    Reply::sse(openai_frames(&chunk_text(&text, 11), "stop"))
}

const TICKER: &str = "import { useEffect } from 'react';\n\nexport default function App() {\n  useEffect(() => {\n    const t = setInterval(() => {\n      throw new Error('tick ' + Date.now());\n    }, 400);\n    return () => clearInterval(t);\n  }, []);\n  return <main>ticking</main>;\n}\n";
const WITH_BROKEN: &str =
    "import Broken from './Broken.jsx';\n\nexport default function App() {\n  return <main><Broken /></main>;\n}\n";
const GOOD: &str = "export default function Broken() {\n  return <p>fine</p>;\n}\n";

fn broken(i: usize) -> String {
    format!("export default function Broken() {{\n  const n{i} = ;\n  return <p>broken</p>;\n}}\n")
}

fn save(c: &mut Client, path: &Path, text: &str) {
    // The bench client acknowledges edits without writing them: files are written here.
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    c.notify(
        "textDocument/didSave",
        json!({"textDocument": {"uri": uri(path)}, "text": text}),
    );
}

fn diags_of<'a>(note: &'a Value, u: &str, source: &str) -> Option<Vec<&'a Value>> {
    if note["method"] != json!("textDocument/publishDiagnostics")
        || note["params"]["uri"] != json!(u)
    {
        return None;
    }
    Some(
        note["params"]["diagnostics"]
            .as_array()?
            .iter()
            .filter(|d| d["source"] == json!(source))
            .collect(),
    )
}

/// Waits for a notification `f` accepts; its arrival instant.
fn wait_note(c: &Client, limit: Duration, mut f: impl FnMut(&Value) -> bool) -> Option<Instant> {
    let end = Instant::now() + limit;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match c.notes.recv_timeout(left) {
            Ok((v, at)) if f(&v) => return Some(at),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

fn line(name: &str, v: &[f64], target: &str) {
    println!(
        "{name:<44} median {:>7.1} ms   p90 {:>7.1} ms   (n={}; target {target})",
        median(v),
        pct(v, 0.9),
        v.len()
    );
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    if !Command::new("npm")
        .args(["view", "vite", "version"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("SKIPPED: no npm registry");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let profile = tempfile::tempdir().unwrap();
    let fix_runs = if quick { 2 } else { 5 };
    let mut replies = Vec::new();
    for _ in 0..fix_runs {
        replies.push(answer(&[
            ("src/App.jsx", BROKEN_APP),
            ("src/components/Header.jsx", BROKEN_HEADER),
            ("src/components/Child.jsx", THROWING_CHILD),
        ]));
        replies.push(answer(&[
            ("src/App.jsx", FIXED_APP),
            ("src/components/Header.jsx", FIXED_HEADER),
            ("src/components/Child.jsx", FIXED_CHILD),
        ]));
    }
    let fake = FakeProvider::start(replies);
    let base = fake.base_url_for(Provider::OpenAi);
    let mut c = Client::start(
        state.path(),
        &[
            ("BUILDER_CACHE_DIR", cache.path().to_str().unwrap()),
            (Provider::OpenAi.base_var(), &base),
            ("OPENAI_API_KEY", "sk-bench-fix"),
            ("DEFAULT_AI_MODEL", "openai/gpt-4.1"),
        ],
    );
    c.init(
        &[dir.path()],
        json!({"sandbox": {"isolation": "none", "openPreview": false},
               "autoFix": {"mode": "on", "maxRounds": 2}}),
    );
    let r = c.request(
        "workspace/executeCommand",
        json!({"command": "builder.sandbox.create", "arguments": [{"wait": true}]}),
    );
    let url = r["result"]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no sandbox: {r}"))
        .to_string();
    let app = dir.path().join("src/App.jsx");
    let app_uri = uri(&app);
    save(&mut c, &app, TICKER);
    std::thread::sleep(Duration::from_millis(300));
    let mut browser = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.path().display()),
            &url,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("chromium");
    let pgid = browser.id() as i32;

    // (1) runtime error → diagnostic
    let (t0, s0) = (Instant::now(), SystemTime::now());
    let want = if quick { 6 } else { 32 };
    let mut ages = Vec::new();
    let mut seen = std::collections::HashSet::new();
    while ages.len() < want {
        let mut stamp = None;
        let at = wait_note(&c, Duration::from_secs(20), |v| {
            let Some(d) = diags_of(v, &app_uri, "builder (preview)") else {
                return false;
            };
            stamp = d
                .iter()
                .filter_map(|d| {
                    d["message"]
                        .as_str()?
                        .strip_prefix("tick ")?
                        .parse::<u64>()
                        .ok()
                })
                .filter(|s| !seen.contains(s))
                .max();
            stamp.is_some()
        })
        .expect("no runtime-error diagnostic within 20 s");
        let stamp = stamp.unwrap();
        seen.insert(stamp);
        let arrived = s0 + at.duration_since(t0);
        let arrived_ms = arrived.duration_since(UNIX_EPOCH).unwrap().as_secs_f64() * 1e3;
        ages.push(arrived_ms - stamp as f64);
    }
    // The first reports wait for the page to start.
    let ages: Vec<f64> = ages.into_iter().skip(2).collect();

    // (2) compile error on save → diagnostic
    let brk = dir.path().join("src/Broken.jsx");
    let brk_uri = uri(&brk);
    save(&mut c, &brk, GOOD);
    save(&mut c, &app, WITH_BROKEN);
    std::thread::sleep(Duration::from_millis(1500));
    while c.notes.try_recv().is_ok() {}
    let n = if quick { 3 } else { 15 };
    let mut compile = Vec::new();
    for i in 0..n {
        let sent = Instant::now();
        save(&mut c, &brk, &broken(i));
        let at = wait_note(&c, Duration::from_secs(10), |v| {
            diags_of(v, &brk_uri, "vite").is_some_and(|d| !d.is_empty())
        })
        .unwrap_or_else(|| panic!("no compile-error diagnostic within 10 s (iteration {i})"));
        compile.push(at.duration_since(sent).as_secs_f64() * 1e3);
        save(&mut c, &brk, GOOD);
        wait_note(&c, Duration::from_secs(10), |v| {
            diags_of(v, &brk_uri, "vite").is_some_and(|d| d.is_empty())
        })
        .expect("the fixed file's diagnostic was not cleared");
        std::thread::sleep(Duration::from_millis(300));
        while c.notes.try_recv().is_ok() {}
    }

    // (3) auto-fix on the broken app (the ticking page is closed first: its errors are not
    // the scenario's).
    // SAFETY: plain syscall on the group this bench started.
    unsafe {
        libc::killpg(pgid, libc::SIGKILL);
    }
    let _ = browser.wait();
    let mut fix_ms = Vec::new();
    for i in 0..fix_runs {
        let t = Instant::now();
        let r = c.request(
            "workspace/executeCommand",
            json!({"command": "builder.generate", "arguments": [{"prompt": format!("a bakery page {i}"), "wait": true}]}),
        );
        let g = &r["result"];
        assert_eq!(g["fixStopped"], json!("clean"), "run {i}: {r:#}");
        assert_eq!(
            g["fixRounds"].as_array().map(Vec::len),
            Some(1),
            "run {i}: {r:#}"
        );
        fix_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }

    println!("fix loop over stdio (local sandbox, real Vite, headless Chromium on the preview):");
    line(
        "runtime error in the browser -> diagnostic",
        &ages,
        "<= 500 ms",
    );
    line("compile error on save -> diagnostic", &compile, "<= 300 ms");
    line(
        "broken app -> clean after 1 auto-fix round",
        &fix_ms,
        "reported",
    );

    let _ = c.request(
        "workspace/executeCommand",
        json!({"command": "builder.sandbox.kill", "arguments": [{}]}),
    );
    c.stop();
}
