//! The local sandbox against real npm and Vite (needs the npm registry; prints `SKIPPED` and
//! passes when it cannot be reached). One long end-to-end test shares one `npm install` across
//! its asserts; two smaller ones cover isolation `none` with drop, and a SIGKILLed server.

#[path = "support/http_get.rs"]
mod http_get;

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use builder_lsp::sandbox::local::{
    create, default_base_dir, wait_ready, Isolation, LocalOptions, LocalSandbox,
};
use builder_lsp::sandbox::{
    template, vite_errors, CommandSpec, LineSink, OutputStream, Sandbox, SandboxError, SandboxFile,
};
use http_get::get as http_get;
use tokio_util::sync::CancellationToken;

/// Env var that turns `dev_server_dies_with_a_sigkilled_server` into its own child process.
const CHILD_ENV: &str = "SANDBOX_LOCAL_TEST_CHILD";
/// The child's isolation setting.
const ISOLATION_ENV: &str = "SANDBOX_LOCAL_TEST_ISOLATION";

/// A temp cache dir for the whole test binary (set before any sandbox exists).
fn base_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = match std::env::var_os(CHILD_ENV) {
            Some(d) => PathBuf::from(d),
            None => tempfile::Builder::new()
                .prefix("builder-cache-")
                .tempdir()
                .unwrap()
                .keep(),
        };
        std::env::set_var("BUILDER_CACHE_DIR", &dir);
        let base = default_base_dir();
        assert_eq!(base, dir.join("sandboxes"));
        base
    })
    .clone()
}

fn registry_reachable() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        let ok = std::process::Command::new("npm")
            .args(["view", "vite", "version"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!("SKIPPED: no npm registry (`npm view vite version` failed)");
        }
        ok
    })
}

type Lines = Arc<Mutex<Vec<(OutputStream, String, Instant)>>>;

fn collecting_sink() -> (LineSink, Lines) {
    let lines: Lines = Arc::default();
    let l = lines.clone();
    let sink: LineSink = Arc::new(move |s, line: &str| {
        l.lock()
            .unwrap()
            .push((s, line.to_string(), Instant::now()))
    });
    (sink, lines)
}

fn texts(lines: &Lines) -> Vec<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l, _)| l.clone())
        .collect()
}

fn port_of(sb: &dyn Sandbox) -> u16 {
    let url = sb.info().url;
    let port = url.strip_prefix("http://127.0.0.1:").unwrap();
    port.parse().unwrap()
}

