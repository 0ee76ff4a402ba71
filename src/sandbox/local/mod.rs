//! The local provider: a private directory under the user's cache dir, npm and Vite run on the
//! host (inside bubblewrap when it works), the preview on a free loopback port.
//!
//! Every child runs in its own process group with `PR_SET_PDEATHSIG` = SIGKILL: npm and Vite
//! spawn children (esbuild, postinstall scripts), so killing only the direct child would leave
//! them holding ports, and the death signal stops the tree even when this server is SIGKILLed.
//! Vite is started as `node_modules/.bin/vite`, never through `npx`, whose wrapper process
//! leaves Vite running when it is killed.
//!
//! Under bubblewrap the host is read-only, the sandbox dir and the npm cache are writable,
//! `/tmp` is private and the network is shared (the npm registry). `--unshare-pid` makes the
//! sandbox's processes die with bwrap, which is the group leader here.
//!
//! Caveat of `PR_SET_PDEATHSIG`: it fires when the spawning *thread* exits. Children are
//! spawned from the calling task's thread, i.e. a runtime worker that lives as long as the
//! runtime; do not call `run`/`start_dev_server` from a short-lived `spawn_blocking` thread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use super::orphans;
use super::{
    CommandOutput, CommandSpec, LineSink, ProviderKind, Result, Sandbox, SandboxError, SandboxFile,
    SandboxInfo,
};
use crate::exec::process::{signal_group, Captured};

mod files;
mod jail;
mod procs;
mod vite;

use files::*;
pub use jail::Isolation;
use jail::*;
use procs::*;

const PROVIDER: &str = "local";

/// Between SIGTERM and SIGKILL when cancelling a command.
const CANCEL_GRACE: Duration = Duration::from_millis(500);

/// Between SIGTERM and SIGKILL when stopping the dev server or killing the sandbox.
const KILL_GRACE: Duration = Duration::from_secs(1);

/// Directories that `list_files` skips at any depth: dependencies, VCS, build output (the
/// same set the workspace seeding skips).
const SKIP_DIRS: &[&str] = &[
    "node_modules",
    ".git",
    ".hg",
    ".svn",
    "dist",
    "build",
    ".vite",
    ".next",
];

/// Minimum time between two writes of the same file. Vite's watcher (chokidar 3) drops a
/// second `change` of a path within 50 ms of the previous one, so the later text would never
/// be served; 100 ms leaves room for the watcher's own delay under load.
const WATCH_GAP: Duration = Duration::from_millis(100);

/// Marker in the names of `write_files`' temporary files (hidden from `list_files`).
const TMP_MARK: &str = ".builder-tmp-";

/// What [`create`] needs.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Parent of the sandbox dirs, e.g. [`default_base_dir`].
    pub base_dir: PathBuf,
    pub isolation: Isolation,
    /// Names the sandbox dir (the project folder's name); sanitized here too.
    pub project_key: String,
    /// The URL path a path-prefix proxy serves the preview under (code-server's
    /// `/proxy/{{port}}/`), `{{port}}` standing for the dev server's port; see
    /// [`super::preview::base_for_port`]. `None`: served from `/`.
    pub preview_base: Option<String>,
}

/// `$BUILDER_CACHE_DIR/sandboxes`, else `<user cache dir>/builder-lsp/sandboxes`.
pub fn default_base_dir() -> PathBuf {
    match std::env::var_os("BUILDER_CACHE_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("sandboxes"),
        _ => dirs::cache_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("builder-lsp")
            .join("sandboxes"),
    }
}

/// A sandbox in a private directory on this machine.
pub struct LocalSandbox {
    id: String,
    dir: PathBuf,
    created_at: String,
    jail: Jail,
    note: Option<String>,
    port: AtomicU16,
    /// See [`LocalOptions::preview_base`].
    preview_base: Option<String>,
    dev: tokio::sync::Mutex<Option<DevServer>>,
    groups: Arc<Groups>,
    gone: AtomicBool,
    /// The lock that marks the dir as ours (see [`orphans`]); released once the dir is gone.
    owner: Mutex<Option<orphans::Owner>>,
    /// When each recently written file was written (see [`WATCH_GAP`]).
    recent_writes: Mutex<HashMap<PathBuf, Instant>>,
}

