//! `builder.generate` end to end: the real binary over stdio, a loopback fake provider speaking
//! each wire format, the harness answering `workspace/applyEdit` like an editor.

mod common;
mod fakes;

use std::path::Path;
use std::time::{Duration, Instant};

use builder_lsp::ai::Provider;
use common::*;
use fakes::*;
use serde_json::{json, Value};

const KEY: &str = "sk-test-SECRET-4242-do-not-leak";

const HERO: &str = "export default function Hero() {\n  return <section className=\"p-8\"><h1 className=\"text-4xl\">Fresh coffee</h1></section>;\n}\n";
const APP: &str = "import Hero from './components/Hero.jsx';\n\nexport default function App() {\n  return <main><Hero /></main>;\n}\n";

fn two_files() -> String {
    format!(
        "Here it is.\n{}{}<package>framer-motion</package>\n<explanation>A hero and the app shell.</explanation>\n",
        file_block("src/components/Hero.jsx", HERO),
        file_block("src/App.jsx", APP)
    )
}

fn model_for(p: Provider) -> &'static str {
    match p {
        Provider::Anthropic => "anthropic/claude-sonnet-4-5",
        Provider::OpenAi => "openai/gpt-4.1",
        Provider::Google => "google/gemini-2.5-flash",
        Provider::Groq => "groq/openai/gpt-oss-120b",
        Provider::OpenRouter => "openrouter/anthropic/claude-sonnet-4.5",
        Provider::Ollama => "ollama/qwen2.5-coder",
        Provider::Compatible => "compatible/local-model",
    }
}

fn server(fake: &FakeProvider, p: Provider, dir: &Path) -> TestServer {
    let mut o = vscode()
        .folder(dir)
        .env(p.base_var(), &fake.base_url_for(p))
        .env("DEFAULT_AI_MODEL", model_for(p));
    if let Some(var) = p.key_var() {
        o = o.env(var, KEY);
    }
    TestServer::start(o)
}

fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    // The answers' `<package>framer-motion</package>` is declared already: no npm run here
    // (installs have their own tests in tests/packages.rs).
    std::fs::write(
        d.path().join("package.json"),
        "{\"name\":\"app\",\"dependencies\":{\"framer-motion\":\"^11.0.0\"}}\n",
    )
    .unwrap();
    d
}

/// A fresh project, a fake answering `script`, and a server using it through `p`.
fn started(p: Provider, script: Vec<Reply>) -> (tempfile::TempDir, FakeProvider, TestServer) {
    let dir = project();
    let fake = FakeProvider::start(script);
    let s = server(&fake, p, dir.path());
    (dir, fake, s)
}

/// Polls `builder.task.status` every `every` while the task runs, until `deadline`; the last
/// status (`Null` if none was taken before the deadline).
fn settled(s: &TestServer, id: &str, deadline: Instant, every: Duration) -> Value {
    let mut st = Value::Null;
    while Instant::now() < deadline {
        st = s
            .execute("builder.task.status", json!({"taskId": id}))
            .unwrap();
        if st["state"] != "running" {
            break;
        }
        std::thread::sleep(every);
    }
    st
}

/// `builder.generate {prompt: "coffee page", wait: true}`.
fn coffee_page(s: &TestServer) -> Value {
    generate(s, json!({"prompt": "coffee page", "wait": true}))
}

