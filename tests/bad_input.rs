//! Hostile and broken input: unknown commands, wrong argument shapes, unsafe paths, huge and
//! empty answers, configured limits, garbage answers and malformed JSON-RPC. The server must
//! refuse clearly, write nothing outside the project, and keep answering.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("proj");
    write_file(&proj, "src/App.jsx", "export default () => null;\n");
    (tmp, proj)
}

/// A [`project`], a VS Code server on it, and a snapshot of everything before the test.
fn started() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    TestServer,
    std::collections::BTreeMap<String, String>,
) {
    let (tmp, proj) = project();
    let s = TestServer::start(vscode().folder(&proj));
    let before = snapshot(tmp.path());
    (tmp, proj, s, before)
}

#[test]
fn unknown_command_is_method_not_found_and_changes_nothing() {
    let (tmp, _proj, s, before) = started();
    let e = s
        .execute(
            "builder.doesNotExist",
            json!({"response": file_block("x.js", "x\n")}),
        )
        .unwrap_err();
    assert_eq!(code(&e), -32601, "{e}");
    assert!(message(&e).contains("builder.doesNotExist"), "{e}");
    let e = s.execute("apply", json!({})).unwrap_err();
    assert_eq!(code(&e), -32601, "{e}");
    assert_eq!(snapshot(tmp.path()), before);
    assert!(s.edits().is_empty());
    s.shutdown();
}

#[test]
fn wrong_argument_shapes_are_invalid_params_naming_the_field() {
    let (tmp, _proj, s, before) = started();
    let ok_answer = file_block("src/new.js", "x\n");
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "response"),
        (json!({"wait": true}), "response"),
        (json!({"response": 5}), "response"),
        (json!({"response": null}), "response"),
        (json!({"response": ok_answer, "foo": 1}), "foo"),
        (json!({"response": ok_answer, "isEdit": "yes"}), "isEdit"),
        (
            json!({"response": ok_answer, "packages": "react"}),
            "packages",
        ),
        (json!({"response": ok_answer, "wait": "true"}), "wait"),
    ];
    for (args, field) in cases {
        let e = s
            .execute("builder.apply", args.clone())
            .expect_err(&format!("{args} should be refused"));
        assert_eq!(code(&e), -32602, "{args}: {e}");
        assert!(
            message(&e).contains(field),
            "{args}: message does not name `{field}`: {e}"
        );
    }
    // Arguments that are not one object.
    for arguments in [
        json!(["just a string"]),
        json!([42]),
        json!([[{"response": ok_answer}]]),
        json!([{"response": ok_answer}, {"response": ok_answer}]),
    ] {
        let e = s
            .execute_raw("builder.apply", Some(arguments.clone()))
            .expect_err(&format!("{arguments} should be refused"));
        assert_eq!(code(&e), -32602, "{arguments}: {e}");
        assert!(message(&e).contains("argument"), "{arguments}: {e}");
    }
    // Other commands check their fields too.
    let e = s.invalid_params("builder.conversation.get", json!({"bogus": 1}));
    assert!(message(&e).contains("bogus"), "{e}");
    let e = s.invalid_params("builder.conversation.update", json!({"currentTopic": 7}));
    assert!(message(&e).contains("currentTopic"), "{e}");
    let e = s.invalid_params("builder.createZip", json!({"output": ["a"]}));
    assert!(message(&e).contains("output"), "{e}");

    assert_eq!(snapshot(tmp.path()), before, "nothing changed on disk");
    assert!(s.edits().is_empty(), "no edit was sent");
    s.assert_no_panic();
    s.shutdown();
}

