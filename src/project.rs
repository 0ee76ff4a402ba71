//! Projects: one per workspace folder, each with its own settings, conversation and task slot.
//! A file belongs to the project whose root is its longest path prefix (taplo's rule).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashMap;

use crate::config::Settings;
use crate::conversation::{ConversationError, ConversationState, ConversationStore};
use crate::history::HistoryStore;
use crate::packages::index::PackageIndex;
use crate::sandbox::session::Session;

pub struct Project {
    /// The folder as the client named it (absolute).
    pub root: PathBuf,
    /// The same folder with symlinks resolved; paths are checked against this one.
    pub canonical_root: PathBuf,
    pub name: String,
    pub settings: RwLock<Settings>,
    conversation: Mutex<Option<ConversationState>>,
    store: Arc<ConversationStore>,
    /// Held by a long job (apply with installs, generate, install) so jobs in one project queue
    /// instead of racing on the same files.
    pub job_lock: tokio::sync::Mutex<()>,
    /// One package install at a time per project (npm and friends lock the tree anyway, but
    /// a second run would see a half-written package.json).
    pub install_lock: tokio::sync::Mutex<()>,
    /// Serialises sandbox create/kill/restart; the session itself sits in `sandbox`.
    pub sandbox_lock: tokio::sync::Mutex<()>,
    sandbox: Mutex<Option<Arc<Session>>>,
    /// Imports of the project's files, built on first use (diagnostics, detectPackages).
    pub packages: Mutex<Option<PackageIndex>>,
    /// Checkpoints of every change set landed in this project.
    pub history: HistoryStore,
    /// The change set waiting for review (clients without change annotations), if any.
    pub pending: Mutex<Option<crate::review::PendingReview>>,
    /// Where the pending set's diff is written for the user to read.
    pub review_dir: PathBuf,
    /// Errors the running app threw in the browser (the sandbox's preview plugin).
    pub preview: Mutex<crate::sandbox::preview::PreviewErrors>,
}

