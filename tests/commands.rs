//! The other commands: conversation state (and its persistence), zip export and tasks.

mod common;

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// `builder.conversation.update` with these arguments; the new state.
fn update(s: &TestServer, args: Value) -> Value {
    s.execute("builder.conversation.update", args).unwrap()
}

fn conv(s: &TestServer) -> Value {
    s.execute("builder.conversation.get", json!({}))
        .unwrap_or_else(|e| panic!("conversation.get: {e}"))
}

/// JSON files of the state dir, with their text.
fn state_files(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_file() {
                out.push((
                    p.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read_to_string(&p).unwrap_or_default(),
                ));
            }
        }
    }
    out
}

#[test]
fn conversation_get_returns_the_full_state() {
    let (_dir, s) = server_in_tempdir(vscode());
    let c = conv(&s);
    for f in [
        "conversationId",
        "startedAt",
        "lastUpdated",
        "messages",
        "edits",
        "projectEvolution",
        "userPreferences",
        "currentTopic",
    ] {
        assert!(c.get(f).is_some(), "state lacks `{f}`: {c}");
    }
    assert!(!c["conversationId"].as_str().unwrap().is_empty());
    assert_eq!(c["messages"], json!([]));
    assert_eq!(c["edits"], json!([]));
    assert_eq!(c["projectEvolution"]["majorChanges"], json!([]));
    assert_eq!(c["userPreferences"], json!({}));
    assert_eq!(c["currentTopic"], Value::Null);
    // Stable between calls.
    assert_eq!(conv(&s)["conversationId"], c["conversationId"]);
    s.shutdown();
}

#[test]
fn conversation_update_merges_preferences_and_null_deletes() {
    let (_dir, s) = server_in_tempdir(vscode());
    let id = conv(&s)["conversationId"].clone();
    let c = update(
        &s,
        json!({"currentTopic": "coffee landing page", "userPreferences": {"theme": "dark", "framework": "react"}}),
    );
    assert_eq!(c["currentTopic"], json!("coffee landing page"));
    assert_eq!(
        c["userPreferences"],
        json!({"theme": "dark", "framework": "react"})
    );

    let c = update(
        &s,
        json!({"userPreferences": {"theme": null, "style": "minimal"}}),
    );
    assert_eq!(
        c["userPreferences"],
        json!({"framework": "react", "style": "minimal"})
    );
    assert_eq!(
        c["currentTopic"],
        json!("coffee landing page"),
        "topic kept when not given"
    );
    assert_eq!(c["conversationId"], id);

    let got = conv(&s);
    assert_eq!(
        got["userPreferences"],
        json!({"framework": "react", "style": "minimal"})
    );
    assert_eq!(got["currentTopic"], json!("coffee landing page"));
    s.shutdown();
}