/// The first error of a result, which must say `part`.
fn assert_first_error_says(r: &Value, part: &str) {
    let err = r["errors"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no error: {r:#}"));
    assert!(err.contains(part), "{r:#}");
}

/// `coffee_page` against a fake answering `frames` through `p`: both files land. The fake.
fn both_files_land(p: Provider, frames: Vec<String>) -> FakeProvider {
    let (dir, fake, s) = started(p, vec![Reply::sse(frames)]);
    let r = coffee_page(&s);
    assert_two_files_landed(dir.path(), &r);
    s.shutdown();
    fake
}

/// Hero landed whole, and App.jsx (incomplete) not at all.
fn assert_only_hero_landed(dir: &Path) {
    assert_eq!(read(dir, "src/components/Hero.jsx"), HERO);
    assert!(!dir.join("src/App.jsx").exists(), "a half App.jsx landed");
}

fn generate(s: &TestServer, args: Value) -> Value {
    s.execute("builder.generate", args)
        .unwrap_or_else(|e| panic!("builder.generate failed: {e}"))
}

fn assert_no_key_leak(s: &TestServer) {
    assert!(!s.stderr().contains(KEY), "the key appeared in stderr");
    for m in s.messages() {
        assert!(
            !m.to_string().contains(KEY),
            "the key appeared in a message: {m}"
        );
    }
}

fn assert_two_files_landed(dir: &Path, r: &Value) {
    assert_eq!(read(dir, "src/components/Hero.jsx"), HERO);
    assert_eq!(read(dir, "src/App.jsx"), APP);
    assert_eq!(r["applied"], json!(true), "{r:#}");
    assert_eq!(r["errors"], json!([]), "{r:#}");
    assert_eq!(r["truncated"], json!([]), "{r:#}");
    assert_eq!(r["packages"], json!(["framer-motion"]), "{r:#}");
    assert_eq!(
        r["explanation"],
        json!("A hero and the app shell."),
        "{r:#}"
    );
    let files = r["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{r:#}");
    assert_eq!(
        files[0],
        json!({"path": "src/components/Hero.jsx", "bytes": HERO.len(), "complete": true})
    );
    for k in ["commands", "model", "usage", "truncated", "applied"] {
        assert!(r.get(k).is_some(), "result lacks {k}: {r:#}");
    }
    // The message's count is what landed, so it agrees with its parts, in the right number.
    let n = |k: &str| r[k].as_array().map(Vec::len).unwrap_or(0);
    let (c, u) = (n("filesCreated"), n("filesUpdated"));
    assert_eq!(c + u, 2, "{r:#}");
    assert_eq!(
        r["message"],
        json!(format!("Generated 2 files: {c} created, {u} updated")),
        "{r:#}"
    );
}

#[test]
fn openai_full_speed_applies_every_file_with_progress() {
    let text = two_files();
    let (dir, fake, s) = started(
        Provider::OpenAi,
        vec![Reply::sse(openai_frames(&chunk_text(&text, 7), "stop"))],
    );
    let r = s
        .execute_with_token(
            "builder.generate",
            json!({"prompt": "a landing page for a coffee shop", "wait": true}),
            "gen-1",
        )
        .unwrap();
    assert_two_files_landed(dir.path(), &r);
    assert_eq!(r["model"], "openai/gpt-4.1");
    assert_eq!(r["usage"]["inputTokens"], json!(INPUT_TOKENS), "{r:#}");
    assert!(r["usage"]["outputTokens"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(r["stopReason"], "end_turn");
    let req = fake.single_request();
    assert_eq!(req.path, "/v1/chat/completions");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert!(req
        .body
        .to_string()
        .contains("a landing page for a coffee shop"));
    let progress = s.progress_ended("gen-1");
    assert_eq!(progress.first().unwrap()["kind"], "begin");
    assert_eq!(progress.last().unwrap()["kind"], "end");
    assert!(
        progress.iter().any(|p| p["kind"] == "report"
            && p["message"]
                .as_str()
                .unwrap_or("")
                .contains("src/components/Hero.jsx")),
        "{progress:#?}"
    );
    // The conversation has the request and the edit.
    let conv = s.execute("builder.conversation.get", json!({})).unwrap();
    assert_eq!(
        conv["messages"][0]["content"],
        "a landing page for a coffee shop"
    );
    assert_eq!(conv["edits"].as_array().unwrap().len(), 1);
    assert_no_key_leak(&s);
    s.shutdown();
}

#[test]
fn anthropic_slow_stream_applies_the_first_file_while_the_second_is_written() {
    let text = two_files();
    let split = text.find("<file path=\"src/App.jsx\">").unwrap() + 30;
    let (a, b) = text.split_at(split);
    let mut chunks = chunk_text(a, 40);
    let n_first = chunks.len();
    chunks.extend(chunk_text(b, 40));
    let frames = anthropic_frames(&chunks, "end_turn", 120);
    let (dir, fake, s) = started(
        Provider::Anthropic,
        vec![Reply::sse_slow(frames, Duration::from_millis(60))],
    );
    let started = generate(&s, json!({"prompt": "coffee page"}));
    assert_eq!(started["started"], json!(true));
    let id = started["taskId"].as_str().unwrap().to_string();
    assert!(
        s.wait_for_method("workspace/applyEdit", Duration::from_secs(10)),
        "no edit arrived"
    );
    let st = s
        .execute("builder.task.status", json!({"taskId": id}))
        .unwrap();
    assert_eq!(
        st["state"], "running",
        "the first file should land while the model still writes"
    );
    assert!(n_first > 3);
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = settled(&s, &id, deadline, Duration::from_millis(50));
    assert_eq!(done["state"], "done", "{done:#}");
    assert_two_files_landed(dir.path(), &done["result"]);
    assert_eq!(s.edits().len(), 2, "one applyEdit per file, as each closed");
    let req = fake.single_request();
    assert_eq!(req.path, "/v1/messages");
    assert_eq!(req.header("x-api-key"), Some(KEY));
    assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
    assert!(
        s.wait_for_method("window/showMessage", Duration::from_secs(5)),
        "a summary message at the end"
    );
    assert_no_key_leak(&s);
    s.shutdown();
}

fn truncated_answer() -> (String, String) {
    let first = format!(
        "{}<file path=\"src/App.jsx\">\nimport Hero from './components/Hero.jsx';\n\nexport default function App() {{\n  return <main>",
        file_block("src/components/Hero.jsx", HERO)
    );
    let continuation = file_block("src/App.jsx", APP);
    (first, continuation)
}

#[test]
fn max_tokens_truncation_is_completed_by_one_follow_up() {
    let (first, cont) = truncated_answer();
    let (dir, fake, s) = started(
        Provider::Anthropic,
        vec![
            Reply::sse(anthropic_frames(&chunk_text(&first, 9), "max_tokens", 8000)),
            Reply::sse(anthropic_frames(&chunk_text(&cont, 9), "end_turn", 100)),
        ],
    );
    let r = coffee_page(&s);
    assert_eq!(r["continued"], json!(["src/App.jsx"]), "{r:#}");
    assert_eq!(r["truncated"], json!([]), "{r:#}");
    assert_eq!(read(dir.path(), "src/App.jsx"), APP);
    assert_eq!(read(dir.path(), "src/components/Hero.jsx"), HERO);
    assert_eq!(fake.request_count(), 2);
    let follow = &fake.requests()[1];
    assert!(
        follow.body.to_string().contains("src/App.jsx"),
        "the follow-up names the file"
    );
    s.shutdown();
}

#[test]
fn truncated_file_is_not_applied_without_continuation() {
    let (first, _) = truncated_answer();
    let (dir, fake, s) = started(
        Provider::OpenAi,
        vec![Reply::sse(openai_frames(&chunk_text(&first, 9), "length"))],
    );
    let r = generate(
        &s,
        json!({"prompt": "coffee page", "wait": true, "continueTruncated": false}),
    );
    assert_eq!(r["stopReason"], "max_tokens", "{r:#}");
    assert_eq!(r["truncated"], json!(["src/App.jsx"]), "{r:#}");
    assert!(
        !dir.path().join("src/App.jsx").exists(),
        "a half file must never land"
    );
    assert_eq!(read(dir.path(), "src/components/Hero.jsx"), HERO);
    assert_eq!(
        r["message"],
        json!("Generated 1 file: 1 created, 0 updated, 1 skipped; truncated, not applied: src/App.jsx"),
        "{r:#}"
    );
    assert_skipped(&r, "src/App.jsx", "truncated");
    assert_eq!(fake.request_count(), 1);
    s.shutdown();
}

#[test]
fn rate_limit_with_retry_after_then_success() {
    let text = two_files();
    let (dir, fake, s) = started(
        Provider::OpenAi,
        vec![
            Reply::status_with(
                429,
                &[("retry-after", "1")],
                openai_error_body(
                    "Rate limit reached",
                    "rate_limit_exceeded",
                    Some("rate_limit_exceeded"),
                ),
            ),
            Reply::sse(openai_frames(&chunk_text(&text, 11), "stop")),
        ],
    );
    let t = Instant::now();
    let r = coffee_page(&s);
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "retry-after was not honoured"
    );
    assert_two_files_landed(dir.path(), &r);
    assert_eq!(fake.request_count(), 2);
    s.shutdown();
}

#[test]
fn rejected_key_says_which_variable_and_never_shows_it() {
    let (_dir, fake, s) = started(
        Provider::Anthropic,
        vec![Reply::status(
            401,
            anthropic_error_body("authentication_error", "invalid x-api-key"),
        )],
    );
    let r = coffee_page(&s);
    let err = r["errors"][0].as_str().unwrap();
    assert!(
        err.contains("ANTHROPIC_API_KEY") && err.contains("rejected"),
        "{err}"
    );
    assert_eq!(r["files"], json!([]));
    assert_eq!(r["applied"], json!(false));
    assert_eq!(fake.request_count(), 1, "401 is not retried");
    // And as a task: the summary arrives as an Error message.
    let started = generate(&s, json!({"prompt": "again"}));
    assert_eq!(started["started"], json!(true));
    assert!(s.wait_for(
        |m| m
            .iter()
            .any(|m| m["method"] == "window/showMessage" && m["params"]["type"] == 1),
        Duration::from_secs(10)
    ));
    assert_no_key_leak(&s);
    s.shutdown();
}

#[test]
fn overloaded_error_mid_stream_applies_only_complete_files() {
    let (first, _) = truncated_answer();
    let mut frames = anthropic_frames(&chunk_text(&first, 9), "end_turn", 10);
    // Replace the tail (message_delta/stop) with an in-stream error.
    frames.truncate(frames.len() - 3);
    frames.push(anthropic_error_event("overloaded_error", "Overloaded"));
    let (dir, _fake, s) = started(Provider::Anthropic, vec![Reply::sse(frames)]);
    let r = coffee_page(&s);
    let err = r["errors"][0].as_str().unwrap();
    assert!(
        err.contains("src/components/Hero.jsx") && err.contains("src/App.jsx"),
        "{err}"
    );
    assert!(err.contains("incomplete"), "{err}");
    assert_only_hero_landed(dir.path());
    assert_eq!(r["stopReason"], "error");
    s.shutdown();
}

#[test]
fn connection_cut_mid_file_applies_nothing_incomplete() {
    let text = two_files();
    let frames = openai_frames(&chunk_text(&text, 10), "stop");
    let cut = frames.len() * 3 / 4;
    let (dir, _fake, s) = started(Provider::OpenAi, vec![Reply::sse_cut(frames, cut)]);
    let r = coffee_page(&s);
    assert_first_error_says(&r, "broke off");
    assert_only_hero_landed(dir.path());
    s.shutdown();
}

#[test]
fn openrouter_comment_lines_are_ignored_and_error_frames_reported() {
    let text = two_files();
    both_files_land(
        Provider::OpenRouter,
        openrouter_frames(&chunk_text(&text, 13), "stop"),
    );

    let (first, _) = truncated_answer();
    let mut frames: Vec<String> = chunk_text(&first, 13)
        .iter()
        .map(|c| openai_content_frame(c))
        .collect();
    frames.push(openrouter_error_frame(
        json!(502),
        "Provider returned error",
    ));
    let (dir, _fake, s) = started(Provider::OpenRouter, vec![Reply::sse(frames)]);
    let r = coffee_page(&s);
    assert_first_error_says(&r, "Provider returned error");
    assert_only_hero_landed(dir.path());
    s.shutdown();
}

#[test]
fn gemini_stream_applies_files() {
    let text = two_files();
    let fake = both_files_land(
        Provider::Google,
        gemini_frames(&chunk_text(&text, 50), "STOP"),
    );
    let req = fake.single_request();
    assert!(
        req.path.contains(":streamGenerateContent?alt=sse"),
        "{}",
        req.path
    );
    assert_eq!(req.header("x-goog-api-key"), Some(KEY));
}

#[test]
fn cancelling_a_task_stops_the_stream_and_applies_nothing_incomplete() {
    let (first, _) = truncated_answer();
    let mut chunks = chunk_text(&first, 5);
    chunks.extend(std::iter::repeat_n("x".to_string(), 400));
    let (dir, _fake, s) = started(
        Provider::Anthropic,
        vec![Reply::sse_slow(
            anthropic_frames(&chunks, "end_turn", 10),
            Duration::from_millis(20),
        )],
    );
    let started = generate(&s, json!({"prompt": "coffee page"}));
    let id = started["taskId"].as_str().unwrap().to_string();
    assert!(
        s.wait_for_method("workspace/applyEdit", Duration::from_secs(10)),
        "Hero landed"
    );
    // A second generation in the same project is refused while the first runs.
    let busy = s
        .execute("builder.generate", json!({"prompt": "more"}))
        .unwrap_err();
    assert!(message(&busy).contains("busy"), "{busy}");
    let t = Instant::now();
    let c = s
        .execute("builder.task.cancel", json!({"taskId": id}))
        .unwrap();
    assert_eq!(c["cancelled"], json!(true));
    let st = settled(
        &s,
        &id,
        t + Duration::from_secs(5),
        Duration::from_millis(10),
    );
    // Cancelled well before the 400 remaining frames (8 s at 20 ms) would have arrived.
    assert_eq!(st["state"], "cancelled", "{st:#}");
    assert!(!dir.path().join("src/App.jsx").exists());
    assert_eq!(st["result"]["stopReason"], "cancelled");
    s.shutdown();
}

#[test]
fn cancel_request_then_generate_again_at_once_is_not_refused_as_busy() {
    let (dir, fake, s) = started(
        Provider::OpenAi,
        vec![
            Reply::Hang,
            Reply::sse(openai_frames(&chunk_text(&two_files(), 40), "stop")),
        ],
    );
    let id = s.send_request(
        "workspace/executeCommand",
        json!({"command": "builder.generate", "arguments": [{"prompt": "coffee", "model": model_for(Provider::OpenAi), "wait": true}]}),
    );
    let t = Instant::now();
    while fake.request_count() == 0 {
        assert!(t.elapsed() < Duration::from_secs(10), "no provider request");
        std::thread::sleep(Duration::from_millis(5));
    }
    s.notify("$/cancelRequest", json!({"id": id}));
    let err = s.wait_response(id, "cancelled generate").unwrap_err();
    assert_eq!(err["code"], json!(-32800), "{err}");
    // The editor retries straight away: the cancelled task winds down first, no "busy".
    let r = generate(
        &s,
        json!({"prompt": "coffee", "model": model_for(Provider::OpenAi), "wait": true}),
    );
    assert_two_files_landed(dir.path(), &r);
    assert_eq!(fake.request_count(), 2);
    s.shutdown();
}

/// A project holding `rel` with `before`, open in the editor of a server whose OpenAI fake
/// answers `answer`: (project, the file's path, fake, server).
fn with_open_file(
    rel: &str,
    before: &str,
    answer: &str,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    FakeProvider,
    TestServer,
) {
    let dir = project();
    let path = write_file(dir.path(), rel, before);
    let frames = openai_frames(&chunk_text(answer, 8), "stop");
    let fake = FakeProvider::start(vec![Reply::sse(frames)]);
    let s = server(&fake, Provider::OpenAi, dir.path());
    s.open(&path, before);
    (dir, path, fake, s)
}

#[test]
fn prompt_comment_code_action_generates_and_removes_the_comment() {
    let before = "export default function Hero() {\n  // @builder make the title red\n  return <h1>Hi</h1>;\n}\n";
    // The model keeps the comment in its copy; the server removes it in the same edit.
    let answer_text = file_block(
        "src/components/Hero.jsx",
        "export default function Hero() {\n  // @builder make the title red\n  return <h1 className=\"text-red-600\">Hi</h1>;\n}\n",
    );
    let (_dir, hero, fake, s) = with_open_file("src/components/Hero.jsx", before, &answer_text);
    let actions = s
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": file_uri(&hero)},
                "range": {"start": {"line": 1, "character": 0}, "end": {"line": 1, "character": 5}},
                "context": {"diagnostics": []}
            }),
        )
        .unwrap();
    let action = &actions[0];
    assert_eq!(action["title"], "Builder: make the title red");
    let mut args = action["command"]["arguments"][0].clone();
    args["wait"] = json!(true);
    let r = s
        .execute(action["command"]["command"].as_str().unwrap(), args)
        .unwrap();
    assert_eq!(r["errors"], json!([]), "{r:#}");
    assert_eq!(
        s.doc_text(&hero).unwrap(),
        "export default function Hero() {\n  return <h1 className=\"text-red-600\">Hi</h1>;\n}\n"
    );
    assert_eq!(
        s.edits().len(),
        1,
        "one edit: the change and the comment removal together"
    );
    let body = fake.single_request().body.to_string();
    assert!(
        body.contains("make the title red") && body.contains("Hero.jsx"),
        "primary file in context"
    );
    s.shutdown();
}

