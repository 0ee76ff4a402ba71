//! `builder.apply` end to end: one `workspace/applyEdit`, editor buffers as the base, position
//! encodings, refusals and fallbacks, protected/truncated/duplicate/edit blocks, the
//! conversation record, tasks, and a server that never blocks on the client.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

/// Used only if the shipped example is missing.
const INLINE_EXAMPLE: &str = r#"Here is the app.

<file path="index.html">
<!doctype html>
<html><body><div id="root"></div><script type="module" src="/src/main.jsx"></script></body></html>
</file>

<file path="src/main.jsx">
import React from 'react';
import ReactDOM from 'react-dom/client';
import App from './App.jsx';
import './index.css';

ReactDOM.createRoot(document.getElementById('root')).render(<App />);
</file>

<file path="src/index.css">
@tailwind base;
@tailwind components;
@tailwind utilities;
</file>

<file path="src/App.jsx">
import Hero from './components/Hero.jsx';

export default function App() {
  return <main className="min-h-screen"><Hero /></main>;
}
</file>

<file path="src/components/Hero.jsx">
export default function Hero() {
  return <section className="py-24 text-center"><h1 className="text-5xl">Hello</h1></section>;
}
</file>

<explanation>
A small landing page.
</explanation>
"#;

fn example() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/react-tailwind-app.txt"
    ))
    .unwrap_or_else(|_| INLINE_EXAMPLE.to_string())
}

/// `(path, content)` of every `<file>` block of a well-formed answer, in order.
fn blocks(answer: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = answer;
    while let Some(i) = rest.find("<file path=\"") {
        rest = &rest[i + "<file path=\"".len()..];
        let q = rest.find("\">").expect("closing quote");
        let path = rest[..q].to_string();
        rest = &rest[q + 2..];
        let body = rest.strip_prefix('\n').unwrap_or(rest);
        let end = body.find("</file>").expect("closing tag");
        out.push((path, body[..end].to_string()));
        rest = &body[end..];
    }
    out
}

/// The fields of every apply result that are arrays…
#[rustfmt::skip]
const ARRAY_FIELDS: &[&str] = &[
    "filesCreated", "filesUpdated", "filesSkipped",
    "packagesInstalled", "packagesAlreadyInstalled", "packagesFailed",
    "commandsExecuted", "errors", "packages", "commands", "truncated", "writtenToDisk",
];
/// …and the rest.
const SCALAR_FIELDS: &[&str] = &["explanation", "applied", "appliedVia", "message"];

fn assert_result_shape(r: &Value) {
    for f in ARRAY_FIELDS.iter().chain(SCALAR_FIELDS) {
        assert!(r.get(*f).is_some(), "result lacks `{f}`: {r}");
    }
    for f in ARRAY_FIELDS {
        assert!(r[f].is_array(), "`{f}` is not an array: {r}");
    }
    assert!(
        r["explanation"].is_string() && r["message"].is_string() && r["appliedVia"].is_string(),
        "{r}"
    );
    assert!(r["applied"].is_boolean(), "{r}");
}

/// The `TextDocumentEdit`s of an edit request, by file path.
fn text_edits_for(edit: &EditRecord, path: &Path) -> Vec<Value> {
    let uri = file_uri(path);
    let e = &edit.params["edit"];
    let mut out = Vec::new();
    if let Some(dc) = e["documentChanges"].as_array() {
        for op in dc {
            if op["textDocument"]["uri"] == json!(uri) {
                out.push(op.clone());
            }
        }
    }
    if let Some(edits) = e["changes"].get(&uri) {
        out.push(json!({"textDocument": {"uri": uri, "version": null}, "edits": edits}));
    }
    out
}

