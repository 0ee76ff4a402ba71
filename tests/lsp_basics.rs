//! The LSP surface: what `initialize` advertises, shutdown, and how projects are found
//! (workspace folders, Helix's `rootPath`, no root at all, runtime folder changes, nesting).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn folder_event(added: &[&Path], removed: &[&Path]) -> Value {
    let f =
        |p: &&Path| json!({"uri": file_uri(p), "name": p.file_name().unwrap().to_string_lossy()});
    json!({"event": {"added": added.iter().map(f).collect::<Vec<_>>(), "removed": removed.iter().map(f).collect::<Vec<_>>()}})
}

/// Applies one file `name` with `text` for `project` (a URI or a path): the answer creates it,
/// and only it, in `root`.
fn apply_for(s: &TestServer, project: Value, root: &Path, name: &str, text: &str) {
    let r = s.apply_with(json!({"response": file_block(name, text), "project": project}));
    assert_eq!(strings(&r["filesCreated"]), vec![name], "{r}");
    assert_eq!(read(root, name), text);
}

#[test]
fn initialize_advertises_every_command_and_capability() {
    let (_dir, s) = server_in_tempdir(vscode());
    let caps = &s.init["capabilities"];

    let advertised: Vec<String> = strings(&caps["executeCommandProvider"]["commands"]);
    let unique: BTreeSet<&str> = advertised.iter().map(String::as_str).collect();
    assert_eq!(
        unique.len(),
        advertised.len(),
        "duplicate commands: {advertised:?}"
    );
    // ALL_COMMANDS spells out every command of DESIGN.md §2 (no duplicates, checked below).
    let expected: BTreeSet<&str> = ALL_COMMANDS.iter().copied().collect();
    assert_eq!(unique, expected);
    assert_eq!(expected.len(), ALL_COMMANDS.len());

    let ca = &caps["codeActionProvider"];
    assert!(
        ca == &json!(true) || ca.is_object(),
        "codeActionProvider: {ca}"
    );
    if ca.is_object() {
        assert!(
            strings(&ca["codeActionKinds"]).contains(&"quickfix".to_string()),
            "{ca}"
        );
    }

    let sync = &caps["textDocumentSync"];
    let change = if sync.is_object() {
        &sync["change"]
    } else {
        sync
    };
    assert_eq!(change, &json!(2), "incremental sync: {sync}");
    if sync.is_object() {
        assert_eq!(sync["openClose"], json!(true), "{sync}");
    }

    let wf = &caps["workspace"]["workspaceFolders"];
    assert_eq!(wf["supported"], json!(true), "{wf}");
    let notes = &wf["changeNotifications"];
    assert!(
        notes == &json!(true) || notes.is_string(),
        "changeNotifications: {notes}"
    );

    assert_eq!(caps["positionEncoding"], json!("utf-16"));
    assert_eq!(s.init["serverInfo"]["name"], json!("builder-lsp"));
    assert_eq!(
        s.init["serverInfo"]["version"],
        json!(env!("CARGO_PKG_VERSION"))
    );
    s.shutdown();
}

#[test]
fn position_encoding_is_negotiated_per_client() {
    let dir = tempfile::tempdir().unwrap();
    for (opts, want) in [
        (vscode(), "utf-16"),
        (neovim(), "utf-8"),
        (helix(), "utf-8"),
    ] {
        let name = format!("{:?}", opts.preset);
        let s = TestServer::start(opts.folder(dir.path()));
        assert_eq!(
            s.init["capabilities"]["positionEncoding"],
            json!(want),
            "{name}"
        );
        s.shutdown();
    }
    // A client that offers nothing gets the protocol default (absent means utf-16 too).
    let s = TestServer::start(bare().folder(dir.path()));
    let enc = &s.init["capabilities"]["positionEncoding"];
    assert!(enc.is_null() || enc == &json!("utf-16"), "bare: {enc}");
    s.shutdown();
}

#[test]
fn shutdown_then_exit_ends_the_process_with_status_0() {
    let (_dir, s) = server_in_tempdir(helix());
    // The server works before shutdown…
    assert!(s.execute("builder.conversation.get", json!({})).is_ok());
    assert!(s.is_running());
    // …and `shutdown` + `exit` end it cleanly (asserted inside).
    s.shutdown();
}