#[test]
fn prompt_comment_is_removed_even_when_the_model_changes_other_files() {
    let before = "{/* @builder add a footer */}\nexport default function App() { return null; }\n";
    let answer_text = file_block(
        "src/components/Footer.jsx",
        "export default function Footer() { return <footer/>; }\n",
    );
    let (dir, app, _fake, s) = with_open_file("src/App.jsx", before, &answer_text);
    let r = generate(
        &s,
        json!({"prompt": "add a footer", "uri": file_uri(&app), "commentLine": 0, "wait": true}),
    );
    assert_eq!(r["errors"], json!([]), "{r:#}");
    assert_eq!(
        s.doc_text(&app).unwrap(),
        "export default function App() { return null; }\n"
    );
    assert!(dir.path().join("src/components/Footer.jsx").exists());
    s.shutdown();
}

/// Streams `chunks` as OpenAI frames to a client that asked for deltas; returns the deltas'
/// texts once they add up to the whole answer (notifications may trail the answer:
/// tower-lsp-server merges them in no fixed order).
fn generate_with_deltas(chunks: &[String]) -> Vec<String> {
    let dir = project();
    let text = chunks.concat();
    let fake = FakeProvider::start(vec![Reply::sse(openai_frames(chunks, "stop"))]);
    let s = TestServer::start(
        vscode()
            .folder(dir.path())
            .init_options(json!({"streamDeltas": true}))
            .env("OPENAI_BASE_URL", &fake.base_url_for(Provider::OpenAi))
            .env("OPENAI_API_KEY", KEY),
    );
    let r = generate(
        &s,
        json!({"prompt": "coffee", "model": "openai/gpt-4.1", "wait": true}),
    );
    assert_eq!(r["errors"], json!([]), "{r}");
    let deltas = |m: &[Value]| -> Vec<String> {
        m.iter()
            .filter(|m| m["method"] == json!("builder/generationDelta"))
            .map(|d| d["params"]["text"].as_str().unwrap_or("").to_string())
            .collect()
    };
    s.wait_for(|m| deltas(m).concat() == text, Duration::from_secs(10));
    let got = deltas(&s.messages());
    s.shutdown();
    got
}