#[cfg(unix)]
#[test]
fn unsafe_paths_are_all_skipped_and_nothing_lands_outside_the_project() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("proj");
    let outside = tmp.path().join("outside");
    write_file(&proj, "src/App.jsx", "app\n");
    write_file(&proj, ".git/config", "[core]\n");
    write_file(&outside, "target.js", "sentinel\n");
    std::os::unix::fs::symlink(&outside, proj.join("link")).unwrap();
    std::os::unix::fs::symlink(outside.join("target.js"), proj.join("linkfile.js")).unwrap();
    let tag = format!(
        "pwn{}x{}",
        std::process::id(),
        tmp.path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace('.', "")
    );
    let abs_outside = outside.join(format!("{tag}-abs.js"));
    let long_name = format!("src/{}.js", "n".repeat(300));

    let vectors: Vec<String> = vec![
        format!("/etc/{tag}.js"),
        abs_outside.display().to_string(),
        format!("../{tag}-up.js"),
        format!("a/../../{tag}-up2.js"),
        format!("src/../../{tag}-mid.js"),
        format!("./../{tag}-dot.js"),
        format!("..\\{tag}-bs.js"),
        format!("C:\\{tag}-drive.js"),
        format!("c:/{tag}-drive2.js"),
        format!("\\\\server\\share\\{tag}.js"),
        format!("//server/share/{tag}.js"),
        format!("\\{tag}-root.js"),
        format!("src/nul\u{0}{tag}.js"),
        format!("src/bell\u{7}{tag}.js"),
        format!("src/esc\u{1b}[31m{tag}.js"),
        format!("\u{202E}{tag}sj.js"),
        format!("~/{tag}-home.js"),
        format!("file:///etc/{tag}-url.js"),
        format!("https://evil.example/{tag}.js"),
        "   ".into(),
        ".".into(),
        "..".into(),
        "src/".into(),
        ".git/config".into(),
        ".GIT/HEAD".into(),
        "src/.git/hooks/pre-commit".into(),
        "con.js".into(),
        "src/aux.txt".into(),
        format!("a /{tag}-space.js"),
        format!("{tag}-trailing."),
        format!("a/b:{tag}.js"),
        format!("link/{tag}-pwn.js"),
        "linkfile.js".into(),
        format!("link/../../{tag}-via-link.js"),
        long_name,
    ];
    assert!(vectors.len() >= 22);
    let mut answer = String::new();
    for v in &vectors {
        answer.push_str(&file_block(v, &format!("// pwned by {tag}\n")));
    }
    answer.push_str(&file_block("src/safe.js", "export const safe = true;\n"));

    let s = TestServer::start(vscode().folder(&proj));
    let before_root = snapshot(tmp.path());
    let r = s.apply(&answer);

    // One `filesSkipped` entry per unsafe block, each with a reason.
    let mut skipped = r["filesSkipped"].as_array().cloned().unwrap_or_default();
    let mut missing = Vec::new();
    for v in &vectors {
        let want = v.trim();
        match skipped.iter().position(|e| e["path"] == json!(want)) {
            Some(i) => {
                let e = skipped.remove(i);
                assert!(
                    !e["reason"].as_str().unwrap_or("").is_empty(),
                    "{want:?} skipped without a reason"
                );
            }
            None => missing.push(want.to_string()),
        }
    }
    assert!(skipped.is_empty(), "unexpected skips: {skipped:?}");
    assert!(
        missing.is_empty(),
        "unsafe paths not reported in filesSkipped: {missing:?}\nresult: {r}"
    );
    assert_eq!(strings(&r["filesCreated"]), vec!["src/safe.js"], "{r}");
    assert_eq!(r["filesUpdated"], json!([]), "{r}");
    assert_eq!(read(&proj, "src/safe.js"), "export const safe = true;\n");

    // Nothing else appeared or changed anywhere under the temp root (project included).
    let after_root = snapshot(tmp.path());
    let mut expected = before_root.clone();
    expected.insert(
        "proj/src/safe.js".into(),
        "export const safe = true;\n".into(),
    );
    assert_eq!(after_root, expected);
    assert_eq!(read(&outside, "target.js"), "sentinel\n");
    // Nor in the obvious places an escape would land.
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let tmpdir = std::env::temp_dir();
    for p in [
        Path::new("/etc").join(format!("{tag}.js")),
        Path::new("/etc").join(format!("{tag}-url.js")),
        Path::new("/server/share").join(format!("{tag}.js")),
        tmpdir.join(format!("{tag}-up.js")),
        tmpdir.join(format!("{tag}-up2.js")),
        tmpdir.join(format!("{tag}-mid.js")),
        tmpdir.join(format!("{tag}-dot.js")),
        tmpdir.join(format!("{tag}-via-link.js")),
    ]
    .into_iter()
    .chain(home.map(|h| h.join(format!("{tag}-home.js"))))
    {
        assert!(!p.exists(), "{} was created", p.display());
    }
    for e in s.edits() {
        let text = e.params.to_string();
        assert!(
            !text.contains(&format!("pwned by {tag}")),
            "an unsafe file reached the editor: {text}"
        );
    }
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn a_block_with_an_empty_path_is_reported_not_silently_dropped() {
    let (tmp, _proj, s, before) = started();
    let answer = format!(
        "{}{}",
        file_block("", "// where does this go?\n"),
        file_block("src/ok.js", "ok\n")
    );
    let r = s.apply(&answer);
    assert_eq!(strings(&r["filesCreated"]), vec!["src/ok.js"], "{r}");
    let reason = skip_reason(&r, "")
        .unwrap_or_else(|| panic!("the empty-path block is not in filesSkipped: {r}"));
    assert!(!reason.is_empty());
    let mut expected = before;
    expected.insert("proj/src/ok.js".into(), "ok\n".into());
    assert_eq!(snapshot(tmp.path()), expected);
    s.shutdown();
}