/// Makes a fresh private dir `<base>/<key>-<random>` (mode 0700) and reserves a loopback port;
/// nothing runs yet and no file is copied (the shared flow writes them with `write_files`).
pub async fn create(opts: LocalOptions) -> Result<LocalSandbox> {
    let bwrap = match opts.isolation {
        Isolation::None => Err(String::new()),
        _ => bwrap_status().await,
    };
    let (jail, note) = resolve_jail(opts.isolation, bwrap, &opts.base_dir).await?;
    let key = sanitize_key(&opts.project_key);
    let base = opts.base_dir.clone();
    let (id, dir, owner) = tokio::task::spawn_blocking(move || make_private_dir(&base, &key))
        .await
        .map_err(|e| SandboxError::Failed(format!("creating the sandbox dir failed: {e}")))??;
    // Leftovers of servers that died hard; off the create path (removing node_modules is slow).
    let base = opts.base_dir.clone();
    tokio::task::spawn_blocking(move || {
        let removed = orphans::sweep(&base);
        if !removed.is_empty() {
            tracing::info!("removed orphaned local sandboxes: {}", removed.join(", "));
        }
    });
    let port = reserve_port()?;
    Ok(LocalSandbox {
        id,
        dir,
        owner: Mutex::new(Some(owner)),
        created_at: chrono::Utc::now().to_rfc3339(),
        jail,
        note,
        port: AtomicU16::new(port),
        preview_base: opts.preview_base,
        dev: tokio::sync::Mutex::new(None),
        groups: Arc::new(Groups::default()),
        gone: AtomicBool::new(false),
        recent_writes: Mutex::new(HashMap::new()),
    })
}

impl LocalSandbox {
    /// The project dir inside the sandbox.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Why `Auto` isolation fell back to none, if it did.
    pub fn isolation_note(&self) -> Option<&str> {
        self.note.as_deref()
    }

    fn port(&self) -> u16 {
        self.port.load(Ordering::SeqCst)
    }

    fn check_alive(&self) -> Result<()> {
        if self.gone.load(Ordering::SeqCst) {
            Err(SandboxError::Gone {
                provider: PROVIDER,
                id: self.id.clone(),
            })
        } else {
            Ok(())
        }
    }

    /// A command for `program args` in the sandbox dir: jailed if so configured, its own
    /// process group, killed with this process, no colours, no browser, piped output.
    fn command(&self, program: &str, args: &[String], env: &HashMap<String, String>) -> Command {
        let mut cmd = match &self.jail {
            Jail::None => {
                let mut c = Command::new(program);
                c.args(args);
                c
            }
            Jail::Bwrap {
                program: bwrap,
                npm_cache,
                npmrc,
            } => {
                let mut c = Command::new(bwrap);
                // HOME is a fresh dir in the private /tmp: tools that write under it (pnpm's
                // store, yarn's cache) work, and the real home stays read-only.
                c.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
                    .args(["--tmpfs", "/tmp", "--dir", "/tmp/home"])
                    .args(["--setenv", "HOME", "/tmp/home"])
                    .arg("--bind")
                    .arg(&self.dir)
                    .arg(&self.dir)
                    .arg("--bind")
                    .arg(npm_cache)
                    .arg(npm_cache)
                    .args(BWRAP_FLAGS)
                    .arg("--chdir")
                    .arg(&self.dir)
                    .arg("--setenv")
                    .arg("npm_config_cache")
                    .arg(npm_cache)
                    .args(["--setenv", "TMPDIR", "/tmp"]);
                if let Some(rc) = npmrc {
                    c.arg("--setenv").arg("npm_config_userconfig").arg(rc);
                }
                c.arg("--").arg(program).args(args);
                c
            }
        };
        cmd.current_dir(&self.dir)
            // NO_COLOR alone: Node warns when FORCE_COLOR is set too.
            .env_remove("FORCE_COLOR")
            .env("NO_COLOR", "1")
            .env("BROWSER", "none")
            // No progress bars, spinners or prompts from npm and friends.
            .env("CI", "1")
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        own_session(&mut cmd);
        crate::exec::process::die_with_parent(&mut cmd);
        cmd
    }

