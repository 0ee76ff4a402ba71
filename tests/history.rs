//! Checkpoints over stdio: every apply records one, `builder.history` lists them, `builder.diff`
//! shows them, `builder.revert` takes a change set back as one edit (DeleteFile for created
//! files, the disk for clients without edits), conflicts are left alone unless forced, bad
//! input is refused naming the field, and a checkpoint that cannot be written refuses the apply.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

fn history_dir(state: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(state.join("history"))
        .expect("history dir exists")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), 1, "one project history: {dirs:?}");
    dirs[0].clone()
}

fn history(s: &TestServer) -> Vec<Value> {
    s.execute("builder.history", json!({}))
        .expect("builder.history")
        .as_array()
        .expect("an array")
        .clone()
}

#[test]
fn apply_then_revert_restores_bytes_and_removes_created_files() {
    let (dir, s) = server_with_files(vscode(), &[("src/App.jsx", "old app\n")]);
    let r = s.apply(&format!(
        "{}{}<explanation>New app.</explanation>",
        file_block("src/App.jsx", "new app\n"),
        file_block("src/lib/util.js", "export const u = 1;\n"),
    ));
    assert_eq!(r["applied"], json!(true), "{r}");
    let id = checkpoint(&r);
    assert_eq!(read(dir.path(), "src/lib/util.js"), "export const u = 1;\n");

    let h = history(&s);
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["id"], json!(id));
    assert_eq!(h[0]["source"], json!("apply"));
    assert_eq!(h[0]["summary"], json!("New app."));
    let mut files: Vec<(String, String)> = h[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().into(),
                f["change"].as_str().unwrap().into(),
            )
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        vec![
            ("src/App.jsx".to_string(), "updated".to_string()),
            ("src/lib/util.js".to_string(), "created".to_string())
        ]
    );

    let d = s
        .execute("builder.diff", json!({"checkpoint": id}))
        .unwrap();
    let diff = d["diff"].as_str().unwrap();
    assert!(
        diff.contains("--- a/src/App.jsx\n+++ b/src/App.jsx"),
        "{diff}"
    );
    assert!(diff.contains("-old app\n+new app\n"), "{diff}");
    assert!(
        diff.contains("--- /dev/null\n+++ b/src/lib/util.js"),
        "{diff}"
    );

    let edits_before = s.edits().len();
    let rv = s
        .execute("builder.revert", json!({"checkpoint": id}))
        .unwrap();
    assert_eq!(rv["applied"], json!(true), "{rv}");
    assert_eq!(rv["appliedVia"], json!("workspaceEdit"), "{rv}");
    assert_eq!(
        strings(&rv["filesDeleted"]),
        vec!["src/lib/util.js"],
        "{rv}"
    );
    assert_eq!(strings(&rv["filesRestored"]), vec!["src/App.jsx"], "{rv}");
    assert_eq!(s.edits().len(), edits_before + 1, "one undoable edit");
    let ops = s.messages_of("workspace/applyEdit");
    let last = ops.last().unwrap().to_string();
    assert!(
        last.contains("\"kind\":\"delete\""),
        "DeleteFile sent: {last}"
    );
    assert_eq!(read(dir.path(), "src/App.jsx"), "old app\n");
    assert!(!dir.path().join("src/lib/util.js").exists());

    // The revert is a checkpoint too: reverting it brings the generation back.
    let redo = checkpoint(&rv);
    let h = history(&s);
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["source"], json!("revert"));
    let rr = s
        .execute("builder.revert", json!({"checkpoint": redo}))
        .unwrap();
    assert_eq!(rr["applied"], json!(true), "{rr}");
    assert_eq!(read(dir.path(), "src/App.jsx"), "new app\n");
    assert_eq!(read(dir.path(), "src/lib/util.js"), "export const u = 1;\n");
}

#[test]
fn files_changed_since_are_conflicts_unless_forced() {
    let (dir, s) = server_with_files(vscode(), &[("src/a.js", "a0\n"), ("src/b.js", "b0\n")]);
    let r = s.apply(&format!(
        "{}{}",
        file_block("src/a.js", "a1\n"),
        file_block("src/b.js", "b1\n")
    ));
    let id = checkpoint(&r);
    write_file(dir.path(), "src/a.js", "the user's own edit\n");
    let rv = s
        .execute("builder.revert", json!({"checkpoint": id}))
        .unwrap();
    let conflicts = rv["conflicts"].as_array().unwrap();
    assert_eq!(conflicts.len(), 1, "{rv}");
    assert_eq!(conflicts[0]["path"], json!("src/a.js"));
    assert_eq!(
        read(dir.path(), "src/a.js"),
        "the user's own edit\n",
        "left alone"
    );
    assert_eq!(read(dir.path(), "src/b.js"), "b0\n");
    let forced = s
        .execute("builder.revert", json!({"checkpoint": id, "force": true}))
        .unwrap();
    assert!(
        forced["conflicts"].as_array().unwrap().is_empty(),
        "{forced}"
    );
    assert_eq!(read(dir.path(), "src/a.js"), "a0\n");
}