#[test]
fn an_answer_without_files_is_not_an_error() {
    let (tmp, _proj, s, before) = started();
    for answer in [
        "",
        "Sure! I can help with that, but I need more details first.",
        "```\nno path here\n```",
    ] {
        let r = s.apply(answer);
        assert_eq!(r["filesCreated"], json!([]), "{r}");
        assert_eq!(r["filesUpdated"], json!([]), "{r}");
        assert_eq!(r["filesSkipped"], json!([]), "{r}");
        assert_eq!(r["errors"], json!([]), "{r}");
        let m = r["message"].as_str().unwrap_or("").to_lowercase();
        assert!(
            m.contains("no files"),
            "message should say there were no files: {r}"
        );
    }
    assert!(s.edits().is_empty());
    assert_eq!(snapshot(tmp.path()), before);
    s.shutdown();
}

#[test]
fn an_oversized_answer_is_refused_and_the_server_keeps_answering() {
    let (tmp, _proj, s, before) = started();
    let body = "x".repeat(20 * 1024 * 1024);
    let answer = file_block("src/huge.js", &format!("{body}\n"));
    let e = s
        .execute("builder.apply", json!({"response": answer, "wait": true}))
        .unwrap_err();
    assert_eq!(code(&e), -32602, "{}", message(&e));
    let m = message(&e);
    assert!(m.contains("limit"), "{m}");
    assert!(
        m.contains("maxResponseBytes"),
        "the message names the setting: {m}"
    );
    assert!(m.len() < 1000, "the error does not echo the answer");
    assert_eq!(snapshot(tmp.path()), before);
    // Still alive and answering.
    assert!(s.execute("builder.conversation.get", json!({})).is_ok());
    let r = s.apply(&file_block("src/after.js", "after\n"));
    assert_eq!(strings(&r["filesCreated"]), vec!["src/after.js"], "{r}");
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn configured_max_response_bytes_is_honoured_and_reread() {
    let (_tmp, proj) = project();
    let s = TestServer::start(
        vscode()
            .folder(&proj)
            .config(json!({"maxResponseBytes": 64})),
    );
    s.wait_config_answers(1, Duration::from_secs(10));
    let answer = file_block(
        "src/normal.js",
        "export const normal = 'a perfectly ordinary answer';\n",
    );
    assert!(answer.len() > 64);
    let e = s.invalid_params("builder.apply", json!({"response": answer, "wait": true}));
    assert!(message(&e).contains("limit"), "{e}");
    assert!(!proj.join("src/normal.js").exists());

    // The user raises the limit: the server re-reads the configuration when told.
    s.set_config(json!({"maxResponseBytes": 1_000_000}));
    let asked = s.config_answers();
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": null}),
    );
    s.wait_config_answers(asked + 1, Duration::from_secs(10));
    let r = s.apply(&answer);
    assert_eq!(strings(&r["filesCreated"]), vec!["src/normal.js"], "{r}");
    s.shutdown();
}

