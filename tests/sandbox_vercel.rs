//! The Vercel Sandbox provider end to end against `fakes::vercel` over real loopback sockets.

mod fakes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use builder_lsp::sandbox::session;
use builder_lsp::sandbox::vercel::{VercelConfig, VercelSandbox, DEFAULT_API_URL, KEEP_ALIVE_MS};
use builder_lsp::sandbox::{
    no_lines, CommandOutput, CommandSpec, LineSink, OutputStream, ProviderKind, Sandbox,
    SandboxError, SandboxFile,
};
use fakes::vercel::{error_body, FakeVercel, Inject, CWD, PROJECT_ID, TEAM_ID, TOKEN};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

type Lines = Arc<Mutex<Vec<(OutputStream, String)>>>;

fn config(env: &HashMap<String, String>) -> Result<VercelConfig, SandboxError> {
    VercelConfig::from_env(&|k| env.get(k).cloned())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A fresh fake and a sandbox created on it.
async fn fake_and_sandbox() -> (FakeVercel, VercelSandbox) {
    let fake = FakeVercel::start();
    let sb = create(&fake).await;
    (fake, sb)
}

/// `r` is Vercel's API error with `status` and a message holding `part`; the message.
fn api_error<T>(r: Result<T, SandboxError>, status: u16, part: &str) -> String {
    match r {
        Err(SandboxError::Api {
            provider,
            status: got,
            message,
        }) if got == status => {
            assert_eq!(provider, "Vercel");
            assert!(message.contains(part), "{message}");
            message
        }
        Err(e) => panic!("expected API error {status}, got {e:?}"),
        Ok(_) => panic!("expected API error {status}, got success"),
    }
}

/// Runs `spec` with its lines going nowhere.
async fn run_quiet(sb: &VercelSandbox, spec: CommandSpec) -> Result<CommandOutput, SandboxError> {
    sb.run(&spec, no_lines(), CancellationToken::new()).await
}

async fn create(fake: &FakeVercel) -> VercelSandbox {
    VercelSandbox::create(http(), config(&fake.env()).unwrap())
        .await
        .unwrap()
}

fn sink() -> (LineSink, Lines) {
    let lines: Lines = Arc::default();
    let l2 = lines.clone();
    let sink: LineSink = Arc::new(move |w, l: &str| l2.lock().unwrap().push((w, l.to_string())));
    (sink, lines)
}

fn file(path: &str, text: &str) -> SandboxFile {
    SandboxFile {
        path: path.into(),
        bytes: text.as_bytes().to_vec(),
    }
}

/// An unsigned JWT with these claims (the client never verifies signatures).
fn jwt(claims: Value) -> String {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    format!(
        "{}.{}.{}",
        b64(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64(claims.to_string().as_bytes()),
        b64(b"signature")
    )
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn eventually_healthy(sb: &VercelSandbox, want: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while sb.healthy().await != want {
        assert!(Instant::now() < deadline, "healthy() never became {want}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn is_gone(r: &Result<impl std::fmt::Debug, SandboxError>) -> bool {
    matches!(
        r,
        Err(SandboxError::Gone {
            provider: "Vercel",
            ..
        })
    )
}

// ---------------------------------------------------------------------------------------------
// Configuration.

#[test]
fn config_from_explicit_vars_hides_the_token() {
    let env = HashMap::from([
        ("VERCEL_TOKEN".to_string(), format!(" {TOKEN} ")),
        ("VERCEL_TEAM_ID".to_string(), TEAM_ID.to_string()),
        ("VERCEL_PROJECT_ID".to_string(), PROJECT_ID.to_string()),
    ]);
    let c = config(&env).unwrap();
    assert_eq!(c.api_url, DEFAULT_API_URL);
    assert_eq!(c.token, TOKEN, "trimmed");
    assert_eq!(c.token_var, "VERCEL_TOKEN");
    assert_eq!(
        (c.team_id.as_str(), c.project_id.as_str()),
        (TEAM_ID, PROJECT_ID)
    );
    assert_eq!((c.runtime.as_str(), c.vcpus), ("node22", 2));
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(TOKEN) && dbg.contains("***"), "{dbg}");
}

#[test]
fn config_names_exactly_the_missing_vars() {
    let only_token = HashMap::from([("VERCEL_TOKEN".to_string(), TOKEN.to_string())]);
    let Err(SandboxError::Config(m)) = config(&only_token) else {
        panic!("expected a config error")
    };
    assert!(
        m.contains("VERCEL_TEAM_ID and VERCEL_PROJECT_ID as well"),
        "{m}"
    );
    assert!(!m.contains(TOKEN), "{m}");

    let only_team = HashMap::from([
        ("VERCEL_TEAM_ID".to_string(), TEAM_ID.to_string()),
        ("VERCEL_PROJECT_ID".to_string(), " ".to_string()), // blank counts as unset
    ]);
    let Err(SandboxError::Config(m)) = config(&only_team) else {
        panic!("expected a config error")
    };
    assert!(
        m.contains("needs VERCEL_TOKEN and VERCEL_PROJECT_ID as well"),
        "{m}"
    );

    let Err(SandboxError::Config(m)) = config(&HashMap::new()) else {
        panic!("expected a config error")
    };
    for var in [
        "VERCEL_TOKEN",
        "VERCEL_TEAM_ID",
        "VERCEL_PROJECT_ID",
        "VERCEL_OIDC_TOKEN",
    ] {
        assert!(m.contains(var), "{m}");
    }
}

#[test]
fn config_from_oidc_claims() {
    let token = jwt(json!({"owner_id": "team_oidc", "project_id": "prj_oidc",
        "exp": chrono::Utc::now().timestamp() + 3600, "sub": "owner:x:project:y"}));
    let env = HashMap::from([
        ("VERCEL_OIDC_TOKEN".to_string(), token.clone()),
        ("VERCEL_TOKEN".to_string(), TOKEN.to_string()), // incomplete explicit set: OIDC wins
    ]);
    let c = config(&env).unwrap();
    assert_eq!(c.token, token);
    assert_eq!(c.token_var, "VERCEL_OIDC_TOKEN");
    assert_eq!(
        (c.team_id.as_str(), c.project_id.as_str()),
        ("team_oidc", "prj_oidc")
    );
    assert!(!format!("{c:?}").contains(&token));

    // A complete explicit set is preferred, as in the SDK.
    let mut all = env.clone();
    all.insert("VERCEL_TEAM_ID".into(), TEAM_ID.into());
    all.insert("VERCEL_PROJECT_ID".into(), PROJECT_ID.into());
    assert_eq!(config(&all).unwrap().token_var, "VERCEL_TOKEN");
}

#[test]
fn malformed_oidc_tokens_are_named_config_errors() {
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let cases = [
        "not-a-jwt".to_string(),
        "a.b".to_string(),
        "a.!!!.c".to_string(),
        format!("h.{}.s", b64("not json")),
        jwt(json!({"project_id": "prj"})),
        jwt(json!({"owner_id": "team"})),
        jwt(json!({"owner_id": "team", "project_id": "prj", "exp": 1_600_000_000})),
    ];
    for token in cases {
        let env = HashMap::from([("VERCEL_OIDC_TOKEN".to_string(), token.clone())]);
        match config(&env) {
            Err(SandboxError::Config(m)) => {
                assert!(m.contains("VERCEL_OIDC_TOKEN"), "{m}");
                assert!(!m.contains(&token), "the token leaked: {m}");
            }
            other => panic!("{token}: expected a config error, got {other:?}"),
        }
    }
}

#[test]
fn config_api_url_override_and_validation() {
    let fake_env = |url: &str| {
        HashMap::from([
            ("VERCEL_API_URL".to_string(), url.to_string()),
            ("VERCEL_TOKEN".to_string(), TOKEN.to_string()),
            ("VERCEL_TEAM_ID".to_string(), TEAM_ID.to_string()),
            ("VERCEL_PROJECT_ID".to_string(), PROJECT_ID.to_string()),
        ])
    };
    assert_eq!(
        config(&fake_env("http://127.0.0.1:9/api/"))
            .unwrap()
            .api_url,
        "http://127.0.0.1:9/api"
    );
    for bad in ["ftp://example.com", "not a url", "mailto:x@y.z"] {
        match config(&fake_env(bad)) {
            Err(SandboxError::Config(m)) => assert!(m.contains("VERCEL_API_URL"), "{m}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The whole life of a sandbox.

#[tokio::test]
async fn lifecycle_end_to_end() {
    let (fake, sb) = fake_and_sandbox().await;
    let info = sb.info();
    let id = info.sandbox_id.clone();
    assert!(id.starts_with("sbx_fake"), "{id}");
    assert_eq!(info.provider, ProviderKind::Vercel);
    assert_eq!(info.isolation, "vm");
    assert!(info.url.starts_with("http://127.0.0.1:"), "{}", info.url);
    assert!(chrono::DateTime::parse_from_rfc3339(&info.created_at).is_ok());
    assert_eq!(sb.project_dir(), CWD);

    let creates = fake.requests_to("POST", "/v1/sandboxes");
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].path, "/v1/sandboxes");
    assert_eq!(
        creates[0].json(),
        json!({"projectId": PROJECT_ID, "runtime": "node22", "ports": [5173],
               "timeout": 900_000, "resources": {"vcpus": 2}})
    );
    // Create answered `pending`; the client polled until a GET said `running`.
    let polls = fake.requests_to("GET", &format!("/v1/sandboxes/{id}"));
    assert_eq!(polls.len(), 2, "one pending poll, one running");
    assert_eq!(fake.status(&id).as_deref(), Some("running"));

    // Nothing listens on 5173 yet: the route answers 502.
    assert!(!sb.healthy().await);

    // Files: one gzip'd tar per call, extracted under x-cwd.
    let files = [
        file("package.json", r#"{"name":"app","private":true}"#),
        file("index.html", "<div id=root></div>"),
        file("src/App.jsx", "export default function App() {}"),
        file("./src/components/Hero.jsx", "export const Hero = 1;"),
    ];
    sb.write_files(&files).await.unwrap();
    let writes = fake.requests_to("POST", "/fs/write");
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].header("x-cwd"), Some(CWD));
    assert_eq!(writes[0].header("content-type"), Some("application/gzip"));
    let (bytes, mode) = fake
        .file(&id, "/vercel/sandbox/src/components/Hero.jsx")
        .expect("extracted");
    assert_eq!(
        (bytes.as_slice(), mode),
        (&b"export const Hero = 1;"[..], 0o644)
    );
    assert!(fake.has_dir(&id, "/vercel/sandbox/src/components"));
    sb.write_files(&[file("src/App.jsx", "v2")]).await.unwrap();
    assert_eq!(
        fake.file(&id, "/vercel/sandbox/src/App.jsx").unwrap().0,
        b"v2"
    );
    sb.write_files(&[]).await.unwrap();
    assert_eq!(
        fake.requests_to("POST", "/fs/write").len(),
        2,
        "empty write sends nothing"
    );

    assert_eq!(
        sb.read_file("src/App.jsx").await.unwrap(),
        Some(b"v2".to_vec())
    );
    assert_eq!(sb.read_file("src/missing.jsx").await.unwrap(), None);
    let read = fake.requests_to("POST", "/fs/read");
    assert_eq!(read[0].json(), json!({"path": "src/App.jsx", "cwd": CWD}));

    // A command whose output interleaves stdout and stderr, with a line cut across two `data`
    // values and that record cut across two writes.
    let (lines_sink, lines) = sink();
    let mut npm = CommandSpec::new("npm", ["install"]);
    npm.env.insert("CI".into(), "1".into());
    let out = sb
        .run(&npm, lines_sink, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(
        out.stdout,
        "\nadded 3 packages, and audited 4 packages in 2s\n\nfound 0 vulnerabilities\n"
    );
    assert!(
        out.stderr.starts_with("npm warn deprecated"),
        "{}",
        out.stderr
    );
    use OutputStream::{Stderr, Stdout};
    let expected = vec![
        (
            Stderr,
            "npm warn deprecated inflight@1.0.6: This module is not supported".to_string(),
        ),
        (Stdout, String::new()),
        (
            Stdout,
            "added 3 packages, and audited 4 packages in 2s".to_string(),
        ),
        (
            Stderr,
            "npm notice New minor version of npm available! 10.8.2 -> 10.9.0".to_string(),
        ),
        (Stdout, String::new()),
        (Stdout, "found 0 vulnerabilities".to_string()),
    ];
    assert_eq!(*lines.lock().unwrap(), expected);
    let cmd_req = fake.requests_to("POST", "/cmd").pop().unwrap();
    assert_eq!(
        cmd_req.json(),
        json!({"command": "npm", "args": ["install"], "cwd": CWD, "env": {"CI": "1"}, "wait": true})
    );

    // Listing skips node_modules (npm just made it), .git and dist.
    fake.put_file(&id, "/vercel/sandbox/.git/HEAD", b"ref: refs/heads/main");
    fake.put_file(&id, "/vercel/sandbox/dist/assets/index.js", b"");
    assert!(fake
        .file(&id, "/vercel/sandbox/node_modules/vite/package.json")
        .is_some());
    assert_eq!(
        sb.list_files().await.unwrap(),
        [
            "index.html",
            "package.json",
            "src/App.jsx",
            "src/components/Hero.jsx"
        ]
    );

    // Non-zero exits are results, not errors.
    let (err_sink, err_lines) = sink();
    let out = sb
        .run(
            &CommandSpec::new("cat", ["nope.txt"]),
            err_sink,
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, 1);
    assert_eq!(out.stderr, "cat: nope.txt: No such file or directory\n");
    assert_eq!(
        *err_lines.lock().unwrap(),
        [(
            Stderr,
            "cat: nope.txt: No such file or directory".to_string()
        )]
    );
    let out = run_quiet(&sb, CommandSpec::new("cat", ["package.json"]))
        .await
        .unwrap();
    assert_eq!(
        (out.exit_code, out.stdout.as_str()),
        (0, r#"{"name":"app","private":true}"#)
    );
    let out = run_quiet(&sb, CommandSpec::new("tsc", ["--noEmit"]))
        .await
        .unwrap();
    assert_eq!(out.exit_code, 127);

    // The dev server: started, its banner streamed to the sink, the route answers.
    let (dev_sink, dev_lines) = sink();
    sb.start_dev_server(dev_sink).await.unwrap();
    eventually("the Vite banner", || {
        dev_lines
            .lock()
            .unwrap()
            .iter()
            .any(|(w, l)| *w == Stdout && l.contains("ready in"))
    })
    .await;
    eventually_healthy(&sb, true).await;
    let vite = fake.commands(&id).pop().unwrap();
    assert_eq!(vite.name, "npx");
    assert_eq!(
        vite.args,
        [
            "vite",
            "--host",
            "0.0.0.0",
            "--port",
            "5173",
            "--strictPort",
            "--config",
            "node_modules/.builder/vite.config.mjs"
        ]
    );
    assert_eq!(vite.cwd, CWD);
    // The preview-error overlay was written before Vite started.
    let overlay = fake
        .file(&id, "/vercel/sandbox/node_modules/.builder/vite.config.mjs")
        .expect("overlay written")
        .0;
    assert_eq!(
        overlay,
        builder_lsp::sandbox::preview::OVERLAY_CONFIG.as_bytes()
    );

    // Restarting kills the old one first (v1 kill path) so --strictPort finds the port free.
    let (dev_sink2, dev_lines2) = sink();
    sb.start_dev_server(dev_sink2).await.unwrap();
    let kills = fake.requests_to("POST", "/kill");
    assert_eq!(kills.len(), 1);
    assert_eq!(
        kills[0].path,
        format!("/v1/sandboxes/{id}/{}/kill", vite.id)
    );
    assert_eq!(kills[0].json(), json!({"signal": 15}));
    let cmds = fake.commands(&id);
    let old = cmds.iter().find(|c| c.id == vite.id).unwrap();
    assert_eq!((old.exit_code, old.signal), (Some(143), Some(15)));
    eventually("the second Vite banner", || {
        dev_lines2
            .lock()
            .unwrap()
            .iter()
            .any(|(_, l)| l.contains("ready in"))
    })
    .await;
    assert!(
        !dev_lines2
            .lock()
            .unwrap()
            .iter()
            .any(|(_, l)| l.contains("already in use")),
        "{:?}",
        dev_lines2.lock().unwrap()
    );
    assert_eq!(cmds.last().unwrap().exit_code, None, "the new Vite runs");
    eventually_healthy(&sb, true).await;

    // Keep-alive extends the timeout.
    sb.keep_alive().await.unwrap();
    let ext = fake.requests_to("POST", "/extend-timeout");
    assert_eq!(ext[0].json(), json!({"duration": KEEP_ALIVE_MS}));
    assert_eq!(fake.timeout_ms(&id), Some(900_000 + KEEP_ALIVE_MS));

    // Kill stops the VM; it is idempotent and everything after it is Gone.
    sb.kill().await.unwrap();
    assert_eq!(fake.requests_to("POST", "/stop").len(), 1);
    assert!(matches!(
        fake.status(&id).as_deref(),
        Some("stopping" | "stopped")
    ));
    sb.kill().await.unwrap();
    assert_eq!(
        fake.requests_to("POST", "/stop").len(),
        1,
        "second kill is local"
    );
    assert!(!sb.healthy().await);
    let before = fake.requests().len();
    assert!(is_gone(&sb.write_files(&files).await));
    assert!(is_gone(&sb.read_file("package.json").await));
    assert!(is_gone(&sb.list_files().await));
    assert!(is_gone(
        &sb.run(&npm, no_lines(), CancellationToken::new()).await
    ));
    assert!(is_gone(&sb.start_dev_server(no_lines()).await));
    assert!(is_gone(&sb.keep_alive().await));
    assert_eq!(fake.requests().len(), before, "Gone without a round trip");

    // Every API call: bearer, teamId, a user agent, a content type.
    for r in fake.requests() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(r.query("teamId"), Some(TEAM_ID), "{} {}", r.method, r.path);
        assert!(r
            .header("user-agent")
            .unwrap_or("")
            .starts_with("builder-lsp/"));
        assert!(
            r.header("content-type").is_some(),
            "{} {}",
            r.method,
            r.path
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Credentials.

#[tokio::test]
async fn oidc_token_is_the_bearer_and_named_on_rejection() {
    let fake = FakeVercel::start();
    let good = jwt(json!({"owner_id": TEAM_ID, "project_id": PROJECT_ID}));
    fake.accept_token(&good);
    let env = HashMap::from([
        ("VERCEL_API_URL".to_string(), fake.api_url()),
        ("VERCEL_OIDC_TOKEN".to_string(), good.clone()),
    ]);
    let sb = VercelSandbox::create(http(), config(&env).unwrap())
        .await
        .unwrap();
    let r = &fake.requests()[0];
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {good}").as_str())
    );
    assert_eq!(r.json()["projectId"], PROJECT_ID);
    sb.kill().await.unwrap();

    let bad = jwt(json!({"owner_id": TEAM_ID, "project_id": PROJECT_ID, "jti": "other"}));
    let env = HashMap::from([
        ("VERCEL_API_URL".to_string(), fake.api_url()),
        ("VERCEL_OIDC_TOKEN".to_string(), bad.clone()),
    ]);
    match VercelSandbox::create(http(), config(&env).unwrap()).await {
        Err(e @ SandboxError::Auth { .. }) => {
            assert!(matches!(
                e,
                SandboxError::Auth {
                    provider: "Vercel",
                    var: "VERCEL_OIDC_TOKEN",
                    status: 403
                }
            ));
            assert!(!format!("{e} {e:?}").contains(&bad));
        }
        Err(e) => panic!("expected Auth, got {e:?}"),
        Ok(_) => panic!("expected Auth, got a sandbox"),
    }
}

#[tokio::test]
async fn rejected_token_is_an_auth_error_without_the_token() {
    let fake = FakeVercel::start();
    let secret = "vcl_wrong_secret_5d1e0b";
    let mut env = fake.env();
    env.insert("VERCEL_TOKEN".into(), secret.into());
    let err = VercelSandbox::create(http(), config(&env).unwrap())
        .await
        .err()
        .expect("rejected");
    assert!(
        matches!(
            err,
            SandboxError::Auth {
                provider: "Vercel",
                var: "VERCEL_TOKEN",
                status: 403
            }
        ),
        "{err:?}"
    );
    let shown = format!("{err} / {err:?}");
    assert!(!shown.contains(secret), "{shown}");
    assert!(shown.contains("VERCEL_TOKEN"), "{shown}");
    assert_eq!(fake.requests().len(), 1, "auth errors are not retried");

    // A server message that echoes the token is scrubbed before it reaches an error.
    let sb = create(&fake).await;
    fake.inject(
        "POST",
        "/extend-timeout",
        Inject::status(
            400,
            error_body("bad_request", &format!("token {TOKEN} cannot extend")),
        ),
    );
    let message = api_error(
        sb.keep_alive().await,
        400,
        "bad_request: token *** cannot extend",
    );
    assert!(!message.contains(TOKEN), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Rate limits and server errors.

/// A fake whose first `POST /v1/sandboxes` answers 429 with `retry-after: secs`.
fn fake_rate_limiting_create(secs: &str, message: &str) -> FakeVercel {
    let fake = FakeVercel::start();
    let reply = Inject::status_with(
        429,
        &[("retry-after", secs)],
        error_body("rate_limited", message),
    );
    fake.inject("POST", "/v1/sandboxes", reply);
    fake
}

#[tokio::test]
async fn rate_limit_with_short_retry_after_is_waited_once() {
    let fake = fake_rate_limiting_create("1", "slow down");
    let t = Instant::now();
    let sb = create(&fake).await;
    assert!(t.elapsed() >= Duration::from_secs(1), "{:?}", t.elapsed());
    assert_eq!(fake.requests_to("POST", "/v1/sandboxes").len(), 2);

    // A second 429 in a row is surfaced: the retry is spent.
    for _ in 0..2 {
        fake.inject(
            "POST",
            "/fs/read",
            Inject::status_with(429, &[("retry-after", "0")], error_body("rate_limited", "")),
        );
    }
    let before = fake.requests_to("POST", "/fs/read").len();
    match sb.read_file("package.json").await {
        Err(SandboxError::RateLimited {
            provider: "Vercel",
            retry_after_secs: Some(0),
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.requests_to("POST", "/fs/read").len(), before + 2);
}

#[tokio::test]
async fn rate_limit_with_long_retry_after_is_surfaced_at_once() {
    let fake = fake_rate_limiting_create("60", "later");
    let t = Instant::now();
    let err = VercelSandbox::create(http(), config(&fake.env()).unwrap())
        .await
        .err()
        .expect("rate limited");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(
        matches!(
            err,
            SandboxError::RateLimited {
                provider: "Vercel",
                retry_after_secs: Some(60)
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("retry after 60 s"), "{err}");
    assert_eq!(fake.requests_to("POST", "/v1/sandboxes").len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_only_where_safe() {
    let (fake, sb) = fake_and_sandbox().await;
    sb.write_files(&[file("a.txt", "A")]).await.unwrap();

    // Idempotent: a 500 once, then success.
    fake.inject(
        "POST",
        "/fs/read",
        Inject::status(500, error_body("internal", "oops")),
    );
    let t = Instant::now();
    assert_eq!(sb.read_file("a.txt").await.unwrap(), Some(b"A".to_vec()));
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "backoff: {:?}",
        t.elapsed()
    );
    assert_eq!(fake.requests_to("POST", "/fs/read").len(), 2);

    // Three in a row: two retries, then the error.
    for _ in 0..3 {
        fake.inject(
            "POST",
            "/fs/read",
            Inject::status(503, error_body("unavailable", "busy")),
        );
    }
    api_error(sb.read_file("a.txt").await, 503, "unavailable: busy");
    assert_eq!(fake.requests_to("POST", "/fs/read").len(), 5);

    // Starting a command is not repeated on a 500: it might have started.
    fake.inject(
        "POST",
        "/cmd",
        Inject::status(500, error_body("internal", "oops")),
    );
    let before = fake.requests_to("POST", "/cmd").len();
    let r = run_quiet(&sb, CommandSpec::new("echo", ["hi"])).await;
    assert!(
        matches!(r, Err(SandboxError::Api { status: 500, .. })),
        "{r:?}"
    );
    assert_eq!(fake.requests_to("POST", "/cmd").len(), before + 1);
    assert!(fake.commands(sb.info().sandbox_id.as_str()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Broken streams and stopped sandboxes.

#[tokio::test]
async fn truncated_command_stream_is_a_protocol_error() {
    let (fake, sb) = fake_and_sandbox().await;
    let id = sb.info().sandbox_id;
    fake.inject("POST", "/cmd", Inject::TruncateWait);
    let r = run_quiet(&sb, CommandSpec::new("sleep", ["30"])).await;
    match r {
        Err(SandboxError::Protocol {
            provider: "Vercel",
            message,
        }) => {
            assert!(
                message.contains("ended before the command finished"),
                "{message}"
            )
        }
        other => panic!("{other:?}"),
    }
    // The orphaned command was killed rather than left running.
    let cmd = fake.commands(&id).pop().unwrap();
    assert_eq!(
        fake.requests_to("POST", &format!("/{}/kill", cmd.id)).len(),
        1
    );
    eventually("the command to die", || {
        fake.commands(&id).pop().unwrap().exit_code == Some(143)
    })
    .await;
}

#[tokio::test]
async fn error_record_in_the_log_stream_fails_the_run() {
    let (_fake, sb) = fake_and_sandbox().await;
    let (s, lines) = sink();
    let r = sb
        .run(
            &CommandSpec::new("fake-stream-error", Vec::<String>::new()),
            s,
            CancellationToken::new(),
        )
        .await;
    match r {
        Err(SandboxError::Failed(m)) => {
            assert!(m.contains("internal_error: The log service failed"), "{m}");
            assert!(m.contains("working"), "carries the last output: {m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        *lines.lock().unwrap(),
        [(OutputStream::Stdout, "working".to_string())]
    );
}

#[tokio::test]
async fn a_sandbox_stopped_by_the_platform_is_gone() {
    let (fake, sb) = fake_and_sandbox().await;
    let id = sb.info().sandbox_id;
    sb.start_dev_server(no_lines()).await.unwrap();
    eventually_healthy(&sb, true).await;

    // Stopped under a running command: its log stream ends with `sandbox_stopped`.
    let t = Instant::now();
    let sleep = CommandSpec::new("sleep", ["30"]);
    let (r, ()) = tokio::join!(
        sb.run(&sleep, no_lines(), CancellationToken::new()),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            fake.stop_sandbox(&id);
        }
    );
    assert!(is_gone(&r), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10));

    // Every later call: 410 sandbox_stopped -> Gone; the preview refuses connections.
    assert!(is_gone(&sb.read_file("a").await));
    assert!(is_gone(&sb.write_files(&[file("a", "b")]).await));
    assert!(is_gone(&sb.keep_alive().await));
    assert!(is_gone(&sb.start_dev_server(no_lines()).await));
    assert!(!sb.healthy().await);
    // Kill of an already stopped sandbox is fine (410 counts as stopped).
    sb.kill().await.unwrap();
    assert_eq!(fake.requests_to("POST", "/stop").len(), 1);
}

#[tokio::test]
async fn cancelling_a_long_run_kills_it_promptly() {
    let (fake, sb) = fake_and_sandbox().await;
    let id = sb.info().sandbox_id;
    let cancel = CancellationToken::new();
    let c2 = cancel.clone();
    let t = Instant::now();
    let sleep = CommandSpec::new("sleep", ["30"]);
    let (r, ()) = tokio::join!(sb.run(&sleep, no_lines(), cancel), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c2.cancel();
    });
    assert!(matches!(r, Err(SandboxError::Cancelled)), "{r:?}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let cmd = fake.commands(&id).pop().unwrap();
    let kill = fake.requests_to("POST", "/kill").pop().expect("a kill");
    assert_eq!(kill.path, format!("/v1/sandboxes/{id}/{}/kill", cmd.id));
    assert_eq!(kill.json(), json!({"signal": 15}));
    eventually("the command to die", || {
        fake.commands(&id).pop().unwrap().exit_code == Some(143)
    })
    .await;

    // Already cancelled: nothing is started.
    let cancelled = CancellationToken::new();
    cancelled.cancel();
    let before = fake.requests().len();
    let r = sb
        .run(&CommandSpec::new("echo", ["x"]), no_lines(), cancelled)
        .await;
    assert!(matches!(r, Err(SandboxError::Cancelled)));
    assert_eq!(fake.requests().len(), before);
}

// ---------------------------------------------------------------------------------------------
// Odd answers and bad input.

#[tokio::test]
async fn read_file_refuses_a_non_octet_stream_answer() {
    let (fake, sb) = fake_and_sandbox().await;
    fake.inject(
        "POST",
        "/fs/read",
        Inject::status(200, r#"{"content":"x"}"#),
    );
    match sb.read_file("a.txt").await {
        Err(SandboxError::Protocol { message, .. }) => {
            assert!(message.contains("application/octet-stream"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn create_without_a_dev_port_route_fails_and_stops_the_sandbox() {
    let fake = FakeVercel::start();
    fake.inject(
        "POST",
        "/v1/sandboxes",
        Inject::status(
            200,
            json!({"sandbox": {"id": "sbx_noroute", "status": "running", "cwd": CWD},
                   "routes": [{"url": "http://127.0.0.1:1", "subdomain": "x", "port": 3000}]})
            .to_string(),
        ),
    );
    match VercelSandbox::create(http(), config(&fake.env()).unwrap()).await {
        Err(SandboxError::Protocol { message, .. }) => {
            assert!(message.contains("5173"), "{message}")
        }
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("created without a route"),
    }
    assert_eq!(
        fake.requests_to("POST", "/v1/sandboxes/sbx_noroute/stop")
            .len(),
        1
    );
}

#[tokio::test]
async fn create_errors_from_the_api() {
    let fake = FakeVercel::start();
    let mut cfg = config(&fake.env()).unwrap();
    cfg.project_id = "prj_unknown".into();
    let r = VercelSandbox::create(http(), cfg.clone()).await;
    api_error(r, 404, "not_found: Project not found");
    cfg.project_id = String::new();
    let r = VercelSandbox::create(http(), cfg).await;
    api_error(r, 400, "projectId is required");
}

#[tokio::test]
async fn escaping_paths_are_refused_before_any_request() {
    let (fake, sb) = fake_and_sandbox().await;
    let before = fake.requests().len();
    for bad in ["../etc/passwd", "/etc/passwd", "src/../../x", ""] {
        let r = sb.write_files(&[file(bad, "x")]).await;
        assert!(matches!(r, Err(SandboxError::Io(_))), "{bad:?}: {r:?}");
        assert!(
            matches!(sb.read_file(bad).await, Err(SandboxError::Io(_))),
            "{bad:?}"
        );
    }
    assert_eq!(fake.requests().len(), before);
}

/// The JSON body of a request's answer.
async fn answer_json(
    req: impl std::future::Future<Output = reqwest::Result<reqwest::Response>>,
) -> Value {
    req.await.unwrap().json().await.unwrap()
}

/// The fake's own contract (PROTOCOLS.md §6), checked with raw HTTP where the client would
/// never send such requests.
#[tokio::test]
async fn fake_enforces_the_protocol() {
    let fake = FakeVercel::start();
    let c = http();
    let url = |p: &str| format!("{}{p}?teamId={TEAM_ID}", fake.api_url());
    let bearer = format!("Bearer {TOKEN}");

    let r = c
        .post(url("/v1/sandboxes"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "unauthorized"
    );
    let r = c
        .post(format!("{}/v1/sandboxes", fake.api_url()))
        .header("authorization", &bearer)
        .json(&json!({"projectId": PROJECT_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "teamId is required");
    let create = |body: Value| {
        c.post(url("/v1/sandboxes"))
            .header("authorization", &bearer)
            .json(&body)
            .send()
    };
    let ports: Vec<u16> = (3000..3016).collect();
    let r = create(json!({"projectId": PROJECT_ID, "ports": ports}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "more than 15 ports");

    let created = answer_json(create(json!({"projectId": PROJECT_ID, "ports": [5173]}))).await;
    assert_eq!(created["sandbox"]["status"], "pending");
    let id = created["sandbox"]["id"].as_str().unwrap().to_string();
    let preview = created["routes"][0]["url"].as_str().unwrap().to_string();
    let get = || async {
        c.get(url(&format!("/v1/sandboxes/{id}")))
            .header("authorization", &bearer)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(get().await["sandbox"]["status"], "pending");
    assert_eq!(get().await["sandbox"]["status"], "running");
    assert_eq!(c.get(&preview).send().await.unwrap().status(), 502);

    let post = |path: &str, body: Value| {
        c.post(url(&format!("/v1/sandboxes/{id}{path}")))
            .header("authorization", &bearer)
            .json(&body)
            .send()
    };
    let r = c
        .post(url(&format!("/v1/sandboxes/{id}/fs/write")))
        .header("authorization", &bearer)
        .header("content-type", "application/gzip")
        .body("plain text, not gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // mkdir: a new folder, then the same again (exists), then one whose parent is missing.
    for (path, want) in [("lib", 200), ("lib", 400), ("a/b", 400)] {
        let r = post("/fs/mkdir", json!({"path": path, "cwd": CWD}));
        assert_eq!(r.await.unwrap().status(), want, "mkdir {path}");
    }

    // `wait: true`: NDJSON, first record without an exit code, the final one with it.
    let r = post(
        "/cmd",
        json!({"command": "echo", "args": ["hi"], "wait": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 2, "{text}");
    assert_eq!(recs[0]["command"]["exitCode"], Value::Null);
    assert_eq!(recs[1]["command"]["exitCode"], 0);
    // Without wait: JSON; then `?wait=true` blocks until the exit.
    let started = answer_json(post("/cmd", json!({"command": "sleep", "args": ["0.2"]}))).await;
    let cmd = started["command"]["id"].as_str().unwrap();
    assert_eq!(started["command"]["exitCode"], Value::Null);
    let wait_url = format!(
        "{}&wait=true",
        url(&format!("/v1/sandboxes/{id}/cmd/{cmd}"))
    );
    let waited = answer_json(c.get(wait_url).header("authorization", &bearer).send()).await;
    assert_eq!(waited["command"]["exitCode"], 0);

    // Stop: `stopping`, then `stopped`; commands answer 410 sandbox_stopped.
    let stopped = answer_json(post("/stop", json!({}))).await;
    assert_eq!(stopped["sandbox"]["status"], "stopping");
    assert_eq!(get().await["sandbox"]["status"], "stopped");
    let r = post("/cmd", json!({"command": "echo"})).await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "sandbox_stopped"
    );
    assert!(
        c.get(&preview).send().await.is_err(),
        "connection refused after stop"
    );
}

#[tokio::test]
async fn the_keep_alive_loop_extends_the_timeout_until_the_sandbox_stops() {
    let (fake, sb) = fake_and_sandbox().await;
    let id = sb.info().sandbox_id;
    let start_ms = fake.timeout_ms(&id).unwrap();
    let sb: Arc<dyn Sandbox> = Arc::new(sb);
    let looping =
        session::spawn_keep_alive(sb, Duration::from_millis(100), CancellationToken::new());
    tokio::time::sleep(Duration::from_millis(650)).await;
    // Stopped elsewhere (the dashboard, the timeout): the loop ends by itself.
    fake.stop_sandbox(&id);
    let kept = tokio::time::timeout(Duration::from_secs(5), looping)
        .await
        .expect("the loop ended on its own")
        .unwrap() as u64;
    assert!(kept >= 3, "{kept} extensions");
    // Each successful keep-alive added its 3 minutes; the one refused after the stop did not.
    assert_eq!(
        fake.timeout_ms(&id).unwrap(),
        start_ms + kept * KEEP_ALIVE_MS
    );
    assert_eq!(
        fake.requests_to("POST", "/extend-timeout").len() as u64,
        kept + 1
    );
}
