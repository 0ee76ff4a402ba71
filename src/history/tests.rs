use super::*;
use crate::apply::{ChangeKind, FileChange};

fn limits() -> Limits {
    Limits {
        max_checkpoints: 100,
        max_bytes: 200 * 1024 * 1024,
    }
}

fn meta(s: &str) -> Meta {
    Meta {
        source: s.into(),
        summary: format!("{s} summary"),
        ..Default::default()
    }
}

fn change(root: &Path, rel: &str, new: &str) -> FileChange {
    let abs = root.join(rel);
    let old = std::fs::read_to_string(&abs).ok();
    FileChange {
        rel: rel.into(),
        abs,
        kind: if old.is_some() {
            ChangeKind::Update
        } else {
            ChangeKind::Create
        },
        new_text: new.into(),
        old_text: old,
        open: false,
    }
}

/// At most `n` checkpoints, bytes unbounded.
fn keep(n: usize) -> Limits {
    Limits {
        max_checkpoints: n,
        max_bytes: u64::MAX,
    }
}

/// One batch through `r` the way the server delivers it: checkpoint, write to disk, landed.
fn batch(r: &mut Recorder, changes: &[FileChange]) -> crate::apply::Delivered {
    r.before(changes).unwrap();
    let d = crate::apply::deliver_to_disk(changes, &crate::events::silent());
    r.after(changes);
    r.landed(&d.landed_paths()).unwrap();
    d
}

/// Records and lands `changes` on disk the way the server does: checkpoint, write, landed.
fn land(store: &HistoryStore, m: Meta, changes: &[FileChange]) -> String {
    let mut r = Recorder::new(store.clone(), m, limits());
    let d = batch(&mut r, changes);
    assert!(d.errors.is_empty(), "{:?}", d.errors);
    r.id().unwrap().to_string()
}

/// One change per `(path, new text)`, each against what is on disk now.
fn changes(root: &Path, files: &[(&str, &str)]) -> Vec<FileChange> {
    files
        .iter()
        .map(|(rel, new)| change(root, rel, new))
        .collect()
}

fn setup() -> (tempfile::TempDir, PathBuf, HistoryStore) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("p");
    std::fs::create_dir_all(root.join("src")).unwrap();
    let store = HistoryStore::for_project(&t.path().join("state"), &root);
    (t, root, store)
}

#[test]
fn revert_takes_a_change_set_and_everything_after_back() {
    let (_t, root, store) = setup();
    std::fs::write(root.join("src/a.js"), "a0\n").unwrap();
    let c1 = land(
        &store,
        meta("apply"),
        &changes(&root, &[("src/a.js", "a1\n"), ("src/new.js", "n1\n")]),
    );
    let c2 = land(
        &store,
        meta("generate"),
        &[change(&root, "src/a.js", "a2\n")],
    );
    let listed = list(&store, None).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, c2, "newest first");
    assert_eq!(listed[1].files[1].change, Change::Created);
    assert_eq!(listed[1].files[0].change, Change::Updated);

    let plan = plan_revert(&store, &root, &c1, None, false, &disk_text).unwrap();
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    let d = crate::apply::deliver_to_disk(&plan.changes, &crate::events::silent());
    assert!(d.errors.is_empty());
    assert_eq!(
        std::fs::read_to_string(root.join("src/a.js")).unwrap(),
        "a0\n"
    );
    assert!(!root.join("src/new.js").exists(), "created file removed");
    assert_eq!(d.deleted, vec!["src/new.js".to_string()]);
}

#[test]
fn a_file_changed_since_is_a_conflict_unless_forced() {
    let (_t, root, store) = setup();
    std::fs::write(root.join("src/a.js"), "a0\n").unwrap();
    std::fs::write(root.join("src/b.js"), "b0\n").unwrap();
    let c1 = land(
        &store,
        meta("apply"),
        &changes(&root, &[("src/a.js", "a1\n"), ("src/b.js", "b1\n")]),
    );
    std::fs::write(root.join("src/a.js"), "user edit\n").unwrap();
    let plan = plan_revert(&store, &root, &c1, None, false, &disk_text).unwrap();
    assert_eq!(plan.conflicts.len(), 1);
    assert_eq!(plan.conflicts[0].path, "src/a.js");
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].rel, "src/b.js");
    let forced = plan_revert(&store, &root, &c1, None, true, &disk_text).unwrap();
    assert!(forced.conflicts.is_empty());
    assert_eq!(forced.changes.len(), 2);
    // Only some files.
    let only_files =
        |files: &[String]| plan_revert(&store, &root, &c1, Some(files), false, &disk_text);
    let only = only_files(&["src/b.js".into()]).unwrap();
    assert_eq!(only.changes.len(), 1);
    assert!(only.conflicts.is_empty());
    let bad = only_files(&["nope.js".into()]);
    assert!(matches!(bad, Err(HistoryError::UnknownFile { .. })));
}