#[test]
fn example_answer_lands_in_one_workspace_edit_with_progress() {
    let dir = tempfile::tempdir().unwrap();
    let answer = example();
    let expected = blocks(&answer);
    assert!(expected.len() >= 4, "the example should have several files");
    let s = TestServer::start(vscode().folder(dir.path()));

    let r = s
        .execute_with_token(
            "builder.apply",
            json!({"response": answer, "wait": true}),
            "apply-1",
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_result_shape(&r);
    for (path, content) in &expected {
        assert_eq!(&read(dir.path(), path), content, "{path}");
    }
    let paths: Vec<String> = expected.iter().map(|(p, _)| p.clone()).collect();
    assert_eq!(strings(&r["filesCreated"]), paths, "{r}");
    assert_eq!(r["filesUpdated"], json!([]));
    assert_eq!(r["filesSkipped"], json!([]));
    assert_eq!(r["errors"], json!([]));
    assert_eq!(r["truncated"], json!([]));
    assert_eq!(r["applied"], json!(true));
    assert_eq!(r["appliedVia"], json!("workspaceEdit"));
    assert_eq!(r["writtenToDisk"], json!([]));
    assert!(r.get("failureReason").is_none_or(Value::is_null), "{r}");
    assert!(!r["explanation"].as_str().unwrap().is_empty(), "{r}");
    assert!(!r["message"].as_str().unwrap().is_empty(), "{r}");

    // Exactly one applyEdit, carrying every file.
    let edits = s.edits();
    assert_eq!(edits.len(), 1, "one workspace/applyEdit");
    assert_eq!(edits[0].answer, json!({"applied": true}));
    assert!(edits[0].warnings.is_empty(), "{:?}", edits[0].warnings);
    assert_eq!(s.messages_of("workspace/applyEdit").len(), 1);

    // $/progress on the client's token: begin … report(s) … end.
    let p = s.progress_ended("apply-1");
    assert!(p.len() >= 3, "begin, report, end: {p:?}");
    assert_eq!(p[0]["kind"], json!("begin"), "{p:?}");
    assert_eq!(p[p.len() - 1]["kind"], json!("end"), "{p:?}");
    let reports: Vec<&Value> = p.iter().filter(|v| v["kind"] == json!("report")).collect();
    assert!(
        reports.iter().any(|v| {
            let m = v["message"].as_str().unwrap_or("");
            paths.iter().any(|f| m.contains(f.as_str()))
        }),
        "no progress report names a file: {p:?}"
    );
    assert!(
        p.iter().filter(|v| v["kind"] == json!("begin")).count() == 1,
        "{p:?}"
    );
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn open_buffer_with_unsaved_text_is_the_base_of_the_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let app = write_file(dir.path(), "src/App.jsx", "// on disk\nexport default 1;\n");
    let s = TestServer::start(vscode().folder(dir.path()));
    s.open(&app, "// on disk\nexport default 1;\n");
    // Unsaved edits: the buffer is longer than the file on disk.
    let v = s.change(
        &app,
        "// edited in the editor, not saved\nexport default 2;\nconst extra = 3;\n",
    );
    assert_eq!(v, 2);
    s.sync();

    let new = "export default function App() {\n  return <h1>New</h1>;\n}\n";
    let r = s.apply(&file_block("src/App.jsx", new));
    assert_eq!(strings(&r["filesUpdated"]), vec!["src/App.jsx"], "{r}");
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(r["writtenToDisk"], json!([]), "{r}");
    assert_eq!(r["applied"], json!(true), "{r}");

    assert_eq!(
        s.doc_text(&app).as_deref(),
        Some(new),
        "the buffer has the new text"
    );
    assert_eq!(
        read(dir.path(), "src/App.jsx"),
        "// on disk\nexport default 1;\n",
        "disk untouched"
    );

    let edits = s.edits();
    assert_eq!(edits.len(), 1);
    assert!(edits[0].warnings.is_empty(), "{:?}", edits[0].warnings);
    let tde = text_edits_for(&edits[0], &app);
    assert_eq!(tde.len(), 1, "{:?}", edits[0].params);
    assert_eq!(
        tde[0]["textDocument"]["version"],
        json!(2),
        "versioned against the buffer"
    );
    // The replaced range is the buffer's (3 lines + final newline), not the disk's (2 lines).
    assert_eq!(
        tde[0]["edits"][0]["range"]["end"],
        json!({"line": 3, "character": 0}),
        "{}",
        tde[0]
    );
    s.shutdown();
}

/// Old text whose last line holds emoji and CJK, so the end position depends on the encoding.
const OLD_DISK: &str = "export const hi = '你好';\nexport const e = '😀🚀 漢字';";
const OLD_BUFFER: &str = "const a = '漢字😀';\r\nconst b = 'ok'; // 👩‍💻 café";
const OLD_BUFFER_LAST_LINE: &str = "const b = 'ok'; // 👩‍💻 café";
const OLD_DISK_LAST_LINE: &str = "export const e = '😀🚀 漢字';";

fn encoding_roundtrip(opts: ClientOpts, enc: Encoding, other: Encoding) {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "src/i18n.js", OLD_DISK);
    let buffer = write_file(dir.path(), "src/open.js", "disk text of open.js\n");
    let s = TestServer::start(opts.folder(dir.path()));
    assert_eq!(s.encoding(), enc);
    s.open(&buffer, OLD_BUFFER);
    s.sync();

    let new_disk = "export const hi = '👋 hello';\n";
    let new_buffer = "const a = 'ascii only';\n";
    let r = s.apply(&format!(
        "{}{}",
        file_block("src/i18n.js", new_disk),
        file_block("src/open.js", new_buffer)
    ));
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(r["applied"], json!(true), "{r}");
    assert_eq!(read(dir.path(), "src/i18n.js"), new_disk);
    assert_eq!(s.doc_text(&buffer).as_deref(), Some(new_buffer));
    assert_eq!(read(dir.path(), "src/open.js"), "disk text of open.js\n");

    let edits = s.edits();
    assert_eq!(edits.len(), 1);
    assert!(
        edits[0].warnings.is_empty(),
        "positions needed clamping: {:?}",
        edits[0].warnings
    );
    let disk_edit = text_edits_for(&edits[0], &dir.path().join("src/i18n.js"));
    let want = enc.len(OLD_DISK_LAST_LINE);
    assert_ne!(want, other.len(OLD_DISK_LAST_LINE));
    assert_eq!(
        disk_edit[0]["edits"][0]["range"]["end"],
        json!({"line": 1, "character": want}),
        "{:?}",
        edits[0].params
    );
    let buf_edit = text_edits_for(&edits[0], &buffer);
    assert_eq!(
        buf_edit[0]["edits"][0]["range"]["end"],
        json!({"line": 1, "character": enc.len(OLD_BUFFER_LAST_LINE)}),
        "{:?}",
        edits[0].params
    );
    s.shutdown();
}

