//! Inline completions: each fill-in-the-middle client against its loopback fake (exact request
//! fields, streamed answers), then the real binary over stdio like an editor:
//! `textDocument/inlineCompletion` and the `textDocument/completion` fallback, ranges in UTF-16
//! and UTF-8, post-processing, supersede and `$/cancelRequest` (the fake sees the connection
//! closed), cache hits, and a provider error giving an empty answer and one log line.

mod common;
mod fakes;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use builder_lsp::completion::context::{build, ContextOptions};
use builder_lsp::completion::fim::{self, Limits};
use builder_lsp::completion::{model, post, CompletionError, FimContext};
use common::*;
use fakes::fim::{FakeFim, FimReply, FimRequest};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The clients, one per wire format.

/// `|` marks the cursor.
fn ctx_at(doc: &str, path: &str, others: &[(String, String)]) -> FimContext {
    let at = doc.find('|').expect("cursor mark");
    let text = format!("{}{}", &doc[..at], &doc[at + 1..]);
    build(&text, at, path, others, &ContextOptions::default())
}

fn fetch(
    spec: &str,
    id: &str,
    fake: &FakeFim,
    key: Option<&str>,
    ctx: &FimContext,
) -> Result<String, CompletionError> {
    let base = match id {
        "compatible" | "openai" => format!("{}/v1", fake.url()),
        _ => fake.url(),
    };
    let urls: HashMap<String, String> = [(id.to_string(), base)].into();
    let keys: HashMap<String, String> = key
        .map(|k| (id.to_string(), k.to_string()))
        .into_iter()
        .collect();
    let ep = model::resolve(spec, &HashMap::new(), &urls, &keys).expect("endpoint");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = builder_lsp::ai::http_client();
    rt.block_on(fim::fetch(
        &http,
        &ep,
        ctx,
        Limits {
            max_tokens: 128,
            temperature: 0.2,
        },
    ))
}

const DOC: &str =
    "import { api } from './api';\n\nexport function load(id) {\n  return api.get(|);\n}\n";

/// A fake answering `text` (and expecting `key`), and `spec` fetched from it with `key` at
/// DOC's cursor (the provider id is the spec's first segment): the raw answer must be `text`
/// as it came. The request the fake saw.
fn fetch_at_doc(spec: &str, key: Option<&str>, text: &str) -> FimRequest {
    let fake = FakeFim::start(vec![FimReply::text(text)], key);
    let c = ctx_at(DOC, "src/load.ts", &[]);
    let id = spec.split('/').next().unwrap();
    let raw = fetch(spec, id, &fake, key, &c).unwrap();
    assert_eq!(raw, text, "{spec}");
    fake.requests().remove(0)
}

#[test]
fn llamacpp_infill_request_and_stream() {
    let fake = FakeFim::start(vec![FimReply::text("`/items/${id}`);")], None);
    let others = vec![(
        "src/api.ts".to_string(),
        "export const api = { get(path) { return fetch(path); } };".to_string(),
    )];
    let c = ctx_at(DOC, "src/load.ts", &others);
    let raw = fetch("llamacpp/any", "llamacpp", &fake, None, &c).unwrap();
    assert_eq!(raw, "`/items/${id}`);");
    assert_eq!(
        post::clean(&raw, &c),
        "`/items/${id}`",
        "the `);` after the cursor is not repeated"
    );
    let r = fake.requests().remove(0);
    assert_eq!(r.path, "/infill");
    assert_eq!(r.body["input_prefix"], json!(c.prefix));
    assert_eq!(r.body["input_suffix"], json!(");\n}\n"));
    assert_eq!(r.body["n_predict"], json!(128));
    assert_eq!(r.body["stream"], json!(true));
    assert_eq!(r.body["input_extra"][0]["filename"], json!("src/api.ts"));
    assert!(r.body["input_extra"][0]["text"]
        .as_str()
        .unwrap()
        .contains("get(path)"));
    assert!(r.header("authorization").is_none());
}