#[test]
fn one_checkpoint_for_a_change_set_landing_in_batches() {
    let (_t, root, store) = setup();
    std::fs::write(root.join("src/a.js"), "a0\n").unwrap();
    let mut r = Recorder::new(store.clone(), meta("generate"), limits());
    batch(&mut r, &[change(&root, "src/a.js", "a1\n")]);
    // The same file again (a continuation), and a new one.
    batch(
        &mut r,
        &changes(&root, &[("src/a.js", "a2\n"), ("src/c.js", "c\n")]),
    );
    let (cps, _) = store.list().unwrap();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].files.len(), 2);
    assert_eq!(
        cps[0].files[0].before,
        Some(store::hash(b"a0\n")),
        "first before kept"
    );
    assert_eq!(cps[0].files[0].after, Some(store::hash(b"a2\n")));
    // A batch that did not land leaves no trace.
    let third = vec![change(&root, "src/z.js", "z\n")];
    r.before(&third).unwrap();
    r.landed(&HashSet::new()).unwrap();
    let (cps, _) = store.list().unwrap();
    assert_eq!(cps[0].files.len(), 2);
    let diff = diff(&store, &cps[0].id).unwrap();
    assert!(diff.contains("-a0\n+a2\n"), "{diff}");
    assert!(diff.contains("--- /dev/null\n+++ b/src/c.js"), "{diff}");
}

#[test]
fn a_failed_checkpoint_write_is_an_error_before_anything_lands() {
    let (t, root, _) = setup();
    // The state dir is a file: nothing can be created under it.
    let blocked = t.path().join("blocked");
    std::fs::write(&blocked, "x").unwrap();
    let store = HistoryStore::for_project(&blocked, &root);
    let mut r = Recorder::new(store.clone(), meta("apply"), limits());
    let err = r.before(&[change(&root, "src/a.js", "a\n")]).unwrap_err();
    assert!(matches!(err, HistoryError::Io { .. }), "{err}");
    assert!(store.list().map(|(c, _)| c.is_empty()).unwrap_or(true));
    // Nothing of the refused batch is left to record afterwards.
    r.landed(&HashSet::new()).unwrap_or_default();
    assert!(r.id().is_none());
}