#[test]
fn utf16_ranges_for_vscode_with_emoji_and_cjk() {
    encoding_roundtrip(vscode(), Encoding::Utf16, Encoding::Utf8);
}

#[test]
fn utf8_ranges_for_helix_with_emoji_and_cjk() {
    encoding_roundtrip(helix(), Encoding::Utf8, Encoding::Utf16);
}

#[test]
fn neovim_capabilities_new_files_and_buffer_updates_both_land() {
    // Neovim 0.11 offers applyEdit and resource operations but does not set `documentChanges`;
    // resource operations only exist in `documentChanges`, so the server uses that form, and
    // Neovim really creates files from `create` ops (tests/nvim.rs checks it in a real Neovim).
    let dir = tempfile::tempdir().unwrap();
    let buf = write_file(dir.path(), "src/App.jsx", "old on disk\n");
    let s = TestServer::start_with_open(neovim().folder(dir.path()), &buf, "old in buffer 😀\n");
    let r = s.apply(&format!(
        "{}{}",
        file_block("src/App.jsx", "new app\n"),
        file_block("src/components/New.jsx", "export default 1;\n")
    ));
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(r["applied"], json!(true), "{r}");
    assert_eq!(r["appliedVia"], json!("workspaceEdit"), "{r}");
    assert_eq!(s.doc_text(&buf).as_deref(), Some("new app\n"));
    assert_eq!(read(dir.path(), "src/App.jsx"), "old on disk\n");
    // Neovim's new buffer already has a final line and saving adds the newline, so the
    // inserted text omits the last `\n` (this harness writes it as received).
    assert_eq!(
        read(dir.path(), "src/components/New.jsx"),
        "export default 1;"
    );
    assert_eq!(s.edits().len(), 1, "exactly one applyEdit");
    let e = &s.edits()[0];
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    let ops = e.params["edit"]["documentChanges"]
        .as_array()
        .expect("documentChanges");
    let creates: Vec<&Value> = ops.iter().filter(|o| o["kind"] == "create").collect();
    assert_eq!(creates.len(), 1, "{ops:?}");
    assert!(
        creates[0].get("options").is_none_or(Value::is_null),
        "no ignoreIfExists for Neovim"
    );
    s.shutdown();
}