#[test]
fn compatible_completions_with_prompt_and_suffix() {
    let r = fetch_at_doc(
        "compatible/qwen2.5-coder",
        Some("sk-compat-123456"),
        "'/items/' + id",
    );
    assert_eq!(r.path, "/v1/completions");
    assert_eq!(r.header("authorization"), Some("Bearer sk-compat-123456"));
    assert_eq!(r.body["model"], json!("qwen2.5-coder"));
    assert!(r.body["prompt"]
        .as_str()
        .unwrap()
        .ends_with("  return api.get("));
    assert_eq!(r.body["suffix"], json!(");\n}\n"));
    assert_eq!(r.body["max_tokens"], json!(128));
    assert_eq!(r.body["stream"], json!(true));
}

#[test]
fn ollama_generate_with_suffix_ndjson() {
    let r = fetch_at_doc("ollama/qwen2.5-coder:1.5b", None, "`/items/${id}`");
    assert_eq!(r.path, "/api/generate");
    assert_eq!(r.body["model"], json!("qwen2.5-coder:1.5b"));
    assert_eq!(r.body["suffix"], json!(");\n}\n"));
    assert_eq!(r.body["raw"], json!(false));
    assert_eq!(r.body["stream"], json!(true));
    assert_eq!(r.body["options"]["num_predict"], json!(128));
}

#[test]
fn mistral_fim_completions_chat_shaped_chunks() {
    let r = fetch_at_doc(
        "mistral/codestral-latest",
        Some("mistral-key-abcdef"),
        "id.toString()",
    );
    assert_eq!(r.path, "/v1/fim/completions");
    assert_eq!(r.header("authorization"), Some("Bearer mistral-key-abcdef"));
    assert_eq!(r.body["model"], json!("codestral-latest"));
    assert_eq!(r.body["suffix"], json!(");\n}\n"));
    assert_eq!(r.body["max_tokens"], json!(128));
}

#[test]
fn deepseek_beta_completions_with_suffix() {
    let r = fetch_at_doc(
        "deepseek/deepseek-chat",
        Some("sk-deepseek-abcdef"),
        "`/u/${id}`",
    );
    assert_eq!(r.path, "/beta/completions");
    assert_eq!(r.body["model"], json!("deepseek-chat"));
    assert_eq!(r.body["suffix"], json!(");\n}\n"));
}

#[test]
fn chat_models_get_a_fim_prompt_and_their_fences_go() {
    let fake = FakeFim::start(
        vec![FimReply::text("```ts\n`/items/${id}`\n```")],
        Some("sk-openai-abcdef"),
    );
    let c = ctx_at(DOC, "src/load.ts", &[]);
    let raw = fetch(
        "openai/gpt-4.1-mini",
        "openai",
        &fake,
        Some("sk-openai-abcdef"),
        &c,
    )
    .unwrap();
    assert_eq!(post::clean(&raw, &c), "`/items/${id}`");
    let r = fake.requests().remove(0);
    assert_eq!(r.path, "/v1/chat/completions");
    let user = r.body["messages"][1]["content"].as_str().unwrap();
    assert!(user.contains("return api.get(<CURSOR>);"), "{user}");
    assert_eq!(r.body["messages"][0]["role"], json!("system"));

    let fake = FakeFim::start(
        vec![FimReply::text("`/items/${id}`")],
        Some("sk-ant-abcdef"),
    );
    let raw = fetch(
        "anthropic/claude-haiku-4-5",
        "anthropic",
        &fake,
        Some("sk-ant-abcdef"),
        &c,
    )
    .unwrap();
    assert_eq!(raw, "`/items/${id}`");
    assert_eq!(fake.requests()[0].path, "/v1/messages");
}

