//! `builder.fix` and the "Builder: Fix this error" action, over stdio against a loopback
//! OpenAI fake: another server's diagnostic (TypeScript's, as VS Code passes it in
//! `context.diagnostics`) becomes a fix round whose prompt carries the message and the code.

mod common;
mod fakes;

use builder_lsp::ai::Provider;
use common::*;
use fakes::*;
use serde_json::{json, Value};

const KEY: &str = "sk-test-FIX-7777-secret";
const BROKEN: &str = "export function total(items) {\n  const sum: number = \"0\";\n  return items.reduce((a, b) => a + b, sum);\n}\n";
const FIXED: &str = "export function total(items) {\n  const sum: number = 0;\n  return items.reduce((a, b) => a + b, sum);\n}\n";
const TS_MESSAGE: &str = "Type 'string' is not assignable to type 'number'.";

fn server(fake: &FakeProvider, dir: &std::path::Path) -> TestServer {
    TestServer::start(
        vscode()
            .folder(dir)
            .env(
                Provider::OpenAi.base_var(),
                &fake.base_url_for(Provider::OpenAi),
            )
            .env("DEFAULT_AI_MODEL", "openai/gpt-4.1")
            .env("OPENAI_API_KEY", KEY),
    )
}

fn ts_diagnostic() -> Value {
    json!({
        "range": {"start": {"line": 1, "character": 8}, "end": {"line": 1, "character": 11}},
        "severity": 1,
        "code": 2322,
        "source": "ts",
        "message": TS_MESSAGE,
        "tags": []
    })
}

fn actions(s: &TestServer, uri: &str, diags: Value) -> Vec<Value> {
    s.request(
        "textDocument/codeAction",
        json!({
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 1, "character": 8}, "end": {"line": 1, "character": 8}},
            "context": {"diagnostics": diags}
        }),
    )
    .unwrap()
    .as_array()
    .cloned()
    .unwrap_or_default()
}

#[test]
fn another_servers_diagnostic_is_fixed_by_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "src/total.ts", BROKEN);
    write_file(dir.path(), "package.json", "{\"name\":\"app\"}\n");
    let answer = format!("<file path=\"src/total.ts\">{FIXED}</file>\n");
    let fake = FakeProvider::start(vec![Reply::sse(openai_frames(
        &chunk_text(&answer, 9),
        "stop",
    ))]);
    let s = server(&fake, dir.path());
    let uri = file_uri(&path);
    s.open(&path, BROKEN);

    let offered = actions(&s, &uri, json!([ts_diagnostic()]));
    let fix = offered
        .iter()
        .find(|a| a["title"] == json!("Builder: Fix this error"))
        .unwrap_or_else(|| panic!("no fix action in {offered:#?}"));
    assert_eq!(fix["kind"], json!("quickfix"));
    assert_eq!(fix["command"]["command"], json!("builder.fix"));
    assert_eq!(fix["diagnostics"][0]["message"], json!(TS_MESSAGE));

    // Run what the editor would run, waiting for the result.
    let mut args = fix["command"]["arguments"][0].clone();
    args["wait"] = json!(true);
    let r = s
        .execute_with_token("builder.fix", args, "fix-1")
        .unwrap_or_else(|e| panic!("builder.fix failed: {e}\n{}", s.stderr()));
    assert_eq!(r["applied"], json!(true), "{r:#}");
    assert_eq!(r["filesUpdated"], json!(["src/total.ts"]), "{r:#}");
    assert_eq!(s.doc_text(&path).as_deref(), Some(FIXED));

    // The prompt has the message, its place, its source and the numbered failing line.
    let req = fake.single_request();
    let body = req.body.to_string();
    let prompt = req.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == json!("user"))
        .map(|m| m["content"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(prompt.contains("Fix 1 error in the app."), "{prompt}");
    assert!(
        prompt.contains(&format!(
            "Error 1 of 1 — src/total.ts:2:9 (ts):\n{TS_MESSAGE}"
        )),
        "{prompt}"
    );
    assert!(
        prompt.contains("> 2 |   const sum: number = \"0\";"),
        "{prompt}"
    );
    assert!(body.contains("src/total.ts"));
    // Progress says what is being fixed; the history names it a fix.
    let progress = s.progress_ended("fix-1");
    assert!(
        progress_says(&progress, "title", |t| t
            .starts_with("Fixing: Error 1 of 1")),
        "{progress:#?}"
    );
    let h = s.execute("builder.history", json!({})).unwrap();
    assert_eq!(h[0]["source"], json!("fix"), "{h:#}");
    assert!(!s.stderr().contains(KEY));
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn several_diagnostics_get_one_action_each_and_a_fix_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "src/total.ts", BROKEN);
    let fake = FakeProvider::start(vec![Reply::status(500, "never asked")]);
    let s = server(&fake, dir.path());
    let uri = file_uri(&path);
    s.open(&path, BROKEN);
    let mut eslint = ts_diagnostic();
    eslint["source"] = json!("eslint");
    eslint["severity"] = json!(2);
    eslint["message"] = json!("'items' is defined but never used.");
    let hint = json!({"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}, "severity": 4, "message": "a hint"});
    let offered = actions(&s, &uri, json!([ts_diagnostic(), eslint, hint]));
    let titles: Vec<&str> = offered.iter().filter_map(|a| a["title"].as_str()).collect();
    assert!(
        titles.contains(
            &"Builder: Fix this error: Type 'string' is not assignable to type 'number'."
        ),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"Builder: Fix this error: 'items' is defined but never used."),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"Builder: Fix all errors in this file (2)"),
        "{titles:?}"
    );
    // Hints are not errors to fix.
    assert!(!titles.iter().any(|t| t.contains("a hint")), "{titles:?}");
    // No diagnostics at all: no fix actions.
    let none = actions(&s, &uri, json!([]));
    assert!(
        !none
            .iter()
            .any(|a| a["title"].as_str().is_some_and(|t| t.contains("Fix"))),
        "{none:#?}"
    );
    s.shutdown();
}