fn refusal_setup(dir: &Path) -> (std::path::PathBuf, String) {
    write_file(dir, "src/existing.js", "existing old\n");
    let open = write_file(dir, "src/open.js", "open on disk\n");
    let answer = format!(
        "{}{}{}",
        file_block("src/new.js", "brand new\n"),
        file_block("src/existing.js", "existing new\n"),
        file_block("src/open.js", "open new\n"),
    );
    (open, answer)
}

fn assert_fallback(s: &TestServer, dir: &Path, open: &Path, r: &Value, reason_part: &str) {
    assert_result_shape(r);
    assert_eq!(r["applied"], json!(false), "{r}");
    assert_eq!(r["appliedVia"], json!("disk"), "{r}");
    let reason = r["failureReason"]
        .as_str()
        .unwrap_or_else(|| panic!("no failureReason: {r}"));
    assert!(reason.contains(reason_part), "{r}");
    assert_eq!(
        sorted_strings(&r["writtenToDisk"]),
        vec!["src/existing.js", "src/new.js"],
        "{r}"
    );
    assert_eq!(read(dir, "src/new.js"), "brand new\n");
    assert_eq!(read(dir, "src/existing.js"), "existing new\n");
    // The open file: neither its buffer nor its disk copy changed, and it is reported.
    assert_eq!(s.doc_text(open).as_deref(), Some("open buffer\n"));
    assert_eq!(read(dir, "src/open.js"), "open on disk\n");
    assert!(errors_name(r, "src/open.js"), "{r}");
    assert!(!lists(r, "filesUpdated", "src/open.js"), "{r}");
    assert!(lists(r, "filesCreated", "src/new.js"), "{r}");
    assert!(lists(r, "filesUpdated", "src/existing.js"), "{r}");
    assert_eq!(s.edits().len(), 1, "one applyEdit, answered with a refusal");
}

/// The client answers the edit with `behavior`: closed files are written to disk, the open one
/// is left alone and reported, and the reason given is `reason`.
fn falls_back_to_disk(behavior: ApplyBehavior, reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (open, answer) = refusal_setup(dir.path());
    let s = TestServer::start_with_open(vscode().folder(dir.path()), &open, "open buffer\n");
    s.set_apply_behavior(behavior);
    let r = s.apply(&answer);
    assert_fallback(&s, dir.path(), &open, &r, reason);
    s.shutdown();
}

#[test]
fn refused_edit_falls_back_to_disk_for_closed_files_only() {
    let reason = "the user pressed cancel";
    falls_back_to_disk(ApplyBehavior::Refuse(reason.into()), reason);
}

#[test]
fn edit_answered_with_an_error_falls_back_like_a_refusal() {
    let reason = "workspace is read-only";
    falls_back_to_disk(ApplyBehavior::Error(reason.into()), reason);
}

#[test]
fn stale_buffer_version_makes_the_client_refuse_and_nothing_half_applies() {
    // The harness refuses a versioned edit whose version is not the buffer's: the server's
    // answer must then report the open file as not applied, never as updated.
    let dir = tempfile::tempdir().unwrap();
    let open = write_file(dir.path(), "src/open.js", "disk\n");
    let s = TestServer::start_with_open(vscode().folder(dir.path()), &open, "buffer v1\n");
    // Answer the edit only after a further keystroke in the buffer.
    s.set_apply_behavior(ApplyBehavior::Delay(Duration::from_millis(300)));
    let r = std::thread::scope(|scope| {
        let h = scope.spawn(|| s.apply(&file_block("src/open.js", "generated\n")));
        assert!(s.wait_for_method("workspace/applyEdit", Duration::from_secs(10)));
        s.change(&open, "buffer v2 typed while the edit was pending\n");
        h.join().unwrap()
    });
    assert_eq!(
        s.doc_text(&open).as_deref(),
        Some("buffer v2 typed while the edit was pending\n")
    );
    assert_eq!(read(dir.path(), "src/open.js"), "disk\n");
    assert_eq!(r["applied"], json!(false), "{r}");
    assert!(errors_name(&r, "src/open.js"), "{r}");
    assert!(!lists(&r, "filesUpdated", "src/open.js"), "{r}");
    s.shutdown();
}