#[test]
fn reading_stops_once_the_line_is_done() {
    // Code follows the cursor on its line: one line is wanted, the rest is never read.
    let fake = FakeFim::start(
        vec![FimReply::Text {
            text: "a, b\nlots more text that should never be read\n".repeat(5),
            chunk: 8,
            first_delay: Duration::ZERO,
            delay: Duration::from_millis(30),
        }],
        None,
    );
    let c = ctx_at("call(|, c);\n", "a.js", &[]);
    let raw = fetch("llamacpp/any", "llamacpp", &fake, None, &c).unwrap();
    assert!(raw.len() < 40, "{raw:?}");
    assert_eq!(post::clean(&raw, &c), "a, b");
    let end = fake
        .wait_ended(0, Duration::from_secs(5))
        .expect("connection ended");
    assert!(
        !end.completed,
        "the client closed before the whole answer was sent"
    );
}

#[test]
fn http_errors_are_reported_without_the_key() {
    let fake = FakeFim::start(
        vec![FimReply::Status {
            status: 500,
            body: r#"{"error":{"message":"crashed handling key sk-deepseek-SECRET99"}}"#.into(),
        }],
        None,
    );
    let c = ctx_at(DOC, "src/load.ts", &[]);
    let e = fetch(
        "deepseek/deepseek-chat",
        "deepseek",
        &fake,
        Some("sk-deepseek-SECRET99"),
        &c,
    )
    .unwrap_err();
    let m = e.to_string();
    assert!(m.contains("HTTP 500") && m.contains("crashed"), "{m}");
    assert!(!m.contains("SECRET99"), "{m}");
    // A missing field is the API's 400, surfaced as such.
    let fake = FakeFim::start(vec![FimReply::text("x")], Some("right-key-123"));
    let e = fetch(
        "mistral/codestral-latest",
        "mistral",
        &fake,
        Some("wrong-key-456"),
        &c,
    )
    .unwrap_err();
    assert!(
        matches!(e, CompletionError::Status { status: 401, .. }),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Over stdio.

const APP: &str =
    "import { api } from './api';\n\nexport function load(id) {\n  // 😀 é\n  return api.get(\n}\n";

fn project() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::write(root.join("package.json"), "{\"name\":\"app\"}\n").unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("src/app.ts"), APP).unwrap();
    (dir, root)
}

fn inline_caps() -> Value {
    json!({"textDocument": {"inlineCompletion": {"dynamicRegistration": false}}})
}

