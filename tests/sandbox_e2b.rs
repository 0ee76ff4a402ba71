//! The E2B provider against its loopback fake (`fakes/e2b.rs`), over real sockets: control
//! plane and envd requests, Connect streams (split, batched, broken), retries, expiry,
//! cancellation.

mod fakes;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use builder_lsp::sandbox::e2b::{self, E2bConfig, E2bSandbox};
use builder_lsp::sandbox::session;
use builder_lsp::sandbox::{
    no_lines, CommandSpec, LineSink, OutputStream, ProviderKind, Sandbox, SandboxError, SandboxFile,
};
use fakes::e2b::{FakeE2b, FakeReply, StreamFault, FAKE_DOMAIN, FAKE_KEY};
use tokio_util::sync::CancellationToken;

type Lines = Arc<Mutex<Vec<(OutputStream, String)>>>;

fn sink() -> (LineSink, Lines) {
    let lines: Lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    (
        Arc::new(move |s, l: &str| l2.lock().unwrap().push((s, l.to_string()))),
        lines,
    )
}

fn texts(lines: &Lines, stream: OutputStream) -> Vec<String> {
    lines
        .lock()
        .unwrap()
        .iter()
        .filter(|(s, _)| *s == stream)
        .map(|(_, l)| l.clone())
        .collect()
}

/// Fails the test instead of hanging.
async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {secs} s"))
}

async fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts the dev server with a fresh sink; the lines it prints.
async fn start_dev(sb: &E2bSandbox, what: &str) -> Lines {
    let (s, lines) = sink();
    within(10, what, sb.start_dev_server(s)).await.unwrap();
    lines
}

/// Waits (5 s at most) until a line on `stream` satisfies `pred`.
async fn wait_line(lines: &Lines, stream: OutputStream, what: &str, pred: impl Fn(&str) -> bool) {
    wait_for(5, what, || texts(lines, stream).iter().any(|l| pred(l))).await;
}

/// Waits until the fake has seen a `Connect` (the client reattaching to a process).
async fn wait_connect(fake: &FakeE2b) {
    wait_for(5, "a Connect", || {
        !fake
            .requests_to("POST", "/process.Process/Connect")
            .is_empty()
    })
    .await;
}

/// `create` with `cfg` must fail (`why` names the expected failure).
async fn create_fails(cfg: E2bConfig, why: &str) -> SandboxError {
    within(10, "create", e2b::create(reqwest::Client::new(), cfg))
        .await
        .err()
        .expect(why)
}

/// A fresh fake and a sandbox created on it.
async fn fake_and_sandbox() -> (FakeE2b, E2bSandbox) {
    let fake = FakeE2b::start();
    let sb = create(&fake).await;
    (fake, sb)
}

/// A fake whose next creates answer `replies`, in order.
fn failing_creates(replies: Vec<FakeReply>) -> FakeE2b {
    let fake = FakeE2b::start();
    fake.fail_creates(replies);
    fake
}

/// Creates a sandbox, which must take `attempts` create requests and be live; how long it took.
async fn created_after_attempts(fake: &FakeE2b, attempts: usize) -> Duration {
    let t = Instant::now();
    let sb = create(fake).await;
    let took = t.elapsed();
    assert_eq!(fake.requests_to("POST", "/sandboxes").len(), attempts);
    assert!(fake.is_live(sb.id()));
    took
}

async fn create(fake: &FakeE2b) -> E2bSandbox {
    within(
        10,
        "create",
        e2b::create(reqwest::Client::new(), fake.config()),
    )
    .await
    .expect("create")
}

fn file(path: &str, text: &str) -> SandboxFile {
    SandboxFile {
        path: path.into(),
        bytes: text.as_bytes().to_vec(),
    }
}

fn cmd(program: &str, args: &[&str]) -> CommandSpec {
    CommandSpec::new(program, args.iter().copied())
}

