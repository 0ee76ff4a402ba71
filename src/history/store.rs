//! The on-disk history of one project: `packs/<random>.pack` (file contents, content-addressed
//! by [`hash`] so an unchanged file costs nothing) and `checkpoints/<id>.json` (one manifest per
//! checkpoint). The new before-contents of one batch go into ONE pack, its after-contents
//! into another — two fsyncs for a 200-file apply instead of one per file, which made
//! checkpoints cost 30× the apply. Every file is
//! written to a temp file and renamed (0600, dirs 0700), so no reader ever sees a partial
//! file. Pruning fsyncs before the rename. The checkpoint before a change set lands
//! (`Recorder::before`: applies, generations, fixes, reviews, reverts) writes and renames the
//! same way but defers the fsyncs to a thread that runs while the edit is
//! delivered and is joined before the command reports success: fsync is nearly all of a
//! checkpoint's cost. A process crash loses nothing (renamed files are in the page cache); a
//! power loss inside that window can leave a manifest whose blobs did not reach the disk,
//! which reads as "checkpoint data is corrupt" (blobs are checked against their hash), never
//! as wrong bytes. Pruning removes whole manifests (oldest first), then packs no manifest needs (and
//! rewrites packs that are mostly dead). Loose `blobs/<sha256>` from older versions are read.
//!
//! A pack is `BUILDERPACK1 <header length>\n`, a JSON header `[[hash, stored length, codec,
//! length], …]` (codec `lz4` block or `raw`), then the stored contents in header order.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use super::{Checkpoint, HistoryError};

const PACK_MAGIC: &str = "BUILDERPACK1";

/// Serialises blob writes, manifest writes and pruning in this process, so a prune never
/// collects the blobs of a checkpoint whose manifest is about to be written.
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// Holds the in-process write lock; poisoning is harmless (all writes are atomic).
pub(crate) fn write_lock() -> std::sync::MutexGuard<'static, ()> {
    WRITE_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a packed blob lives.
#[derive(Debug, Clone)]
struct Loc {
    pack: PathBuf,
    offset: u64,
    /// Bytes in the pack.
    len: u64,
    /// Bytes once decoded; `None`: stored raw.
    lz4_len: Option<u64>,
}

/// What this process knows of the store, so an apply neither rereads every manifest nor
/// every pack header. Rebuilt from disk when it misses (another process may have written).
#[derive(Debug, Default)]
struct Cache {
    /// hash → location; `None` until loaded.
    index: Option<HashMap<String, Loc>>,
    /// manifest file name → (length, mtime, parsed).
    manifests: HashMap<String, (u64, Option<SystemTime>, Checkpoint)>,
    /// Set once a prune swept unnamed blobs and crash leftovers; cleared when a manifest
    /// is removed (only then can blobs become unnamed again, in this process).
    swept: bool,
    /// The [`hash`] of contents stored before, by [`digest_key`]: a change set's before-contents
    /// are mostly an earlier one's after-contents (or the same before-contents again), so a
    /// batch hashes only what is new. Bounded by [`MAX_DIGESTS`].
    digests: HashMap<(u128, usize), String>,
}

/// Entries in [`Cache::digests`] (about 100 bytes each); past it the map starts over.
const MAX_DIGESTS: usize = 4096;

/// A 128-bit XXH3 of `bytes` (5× faster than BLAKE3 here) keyed by a random per-process
/// seed (colliding files cannot be prepared in advance), and the length.
fn digest_key(bytes: &[u8]) -> (u128, usize) {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| fastrand::u64(..));
    (
        xxhash_rust::xxh3::xxh3_128_with_seed(bytes, seed),
        bytes.len(),
    )
}

#[derive(Debug, Clone)]
pub struct HistoryStore {
    dir: PathBuf,
    cache: Arc<Mutex<Cache>>,
}

/// A blob's name: `b3-` and the lowercase hex BLAKE3 of `bytes`. BLAKE3 is 3-4× faster than
/// SHA-256 here (0.3 vs 1.1 ms for 2 MB, with SHA-NI), and a checkpoint names every new
/// content while the edit is delivered. Names without the prefix are SHA-256 (stores written
/// before): still read, checked and compared with [`matches`].
pub fn hash(bytes: &[u8]) -> String {
    format!("{BLAKE3_PREFIX}{}", blake3::hash(bytes).to_hex())
}