fn settings(fake: &FakeFim, extra: Value) -> Value {
    let mut s = json!({
        "completion": {"model": "llamacpp/any", "debounceMs": 0},
        "baseUrls": {"llamacpp": fake.url()},
    });
    if let (Some(o), Some(e)) = (s["completion"].as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    s
}

/// A [`project`], a fake answering `replies` (no key), and a server on them (see [`start`]).
fn started(
    opts: ClientOpts,
    replies: Vec<FimReply>,
    extra: Value,
) -> (tempfile::TempDir, PathBuf, FakeFim, TestServer) {
    let (d, root) = project();
    let fake = FakeFim::start(replies, None);
    let s = start(opts, &root, &fake, extra);
    (d, root, fake, s)
}

fn start(opts: ClientOpts, root: &Path, fake: &FakeFim, extra: Value) -> TestServer {
    let s = TestServer::start(opts.folder(root).init_options(settings(fake, extra)));
    s.open(&root.join("src/app.ts"), APP);
    s
}

fn inline_params(root: &Path, line: u32, character: u32) -> Value {
    json!({
        "textDocument": {"uri": file_uri(&root.join("src/app.ts"))},
        "position": {"line": line, "character": character},
        "context": {"triggerKind": 2},
    })
}

fn items(v: &Value) -> Vec<Value> {
    v["items"].as_array().cloned().unwrap_or_default()
}

#[test]
fn capabilities_follow_the_client() {
    let (_d, root) = project();
    let fake = FakeFim::start(vec![FimReply::text("x")], None);
    let s = TestServer::start(
        vscode()
            .capabilities(inline_caps())
            .folder(&root)
            .init_options(settings(&fake, json!({}))),
    );
    assert_eq!(
        s.init["capabilities"]["inlineCompletionProvider"],
        json!(true)
    );
    assert!(s.init["capabilities"].get("completionProvider").is_none());
    s.shutdown();
    let s = TestServer::start(helix().folder(&root));
    assert!(s.init["capabilities"]
        .get("inlineCompletionProvider")
        .is_none());
    assert_eq!(
        s.init["capabilities"]["completionProvider"]["resolveProvider"],
        json!(false)
    );
    s.shutdown();
}

#[test]
fn inline_item_with_utf16_range_and_suffix_overlap_removed() {
    // The model repeats the `}` that already follows: it goes.
    let (_d, root, fake, s) = started(
        vscode().capabilities(inline_caps()),
        vec![FimReply::text("`/items/${id}`);\n}")],
        json!({}),
    );
    assert_eq!(s.encoding(), Encoding::Utf16);
    // Line 4 is `  return api.get(`: 17 UTF-16 units.
    let r = s
        .request("textDocument/inlineCompletion", inline_params(&root, 4, 17))
        .unwrap();
    let it = items(&r);
    assert_eq!(it.len(), 1, "{r}");
    assert_eq!(it[0]["insertText"], json!("`/items/${id}`);"));
    assert_eq!(
        it[0]["range"],
        json!({"start": {"line": 4, "character": 17}, "end": {"line": 4, "character": 17}})
    );
    // After the emoji on line 3 (`  // 😀 é`): UTF-16 column 9 is the end of the line (the
    // emoji is 2 units); a column past it is clamped there.
    let r = s
        .request("textDocument/inlineCompletion", inline_params(&root, 3, 99))
        .unwrap();
    let it = items(&r);
    assert_eq!(
        it[0]["range"]["start"],
        json!({"line": 3, "character": 9}),
        "{r}"
    );
    let body = &fake.requests()[1].body;
    assert!(
        body["input_prefix"].as_str().unwrap().ends_with("// 😀 é"),
        "{body}"
    );
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn fallback_item_in_utf8_replaces_the_word_and_inserts_lines() {
    let (_d, root, _fake, s) = started(
        helix(),
        vec![FimReply::text("tems(id)\n    .then(r => r.json());")],
        json!({}),
    );
    assert_eq!(s.encoding(), Encoding::Utf8);
    let path = root.join("src/app.ts");
    let text = APP.replace("  // 😀 é\n", "  // 😀 é\n  const x = fetchI\n");
    s.change(&path, &text);
    // Line 4 `  const x = fetchI`: byte column 18; the word `fetchI` starts at 12.
    let r = s
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": file_uri(&path)}, "position": {"line": 4, "character": 18}, "context": {"triggerKind": 1}}),
        )
        .unwrap();
    let it = items(&r);
    assert_eq!(it.len(), 1, "{r}");
    assert_eq!(it[0]["label"], json!("✦ builder"));
    assert_eq!(r["isIncomplete"], json!(false));
    let edit = &it[0]["textEdit"];
    assert_eq!(
        edit["range"],
        json!({"start": {"line": 4, "character": 12}, "end": {"line": 4, "character": 18}})
    );
    assert_eq!(
        edit["newText"],
        json!("fetchItems(id)\n    .then(r => r.json());")
    );
    assert_eq!(it[0]["filterText"], edit["newText"]);
    // On the emoji line in UTF-8: `  // 😀 é` is 12 bytes.
    let r = s
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": file_uri(&path)}, "position": {"line": 3, "character": 12}}),
        )
        .unwrap();
    assert_eq!(
        items(&r)[0]["textEdit"]["range"]["start"],
        json!({"line": 3, "character": 10}),
        "{r}"
    );
    s.shutdown();
}