async fn run(
    sb: &E2bSandbox,
    c: CommandSpec,
) -> (
    Result<builder_lsp::sandbox::CommandOutput, SandboxError>,
    Lines,
) {
    let (s, lines) = sink();
    let r = within(10, "run", sb.run(&c, s, CancellationToken::new())).await;
    (r, lines)
}

const APP: &str = "export default function App() {\n  return <h1>héllo</h1>\n}\n";

#[tokio::test]
async fn full_lifecycle_against_the_fake() {
    let (fake, sb) = fake_and_sandbox().await;
    let id = sb.info().sandbox_id.clone();

    // Create: what was sent, what the handle says.
    let info = sb.info();
    assert_eq!(info.provider, ProviderKind::E2b);
    assert_eq!(info.isolation, "vm");
    assert_eq!(sb.project_dir(), "/home/user/app");
    assert_eq!(info.url, format!("https://5173-{id}.{FAKE_DOMAIN}"));
    assert!(chrono::DateTime::parse_from_rfc3339(&info.created_at).is_ok());
    let creates = fake.requests_to("POST", "/sandboxes");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].header("x-api-key"), Some(FAKE_KEY));
    let body = creates[0].json();
    assert_eq!(body["templateID"], "base");
    assert_eq!(body["timeout"], 900);
    assert_eq!(body["secure"], true);
    assert!(
        fake.is_dir(&id, "/home/user/app"),
        "project dir made at create"
    );

    // Files.
    let files = vec![
        file("package.json", r#"{"name":"app","scripts":{"dev":"vite"}}"#),
        file("src/App.jsx", APP),
        file(
            "src/components/deep/Hero.jsx",
            "export const Hero = () => null\n",
        ),
        file("src/empty.css", ""),
        file("node_modules/left-pad/index.js", "module.exports = 1\n"),
        file("dist/assets/index.js", "built\n"),
        file(".git/HEAD", "ref: refs/heads/main\n"),
    ];
    within(10, "write", sb.write_files(&files)).await.unwrap();
    assert_eq!(
        fake.file(&id, "/home/user/app/src/App.jsx").as_deref(),
        Some(APP.as_bytes())
    );
    for f in &files {
        let got = sb.read_file(&f.path).await.unwrap();
        assert_eq!(got.as_deref(), Some(f.bytes.as_slice()), "{}", f.path);
    }
    assert_eq!(sb.read_file("src/missing.js").await.unwrap(), None);
    let uploads = fake.requests_to("POST", "/files");
    assert_eq!(uploads.len(), files.len());
    assert!(uploads
        .iter()
        .all(|r| r.query("username").as_deref() == Some("user")
            && r.header("content-type")
                .unwrap_or("")
                .starts_with("multipart/form-data")));

    assert_eq!(
        sb.list_files().await.unwrap(),
        [
            "package.json",
            "src/App.jsx",
            "src/components/deep/Hero.jsx",
            "src/empty.css"
        ]
    );

    // Commands: stdout lines in order, exit codes, stderr, env.
    let (r, lines) = run(&sb, cmd("cat", &["src/App.jsx"])).await;
    let out = r.unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout, APP);
    assert_eq!(
        texts(&lines, OutputStream::Stdout),
        APP.lines().collect::<Vec<_>>()
    );

    let (r, _) = run(&sb, cmd("ls", &["src"])).await;
    assert_eq!(r.unwrap().stdout, "App.jsx\ncomponents\nempty.css\n");

    let (r, lines) = run(
        &sb,
        cmd(
            "sh",
            &["-c", "echo building; echo 'error: boom' >&2; exit 3"],
        ),
    )
    .await;
    let out = r.unwrap();
    assert_eq!(out.exit_code, 3);
    assert_eq!(out.stdout, "building\n");
    assert_eq!(out.stderr, "error: boom\n");
    assert_eq!(
        *lines.lock().unwrap(),
        [
            (OutputStream::Stdout, "building".to_string()),
            (OutputStream::Stderr, "error: boom".to_string())
        ]
    );

    let (r, lines) = run(&sb, cmd("cat", &["nope.txt"])).await;
    let out = r.unwrap();
    assert_eq!(out.exit_code, 1);
    assert_eq!(
        texts(&lines, OutputStream::Stderr),
        ["cat: nope.txt: No such file or directory"]
    );

    let mut with_env = cmd("env", &[]);
    with_env.env.insert("GREETING".into(), "hi there".into());
    let (r, _) = run(&sb, with_env).await;
    assert!(r.unwrap().stdout.contains("GREETING=hi there\n"));

    let (r, lines) = run(&sb, cmd("npm", &["install"])).await;
    assert_eq!(r.unwrap().exit_code, 0);
    assert_eq!(
        texts(&lines, OutputStream::Stdout),
        [
            "",
            "added 3 packages, and audited 4 packages in 2s",
            "",
            "1 package is looking for funding",
            "  run `npm fund` for details",
            "",
            "found 0 vulnerabilities"
        ]
    );
    assert_eq!(
        texts(&lines, OutputStream::Stderr),
        ["npm warn deprecated inflight@1.0.6: This module is not supported"]
    );

    // Dev server: starts, reports, answers; a restart replaces it.
    assert!(!sb.healthy().await, "nothing listens yet");
    let dev_lines = start_dev(&sb, "start dev").await;
    wait_line(&dev_lines, OutputStream::Stdout, "the Vite banner", |l| {
        l == "  ➜  Network: http://169.254.0.21:5173/"
    })
    .await;
    assert!(texts(&dev_lines, OutputStream::Stdout)
        .contains(&"  VITE v5.4.10  ready in 312 ms".to_string()));
    assert!(within(10, "healthy", sb.healthy()).await);
    let first_pid = fake.dev_server_pid(&id).expect("vite listens");

    let dev_lines2 = start_dev(&sb, "restart dev").await;
    let ready = |l: &str| l.contains("ready in");
    wait_line(
        &dev_lines2,
        OutputStream::Stdout,
        "the second banner",
        ready,
    )
    .await;
    assert!(
        texts(&dev_lines2, OutputStream::Stderr).is_empty(),
        "{:?}",
        dev_lines2
    );
    assert!(fake.group_kills().contains(&(id.clone(), first_pid)));
    assert!(fake.signals().contains(&(id.clone(), first_pid)));
    let second_pid = fake.dev_server_pid(&id).expect("the new vite listens");
    assert_ne!(second_pid, first_pid);
    let vites: Vec<_> = fake
        .running(&id)
        .into_iter()
        .filter(|(_, l)| l.contains("node_modules/.bin/vite"))
        .collect();
    assert_eq!(vites.len(), 1, "{vites:?}");
    assert!(sb.healthy().await);

    within(10, "keep alive", sb.keep_alive()).await.unwrap();
    let ka = fake.requests_to("POST", &format!("/sandboxes/{id}/timeout"));
    assert_eq!(ka.len(), 1);
    assert_eq!(ka[0].json()["timeout"], 900);
    assert_eq!(ka[0].header("x-api-key"), Some(FAKE_KEY));

    // Every envd request: routed and authenticated as the SDK does; never the API key.
    let token = fake.token(&id).unwrap();
    let envd: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.side == "envd")
        .collect();
    assert!(envd.len() > 10);
    for r in &envd {
        assert_eq!(r.header("e2b-sandbox-id"), Some(id.as_str()), "{}", r.path);
        assert_eq!(r.header("e2b-sandbox-port"), Some("49983"));
        assert_eq!(r.header("x-access-token"), Some(token.as_str()));
        assert_eq!(
            r.header("x-api-key"),
            None,
            "the API key stays with the control plane"
        );
        if r.route().starts_with("/process.") || r.route().starts_with("/filesystem.") {
            assert_eq!(r.header("connect-protocol-version"), Some("1"));
        }
    }
    let starts = fake.requests_to("POST", "/process.Process/Start");
    for r in &starts {
        assert_eq!(r.header("content-type"), Some("application/connect+json"));
        assert_eq!(r.body[0], 0, "uncompressed request envelope");
        let m = r.envelope_json();
        assert_eq!(m["process"]["cmd"], "/bin/bash");
        assert_eq!(m["process"]["args"][0], "-l");
        assert_eq!(m["process"]["args"][1], "-c");
        assert_eq!(m["process"]["cwd"], "/home/user/app");
    }
    let env_start = starts
        .iter()
        .find(|r| r.envelope_json()["process"]["envs"]["GREETING"] == "hi there");
    assert!(env_start.is_some(), "env travels in `envs`");

    let (batched, split) = fake.stream_write_stats();
    assert!(
        batched > 0 && split > 0,
        "streams were batched ({batched}) and split ({split})"
    );

    // Kill: once on the wire, idempotent, and everything after is Gone.
    within(10, "kill", sb.kill()).await.unwrap();
    assert!(!fake.is_live(&id));
    within(10, "kill again", sb.kill()).await.unwrap();
    assert_eq!(
        fake.requests_to("DELETE", &format!("/sandboxes/{id}"))
            .len(),
        1
    );
    let gone = |e: SandboxError| matches!(e, SandboxError::Gone { id: ref g, .. } if *g == id);
    assert!(gone(sb.read_file("src/App.jsx").await.unwrap_err()));
    assert!(gone(sb.write_files(&files[..1]).await.unwrap_err()));
    assert!(gone(sb.list_files().await.unwrap_err()));
    assert!(gone(run(&sb, cmd("ls", &[])).await.0.unwrap_err()));
    assert!(gone(sb.keep_alive().await.unwrap_err()));
    assert!(gone(sb.start_dev_server(no_lines()).await.unwrap_err()));
    assert!(!sb.healthy().await);
}

