//! The workspace's imports, kept current file by file, and which of them no `package.json`
//! provides.
//!
//! A package counts as provided for a file when a `package.json` at or above the file (inside
//! the root) declares it: Node looks up `node_modules` the same way, so a monorepo root's
//! devDependencies serve every workspace package. Names of packages in the workspace itself are
//! never missing (installing them from the registry would fetch a stranger's package). A missing
//! import is reported against the *nearest* manifest, which is where an install should add it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use walkdir::WalkDir;

use super::aliases::Aliases;
use super::manifest::{Manifest, ManifestError};
use super::scan::{scan_file, source_kind, Import, ImportKind, SourceKind};
use super::specifier::package_name;

/// Files larger than this are generated or vendored, not code anyone imports from by hand.
pub const MAX_FILE_BYTES: u64 = 2 * 1024 * 1024;

/// Folders never scanned: installed packages, VCS data and build output.
const SKIPPED_DIRS: &[&str] = &["node_modules", "dist", "build", "out", "coverage"];

/// Files handed to a scanning thread at a time: small enough to balance, large enough that the
/// shared counter is not contended.
const CHUNK: usize = 16;

/// A multiply-rotate hash (the one rustc uses) for the short keys of [`PackageIndex::missing`],
/// where SipHash's DoS resistance buys nothing and costs a third of the run.
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        for &b in chunks.remainder() {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
type FastSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

/// One import whose package no manifest declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingImport {
    pub package: String,
    pub import: Import,
    /// The nearest package.json above the file (which lacks the package); None when there is none.
    pub manifest: Option<PathBuf>,
}

/// The answer for a whole workspace (the `detectPackages` result).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Missing {
    /// Every distinct specifier seen, sorted.
    pub imports: Vec<String>,
    /// Packages imported at runtime somewhere and missing, sorted.
    pub packages: Vec<String>,
    /// Missing packages only ever imported type-only (these belong in devDependencies).
    pub type_packages: Vec<String>,
}

#[derive(Debug, Clone)]
enum ManifestEntry {
    Ok(Arc<Manifest>),
    /// Unparseable; the last good parse (if any) stands in so a half-typed edit does not flag
    /// every import. With none, files under it report nothing.
    Broken {
        error: String,
        last_good: Option<Arc<Manifest>>,
    },
}

impl ManifestEntry {
    fn manifest(&self) -> Option<&Arc<Manifest>> {
        match self {
            ManifestEntry::Ok(m) => Some(m),
            ManifestEntry::Broken { last_good, .. } => last_good.as_ref(),
        }
    }
}

/// The manifests that serve one folder, nearest first.
struct Chain {
    nearest: Option<PathBuf>,
    manifests: Vec<Arc<Manifest>>,
    /// False when the nearest manifest is broken with no earlier version: no verdicts.
    usable: bool,
}

pub struct PackageIndex {
    root: PathBuf,
    aliases: Aliases,
    files: HashMap<PathBuf, Arc<[Import]>>,
    manifests: HashMap<PathBuf, ManifestEntry>,
    /// `name` of every manifest in the workspace.
    local_names: HashSet<String>,
}

impl PackageIndex {
    /// An index with the root's aliases and nothing scanned.
    pub fn empty(root: &Path) -> PackageIndex {
        PackageIndex {
            root: root.to_path_buf(),
            aliases: Aliases::load(root),
            files: HashMap::new(),
            manifests: HashMap::new(),
            local_names: HashSet::new(),
        }
    }