#[test]
fn helix_root_path_only_gives_a_working_project() {
    let (dir, s) = server_in_tempdir(helix());
    assert_eq!(s.opts.initialize_params()["rootUri"], Value::Null);
    assert_eq!(s.opts.initialize_params()["workspaceFolders"], json!([]));

    let r = s.apply(&file_block("src/hello.js", "export const hi = 'helix';\n"));
    assert_eq!(strings(&r["filesCreated"]), vec!["src/hello.js"], "{r}");
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(
        read(dir.path(), "src/hello.js"),
        "export const hi = 'helix';\n"
    );
    assert_eq!(
        s.edits().len(),
        1,
        "Helix supports workspace edits: one applyEdit"
    );
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn no_root_at_all_project_comes_from_the_first_opened_document() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("app");
    write_file(&app, "package.json", "{\"name\":\"app\"}\n");
    let main = write_file(&app, "src/main.jsx", "import './index.css';\n");
    let s = TestServer::start(vscode());
    assert_eq!(s.opts.initialize_params()["rootUri"], Value::Null);

    // Before any document: a clear error, not a crash.
    let e = s
        .execute("builder.conversation.get", json!({}))
        .unwrap_err();
    assert!(message(&e).contains("no project"), "{e}");

    s.open(&main, "import './index.css';\n");
    s.sync();
    let r = s.apply(&file_block("src/new.js", "export default 1;\n"));
    assert_eq!(strings(&r["filesCreated"]), vec!["src/new.js"], "{r}");
    assert_eq!(read(&app, "src/new.js"), "export default 1;\n");
    assert!(!tmp.path().join("src/new.js").exists());
    s.shutdown();
}

#[test]
fn workspace_folders_added_and_removed_at_runtime_are_honoured() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    for d in [&a, &b, &c] {
        std::fs::create_dir_all(d).unwrap();
    }
    let s = TestServer::start(vscode().folder(&a).folder(&b));
    // b works at first.
    let r = s.apply_with(json!({"response": file_block("x.js", "b\n"), "project": file_uri(&b)}));
    assert_eq!(strings(&r["filesCreated"]), vec!["x.js"]);
    assert_eq!(read(&b, "x.js"), "b\n");

    s.notify(
        "workspace/didChangeWorkspaceFolders",
        folder_event(&[&c], &[&b]),
    );
    s.sync();

    let e = s.invalid_params(
        "builder.apply",
        json!({"response": file_block("y.js", "y\n"), "project": file_uri(&b), "wait": true}),
    );
    assert!(message(&e).contains(b.to_str().unwrap()), "{e}");
    assert!(!b.join("y.js").exists());

    apply_for(&s, json!(file_uri(&c)), &c, "y.js", "c\n");
    // Paths work as well as URIs.
    apply_for(&s, json!(a.to_str().unwrap()), &a, "z.js", "a\n");
    s.shutdown();
}

#[test]
fn nested_folders_the_longest_prefix_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let outer = tmp.path().join("outer");
    let inner = outer.join("packages/inner");
    let inner_file = write_file(&inner, "src/App.jsx", "export default () => null;\n");
    let outer_file = write_file(&outer, "src/main.js", "main\n");
    let s = TestServer::start(vscode().folder(&outer).folder(&inner));

    apply_for(
        &s,
        json!(file_uri(&inner_file)),
        &inner,
        "made.js",
        "inner\n",
    );
    assert!(!outer.join("made.js").exists());

    apply_for(
        &s,
        json!(file_uri(&outer_file)),
        &outer,
        "made.js",
        "outer\n",
    );
    assert_eq!(read(&inner, "made.js"), "inner\n");
    s.shutdown();
}

#[test]
fn project_outside_every_folder_is_an_error_naming_the_path() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("proj");
    std::fs::create_dir_all(&proj).unwrap();
    let elsewhere = tmp.path().join("elsewhere/src/a.js");
    let s = TestServer::start(vscode().folder(&proj));
    let before = snapshot(tmp.path());
    let e = s.invalid_params("builder.apply", json!({"response": file_block("a.js", "x\n"), "project": file_uri(&elsewhere), "wait": true}));
    assert!(message(&e).contains(elsewhere.to_str().unwrap()), "{e}");
    // A project-prefix lookalike is not inside the project either.
    let lookalike = tmp.path().join("projection/a.js");
    let e = s
        .execute(
            "builder.conversation.get",
            json!({"project": file_uri(&lookalike)}),
        )
        .unwrap_err();
    assert!(message(&e).contains(lookalike.to_str().unwrap()), "{e}");
    assert_eq!(snapshot(tmp.path()), before);
    s.shutdown();
}