#[test]
fn conversation_clear_old_keeps_the_recent_tail() {
    let (_dir, s) = server_in_tempdir(vscode());
    update(
        &s,
        json!({"userPreferences": {"k": 1}, "currentTopic": "t"}),
    );
    for i in 0..5 {
        let r = s.apply_with(json!({"response": file_block(&format!("src/f{i}.js"), &format!("{i}\n")), "request": format!("make f{i}")}));
        assert_eq!(r["applied"], json!(true), "{r}");
    }
    let before = conv(&s);
    assert_eq!(before["edits"].as_array().unwrap().len(), 5, "{before}");
    assert_eq!(
        before["projectEvolution"]["majorChanges"]
            .as_array()
            .unwrap()
            .len(),
        5
    );

    let c = s
        .execute("builder.conversation.clearOld", json!({}))
        .unwrap();
    let edits = c["edits"].as_array().unwrap();
    assert_eq!(edits.len(), 3, "{c}");
    let kept: Vec<String> = edits
        .iter()
        .map(|e| e["userRequest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kept, vec!["make f2", "make f3", "make f4"]);
    assert_eq!(
        c["projectEvolution"]["majorChanges"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{c}"
    );
    assert_eq!(c["conversationId"], before["conversationId"]);
    assert_eq!(c["userPreferences"], json!({"k": 1}));
    assert_eq!(c["currentTopic"], json!("t"));
    assert_eq!(conv(&s)["edits"], c["edits"]);
    s.shutdown();
}

#[test]
fn conversation_reset_starts_a_new_conversation() {
    let (dir, s) = server_in_tempdir(vscode());
    update(&s, json!({"currentTopic": "old"}));
    s.apply(&file_block("src/a.js", "a\n"));
    let before = conv(&s);
    assert_eq!(before["edits"].as_array().unwrap().len(), 1);

    let c = s.execute("builder.conversation.reset", json!({})).unwrap();
    assert_ne!(c["conversationId"], before["conversationId"], "a new id");
    assert_eq!(c["edits"], json!([]));
    assert_eq!(c["messages"], json!([]));
    assert_eq!(c["projectEvolution"]["majorChanges"], json!([]));
    assert_eq!(conv(&s)["conversationId"], c["conversationId"]);
    // The files themselves are untouched.
    assert_eq!(read(dir.path(), "src/a.js"), "a\n");
    s.shutdown();
}

#[test]
fn conversation_delete_forgets_the_state_on_disk() {
    let (_dir, s) = server_in_tempdir(vscode());
    // Two updates a few ms apart, so a save happens whatever the timestamp resolution (see
    // `a_single_conversation_update_survives_a_restart` for the first-update case).
    update(&s, json!({"currentTopic": "first"}));
    std::thread::sleep(Duration::from_millis(5));
    update(&s, json!({"currentTopic": "to be deleted"}));
    let old = conv(&s)["conversationId"].as_str().unwrap().to_string();
    assert!(
        state_files(&s.state_dir)
            .iter()
            .any(|(_, t)| t.contains(&old)),
        "the state was persisted under BUILDER_STATE_DIR"
    );

    let c = s.execute("builder.conversation.delete", json!({})).unwrap();
    assert_eq!(c["deleted"], json!(true), "{c}");
    assert!(
        !state_files(&s.state_dir)
            .iter()
            .any(|(_, t)| t.contains(&old)),
        "the old state is gone from disk"
    );
    let now = conv(&s);
    assert_ne!(now["conversationId"], json!(old));
    assert_eq!(now["currentTopic"], Value::Null);
    s.shutdown();
}

#[test]
fn conversation_survives_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let first = {
        let s = TestServer::start(vscode().folder(dir.path()).state_dir(state.path()));
        update(
            &s,
            json!({"currentTopic": "persisted", "userPreferences": {"tone": "calm"}}),
        );
        let r = s.apply_with(
            json!({"response": file_block("src/p.js", "p\n"), "request": "persist me"}),
        );
        assert_eq!(r["applied"], json!(true));
        let c = conv(&s);
        s.shutdown();
        c
    };
    assert_eq!(first["edits"].as_array().unwrap().len(), 1);

    // A different client, same project and state dir.
    let s = TestServer::start(helix().folder(dir.path()).state_dir(state.path()));
    let again = conv(&s);
    for f in [
        "conversationId",
        "startedAt",
        "messages",
        "edits",
        "projectEvolution",
        "userPreferences",
        "currentTopic",
    ] {
        assert_eq!(again[f], first[f], "`{f}` after restart");
    }
    s.shutdown();
}

#[test]
fn a_single_conversation_update_survives_a_restart() {
    // The first thing a user does: set a topic and preferences, then close the editor.
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let first = {
        let s = TestServer::start(vscode().folder(dir.path()).state_dir(state.path()));
        let c = update(
            &s,
            json!({"currentTopic": "remember me", "userPreferences": {"lang": "ts"}}),
        );
        s.shutdown();
        c
    };
    let s = TestServer::start(vscode().folder(dir.path()).state_dir(state.path()));
    let again = conv(&s);
    assert_eq!(
        again["conversationId"], first["conversationId"],
        "same conversation after restart"
    );
    assert_eq!(again["currentTopic"], json!("remember me"));
    assert_eq!(again["userPreferences"], json!({"lang": "ts"}));
    s.shutdown();
}

#[test]
fn too_large_preferences_are_refused_and_the_state_is_unchanged() {
    let (_dir, s) = server_in_tempdir(vscode());
    update(
        &s,
        json!({"currentTopic": "kept", "userPreferences": {"a": 1}}),
    );
    let before = conv(&s);
    let files_before = state_files(&s.state_dir);

    let many: serde_json::Map<String, Value> =
        (0..60).map(|i| (format!("key{i}"), json!(i))).collect();
    let huge = json!({"blob": "x".repeat(64 * 1024)});
    for prefs in [Value::Object(many), huge] {
        let e = s.invalid_params(
            "builder.conversation.update",
            json!({"currentTopic": "must not change", "userPreferences": prefs}),
        );
        assert!(
            message(&e).len() < 2000,
            "the error does not echo the preferences"
        );
        assert_eq!(conv(&s), before, "state unchanged");
    }
    assert_eq!(state_files(&s.state_dir), files_before, "nothing persisted");
    s.shutdown();
}

// ---------------------------------------------------------------------------------------------
// createZip
// ---------------------------------------------------------------------------------------------

fn zip_project(root: &Path, outside: &Path) {
    #[rustfmt::skip]
    write_files(root, &[
        ("index.html", "<!doctype html>\n"),
        ("package.json", "{\"name\":\"proj\"}\n"),
        ("src/App.jsx", "export default function App() {}\n"),
        ("src/components/Hero.jsx", "export default function Hero() {}\n"),
        (".env", "SECRET=1\n"),
        (".env.local", "SECRET=2\n"),
        (".env.example", "SECRET=\n"),
        ("node_modules/react/index.js", "module.exports = {};\n"),
        (".git/config", "[core]\n"),
    ]);
    write_file(outside, "secret.txt", "outside\n");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root.join("src/App.jsx"), root.join("link.jsx")).unwrap();
        std::os::unix::fs::symlink(outside, root.join("outside-link")).unwrap();
    }
}