    /// Walks `root` and scans every script and stylesheet on several threads.
    pub fn build(root: &Path) -> PackageIndex {
        let mut idx = PackageIndex::empty(root);
        let mut sources = Vec::new();
        let mut manifests = Vec::new();
        let walk = WalkDir::new(root)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| {
                e.depth() == 0 || !e.file_type().is_dir() || !skipped_dir(e.file_name())
            });
        for entry in walk.flatten() {
            if !entry.file_type().is_file() {
                continue; // directories, and symlinks (which could leave the root or loop)
            }
            if entry.file_name() == "package.json" {
                manifests.push(entry.into_path());
            } else if source_kind(entry.path()) != SourceKind::Other {
                sources.push(entry.into_path());
            }
        }
        idx.files = scan_parallel(sources);
        for m in manifests {
            let parsed = Manifest::load(&m);
            idx.put_manifest(m, parsed);
        }
        idx.refresh_local_names();
        idx
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn aliases(&self) -> &Aliases {
        &self.aliases
    }

    /// Number of files indexed.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The imports last recorded for `path`.
    pub fn imports(&self, path: &Path) -> Option<Arc<[Import]>> {
        self.files.get(&self.absolute(path)).cloned()
    }

    /// Manifests that failed to parse, with the reason.
    pub fn manifest_errors(&self) -> Vec<(PathBuf, String)> {
        let mut v: Vec<_> = self
            .manifests
            .iter()
            .filter_map(|(p, e)| match e {
                ManifestEntry::Broken { error, .. } => Some((p.clone(), error.clone())),
                ManifestEntry::Ok(_) => None,
            })
            .collect();
        v.sort();
        v
    }

    /// Rescans one file from the editor's text. Files outside the root, in skipped folders or of
    /// another kind are not indexed.
    pub fn update_file(&mut self, path: &Path, text: &str) {
        let path = self.absolute(path);
        if !self.indexable(&path) || source_kind(&path) == SourceKind::Other {
            self.files.remove(&path);
            return;
        }
        let imports: Arc<[Import]> = scan_file(&path, text).into();
        self.files.insert(path, imports);
    }

    pub fn remove_file(&mut self, path: &Path) {
        let path = self.absolute(path);
        self.files.remove(&path);
    }

    /// Rereads one package.json after it changed, appeared or was deleted.
    pub fn reload_manifest(&mut self, package_json: &Path) {
        let path = self.absolute(package_json);
        if !self.indexable(&path) {
            return;
        }
        if !path.is_file() {
            self.manifests.remove(&path);
        } else {
            let parsed = Manifest::load(&path);
            self.put_manifest(path, parsed);
        }
        self.refresh_local_names();
    }

    /// Rereads the Vite and tsconfig aliases.
    pub fn reload_aliases(&mut self) {
        self.aliases = Aliases::load(&self.root);
    }

    /// Sets a manifest from text (a package.json not on disk yet, or an unsaved buffer).
    pub fn set_manifest_text(&mut self, package_json: &Path, text: &str) {
        let path = self.absolute(package_json);
        let parsed = Manifest::parse(&path, text);
        self.put_manifest(path, parsed);
        self.refresh_local_names();
    }

    /// Stores a parse of the manifest at `path`; a failed one keeps the last good parse.
    fn put_manifest(&mut self, path: PathBuf, parsed: Result<Manifest, ManifestError>) {
        let entry = match parsed {
            Ok(m) => ManifestEntry::Ok(Arc::new(m)),
            Err(e) => ManifestEntry::Broken {
                error: e.to_string(),
                last_good: self
                    .manifests
                    .get(&path)
                    .and_then(|e| e.manifest().cloned()),
            },
        };
        self.manifests.insert(path, entry);
    }

