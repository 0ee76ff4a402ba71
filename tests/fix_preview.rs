//! The fix loop with the real parts: a local sandbox (real npm, real Vite with the preview
//! overlay), Debian's headless Chromium loading the preview, the real binary over stdio, and
//! a loopback OpenAI fake that answers a broken app first and a fix when asked. Runtime and
//! compile errors become diagnostics on the right file and line, a fix round clears them, and
//! auto-fix stops at `maxRounds` on an error the fake never really fixes.

mod common;
mod fakes;

use std::time::Duration;

use builder_lsp::ai::Provider;
use common::*;
use fakes::*;
use serde_json::{json, Value};

const APP: &str = "import Child from './components/Child.jsx';\n\nexport default function App() {\n  return <main><Child /></main>;\n}\n";
const FIXED_CHILD: &str = "export default function Child() {\n  return <p>all good</p>;\n}\n";
const MISSING_IMPORT_APP: &str = "import Child from './components/Child.jsx';\nimport Extra from './Missing.jsx';\n\nexport default function App() {\n  return <main><Child /><Extra /></main>;\n}\n";

/// A Child that throws `message` at render, on line 3.
fn throwing_child(message: &str) -> String {
    format!("export default function Child() {{\n  const label = 'child';\n  throw new Error('{message}');\n}}\n")
}

fn answer(files: &[(&str, &str)]) -> Reply {
    let text: String = files
        .iter()
        .map(|(p, c)| format!("<file path=\"{p}\">{c}</file>\n"))
        .collect();
    Reply::sse(openai_frames(&chunk_text(&text, 11), "stop"))
}

