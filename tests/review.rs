//! Review before apply over stdio: VS Code-like clients get ONE annotated edit (a change
//! annotation per file, `needsConfirmation`) and only what the user kept is reported and
//! checkpointed; clients without change annotations get a pending set to show (read-only diff),
//! accept (all or some files) or discard; generations under review write nothing until accepted;
//! code actions exist only while a set is pending; bad input is refused naming the field.

mod common;
mod fakes;

use std::path::Path;

use builder_lsp::ai::Provider;
use common::*;
use fakes::*;
use serde_json::{json, Value};

const OLD_APP: &str = "export default function App() { return <p>old</p> }\n";
const NEW_APP: &str = "export default function App() { return <p>new</p> }\n";
const UTIL: &str = "export const util = 1;\n";
const STYLE: &str = "body { margin: 0 }\n";

fn answer() -> String {
    format!(
        "{}{}{}<explanation>Three files.</explanation>",
        file_block("src/App.jsx", NEW_APP),
        file_block("src/util.js", UTIL),
        file_block("src/style.css", STYLE),
    )
}

fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    write_file(d.path(), "src/App.jsx", OLD_APP);
    write_file(d.path(), "src/style.css", "body {}\n");
    d
}

fn history_len(s: &TestServer) -> usize {
    s.execute("builder.history", json!({}))
        .unwrap()
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

fn code_action_titles(s: &TestServer, file: &Path) -> Vec<String> {
    let actions = s
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": file_uri(file)},
                "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                "context": {"diagnostics": []}
            }),
        )
        .unwrap();
    actions
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|a| a["title"].as_str().map(String::from))
        .collect()
}

#[test]
fn annotated_edit_reports_only_the_files_the_user_kept() {
    let dir = project();
    let app = dir.path().join("src/App.jsx");
    let s = TestServer::start(vscode().folder(dir.path()));
    s.open(&app, OLD_APP);
    // The user unticks src/util.js (a create) and src/style.css (an update on disk).
    s.set_apply_behavior(ApplyBehavior::Review(vec![
        "src/util.js".into(),
        "src/style.css".into(),
    ]));
    let r = s.apply_with(json!({"response": answer(), "review": true}));

    let edits = s.edits();
    assert_eq!(edits.len(), 1, "one edit for the whole set");
    let edit = &edits[0].params["edit"];
    let ann = edit["changeAnnotations"].as_object().expect("annotations");
    let mut labels: Vec<&str> = ann.values().map(|a| a["label"].as_str().unwrap()).collect();
    labels.sort();
    assert_eq!(
        labels,
        [
            "create src/util.js",
            "update src/App.jsx",
            "update src/style.css"
        ]
    );
    assert!(ann.values().all(|a| a["needsConfirmation"] == json!(true)));
    // Every operation carries a declared annotation.
    for op in edit["documentChanges"].as_array().unwrap() {
        if op.get("kind").is_some() {
            assert!(
                ann.contains_key(op["annotationId"].as_str().unwrap()),
                "{op}"
            );
        } else {
            for e in op["edits"].as_array().unwrap() {
                assert!(ann.contains_key(e["annotationId"].as_str().unwrap()), "{e}");
            }
        }
    }

    assert_eq!(r["filesUpdated"], json!(["src/App.jsx"]), "{r:#}");
    assert_eq!(r["filesCreated"], json!([]), "{r:#}");
    let mut declined = strings(&r["filesDeclined"]);
    declined.sort();
    assert_eq!(declined, ["src/style.css", "src/util.js"], "{r:#}");
    assert_eq!(r["applied"], json!(false), "{r:#}");
    assert_eq!(r["review"]["mode"], json!("annotated"));
    assert_eq!(r["writtenToDisk"], json!([]), "{r:#}");
    assert_eq!(s.doc_text(&app).as_deref(), Some(NEW_APP));
    assert!(!dir.path().join("src/util.js").exists());
    assert_eq!(read(dir.path(), "src/style.css"), "body {}\n");

    // The checkpoint claims only what landed.
    let h = s.execute("builder.history", json!({})).unwrap();
    assert_eq!(h[0]["id"], r["checkpoint"]);
    assert_eq!(
        h[0]["files"],
        json!([{"path": "src/App.jsx", "change": "updated"}]),
        "{h}"
    );
    s.shutdown();
}

#[test]
fn a_preview_the_user_cancels_writes_nothing_and_records_nothing() {
    let dir = project();
    let s = TestServer::start(
        vscode()
            .folder(dir.path())
            .init_options(json!({"review": "on"})),
    );
    s.set_apply_behavior(ApplyBehavior::Refuse("cancelled by the user".into()));
    let before = snapshot(dir.path());
    let r = s.apply(&answer());
    assert_eq!(r["review"]["mode"], json!("annotated"), "{r:#}");
    assert_eq!(strings(&r["filesDeclined"]).len(), 3, "{r:#}");
    assert_eq!(
        r["writtenToDisk"],
        json!([]),
        "no disk fallback under review: {r:#}"
    );
    assert_eq!(snapshot(dir.path()), before);
    assert!(r.get("checkpoint").is_none(), "{r:#}");
    assert_eq!(history_len(&s), 0);
    s.shutdown();
}

