//! The AI provider layer against loopback fakes that speak each provider's real wire format
//! (`tests/fakes`): request shape, streaming, stop reasons, usage, errors, retries, cuts and
//! cancellation — all through the public `builder_lsp::ai` API.

mod fakes;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use builder_lsp::ai::{
    AiClient, AiConfig, AiError, ChatMessage, ChatRequest, ChatStream, ModelId, Provider, Role,
    StopReason, StreamEvent,
};
use fakes::*;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

const KEY: &str = "sk-test-SECRET-4f1c9a77";
const SYSTEM: &str = "You build React apps. Answer with <file> blocks.";
const ANSWER: &str = "<file path=\"src/App.jsx\">\nexport default function App() {\n  return <h1>Héllo wörld ✓ 🚀 — ça marche</h1>;\n}\n</file>\n<explanation>Ready.</explanation>";

fn request(model: &str) -> ChatRequest {
    ChatRequest {
        model: ModelId::parse(model).expect("model id"),
        system: SYSTEM.into(),
        messages: vec![
            ChatMessage {
                role: Role::User,
                content: "Make a landing page".into(),
            },
            ChatMessage {
                role: Role::Assistant,
                content: "<file path=\"src/App.jsx\">old</file>".into(),
            },
            ChatMessage {
                role: Role::User,
                content: "Now add a hero".into(),
            },
        ],
        max_tokens: 1234,
        temperature: Some(0.5),
    }
}

fn client(fake: &FakeProvider, provider: Provider, key: Option<&str>) -> AiClient {
    AiClient::new(fake.config(provider, key))
}

#[derive(Debug, Default)]
struct Collected {
    text: String,
    texts: usize,
    usage: Option<(u64, u64)>,
    stop: Option<StopReason>,
    error: Option<AiError>,
}

async fn drain(stream: &mut ChatStream) -> Collected {
    let mut c = Collected::default();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(StreamEvent::Text(t)) => {
                assert!(c.stop.is_none(), "text after Stop");
                c.text.push_str(&t);
                c.texts += 1;
            }
            Ok(StreamEvent::Usage {
                input_tokens,
                output_tokens,
            }) => c.usage = Some((input_tokens, output_tokens)),
            Ok(StreamEvent::Stop(r)) => c.stop = Some(r),
            Err(e) => {
                c.error = Some(e);
                break;
            }
        }
    }
    assert!(stream.next().await.is_none(), "events after the end");
    c
}

/// Streams `req` to completion; an error from `stream()` is returned as `Err`.
async fn run(client: &AiClient, req: &ChatRequest) -> Result<Collected, AiError> {
    let mut s = client.stream(req, CancellationToken::new()).await?;
    Ok(drain(&mut s).await)
}

const CLAUDE: &str = "anthropic/claude-sonnet-4-5";
const GPT: &str = "openai/gpt-4.1";
const GEMINI: &str = "google/gemini-2.5-flash";

/// A fake answering `script`, and `model` streamed from it through `provider` with `key`.
async fn start_and_run(
    script: Vec<Reply>,
    provider: Provider,
    key: Option<&str>,
    model: &str,
) -> (FakeProvider, Result<Collected, AiError>) {
    let fake = FakeProvider::start(script);
    let got = run(&client(&fake, provider, key), &request(model)).await;
    (fake, got)
}

/// [`start_and_run`] with the test key; the stream must begin.
async fn streamed(
    script: Vec<Reply>,
    provider: Provider,
    model: &str,
) -> (FakeProvider, Collected) {
    let (fake, got) = start_and_run(script, provider, Some(KEY), model).await;
    (fake, got.expect("stream"))
}

/// [`start_and_run`] with the test key; `stream()` must fail.
async fn refused(script: Vec<Reply>, provider: Provider, model: &str) -> (FakeProvider, AiError) {
    let (fake, got) = start_and_run(script, provider, Some(KEY), model).await;
    (fake, got.expect_err("error"))
}

/// The whole of [`ANSWER`], with this usage and stop reason and no error.
fn assert_answer(got: &Collected, output_tokens: u64, stop: StopReason) {
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got.text, ANSWER);
    assert_eq!(got.usage, Some((INPUT_TOKENS, output_tokens)));
    assert_eq!(got.stop, Some(stop));
}

/// The start of a file block, cut off by the token limit.
const PARTIAL: &[&str] = &["<file path=\"a\">", "par"];

fn assert_partial_max_tokens(got: &Collected) {
    assert_eq!(got.text, "<file path=\"a\">par");
    assert_eq!(got.stop, Some(StopReason::MaxTokens));
}

/// Streams [`ANSWER`] as [`answer_chunks`] framed by `frames`: it must arrive whole, with one
/// output token a chunk and `stop`. The single request the fake saw.
async fn whole_answer(
    frames: impl Fn(&[String]) -> Vec<String>,
    provider: Provider,
    model: &str,
    stop: StopReason,
) -> RecordedRequest {
    let chunks = answer_chunks();
    let (fake, got) = streamed(vec![Reply::sse(frames(&chunks))], provider, model).await;
    assert_answer(&got, chunks.len() as u64, stop);
    fake.single_request()
}