#[test]
fn missing_or_corrupt_blob_fails_the_plan() {
    let (_t, root, store) = setup();
    std::fs::write(root.join("src/a.js"), "a0\n").unwrap();
    let c1 = land(&store, meta("apply"), &[change(&root, "src/a.js", "a1\n")]);
    let packs: Vec<_> = std::fs::read_dir(store.dir().join("packs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    // One batch: a pack of its before-contents, then one of its after-contents.
    assert_eq!(packs.len(), 2, "{packs:?}");
    for p in &packs {
        std::fs::write(p, "tampered").unwrap();
    }
    let err = plan_revert(&store, &root, &c1, None, false, &disk_text).unwrap_err();
    assert!(matches!(err, HistoryError::Corrupt(_)), "{err}");
    for p in &packs {
        std::fs::remove_file(p).unwrap();
    }
    let err = plan_revert(&store, &root, &c1, None, false, &disk_text).unwrap_err();
    assert!(matches!(err, HistoryError::MissingBlob(_)), "{err}");
    let err = plan_revert(&store, &root, "00099-ffff", None, false, &disk_text).unwrap_err();
    assert_eq!(err.to_string(), "unknown checkpoint `00099-ffff`");
}

#[test]
fn pruning_keeps_whole_checkpoints_within_limits() {
    let (_t, root, store) = setup();
    for i in 0..5 {
        let mut r = Recorder::new(store.clone(), meta("apply"), keep(3));
        batch(&mut r, &[change(&root, "src/a.js", &format!("v{i}\n"))]);
    }
    let (cps, _) = store.list().unwrap();
    assert_eq!(cps.len(), 3);
    assert_eq!(cps.last().unwrap().seq, 3);
    // Blobs of pruned checkpoints are gone; those still named remain readable.
    assert!(store.blob(&store::hash(b"v0\n")).is_err());
    for cp in &cps {
        for h in cp.blob_hashes() {
            store.blob(h).unwrap();
        }
    }
    // A byte bound prunes down to the newest one, never a part of one.
    // Incompressible, so the bound is hit whatever the pack codec does.
    let big: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(20_000)
        .collect();
    let mut r = Recorder::new(
        store.clone(),
        meta("apply"),
        Limits {
            max_checkpoints: 100,
            max_bytes: 5_000,
        },
    );
    batch(&mut r, &[change(&root, "src/a.js", &big)]);
    let (cps, _) = store.list().unwrap();
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].files.len(), 1);
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let (_t, root, store) = setup();
    let id = land(&store, meta("apply"), &[change(&root, "src/a.js", "a\n")]);
    let m = std::fs::metadata(store.dir().join("checkpoints").join(format!("{id}.json"))).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    let m = std::fs::metadata(store.dir().join("packs")).unwrap();
    assert_eq!(m.permissions().mode() & 0o777, 0o700);
}

#[test]
fn one_pack_per_batch_and_unchanged_content_costs_nothing() {
    let (_t, root, store) = setup();
    for i in 0..20 {
        std::fs::write(root.join(format!("src/f{i}.js")), format!("v0 {i}\n")).unwrap();
    }
    let all = |v: usize| -> Vec<FileChange> {
        (0..20)
            .map(|i| change(&root, &format!("src/f{i}.js"), &format!("v{v} {i}\n")))
            .collect()
    };
    land(&store, meta("apply"), &all(1));
    let packs = || {
        std::fs::read_dir(store.dir().join("packs"))
            .unwrap()
            .count()
    };
    assert_eq!(
        packs(),
        2,
        "20 before-contents in one pack, 20 after-contents in another"
    );
    // The same contents again (after the files went back on disk): nothing new is stored.
    for i in 0..20 {
        std::fs::write(root.join(format!("src/f{i}.js")), format!("v0 {i}\n")).unwrap();
    }
    land(&store, meta("apply"), &all(1));
    assert_eq!(packs(), 2);
    // A fresh store (another process) reads the blobs from the pack headers.
    let other = HistoryStore::at(store.dir().to_path_buf());
    assert_eq!(other.blob(&store::hash(b"v1 7\n")).unwrap(), b"v1 7\n");
    // Legacy loose blobs are still read.
    let loose = store.dir().join("blobs");
    crate::private_file::create_dir(&loose).unwrap();
    std::fs::write(loose.join(store::sha256_hex(b"old\n")), "old\n").unwrap();
    assert_eq!(other.blob(&store::sha256_hex(b"old\n")).unwrap(), b"old\n");
}