    fn spawn(&self, cmd: &mut Command, program: &str) -> Result<(Child, GroupGuard)> {
        let child = cmd.spawn().map_err(|e| {
            SandboxError::Failed(format!("cannot start `{program}` in the sandbox: {e}"))
        })?;
        let pgid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| SandboxError::Failed(format!("`{program}` exited at once")))?;
        let guard = self.groups.register(pgid);
        Ok((child, guard))
    }
}
#[async_trait]
impl Sandbox for LocalSandbox {
    fn info(&self) -> SandboxInfo {
        SandboxInfo {
            sandbox_id: self.id.clone(),
            provider: ProviderKind::Local,
            url: format!("http://127.0.0.1:{}", self.port()),
            created_at: self.created_at.clone(),
            isolation: match self.jail {
                Jail::None => "none".into(),
                Jail::Bwrap { .. } => "bwrap".into(),
            },
        }
    }

    fn project_dir(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    async fn write_files(&self, files: &[SandboxFile]) -> Result<()> {
        self.check_alive()?;
        // Every path is checked before anything is written.
        let owned = files
            .iter()
            .map(|f| Ok((safe_rel(&f.path)?, f.path.clone(), f.bytes.clone())))
            .collect::<Result<Vec<_>>>()?;
        // A file written moments ago waits out the watcher's window (see WATCH_GAP).
        let wait = {
            let recent = lock(&self.recent_writes);
            owned
                .iter()
                .filter_map(|(rel, _, _)| recent.get(rel))
                .map(|at| WATCH_GAP.saturating_sub(at.elapsed()))
                .max()
                .unwrap_or_default()
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let rels: Vec<PathBuf> = owned.iter().map(|(rel, _, _)| rel.clone()).collect();
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || write_files_blocking(&dir, owned))
            .await
            .map_err(|e| SandboxError::Failed(format!("writing files failed: {e}")))?;
        let now = Instant::now();
        let mut recent = lock(&self.recent_writes);
        recent.retain(|_, at| now.duration_since(*at) < WATCH_GAP);
        for rel in rels {
            recent.insert(rel, now);
        }
        written
    }

    async fn delete_files(&self, paths: &[String]) -> Result<()> {
        self.check_alive()?;
        let rels = paths
            .iter()
            .map(|p| Ok((safe_rel(p)?, p.clone())))
            .collect::<Result<Vec<_>>>()?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            for (rel, shown) in rels {
                let target = dir.join(&rel);
                if let Some(parent) = target.parent().filter(|p| p.exists()) {
                    ensure_inside(&dir, parent, &shown)?;
                }
                match std::fs::remove_file(&target) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| SandboxError::Failed(format!("deleting files failed: {e}")))?
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>> {
        self.check_alive()?;
        let target = self.dir.join(safe_rel(path)?);
        let dir = self.dir.clone();
        let shown = path.to_string();
        tokio::task::spawn_blocking(move || {
            match target.try_exists() {
                Ok(false) => return Ok(None),
                Ok(true) => {}
                Err(e) => return Err(e.into()),
            }
            ensure_inside(&dir, &target, &shown)?;
            match std::fs::read(&target) {
                Ok(b) => Ok(Some(b)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e.into()),
            }
        })
        .await
        .map_err(|e| SandboxError::Failed(format!("reading `{path}` failed: {e}")))?
    }

    async fn list_files(&self) -> Result<Vec<String>> {
        self.check_alive()?;
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || list_files_blocking(&dir))
            .await
            .map_err(|e| SandboxError::Failed(format!("listing files failed: {e}")))?
    }

    async fn run(
        &self,
        spec: &CommandSpec,
        sink: LineSink,
        cancel: CancellationToken,
    ) -> Result<CommandOutput> {
        self.check_alive()?;
        if cancel.is_cancelled() {
            return Err(SandboxError::Cancelled);
        }
        let mut cmd = self.command(&spec.program, &spec.args, &spec.env);
        let (mut child, guard) = self.spawn(&mut cmd, &spec.program)?;
        let pgid = guard.pgid;
        // A kill() between the first check and the registration must not miss this group.
        if self.check_alive().is_err() {
            drop(guard);
            let _ = child.wait().await;
            return Err(self.check_alive().err().unwrap_or(SandboxError::Cancelled));
        }
        let captured = Captured::default();
        let (out, err) = (child.stdout.take(), child.stderr.take());
        let pumps = captured.pump(out, err, &sink, false);
        tokio::pin!(pumps);
        let mut status: Option<ExitStatus> = None;
        // After the leader exits, the pipes get this long to drain (a process that left the
        // group could hold them open forever).
        let drain = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(drain);
        loop {
            tokio::select! {
                biased;
                _ = cancel.cancelled() => {
                    signal_group(pgid, libc::SIGTERM);
                    if status.is_none()
                        && tokio::time::timeout(CANCEL_GRACE, child.wait()).await.is_err()
                    {
                        signal_group(pgid, libc::SIGKILL);
                        let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                    }
                    // The leader may go at SIGTERM while others of the group ignore it.
                    signal_group(pgid, libc::SIGKILL);
                    drop(guard);
                    return Err(SandboxError::Cancelled);
                }
                s = child.wait(), if status.is_none() => {
                    status = Some(s?);
                    // What is left of the group only holds the pipes open.
                    signal_group(pgid, libc::SIGKILL);
                    drain.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(2));
                }
                _ = &mut pumps => break,
                _ = &mut drain, if status.is_some() => break,
            }
        }
        let status = match status {
            Some(s) => s,
            None => child.wait().await?,
        };
        drop(guard);
        self.check_alive()?;
        Ok(captured.output(status))
    }