#[test]
fn fallback_answers_typing_only_when_asked_to() {
    let (_d, root, fake, s) = started(neovim(), vec![FimReply::text("id);")], json!({}));
    let typing = json!({"textDocument": {"uri": file_uri(&root.join("src/app.ts"))}, "position": {"line": 4, "character": 17}, "context": {"triggerKind": 2, "triggerCharacter": "("}});
    let r = s
        .request("textDocument/completion", typing.clone())
        .unwrap();
    assert_eq!(r, Value::Null);
    assert_eq!(
        fake.request_count(),
        0,
        "no request for an automatic completion"
    );
    s.shutdown();
    let s = start(neovim(), &root, &fake, json!({"onTyping": true}));
    let r = s.request("textDocument/completion", typing).unwrap();
    // Nothing after the cursor closes `get(`: the model's `);` is kept.
    assert_eq!(items(&r)[0]["textEdit"]["newText"], json!("id);"), "{r}");
    assert_eq!(fake.request_count(), 1);
    s.shutdown();
}

#[test]
fn fallback_over_budget_is_incomplete_then_served_from_cache() {
    let (_d, root, fake, s) = started(
        helix(),
        vec![FimReply::slow("id);", Duration::from_millis(600))],
        json!({"budgetMs": 100}),
    );
    let p = json!({"textDocument": {"uri": file_uri(&root.join("src/app.ts"))}, "position": {"line": 4, "character": 17}, "context": {"triggerKind": 1}});
    let t = Instant::now();
    let r = s.request("textDocument/completion", p.clone()).unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(500),
        "answered within the budget: {:?}",
        t.elapsed()
    );
    assert_eq!(r, json!({"isIncomplete": true, "items": []}));
    // The request went on; once it is done the client's re-ask is answered from the cache.
    let end = fake
        .wait_ended(0, Duration::from_secs(5))
        .expect("request finished");
    assert!(end.completed);
    std::thread::sleep(Duration::from_millis(100));
    let mut again = p.clone();
    again["context"] = json!({"triggerKind": 3});
    let r = s.request("textDocument/completion", again).unwrap();
    assert_eq!(items(&r)[0]["textEdit"]["newText"], json!("id);"), "{r}");
    assert_eq!(fake.request_count(), 1);
    s.shutdown();
}

#[test]
fn cache_answers_same_prefix_and_typed_into_suggestion() {
    let (_d, root, fake, s) = started(
        vscode().capabilities(inline_caps()),
        vec![FimReply::text("`/items/${id}`"), FimReply::text("other")],
        json!({}),
    );
    let r1 = s
        .request("textDocument/inlineCompletion", inline_params(&root, 4, 17))
        .unwrap();
    let r2 = s
        .request("textDocument/inlineCompletion", inline_params(&root, 4, 17))
        .unwrap();
    assert_eq!(items(&r1)[0]["insertText"], json!("`/items/${id}`"));
    assert_eq!(r1, r2);
    assert_eq!(
        fake.request_count(),
        1,
        "the second answer came from the cache"
    );
    // The user types the first characters of the suggestion.
    let path = root.join("src/app.ts");
    s.change(&path, &APP.replace("api.get(\n", "api.get(`/it\n"));
    let r3 = s
        .request("textDocument/inlineCompletion", inline_params(&root, 4, 21))
        .unwrap();
    assert_eq!(items(&r3)[0]["insertText"], json!("ems/${id}`"), "{r3}");
    assert_eq!(
        items(&r3)[0]["range"]["start"],
        json!({"line": 4, "character": 21})
    );
    assert_eq!(fake.request_count(), 1);
    // Typed something else: a new request.
    s.change(&path, &APP.replace("api.get(\n", "api.get(x\n"));
    let r4 = s
        .request("textDocument/inlineCompletion", inline_params(&root, 4, 18))
        .unwrap();
    assert_eq!(items(&r4)[0]["insertText"], json!("other"));
    assert_eq!(fake.request_count(), 2);
    s.shutdown();
}