const BLAKE3_PREFIX: &str = "b3-";

/// Lowercase hex SHA-256 of `bytes`: the name of a blob written before [`hash`] switched to
/// BLAKE3, and a project's folder name (which must not change).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut s = String::with_capacity(64);
    for b in digest.iter() {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `name` is a blob name at all ([`hash`] or a legacy SHA-256 one).
fn valid_name(name: &str) -> bool {
    is_hex64(name.strip_prefix(BLAKE3_PREFIX).unwrap_or(name))
}

/// Whether `bytes` is the content named `name`, in the name's own algorithm.
pub fn matches(name: &str, bytes: &[u8]) -> bool {
    match name.strip_prefix(BLAKE3_PREFIX) {
        Some(hex) => is_hex64(hex) && blake3::hash(bytes).to_hex().eq_ignore_ascii_case(hex),
        None => is_hex64(name) && sha256_hex(bytes).eq_ignore_ascii_case(name),
    }
}

/// `f` over `items` on two threads when there is enough work (`weight` in bytes): a 200-file
/// apply hashes 4 MB, 3 ms on one core.
fn par_map<T: Sync, R: Send>(
    items: &[T],
    weight: impl Fn(&T) -> usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let total: usize = items.iter().map(&weight).sum();
    if total < 512 * 1024 || items.len() < 2 {
        return items.iter().map(&f).collect();
    }
    // Split where half the bytes are, so both threads get the same work.
    let mut acc = 0;
    let mid = items
        .iter()
        .position(|x| {
            acc += weight(x);
            acc >= total / 2
        })
        .map_or(items.len() / 2, |i| (i + 1).min(items.len() - 1));
    let (a, b) = items.split_at(mid);
    let f = &f;
    std::thread::scope(|s| {
        let other = s.spawn(move || b.iter().map(f).collect::<Vec<_>>());
        let mut out: Vec<R> = a.iter().map(f).collect();
        match other.join() {
            Ok(rest) => out.extend(rest),
            Err(_) => out.extend(b.iter().map(f)),
        }
        out
    })
}

/// How a blob is kept in a pack: LZ4 (source text shrinks 3-10×, so a checkpoint writes a
/// fraction of its bytes) unless that does not make it smaller.
fn encode(bytes: &[u8]) -> (Vec<u8>, &'static str) {
    let packed = lz4_flex::block::compress(bytes);
    if packed.len() < bytes.len() {
        (packed, "lz4")
    } else {
        (bytes.to_vec(), "raw")
    }
}

/// Reads a pack's header: each blob's hash, offset and length.
fn pack_header(path: &Path) -> io::Result<Vec<(String, Loc)>> {
    let bad = |why: &str| io::Error::new(io::ErrorKind::InvalidData, why.to_string());
    let mut f = fs::File::open(path)?;
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while first.len() < 64 {
        f.read_exact(&mut byte)?;
        if byte[0] == b'\n' {
            break;
        }
        first.push(byte[0]);
    }
    let first = String::from_utf8(first).map_err(|_| bad("bad pack header"))?;
    let header_len: u64 = first
        .strip_prefix(PACK_MAGIC)
        .and_then(|r| r.trim().parse().ok())
        .ok_or_else(|| bad("not a pack"))?;
    if header_len > 64 * 1024 * 1024 {
        return Err(bad("pack header too large"));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header)?;
    let entries: Vec<(String, u64, String, u64)> =
        serde_json::from_slice(&header).map_err(|_| bad("bad pack header"))?;
    let mut offset = first.len() as u64 + 1 + header_len;
    Ok(entries
        .into_iter()
        .map(|(h, len, codec, raw)| {
            let loc = Loc {
                pack: path.to_path_buf(),
                offset,
                len,
                lz4_len: (codec == "lz4").then_some(raw),
            };
            offset += len;
            (h, loc)
        })
        .collect())
}

fn io_err(path: &Path, source: io::Error) -> HistoryError {
    HistoryError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl HistoryStore {
    /// The history of the project at `canonical_root`, under `<state_dir>/history/`.
    pub fn for_project(state_dir: &Path, canonical_root: &Path) -> Self {
        let normalized: PathBuf = canonical_root.components().collect();
        let key = sha256_hex(normalized.as_os_str().as_encoded_bytes());
        let name: String = normalized
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into())
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        Self::at(
            state_dir
                .join("history")
                .join(format!("{name}-{}", &key[..16])),
        )
    }

    /// A store rooted at `dir` exactly (tests).
    pub fn at(dir: PathBuf) -> Self {
        HistoryStore {
            dir,
            cache: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn loose_blobs(&self) -> PathBuf {
        self.dir.join("blobs")
    }

    fn packs(&self) -> PathBuf {
        self.dir.join("packs")
    }

    fn checkpoints(&self) -> PathBuf {
        self.dir.join("checkpoints")
    }

    /// Every packed blob on disk (a pack whose header cannot be read is skipped: its blobs
    /// count as missing, and the checkpoints naming them say so when used).
    fn read_index(&self) -> HashMap<String, Loc> {
        let mut index = HashMap::new();
        for e in fs::read_dir(self.packs()).into_iter().flatten().flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "pack") {
                match pack_header(&path) {
                    Ok(entries) => index.extend(entries),
                    Err(err) => {
                        tracing::warn!("history: pack {} unreadable: {err}", path.display())
                    }
                }
            }
        }
        index
    }

    fn lookup(&self, hash: &str, reload: bool) -> Option<Loc> {
        let mut c = self.cache();
        if reload || c.index.is_none() {
            c.index = Some(self.read_index());
        }
        c.index.as_ref().and_then(|i| i.get(hash).cloned())
    }

    /// Whether `hash` is stored; `loose` says whether a legacy `blobs/` folder exists at all
    /// (checked once per batch, not once per blob).
    fn has(&self, hash: &str, loose: bool) -> bool {
        self.lookup(hash, false).is_some() || (loose && self.loose_blobs().join(hash).is_file())
    }

    /// Stores the contents not stored yet in ONE pack (one fsync) and returns every hash, in
    /// order. Call with [`write_lock`] held.
    pub fn put_blobs(&self, contents: &[&[u8]]) -> Result<Vec<String>, HistoryError> {
        self.put_blobs_into(contents, None)
    }

    /// [`HistoryStore::put_blobs`] whose fsyncs go to `syncs` (see
    /// [`crate::private_file::write_atomic_parts_deferred`]).
    pub fn put_blobs_deferred(
        &self,
        contents: &[&[u8]],
        syncs: &mut Vec<crate::private_file::PendingSync>,
    ) -> Result<Vec<String>, HistoryError> {
        self.put_blobs_into(contents, Some(syncs))
    }

    fn put_blobs_into(
        &self,
        contents: &[&[u8]],
        syncs: Option<&mut Vec<crate::private_file::PendingSync>>,
    ) -> Result<Vec<String>, HistoryError> {
        let hashes = self.digests(contents);
        let mut seen = HashSet::new();
        let loose = self.loose_blobs().is_dir();
        let fresh: Vec<(&str, &[u8])> = hashes
            .iter()
            .zip(contents)
            .filter(|(h, _)| seen.insert(h.as_str()) && !self.has(h, loose))
            .map(|(h, b)| (h.as_str(), *b))
            .collect();
        self.write_pack(&fresh, syncs)?;
        Ok(hashes)
    }

    /// Every content's [`hash`], in order: from [`Cache::digests`] where known, else computed
    /// ([`par_map`]) and remembered.
    fn digests(&self, contents: &[&[u8]]) -> Vec<String> {
        let keys: Vec<(u128, usize)> = contents.iter().map(|b| digest_key(b)).collect();
        let mut hashes: Vec<Option<String>> = {
            let c = self.cache();
            keys.iter().map(|k| c.digests.get(k).cloned()).collect()
        };
        let missing: Vec<usize> = (0..contents.len())
            .filter(|&i| hashes[i].is_none())
            .collect();
        let computed = par_map(&missing, |&i| contents[i].len(), |&i| hash(contents[i]));
        let mut c = self.cache();
        for (&i, h) in missing.iter().zip(computed) {
            if c.digests.len() >= MAX_DIGESTS {
                c.digests.clear();
            }
            c.digests.insert(keys[i], h.clone());
            hashes[i] = Some(h);
        }
        hashes.into_iter().flatten().collect()
    }

    /// Writes `fresh` (hash, content) as one pack, durably, and indexes it. A prune rewriting
    /// a mostly dead pack calls it directly: those blobs are already indexed (in the old pack).
    fn write_pack(
        &self,
        fresh: &[(&str, &[u8])],
        syncs: Option<&mut Vec<crate::private_file::PendingSync>>,
    ) -> Result<(), HistoryError> {
        if fresh.is_empty() {
            return Ok(());
        }
        let encoded = par_map(fresh, |(_, b)| b.len(), |(_, b)| encode(b));
        let header: Vec<(&str, usize, &str, usize)> = fresh
            .iter()
            .zip(&encoded)
            .map(|((h, raw), (stored, codec))| (*h, stored.len(), *codec, raw.len()))
            .collect();
        let header = serde_json::to_vec(&header)
            .map_err(|e| HistoryError::Corrupt(format!("cannot encode pack: {e}")))?;
        let first = format!("{PACK_MAGIC} {}\n", header.len());
        let mut parts: Vec<&[u8]> = Vec::with_capacity(fresh.len() + 2);
        parts.push(first.as_bytes());
        parts.push(&header);
        parts.extend(encoded.iter().map(|(b, _)| b.as_slice()));
        let dir = self.packs();
        crate::private_file::create_dir(&dir).map_err(|e| io_err(&dir, e))?;
        let path = dir.join(format!("{:016x}.pack", fastrand::u64(..)));
        match syncs {
            Some(syncs) => syncs.push(
                crate::private_file::write_atomic_parts_deferred(&path, &parts)
                    .map_err(|e| io_err(&path, e))?,
            ),
            None => crate::private_file::write_atomic_parts(&path, &parts)
                .map_err(|e| io_err(&path, e))?,
        }
        let mut c = self.cache();
        if let Some(index) = c.index.as_mut() {
            let mut offset = (first.len() + header.len()) as u64;
            for ((h, raw), (stored, codec)) in fresh.iter().zip(&encoded) {
                let len = stored.len() as u64;
                index.insert(
                    h.to_string(),
                    Loc {
                        pack: path.clone(),
                        offset,
                        len,
                        lz4_len: (*codec == "lz4").then_some(raw.len() as u64),
                    },
                );
                offset += len;
            }
        }
        Ok(())
    }

    /// Stores one content; see [`HistoryStore::put_blobs`].
    pub fn put_blob(&self, bytes: &[u8]) -> Result<String, HistoryError> {
        Ok(self.put_blobs(&[bytes])?.remove(0))
    }

    /// A packed blob's bytes, decoded (damage shows as an error or as bytes that do not match
    /// the hash, which the caller checks).
    fn read_at(loc: &Loc) -> io::Result<Vec<u8>> {
        let mut f = fs::File::open(&loc.pack)?;
        f.seek(SeekFrom::Start(loc.offset))?;
        let mut bytes = Vec::new();
        f.take(loc.len).read_to_end(&mut bytes)?;
        match loc.lz4_len {
            None => Ok(bytes),
            Some(raw) => {
                if raw > 1 << 32 {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, "blob too large"));
                }
                lz4_flex::block::decompress(&bytes, raw as usize)
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))
            }
        }
    }

    /// A blob's bytes, checked against its name: a missing or damaged blob is an error.
    pub fn blob(&self, hash: &str) -> Result<Vec<u8>, HistoryError> {
        if !valid_name(hash) {
            return Err(HistoryError::Corrupt(format!("bad blob name {hash:?}")));
        }
        let found = match self.lookup(hash, false) {
            Some(loc) => Some(loc),
            // Another process (or a prune's rewrite) may have packed it since.
            None => self.lookup(hash, true),
        };
        let bytes = match found {
            Some(loc) => match Self::read_at(&loc) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.cache().index = None;
                    return Err(HistoryError::MissingBlob(hash.to_string()));
                }
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    return Err(HistoryError::Corrupt(format!("blob {hash}: {e}")))
                }
                Err(e) => return Err(io_err(&loc.pack, e)),
            },
            None => {
                let path = self.loose_blobs().join(hash);
                match fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        return Err(HistoryError::MissingBlob(hash.to_string()))
                    }
                    Err(e) => return Err(io_err(&path, e)),
                }
            }
        };
        if !matches(hash, &bytes) {
            return Err(HistoryError::Corrupt(format!(
                "blob {hash} does not match its content"
            )));
        }
        Ok(bytes)
    }

    /// Writes (or replaces) a checkpoint's manifest. Its blobs must already be stored.
    /// Call with [`write_lock`] held.
    pub fn save(&self, cp: &Checkpoint) -> Result<(), HistoryError> {
        self.save_into(cp, None)
    }

    /// [`HistoryStore::save`] whose fsyncs go to `syncs`.
    pub fn save_deferred(
        &self,
        cp: &Checkpoint,
        syncs: &mut Vec<crate::private_file::PendingSync>,
    ) -> Result<(), HistoryError> {
        self.save_into(cp, Some(syncs))
    }

    fn save_into(
        &self,
        cp: &Checkpoint,
        syncs: Option<&mut Vec<crate::private_file::PendingSync>>,
    ) -> Result<(), HistoryError> {
        let dir = self.checkpoints();
        crate::private_file::create_dir(&dir).map_err(|e| io_err(&dir, e))?;
        let json = serde_json::to_vec(cp)
            .map_err(|e| HistoryError::Corrupt(format!("cannot encode checkpoint: {e}")))?;
        let name = format!("{}.json", cp.id);
        let path = dir.join(&name);
        match syncs {
            Some(syncs) => syncs.push(
                crate::private_file::write_atomic_parts_deferred(&path, &[&json])
                    .map_err(|e| io_err(&path, e))?,
            ),
            None => {
                crate::private_file::write_atomic(&path, &json).map_err(|e| io_err(&path, e))?
            }
        }
        let stamp = fs::metadata(&path).ok().and_then(|m| m.modified().ok());
        self.cache()
            .manifests
            .insert(name, (json.len() as u64, stamp, cp.clone()));
        Ok(())
    }

    /// Removes a checkpoint's manifest (its blobs go at the next prune).
    pub fn remove(&self, id: &str) -> Result<(), HistoryError> {
        let name = format!("{id}.json");
        let path = self.checkpoints().join(&name);
        {
            let mut c = self.cache();
            c.manifests.remove(&name);
            c.swept = false;
        }
        match fs::remove_file(&path) {
            Ok(()) => {
                crate::private_file::sync_dir(&self.checkpoints());
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Every readable checkpoint, newest first. A manifest that cannot be parsed is skipped
    /// (and named in the returned warnings): one damaged file never hides the rest. Manifests
    /// this process already parsed (same length and mtime) are not read again.
    pub fn list(&self) -> Result<(Vec<Checkpoint>, Vec<String>), HistoryError> {
        let dir = self.checkpoints();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(io_err(&dir, e)),
        };
        let mut out = Vec::new();
        let mut warnings = Vec::new();
        let mut present = HashSet::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".json") {
                continue;
            }
            let meta = entry.metadata().ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let stamp = meta.and_then(|m| m.modified().ok());
            present.insert(name.clone());
            if let Some((l, t, cp)) = self.cache().manifests.get(&name) {
                if *l == len && *t == stamp {
                    out.push(cp.clone());
                    continue;
                }
            }
            let parsed = fs::read(entry.path())
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Checkpoint>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(cp) => {
                    self.cache()
                        .manifests
                        .insert(name, (len, stamp, cp.clone()));
                    out.push(cp);
                }
                Err(e) => warnings.push(format!("checkpoint {name} is unreadable: {e}")),
            }
        }
        self.cache().manifests.retain(|n, _| present.contains(n));
        out.sort_by(|a, b| b.seq.cmp(&a.seq).then_with(|| b.id.cmp(&a.id)));
        Ok((out, warnings))
    }

    /// The next sequence number (one more than the newest checkpoint's), from the manifest
    /// names (`<seq>-<random>.json`) without reading them.
    pub fn next_seq(&self) -> Result<u64, HistoryError> {
        let dir = self.checkpoints();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(1),
            Err(e) => return Err(io_err(&dir, e)),
        };
        let newest = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".json")?;
                stem.split('-').next()?.parse::<u64>().ok()
            })
            .max();
        Ok(newest.map_or(1, |n| n + 1))
    }

    /// Bytes used by manifests and blobs.
    pub fn disk_bytes(&self) -> u64 {
        [self.loose_blobs(), self.packs(), self.checkpoints()]
            .iter()
            .filter_map(|d| fs::read_dir(d).ok())
            .flat_map(|rd| rd.flatten())
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }

    /// Drops the oldest checkpoints until at most `max_checkpoints` remain and the store fits
    /// `max_bytes` (the newest one is always kept), then — the first time in this process and
    /// after any manifest was removed — removes packs and loose blobs no manifest names,
    /// rewrites packs more than half dead, and removes temp files a crash left behind.
    /// Returns the ids pruned.
    pub fn prune(
        &self,
        max_checkpoints: usize,
        max_bytes: u64,
    ) -> Result<Vec<String>, HistoryError> {
        let _g = write_lock();
        let max_checkpoints = max_checkpoints.max(1);
        // Within both limits counted the cheap way (manifest names, file sizes: an upper bound
        // of what the checkpoints use), and swept already: nothing to read.
        if self.cache().swept {
            let manifests = fs::read_dir(self.checkpoints())
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                        .count()
                })
                .unwrap_or(0);
            if manifests <= max_checkpoints && self.disk_bytes() <= max_bytes {
                return Ok(Vec::new());
            }
        }
        let (mut cps, _) = self.list()?;
        let mut pruned = Vec::new();
        while cps.len() > max_checkpoints {
            if let Some(old) = cps.pop() {
                self.remove(&old.id)?;
                pruned.push(old.id);
            }
        }
        let index = {
            let mut c = self.cache();
            if c.index.is_none() {
                c.index = Some(self.read_index());
            }
            c.index.clone().unwrap_or_default()
        };
        let blob_size = |h: &str| match index.get(h) {
            Some(loc) => loc.len,
            None => fs::metadata(self.loose_blobs().join(h)).map_or(0, |m| m.len()),
        };
        loop {
            let mut seen = HashSet::new();
            let mut total = 0u64;
            for cp in &cps {
                total += 512;
                for h in cp.blob_hashes() {
                    if seen.insert(h) {
                        total += blob_size(h);
                    }
                }
            }
            if total <= max_bytes || cps.len() <= 1 {
                break;
            }
            if let Some(old) = cps.pop() {
                self.remove(&old.id)?;
                pruned.push(old.id);
            }
        }
        // Sweeping reads every pack header: only when something can have become unnamed.
        if std::mem::replace(&mut self.cache().swept, true) {
            return Ok(pruned);
        }
        let keep: HashSet<&str> = cps.iter().flat_map(|c| c.blob_hashes()).collect();
        if let Ok(rd) = fs::read_dir(self.loose_blobs()) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(name.as_str()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        self.collect_packs(&keep);
        for dir in [self.checkpoints(), self.packs(), self.loose_blobs()] {
            if let Ok(rd) = fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_name().to_string_lossy().contains(".tmp-") {
                        let _ = fs::remove_file(e.path());
                    }
                }
            }
        }
        Ok(pruned)
    }

    /// Removes packs none of whose blobs are kept, and rewrites those mostly dead (the live
    /// blobs go into a new pack first, so a crash between the two only duplicates them).
    fn collect_packs(&self, keep: &HashSet<&str>) {
        let mut changed = false;
        for e in fs::read_dir(self.packs()).into_iter().flatten().flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "pack") {
                continue;
            }
            let Ok(entries) = pack_header(&path) else {
                continue;
            };
            let (live, dead): (Vec<_>, Vec<_>) =
                entries.iter().partition(|(h, _)| keep.contains(h.as_str()));
            let live_bytes: u64 = live.iter().map(|(_, l)| l.len).sum();
            let dead_bytes: u64 = dead.iter().map(|(_, l)| l.len).sum();
            if dead.is_empty() || dead_bytes < live_bytes {
                continue;
            }
            changed = true;
            if !live.is_empty() {
                let mut contents = Vec::new();
                for (h, loc) in &live {
                    match Self::read_at(loc) {
                        Ok(b) => contents.push((h.as_str(), b)),
                        Err(_) => return,
                    }
                }
                // Written whatever the index says: the old pack still holds them.
                let blobs: Vec<(&str, &[u8])> =
                    contents.iter().map(|(h, b)| (*h, b.as_slice())).collect();
                if self.write_pack(&blobs, None).is_err() {
                    return;
                }
            }
            let _ = fs::remove_file(&path);
        }
        if changed {
            crate::private_file::sync_dir(&self.packs());
            self.cache().index = None;
        }
    }
}