    async fn start_dev_server(&self, sink: LineSink) -> Result<()> {
        self.start_vite(sink).await
    }

    async fn healthy(&self) -> bool {
        if self.gone.load(Ordering::SeqCst) {
            return false;
        }
        let port = self.port();
        tokio::task::spawn_blocking(move || http_answers(port, Duration::from_secs(1)))
            .await
            .unwrap_or(false)
    }

    async fn keep_alive(&self) -> Result<()> {
        self.check_alive()
    }

    async fn kill(&self) -> Result<()> {
        self.gone.store(true, Ordering::SeqCst);
        if let Some(dev) = self.dev.lock().await.take() {
            stop_dev(dev, KILL_GRACE).await;
        }
        // Running commands: their `run` reaps them and unregisters.
        if !self.groups.is_empty() {
            self.groups.signal_all(libc::SIGTERM);
            if !self.groups.wait_empty(KILL_GRACE).await {
                self.groups.signal_all(libc::SIGKILL);
                self.groups.wait_empty(KILL_GRACE).await;
            }
        }
        release_port(self.port());
        match tokio::fs::remove_dir_all(&self.dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        if let Some(owner) = lock(&self.owner).take() {
            owner.release();
        }
        Ok(())
    }
}

impl Drop for LocalSandbox {
    /// Synchronous and runtime-free: SIGKILL every group (no process may outlive the sandbox),
    /// then remove the dir on a detached thread (deleting node_modules takes a while).
    fn drop(&mut self) {
        self.groups.signal_all(libc::SIGKILL);
        if let Some(dev) = self.dev.get_mut().as_ref() {
            signal_group(dev.guard.pgid, libc::SIGKILL);
        }
        if !self.gone.swap(true, Ordering::SeqCst) {
            release_port(self.port());
            let dir = self.dir.clone();
            let owner = lock(&self.owner).take();
            let _ = std::thread::Builder::new()
                .name("sandbox-cleanup".into())
                .spawn(move || {
                    // A killed process may still be closing files: one retry.
                    if std::fs::remove_dir_all(&dir).is_err() {
                        std::thread::sleep(Duration::from_millis(200));
                        let _ = std::fs::remove_dir_all(&dir);
                    }
                    // Gone or not, the lock ends with this thread; a later sweep finishes.
                    if !dir.exists() {
                        if let Some(o) = owner {
                            o.release();
                        }
                    }
                });
        }
    }
}

/// Polls `healthy()` every 25 ms until the dev server answers (no fixed sleep); the time it
/// took, `Timeout` after `timeout`, `Cancelled` when `cancel` fires.
pub async fn wait_ready(
    sb: &dyn super::Sandbox,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Duration> {
    let start = Instant::now();
    loop {
        if cancel.is_cancelled() {
            return Err(SandboxError::Cancelled);
        }
        if sb.healthy().await {
            return Ok(start.elapsed());
        }
        if start.elapsed() >= timeout {
            return Err(SandboxError::Timeout(format!(
                "the dev server did not answer within {} s",
                timeout.as_secs_f32()
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(25)) => {}
            _ = cancel.cancelled() => return Err(SandboxError::Cancelled),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::process::{pump, Tail};

    #[test]
    fn isolation_parses_the_setting() {
        assert_eq!(Isolation::parse("auto"), Some(Isolation::Auto));
        assert_eq!(Isolation::parse(" BWRAP "), Some(Isolation::Bwrap));
        assert_eq!(Isolation::parse("none"), Some(Isolation::None));
        assert_eq!(Isolation::parse("docker"), None);
        for i in [Isolation::Auto, Isolation::Bwrap, Isolation::None] {
            assert_eq!(Isolation::parse(i.as_str()), Some(i));
        }
    }

    #[test]
    fn paths_that_leave_the_dir_are_refused() {
        for bad in ["../x", "a/../../x", "/etc/passwd", "", ".", "a/\0b"] {
            assert!(safe_rel(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            safe_rel("./src/App.jsx").ok(),
            Some(PathBuf::from("src/App.jsx"))
        );
        assert_eq!(safe_rel("src//a.js").ok(), Some(PathBuf::from("src/a.js")));
    }

    #[tokio::test]
    async fn bwrap_setting_without_bwrap_is_a_config_error_and_auto_falls_back() {
        let base = tempfile::tempdir().unwrap();
        let missing = || Err("`bwrap` is not on PATH".to_string());
        match resolve_jail(Isolation::Bwrap, missing(), base.path()).await {
            Err(SandboxError::Config(m)) => {
                assert!(
                    m.contains("not on PATH") && m.contains("apt-get install bubblewrap"),
                    "{m}"
                )
            }
            other => panic!("{other:?}"),
        }
        let (jail, note) = resolve_jail(Isolation::Auto, missing(), base.path())
            .await
            .unwrap();
        assert!(matches!(jail, Jail::None));
        assert!(note.unwrap().contains("not on PATH"));
        let (jail, note) = resolve_jail(Isolation::None, Ok("/x/bwrap".into()), base.path())
            .await
            .unwrap();
        assert!(matches!(jail, Jail::None) && note.is_none());
        let (jail, note) = resolve_jail(Isolation::Auto, Ok("/x/bwrap".into()), base.path())
            .await
            .unwrap();
        assert!(matches!(jail, Jail::Bwrap { .. }) && note.is_none());
    }

    #[test]
    fn keys_are_sanitized() {
        assert_eq!(sanitize_key("My App (v2)"), "My-App--v2");
        assert_eq!(sanitize_key("../.."), "project");
        assert_eq!(sanitize_key(&"x".repeat(100)).len(), 40);
    }

    #[test]
    fn tail_keeps_the_last_bytes_in_whole_lines() {
        let mut t = Tail::new(20);
        for i in 0..10 {
            t.push(&format!("line {i}"));
        }
        assert!(t.buf.len() <= 20, "{:?}", t.buf);
        assert!(t.buf.ends_with("line 9\n"));
        assert!(t.buf.starts_with("line "));
    }

    #[tokio::test]
    async fn pump_splits_lines_and_cuts_huge_ones() {
        let data: &[u8] = b"a\r\nb\n\xffc\nlast";
        let mut got = Vec::new();
        pump(Some(data), |l| got.push(l.to_string())).await;
        assert_eq!(got, vec!["a", "b", "\u{fffd}c", "last"]);
        let big = vec![b'x'; crate::exec::process::MAX_LINE * 2 + 10];
        let mut n = Vec::new();
        pump(Some(&big[..]), |l| n.push(l.len())).await;
        assert_eq!(n.iter().sum::<usize>(), big.len());
        assert!(n.iter().all(|l| *l <= crate::exec::process::MAX_LINE * 2));
    }

    #[test]
    fn reserved_ports_are_distinct() {
        let a = reserve_port().unwrap();
        let b = reserve_port().unwrap();
        assert_ne!(a, b);
        release_port(a);
        release_port(b);
    }
}