/// `proj` (a [`zip_project`] with its `outside` folder beside it in `tmp`) and a VS Code server
/// on it, its options passed through `configure`: (tmp, proj, server).
fn zip_server(
    configure: impl FnOnce(ClientOpts) -> ClientOpts,
) -> (tempfile::TempDir, PathBuf, TestServer) {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("proj");
    zip_project(&proj, &tmp.path().join("outside"));
    let s = TestServer::start(configure(vscode().folder(&proj)));
    (tmp, proj, s)
}

/// The client's settings become `v`, and the server has asked for them again.
fn reconfigure(s: &TestServer, v: Value) {
    s.set_config(v);
    let asked = s.config_answers();
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": null}),
    );
    s.wait_config_answers(asked + 1, Duration::from_secs(10));
}

fn zip_names(path: &Path) -> (BTreeSet<String>, zip::ZipArchive<std::fs::File>) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let z = zip::ZipArchive::new(f).expect("a valid zip");
    let names = z.file_names().map(String::from).collect();
    (names, z)
}

fn zip_text(z: &mut zip::ZipArchive<std::fs::File>, name: &str) -> String {
    let mut s = String::new();
    z.by_name(name).unwrap().read_to_string(&mut s).unwrap();
    s
}

#[test]
fn create_zip_excludes_secrets_dependencies_vcs_and_symlinks() {
    let (_tmp, proj, s) = zip_server(|o| o);
    let r = s.execute("builder.createZip", json!({})).unwrap();

    let out = proj.join("proj.zip");
    assert!(
        out.is_file(),
        "default output <project>.zip in the project: {r}"
    );
    assert_eq!(Path::new(r["path"].as_str().unwrap()), out.as_path(), "{r}");
    let expected: BTreeSet<String> = [
        "index.html",
        "package.json",
        ".env.example",
        "src/App.jsx",
        "src/components/Hero.jsx",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(r["files"], json!(expected.len()), "{r}");
    assert_eq!(
        r["bytes"],
        json!(std::fs::metadata(&out).unwrap().len()),
        "{r}"
    );

    let excluded: Vec<String> = r["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert!(!e["reason"].as_str().unwrap_or("").is_empty(), "{e}");
            e["path"]
                .as_str()
                .unwrap()
                .trim_end_matches('/')
                .to_string()
        })
        .collect();
    for p in ["node_modules", ".git", ".env", ".env.local"] {
        assert!(
            excluded.contains(&p.to_string()),
            "{p} not listed as excluded: {r}"
        );
    }
    #[cfg(unix)]
    for p in ["link.jsx", "outside-link"] {
        assert!(
            excluded.contains(&p.to_string()),
            "symlink {p} not listed as excluded: {r}"
        );
    }
    assert!(!excluded.contains(&".env.example".to_string()), "{r}");

    let (names, mut z) = zip_names(&out);
    assert_eq!(names, expected);
    assert_eq!(
        zip_text(&mut z, "src/App.jsx"),
        "export default function App() {}\n"
    );
    assert_eq!(zip_text(&mut z, ".env.example"), "SECRET=\n");
    s.shutdown();
}