#[test]
fn a_newer_request_supersedes_and_closes_the_older_connection() {
    let (_d, root, fake, s) = started(
        helix(),
        vec![FimReply::Hang, FimReply::text("d")],
        json!({"budgetMs": 5000}),
    );
    let uri = file_uri(&root.join("src/app.ts"));
    let first = s.send_request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": {"line": 4, "character": 17}}),
    );
    assert!(fake.wait_requests(1, Duration::from_secs(5)));
    // Helix never cancels; it just asks again after the next keystroke.
    s.change(
        &root.join("src/app.ts"),
        &APP.replace("api.get(\n", "api.get(i\n"),
    );
    let sent = Instant::now();
    let r2 = s
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": 4, "character": 18}}),
        )
        .unwrap();
    let r1 = s.wait_response(first, "first completion").unwrap();
    assert_eq!(r1, Value::Null, "the superseded request answers empty");
    assert_eq!(items(&r2)[0]["textEdit"]["newText"], json!("id"), "{r2}");
    let end = fake
        .wait_ended(0, Duration::from_secs(5))
        .expect("old connection closed");
    assert!(!end.completed);
    let after = end.at.saturating_duration_since(sent);
    assert!(
        after < Duration::from_secs(1),
        "closed {after:?} after the newer request"
    );
    s.shutdown();
}

#[test]
fn cancel_request_closes_the_upstream_connection() {
    let (_d, root, fake, s) = started(
        vscode().capabilities(inline_caps()),
        vec![FimReply::Hang],
        json!({}),
    );
    let id = s.send_request("textDocument/inlineCompletion", inline_params(&root, 4, 17));
    assert!(fake.wait_requests(1, Duration::from_secs(5)));
    std::thread::sleep(Duration::from_millis(50));
    assert!(fake.endings().is_empty(), "still waiting for the model");
    let t = Instant::now();
    s.notify("$/cancelRequest", json!({"id": id}));
    let end = fake
        .wait_ended(0, Duration::from_secs(5))
        .expect("connection closed after cancel");
    assert!(!end.completed);
    assert!(end.at.saturating_duration_since(t) < Duration::from_secs(1));
    let r = s.wait_response(id, "cancelled inline completion");
    assert_eq!(r.unwrap_err()["code"], json!(-32800));
    s.shutdown();
}

#[test]
fn provider_error_is_an_empty_answer_and_one_log_line_without_the_key() {
    let (_d, root) = project();
    let key = "mistral-SECRET-key-778899";
    let fake = FakeFim::start(vec![FimReply::text("never")], Some("the-right-key"));
    let init = json!({
        "completion": {"model": "mistral/codestral-latest", "debounceMs": 0},
        "baseUrls": {"mistral": fake.url()},
        "apiKeys": {"mistral": key},
    });
    let s = TestServer::start(
        vscode()
            .capabilities(inline_caps())
            .folder(&root)
            .init_options(init),
    );
    s.open(&root.join("src/app.ts"), APP);
    let r = s
        .request("textDocument/inlineCompletion", inline_params(&root, 4, 17))
        .unwrap();
    assert_eq!(r, json!({"items": []}));
    assert_eq!(fake.request_count(), 1);
    assert_eq!(
        fake.requests()[0].header("authorization"),
        Some(format!("Bearer {key}").as_str())
    );
    s.sync();
    let err = s.stderr();
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("completion failed"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("HTTP 401"), "{}", lines[0]);
    assert!(!err.contains("SECRET"), "the key never reaches the log");
    assert!(s.messages_of("window/showMessage").is_empty(), "no popup");
    s.shutdown();
}

#[test]
fn no_model_means_no_requests() {
    let (_d, root) = project();
    let s = TestServer::start(vscode().capabilities(inline_caps()).folder(&root));
    s.open(&root.join("src/app.ts"), APP);
    let r = s
        .request("textDocument/inlineCompletion", inline_params(&root, 4, 17))
        .unwrap();
    assert_eq!(r, json!({"items": []}));
    s.shutdown();
}