#[test]
fn bad_fix_arguments_are_named_and_nothing_known_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "src/a.js", "x\n");
    let fake = FakeProvider::start(vec![Reply::status(500, "never asked")]);
    let s = server(&fake, dir.path());
    let e = s.invalid_params("builder.fix", json!({"diagnostics": [{"range": null}]}));
    assert!(
        e["message"].as_str().unwrap().contains("diagnostics[0]"),
        "{e}"
    );
    let e = s.execute("builder.fix", json!({"wat": 1})).unwrap_err();
    assert!(e["message"].as_str().unwrap().contains("wat"), "{e}");
    let e = s.execute("builder.fix", json!({"wait": true})).unwrap_err();
    assert!(
        e["message"].as_str().unwrap().contains("nothing to fix"),
        "{e}"
    );
    let outside = file_uri(&std::env::temp_dir().join("elsewhere.js"));
    let e = s
        .execute(
            "builder.fix",
            json!({"diagnostics": [{"message": "m", "uri": outside}], "project": dir.path()}),
        )
        .unwrap_err();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("diagnostics[0].uri"),
        "{e}"
    );
    assert_eq!(fake.request_count(), 0);
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn preview_commands_check_their_arguments_and_need_a_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeProvider::start(vec![Reply::status(500, "never asked")]);
    let s = server(&fake, dir.path());
    let e = s.invalid_params("builder.sandbox.check", json!({"screenshot": "yes"}));
    assert!(e["message"].as_str().unwrap().contains("screenshot"), "{e}");
    let e = s.execute("builder.sandbox.check", json!({})).unwrap_err();
    assert!(
        e["message"].as_str().unwrap().contains(
            "no sandbox is running for this project; start one with builder.sandbox.create"
        ),
        "{e}"
    );
    let r = s.execute("builder.sandbox.errors", json!({})).unwrap();
    assert_eq!(
        r,
        json!({"running": false, "compile": [], "runtime": [], "count": 0})
    );
    s.assert_no_panic();
    s.shutdown();
}