#[test]
fn bare_client_gets_everything_written_to_disk() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "src/App.jsx", "old\n");
    let opened = write_file(dir.path(), "src/open.js", "open disk\n");
    let s = TestServer::start_with_open(bare().folder(dir.path()), &opened, "open buffer\n");
    let r = s.apply(&format!(
        "{}{}{}",
        file_block("src/App.jsx", "new app\n"),
        file_block("src/lib/util.js", "export const u = 1;\n"),
        file_block("src/open.js", "generated\n"),
    ));
    assert_result_shape(&r);
    assert_eq!(
        s.edits().len(),
        0,
        "no applyEdit to a client without applyEdit"
    );
    assert!(s.messages_of("workspace/applyEdit").is_empty());
    assert_eq!(r["appliedVia"], json!("disk"), "{r}");
    assert_eq!(
        sorted_strings(&r["writtenToDisk"]),
        vec!["src/App.jsx", "src/lib/util.js"],
        "{r}"
    );
    assert_eq!(strings(&r["filesCreated"]), vec!["src/lib/util.js"], "{r}");
    assert_eq!(strings(&r["filesUpdated"]), vec!["src/App.jsx"], "{r}");
    assert_eq!(read(dir.path(), "src/App.jsx"), "new app\n");
    assert_eq!(read(dir.path(), "src/lib/util.js"), "export const u = 1;\n");
    // An open buffer is never overwritten behind the editor's back.
    assert_eq!(read(dir.path(), "src/open.js"), "open disk\n");
    assert!(errors_name(&r, "src/open.js"), "{r}");
    s.shutdown();
}

#[test]
fn protected_files_are_skipped_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "package.json", "{\"name\":\"app\"}\n");
    write_file(dir.path(), "vite.config.ts", "export default {};\n");
    let answer = format!(
        "{}{}{}{}",
        file_block("package.json", "{\"name\":\"hijacked\"}\n"),
        file_block("vite.config.ts", "export default { evil: true };\n"),
        file_block(".env.local", "SECRET=1\n"),
        file_block("src/ok.js", "ok\n"),
    );
    let s = TestServer::start(vscode().folder(dir.path()));
    let r = s.apply(&answer);
    for p in ["package.json", "vite.config.ts", ".env.local"] {
        let reason = skip_reason(&r, p).unwrap_or_else(|| panic!("{p} not skipped: {r}"));
        assert!(!reason.is_empty(), "{p}: empty reason");
    }
    assert_eq!(strings(&r["filesCreated"]), vec!["src/ok.js"], "{r}");
    assert_eq!(read(dir.path(), "package.json"), "{\"name\":\"app\"}\n");
    assert_eq!(read(dir.path(), "vite.config.ts"), "export default {};\n");
    assert!(!dir.path().join(".env.local").exists());

    let r = s.apply_with(json!({"response": answer, "allowProtected": true}));
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(
        sorted_strings(&r["filesUpdated"]),
        vec!["package.json", "vite.config.ts"],
        "{r}"
    );
    assert_eq!(strings(&r["filesCreated"]), vec![".env.local"], "{r}");
    assert_eq!(
        read(dir.path(), "package.json"),
        "{\"name\":\"hijacked\"}\n"
    );
    assert_eq!(
        read(dir.path(), "vite.config.ts"),
        "export default { evil: true };\n"
    );
    assert_eq!(read(dir.path(), ".env.local"), "SECRET=1\n");
    s.shutdown();
}