/// A tiny deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn garbage(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "<file path=\"",
        "\">",
        "</file>",
        "<file path='a.js'>",
        "<file path=\"src/x.jsx\">\n",
        "<edit path=\"src/App.jsx\">",
        "<search>",
        "</search>",
        "<replace>",
        "</replace>",
        "</edit>",
        "<package>",
        "</package>",
        "<packages>",
        "</packages>",
        "<command>",
        "</command>",
        "<explanation>",
        "</explanation>",
        "```",
        "```jsx path=\"",
        "// File: ",
        "\n",
        "\r\n",
        "\r",
        "<",
        ">",
        "/>",
        "\"",
        "'",
        "=",
        "a.js",
        "../x",
        "/etc/passwd",
        "src/",
        "<File>",
        "</fil",
        "<file",
        " path=",
        "😀",
        "漢字",
        "\u{0}",
        "\u{feff}",
        "\u{202e}",
        "\u{7f}",
        "é",
        "\t",
        "<div className=\"x\">",
        "</div>",
        "{`${a}`}",
        "<<<<",
        ">>>>",
        "<file path=\"\">",
        "<edit path=\"nope.js\"><search>",
        "<file path=\"src/a.js\"></file>",
    ];
    let mut s = String::new();
    let n = 1 + rng.below(60);
    for _ in 0..n {
        if rng.below(4) == 0 {
            let len = 1 + rng.below(12);
            for _ in 0..len {
                let c = match rng.below(3) {
                    0 => (b' ' + rng.below(95) as u8) as char,
                    1 => char::from_u32(0x80 + rng.below(0x3000) as u32).unwrap_or('?'),
                    _ => char::from_u32(0x1F300 + rng.below(0x200) as u32).unwrap_or('?'),
                };
                s.push(c);
            }
        } else {
            s.push_str(PIECES[rng.below(PIECES.len())]);
        }
    }
    s
}

#[test]
fn garbage_answers_never_crash_the_server() {
    let tmp = tempfile::tempdir().unwrap();
    let proj = tmp.path().join("proj");
    write_file(
        &proj,
        "src/App.jsx",
        "export default function App() { return null; }\n",
    );
    let s = TestServer::start(vscode().folder(&proj));
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut answers: Vec<String> = vec![
        "<file path=\"a.js\">".into(),
        "</file></file></file>".into(),
        "<file path=\">\nx\n</file>".into(),
        "<file path=\"a.js\"<file path=\"b.js\">\n</file>".into(),
        "<edit path=\"src/App.jsx\"><search>".into(),
        "<edit path=\"src/App.jsx\"><search></search><replace>x</replace></edit>".into(),
        "<edit path=\"src/App.jsx\"><replace>x</replace></edit>".into(),
        "<packages>".into(),
        "<command>rm -rf /".into(),
        format!("<file path=\"{}\">x</file>", "a".repeat(5000)),
        format!("<file {}path=\"a.js\">x</file>", "x=\"y\" ".repeat(400)),
        "<".repeat(10_000),
        "\u{0}".repeat(1000),
        "```jsx path=\"src/F.jsx\"\nunclosed fence".into(),
        "```\n// File: ../../escape.js\nx\n```".into(),
    ];
    for _ in 0..60 {
        answers.push(garbage(&mut rng));
    }
    for (i, a) in answers.iter().enumerate() {
        match s.execute("builder.apply", json!({"response": a, "wait": true})) {
            Ok(r) => {
                assert!(r.get("filesCreated").is_some(), "answer #{i}: {r}");
                assert!(r.get("errors").is_some(), "answer #{i}: {r}");
            }
            Err(e) => {
                assert!(
                    [-32602, -32803].contains(&code(&e)),
                    "answer #{i} {a:?}: unexpected error {e}"
                );
            }
        }
    }
    assert!(s.is_running());
    assert!(s.execute("builder.conversation.get", json!({})).is_ok());
    // Whatever the garbage produced stayed inside the project.
    for entry in snapshot(tmp.path()).keys() {
        assert!(
            entry.starts_with("proj/"),
            "created outside the project: {entry}"
        );
    }
    s.assert_no_panic();
    s.shutdown();
}