/// The harness's editor model must be right, or every edit assertion above is meaningless.
#[test]
fn harness_applies_text_edits_like_an_editor() {
    let edit = |sl: u32, sc: u32, el: u32, ec: u32, t: &str| json!({"range": {"start": {"line": sl, "character": sc}, "end": {"line": el, "character": ec}}, "newText": t});
    let text = "a😀b\r\nc漢d\re\n";
    let mut w = Vec::new();
    // Replace the emoji: UTF-16 columns 1..3, UTF-8 1..5, UTF-32 1..2.
    for (enc, end) in [
        (Encoding::Utf16, 3),
        (Encoding::Utf8, 5),
        (Encoding::Utf32, 2),
    ] {
        let out = apply_text_edits(text, &[edit(0, 1, 0, end, "X")], enc, &mut w).unwrap();
        assert_eq!(out, "aXb\r\nc漢d\re\n", "{enc:?}");
    }
    // `\r\n` and a lone `\r` are line breaks; two edits apply against the original text.
    let out = apply_text_edits(
        text,
        &[edit(2, 0, 2, 1, "E"), edit(1, 1, 1, 2, "K")],
        Encoding::Utf16,
        &mut w,
    )
    .unwrap();
    assert_eq!(out, "a😀b\r\ncKd\rE\n");
    // The end of the document (after the final newline) is line 3, character 0.
    let out = apply_text_edits(text, &[edit(0, 0, 3, 0, "all")], Encoding::Utf8, &mut w).unwrap();
    assert_eq!(out, "all");
    assert!(w.is_empty(), "{w:?}");
    // A position inside a character is refused; past the end of a line is clamped and noted.
    assert!(apply_text_edits(text, &[edit(0, 2, 0, 2, "")], Encoding::Utf16, &mut w).is_err());
    assert!(apply_text_edits(text, &[edit(0, 3, 0, 3, "")], Encoding::Utf8, &mut w).is_err());
    let out = apply_text_edits(text, &[edit(0, 3, 0, 99, "")], Encoding::Utf16, &mut w).unwrap();
    assert_eq!(out, "a😀\r\nc漢d\re\n");
    assert_eq!(w.len(), 1, "{w:?}");
    // Overlapping edits are refused.
    assert!(apply_text_edits(
        text,
        &[edit(0, 0, 0, 2, ""), edit(0, 1, 0, 3, "")],
        Encoding::Utf16,
        &mut Vec::new()
    )
    .is_err());
    // URIs round-trip, spaces and non-ASCII included.
    let p = std::path::Path::new("/tmp/a b/漢字 #1.js");
    assert_eq!(uri_path(&file_uri(p)), p);
}

/// Helix shows neither a command's answer nor its error (it only logs them): builder-lsp also
/// sends them as messages. Helix's `config` table arrives nested under `builder` in
/// initializationOptions, and is honoured.
#[test]
fn helix_sees_command_outcomes_as_messages_and_nested_init_options_apply() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start(
        helix()
            .root_path(dir.path())
            .init_options(json!({"builder": {"model": "openai/gpt-helix-test"}})),
    );
    let models = s.execute("builder.models", json!({})).unwrap();
    assert_eq!(
        models["defaultModel"],
        json!("openai/gpt-helix-test"),
        "{models}"
    );
    s.execute("builder.sandbox.status", json!({})).unwrap();
    let e = s
        .execute("builder.sandbox.create", json!({"provider": "docker"}))
        .unwrap_err();
    assert!(message(&e).contains("docker"));
    let shown = |pred: &dyn Fn(&Value) -> bool| {
        s.wait_for(
            |m| {
                m.iter()
                    .any(|x| x["method"] == json!("window/showMessage") && pred(&x["params"]))
            },
            Duration::from_secs(5),
        )
    };
    assert!(shown(&|p| p["type"] == json!(3)
        && p["message"]
            .as_str()
            .unwrap_or("")
            .contains("no sandbox is running")));
    assert!(shown(
        &|p| p["type"] == json!(1) && p["message"].as_str().unwrap_or("").contains("docker")
    ));
    s.shutdown();

    // Other clients display answers themselves: no extra messages for them.
    let s = TestServer::start(vscode().folder(dir.path()));
    s.execute("builder.sandbox.status", json!({})).unwrap();
    s.sync();
    assert!(
        !s.messages_of("window/showMessage")
            .iter()
            .any(|m| m["params"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("no sandbox is running")),
        "{:?}",
        s.messages_of("window/showMessage")
    );
    s.shutdown();
}
