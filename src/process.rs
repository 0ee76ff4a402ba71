//! Child processes on the host (npm, vite, user commands): no shell, their own process group,
//! output streamed line by line, and a kill that takes the whole tree with it.
//!
//! Why a process group: npm and Vite spawn children (esbuild, node-gyp, postinstall scripts);
//! killing only the direct child leaves them running and holding ports. Why `PR_SET_PDEATHSIG`:
//! if the server itself is killed (SIGKILL, editor crash), the kernel still stops the child.

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

use crate::sandbox::{CommandOutput, CommandSpec, LineSink, OutputStream};

/// Output kept per stream in a [`CommandOutput`]; the rest went to the sink already.
const KEEP_BYTES: usize = 1 << 20;

/// How long a process group gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_millis(800);

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// A `Command` for `spec` in `cwd`, in a new process group that dies with this process.
pub fn command(spec: &CommandSpec, cwd: &Path) -> Command {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(cwd)
        .envs(&spec.env)
        .env("NO_COLOR", "1")
        .env("FORCE_COLOR", "0")
        .env("BROWSER", "none")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            Ok(())
        });
    }
    cmd
}

/// Sends `sig` to the process group led by `pid` (our children lead their own groups).
pub fn signal_group(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        if pid > 0 {
            // SAFETY: plain syscall; a stale group id only yields ESRCH.
            unsafe {
                libc::killpg(pid, sig);
            }
        }
    }
}

/// SIGTERM the child's group, SIGKILL it after a grace period, and reap the child.
pub async fn kill_tree(child: &mut Child) {
    let Some(pid) = child.id() else {
        return;
    };
    signal_group(pid, libc::SIGTERM);
    if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
        signal_group(pid, libc::SIGKILL);
        let _ = child.wait().await;
    }
    // Children that ignored SIGTERM but whose leader exited still share the group.
    signal_group(pid, libc::SIGKILL);
}

/// Forwards a pipe to `sink` line by line (lossy UTF-8, `\r` progress redraws split too),
/// keeping the last `KEEP_BYTES` of it.
pub async fn pump<R: AsyncRead + Unpin>(
    reader: R,
    stream: OutputStream,
    sink: LineSink,
    keep: Arc<Mutex<String>>,
) {
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                for line in text.trim_end_matches(['\n', '\r']).split('\r') {
                    let line = strip_ansi(line);
                    if line.trim().is_empty() {
                        continue;
                    }
                    sink(stream, &line);
                    let mut k = keep.lock().unwrap_or_else(|e| e.into_inner());
                    k.push_str(&line);
                    k.push('\n');
                    if k.len() > KEEP_BYTES * 2 {
                        let cut = k.len() - KEEP_BYTES;
                        let cut = (cut..k.len()).find(|&i| k.is_char_boundary(i)).unwrap_or(0);
                        k.drain(..cut);
                    }
                }
            }
        }
    }
}

/// Runs a command to its end; cancellation kills its whole tree and answers `Cancelled`.
pub async fn run(
    spec: &CommandSpec,
    cwd: &Path,
    sink: LineSink,
    cancel: &CancellationToken,
) -> Result<CommandOutput, ProcessError> {
    let mut child = command(spec, cwd)
        .spawn()
        .map_err(|source| ProcessError::Spawn {
            program: spec.program.clone(),
            source,
        })?;
    let out = Arc::new(Mutex::new(String::new()));
    let err = Arc::new(Mutex::new(String::new()));
    let mut pumps = Vec::new();
    if let Some(o) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(
            o,
            OutputStream::Stdout,
            sink.clone(),
            out.clone(),
        )));
    }
    if let Some(e) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(
            e,
            OutputStream::Stderr,
            sink.clone(),
            err.clone(),
        )));
    }
    let status = tokio::select! {
        s = child.wait() => s?,
        _ = cancel.cancelled() => {
            kill_tree(&mut child).await;
            for p in pumps { p.abort(); }
            return Err(ProcessError::Cancelled);
        }
    };
    for p in pumps {
        let _ = p.await;
    }
    let take =
        |m: &Arc<Mutex<String>>| std::mem::take(&mut *m.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(CommandOutput {
        exit_code: exit_code(status),
        stdout: take(&out),
        stderr: take(&err),
    })
}

/// The exit code, or 128 + signal for a killed process (as shells report it).
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Removes ANSI escape sequences (colours, cursor moves) from tool output.
pub fn strip_ansi(s: &str) -> String {
    if !s.contains('\u{1b}') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                // CSI: parameters until a final byte in @..~
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: until BEL or ST
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_colours_and_links() {
        assert_eq!(
            strip_ansi("\u{1b}[32m  VITE v8\u{1b}[39m ready"),
            "  VITE v8 ready"
        );
        assert_eq!(strip_ansi("a\u{1b}]8;;http://x\u{7}b"), "ab");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    #[tokio::test]
    async fn streams_lines_and_exit_code() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        let sink: LineSink =
            Arc::new(move |s, line| l2.lock().unwrap().push((s, line.to_string())));
        let spec = CommandSpec::new("sh", ["-c", "echo one; echo two >&2; exit 3"]);
        let out = run(&spec, Path::new("/"), sink, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(out.exit_code, 3);
        assert_eq!(out.stdout, "one\n");
        assert_eq!(out.stderr, "two\n");
        let got = lines.lock().unwrap().clone();
        assert!(got.contains(&(OutputStream::Stdout, "one".into())));
        assert!(got.contains(&(OutputStream::Stderr, "two".into())));
    }

    #[tokio::test]
    async fn cancel_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        // The shell starts a grandchild that would outlive a plain kill of the shell.
        let script = format!("sleep 60 & echo $! > {}; wait", pidfile.display());
        let spec = CommandSpec::new("sh", ["-c", script.as_str()]);
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c2.cancel();
        });
        let started = std::time::Instant::now();
        let r = run(&spec, dir.path(), crate::sandbox::no_lines(), &cancel).await;
        assert!(matches!(r, Err(ProcessError::Cancelled)));
        assert!(started.elapsed() < Duration::from_secs(5));
        let pid: i32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Reaped or gone: /proc/PID either vanished or is a zombie of init.
        let mut alive = true;
        for _ in 0..50 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat.is_empty() || stat.contains(") Z ") {
                alive = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive, "grandchild {pid} survived the cancel");
    }
}