#[test]
fn malformed_json_rpc_frames_do_not_end_the_session() {
    // Each frame on a fresh server: a JSON-RPC parse error must be answered (`id: null`) and
    // the session must go on. `\ud800` is what `JSON.stringify` emits for a lone surrogate in
    // a JavaScript string (a VS Code buffer can hold one).
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("invalid JSON", b"{this is not json".to_vec()),
        ("JSON that is not a message", b"[]".to_vec()),
        (
            "lone surrogate in didOpen text",
            br#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"textDocument":{"uri":"file:///tmp/lone.js","languageId":"javascript","version":1,"text":"const s = '\ud800';"}}}"#.to_vec(),
        ),
        (
            "lone surrogate in a command argument",
            br#"{"jsonrpc":"2.0","id":999999,"method":"workspace/executeCommand","params":{"command":"builder.apply","arguments":[{"response":"\ud800"}]}}"#.to_vec(),
        ),
        (
            "invalid UTF-8",
            b"{\"jsonrpc\":\"2.0\",\"id\":999998,\"method\":\"workspace/executeCommand\",\"params\":{\"command\":\"builder.apply\",\"arguments\":[{\"response\":\"\xff\xfe\"}]}}".to_vec(),
        ),
        (
            "notification with missing arguments",
            br#"{"jsonrpc":"2.0","method":"workspace/executeCommand","params":{"command":"builder.apply"}}"#.to_vec(),
        ),
    ];
    let (_tmp, proj) = project();
    let mut dead = Vec::new();
    for (what, body) in &bodies {
        let s = TestServer::start(vscode().folder(&proj));
        s.send_raw(body);
        let args = json!({"command": "builder.conversation.get", "arguments": [{}]});
        let Some(r) = s.try_request("workspace/executeCommand", args) else {
            dead.push(*what);
            continue;
        };
        assert!(r.is_ok(), "{what}: {r:?}");
        let errors: Vec<Value> = s
            .messages()
            .into_iter()
            .filter(|m| m["id"].is_null() && m.get("error").is_some())
            .collect();
        // Unparseable frames get a parse error; text the server can repair (lone surrogates,
        // invalid UTF-8 → U+FFFD) is processed as the client meant it, with no error.
        let expected = match *what {
            "invalid JSON" | "JSON that is not a message" => 1,
            _ => 0,
        };
        assert_eq!(
            errors.len(),
            expected,
            "{what}: error answers with id null: {errors:?}"
        );
        if expected == 1 {
            assert_eq!(errors[0]["error"]["code"], -32700, "{what}");
        }
        s.assert_no_panic();
        s.shutdown();
    }
    assert!(dead.is_empty(), "the server exited after: {dead:?}");
}

/// JSON objects that are not JSON-RPC messages (tower-lsp-server cannot decode them and used to
/// end the session): each is answered with `-32600` (id echoed when it is a number or a
/// string) or, when it looks like a response, dropped; then a good request gets its answer.
#[test]
fn json_that_is_not_json_rpc_gets_invalid_request_and_the_session_goes_on() {
    // (what, body, the id the answer must carry; None: no answer at all)
    let cases: Vec<(&str, &str, Option<Value>)> = vec![
        (
            "an id that is an object",
            r#"{"jsonrpc":"2.0","id":{"x":1},"method":"shutdown"}"#,
            Some(Value::Null),
        ),
        (
            "no jsonrpc field",
            r#"{"id":777009,"method":"workspace/executeCommand","params":{"command":"builder.models"}}"#,
            Some(json!(777009)),
        ),
        ("an empty object", "{}", Some(Value::Null)),
        (
            "a wrong version with a string id",
            r#"{"jsonrpc":"1.0","id":"req-7","method":"shutdown"}"#,
            Some(json!("req-7")),
        ),
        (
            "an id out of range",
            r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"shutdown"}"#,
            Some(json!(18446744073709551615u64)),
        ),
        (
            "a method that is a number",
            r#"{"jsonrpc":"2.0","id":777010,"method":42}"#,
            Some(json!(777010)),
        ),
        (
            "a response with an object id",
            r#"{"jsonrpc":"2.0","id":{},"result":1}"#,
            None,
        ),
    ];
    let (_tmp, proj) = project();
    for (what, body, want) in cases {
        let s = TestServer::start(vscode().folder(&proj));
        s.send_raw(body.as_bytes());
        let r = s.try_request(
            "workspace/executeCommand",
            json!({"command": "builder.models", "arguments": [{}]}),
        );
        assert!(
            matches!(r, Some(Ok(ref m)) if m.get("providers").is_some() || m.is_object()),
            "{what}: the good request after it got {r:?}; stderr: {}",
            s.stderr()
        );
        let is_answer = |m: &Value| m["error"]["code"] == -32600;
        match want {
            // The harness files answers with a u64 id by id, the rest as messages.
            Some(id) if id.as_u64().is_some() => {
                let e = s.wait_response(id.as_u64().unwrap_or(0), what).unwrap_err();
                assert_eq!(e["code"], -32600, "{what}: {e}");
            }
            Some(id) => {
                let answers: Vec<Value> =
                    s.messages().into_iter().filter(|m| is_answer(m)).collect();
                assert_eq!(answers.len(), 1, "{what}: {answers:?}");
                assert_eq!(answers[0]["id"], id, "{what}");
                assert!(
                    answers[0]["error"]["message"]
                        .as_str()
                        .is_some_and(|m| m.starts_with("Invalid Request")),
                    "{what}: {}",
                    answers[0]
                );
            }
            None => {
                let answers: Vec<Value> =
                    s.messages().into_iter().filter(|m| is_answer(m)).collect();
                assert!(
                    answers.is_empty(),
                    "{what}: a response was answered: {answers:?}"
                );
            }
        }
        assert!(s.is_running(), "{what}: the server exited");
        s.assert_no_panic();
        s.shutdown();
    }
}

