//! `kill -9` while a checkpoint is being written, 50 times: the history must always stay
//! readable, and no manifest may ever name a blob that is missing or damaged. The kill point
//! is spread over the whole checkpoint write (calibrated on this machine first), and the test
//! checks that many kills really landed inside it (temp files or blobs no manifest names yet),
//! so it cannot pass by always killing too early or too late.

mod common;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const FILES: usize = 40;
const KILLS: usize = 50;

fn answer(variant: usize) -> String {
    let mut s = String::new();
    for i in 0..FILES {
        let body: String = (0..120)
            .map(|n| format!("  <li key=\"{n}\">v{variant} item {n} of {i}</li>\n"))
            .collect();
        s.push_str(&file_block(
            &format!("src/c/C{i}.jsx"),
            &format!("export default () => (\n<ul>\n{body}</ul>\n);\n"),
        ));
    }
    s.push_str("<explanation>Components.</explanation>");
    s
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the store looks like on disk after a kill.
struct Store {
    manifests: usize,
    /// Blobs no manifest names (written before a manifest that never came).
    orphans: usize,
    temps: usize,
}

/// Checks every manifest and the blobs it names; panics on anything unreadable.
fn check(dir: &Path) -> Store {
    let cps = dir.join("checkpoints");
    let blobs = dir.join("blobs");
    let mut named = HashSet::new();
    let mut manifests = 0;
    let mut temps = 0;
    for e in std::fs::read_dir(&cps).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(".tmp-") {
            temps += 1;
            continue;
        }
        let text = std::fs::read_to_string(e.path()).unwrap();
        let cp: Value = serde_json::from_str(&text)
            .unwrap_or_else(|err| panic!("manifest {name} is not JSON ({err}): {text:?}"));
        manifests += 1;
        for f in cp["files"].as_array().expect("files") {
            for side in ["before", "after"] {
                let Some(h) = f[side].as_str() else { continue };
                let bytes = std::fs::read(blobs.join(h))
                    .unwrap_or_else(|err| panic!("{name} names blob {h}, missing: {err}"));
                assert_eq!(hex(&bytes), h, "{name}: blob {h} damaged");
                named.insert(h.to_string());
            }
        }
    }
    let mut orphans = 0;
    for e in std::fs::read_dir(&blobs).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.contains(".tmp-") {
            temps += 1;
        } else if !named.contains(&name) {
            orphans += 1;
        }
    }
    Store {
        manifests,
        orphans,
        temps,
    }
}

fn history_dir(state: &Path) -> Option<PathBuf> {
    let d = std::fs::read_dir(state.join("history")).ok()?;
    d.flatten().map(|e| e.path()).next()
}

fn start(project: &Path, state: &Path) -> TestServer {
    TestServer::start(vscode().folder(project).state_dir(state))
}

/// Sends the apply and returns when the server's edit arrives (the checkpoint is written
/// before the edit is sent), or after `limit`.
fn apply_until_edit(s: &TestServer, text: &str, limit: Duration) -> Duration {
    let t = Instant::now();
    s.send_request(
        "workspace/executeCommand",
        json!({"command": "builder.apply", "arguments": [{"response": text}]}),
    );
    while s.edits().is_empty() && t.elapsed() < limit {
        std::thread::sleep(Duration::from_micros(200));
    }
    t.elapsed()
}

#[test]
fn kill_9_during_checkpoint_writes_never_leaves_a_broken_history() {
    let project = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    write_file(project.path(), "src/main.jsx", "import './c/C0.jsx';\n");

    // Calibrate: how long from the request to the edit (parse + checkpoint) on this machine.
    let mut spans = Vec::new();
    for v in 0..3 {
        let s = start(project.path(), state.path());
        let took = apply_until_edit(&s, &answer(1000 + v), Duration::from_secs(30));
        assert!(!s.edits().is_empty(), "the apply sent its edit");
        spans.push(took);
        s.shutdown();
    }
    spans.sort();
    let span = spans[1];
    eprintln!("request → edit (parse + checkpoint): {spans:?}");
    let dir = history_dir(state.path()).expect("history written");
    let calibrated = check(&dir);
    assert_eq!(calibrated.manifests, 3, "three complete checkpoints");

    let mut rng = fastrand::Rng::with_seed(12);
    let mut inside = 0;
    let (mut orphans, mut temps) = (calibrated.orphans, calibrated.temps);
    for k in 0..KILLS {
        let s = start(project.path(), state.path());
        // Anywhere from the request's arrival to a little past the edit.
        let at = span.mul_f64(rng.f64() * 1.2);
        let t = Instant::now();
        s.send_request(
            "workspace/executeCommand",
            json!({"command": "builder.apply", "arguments": [{"response": answer(k)}]}),
        );
        if let Some(rest) = at.checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
        drop(s); // SIGKILL
        let store = check(&dir);
        if store.temps > temps || store.orphans > orphans {
            inside += 1;
        }
        (orphans, temps) = (store.orphans, store.temps);
    }

    eprintln!("{inside} of {KILLS} kills landed inside a checkpoint write");
    // A fresh server reads the history and can show every checkpoint in it.
    let s = start(project.path(), state.path());
    let list = s.execute("builder.history", json!({})).expect("history");
    let list = list.as_array().expect("array");
    assert!(list.len() >= 3, "{list:?}");
    for cp in list {
        let id = cp["id"].as_str().expect("id");
        let d = s
            .execute("builder.diff", json!({"checkpoint": id}))
            .unwrap_or_else(|e| panic!("diff of {id}: {e}"));
        assert!(d.to_string().contains("@@"), "{id}: {d}");
    }
    // And it keeps working: one more apply records one more checkpoint.
    let r = s.apply(&answer(9999));
    assert_eq!(r["applied"], json!(true), "{r}");
    assert!(r["checkpoint"].is_string(), "{r}");
    s.shutdown();
    check(&dir);
    assert!(
        inside >= KILLS / 10,
        "only {inside} of {KILLS} kills landed inside a checkpoint write (span {span:?}); \
         the test did not exercise what it is for"
    );
}