#[test]
fn bare_client_reverts_on_disk() {
    let (dir, s) = server_with_files(bare(), &[("src/a.js", "a0\n")]);
    let r = s.apply(&format!(
        "{}{}",
        file_block("src/a.js", "a1\n"),
        file_block("src/new.js", "n\n")
    ));
    assert_eq!(r["appliedVia"], json!("disk"), "{r}");
    let id = checkpoint(&r);
    let rv = s
        .execute(
            "builder.revert",
            json!({"checkpoint": id, "files": ["src/new.js"]}),
        )
        .unwrap();
    assert_eq!(rv["appliedVia"], json!("disk"), "{rv}");
    assert!(!dir.path().join("src/new.js").exists());
    assert_eq!(
        read(dir.path(), "src/a.js"),
        "a1\n",
        "only `files` reverted"
    );
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let (dir, s) = server_with_files(vscode(), &[("src/a.js", "a0\n")]);
    let e = s.invalid_params("builder.revert", json!({"checkpoint": "00042-beef"}));
    let msg = e["message"].as_str().unwrap();
    assert!(
        msg.contains("`checkpoint`") && msg.contains("00042-beef"),
        "{msg}"
    );
    let e = s.invalid_params("builder.diff", json!({}));
    assert!(e["message"].as_str().unwrap().contains("checkpoint"), "{e}");

    let r = s.apply(&file_block("src/a.js", "a1\n"));
    let id = checkpoint(&r);
    let e = s.invalid_params(
        "builder.revert",
        json!({"checkpoint": id, "files": ["src/zzz.js"]}),
    );
    assert!(e["message"].as_str().unwrap().contains("src/zzz.js"), "{e}");

    // Damage the stored before-content: a clear error, and the file is not touched.
    let blobs = history_dir(&s.state_dir).join("packs");
    for b in std::fs::read_dir(&blobs).unwrap().flatten() {
        std::fs::write(b.path(), "damaged").unwrap();
    }
    let edits = s.edits().len();
    let e = s
        .execute("builder.revert", json!({"checkpoint": id}))
        .unwrap_err();
    assert!(e["message"].as_str().unwrap().contains("corrupt"), "{e}");
    assert_eq!(read(dir.path(), "src/a.js"), "a1\n");
    assert_eq!(s.edits().len(), edits, "no edit sent");
    for b in std::fs::read_dir(&blobs).unwrap().flatten() {
        std::fs::remove_file(b.path()).unwrap();
    }
    let e = s
        .execute("builder.revert", json!({"checkpoint": id}))
        .unwrap_err();
    assert!(e["message"].as_str().unwrap().contains("missing"), "{e}");
}

#[test]
fn a_checkpoint_that_cannot_be_written_refuses_the_apply() {
    let dir = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    // `history` is a file, so no checkpoint can be stored under it.
    std::fs::write(state.path().join("history"), "not a dir").unwrap();
    write_file(dir.path(), "src/a.js", "a0\n");
    let s = TestServer::start(vscode().folder(dir.path()).state_dir(state.path()));
    let r = s.apply(&file_block("src/a.js", "a1\n"));
    assert_eq!(r["applied"], json!(false), "{r}");
    assert!(
        r["errors"]
            .to_string()
            .contains("checkpoint could not be written"),
        "{r}"
    );
    assert_eq!(read(dir.path(), "src/a.js"), "a0\n");
    assert!(s.edits().is_empty(), "no edit sent");
}

#[test]
fn a_revert_the_editor_refuses_lands_on_disk_and_reports_the_deleted_files() {
    let (dir, s) = server_with_files(vscode(), &[("src/App.jsx", "old\n")]);
    s.set_apply_behavior(ApplyBehavior::Refuse("busy".into()));
    let r = s.apply(&format!(
        "{}{}",
        file_block("src/App.jsx", "new\n"),
        file_block("src/made.js", "made\n")
    ));
    let id = checkpoint(&r);
    assert_eq!(read(dir.path(), "src/made.js"), "made\n", "{r}");
    let r = s
        .execute("builder.revert", json!({"checkpoint": id}))
        .expect("revert");
    assert_eq!(r["filesDeleted"], json!(["src/made.js"]), "{r}");
    assert_eq!(r["filesRestored"], json!(["src/App.jsx"]), "{r}");
    assert_eq!(r["applied"], json!(true), "{r}");
    assert!(!dir.path().join("src/made.js").exists());
    assert_eq!(read(dir.path(), "src/App.jsx"), "old\n");
}