    /// Missing packages over every indexed file.
    pub fn missing(&self) -> Missing {
        // A workspace repeats a few hundred specifiers across thousands of files: package names
        // are cached per specifier, verdicts per folder.
        let mut pkg_of: FastMap<&str, Option<&str>> = FastMap::default();
        let mut dirs: FastMap<&Path, (Chain, FastMap<&str, bool>)> = FastMap::default();
        let mut specs: FastSet<&str> = FastSet::default();
        let mut runtime: FastSet<&str> = FastSet::default();
        let mut typed: FastSet<&str> = FastSet::default();
        for (path, imports) in &self.files {
            let dir = path.parent().unwrap_or(&self.root);
            let (chain, verdicts) = dirs
                .entry(dir)
                .or_insert_with(|| (self.chain(dir), FastMap::default()));
            for imp in imports.iter() {
                let spec = imp.specifier.as_str();
                specs.insert(spec);
                if !chain.usable {
                    continue;
                }
                let pkg = if imp.kind == ImportKind::CssImport {
                    self.css_package(dir, spec)
                } else {
                    *pkg_of
                        .entry(spec)
                        .or_insert_with(|| package_name(spec, &self.aliases))
                };
                let Some(pkg) = pkg else { continue };
                let provided = *verdicts
                    .entry(pkg)
                    .or_insert_with(|| self.provided(chain, pkg));
                if !provided {
                    if imp.type_only {
                        typed.insert(pkg);
                    } else {
                        runtime.insert(pkg);
                    }
                }
            }
        }
        let sorted = |set: FastSet<&str>| {
            let mut v: Vec<String> = set.into_iter().map(str::to_owned).collect();
            v.sort_unstable();
            v
        };
        let type_only: FastSet<&str> = typed.difference(&runtime).copied().collect();
        Missing {
            imports: sorted(specs),
            packages: sorted(runtime),
            type_packages: sorted(type_only),
        }
    }

    /// The missing imports of one file (diagnostics), in source order. `imports` is the file's
    /// current scan; the index need not hold the file.
    pub fn missing_in(&self, path: &Path, imports: &[Import]) -> Vec<MissingImport> {
        let path = self.absolute(path);
        let dir = path.parent().unwrap_or(&self.root);
        let chain = self.chain(dir);
        if !chain.usable {
            return Vec::new();
        }
        imports
            .iter()
            .filter_map(|imp| {
                let spec = imp.specifier.as_str();
                let pkg = if imp.kind == ImportKind::CssImport {
                    self.css_package(dir, spec)
                } else {
                    package_name(spec, &self.aliases)
                }?;
                if self.provided(&chain, pkg) {
                    return None;
                }
                Some(MissingImport {
                    package: pkg.to_owned(),
                    import: imp.clone(),
                    manifest: chain.nearest.clone(),
                })
            })
            .collect()
    }

    /// Whether a manifest in `chain`, or the workspace itself, provides `pkg`.
    fn provided(&self, chain: &Chain, pkg: &str) -> bool {
        self.local_names.contains(pkg) || chain.manifests.iter().any(|m| m.declares(pkg))
    }

