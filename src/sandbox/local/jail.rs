//! How the local sandbox's processes are started: directly, or inside bubblewrap (probed
//! once per process), with the npm cache and `.npmrc` it needs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::OnceCell;

use super::*;

/// How the sandbox's processes are isolated from the host (`sandbox.isolation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// bubblewrap when it is installed and works here, else none (with a note saying why).
    #[default]
    Auto,
    /// bubblewrap or an error.
    Bwrap,
    None,
}

impl Isolation {
    pub fn parse(s: &str) -> Option<Isolation> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Isolation::Auto),
            "bwrap" | "bubblewrap" => Some(Isolation::Bwrap),
            "none" => Some(Isolation::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Auto => "auto",
            Isolation::Bwrap => "bwrap",
            Isolation::None => "none",
        }
    }
}

/// How processes are started: directly, or inside bubblewrap.
#[derive(Debug, Clone)]
pub(super) enum Jail {
    None,
    Bwrap {
        program: PathBuf,
        npm_cache: PathBuf,
        npmrc: Option<PathBuf>,
    },
}

/// Whether bwrap works here: found on PATH and a trial run succeeds (cached per process; the
/// answer does not change while the server runs).
pub(super) static BWRAP: OnceCell<std::result::Result<PathBuf, String>> = OnceCell::const_new();

/// The flags every jailed process gets besides its binds; the trial run uses them too, so a
/// container that forbids, say, PID namespaces is detected before a sandbox depends on it.
///
/// Not `--new-session`: it would move the command out of bwrap's process group, so cancel and
/// kill could reach it only through `--die-with-parent`, which bwrap sets up a moment after
/// starting (a cancel in that moment left the command running). [`own_session`] gives what
/// `--new-session` is for (no controlling terminal, so no TIOCSTI input injection) while
/// keeping every process of the command in one group.
pub(super) const BWRAP_FLAGS: &[&str] = &["--unshare-pid", "--die-with-parent"];

/// Starts the child as the leader of a new session and process group (`setsid`): the group is
/// what cancel and kill signal, and a session without a controlling terminal cannot push input
/// into the user's terminal.
pub(super) fn own_session(cmd: &mut Command) {
    // SAFETY: setsid is async-signal-safe and affects only the child.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

pub(super) async fn bwrap_status() -> std::result::Result<PathBuf, String> {
    BWRAP.get_or_init(probe_bwrap).await.clone()
}

pub(super) async fn probe_bwrap() -> std::result::Result<PathBuf, String> {
    let program = find_on_path("bwrap").ok_or("`bwrap` is not on PATH")?;
    let mut cmd = Command::new(&program);
    cmd.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"])
        .args(BWRAP_FLAGS)
        .arg("true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(5), cmd.output()).await {
        Err(_) => Err("a trial run of bwrap did not finish within 5 s".into()),
        Ok(Err(e)) => Err(format!("cannot run {}: {e}", program.display())),
        Ok(Ok(out)) if out.status.success() => Ok(program),
        Ok(Ok(out)) => {
            let why = String::from_utf8_lossy(&out.stderr);
            let why = why
                .lines()
                .next()
                .unwrap_or("no message")
                .trim()
                .to_string();
            Err(format!(
                "a trial run of bwrap failed ({}): {why}",
                out.status
            ))
        }
    }
}

pub(super) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            p.metadata()
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// The npm cache the jailed npm writes to: the host's (a warm cache makes installs fast), or
/// one beside the sandboxes when that cannot be created.
pub(super) async fn npm_cache_dir(base: &Path) -> Result<PathBuf> {
    let env = ["npm_config_cache", "NPM_CONFIG_CACHE"]
        .iter()
        .filter_map(std::env::var_os)
        .find(|v| !v.is_empty())
        .map(PathBuf::from);
    let host = env.or_else(|| dirs::home_dir().map(|h| h.join(".npm")));
    if let Some(dir) = host {
        if tokio::fs::create_dir_all(&dir).await.is_ok() {
            return Ok(tokio::fs::canonicalize(&dir).await?);
        }
    }
    let dir = base.join("npm-cache");
    tokio::fs::create_dir_all(&dir).await?;
    Ok(tokio::fs::canonicalize(&dir).await?)
}

/// The user's `~/.npmrc` (registry and auth settings), which npm would no longer find once
/// HOME points into the jail.
pub(super) fn host_npmrc() -> Option<PathBuf> {
    let p = dirs::home_dir()?.join(".npmrc");
    p.is_file().then_some(p)
}

/// The jail for `isolation` given whether bwrap works (`bwrap`), and for `Auto` without it
/// the reason.
pub(super) async fn resolve_jail(
    isolation: Isolation,
    bwrap: std::result::Result<PathBuf, String>,
    base: &Path,
) -> Result<(Jail, Option<String>)> {
    if isolation == Isolation::None {
        return Ok((Jail::None, None));
    }
    match bwrap {
        Ok(program) => {
            let npm_cache = npm_cache_dir(base).await?;
            Ok((
                Jail::Bwrap {
                    program,
                    npm_cache,
                    npmrc: host_npmrc(),
                },
                None,
            ))
        }
        Err(why) if isolation == Isolation::Bwrap => Err(SandboxError::Config(format!(
            "sandbox.isolation is `bwrap`, but bubblewrap cannot be used here: {why}. Install \
             it (e.g. `apt-get install bubblewrap`) or set sandbox.isolation to `auto` or `none`"
        ))),
        Err(why) => {
            let note = format!("no isolation: bubblewrap cannot be used here ({why})");
            tracing::warn!("{note}");
            Ok((Jail::None, Some(note)))
        }
    }
}