#[test]
fn create_zip_of_a_subfolder() {
    let (_tmp, proj, s) = zip_server(|o| o);
    let r = s
        .execute(
            "builder.createZip",
            json!({"path": "src", "output": "exports/src.zip"}),
        )
        .unwrap();
    assert_eq!(r["files"], json!(2), "{r}");
    let (names, _) = zip_names(&proj.join("exports/src.zip"));
    let expected: BTreeSet<String> = ["App.jsx", "components/Hero.jsx"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(names, expected);
    s.shutdown();
}

#[test]
fn create_zip_refuses_a_path_leaving_the_project() {
    let (tmp, _proj, s) = zip_server(|o| o);
    let before = snapshot(tmp.path());
    for path in ["../x", "../outside", "/etc", "src/../../outside"] {
        let e = s
            .execute("builder.createZip", json!({"path": path}))
            .expect_err(&format!("path {path} should be refused"));
        assert_eq!(code(&e), -32602, "{path}: {e}");
        assert!(message(&e).contains("path"), "{path}: {e}");
    }
    #[cfg(unix)]
    {
        let e = s
            .execute("builder.createZip", json!({"path": "outside-link"}))
            .unwrap_err();
        assert_eq!(code(&e), -32602, "a symlink out of the project: {e}");
    }
    assert_eq!(snapshot(tmp.path()), before, "no zip written");
    s.shutdown();
}

#[test]
fn create_zip_output_is_relative_to_the_project() {
    let (_tmp, proj, s) = zip_server(|o| o);
    let r = s
        .execute("builder.createZip", json!({"output": "exports/site.zip"}))
        .unwrap();
    let out = proj.join("exports/site.zip");
    assert!(out.is_file(), "{r}");
    assert!(
        r["path"].as_str().unwrap().ends_with("exports/site.zip"),
        "{r}"
    );
    let (names, _) = zip_names(&out);
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(!proj.join("proj.zip").exists());
    s.shutdown();
}

#[test]
fn create_zip_size_caps_come_from_configuration() {
    let (tmp, proj, s) = zip_server(|o| o.config(json!({"zip": {"maxTotalBytes": 40}})));
    s.wait_config_answers(1, Duration::from_secs(10));
    let before = snapshot(tmp.path());
    let e = s.execute("builder.createZip", json!({})).unwrap_err();
    assert!(
        message(&e).contains("builder.zip.maxTotalBytes"),
        "the error names the setting: {e}"
    );
    assert_ne!(code(&e), -32601);
    assert_eq!(snapshot(tmp.path()), before, "no output, no temp file");
    assert!(!proj.join("proj.zip").exists());

    reconfigure(&s, json!({"zip": {"maxFiles": 2}}));
    let e = s.execute("builder.createZip", json!({})).unwrap_err();
    assert!(message(&e).contains("builder.zip.maxFiles"), "{e}");
    assert_eq!(snapshot(tmp.path()), before);

    reconfigure(&s, Value::Null);
    let r = s.execute("builder.createZip", json!({})).unwrap();
    assert_eq!(r["files"], json!(5), "defaults again: {r}");
    s.shutdown();
}

// ---------------------------------------------------------------------------------------------
// Tasks and unimplemented commands
// ---------------------------------------------------------------------------------------------

#[test]
fn task_status_of_an_unknown_task_is_invalid_params() {
    let (_dir, s) = server_in_tempdir(vscode());
    let e = s.invalid_params("builder.task.status", json!({"taskId": "nope"}));
    assert!(message(&e).contains("nope"), "{e}");
    s.shutdown();
}

#[test]
fn task_cancel_without_a_running_task() {
    let (_dir, s) = server_in_tempdir(vscode());
    let r = s.execute("builder.task.cancel", json!({})).unwrap();
    assert_eq!(r["cancelled"], json!(false), "{r}");
    // A finished task cannot be cancelled either.
    let started = s
        .execute(
            "builder.apply",
            json!({"response": file_block("a.js", "a\n"), "wait": false}),
        )
        .unwrap();
    let id = started["taskId"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while s
        .execute("builder.task.status", json!({"taskId": id}))
        .unwrap()["state"]
        == json!("running")
    {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let r = s
        .execute("builder.task.cancel", json!({"taskId": id}))
        .unwrap();
    assert_eq!(r["cancelled"], json!(false), "{r}");
    assert_eq!(
        s.execute("builder.task.status", json!({"taskId": id}))
            .unwrap()["state"],
        json!("done")
    );
    s.shutdown();
}