#[test]
fn missing_key_names_the_variable_and_where_to_get_one() {
    let fake = FakeE2b::start();
    let env = fake.env(None);
    let err = E2bConfig::from_env(&|k: &str| env.get(k).cloned()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, SandboxError::Config(_)));
    assert!(msg.contains("E2B_API_KEY"), "{msg}");
    assert!(msg.contains("https://e2b.dev/dashboard"), "{msg}");
}

#[tokio::test]
async fn a_rejected_key_is_an_auth_error_that_does_not_show_the_key() {
    let fake = FakeE2b::start();
    let key = "e2b_d0d0d0d0d0d0d0d0wrongkey";
    let err = create_fails(fake.config_with_key(key), "a bad key fails").await;
    assert!(
        matches!(
            err,
            SandboxError::Auth {
                provider: "E2B",
                var: "E2B_API_KEY",
                status: 401
            }
        ),
        "{err:?}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(key) && !shown.contains("wrongkey"),
        "{shown}"
    );
    assert_eq!(
        fake.requests_to("POST", "/sandboxes").len(),
        1,
        "401 is not retried"
    );
    assert!(!format!("{:?}", fake.config_with_key(key)).contains("wrongkey"));
}

#[tokio::test]
async fn create_waits_out_a_short_retry_after() {
    let fake = failing_creates(vec![
        FakeReply::error(429, "Too many requests").retry_after("1")
    ]);
    let took = created_after_attempts(&fake, 2).await;
    assert!(took >= Duration::from_millis(950), "{took:?}");
}