#[test]
fn pending_set_show_accept_some_then_discard() {
    let dir = project();
    let app = dir.path().join("src/App.jsx");
    let s = TestServer::start(
        neovim()
            .folder(dir.path())
            .init_options(json!({"review": "on"})),
    );
    let before = snapshot(dir.path());

    // Nothing pending yet: clear errors, no code actions.
    for cmd in [
        "builder.review.show",
        "builder.review.accept",
        "builder.review.discard",
    ] {
        let e = s.execute(cmd, json!({})).unwrap_err();
        assert!(
            message(&e).contains("no change set is pending"),
            "{cmd}: {e}"
        );
    }
    s.open(&app, OLD_APP);
    assert!(!code_action_titles(&s, &app)
        .iter()
        .any(|t| t.contains("pending changes")));

    let r = s.apply(&answer());
    assert_eq!(r["review"]["mode"], json!("pending"), "{r:#}");
    assert_eq!(r["review"]["files"].as_array().map(Vec::len), Some(3));
    assert_eq!(r["applied"], json!(false));
    assert!(
        r["message"].as_str().unwrap().contains("held for review"),
        "{r}"
    );
    assert!(s.edits().is_empty(), "nothing sent to the editor");
    assert_eq!(snapshot(dir.path()), before, "nothing written");
    assert_eq!(history_len(&s), 0);

    // Code actions in any file of the project while pending.
    let titles = code_action_titles(&s, &app);
    assert!(
        titles.contains(&"Builder: Accept pending changes".to_string()),
        "{titles:?}"
    );
    assert!(
        titles.contains(&"Builder: Discard pending changes".to_string()),
        "{titles:?}"
    );

    // Show: a read-only diff file, opened with showDocument.
    let shown = s.execute("builder.review.show", json!({})).unwrap();
    let path = Path::new(shown["path"].as_str().unwrap()).to_path_buf();
    assert!(path.starts_with(&s.state_dir), "{shown}");
    let diff = std::fs::read_to_string(&path).unwrap();
    assert!(
        diff.contains("--- a/src/App.jsx") && diff.contains("+++ b/src/App.jsx"),
        "{diff}"
    );
    assert!(diff.contains("-export default function App() { return <p>old</p> }"));
    assert!(diff.contains("--- /dev/null") && diff.contains("+++ b/src/util.js"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode & 0o222, 0, "diff file is writable: {mode:o}");
    assert!(std::fs::write(&path, "x").is_err() || unsafe { libc::geteuid() } == 0);
    assert_eq!(shown["shown"], json!(true));
    let opened = s.messages_of("window/showDocument");
    assert!(
        opened
            .iter()
            .any(|m| m["params"]["uri"] == json!(file_uri(&path))),
        "{opened:?}"
    );

    // Unknown file: InvalidParams naming it; the set stays.
    let e = s.invalid_params("builder.review.accept", json!({"files": ["src/nope.js"]}));
    assert!(
        message(&e).contains("`files`") && message(&e).contains("src/nope.js"),
        "{e}"
    );
    assert_eq!(snapshot(dir.path()), before);

    // Accept two of the three: the same result shape as builder.apply; the third is dropped.
    let a = s
        .execute(
            "builder.review.accept",
            json!({"files": ["src/App.jsx", "./src/util.js"]}),
        )
        .unwrap();
    assert_eq!(a["filesUpdated"], json!(["src/App.jsx"]), "{a:#}");
    assert_eq!(a["filesCreated"], json!(["src/util.js"]), "{a:#}");
    assert_eq!(a["filesDeclined"], json!(["src/style.css"]), "{a:#}");
    assert_eq!(a["applied"], json!(true), "{a:#}");
    assert!(
        a["appliedVia"].as_str().unwrap().contains("workspaceEdit"),
        "{a}"
    );
    assert_eq!(s.doc_text(&app).as_deref(), Some(NEW_APP));
    // (Neovim: the created buffer gets its final newline when saved.)
    assert_eq!(read(dir.path(), "src/util.js").trim_end(), UTIL.trim_end());
    assert_eq!(read(dir.path(), "src/style.css"), "body {}\n");
    let h = s.execute("builder.history", json!({})).unwrap();
    assert_eq!(h.as_array().unwrap().len(), 1);
    assert_eq!(h[0]["id"], a["checkpoint"]);
    assert_eq!(h[0]["source"], json!("apply"));
    assert_eq!(h[0]["files"].as_array().unwrap().len(), 2, "{h}");
    // Accepted: nothing pending, no code actions.
    assert!(!code_action_titles(&s, &app)
        .iter()
        .any(|t| t.contains("pending changes")));
    let e = s.execute("builder.review.accept", json!({})).unwrap_err();
    assert!(message(&e).contains("no change set is pending"), "{e}");

    // A second set replaces a first one still pending (said in the result); discard drops it.
    let first = s.apply(&file_block("src/a.js", "a\n"));
    assert_eq!(first["review"]["mode"], json!("pending"));
    let second = s.apply(&file_block("src/b.js", "b\n"));
    assert_eq!(
        second["review"]["replacedPending"],
        json!(true),
        "{second:#}"
    );
    assert!(
        second["message"].as_str().unwrap().contains("replacing"),
        "{second}"
    );
    let d = s.execute("builder.review.discard", json!({})).unwrap();
    assert_eq!(
        d["files"],
        json!([{"path": "src/b.js", "change": "created"}]),
        "{d}"
    );
    assert!(!dir.path().join("src/a.js").exists());
    assert!(!dir.path().join("src/b.js").exists());
    assert_eq!(history_len(&s), 1);
    let e = s.execute("builder.review.discard", json!({})).unwrap_err();
    assert!(message(&e).contains("no change set is pending"), "{e}");
    s.shutdown();
}

/// A generation under review streams the model's text as progress but writes nothing; the
/// complete answer becomes the pending set, which lands only when accepted.
#[test]
fn generate_with_review_writes_nothing_until_accepted() {
    let dir = project();
    let fake = FakeProvider::start(vec![Reply::sse(openai_frames(
        &chunk_text(&answer(), 16),
        "stop",
    ))]);
    let p = Provider::OpenAi;
    let s = TestServer::start(
        neovim()
            .folder(dir.path())
            .env(p.base_var(), &fake.base_url_for(p))
            .env("DEFAULT_AI_MODEL", "openai/gpt-4.1")
            .env(p.key_var().unwrap(), "sk-test-review")
            .init_options(json!({"streamDeltas": true})),
    );
    let before = snapshot(dir.path());
    let r: Value = s
        .execute_with_token(
            "builder.generate",
            json!({"prompt": "three files", "wait": true, "review": true, "installPackages": false}),
            "gen-review",
        )
        .unwrap_or_else(|e| panic!("generate: {e}"));
    assert_eq!(r["review"]["mode"], json!("pending"), "{r:#}");
    assert_eq!(r["filesCreated"], json!([]), "{r:#}");
    assert_eq!(r["filesUpdated"], json!([]), "{r:#}");
    assert_eq!(r["applied"], json!(false));
    assert!(
        s.edits().is_empty(),
        "nothing sent to the editor: {:?}",
        s.edits()
    );
    assert_eq!(snapshot(dir.path()), before, "nothing written");
    assert_eq!(history_len(&s), 0);
    // The model's text still streamed.
    let deltas: String = s
        .messages_of("builder/generationDelta")
        .iter()
        .filter_map(|m| m["params"]["text"].as_str().map(String::from))
        .collect();
    assert!(deltas.contains("src/util.js"), "{deltas}");

    let a = s.execute("builder.review.accept", json!({})).unwrap();
    assert_eq!(a["applied"], json!(true), "{a:#}");
    let mut landed = strings(&a["filesCreated"]);
    landed.extend(strings(&a["filesUpdated"]));
    landed.sort();
    assert_eq!(
        landed,
        ["src/App.jsx", "src/style.css", "src/util.js"],
        "{a:#}"
    );
    assert_eq!(read(dir.path(), "src/App.jsx"), NEW_APP);
    assert_eq!(read(dir.path(), "src/style.css"), STYLE);
    let h = s.execute("builder.history", json!({})).unwrap();
    assert_eq!(h[0]["source"], json!("generate"), "{h}");
    assert_eq!(h[0]["model"], json!("openai/gpt-4.1"), "{h}");
    s.shutdown();
}

/// Wrong arguments name the field; a file changed after the set was prepared is not
/// overwritten on accept.
#[test]
fn bad_arguments_and_stale_files() {
    let dir = project();
    let s = TestServer::start(neovim().folder(dir.path()));
    let e = s.invalid_params(
        "builder.apply",
        json!({"response": answer(), "review": "yes"}),
    );
    assert!(message(&e).contains("`review`"), "{e}");
    let e = s.invalid_params("builder.review.accept", json!({"file": ["src/App.jsx"]}));
    assert!(message(&e).contains("file"), "{e}");
    let e = s
        .execute("builder.review.accept", json!({"files": "src/App.jsx"}))
        .unwrap_err();
    assert!(message(&e).contains("`files`"), "{e}");

    let r = s.apply_with(json!({"response": answer(), "review": true}));
    assert_eq!(r["review"]["mode"], json!("pending"), "{r:#}");
    // The user edits App.jsx on disk before accepting: it is left alone and said so.
    write_file(dir.path(), "src/App.jsx", "the user's own edit\n");
    let a = s.execute("builder.review.accept", json!({})).unwrap();
    assert_eq!(read(dir.path(), "src/App.jsx"), "the user's own edit\n");
    assert_eq!(
        skip_reason(&a, "src/App.jsx").as_deref(),
        Some("changed since the review was prepared; not applied"),
        "{a:#}"
    );
    assert_eq!(a["applied"], json!(false), "{a:#}");
    assert_eq!(read(dir.path(), "src/style.css"), STYLE);
    s.shutdown();
}