impl Project {
    pub fn new(root: PathBuf, store: Arc<ConversationStore>) -> Self {
        let canonical_root = std::fs::canonicalize(&root).unwrap_or_else(|_| root.clone());
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "project".into());
        let history = HistoryStore::for_project(store.dir(), &canonical_root);
        let review_dir = store
            .dir()
            .join("review")
            .join(history.dir().file_name().unwrap_or_default());
        Project {
            root,
            canonical_root,
            name,
            settings: RwLock::new(Settings::default()),
            conversation: Mutex::new(None),
            store,
            job_lock: tokio::sync::Mutex::new(()),
            install_lock: tokio::sync::Mutex::new(()),
            sandbox_lock: tokio::sync::Mutex::new(()),
            sandbox: Mutex::new(None),
            packages: Mutex::new(None),
            history,
            pending: Mutex::new(None),
            review_dir,
            preview: Mutex::new(Default::default()),
        }
    }

    /// A copy of the runtime errors the preview reported (the lock is not held after).
    pub fn preview_errors(&self) -> Vec<crate::sandbox::preview::RuntimeError> {
        self.preview
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .all()
            .to_vec()
    }

    /// The running sandbox, if any.
    pub fn sandbox(&self) -> Option<Arc<Session>> {
        self.sandbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Replaces the running sandbox; returns the previous one (for the caller to kill).
    pub fn set_sandbox(&self, s: Option<Arc<Session>>) -> Option<Arc<Session>> {
        std::mem::replace(
            &mut *self.sandbox.lock().unwrap_or_else(|e| e.into_inner()),
            s,
        )
    }

    /// Runs `f` on the package index, building it first if needed (blocking: call from
    /// `spawn_blocking`).
    pub fn with_packages<R>(&self, f: impl FnOnce(&mut PackageIndex) -> R) -> R {
        let mut g = self.packages.lock().unwrap_or_else(|e| e.into_inner());
        let idx = g.get_or_insert_with(|| PackageIndex::build(&self.canonical_root));
        f(idx)
    }

    pub fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_settings(&self, s: Settings) {
        *self.settings.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// True when `path` lies in this project (lexically, or after resolving symlinks).
    pub fn contains(&self, path: &Path) -> bool {
        path.starts_with(&self.root) || path.starts_with(&self.canonical_root)
    }

    /// Runs `f` on the conversation (loaded from disk on first use) and persists the result
    /// atomically when `f` changed something. A corrupt state file starts a fresh conversation
    /// and is reported in the returned warning.
    pub fn with_conversation<R>(
        &self,
        f: impl FnOnce(&mut ConversationState) -> R,
    ) -> Result<(R, Option<String>), ConversationError> {
        let mut guard = self.conversation.lock().unwrap_or_else(|e| e.into_inner());
        let mut warning = None;
        if guard.is_none() {
            let loaded = match self.store.load(&self.canonical_root) {
                Ok(s) => s,
                Err(e) => {
                    warning = Some(format!(
                        "conversation state was unreadable ({e}); started a new one"
                    ));
                    None
                }
            };
            *guard = Some(loaded.unwrap_or_else(ConversationState::new));
        }
        let state = guard.get_or_insert_with(ConversationState::new);
        // Compare whole states: timestamps have millisecond resolution and can repeat.
        let before = state.clone();
        let out = f(state);
        if *state != before || warning.is_some() {
            self.store.save(&self.canonical_root, state)?;
        }
        Ok((out, warning))
    }

    /// Forgets the conversation in memory and on disk.
    pub fn delete_conversation(&self) -> Result<(), ConversationError> {
        let mut guard = self.conversation.lock().unwrap_or_else(|e| e.into_inner());
        self.store.delete(&self.canonical_root)?;
        *guard = Some(ConversationState::new());
        Ok(())
    }
}

/// Every project of the server, keyed by root path.
pub struct ProjectRegistry {
    projects: DashMap<PathBuf, Arc<Project>>,
    store: Arc<ConversationStore>,
}

impl ProjectRegistry {
    pub fn new(store: ConversationStore) -> Self {
        ProjectRegistry {
            projects: DashMap::new(),
            store: Arc::new(store),
        }
    }

    /// Adds (or returns the existing) project for `root`.
    pub fn add(&self, root: PathBuf) -> Arc<Project> {
        self.projects
            .entry(root.clone())
            .or_insert_with(|| Arc::new(Project::new(root, self.store.clone())))
            .clone()
    }

    pub fn remove(&self, root: &Path) -> Option<Arc<Project>> {
        self.projects.remove(root).map(|(_, p)| p)
    }

    pub fn get(&self, root: &Path) -> Option<Arc<Project>> {
        self.projects.get(root).map(|p| p.clone())
    }

    /// The project with the longest root that contains `path`.
    pub fn for_path(&self, path: &Path) -> Option<Arc<Project>> {
        let canonical = std::fs::canonicalize(path).ok();
        self.projects
            .iter()
            .filter(|p| p.contains(path) || canonical.as_deref().is_some_and(|c| p.contains(c)))
            .max_by_key(|p| p.root.components().count())
            .map(|p| p.clone())
    }

    pub fn all(&self) -> Vec<Arc<Project>> {
        let mut v: Vec<_> = self.projects.iter().map(|p| p.clone()).collect();
        v.sort_by(|a, b| a.root.cmp(&b.root));
        v
    }

    pub fn is_empty(&self) -> bool {
        self.projects.is_empty()
    }
}

/// For a document opened with no workspace at all: the nearest folder above it holding a
/// `package.json` or `.git`.
pub fn detect_root(file: &Path) -> Option<PathBuf> {
    file.ancestors()
        .skip(1)
        .find(|dir| dir.join("package.json").is_file() || dir.join(".git").exists())
        .map(Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> (tempfile::TempDir, ProjectRegistry) {
        let state = tempfile::tempdir().unwrap();
        let reg = ProjectRegistry::new(ConversationStore::new(state.path().to_path_buf()));
        (state, reg)
    }

    #[test]
    fn longest_prefix_wins() {
        let (_s, reg) = registry();
        reg.add(PathBuf::from("/w/app"));
        reg.add(PathBuf::from("/w/app/packages/ui"));
        reg.add(PathBuf::from("/w/application"));
        let p = reg
            .for_path(Path::new("/w/app/packages/ui/src/A.jsx"))
            .unwrap();
        assert_eq!(p.root, PathBuf::from("/w/app/packages/ui"));
        let p = reg.for_path(Path::new("/w/app/src/A.jsx")).unwrap();
        assert_eq!(p.root, PathBuf::from("/w/app"));
        // Component-wise, not string prefix: /w/application is not inside /w/app.
        let p = reg.for_path(Path::new("/w/application/x.js")).unwrap();
        assert_eq!(p.root, PathBuf::from("/w/application"));
        assert!(reg.for_path(Path::new("/elsewhere/x.js")).is_none());
    }

    #[test]
    fn remove_forgets() {
        let (_s, reg) = registry();
        reg.add(PathBuf::from("/w/a"));
        assert!(reg.remove(Path::new("/w/a")).is_some());
        assert!(reg.for_path(Path::new("/w/a/x")).is_none());
    }

    #[test]
    fn detect_root_finds_package_json() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("app/src")).unwrap();
        std::fs::write(d.path().join("app/package.json"), "{}").unwrap();
        let got = detect_root(&d.path().join("app/src/main.jsx")).unwrap();
        assert_eq!(got, d.path().join("app"));
    }

    #[test]
    fn conversation_persists_across_registries() {
        let state = tempfile::tempdir().unwrap();
        let proj = tempfile::tempdir().unwrap();
        let reg = ProjectRegistry::new(ConversationStore::new(state.path().to_path_buf()));
        let p = reg.add(proj.path().to_path_buf());
        let (id, _) = p
            .with_conversation(|c| {
                c.add_message("user", "hello", Default::default());
                c.conversation_id.clone()
            })
            .unwrap();
        let reg2 = ProjectRegistry::new(ConversationStore::new(state.path().to_path_buf()));
        let p2 = reg2.add(proj.path().to_path_buf());
        let ((id2, n), _) = p2
            .with_conversation(|c| (c.conversation_id.clone(), c.messages.len()))
            .unwrap();
        assert_eq!(id, id2);
        assert_eq!(n, 1);
    }
}