/// Frames built from valid ones by mutation (truncations, bad headers, wrong types, huge ids,
/// nested arrays, bytes flipped), all sent to one server: it stays alive and answers a final
/// good request. Deterministic (seeded), bounded to a few hundred frames.
#[test]
fn mutated_frames_never_end_the_session() {
    let (_tmp, proj) = project();
    let s = TestServer::start(vscode().folder(&proj));
    let uri = file_uri(&proj.join("src/App.jsx"));
    // Ids far above the harness's own, so no answer to a mutated frame passes for ours.
    let valid: Vec<Value> = vec![
        json!({"jsonrpc": "2.0", "id": 900001, "method": "workspace/executeCommand", "params": {"command": "builder.models", "arguments": [{}]}}),
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "javascriptreact", "version": 1, "text": "import x from 'y';\n"}}}),
        json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 3}}, "text": "//"}]}}),
        json!({"jsonrpc": "2.0", "id": 900002, "method": "textDocument/codeAction", "params": {"textDocument": {"uri": uri}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 1}}, "context": {"diagnostics": []}}}),
        json!({"jsonrpc": "2.0", "id": 900003, "result": {"applied": true}}),
        json!({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 900001}}),
    ];
    let replacements: Vec<Value> = vec![
        Value::Null,
        json!(true),
        json!(-1),
        json!(1.5),
        json!(18446744073709551615u64),
        json!(-9223372036854775808i64),
        json!("x"),
        json!([]),
        json!([[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]),
        json!({}),
        json!({"a": {"b": {"c": [1, {"d": null}]}}}),
        json!("\u{0}\u{feff}😀"),
    ];
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let t0 = std::time::Instant::now();
    let mut sent = 0;
    for round in 0..400 {
        let mut v = valid[rng.below(valid.len())].clone();
        // Mutate one field at a random depth (a JSON pointer to an object), sometimes remove it.
        let mut path = String::new();
        for _ in 0..rng.below(4) {
            let Some(node) = v.pointer(&path) else { break };
            let step = match node {
                Value::Object(m) if !m.is_empty() => {
                    let k = m
                        .keys()
                        .nth(rng.below(m.len()))
                        .cloned()
                        .unwrap_or_default();
                    Some((k.clone(), m.get(&k).is_some_and(Value::is_object)))
                }
                Value::Array(a) if !a.is_empty() => {
                    let i = rng.below(a.len());
                    Some((i.to_string(), a[i].is_object()))
                }
                _ => None,
            };
            match step {
                Some((k, true)) => {
                    path = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"))
                }
                _ => break,
            }
        }
        if let Some(Value::Object(m)) = v.pointer_mut(&path) {
            if !m.is_empty() {
                let k = m
                    .keys()
                    .nth(rng.below(m.len()))
                    .cloned()
                    .unwrap_or_default();
                if rng.below(4) == 0 {
                    m.remove(&k);
                } else {
                    m.insert(k, replacements[rng.below(replacements.len())].clone());
                }
            }
        }
        let mut body = v.to_string().into_bytes();
        match rng.below(6) {
            0 => body.truncate(rng.below(body.len().max(1))),
            1 => {
                let i = rng.below(body.len().max(1));
                if let Some(b) = body.get_mut(i) {
                    *b = (rng.next() & 0xff) as u8;
                }
            }
            _ => {}
        }
        // Now and then a bad header instead of a body.
        match round % 97 {
            13 => s.send_raw_frame(b"Content-Length: nope\r\n\r\n"),
            41 => s.send_raw_frame(b"Content-Type: x\r\n\r\n"),
            _ => s.send_raw(&body),
        }
        sent += 1;
    }
    let r = s.try_request(
        "workspace/executeCommand",
        json!({"command": "builder.models", "arguments": [{}]}),
    );
    assert!(
        matches!(r, Some(Ok(_))),
        "after {sent} mutated frames the server answered {r:?}; stderr tail: {}",
        s.stderr()
            .chars()
            .rev()
            .take(2000)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    );
    assert!(s.is_running());
    s.assert_no_panic();
    eprintln!("{sent} mutated frames in {:?}", t0.elapsed());
    s.shutdown();
}