#[tokio::test]
async fn create_retries_server_errors_then_succeeds() {
    let fake = failing_creates(vec![
        FakeReply::error(500, "internal error"),
        FakeReply::error(502, "bad gateway"),
    ]);
    let took = created_after_attempts(&fake, 3).await;
    assert!(took < Duration::from_secs(10), "short backoff: {took:?}");
}

#[tokio::test]
async fn create_gives_up_after_three_attempts() {
    let fake = failing_creates(vec![
        FakeReply::error(503, "sandbox capacity unavailable"),
        FakeReply::error(503, "sandbox capacity unavailable"),
        FakeReply::error(503, "sandbox capacity unavailable"),
    ]);
    let err = create_fails(fake.config(), "503s fail").await;
    assert!(
        matches!(err, SandboxError::Api { status: 503, ref message, .. } if message == "sandbox capacity unavailable"),
        "{err:?}"
    );
    assert_eq!(fake.requests_to("POST", "/sandboxes").len(), 3);
    assert!(fake.sandbox_ids().is_empty());
}

#[tokio::test]
async fn create_reports_a_long_retry_after_instead_of_waiting() {
    let fake = failing_creates(vec![
        FakeReply::error(429, "Too many requests").retry_after("120")
    ]);
    let t = Instant::now();
    let err = create_fails(fake.config(), "rate limited").await;
    assert!(
        matches!(
            err,
            SandboxError::RateLimited {
                retry_after_secs: Some(120),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(fake.requests_to("POST", "/sandboxes").len(), 1);
}

#[tokio::test]
async fn an_unknown_template_names_the_setting() {
    let fake = FakeE2b::start();
    fake.only_templates(&["base"]);
    let mut cfg = fake.config();
    cfg.template = "react-vite-prebuilt".into();
    let err = create_fails(cfg, "unknown template").await;
    let msg = err.to_string();
    assert!(matches!(err, SandboxError::Config(_)), "{err:?}");
    assert!(
        msg.contains("E2B_TEMPLATE") && msg.contains("react-vite-prebuilt"),
        "{msg}"
    );
    assert_eq!(
        fake.requests_to("POST", "/sandboxes").len(),
        1,
        "not retried"
    );
}

#[tokio::test]
async fn create_deletes_the_sandbox_when_envd_is_unreachable() {
    let fake = FakeE2b::start();
    fake.set_envd_down(true);
    let err = create_fails(fake.config(), "envd down").await;
    assert!(matches!(err, SandboxError::Gone { .. }), "{err:?}");
    let ids = fake.sandbox_ids();
    assert_eq!(ids.len(), 1);
    assert_eq!(
        fake.requests_to("DELETE", &format!("/sandboxes/{}", ids[0]))
            .len(),
        1
    );
    assert!(!fake.is_live(&ids[0]));
}

#[tokio::test]
async fn an_expired_sandbox_is_gone_and_its_streams_end() {
    let fake = FakeE2b::start();
    fake.set_ttl(Some(Duration::from_millis(700)));
    let sb = Arc::new(create(&fake).await);
    sb.write_files(&[file("a.txt", "a")]).await.unwrap();
    let long = {
        let sb = sb.clone();
        tokio::spawn(async move {
            sb.run(&cmd("sleep", &["30"]), no_lines(), CancellationToken::new())
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(900)).await;
    let err = within(5, "the cut stream", long)
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, SandboxError::Network { .. }), "{err:?}");
    for err in [
        sb.read_file("a.txt").await.unwrap_err(),
        run(&sb, cmd("ls", &[])).await.0.unwrap_err(),
        sb.keep_alive().await.unwrap_err(),
    ] {
        assert!(matches!(err, SandboxError::Gone { .. }), "{err:?}");
    }
    assert!(!sb.healthy().await);
}

#[tokio::test]
async fn broken_streams_are_clear_errors_not_hangs() {
    let (fake, sb) = fake_and_sandbox().await;
    let id = sb.id().to_string();
    sb.write_files(&[file("package.json", "{}")]).await.unwrap();
    type Check = fn(&SandboxError) -> bool;
    let cases: Vec<(StreamFault, Check)> = vec![
        (
            StreamFault::EndStreamError {
                code: "internal".into(),
                message: "envd exploded".into(),
            },
            |e| matches!(e, SandboxError::Api { status: 500, message, .. } if message.contains("envd exploded")),
        ),
        (
            StreamFault::EndStreamError {
                code: "unavailable".into(),
                message: "sandbox stopped".into(),
            },
            |e| matches!(e, SandboxError::Gone { .. }),
        ),
        (StreamFault::CutBeforeEnd, |e| {
            matches!(e, SandboxError::Network { .. })
        }),
        (
            StreamFault::EofWithoutEndStream,
            |e| matches!(e, SandboxError::Network { message, .. } if message.contains("end-of-stream")),
        ),
        (StreamFault::Http502, |e| {
            matches!(e, SandboxError::Gone { .. })
        }),
        (
            StreamFault::Compressed,
            |e| matches!(e, SandboxError::Protocol { message, .. } if message.contains("compressed")),
        ),
    ];
    for (fault, expected) in cases {
        let what = format!("{fault:?}");
        fake.fail_next_stream(fault);
        let (r, _) = run(&sb, cmd("npm", &["install"])).await;
        let err = r.expect_err(&what);
        assert!(expected(&err), "{what}: {err:?}");
        // The sandbox stays usable.
        let (r, lines) = run(&sb, cmd("echo", &["still", "here"])).await;
        assert_eq!(r.unwrap().exit_code, 0, "{what}");
        assert_eq!(texts(&lines, OutputStream::Stdout), ["still here"]);
        assert!(
            !fake.running(&id).iter().any(|(_, l)| l.contains("npm")),
            "{what}"
        );
    }
}

#[tokio::test]
async fn cancelling_a_run_kills_its_process_group_promptly() {
    let (fake, sb) = fake_and_sandbox().await;
    let id = sb.id().to_string();
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    let t = Instant::now();
    let r = within(
        5,
        "cancelled run",
        sb.run(&cmd("sleep", &["30"]), no_lines(), cancel),
    )
    .await;
    assert!(matches!(r, Err(SandboxError::Cancelled)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let sleep_pid = fake
        .started()
        .iter()
        .position(|(_, l)| l.contains("sleep 30"))
        .map(|i| 341 + i as u32)
        .expect("sleep started");
    assert!(fake.group_kills().contains(&(id.clone(), sleep_pid)));
    assert!(fake.signals().contains(&(id.clone(), sleep_pid)));
    assert!(fake.running(&id).is_empty(), "{:?}", fake.running(&id));

    // Already cancelled: nothing starts.
    let before = fake.started().len();
    let done = CancellationToken::new();
    done.cancel();
    let r = sb.run(&cmd("sleep", &["30"]), no_lines(), done).await;
    assert!(matches!(r, Err(SandboxError::Cancelled)));
    assert_eq!(fake.started().len(), before);
}

#[tokio::test]
async fn output_lines_arrive_while_the_command_runs() {
    let (_fake, sb) = fake_and_sandbox().await;
    let seen: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let s2 = seen.clone();
    let sink: LineSink =
        Arc::new(move |_, l: &str| s2.lock().unwrap().push((l.to_string(), Instant::now())));
    let out = within(
        10,
        "run",
        sb.run(
            &cmd("sh", &["-c", "echo one; sleep 0.6; echo two"]),
            sink,
            CancellationToken::new(),
        ),
    )
    .await
    .unwrap();
    let finished = Instant::now();
    assert_eq!(out.stdout, "one\ntwo\n");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>(),
        ["one", "two"]
    );
    assert!(
        finished - seen[0].1 >= Duration::from_millis(400),
        "the first line came only at the end"
    );
}

#[tokio::test]
async fn a_full_disk_is_an_api_error() {
    let (fake, sb) = fake_and_sandbox().await;
    fake.fail_next_upload(507);
    let err = sb.write_files(&[file("big.bin", "x")]).await.unwrap_err();
    assert!(
        matches!(err, SandboxError::Api { status: 507, ref message, .. } if message == "not enough disk space"),
        "{err:?}"
    );
}

#[tokio::test]
async fn paths_outside_the_project_are_refused_before_any_request() {
    let (fake, sb) = fake_and_sandbox().await;
    let before = fake.requests().len();
    for bad in ["../etc/passwd", "/etc/passwd", "src/../../x"] {
        assert!(
            matches!(sb.read_file(bad).await, Err(SandboxError::Io(_))),
            "{bad}"
        );
        assert!(matches!(
            sb.write_files(&[file(bad, "x")]).await,
            Err(SandboxError::Io(_))
        ));
    }
    assert_eq!(fake.requests().len(), before);
}

#[tokio::test]
async fn a_wrong_envd_token_is_an_auth_error() {
    let (fake, sb) = fake_and_sandbox().await;
    fake.rotate_token(sb.id());
    for err in [
        sb.read_file("a.txt").await.unwrap_err(),
        run(&sb, cmd("ls", &[])).await.0.unwrap_err(),
    ] {
        assert!(
            matches!(err, SandboxError::Auth { status: 401, .. }),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_dev_server_without_dependencies_says_why() {
    let (fake, sb) = fake_and_sandbox().await;
    let lines = start_dev(&sb, "start dev").await;
    let why = |l: &str| l.contains("run npm install first");
    wait_line(&lines, OutputStream::Stderr, "the explanation", why).await;
    assert!(!sb.healthy().await);
    assert_eq!(fake.dev_server_pid(sb.id()), None);
}

/// The fake takes both upload forms envd does (the client uses multipart with `path`).
#[tokio::test]
async fn the_fake_accepts_octet_stream_and_multi_part_uploads() {
    let (fake, sb) = fake_and_sandbox().await;
    let id = sb.id().to_string();
    let token = fake.token(&id).unwrap();
    let http = reqwest::Client::new();
    let headers = |rb: reqwest::RequestBuilder| {
        rb.header("x-access-token", &token)
            .header("e2b-sandbox-id", &id)
            .header("e2b-sandbox-port", "49983")
    };
    let r = headers(http.post(format!("{}/files", fake.envd_url())))
        .query(&[("path", "app/raw.txt"), ("username", "user")])
        .header("content-type", "application/octet-stream")
        .body("raw bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        fake.file(&id, "/home/user/app/raw.txt").as_deref(),
        Some(&b"raw bytes"[..])
    );

    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/app/a/one.txt\"\r\n\r\n1\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app/b/two.txt\"\r\n\r\n22\r\n--XyZ--\r\n";
    let r = headers(http.post(format!("{}/files", fake.envd_url())))
        .query(&[("username", "user")])
        .header("content-type", "multipart/form-data; boundary=XyZ")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let entries: serde_json::Value = r.json().await.unwrap();
    assert_eq!(entries.as_array().map(Vec::len), Some(2));
    assert_eq!(
        sb.read_file("a/one.txt").await.unwrap().as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        sb.read_file("b/two.txt").await.unwrap().as_deref(),
        Some(&b"22"[..])
    );
    assert!(fake.is_dir(&id, "/home/user/app/b"), "parents auto-created");

    // Unknown sandbox ids get the edge's 502.
    let r = http
        .get(format!("{}/files?path=x&username=user", fake.envd_url()))
        .header("e2b-sandbox-id", "nope")
        .header("e2b-sandbox-port", "49983")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
}

#[tokio::test]
async fn the_keep_alive_loop_outlives_the_timeout_and_ends_when_the_sandbox_expires() {
    let fake = FakeE2b::start();
    // The fake honours the timeout: a sandbox not kept alive is gone 1 s after its last reset.
    fake.set_ttl(Some(Duration::from_secs(1)));
    let sb = create(&fake).await;
    let id = sb.id().to_string();
    let sb: Arc<dyn Sandbox> = Arc::new(sb);
    let stop = CancellationToken::new();
    let looping = session::spawn_keep_alive(sb.clone(), Duration::from_millis(100), stop.clone());
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(fake.is_live(&id), "expired although kept alive");
    stop.cancel();
    let kept = within(5, "the stopped loop", looping).await.unwrap();
    assert!(kept >= 5, "{kept} keep-alives");
    let resets = fake.requests_to("POST", &format!("/sandboxes/{id}/timeout"));
    assert_eq!(resets.len(), kept);
    assert!(resets.iter().all(|r| r.json()["timeout"] == 900));

    // Left alone it expires, and a loop started now ends by itself on the first Gone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!fake.is_live(&id), "the fake's timeout is not real");
    let looping =
        session::spawn_keep_alive(sb, Duration::from_millis(50), CancellationToken::new());
    assert_eq!(
        within(5, "a loop on an expired sandbox", looping)
            .await
            .unwrap(),
        0
    );
}

/// The app and its dependencies in a fresh sandbox, ready for `start_dev_server`.
async fn installed(fake: &FakeE2b) -> E2bSandbox {
    let sb = create(fake).await;
    let files = [
        file(
            "package.json",
            r#"{"name":"app","devDependencies":{"vite":"^5"}}"#,
        ),
        file("src/App.jsx", APP),
    ];
    within(10, "write", sb.write_files(&files)).await.unwrap();
    let (r, _) = run(&sb, cmd("npm", &["install"])).await;
    assert_eq!(r.unwrap().exit_code, 0);
    sb
}

/// A fake, an [`installed`] sandbox on it (and its id), and the next process stream set to drop.
async fn installed_with_a_stream_to_drop() -> (FakeE2b, E2bSandbox, String) {
    let fake = FakeE2b::start();
    let sb = installed(&fake).await;
    let id = sb.id().to_string();
    fake.fail_next_stream(StreamFault::Dropped);
    (fake, sb, id)
}

#[tokio::test]
async fn a_cut_dev_server_stream_is_reattached_and_its_output_keeps_coming() {
    // The stream drops after its first events; Vite itself runs on.
    let (fake, sb, id) = installed_with_a_stream_to_drop().await;
    let lines = start_dev(&sb, "start dev").await;
    let pid = fake.dev_server_pid(&id).expect("vite listens");
    wait_connect(&fake).await;
    let connect = fake.requests_to("POST", "/process.Process/Connect");
    assert_eq!(connect.len(), 1);
    assert_eq!(
        connect[0].envelope_json(),
        serde_json::json!({"process": {"pid": pid}})
    );
    assert_eq!(
        connect[0].header("content-type"),
        Some("application/connect+json")
    );
    assert_eq!(connect[0].header("connect-protocol-version"), Some("1"));
    assert!(connect[0].header("x-access-token").is_some());

    // What Vite says after the cut reaches the sink through the new stream.
    let error = "[vite] Internal server error: /home/user/app/src/App.jsx: Unexpected token (3:4)";
    wait_for(5, "the error line", || {
        fake.print_from(&id, pid, &format!("{error}\n"));
        texts(&lines, OutputStream::Stderr)
            .iter()
            .any(|l| l == error)
    })
    .await;
    assert!(within(10, "healthy", sb.healthy()).await);
    within(10, "kill", sb.kill()).await.unwrap();
}

#[tokio::test]
async fn a_dev_server_gone_during_the_cut_is_not_reattached_forever() {
    let (fake, sb, id) = installed_with_a_stream_to_drop().await;
    within(10, "start dev", sb.start_dev_server(no_lines()))
        .await
        .unwrap();
    let pid = fake.dev_server_pid(&id).expect("vite listens");
    assert!(fake.end_process(&id, pid));
    // One Connect answers not_found; the pump stops there.
    wait_connect(&fake).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        fake.requests_to("POST", "/process.Process/Connect").len(),
        1
    );
}