fn port_closed(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Live processes (not zombies) whose command line or cwd mentions `needle`.
/// Within `within`, no process of this test mentions `needle` any more.
async fn assert_no_process_mentions(needle: &str, within: Duration) {
    assert!(
        eventually(within, || procs_mentioning(needle).is_empty()).await,
        "{:?}",
        procs_mentioning(needle)
    );
}

fn procs_mentioning(needle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let p = e.path();
        let stat = std::fs::read_to_string(p.join("stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
        if matches!(state, Some(Some('Z' | 'X')) | None) {
            continue;
        }
        let cmd = std::fs::read(p.join("cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default();
        let cwd = std::fs::read_link(p.join("cwd"))
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default();
        if cmd.contains(needle) || cwd.starts_with(needle) {
            found.push(format!("{pid}: {cmd} (cwd {cwd})"));
        }
    }
    found
}

/// Polls `cond` every 10 ms for up to `limit`; whether it became true.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn template_files(app: &str) -> Vec<SandboxFile> {
    let mut files: Vec<SandboxFile> = template::files("react-vite")
        .unwrap()
        .into_iter()
        .filter(|(p, _)| *p != "src/App.jsx")
        .map(|(p, c)| SandboxFile {
            path: p.into(),
            bytes: c.as_bytes().to_vec(),
        })
        .collect();
    files.push(app_file(app));
    files
}

fn app_file(text: &str) -> SandboxFile {
    SandboxFile {
        path: "src/App.jsx".into(),
        bytes: text.as_bytes().to_vec(),
    }
}

fn app_with(marker: &str) -> String {
    format!(
        "export default function App() {{\n  return <main className=\"p-4\">{marker}</main>;\n}}\n"
    )
}

fn npm_install() -> CommandSpec {
    CommandSpec::new(
        "npm",
        ["install", "--prefer-offline", "--no-audit", "--no-fund"],
    )
}

/// A fresh local sandbox under the test base folder, without a preview base.
async fn new_sandbox(isolation: Isolation, key: &str) -> LocalSandbox {
    create(LocalOptions {
        base_dir: base_dir(),
        isolation,
        project_key: key.into(),
        preview_base: None,
    })
    .await
    .unwrap()
}

/// Whether a real-npm test runs: not in the re-executed child, and only with a registry.
fn real_npm_runs() -> bool {
    std::env::var_os(CHILD_ENV).is_none() && registry_reachable()
}

/// Template + install in a fresh sandbox; the install's output lines.
async fn installed(isolation: Isolation, key: &str, app: &str) -> (LocalSandbox, Vec<String>) {
    let sb = new_sandbox(isolation, key).await;
    sb.write_files(&template_files(app)).await.unwrap();
    let (sink, lines) = collecting_sink();
    let out = sb
        .run(&npm_install(), sink, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0, "npm install failed:\n{}", out.stderr);
    (sb, texts(&lines))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_with_real_npm_and_vite() {
    if !real_npm_runs() {
        return;
    }
    let t0 = Instant::now();
    let sb = new_sandbox(Isolation::Auto, "my app/ü").await;
    let info = sb.info();
    let dir = sb.dir().to_path_buf();
    let dir_s = dir.to_string_lossy().into_owned();
    assert_eq!(sb.project_dir(), dir_s);
    eprintln!(
        "isolation: {} ({})",
        info.isolation,
        sb.isolation_note().unwrap_or("no fallback")
    );
    assert!(info.isolation == "bwrap" || info.isolation == "none");
    assert_eq!(info.isolation == "none", sb.isolation_note().is_some());
    assert!(info.sandbox_id.starts_with("my-app"), "{}", info.sandbox_id);
    assert!(dir.starts_with(base_dir().canonicalize().unwrap()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(chrono::DateTime::parse_from_rfc3339(&info.created_at).is_ok());

    // Files: a bad path writes nothing, the rest round-trips.
    let escape = sb
        .write_files(&[
            app_file("fine"),
            SandboxFile {
                path: "../escaped.txt".into(),
                bytes: b"x".to_vec(),
            },
        ])
        .await;
    assert!(escape.is_err());
    assert!(!dir.join("src/App.jsx").exists());
    assert!(!dir.parent().unwrap().join("escaped.txt").exists());
    assert!(sb.write_files(&[app_file("x")]).await.is_ok());
    std::os::unix::fs::symlink("/etc", dir.join("etc-link")).unwrap();
    assert!(sb.read_file("etc-link/hostname").await.is_err());
    assert!(sb
        .write_files(&[SandboxFile {
            path: "etc-link/x".into(),
            bytes: vec![]
        }])
        .await
        .is_err());
    // Deletes (a revert of created files): inside only, a missing file is fine.
    assert!(sb
        .delete_files(&["etc-link/hostname".into()])
        .await
        .is_err());
    assert!(std::path::Path::new("/etc/hostname").exists());
    assert!(sb.delete_files(&["../escaped.txt".into()]).await.is_err());
    assert!(dir.join("src/App.jsx").exists());
    sb.delete_files(&["src/App.jsx".into(), "no/such.txt".into()])
        .await
        .unwrap();
    assert!(!dir.join("src/App.jsx").exists());
    std::fs::remove_file(dir.join("etc-link")).unwrap();

    sb.write_files(&template_files(&app_with("MARKER-ONE")))
        .await
        .unwrap();
    assert_eq!(
        sb.read_file("src/App.jsx").await.unwrap().unwrap(),
        app_with("MARKER-ONE").into_bytes()
    );
    assert_eq!(sb.read_file("src/nope.jsx").await.unwrap(), None);

    // Install, streamed.
    let (sink, lines) = collecting_sink();
    let t = Instant::now();
    let out = sb
        .run(&npm_install(), sink, CancellationToken::new())
        .await
        .unwrap();
    eprintln!("npm install: {:?}", t.elapsed());
    assert_eq!(out.exit_code, 0, "{}", out.stderr);
    assert!(
        !texts(&lines).is_empty(),
        "no install output reached the sink"
    );
    assert!(out.stdout.contains("added") || out.stdout.contains("up to date"));

    let listed = sb.list_files().await.unwrap();
    let mut expected: Vec<String> = template::files("react-vite")
        .unwrap()
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    expected.push("package-lock.json".into());
    expected.sort();
    assert_eq!(listed, expected);

    // Dev server: the reserved port is taken meanwhile, so Vite retries once on another.
    let first_port = port_of(&sb);
    let squatter = std::net::TcpListener::bind(("127.0.0.1", first_port)).unwrap();
    let (dev_sink, dev_lines) = collecting_sink();
    let t = Instant::now();
    sb.start_dev_server(dev_sink.clone()).await.unwrap();
    let started = t.elapsed();
    let port = port_of(&sb);
    assert_ne!(
        port,
        first_port,
        "the taken port was not replaced: {:?}",
        texts(&dev_lines)
    );
    drop(squatter);
    let cancel = CancellationToken::new();
    let ready = wait_ready(&sb, Duration::from_secs(60), &cancel)
        .await
        .unwrap();
    eprintln!("dev server: started in {started:?}, answered {ready:?} later");
    assert!(texts(&dev_lines)
        .iter()
        .any(|l| l.contains("already in use")));
    assert!(sb.healthy().await);

    let (status, body) = http_get(port, "/").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("<div id=\"root\"></div>"), "{body}");
    let (status, body) = http_get(port, "/src/App.jsx").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("MARKER-ONE"));

    // An edit is served.
    sb.write_files(&[app_file(&app_with("MARKER-TWO"))])
        .await
        .unwrap();
    let t = Instant::now();
    let served = eventually(Duration::from_secs(5), || {
        http_get(port, "/src/App.jsx").is_some_and(|(_, b)| b.contains("MARKER-TWO"))
    })
    .await;
    assert!(served, "the edit was not served within 5 s");
    eprintln!("edit -> served: {:?}", t.elapsed());
    // Two edits in the same clock tick: the second must not be lost by the file watcher.
    for m in ["MARKER-2A", "MARKER-2B"] {
        sb.write_files(&[app_file(&app_with(m))]).await.unwrap();
    }
    assert!(
        eventually(Duration::from_secs(5), || {
            http_get(port, "/src/App.jsx").is_some_and(|(_, b)| b.contains("MARKER-2B"))
        })
        .await,
        "the second of two quick edits was never served"
    );

    // A broken file becomes a located error.
    let broken = "export default function App() {\n  return (\n    <main>\n      <p>{ oops = }</p>\n    </main>\n  );\n}\n";
    sb.write_files(&[app_file(broken)]).await.unwrap();
    let mut errs = Vec::new();
    let found = eventually(Duration::from_secs(5), || {
        let _ = http_get(port, "/src/App.jsx");
        errs = vite_errors::parse(&texts(&dev_lines), Path::new(&sb.project_dir()));
        !errs.is_empty()
    })
    .await;
    assert!(
        found,
        "no error parsed from:\n{}",
        texts(&dev_lines).join("\n")
    );
    assert_eq!(errs[0].file, "src/App.jsx");
    assert_eq!(errs[0].line, 4);
    assert!(texts(&dev_lines).iter().all(|l| !l.contains('\u{1b}')));
    // Fixing it clears the error (HMR update after the error).
    sb.write_files(&[app_file(&app_with("MARKER-THREE"))])
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(5), || {
            http_get(port, "/src/App.jsx").is_some_and(|(_, b)| b.contains("MARKER-THREE"))
        })
        .await
    );

    // A failing command: exit code and stderr.
    let (sink, lines) = collecting_sink();
    let out = sb
        .run(
            &CommandSpec::new(
                "node",
                [
                    "-e",
                    "console.log('out'); console.error('boom'); process.exit(3)",
                ],
            ),
            sink,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "boom\n");
    let got = lines.lock().unwrap().clone();
    assert!(got
        .iter()
        .any(|(s, l, _)| *s == OutputStream::Stderr && l == "boom"));
    let missing = sb
        .run(
            &CommandSpec::new("definitely-not-a-program-xyz", Vec::<String>::new()),
            collecting_sink().0,
            CancellationToken::new(),
        )
        .await;
    assert!(
        missing.is_err() || matches!(&missing, Ok(o) if o.exit_code != 0),
        "{missing:?}"
    );

    // Cancel a long command.
    let needle = "setTimeout(()=>{},60017)";
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    let canceller = tokio::spawn(async move {
        let seen = eventually(Duration::from_secs(10), || {
            !procs_mentioning(needle).is_empty()
        })
        .await;
        let t = Instant::now();
        c.cancel();
        (seen, t)
    });
    let res = sb
        .run(
            &CommandSpec::new("node", ["-e", needle]),
            collecting_sink().0,
            cancel,
        )
        .await;
    let (seen, cancelled_at) = canceller.await.unwrap();
    assert!(seen, "the long command never showed up");
    assert!(matches!(res, Err(SandboxError::Cancelled)), "{res:?}");
    let took = cancelled_at.elapsed();
    eprintln!("cancel -> returned: {took:?}");
    // The 60 s command is gone long before it would end; the latency itself is a bench figure.
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Under bubblewrap the command runs in its own session and PID namespace: it dies when
    // bwrap's namespace init does (`--die-with-parent`), which can take a moment on a
    // loaded machine.
    assert_no_process_mentions(needle, Duration::from_secs(5)).await;

    // Kill: port closed, nothing left, dir gone; idempotent; later calls say Gone.
    let t = Instant::now();
    sb.kill().await.unwrap();
    eprintln!("kill: {:?}", t.elapsed());
    assert!(port_closed(port));
    assert_no_process_mentions(&dir_s, Duration::from_secs(2)).await;
    assert!(!dir.exists());
    assert!(!dir.with_extension("lock").exists(), "its lock file stays");
    sb.kill().await.unwrap();
    assert!(!sb.healthy().await);
    assert!(matches!(
        sb.write_files(&[app_file("x")]).await,
        Err(SandboxError::Gone { .. })
    ));
    eprintln!("end to end: {:?}", t0.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolation_none_and_a_dropped_sandbox_leaves_nothing() {
    if !real_npm_runs() {
        return;
    }
    let other = new_sandbox(Isolation::None, "other").await;
    let (sb, install_lines) = installed(Isolation::None, "plain", &app_with("PLAIN")).await;
    assert!(!install_lines.is_empty());
    assert_eq!(sb.info().isolation, "none");
    assert_eq!(sb.isolation_note(), None);
    assert_ne!(port_of(&sb), port_of(&other), "two sandboxes share a port");
    other.kill().await.unwrap();

    let dir = sb.dir().to_path_buf();
    let dir_s = dir.to_string_lossy().into_owned();
    let (sink, _) = collecting_sink();
    sb.start_dev_server(sink).await.unwrap();
    let port = port_of(&sb);
    wait_ready(&sb, Duration::from_secs(60), &CancellationToken::new())
        .await
        .unwrap();
    let (status, body) = http_get(port, "/src/App.jsx").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("PLAIN"));

    // Restarting replaces the old server (same port, so the old one must be gone first).
    let (sink, lines) = collecting_sink();
    sb.start_dev_server(sink).await.unwrap();
    wait_ready(&sb, Duration::from_secs(60), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(port_of(&sb), port);
    assert!(texts(&lines).iter().all(|l| !l.contains("already in use")));

    // Drop only sends SIGKILL (it cannot wait): the port closes as soon as Vite is gone.
    drop(sb);
    assert!(
        eventually(Duration::from_secs(2), || port_closed(port)).await,
        "Vite outlived its dropped sandbox"
    );
    assert_no_process_mentions(&dir_s, Duration::from_secs(2)).await;
    assert!(eventually(Duration::from_secs(5), || !dir.exists()).await);
    assert!(
        eventually(Duration::from_secs(5), || !dir
            .with_extension("lock")
            .exists())
        .await,
        "its lock file stays"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_server_dies_with_a_sigkilled_server() {
    if let Some(cache) = std::env::var_os(CHILD_ENV) {
        // Child role: a "server" that starts a dev server, says where, and waits to be killed.
        assert!(Path::new(&cache).is_dir());
        let iso = std::env::var(ISOLATION_ENV).unwrap_or_default();
        let iso = Isolation::parse(&iso).unwrap();
        let (sb, _) = installed(iso, "orphan", &app_with("ORPHAN")).await;
        sb.start_dev_server(collecting_sink().0).await.unwrap();
        wait_ready(&sb, Duration::from_secs(60), &CancellationToken::new())
            .await
            .unwrap();
        println!("READY {} {}", port_of(&sb), sb.dir().display());
        std::io::stdout().flush().unwrap();
        tokio::time::sleep(Duration::from_secs(120)).await;
        return;
    }
    if !registry_reachable() {
        return;
    }
    let cache = base_dir().parent().unwrap().to_path_buf();
    let spawn_child = |iso: &str| {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "dev_server_dies_with_a_sigkilled_server",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &cache)
            .env(ISOLATION_ENV, iso)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let ready = tokio::task::spawn_blocking(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .find_map(|l| l.split_once("READY ").map(|(_, r)| r.to_string()))
        });
        (child, ready)
    };
    // Without a jail the kernel's death signal stops Vite; with bwrap, bwrap's does.
    let children = [spawn_child("none"), spawn_child("auto")];
    for (mut child, ready) in children {
        let ready = tokio::time::timeout(Duration::from_secs(60), ready)
            .await
            .unwrap()
            .unwrap()
            .expect("the child never got its dev server up");
        let (port, dir) = ready.split_once(' ').unwrap();
        let port: u16 = port.parse().unwrap();
        assert!(http_get(port, "/").is_some_and(|(s, _)| s == 200));
        assert!(!procs_mentioning(dir).is_empty());

        // SIGKILL: no Drop, no kill(): nothing of ours runs any more.
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            eventually(Duration::from_secs(5), || port_closed(port)).await,
            "Vite outlived its server"
        );
        assert_no_process_mentions(dir, Duration::from_secs(5)).await;
        // Its dir is left behind (nothing ran to remove it) until the next sandbox is made.
        assert!(Path::new(dir).is_dir());
        let next = new_sandbox(Isolation::None, "after-orphan").await;
        assert!(
            eventually(Duration::from_secs(10), || !Path::new(dir).exists()).await,
            "the orphaned sandbox dir {dir} was not swept"
        );
        // The sweep removes the dir, then its lock file.
        let lock = Path::new(dir).with_extension("lock");
        assert!(
            eventually(Duration::from_secs(5), || !lock.exists()).await,
            "{lock:?}"
        );
        assert!(next.dir().is_dir(), "the new sandbox survived the sweep");
        next.kill().await.unwrap();
    }
}

/// A cancel may land at any moment of a command's start, including while bwrap is still
/// setting up its namespace: nothing of the command may survive it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_at_any_moment_of_startup_leaves_nothing_running() {
    for iso in [Isolation::None, Isolation::Auto] {
        let sb = new_sandbox(iso, "cancel-race").await;
        for i in 0..24u64 {
            let needle = format!(
                "/*{}*/setTimeout(()=>{{}},{})",
                std::process::id(),
                70_000 + i
            );
            let cancel = CancellationToken::new();
            let c = cancel.clone();
            // 0, 1, 2 … 11 ms after the command starts, twice over.
            let delay = Duration::from_millis(i % 12);
            let fire = tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                c.cancel();
            });
            let r = sb
                .run(
                    &CommandSpec::new("node", ["-e", needle.as_str()]),
                    collecting_sink().0,
                    cancel,
                )
                .await;
            fire.await.unwrap();
            assert!(matches!(r, Err(SandboxError::Cancelled)), "{r:?}");
            assert!(
                eventually(Duration::from_secs(5), || procs_mentioning(&needle)
                    .is_empty())
                .await,
                "{:?} after a cancel {delay:?} in ({iso:?}): {:?}",
                sb.info().isolation,
                procs_mentioning(&needle)
            );
        }
        sb.kill().await.unwrap();
    }
}