/// Generated code never lands in `node_modules` — named directly, in a nested workspace, or
/// through a symlinked folder that leads there — unless `allowProtected` says so.
#[test]
fn node_modules_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "package.json", "{\"name\":\"app\"}\n");
    write_file(
        dir.path(),
        "node_modules/left-pad/index.js",
        "module.exports = 1;\n",
    );
    std::os::unix::fs::symlink(
        dir.path().join("node_modules/left-pad"),
        dir.path().join("vendored"),
    )
    .unwrap();
    let answer = format!(
        "{}{}{}{}",
        file_block("node_modules/evil/index.js", "require('child_process');\n"),
        file_block("apps/web/Node_Modules/x.js", "x\n"),
        file_block("vendored/index.js", "module.exports = 'pwned';\n"),
        file_block("src/ok.js", "ok\n"),
    );
    let s = TestServer::start(vscode().folder(dir.path()));
    let r = s.apply(&answer);
    for p in [
        "node_modules/evil/index.js",
        "apps/web/Node_Modules/x.js",
        "vendored/index.js",
    ] {
        assert_skipped(&r, p, "node_modules");
    }
    assert_eq!(strings(&r["filesCreated"]), vec!["src/ok.js"], "{r}");
    assert!(!dir.path().join("node_modules/evil").exists());
    assert_eq!(
        read(dir.path(), "node_modules/left-pad/index.js"),
        "module.exports = 1;\n"
    );

    let r = s.apply_with(json!({"response": answer, "allowProtected": true}));
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(
        read(dir.path(), "node_modules/evil/index.js"),
        "require('child_process');\n"
    );
    s.shutdown();
}

#[test]
fn truncated_last_file_is_skipped_and_listed() {
    let (dir, s) = server_in_tempdir(vscode());
    let answer = format!(
        "{}<file path=\"src/b.js\">\nexport const b = () => {{\n  return <div",
        file_block("src/a.js", "export const a = 1;\n")
    );
    let r = s.apply(&answer);
    assert_eq!(strings(&r["truncated"]), vec!["src/b.js"], "{r}");
    assert_skipped(&r, "src/b.js", "truncated");
    assert_eq!(strings(&r["filesCreated"]), vec!["src/a.js"], "{r}");
    assert_eq!(read(dir.path(), "src/a.js"), "export const a = 1;\n");
    assert!(!dir.path().join("src/b.js").exists());
    s.shutdown();
}

#[test]
fn duplicate_blocks_the_last_complete_one_wins() {
    let (dir, s) = server_in_tempdir(vscode());
    let answer = format!(
        "{}{}{}<file path=\"src/dup.js\">\nv3 never finished",
        file_block("src/dup.js", "v1\n"),
        file_block("src/other.js", "other\n"),
        file_block("src/dup.js", "v2\n"),
    );
    let r = s.apply(&answer);
    assert_eq!(r["errors"], json!([]), "{r}");
    assert_eq!(read(dir.path(), "src/dup.js"), "v2\n");
    let created = strings(&r["filesCreated"]);
    assert_eq!(
        created.iter().filter(|p| *p == "src/dup.js").count(),
        1,
        "{r}"
    );
    assert!(created.contains(&"src/other.js".to_string()), "{r}");
    s.shutdown();
}

#[test]
fn edit_blocks_change_files_and_a_missing_search_is_an_error_for_that_file() {
    let dir = tempfile::tempdir().unwrap();
    let util_old = "export function add(a, b) {\n  return a + b;\n}\n";
    write_file(dir.path(), "src/util.js", util_old);
    write_file(dir.path(), "src/other.js", "export const other = 1;\n");
    let s = TestServer::start(vscode().folder(dir.path()));
    let answer = "<edit path=\"src/util.js\">\n<search>\n  return a + b;\n</search>\n<replace>\n  return Number(a) + Number(b);\n</replace>\n</edit>\n\
                  <edit path=\"src/other.js\">\n<search>\nthis text is not in the file\n</search>\n<replace>\nboom\n</replace>\n</edit>\n";
    let r = s.apply(answer);
    assert_eq!(
        read(dir.path(), "src/util.js"),
        "export function add(a, b) {\n  return Number(a) + Number(b);\n}\n"
    );
    assert_eq!(strings(&r["filesUpdated"]), vec!["src/util.js"], "{r}");
    assert_eq!(
        read(dir.path(), "src/other.js"),
        "export const other = 1;\n"
    );
    let errors = strings(&r["errors"]);
    assert_eq!(errors.len(), 1, "{r}");
    assert!(errors[0].contains("src/other.js"), "{r}");
    assert!(skip_reason(&r, "src/other.js").is_some(), "{r}");
    s.shutdown();
}

#[test]
fn identical_content_is_skipped_as_unchanged() {
    let (_dir, s) = server_with_files(vscode(), &[("src/same.js", "export const same = true;\n")]);
    let r = s.apply(&file_block("src/same.js", "export const same = true;\n"));
    assert_skipped(&r, "src/same.js", "unchanged");
    assert_eq!(r["filesUpdated"], json!([]), "{r}");
    assert_eq!(r["errors"], json!([]), "{r}");
    assert!(s.edits().is_empty(), "nothing to send");
    s.shutdown();
}

