//! `builder.models {list: true}` end to end: the real binary over stdio against one loopback
//! fake that answers each provider's model-list route in its own format — OpenAI-style
//! `GET /v1/models` (Bearer checked; OpenAI's 401 body otherwise), Ollama's `GET /api/tags`,
//! Anthropic's `GET /v1/models` (x-api-key, anthropic-version), Gemini's `GET /v1beta/models`
//! (x-goog-api-key) — plus a route that never answers.

mod common;
mod fakes;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use fakes::http;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-models-KEY-7731-never-shown";
const WRONG_KEY: &str = "sk-proj-WRONG-key-0042-must-not-leak";

/// A request as the fake saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        http::header(&self.headers, name)
    }
}

struct ModelsFake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    _server: http::Server,
}

impl ModelsFake {
    fn start() -> ModelsFake {
        let listener = http::bind_loopback();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let server = http::serve(
            vec![(listener, ())],
            CancellationToken::new(),
            move |sock, ()| handle(sock, s2.clone()),
        );
        ModelsFake {
            addr,
            seen,
            _server: server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn targets(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.target).collect()
    }
}

fn openai_list(ids: &[&str]) -> Value {
    json!({
        "object": "list",
        "data": ids.iter().map(|id| json!({
            "id": id, "object": "model", "created": 1744316542, "owned_by": "system"
        })).collect::<Vec<_>>()
    })
}

fn ollama_tags() -> Value {
    let m = |name: &str, family: &str, size: &str| {
        json!({
            "name": name, "model": name,
            "modified_at": "2025-10-03T23:34:03.409490317-07:00",
            "size": 3338801804u64,
            "digest": "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a",
            "details": {"format": "gguf", "family": family, "families": [family],
                        "parameter_size": size, "quantization_level": "Q4_K_M"}
        })
    };
    json!({"models": [m("qwen2.5-coder:7b", "qwen2", "7.6B"), m("llama3.2:latest", "llama", "3.2B")]})
}

/// (status, content type, body) for one request.
fn route(req: &Seen) -> (u16, &'static str, String) {
    let path = req.target.split('?').next().unwrap_or("");
    let json_ct = "application/json";
    if req.method != "GET" {
        return (405, json_ct, r#"{"error":{"message":"method"}}"#.into());
    }
    let bearer = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "));
    match path {
        "/v1/models" | "/compat/v1/models" => match bearer {
            Some(k) if k == KEY => (
                200,
                json_ct,
                // Unsorted, with a duplicate: the server sorts and dedupes.
                openai_list(&["gpt-4.1-mini", "o4-mini", "gpt-4.1", "gpt-4.1-mini"]).to_string(),
            ),
            // OpenAI's 401 body; this fake echoes the presented key in full (the real API masks
            // part of it), so the server must scrub it.
            presented => (
                401,
                json_ct,
                json!({"error": {
                    "message": format!("Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.", presented.unwrap_or("")),
                    "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}})
                .to_string(),
            ),
        },
        "/api/tags" => (200, json_ct, ollama_tags().to_string()),
        // An OpenAI-only proxy in front of Ollama: no native route.
        "/proxy/api/tags" => (404, "text/plain", "404 page not found".into()),
        "/proxy/v1/models" => (200, json_ct, openai_list(&["llama3.2:latest"]).to_string()),
        "/anthropic/v1/models" => {
            if req.header("x-api-key") == Some(KEY)
                && req.header("anthropic-version") == Some("2023-06-01")
            {
                let m = |id: &str, name: &str| json!({"type": "model", "id": id, "display_name": name, "created_at": "2025-09-29T00:00:00Z"});
                (
                    200,
                    json_ct,
                    json!({"data": [m("claude-sonnet-4-5-20250929", "Claude Sonnet 4.5"), m("claude-haiku-4-5-20251001", "Claude Haiku 4.5")],
                           "has_more": false, "first_id": "claude-sonnet-4-5-20250929", "last_id": "claude-haiku-4-5-20251001"})
                    .to_string(),
                )
            } else {
                (
                    401,
                    json_ct,
                    r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#.into(),
                )
            }
        }
        "/gemini/v1beta/models" => {
            if req.header("x-goog-api-key") == Some(KEY) && !req.target.contains("key=") {
                (
                    200,
                    json_ct,
                    json!({"models": [
                        {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent", "countTokens"]},
                        {"name": "models/text-embedding-004", "supportedGenerationMethods": ["embedContent"]},
                        {"name": "models/gemini-2.5-pro", "supportedGenerationMethods": ["generateContent"]}
                    ]})
                    .to_string(),
                )
            } else {
                (
                    400,
                    json_ct,
                    json!({"error": {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}}).to_string(),
                )
            }
        }
        _ => (
            404,
            json_ct,
            r#"{"error":{"message":"no such route"}}"#.into(),
        ),
    }
}

async fn handle(mut sock: TcpStream, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::new();
    while let Some(raw) = http::read_request(&mut sock, &mut buf).await {
        let req = Seen {
            method: raw.method,
            target: raw.target,
            headers: raw.headers,
        };
        seen.lock().unwrap().push(req.clone());
        if req.target.starts_with("/hang") {
            // Never answers; holds the connection until the client gives up.
            http::hang_until_closed(&mut sock).await;
            return;
        }
        let (status, ct, body) = route(&req);
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
            http::reason(status),
            body.len()
        );
        if sock.write_all(head.as_bytes()).await.is_err()
            || sock.write_all(body.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

fn entry<'a>(result: &'a Value, provider: &str) -> &'a Value {
    result["providers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["provider"] == json!(provider)))
        .unwrap_or_else(|| panic!("no {provider} entry: {result:#}"))
}

fn listed(e: &Value) -> Vec<String> {
    strings(&e["listedModels"])
}

/// `builder.models {provider, list: true}`.
fn list(s: &TestServer, provider: &str) -> Value {
    s.execute(
        "builder.models",
        json!({"provider": provider, "list": true}),
    )
    .unwrap()
}

/// The provider's entry, which must say it was reached.
fn reached<'a>(result: &'a Value, provider: &str) -> &'a Value {
    let e = entry(result, provider);
    assert_eq!(e["reachable"], json!(true), "{e}");
    e
}

/// A server whose providers `(PREFIX, path on the fake, key)` have `PREFIX_BASE_URL` on the
/// fake and, with a key, `PREFIX_API_KEY`.
fn start_against(
    fake: &ModelsFake,
    providers: &[(&str, &str, Option<&str>)],
) -> (tempfile::TempDir, TestServer) {
    let mut env = Vec::new();
    for (prefix, path, key) in providers {
        env.push((format!("{prefix}_BASE_URL"), fake.url(path)));
        if let Some(k) = key {
            env.push((format!("{prefix}_API_KEY"), k.to_string()));
        }
    }
    let env: Vec<(&str, String)> = env.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    start(&env)
}

/// A fresh fake, and a server configured against it as [`start_against`] does.
fn fake_and_server(
    providers: &[(&str, &str, Option<&str>)],
) -> (ModelsFake, tempfile::TempDir, TestServer) {
    let fake = ModelsFake::start();
    let (dir, s) = start_against(&fake, providers);
    (fake, dir, s)
}

fn start(env: &[(&str, String)]) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = vscode().folder(dir.path());
    for (k, v) in env {
        opts = opts.env(k, v);
    }
    (dir, TestServer::start(opts))
}

#[test]
fn lists_configured_openai_compatible_and_ollama_servers_with_their_auth() {
    let (fake, _dir, s) = fake_and_server(&[
        ("OPENAI", "/v1", Some(KEY)),
        ("COMPATIBLE", "/compat/v1", Some(KEY)),
        // Ollama configured the usual way, with `/v1`: the listing uses the host root.
        ("OLLAMA", "/v1", None),
    ]);

    // The no-argument answer is the configuration only: no I/O, no listing fields.
    let plain = s.execute("builder.models", json!({})).unwrap();
    assert!(fake.seen().is_empty(), "{:?}", fake.seen());
    for p in plain["providers"].as_array().unwrap() {
        for k in [
            "listedModels",
            "listedCount",
            "reachable",
            "error",
            "latencyMs",
        ] {
            assert!(p.get(k).is_none(), "{k} without list: {p}");
        }
    }
    assert_eq!(entry(&plain, "compatible")["configured"], json!(true));
    assert_eq!(entry(&plain, "ollama")["configured"], json!(true));

    let r = s.execute("builder.models", json!({"list": true})).unwrap();
    let openai = reached(&r, "openai");
    assert_eq!(
        listed(openai),
        ["openai/gpt-4.1", "openai/gpt-4.1-mini", "openai/o4-mini"]
    );
    assert_eq!(openai["listedCount"], json!(3));
    assert!(openai["latencyMs"].is_u64(), "{openai}");
    assert!(openai.get("error").is_none(), "{openai}");
    // The configuration fields are still there.
    assert_eq!(openai["keyPresent"], json!(true));
    assert!(strings(&openai["models"]).contains(&"openai/gpt-4.1".to_string()));

    let compatible = reached(&r, "compatible");
    assert_eq!(listed(compatible)[0], "compatible/gpt-4.1");

    let ollama = reached(&r, "ollama");
    assert_eq!(
        listed(ollama),
        ["ollama/llama3.2:latest", "ollama/qwen2.5-coder:7b"]
    );

    // Providers without a key are not configured, so not listed.
    for p in ["anthropic", "google", "groq", "openrouter"] {
        assert!(entry(&r, p).get("reachable").is_none(), "{p} was listed");
    }

    let seen = fake.seen();
    let mut targets = fake.targets();
    targets.sort();
    assert_eq!(
        targets,
        ["/api/tags", "/compat/v1/models", "/v1/models"],
        "{seen:?}"
    );
    let get = |t: &str| seen.iter().find(|x| x.target == t).unwrap();
    assert_eq!(
        get("/v1/models").header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(get("/api/tags").header("authorization"), None);
    assert!(!r.to_string().contains(KEY), "{r}");
    assert!(!s.stderr().contains(KEY));
    s.shutdown();
}

#[test]
fn a_rejected_key_is_reported_with_status_and_openais_message_but_never_the_key() {
    let (fake, _dir, s) = fake_and_server(&[("OPENAI", "/v1", Some(WRONG_KEY))]);
    let r = list(&s, "openai");
    let openai = entry(&r, "openai");
    assert_eq!(openai["reachable"], json!(false), "{openai}");
    assert_eq!(listed(openai), Vec::<String>::new());
    let error = openai["error"].as_str().unwrap();
    assert!(error.contains("HTTP 401 Unauthorized"), "{error}");
    assert!(error.contains("Incorrect API key provided"), "{error}");
    assert!(error.contains("OPENAI_API_KEY"), "{error}");
    assert!(openai["latencyMs"].is_u64());
    // The fake echoed the key in full: it must be gone from everything the server says.
    assert_eq!(
        fake.seen()[0].header("authorization"),
        Some(format!("Bearer {WRONG_KEY}").as_str())
    );
    assert!(!r.to_string().contains(WRONG_KEY), "{r}");
    assert!(!r.to_string().contains("WRONG-key"), "{r}");
    assert!(!s.stderr().contains(WRONG_KEY));
    // Only the asked provider was listed (Ollama is configured by default, but not asked).
    assert!(entry(&r, "ollama").get("reachable").is_none());
    assert_eq!(fake.targets(), ["/v1/models"]);
    s.shutdown();
}

#[test]
fn ollama_without_v1_uses_api_tags_and_an_openai_only_proxy_falls_back_to_v1_models() {
    let (fake, _dir, s) = fake_and_server(&[("OLLAMA", "", None)]);
    let r = list(&s, "ollama");
    let ollama = reached(&r, "ollama");
    assert_eq!(listed(ollama).len(), 2);
    assert_eq!(fake.targets(), ["/api/tags"]);
    s.shutdown();

    let (fake, _dir, s) = fake_and_server(&[("OLLAMA", "/proxy/v1", None)]);
    let r = list(&s, "ollama");
    let ollama = reached(&r, "ollama");
    assert_eq!(listed(ollama), ["ollama/llama3.2:latest"]);
    assert_eq!(fake.targets(), ["/proxy/api/tags", "/proxy/v1/models"]);
    s.shutdown();
}

#[test]
fn anthropic_and_gemini_list_with_their_own_headers() {
    let (fake, _dir, s) = fake_and_server(&[
        ("ANTHROPIC", "/anthropic", Some(KEY)),
        ("GEMINI", "/gemini", Some(KEY)),
        // Nothing answers here: Ollama is configured by default, so a full listing tries it.
        ("OLLAMA", "/nothing/v1", None),
    ]);
    let r = s.execute("builder.models", json!({"list": true})).unwrap();
    let anthropic = reached(&r, "anthropic");
    assert_eq!(
        listed(anthropic),
        [
            "anthropic/claude-haiku-4-5-20251001",
            "anthropic/claude-sonnet-4-5-20250929"
        ]
    );
    let google = reached(&r, "google");
    // Only models that generate content; `models/` dropped.
    assert_eq!(
        listed(google),
        ["google/gemini-2.5-flash", "google/gemini-2.5-pro"]
    );
    let ollama = entry(&r, "ollama");
    assert_eq!(ollama["reachable"], json!(false));
    assert!(
        ollama["error"].as_str().unwrap().contains("HTTP 404"),
        "{ollama}"
    );
    let seen = fake.seen();
    let a = seen
        .iter()
        .find(|x| x.target.starts_with("/anthropic/"))
        .unwrap();
    assert_eq!(a.header("anthropic-version"), Some("2023-06-01"));
    let g = seen
        .iter()
        .find(|x| x.target.starts_with("/gemini/"))
        .unwrap();
    assert!(
        !g.target.contains(KEY),
        "the key travels in a header, not the URL"
    );
    assert!(!r.to_string().contains(KEY));
    s.shutdown();
}

#[test]
fn a_server_that_never_answers_times_out_within_the_budget() {
    let (fake, _dir, s) = fake_and_server(&[("COMPATIBLE", "/hang/v1", None)]);
    let t = Instant::now();
    let r = s
        .execute(
            "builder.models",
            json!({"provider": "compatible", "list": true, "timeoutMs": 300}),
        )
        .unwrap();
    let took = t.elapsed();
    let c = entry(&r, "compatible");
    assert_eq!(c["reachable"], json!(false), "{c}");
    let error = c["error"].as_str().unwrap();
    assert!(error.contains("within 300 ms"), "{error}");
    assert!(error.contains("/hang/v1/models"), "{error}");
    let latency = c["latencyMs"].as_u64().unwrap();
    assert!((300..1500).contains(&latency), "latency {latency} ms");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(fake.targets(), ["/hang/v1/models"]);
    s.shutdown();
}

#[test]
fn an_unconfigured_provider_asked_by_name_says_what_to_set_without_a_request() {
    let fake = ModelsFake::start();
    let (_dir, s) = start(&[]);
    let r = s
        .execute("builder.models", json!({"provider": "groq", "list": true}))
        .unwrap();
    let groq = entry(&r, "groq");
    assert_eq!(groq["reachable"], json!(false));
    assert_eq!(groq["error"], json!("no API key: set GROQ_API_KEY"));
    assert!(groq.get("latencyMs").is_none(), "{groq}");
    let r = list(&s, "compatible");
    assert_eq!(
        entry(&r, "compatible")["error"],
        json!("not configured: set COMPATIBLE_BASE_URL")
    );
    // `gemini` is accepted for `google`.
    let r = list(&s, "gemini");
    assert_eq!(
        entry(&r, "google")["error"],
        json!("no API key: set GEMINI_API_KEY")
    );
    assert!(fake.seen().is_empty());
    s.shutdown();
}

#[test]
fn bad_arguments_are_invalid_params_naming_the_field() {
    let (_dir, s) = server_in_tempdir(vscode());
    // (arguments, the field the message names, and what else it says)
    #[rustfmt::skip]
    let cases = [
        (json!({"provider": "nope", "list": true}), "`provider`", "nope"),
        (json!({"provider": 7, "list": true}), "`provider`", ""),
        (json!({"list": true, "timeoutMs": 0}), "`timeoutMs`", "0"),
        (json!({"list": true, "timeoutMs": 600000}), "`timeoutMs`", ""),
        (json!({"list": true, "timeoutMs": "fast"}), "`timeoutMs`", ""),
        (json!({"list": true, "timeoutMs": -5}), "`timeoutMs`", ""),
        (json!({"list": "yes"}), "`list`", ""),
        (json!({"provider": "openai"}), "`provider`", "list: true"),
        (json!({"timeoutMs": 100}), "`timeoutMs`", "list: true"),
        (json!({"list": true, "providers": ["openai"]}), "providers", ""),
    ];
    for (args, field, also) in cases {
        let e = s.execute("builder.models", args.clone()).unwrap_err();
        assert_eq!(code(&e), -32602, "{args}: {e}");
        let m = message(&e);
        assert!(m.contains(field) && m.contains(also), "{args}: {m}");
    }
    let e = s
        .execute("builder.models", json!({"provider": "nope", "list": true}))
        .unwrap_err();
    assert!(message(&e).contains("anthropic, openai"), "{e}");
    s.shutdown();
}

#[test]
fn helix_sees_the_listing_as_a_message() {
    let fake = ModelsFake::start();
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(
        helix()
            .root_path(dir.path())
            .env("OPENAI_BASE_URL", &fake.url("/v1"))
            .env("OPENAI_API_KEY", KEY),
    );
    list(&s, "openai");
    assert!(
        s.wait_for(
            |m| m.iter().any(|x| {
                x["method"] == json!("window/showMessage")
                    && x["params"]["message"]
                        .as_str()
                        .is_some_and(|t| t.contains("OpenAI: reachable, 3 models"))
            }),
            Duration::from_secs(5),
        ),
        "{:#?}",
        s.messages_of("window/showMessage")
    );
    s.shutdown();
}