    /// The package a stylesheet import needs: Sass's `~pkg` means node_modules, and a bare
    /// `@import 'x'` that names a file beside the stylesheet is that file.
    fn css_package<'s>(&self, dir: &Path, spec: &'s str) -> Option<&'s str> {
        let spec = spec.strip_prefix('~').unwrap_or(spec);
        let pkg = package_name(spec, &self.aliases)?;
        (!self.css_local_exists(dir, spec)).then_some(pkg)
    }

    /// Whether a stylesheet import names a file next to the importer (`@import 'theme'` →
    /// `theme.css`, Sass partial `_theme.scss`, …), indexed or on disk.
    fn css_local_exists(&self, dir: &Path, spec: &str) -> bool {
        let base = dir.join(spec);
        let file = base.file_name().and_then(|f| f.to_str()).unwrap_or("");
        let mut candidates = vec![base.clone()];
        for ext in ["css", "scss", "sass", "less"] {
            candidates.push(base.with_file_name(format!("{file}.{ext}")));
            candidates.push(base.with_file_name(format!("_{file}.{ext}")));
        }
        candidates.push(base.with_file_name(format!("_{file}")));
        candidates
            .iter()
            .any(|c| self.files.contains_key(c) || c.is_file())
    }

    /// Manifests at or above `dir` within the root, nearest first.
    fn chain(&self, dir: &Path) -> Chain {
        let mut chain = Chain {
            nearest: None,
            manifests: Vec::new(),
            usable: true,
        };
        if !dir.starts_with(&self.root) {
            return chain;
        }
        for d in dir.ancestors() {
            let p = d.join("package.json");
            if let Some(entry) = self.manifests.get(&p) {
                if chain.nearest.is_none() {
                    chain.nearest = Some(p);
                    chain.usable = entry.manifest().is_some();
                }
                if let Some(m) = entry.manifest() {
                    chain.manifests.push(m.clone());
                }
            }
            if d == self.root {
                break;
            }
        }
        chain
    }

    fn refresh_local_names(&mut self) {
        self.local_names = self
            .manifests
            .values()
            .filter_map(|e| e.manifest()?.name.clone())
            .collect();
    }

    fn absolute(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        }
    }

    /// Inside the root and not under a skipped folder.
    fn indexable(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        let mut comps = rel.components().peekable();
        while let Some(c) = comps.next() {
            match c {
                Component::Normal(name) => {
                    if comps.peek().is_some() && skipped_dir(name) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
        true
    }
}

/// Missing packages for an explicit file map (paths relative to `root`), as the
/// `detectPackages` command receives it. A `package.json`, `vite.config.*` or `tsconfig.json`
/// in the map takes the place of the one on disk; other manifests are read from disk.
pub fn detect(files: &[(PathBuf, String)], root: &Path) -> Missing {
    let mut idx = PackageIndex::empty(root);
    for (rel, text) in files {
        let abs = idx.absolute(rel);
        let name = abs.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let at_root = abs.parent() == Some(root);
        if name == "package.json" {
            if idx.indexable(&abs) {
                idx.set_manifest_text(&abs, text);
            }
        } else if at_root && name.starts_with("vite.config.") {
            idx.aliases.add_vite_config(text);
        } else if at_root
            && (name == "jsconfig.json"
                || (name.starts_with("tsconfig") && name.ends_with(".json")))
        {
            idx.aliases.add_tsconfig_text(text);
        } else {
            idx.update_file(&abs, text);
        }
    }
    // Manifests on disk above each file, unless the map supplied them.
    let dirs: BTreeSet<PathBuf> = idx
        .files
        .keys()
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    let mut checked = HashSet::new();
    for dir in dirs {
        for d in dir.ancestors() {
            if !d.starts_with(root) || !checked.insert(d.to_path_buf()) {
                break;
            }
            let p = d.join("package.json");
            if !idx.manifests.contains_key(&p) && p.is_file() {
                idx.reload_manifest(&p);
            }
        }
    }
    idx.missing()
}

fn skipped_dir(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name.starts_with('.') || SKIPPED_DIRS.contains(&name)
}

/// Reads and scans `paths` on every core (at least two threads).
fn scan_parallel(paths: Vec<PathBuf>) -> HashMap<PathBuf, Arc<[Import]>> {
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8)
        .min(paths.len().div_ceil(CHUNK).max(1));
    let next = AtomicUsize::new(0);
    let paths = &paths;
    let results: Vec<Vec<(PathBuf, Arc<[Import]>)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    let mut buf = Vec::new();
                    loop {
                        let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                        if start >= paths.len() {
                            break;
                        }
                        for p in &paths[start..(start + CHUNK).min(paths.len())] {
                            if let Some(imports) = scan_path(p, &mut buf) {
                                out.push((p.clone(), imports));
                            }
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    results.into_iter().flatten().collect()
}

/// Reads one file into `buf` and scans it; None when unreadable or too large.
fn scan_path(path: &Path, buf: &mut Vec<u8>) -> Option<Arc<[Import]>> {
    let mut f = std::fs::File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    if len > MAX_FILE_BYTES {
        return None;
    }
    buf.clear();
    f.read_to_end(buf).ok()?;
    let imports = match std::str::from_utf8(buf) {
        Ok(text) => scan_file(path, text),
        // Offsets into a repaired copy are close enough for a disk file nobody has open.
        Err(_) => scan_file(path, &String::from_utf8_lossy(buf)),
    };
    Some(imports.into())
}