#[test]
fn the_conversation_records_the_edit_and_a_major_change() {
    let (_dir, s) = server_in_tempdir(vscode());
    let answer = example();
    let files: Vec<String> = blocks(&answer).into_iter().map(|(p, _)| p).collect();
    let r = s.apply_with(json!({"response": answer, "request": "build a coffee landing page"}));
    assert_eq!(r["applied"], json!(true), "{r}");

    let c = s.execute("builder.conversation.get", json!({})).unwrap();
    let edits = c["edits"].as_array().unwrap();
    assert_eq!(edits.len(), 1, "{c}");
    assert_eq!(
        edits[0]["userRequest"],
        json!("build a coffee landing page")
    );
    assert_eq!(strings(&edits[0]["targetFiles"]), files);
    assert_eq!(edits[0]["outcome"], json!("success"));
    let changes = c["projectEvolution"]["majorChanges"].as_array().unwrap();
    assert_eq!(changes.len(), 1, "{c}");
    assert_eq!(strings(&changes[0]["filesAffected"]), files);
    assert!(!changes[0]["description"].as_str().unwrap().is_empty());
    s.shutdown();
}

#[test]
fn wait_false_starts_a_task_that_finishes_with_the_full_result() {
    let (dir, s) = server_in_tempdir(vscode());
    let t0 = Instant::now();
    let started = s
        .execute(
            "builder.apply",
            json!({"response": file_block("src/t.js", "task\n"), "wait": false}),
        )
        .unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5), "answered at once");
    assert_eq!(started["started"], json!(true), "{started}");
    let id = started["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no taskId: {started}"))
        .to_string();

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let st = s
            .execute("builder.task.status", json!({"taskId": id}))
            .unwrap();
        if st["state"] != json!("running") {
            break st;
        }
        assert!(Instant::now() < deadline, "task still running: {st}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status["state"], json!("done"), "{status}");
    let result = &status["result"];
    assert_result_shape(result);
    assert_eq!(
        strings(&result["filesCreated"]),
        vec!["src/t.js"],
        "{status}"
    );
    assert_eq!(read(dir.path(), "src/t.js"), "task\n");

    assert!(
        s.wait_for_method("window/showMessage", Duration::from_secs(5)),
        "no showMessage summary"
    );
    let shown = s.messages_of("window/showMessage");
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(
        shown[0]["params"]["type"],
        json!(3),
        "an Info summary: {shown:?}"
    );
    assert!(!shown[0]["params"]["message"].as_str().unwrap().is_empty());

    // The server made its own progress token, and the stream ended.
    let created = s.messages_of("window/workDoneProgress/create");
    assert_eq!(created.len(), 1, "{created:?}");
    let token = created[0]["params"]["token"].as_str().unwrap().to_string();
    let p = s.progress(&token);
    assert_eq!(
        p.first().map(|v| v["kind"].clone()),
        Some(json!("begin")),
        "{p:?}"
    );
    assert_eq!(
        p.last().map(|v| v["kind"].clone()),
        Some(json!("end")),
        "{p:?}"
    );
    s.shutdown();
}

#[test]
fn the_server_answers_while_the_client_delays_the_edit() {
    let (dir, s) = server_in_tempdir(vscode());
    s.set_apply_behavior(ApplyBehavior::Delay(Duration::from_millis(1500)));
    let r = std::thread::scope(|scope| {
        let h = scope.spawn(|| s.apply(&file_block("src/slow.js", "slow\n")));
        assert!(
            s.wait_for_method("workspace/applyEdit", Duration::from_secs(10)),
            "no applyEdit"
        );
        let c = s.execute("builder.conversation.get", json!({}));
        assert!(c.is_ok(), "{c:?}");
        // Answered while the client still held the edit (it records an edit once it answers).
        assert!(
            s.edits().is_empty(),
            "conversation.get waited for the pending edit"
        );
        h.join().unwrap()
    });
    assert_eq!(r["applied"], json!(true), "{r}");
    assert_eq!(read(dir.path(), "src/slow.js"), "slow\n");
    s.shutdown();
}