fn preview_diags(m: &Value, uri: &str) -> Option<Vec<Value>> {
    (m["method"] == json!("textDocument/publishDiagnostics") && m["params"]["uri"] == json!(uri))
        .then(|| {
            m["params"]["diagnostics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|d| d["source"] == json!("builder (preview)"))
                .collect()
        })
}

/// The last diagnostics of `source` published for `uri`.
fn last_of(s: &TestServer, uri: &str, source: &str) -> Option<Vec<Value>> {
    last_in(&s.messages(), uri, source)
}

/// The same, in messages already taken (inside `wait_for`, which holds the inbox).
fn last_in(messages: &[Value], uri: &str, source: &str) -> Option<Vec<Value>> {
    latest_diagnostics(messages, uri).map(|ds| {
        ds.into_iter()
            .filter(|d| d["source"] == json!(source))
            .collect()
    })
}

fn prompt_of(req: &RecordedRequest) -> String {
    req.body["messages"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| m["role"] == json!("user"))
                .filter_map(|m| m["content"].as_str())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[test]
fn browser_errors_become_diagnostics_and_the_model_fixes_them() {
    if !registry_answers() {
        return;
    }
    assert_chromium();
    let fake = FakeProvider::start(vec![
        // 1. the app, with a component that throws at render
        answer(&[
            ("src/App.jsx", APP),
            ("src/components/Child.jsx", &throwing_child("render boom")),
        ]),
        // 2. the fix of it
        answer(&[("src/components/Child.jsx", FIXED_CHILD)]),
        // 3. an import of a file the answer did not write
        answer(&[("src/App.jsx", MISSING_IMPORT_APP)]),
        // 4–6. auto-fix: a generation and two "fixes" that each throw a new error
        answer(&[
            ("src/App.jsx", APP),
            ("src/components/Child.jsx", &throwing_child("boom 1")),
        ]),
        answer(&[("src/components/Child.jsx", &throwing_child("boom 2"))]),
        answer(&[("src/components/Child.jsx", &throwing_child("boom 3"))]),
    ]);
    let (dir, _cache, s) = sandbox_server(|o| {
        o.openai_at(&fake.base_url_for(Provider::OpenAi), "sk-test-preview-fix")
            .init_options(local_sandbox_options())
    });
    let created = s.create_sandbox(json!({"wait": true}));
    assert!(created["url"].as_str().is_some(), "{created}");

    // A component that throws at render: the browser's error lands on its file and line.
    let g = s.generate("a card with a child");
    assert_eq!(g["applied"], json!(true), "{g:#}");
    let child = dir.path().join("src/components/Child.jsx");
    let child_uri = file_uri(&child);
    let c = s.check_sandbox();
    assert_eq!(c["settled"], json!(true), "{c:#}");
    let boom = runtime_error(&c, "render boom");
    assert_eq!(boom["path"], json!("src/components/Child.jsx"), "{c:#}");
    assert_eq!(boom["line"], json!(3), "{c:#}");
    assert!(boom["stack"].as_str().unwrap().contains("Child"), "{c:#}");
    assert!(
        s.wait_for(
            |m| m.iter().any(
                |x| preview_diags(x, &child_uri).is_some_and(|d| d
                    .iter()
                    .any(|d| d["message"] == json!("render boom")
                        && d["range"]["start"]["line"] == json!(2)
                        && d["severity"] == json!(1)))
            ),
            Duration::from_secs(5)
        ),
        "no preview diagnostic on Child.jsx line 3"
    );
    // The logs stay readable: the plugin's reports are not log lines.
    let logs = s
        .execute("builder.sandbox.logs", json!({"lines": 300}))
        .unwrap();
    assert!(!logs.to_string().contains("[builder:preview]"), "{logs}");
    let errors = s.execute("builder.sandbox.errors", json!({})).unwrap();
    assert_eq!(errors["running"], json!(true));
    assert!(errors["count"].as_u64().unwrap() >= 1, "{errors:#}");

    // "Builder: Fix this error" on it: the prompt has the message and the stack; it lands,
    // the diagnostic clears, and the next load is clean.
    let diag = last_of(&s, &child_uri, "builder (preview)").unwrap()[0].clone();
    let actions = s
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": child_uri}, "range": diag["range"], "context": {"diagnostics": [diag]}}),
        )
        .unwrap();
    let fix = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"] == json!("Builder: Fix this error"))
        .unwrap_or_else(|| panic!("no fix action: {actions:#}"))
        .clone();
    let mut args = fix["command"]["arguments"][0].clone();
    args["wait"] = json!(true);
    args["wait"] = json!(false);
    let started = s.execute("builder.fix", args).unwrap();
    let task = started["taskId"].clone();
    let mut r = Value::Null;
    for _ in 0..300 {
        let st = s
            .execute("builder.task.status", json!({"taskId": task}))
            .unwrap();
        if st["state"] != json!("running") {
            r = st["result"].clone();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !r.is_null(),
        "the fix never finished; server log:\n{}",
        s.stderr()
    );
    assert_eq!(
        r["filesUpdated"],
        json!(["src/components/Child.jsx"]),
        "{r:#}"
    );
    let prompt = prompt_of(&fake.requests()[1]);
    assert!(prompt.contains("render boom"), "{prompt}");
    assert!(prompt.contains("src/components/Child.jsx:3"), "{prompt}");
    assert!(prompt.contains("Stack:"), "{prompt}");
    assert!(
        prompt.contains(">  3 |   throw new Error('render boom');")
            || prompt.contains("> 3 |   throw new Error('render boom');"),
        "{prompt}"
    );
    assert!(
        s.wait_for(
            |m| last_in(m, &child_uri, "builder (preview)").is_some_and(|d| d.is_empty()),
            Duration::from_secs(5)
        ),
        "the fixed file's diagnostic was not cleared"
    );
    let c = s.execute("builder.sandbox.check", json!({})).unwrap();
    assert_eq!(c["count"], json!(0), "{c:#}");

    // An import of a file nobody wrote: Vite's error, on App.jsx's import line.
    s.generate("add an extra");
    let c = s.execute("builder.sandbox.check", json!({})).unwrap();
    let compile = c["compile"].as_array().unwrap();
    assert!(
        compile.iter().any(|e| e["path"] == json!("src/App.jsx")
            && e["line"] == json!(2)
            && e["message"].as_str().unwrap().contains("Missing.jsx")),
        "{c:#}"
    );
    let app_uri = file_uri(&dir.path().join("src/App.jsx"));
    assert!(
        s.wait_for(
            |m| last_in(m, &app_uri, "vite")
                .is_some_and(|d| d.iter().any(|d| d["range"]["start"]["line"] == json!(1))),
            Duration::from_secs(5)
        ),
        "no vite diagnostic on App.jsx's import line"
    );

    // Auto-fix: after the generation lands, errors trigger rounds; each "fix" throws a new
    // error, so it stops at maxRounds with the last one left.
    s.set_config(json!({"autoFix": {"mode": "on", "maxRounds": 2}}));
    let asked = s.config_answers();
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": null}),
    );
    s.wait_config_answers(asked + 1, Duration::from_secs(5));
    let g = s
        .execute_with_token(
            "builder.generate",
            json!({"prompt": "back to the card", "wait": true}),
            "auto-1",
        )
        .unwrap();
    let rounds = g["fixRounds"]
        .as_array()
        .unwrap_or_else(|| panic!("no rounds: {g:#}"));
    assert_eq!(rounds.len(), 2, "{g:#}");
    assert!(
        rounds[0]["errors"][0].as_str().unwrap().contains("boom 1"),
        "{g:#}"
    );
    assert!(
        rounds[1]["errors"][0].as_str().unwrap().contains("boom 2"),
        "{g:#}"
    );
    assert!(
        g["errorsLeft"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("boom 3")),
        "{g:#}"
    );
    assert_eq!(fake.request_count(), 6);
    // The stale missing-import error was cleared when App.jsx changed.
    assert!(
        !g["errorsLeft"].to_string().contains("Missing.jsx"),
        "{g:#}"
    );
    let progress = s.progress_ended("auto-1");
    assert!(
        progress_says(&progress, "message", |m| m
            .contains("Fixing 1 error (round 1 of 2)")),
        "{progress:#?}"
    );
    s.execute("builder.sandbox.kill", json!({})).unwrap();
    s.assert_no_panic();
    s.shutdown();
}

/// The broken-app scenario: one answer with a syntax error, a component that throws at render
/// and an import of a file it did not write. Auto-fix sends the errors to the model and the
/// fixed answer lands: clean after one round. Then an error the "fix" brings straight back
/// stops auto-fix as repeated after one round instead of spending the rest.
#[test]
fn auto_fix_cleans_a_broken_app_in_one_round_and_stops_on_a_repeated_error() {
    if !registry_answers() {
        return;
    }
    let broken_app = "import Child from './components/Child.jsx';\nimport Header from './components/Header.jsx';\nimport Extra from './Missing.jsx';\n\nexport default function App() {\n  return <main><Header /><Child /><Extra /></main>;\n}\n";
    let header_syntax =
        "export default function Header() {\n  const title = ;\n  return <h1>{title}</h1>;\n}\n";
    let fixed_app = "import Child from './components/Child.jsx';\nimport Header from './components/Header.jsx';\n\nexport default function App() {\n  return <main><Header /><Child /></main>;\n}\n";
    let fixed_header =
        "export default function Header() {\n  const title = 'Bakery';\n  return <h1>{title}</h1>;\n}\n";
    let fake = FakeProvider::start(vec![
        answer(&[
            ("src/App.jsx", broken_app),
            ("src/components/Header.jsx", header_syntax),
            ("src/components/Child.jsx", &throwing_child("render boom")),
        ]),
        answer(&[
            ("src/App.jsx", fixed_app),
            ("src/components/Header.jsx", fixed_header),
            ("src/components/Child.jsx", FIXED_CHILD),
        ]),
        // The repeated case: a throw, and a "fix" that throws the very same error.
        answer(&[("src/components/Child.jsx", &throwing_child("same boom"))]),
        answer(&[(
            "src/components/Child.jsx",
            &throwing_child("same boom").replace("'child'", "'fancy child'"),
        )]),
    ]);
    let (dir, _cache, s) = sandbox_server(|o| {
        o.openai_at(&fake.base_url_for(Provider::OpenAi), "sk-test-broken-app").init_options(json!({"sandbox": {"isolation": "none", "openPreview": false},"autoFix": {"mode": "on", "maxRounds": 2}}))
    });
    s.create_sandbox(json!({"wait": true}));

    let t = std::time::Instant::now();
    let g = s.generate("a bakery page");
    let elapsed = t.elapsed();
    let rounds = g["fixRounds"]
        .as_array()
        .unwrap_or_else(|| panic!("no rounds: {g:#}"));
    assert_eq!(rounds.len(), 1, "{g:#}");
    assert_eq!(g["fixStopped"], json!("clean"), "{g:#}");
    assert!(g.get("errorsLeft").is_none(), "{g:#}");
    // The round's prompt carried the errors the app showed, with the failing code.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "one generation and one fix round");
    let prompt = prompt_of(&reqs[1]);
    assert!(prompt.contains("Missing.jsx"), "{prompt}");
    let asked: Vec<&str> = rounds[0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(asked.iter().any(|e| e.contains("Missing.jsx")), "{asked:?}");
    for (path, text) in [
        ("src/App.jsx", fixed_app),
        ("src/components/Header.jsx", fixed_header),
        ("src/components/Child.jsx", FIXED_CHILD),
    ] {
        assert_eq!(read(dir.path(), path), text, "{path}");
    }
    let c = s.execute("builder.sandbox.check", json!({})).unwrap();
    assert_eq!(c["count"], json!(0), "{c:#}");
    eprintln!(
        "broken app → clean after 1 auto-fix round: {} ms end to end (generation, settle, check, fix, check)",
        elapsed.as_millis()
    );

    let g = s.generate("make the child fancy");
    let rounds = g["fixRounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 1, "{g:#}");
    assert_eq!(g["fixStopped"], json!("repeated"), "{g:#}");
    assert!(g["errorsLeft"].to_string().contains("same boom"), "{g:#}");
    assert_eq!(fake.request_count(), 4, "no third round after the repeat");
    s.execute("builder.sandbox.kill", json!({})).unwrap();
    s.assert_no_panic();
    s.shutdown();
}