fn assert_bearer(r: &RecordedRequest) {
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

/// An OpenAI-style chat request for `model`, with the test key as Bearer (or no
/// Authorization at all without a key).
fn assert_openai_request(r: &RecordedRequest, model: &str, with_key: bool) {
    assert_eq!(r.path, "/v1/chat/completions");
    if with_key {
        assert_bearer(r);
    } else {
        assert!(r.header("authorization").is_none());
    }
    assert_openai_body(&r.body, model);
    assert_eq!(r.body["max_tokens"], 1234);
}

fn answer_chunks() -> Vec<String> {
    let chunks = chunk_text(ANSWER, 7);
    assert!(chunks.len() > 10);
    chunks
}

fn error_text(e: &AiError) -> String {
    format!("{e} | {e:?}")
}

// ---------------------------------------------------------------------------------------------
// Anthropic

#[tokio::test]
async fn anthropic_streams_answer_with_request_shape() {
    let chunks = answer_chunks();
    let script = vec![Reply::sse(anthropic_frames(&chunks, "end_turn", 42))];
    let (fake, got) = streamed(script, Provider::Anthropic, CLAUDE).await;
    assert_answer(&got, 42, StopReason::EndTurn);
    assert_eq!(got.texts, chunks.len());

    let r = fake.single_request();
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/messages");
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert!(
        r.header("authorization").is_none(),
        "both auth headers -> 401"
    );
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("application/json"));
    let b = &r.body;
    assert_eq!(b["model"], "claude-sonnet-4-5");
    assert_eq!(b["stream"], true);
    assert_eq!(b["max_tokens"], 1234);
    assert_eq!(b["system"], SYSTEM);
    assert!((b["temperature"].as_f64().expect("temperature") - 0.5).abs() < 1e-6);
    let msgs = b["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0]["role"], "user");
    assert_eq!(msgs[1]["role"], "assistant");
    assert!(
        msgs.iter().all(|m| m["role"] != "system"),
        "no system role in Anthropic"
    );
}

#[tokio::test]
async fn anthropic_max_tokens_stop_and_temperature_rules() {
    let fake = FakeProvider::start(vec![Reply::sse(anthropic_frames(
        &["<file path=\"a\">par"],
        "max_tokens",
        16,
    ))]);
    let c = client(&fake, Provider::Anthropic, Some(KEY));
    let got = run(&c, &request("anthropic/claude-opus-4-7"))
        .await
        .expect("stream");
    assert_eq!(got.stop, Some(StopReason::MaxTokens));
    assert_eq!(got.usage, Some((INPUT_TOKENS, 16)));
    // Opus 4.7 rejects temperature: it must not be sent.
    assert!(fake.requests()[0].body.get("temperature").is_none());

    let mut req = request(CLAUDE);
    req.temperature = None;
    run(&c, &req).await.expect("stream");
    assert!(fake.requests()[1].body.get("temperature").is_none());
}

#[tokio::test]
async fn anthropic_survives_bytes_split_anywhere_crlf_comments_and_unknown_events() {
    let answer = "Héllo wörld ✓ 🚀 — ça marche";
    let mut frames = vec![": keep-alive comment\n\n".to_string()];
    frames.extend(anthropic_frames(&chunk_text(answer, 5), "end_turn", 30));
    frames.insert(
        4,
        anthropic_event("brand_new_event", json!({"type":"brand_new_event","x":1})),
    );
    let crlf: String = frames.concat().replace('\n', "\r\n");
    // 3-byte pieces split "\r\n" pairs and multi-byte characters across reads.
    let script = vec![Reply::sse_bytes(crlf.as_bytes(), 3)];
    let (_fake, got) = streamed(script, Provider::Anthropic, CLAUDE).await;
    assert!(got.error.is_none(), "{:?}", got.error);
    assert_eq!(got.text, answer);
    assert_eq!(got.stop, Some(StopReason::EndTurn));
}

// ---------------------------------------------------------------------------------------------
// OpenAI and the OpenAI-style providers

fn assert_openai_body(b: &Value, model: &str) {
    assert_eq!(b["model"], model);
    assert_eq!(b["stream"], true);
    assert_eq!(b["stream_options"]["include_usage"], true);
    let msgs = b["messages"].as_array().expect("messages");
    assert_eq!(msgs.len(), 4);
    assert_eq!(msgs[0]["role"], "system");
    assert_eq!(msgs[0]["content"], SYSTEM);
    assert_eq!(msgs[1]["role"], "user");
    assert_eq!(msgs[2]["role"], "assistant");
}

#[tokio::test]
async fn openai_streams_answer_with_request_shape() {
    let frames = |c: &[String]| openai_frames(c, "stop");
    let r = whole_answer(frames, Provider::OpenAi, GPT, StopReason::EndTurn).await;
    assert_openai_request(&r, "gpt-4.1", true);
    assert!(r.body.get("max_completion_tokens").is_none());
    assert!((r.body["temperature"].as_f64().expect("temperature") - 0.5).abs() < 1e-6);
}

#[tokio::test]
async fn openai_length_finish_is_max_tokens() {
    let script = vec![Reply::sse(openai_frames(PARTIAL, "length"))];
    let (_fake, got) = streamed(script, Provider::OpenAi, "openai/gpt-4o-mini").await;
    assert_partial_max_tokens(&got);
}

#[tokio::test]
async fn openai_reasoning_models_use_max_completion_tokens_without_temperature() {
    let fake = FakeProvider::start(vec![Reply::sse(openai_frames(&["ok"], "stop"))]);
    let c = client(&fake, Provider::OpenAi, Some(KEY));
    for model in ["openai/o3-mini", "openai/gpt-5", "openai/o1"] {
        run(&c, &request(model)).await.expect("stream");
    }
    for r in fake.requests() {
        assert_eq!(r.body["max_completion_tokens"], 1234, "{}", r.body);
        assert!(r.body.get("max_tokens").is_none(), "{}", r.body);
        assert!(r.body.get("temperature").is_none(), "{}", r.body);
    }
}

#[tokio::test]
async fn groq_streams_openai_style() {
    let model = "groq/llama-3.3-70b-versatile";
    let r = whole_answer(
        |c| groq_frames(c, "stop"),
        Provider::Groq,
        model,
        StopReason::EndTurn,
    )
    .await;
    assert_openai_request(&r, "llama-3.3-70b-versatile", true);
}

#[tokio::test]
async fn openrouter_skips_comments_and_keeps_namespaced_model() {
    let frames = |c: &[String]| {
        let f = openrouter_frames(c, "length");
        assert!(f[0].starts_with(": OPENROUTER PROCESSING"));
        f
    };
    let model = "openrouter/anthropic/claude-sonnet-4.5";
    let r = whole_answer(frames, Provider::OpenRouter, model, StopReason::MaxTokens).await;
    assert_openai_request(&r, "anthropic/claude-sonnet-4.5", true);
}

#[tokio::test]
async fn openrouter_in_stream_error_after_text_is_stream_error() {
    for code in [json!("server_error"), json!(502)] {
        let mut frames = vec![OPENROUTER_COMMENT.to_string()];
        let full = openrouter_frames(&["<file path=\"a\">", "partial"], "stop");
        // role + both content chunks, no finish
        let error = openrouter_error_frame(code.clone(), "Provider disconnected unexpectedly");
        frames.extend(broken_after(full, 6, error));
        let script = vec![Reply::sse_cut(frames.clone(), frames.len())];
        let (fake, got) = streamed(script, Provider::OpenRouter, "openrouter/openai/gpt-4o").await;
        assert_eq!(got.text, "<file path=\"a\">partial");
        assert_eq!(got.stop, None);
        match got.error {
            Some(AiError::StreamError {
                provider,
                ref kind,
                ref message,
            }) => {
                assert_eq!(provider, "OpenRouter");
                assert_eq!(kind, &code.to_string().trim_matches('"').to_string());
                assert!(message.contains("Provider disconnected"), "{message}");
            }
            other => panic!("expected StreamError, got {other:?}"),
        }
        assert_eq!(fake.request_count(), 1, "never retried after text");
    }
}

#[tokio::test]
async fn ollama_sends_no_authorization_without_key() {
    let chunks = answer_chunks();
    let script = vec![Reply::sse(openai_frames(&chunks, "stop"))];
    let (fake, got) =
        start_and_run(script, Provider::Ollama, None, "ollama/qwen2.5-coder:7b").await;
    let got = got.expect("stream");
    assert_eq!(got.text, ANSWER);
    assert_eq!(got.stop, Some(StopReason::EndTurn));
    let r = fake.single_request();
    assert_openai_request(&r, "qwen2.5-coder:7b", false);
}

#[tokio::test]
async fn compatible_needs_base_url_and_key_is_optional() {
    // Nothing configured: refused before any I/O, naming the variable.
    let unconfigured = AiClient::new(AiConfig::resolve(
        &HashMap::new(),
        &HashMap::new(),
        &HashMap::new(),
    ));
    let err = run(&unconfigured, &request("compatible/local-model"))
        .await
        .expect_err("error");
    assert!(matches!(err, AiError::NotConfigured { .. }), "{err:?}");
    assert!(err.to_string().contains("COMPATIBLE_BASE_URL"), "{err}");

    let chunks = answer_chunks();
    let script = vec![Reply::sse(openai_frames(&chunks, "stop"))];
    // Without a key: no Authorization header.
    let (fake, got) =
        start_and_run(script, Provider::Compatible, None, "compatible/local-model").await;
    assert_eq!(got.expect("stream").text, ANSWER);
    // With a key from settings (which override the environment).
    let base_urls = HashMap::from([(
        "compatible".to_string(),
        fake.base_url_for(Provider::Compatible),
    )]);
    let api_keys = HashMap::from([("compatible".to_string(), KEY.to_string())]);
    let env = HashMap::from([(
        "COMPATIBLE_API_KEY".to_string(),
        "env-key-unused".to_string(),
    )]);
    let c = AiClient::new(AiConfig::resolve(&env, &base_urls, &api_keys));
    let got = run(&c, &request("compatible/local-model"))
        .await
        .expect("stream");
    assert_eq!(got.text, ANSWER);
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_openai_request(&reqs[0], "local-model", false);
    assert_openai_request(&reqs[1], "local-model", true);
}

// ---------------------------------------------------------------------------------------------
// Gemini

#[tokio::test]
async fn gemini_streams_answer_with_request_shape() {
    let frames = |c: &[String]| gemini_frames(c, "STOP");
    let r = whole_answer(frames, Provider::Google, GEMINI, StopReason::EndTurn).await;
    assert_eq!(
        r.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(r.header("x-goog-api-key"), Some(KEY));
    assert!(!r.path.contains(KEY), "key only in the header");
    let b = &r.body;
    let contents = b["contents"].as_array().expect("contents");
    let roles: Vec<&str> = contents
        .iter()
        .map(|c| c["role"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(roles, ["user", "model", "user"]);
    assert_eq!(contents[0]["parts"][0]["text"], "Make a landing page");
    assert_eq!(b["systemInstruction"]["parts"][0]["text"], SYSTEM);
    assert_eq!(b["generationConfig"]["maxOutputTokens"], 1234);
    assert!(
        (b["generationConfig"]["temperature"]
            .as_f64()
            .expect("temperature")
            - 0.5)
            .abs()
            < 1e-6
    );
}

#[tokio::test]
async fn gemini_max_tokens_finish_and_alias() {
    let script = vec![Reply::sse(gemini_frames(PARTIAL, "MAX_TOKENS"))];
    let (fake, got) = streamed(script, Provider::Google, "gemini/gemini-2.5-pro").await;
    assert_partial_max_tokens(&got);
    assert_eq!(
        fake.single_request().path,
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
}

// ---------------------------------------------------------------------------------------------
// Errors before the stream

#[tokio::test]
async fn unauthorized_names_the_variable_and_hides_the_key() {
    let anthropic =
        anthropic_error_body("authentication_error", &format!("invalid x-api-key {KEY}"));
    let openai_message = format!("Incorrect API key provided: {KEY}.");
    let openai = openai_error_body(
        &openai_message,
        "invalid_request_error",
        Some("invalid_api_key"),
    );
    // (provider, model, answer, status reported, variable named)
    #[rustfmt::skip]
    let cases = [
        (Provider::Anthropic, CLAUDE, Reply::status(401, anthropic), 401, "ANTHROPIC_API_KEY"),
        (Provider::OpenAi, GPT, Reply::status(401, openai), 401, "OPENAI_API_KEY"),
        (Provider::Google, GEMINI, Reply::status(400, gemini_key_invalid_body()), 400, "GEMINI_API_KEY"),
    ];
    for (provider, model, reply, status, var) in cases {
        let (fake, err) = refused(vec![reply], provider, model).await;
        assert!(
            matches!(err, AiError::Unauthorized { status: s, .. } if s == status),
            "{err:?}"
        );
        let shown = err.to_string();
        assert!(
            shown.contains(var) && shown.contains(&status.to_string()),
            "{shown}"
        );
        assert!(shown.contains(provider.display()), "{shown}");
        assert!(
            !error_text(&err).contains(KEY),
            "key leaked: {}",
            error_text(&err)
        );
        assert_eq!(fake.request_count(), 1, "401 is never retried");
    }
}

#[tokio::test]
async fn not_found_names_the_model() {
    let groq_message = "The model `llama-9` does not exist or you do not have access to it.";
    let gemini_message = "models/gemini-0-nope is not found for API version v1beta";
    #[rustfmt::skip]
    let cases = [
        (Provider::Anthropic, "anthropic/claude-3-5-sonnet-20240620", 404, anthropic_error_body("not_found_error", "model: claude-3-5-sonnet-20240620")),
        (Provider::Ollama, "ollama/llama9", 404, openai_error_body("model \"llama9\" not found, try pulling it first", "api_error", None)),
        (Provider::Google, "google/gemini-0-nope", 404, gemini_error_body(404, "NOT_FOUND", gemini_message)),
        (Provider::Groq, "groq/llama-9", 400, openai_error_body(groq_message, "invalid_request_error", Some("model_not_found"))),
    ];
    for (provider, model, status, body) in cases {
        let (fake, err) = refused(vec![Reply::status(status, body)], provider, model).await;
        assert!(matches!(err, AiError::ModelNotFound { .. }), "{err:?}");
        assert!(err.to_string().contains(model), "{err}");
        assert_eq!(fake.request_count(), 1);
    }
}

#[tokio::test]
async fn invalid_base_url_is_reported_before_any_request() {
    for base in ["not a url", "ftp://127.0.0.1/v1"] {
        let env = HashMap::from([
            ("OPENAI_BASE_URL".to_string(), base.to_string()),
            ("OPENAI_API_KEY".to_string(), KEY.to_string()),
        ]);
        let c = AiClient::new(AiConfig::resolve(&env, &HashMap::new(), &HashMap::new()));
        let err = run(&c, &request("openai/gpt-4.1"))
            .await
            .expect_err("error");
        assert!(matches!(err, AiError::InvalidBaseUrl { .. }), "{err:?}");
        assert!(err.to_string().contains("OPENAI_BASE_URL"), "{err}");
    }
}

#[tokio::test]
async fn missing_key_fails_before_any_request() {
    #[rustfmt::skip]
    let cases = [
        (Provider::Anthropic, CLAUDE, "ANTHROPIC_API_KEY"),
        (Provider::OpenAi, GPT, "OPENAI_API_KEY"),
        (Provider::Google, GEMINI, "GEMINI_API_KEY"),
        (Provider::Groq, "groq/llama-3.3-70b-versatile", "GROQ_API_KEY"),
        (Provider::OpenRouter, "openrouter/openai/gpt-4o", "OPENROUTER_API_KEY"),
    ];
    for (provider, model, var) in cases {
        let script = vec![Reply::sse(openai_frames(&["x"], "stop"))];
        let (fake, got) = start_and_run(script, provider, None, model).await;
        let err = got.expect_err("error");
        assert!(matches!(err, AiError::MissingKey { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("no API key for {}: set {var}", provider.display())
        );
        assert_eq!(fake.request_count(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Retries

/// [`start_and_run`] with the test key, timing the run (not the fake's start).
async fn timed_run(
    script: Vec<Reply>,
    provider: Provider,
    model: &str,
) -> (FakeProvider, Result<Collected, AiError>, Duration) {
    let fake = FakeProvider::start(script);
    let t0 = Instant::now();
    let got = run(&client(&fake, provider, Some(KEY)), &request(model)).await;
    (fake, got, t0.elapsed())
}

/// Anthropic answers 429 with `retry-after: seconds`; the error carries the hint. The fake,
/// the error and how long the run took.
async fn anthropic_rate_limited(seconds: u64, message: &str) -> (FakeProvider, AiError, Duration) {
    let retry_after = seconds.to_string();
    let reply = Reply::status_with(
        429,
        &[("retry-after", retry_after.as_str())],
        anthropic_error_body("rate_limit_error", message),
    );
    let (fake, err, took) = timed_run(vec![reply], Provider::Anthropic, CLAUDE).await;
    let err = err.expect_err("error");
    assert!(
        matches!(err, AiError::RateLimited { retry_after: Some(s), .. } if s == seconds),
        "{err:?}"
    );
    (fake, err, took)
}

#[tokio::test]
async fn rate_limit_retry_after_is_honoured() {
    let script = vec![
        Reply::status_with(
            429,
            &[("retry-after", "1"), ("x-ratelimit-remaining-tokens", "0")],
            openai_error_body(
                "Rate limit reached for gpt-4.1 ... Please try again in 1s.",
                "tokens",
                Some("rate_limit_exceeded"),
            ),
        ),
        Reply::sse(openai_frames(&answer_chunks(), "stop")),
    ];
    let (fake, got, waited) = timed_run(script, Provider::OpenAi, GPT).await;
    let got = got.expect("stream after retry");
    assert_eq!(got.text, ANSWER);
    assert_eq!(fake.request_count(), 2);
    assert!(
        waited >= Duration::from_millis(950),
        "retry-after ignored: {waited:?}"
    );
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn rate_limit_exhausts_retries() {
    let message = "This request would exceed the rate limit for your organization";
    let (fake, err, took) = anthropic_rate_limited(1, message).await;
    assert!(err.to_string().contains("retry after 1 s"), "{err}");
    assert_eq!(fake.request_count(), 3, "1 try + max_retries (2)");
    assert!(took >= Duration::from_millis(1900), "{:?}", took);
}

#[tokio::test]
async fn quota_exhaustion_is_not_retried() {
    let fake = FakeProvider::start(vec![Reply::status(
        429,
        openai_error_body(
            "You exceeded your current quota, please check your plan.",
            "insufficient_quota",
            Some("insufficient_quota"),
        ),
    )]);
    let err = run(&client(&fake, Provider::OpenAi, Some(KEY)), &request(GPT))
        .await
        .expect_err("error");
    assert!(matches!(err, AiError::QuotaExceeded { .. }), "{err:?}");
    assert!(err.to_string().contains("quota"), "{err}");
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn anthropic_overloaded_529_is_retried() {
    let script = vec![
        Reply::status(529, anthropic_error_body("overloaded_error", "Overloaded")),
        Reply::sse(anthropic_frames(&answer_chunks(), "end_turn", 40)),
    ];
    let (fake, got) = streamed(script, Provider::Anthropic, CLAUDE).await;
    assert_eq!(got.text, ANSWER);
    assert_eq!(fake.request_count(), 2);

    // Always overloaded: reported as such after the retries.
    let script = vec![Reply::status_with(
        529,
        &[("retry-after-ms", "20")],
        anthropic_error_body("overloaded_error", "Overloaded"),
    )];
    let (fake, err) = refused(script, Provider::Anthropic, CLAUDE).await;
    assert!(
        matches!(
            err,
            AiError::Overloaded {
                provider: "Anthropic"
            }
        ),
        "{err:?}"
    );
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn server_error_obeys_x_should_retry_false() {
    let script = vec![
        Reply::status_with(
            500,
            &[("x-should-retry", "false")],
            anthropic_error_body("api_error", "Internal server error"),
        ),
        Reply::sse(anthropic_frames(&["never"], "end_turn", 1)),
    ];
    let (fake, err) = refused(script, Provider::Anthropic, CLAUDE).await;
    assert!(
        matches!(err, AiError::Server { status: 500, .. }),
        "{err:?}"
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn error_event_before_first_text_is_retried() {
    let mut broken = anthropic_frames(&Vec::<String>::new(), "end_turn", 1);
    broken.truncate(2); // message_start, content_block_start
    broken.push(anthropic_error_event("overloaded_error", "Overloaded"));
    let mut silent_cut = anthropic_frames(&Vec::<String>::new(), "end_turn", 1);
    silent_cut.truncate(3); // message_start, content_block_start, ping; then the socket closes
    let script = vec![
        Reply::sse_cut(broken.clone(), broken.len()),
        Reply::sse_cut(silent_cut.clone(), silent_cut.len()),
        Reply::sse(anthropic_frames(&answer_chunks(), "end_turn", 40)),
    ];
    let (fake, got) = streamed(script, Provider::Anthropic, CLAUDE).await;
    assert_eq!(got.text, ANSWER, "no text from the failed attempts");
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn retry_hint_over_a_minute_is_reported_not_awaited() {
    let message = "Number of request tokens has exceeded your per-minute rate limit";
    let (fake, _err, took) = anthropic_rate_limited(120, message).await;
    assert_eq!(fake.request_count(), 1);
    // Far below the 120 s asked for: the error is returned, not waited out.
    assert!(took < Duration::from_secs(10));
}

#[tokio::test]
async fn connect_error_is_retried_then_reported() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    }; // closed again: connections are refused
    let env = HashMap::from([
        (
            "OPENAI_BASE_URL".to_string(),
            format!("http://127.0.0.1:{port}/v1?token=abc"),
        ),
        ("OPENAI_API_KEY".to_string(), KEY.to_string()),
    ]);
    let mut config = AiConfig::resolve(&env, &HashMap::new(), &HashMap::new());
    config.max_retries = 1;
    let t0 = Instant::now();
    let err = run(&AiClient::new(config), &request("openai/gpt-4.1"))
        .await
        .expect_err("error");
    assert!(matches!(err, AiError::Connect { .. }), "{err:?}");
    let shown = err.to_string();
    assert!(
        shown.contains(&format!("127.0.0.1:{port}/v1/chat/completions")),
        "{shown}"
    );
    assert!(
        !shown.contains("token=abc") && !shown.contains(KEY),
        "{shown}"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "one backoff: {:?}",
        t0.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Failures inside the stream

#[tokio::test]
async fn overloaded_event_after_text_is_stream_error() {
    let mut frames = anthropic_frames(
        &["<file path=\"src/A.jsx\">", "export const A"],
        "end_turn",
        9,
    );
    frames.truncate(5); // start, block start, ping, two deltas
    frames.push(anthropic_error_event("overloaded_error", "Overloaded"));
    let fake = FakeProvider::start(vec![
        Reply::sse_cut(frames.clone(), frames.len()),
        Reply::sse(anthropic_frames(&["never"], "end_turn", 1)),
    ]);
    let mut s = client(&fake, Provider::Anthropic, Some(KEY))
        .stream(
            &request("anthropic/claude-sonnet-4-5"),
            CancellationToken::new(),
        )
        .await
        .expect("stream begins");
    let got = drain(&mut s).await;
    assert_eq!(got.text, "<file path=\"src/A.jsx\">export const A");
    match got.error {
        Some(AiError::StreamError { ref kind, .. }) => assert_eq!(kind, "overloaded_error"),
        other => panic!("expected StreamError, got {other:?}"),
    }
    assert_eq!(fake.request_count(), 1, "never retried after text");
}

#[tokio::test]
async fn cut_mid_stream_is_stream_cut() {
    let chunks = answer_chunks();
    #[rustfmt::skip]
    let cases = [
        (Provider::Anthropic, CLAUDE, anthropic_frames(&chunks, "end_turn", 9), "message_stop"),
        (Provider::OpenAi, GPT, openai_frames(&chunks, "stop"), "[DONE]"),
        (Provider::Google, GEMINI, gemini_frames(&chunks, "STOP"), "finishReason"),
    ];
    for (provider, model, frames, marker) in cases {
        // Abrupt close (no final HTTP chunk) and a clean end of the body without the marker.
        let mut clean = frames.clone();
        clean.truncate(6);
        let fake = FakeProvider::start(vec![Reply::sse_cut(frames, 6), Reply::sse(clean)]);
        let client = client(&fake, provider, Some(KEY));
        for _ in 0..2 {
            let got = run(&client, &request(model)).await.expect("stream begins");
            assert!(
                !got.text.is_empty() && got.text.len() < ANSWER.len(),
                "{provider:?}: {}",
                got.text
            );
            assert!(ANSWER.starts_with(&got.text));
            assert_eq!(got.stop, None);
            let err = got.error.expect("cut reported");
            assert!(matches!(err, AiError::StreamCut { .. }), "{err:?}");
            let shown = err.to_string();
            assert!(
                shown.contains("broke off") && shown.contains(marker),
                "{shown}"
            );
        }
        assert_eq!(fake.request_count(), 2);
    }
}

// ---------------------------------------------------------------------------------------------
// Cancellation and deadlines

fn cancel_after(token: &CancellationToken, after: Duration) -> Arc<Mutex<Option<Instant>>> {
    let at = Arc::new(Mutex::new(None));
    let (t, a) = (token.clone(), at.clone());
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        *a.lock().expect("lock") = Some(Instant::now());
        t.cancel();
    });
    at
}

#[tokio::test]
async fn cancel_while_server_hangs_returns_at_once() {
    let fake = FakeProvider::start(vec![Reply::Hang]);
    let c = client(&fake, Provider::Anthropic, Some(KEY));
    let token = CancellationToken::new();
    let at = cancel_after(&token, Duration::from_millis(200));
    let r = c
        .stream(&request("anthropic/claude-sonnet-4-5"), token)
        .await;
    let returned = Instant::now();
    assert!(matches!(r, Err(AiError::Cancelled)), "{r:?}");
    let cancelled = at.lock().expect("lock").expect("cancel fired");
    let took = returned.duration_since(cancelled);
    // Measured in `benches/generate.rs` [4]; here only "at once, not when the server gives up".
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn cancel_during_slow_stream_stops_within_100ms() {
    let mut frames = anthropic_frames(&answer_chunks(), "end_turn", 9);
    // The first text at once, then one frame every 400 ms: only a cancel that interrupts the
    // read (not one noticed at the next frame) ends within 100 ms.
    let head: String = frames.drain(..4).collect();
    frames.insert(0, head);
    let fake = FakeProvider::start(vec![Reply::sse_slow(frames, Duration::from_millis(400))]);
    let c = client(&fake, Provider::Anthropic, Some(KEY));
    let token = CancellationToken::new();
    let mut s = c
        .stream(&request("anthropic/claude-sonnet-4-5"), token.clone())
        .await
        .expect("stream begins");
    let first = s.next().await;
    assert!(matches!(first, Some(Ok(StreamEvent::Text(_)))), "{first:?}");
    let at = cancel_after(&token, Duration::from_millis(60));
    let mut texts = 0;
    let outcome = loop {
        match s.next().await {
            Some(Ok(StreamEvent::Text(_))) => texts += 1,
            other => break other,
        }
    };
    let returned = Instant::now();
    assert!(
        matches!(outcome, Some(Err(AiError::Cancelled))),
        "{outcome:?}"
    );
    let took = returned.duration_since(at.lock().expect("lock").expect("cancel fired"));
    // Measured in `benches/generate.rs` [4]; here only "at once, not when the server gives up".
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(texts, 0, "kept reading after cancel");
    assert!(s.next().await.is_none(), "nothing after cancel");
}

#[tokio::test]
async fn cancel_drops_text_already_received() {
    // The whole answer in one write: after `stream()` every text is already queued.
    let all: String = anthropic_frames(&answer_chunks(), "end_turn", 9).concat();
    let fake = FakeProvider::start(vec![Reply::sse(vec![all])]);
    let token = CancellationToken::new();
    let mut s = client(&fake, Provider::Anthropic, Some(KEY))
        .stream(&request("anthropic/claude-sonnet-4-5"), token.clone())
        .await
        .expect("stream begins");
    assert!(matches!(s.next().await, Some(Ok(StreamEvent::Text(_)))));
    token.cancel();
    assert!(matches!(s.next().await, Some(Err(AiError::Cancelled))));
    assert!(s.next().await.is_none());
}

#[tokio::test]
async fn total_deadline_bounds_a_silent_server() {
    let fake = FakeProvider::start(vec![Reply::Hang]);
    let mut config = fake.config(Provider::OpenAi, Some(KEY));
    config.total_deadline = Duration::from_millis(300);
    let t0 = Instant::now();
    let err = run(&AiClient::new(config), &request("openai/gpt-4.1"))
        .await
        .expect_err("error");
    assert!(matches!(err, AiError::Timeout { seconds: 1 }), "{err:?}");
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Secrets, ids, configuration

/// Every error a scenario above can produce, with servers that echo the key back, formatted
/// both ways: the key must never show.
#[tokio::test]
async fn no_error_or_debug_output_contains_the_key() {
    let echo = format!("bad key {KEY} (Bearer {KEY})");
    let anthropic = |kind: &str| anthropic_error_body(kind, &echo);
    let anthropic_cut = broken_after(
        anthropic_frames(&["text "], "end_turn", 1),
        4,
        anthropic_error_event("invalid_request_error", &echo),
    );
    let openrouter_cut = broken_after(
        openrouter_frames(&["text "], "stop"),
        6,
        openrouter_error_frame(json!(500), &echo),
    );
    #[rustfmt::skip]
    let scenarios: Vec<(Provider, &str, Reply)> = vec![
        (Provider::Anthropic, CLAUDE, Reply::status(401, anthropic("authentication_error"))),
        (Provider::Anthropic, CLAUDE, Reply::status(403, anthropic("permission_error"))),
        (Provider::Anthropic, "anthropic/claude-nope", Reply::status(404, anthropic("not_found_error"))),
        (Provider::Anthropic, CLAUDE, Reply::status(400, anthropic("invalid_request_error"))),
        (Provider::Anthropic, CLAUDE, Reply::status(402, anthropic("billing_error"))),
        (Provider::OpenAi, GPT, Reply::status_with(429, &[("retry-after-ms", "10")], openai_error_body(&echo, "tokens", Some("rate_limit_exceeded")))),
        (Provider::OpenAi, GPT, Reply::status_with(500, &[("x-should-retry", "false")], openai_error_body(&echo, "server_error", None))),
        (Provider::OpenAi, GPT, Reply::status(418, format!("<html>{echo}</html>"))),
        (Provider::Google, GEMINI, Reply::status(400, gemini_key_invalid_body())),
        (Provider::Google, GEMINI, Reply::status(400, gemini_error_body(400, "INVALID_ARGUMENT", &echo))),
        (Provider::Anthropic, CLAUDE, Reply::sse_cut(anthropic_cut, 5)),
        (Provider::OpenRouter, "openrouter/openai/gpt-4o", Reply::sse_cut(openrouter_cut, 7)),
        (Provider::OpenAi, GPT, Reply::sse_cut(openai_frames(&["a", "b", "c"], "stop"), 2)),
    ];
    let mut seen = Vec::new();
    for (provider, model, reply) in scenarios {
        let fake = FakeProvider::start(vec![reply]);
        let mut config = fake.config(provider, Some(KEY));
        config.max_retries = 0;
        let c = AiClient::new(config.clone());
        let err = match run(&c, &request(model)).await {
            Err(e) => e,
            Ok(got) => got.error.unwrap_or_else(|| panic!("{model}: no error")),
        };
        seen.push(std::mem::discriminant(&err));
        let all = format!(
            "{} | {:?} | {:?} | {:?}",
            error_text(&err),
            config,
            c,
            config.describe()
        );
        assert!(!all.contains(KEY), "key leaked in {all}");
    }
    // Errors produced without a server: missing key, unknown provider, bad id, connect.
    let mut others = vec![
        ModelId::parse("nope/x").expect_err("unknown provider"),
        ModelId::parse("anthropic").expect_err("invalid id"),
    ];
    let empty = AiClient::new(AiConfig::resolve(
        &HashMap::new(),
        &HashMap::new(),
        &HashMap::new(),
    ));
    others.push(
        run(&empty, &request("anthropic/claude-sonnet-4-5"))
            .await
            .expect_err("missing key"),
    );
    let env = HashMap::from([
        (
            "OPENAI_BASE_URL".to_string(),
            "http://127.0.0.1:9/v1".to_string(),
        ),
        ("OPENAI_API_KEY".to_string(), KEY.to_string()),
    ]);
    let mut config = AiConfig::resolve(&env, &HashMap::new(), &HashMap::new());
    config.max_retries = 0;
    others.push(
        run(&AiClient::new(config), &request("openai/gpt-4.1"))
            .await
            .expect_err("connect"),
    );
    for err in &others {
        assert!(!error_text(err).contains(KEY), "{}", error_text(err));
    }
    assert!(seen.len() >= 10);
}

#[test]
fn model_ids_parse_and_print() {
    let m = ModelId::parse("openrouter/anthropic/claude-sonnet-4.5").expect("parse");
    assert_eq!(m.provider, Provider::OpenRouter);
    assert_eq!(m.model, "anthropic/claude-sonnet-4.5");
    assert_eq!(m.to_string(), "openrouter/anthropic/claude-sonnet-4.5");
    assert_eq!(
        ModelId::parse("gemini/gemini-2.5-flash")
            .expect("alias")
            .provider,
        Provider::Google
    );
    assert_eq!(
        ModelId::parse(" Anthropic/claude-opus-4-7 ")
            .expect("case")
            .to_string(),
        "anthropic/claude-opus-4-7"
    );
    let err = ModelId::parse("mistral/large").expect_err("unknown");
    assert!(
        matches!(err, AiError::UnknownProvider(ref p) if p == "mistral"),
        "{err:?}"
    );
    for id in [
        "anthropic",
        "openai",
        "google",
        "groq",
        "openrouter",
        "ollama",
        "compatible",
    ] {
        assert!(err.to_string().contains(id), "{err}");
    }
    for bad in ["claude", "anthropic/", "/model", ""] {
        assert!(ModelId::parse(bad).is_err(), "{bad}");
    }
    for p in Provider::ALL {
        assert_eq!(Provider::from_id(p.id()), Some(p));
        assert_eq!(
            ModelId::parse(&format!("{}/m", p.id()))
                .expect("round trip")
                .provider,
            p
        );
    }
}

#[test]
fn config_settings_override_env_and_describe_hides_keys() {
    let env = HashMap::from([
        (
            "ANTHROPIC_API_KEY".to_string(),
            "env-anthropic-key-123".to_string(),
        ),
        ("OPENAI_API_KEY".to_string(), KEY.to_string()),
        (
            "OPENAI_BASE_URL".to_string(),
            "https://proxy.example/v1/".to_string(),
        ),
        ("DEFAULT_AI_MODEL".to_string(), "openai/gpt-4.1".to_string()),
        ("MAX_TOKENS".to_string(), "4096".to_string()),
    ]);
    let base_urls = HashMap::from([(
        "anthropic".to_string(),
        "https://gateway.example".to_string(),
    )]);
    let api_keys = HashMap::from([(
        "anthropic".to_string(),
        "settings-anthropic-key-456".to_string(),
    )]);
    let c = AiConfig::resolve(&env, &base_urls, &api_keys);
    let a = &c.providers[&Provider::Anthropic];
    assert_eq!(
        a.api_key.as_ref().map(|k| k.expose()),
        Some("settings-anthropic-key-456")
    );
    assert_eq!(a.key_source, "settings apiKeys.anthropic");
    assert_eq!(a.base_url.as_deref(), Some("https://gateway.example"));
    let o = &c.providers[&Provider::OpenAi];
    assert_eq!(o.key_source, "OPENAI_API_KEY");
    assert_eq!(o.base_url.as_deref(), Some("https://proxy.example/v1"));
    assert_eq!(
        c.providers[&Provider::Google].base_url.as_deref(),
        Some("https://generativelanguage.googleapis.com")
    );
    assert_eq!(c.providers[&Provider::Compatible].base_url, None);
    assert_eq!(c.max_tokens, 4096);
    assert_eq!(c.temperature, Some(0.7));
    assert_eq!(c.max_retries, 2);
    assert_eq!(c.total_deadline, Duration::from_secs(300));

    let d = c.describe();
    let text = d.to_string();
    assert!(
        !text.contains(KEY)
            && !text.contains("settings-anthropic-key")
            && !text.contains("env-anthropic-key"),
        "{text}"
    );
    let list = d.as_array().expect("array");
    assert_eq!(list.len(), 7);
    let find = |id: &str| {
        list.iter()
            .find(|p| p["provider"] == id)
            .expect("provider")
            .clone()
    };
    assert_eq!(find("openai")["default"], true);
    assert_eq!(find("openai")["configured"], true);
    assert_eq!(find("anthropic")["keySource"], "settings apiKeys.anthropic");
    assert_eq!(find("google")["configured"], false);
    assert_eq!(find("google")["keyPresent"], false);
    assert_eq!(find("google")["keySource"], "GEMINI_API_KEY");
    assert_eq!(find("ollama")["configured"], true, "no key needed");
    assert_eq!(find("compatible")["configured"], false);
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains(KEY) && !dbg.contains("settings-anthropic-key"),
        "{dbg}"
    );
}