#[test]
fn generation_deltas_carry_the_raw_text_to_clients_that_ask() {
    let text = two_files();
    assert_eq!(generate_with_deltas(&chunk_text(&text, 6)).concat(), text);
}

/// A flat-out stream of thousands of one-token frames must not cost one notification per token
/// (each goes through the whole JSON-RPC path): deltas are coalesced, nothing is lost.
#[test]
fn generation_deltas_are_coalesced_not_one_per_token() {
    let mut text = String::from("<file path=\"src/Words.jsx\">\nexport const words = `");
    for i in 0..4000 {
        text.push_str(&format!("w{i} "));
    }
    text.push_str("`;\n</file>\n");
    let chunks: Vec<String> = text.split_inclusive(' ').map(str::to_string).collect();
    assert!(chunks.len() > 4000);
    let got = generate_with_deltas(&chunks);
    assert_eq!(got.concat(), text, "every token arrived, in order");
    assert!(
        got.len() * 20 < chunks.len(),
        "{} notifications for {} tokens: not coalesced",
        got.len(),
        chunks.len()
    );
    assert!(
        got.iter().all(|d| d.len() <= 8 * 1024 + 64),
        "a batch over 8 KB"
    );
}

#[test]
fn models_reports_keys_present_never_their_values() {
    let (_dir, _fake, s) = started(Provider::OpenAi, vec![Reply::Hang]);
    let m = s.execute("builder.models", json!({})).unwrap();
    assert_eq!(m["defaultModel"], "openai/gpt-4.1");
    assert!(m.to_string().contains("OPENAI_API_KEY"), "{m:#}");
    assert!(!m.to_string().contains(KEY), "{m:#}");
    s.shutdown();
}

#[test]
fn missing_key_is_refused_before_any_request() {
    let dir = project();
    let fake = FakeProvider::start(vec![Reply::Hang]);
    let s = TestServer::start(
        vscode()
            .folder(dir.path())
            .env("ANTHROPIC_BASE_URL", &fake.root_url()),
    );
    let e = s
        .execute(
            "builder.generate",
            json!({"prompt": "x", "model": "anthropic/claude-sonnet-4-5"}),
        )
        .unwrap_err();
    assert!(message(&e).contains("ANTHROPIC_API_KEY"), "{e}");
    let bad = s
        .execute(
            "builder.generate",
            json!({"prompt": "x", "model": "nope/model"}),
        )
        .unwrap_err();
    assert_eq!(code(&bad), -32602, "{bad}");
    assert!(message(&bad).contains("model"), "{bad}");
    let empty = s
        .execute("builder.generate", json!({"prompt": "  "}))
        .unwrap_err();
    assert!(message(&empty).contains("prompt"), "{empty}");
    assert_eq!(fake.request_count(), 0);
    s.shutdown();
}