#[test]
fn pruning_rewrites_mostly_dead_packs_and_keeps_live_blobs() {
    let (_t, root, store) = setup();
    let big = |n: usize| format!("{n}").repeat(5_000);
    std::fs::write(root.join("src/keep.js"), "keep\n").unwrap();
    // One pack holding a small live blob (keep.js's before) and big ones soon dead.
    let mut r = Recorder::new(store.clone(), meta("apply"), keep(2));
    let c = vec![
        change(&root, "src/keep.js", "keep\n"),
        change(&root, "src/big.js", &big(1)),
    ];
    r.before(&c).unwrap();
    r.after(&c);
    r.landed(&c.iter().map(|c| c.rel.as_str()).collect())
        .unwrap();
    let first = store.list().unwrap().0[0].id.clone();
    // Two later checkpoints push the first out; the next one still names keep.js's content.
    let land2 = |c: Vec<FileChange>| {
        let mut r = Recorder::new(store.clone(), meta("apply"), keep(2));
        batch(&mut r, &c);
    };
    std::fs::write(root.join("src/keep.js"), "kept\n").unwrap();
    for v in 2..4 {
        // keep.js back from "kept" to "keep": its "keep" content stays named.
        land2(vec![change(&root, "src/keep.js", "keep\n")]);
        std::fs::write(root.join("src/keep.js"), "kept\n").unwrap();
        land2(vec![change(&root, "src/big.js", &big(v))]);
    }
    let (cps, _) = store.list().unwrap();
    assert!(cps.iter().all(|c| c.id != first));
    for cp in &cps {
        for h in cp.blob_hashes() {
            store.blob(h).unwrap();
            HistoryStore::at(store.dir().to_path_buf()).blob(h).unwrap();
        }
    }
    // Nothing dead is kept whole: the store holds little more than what is named.
    let named: u64 = cps
        .iter()
        .flat_map(|c| c.blob_hashes())
        .collect::<HashSet<_>>()
        .iter()
        .map(|h| store.blob(h).unwrap().len() as u64)
        .sum();
    let packs: u64 = std::fs::read_dir(store.dir().join("packs"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(packs < named + 2048, "packs {packs} B for {named} B named");
}

#[test]
fn a_checkpoint_is_in_place_before_the_batch_lands_and_its_fsyncs_are_joined() {
    let (_t, root, store) = setup();
    std::fs::write(root.join("src/a.js"), "old\n").unwrap();
    let changes = [change(&root, "src/a.js", "new\n")];
    let mut r = Recorder::new(store.clone(), meta("apply"), limits());
    r.before(&changes).unwrap();
    // Its fsyncs wait for `after`, which runs them with its own while the batch is delivered.
    assert_eq!((r.held.len(), r.held_manifest.len()), (1, 1));
    assert!(r.syncing.is_empty());
    // Before delivery, another process already sees the whole checkpoint, and no temp file.
    let other = HistoryStore::at(store.dir().to_path_buf());
    let (cps, warnings) = other.list().unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(cps.len(), 1);
    assert_eq!(other.blob(&store::hash(b"old\n")).unwrap(), b"old\n");
    let temps: Vec<_> = ["packs", "checkpoints"]
        .iter()
        .flat_map(|d| std::fs::read_dir(store.dir().join(d)).unwrap().flatten())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
    assert!(cps[0].files[0].after_pending, "{:?}", cps[0].files);
    let d = crate::apply::deliver_to_disk(&changes, &crate::events::silent());
    r.after(&changes);
    // One pass: both packs and the final manifest; the replaced pending manifest is not synced.
    assert!(r.held.is_empty() && r.held_manifest.is_empty());
    assert_eq!(r.syncing.len(), 1);
    assert_eq!(r.last_pass, 3, "before-pack, after-pack, final manifest");
    r.landed(&d.landed_paths()).unwrap();
    assert!(r.syncing.is_empty(), "landed waits for durability");
    let (cps, _) = HistoryStore::at(store.dir().to_path_buf()).list().unwrap();
    assert_eq!(cps[0].files[0].after, Some(store::hash(b"new\n")));
    assert!(!cps[0].files[0].after_pending);
}

/// The process ends after the edit was sent but before its after-contents were recorded:
/// the checkpoint still reverts, and a file whose content after it is unknown is a conflict
/// unless forced (never silently overwritten), and `diff` says what it cannot show.
#[test]
fn a_checkpoint_whose_after_contents_were_not_recorded_reverts_with_conflicts() {
    let (_t, root, store) = setup();
    std::fs::write(root.join("src/a.js"), "old\n").unwrap();
    let changes = [
        change(&root, "src/a.js", "new\n"),
        change(&root, "src/b.js", "created\n"),
    ];
    let mut r = Recorder::new(store.clone(), meta("apply"), limits());
    r.before(&changes).unwrap();
    crate::apply::deliver_to_disk(&changes, &crate::events::silent());
    let id = r.id().unwrap().to_string();
    drop(r);
    let other = HistoryStore::at(store.dir().to_path_buf());
    let entries = list(&other, None).unwrap();
    let kinds: Vec<Change> = entries[0].files.iter().map(|f| f.change).collect();
    assert_eq!(kinds, vec![Change::Updated, Change::Created]);
    let d = diff(&other, &id).unwrap();
    assert!(d.contains("src/a.js") && d.contains("not recorded"), "{d}");
    let plan = plan_revert(&other, &root, &id, None, false, &disk_text).unwrap();
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    let paths: Vec<&str> = plan.conflicts.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, vec!["src/a.js", "src/b.js"]);
    assert!(plan.conflicts[0].reason.contains("not recorded"));
    let forced = plan_revert(&other, &root, &id, None, true, &disk_text).unwrap();
    let planned: Vec<(&str, Option<&str>)> = forced
        .changes
        .iter()
        .map(|c| {
            (
                c.rel.as_str(),
                (c.kind != ChangeKind::Delete).then_some(c.new_text.as_str()),
            )
        })
        .collect();
    assert_eq!(
        planned,
        vec![("src/a.js", Some("old\n")), ("src/b.js", None)]
    );
}

#[test]
fn remembered_digests_are_the_contents_hash() {
    let (_t, _root, store) = setup();
    let (a, b, c) = (&b"alpha\n"[..], &b"beta\n"[..], &b"gamma\n"[..]);
    let _g = store::write_lock();
    let first = store.put_blobs(&[a, b]).unwrap();
    assert_eq!(first, vec![store::hash(a), store::hash(b)]);
    // Known and new contents mixed, in another order, and the same bytes twice.
    let second = store.put_blobs(&[b, c, a, c]).unwrap();
    assert_eq!(
        second,
        vec![
            store::hash(b),
            store::hash(c),
            store::hash(a),
            store::hash(c)
        ]
    );
    // Same length, other bytes: never taken for a remembered content.
    let d = &b"alphA\n"[..];
    assert_eq!(store.put_blobs(&[d]).unwrap(), vec![store::hash(d)]);
    for x in [a, b, c, d] {
        assert_eq!(store.blob(&store::hash(x)).unwrap(), x);
    }
}

#[test]
fn a_store_named_by_sha256_still_reverts_and_still_sees_conflicts() {
    // A history written before blob names moved to BLAKE3: loose `blobs/<sha256>` and
    // manifests naming them (rewritten here from a fresh checkpoint).
    let (_t, root, store) = setup();
    std::fs::write(root.join("src/a.js"), "a0\n").unwrap();
    std::fs::write(root.join("src/b.js"), "b0\n").unwrap();
    let id = land(
        &store,
        meta("apply"),
        &changes(&root, &[("src/a.js", "a1\n"), ("src/b.js", "b1\n")]),
    );
    let loose = store.dir().join("blobs");
    crate::private_file::create_dir(&loose).unwrap();
    let mut manifest =
        std::fs::read_to_string(store.dir().join(format!("checkpoints/{id}.json"))).unwrap();
    for content in ["a0\n", "a1\n", "b0\n", "b1\n"] {
        let (new, old) = (
            store::hash(content.as_bytes()),
            store::sha256_hex(content.as_bytes()),
        );
        assert!(manifest.contains(&new), "{manifest}");
        manifest = manifest.replace(&new, &old);
        std::fs::write(loose.join(&old), content).unwrap();
    }
    assert!(!manifest.contains("b3-"), "{manifest}");
    std::fs::write(store.dir().join(format!("checkpoints/{id}.json")), manifest).unwrap();
    std::fs::remove_dir_all(store.dir().join("packs")).unwrap();
    let old = HistoryStore::at(store.dir().to_path_buf());
    // The user changed b.js since: a conflict; a.js is as the checkpoint left it.
    std::fs::write(root.join("src/b.js"), "b2\n").unwrap();
    let plan = plan_revert(&old, &root, &id, None, false, &disk_text).unwrap();
    let conflicts: Vec<&str> = plan.conflicts.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(conflicts, ["src/b.js"]);
    assert_eq!(plan.changes.len(), 1);
    assert_eq!(plan.changes[0].rel, "src/a.js");
    assert_eq!(plan.changes[0].new_text, "a0\n");
    // A blob whose content does not match its SHA-256 name is refused.
    std::fs::write(loose.join(store::sha256_hex(b"a0\n")), "tampered\n").unwrap();
    let fresh = HistoryStore::at(store.dir().to_path_buf());
    assert!(plan_revert(&fresh, &root, &id, None, false, &disk_text).is_err());
}
