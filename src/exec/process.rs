//! Child processes on the host (npm, Vite, commands in a local sandbox): no shell, their own
//! process group, output streamed line by line, and a kill that takes the whole tree with it.
//!
//! Why a process group: npm and Vite spawn children (esbuild, node-gyp, postinstall scripts);
//! killing only the direct child leaves them running and holding ports. Why `PR_SET_PDEATHSIG`:
//! if the server itself is killed (SIGKILL, editor crash), the kernel still stops the child.
//! Shared by the workspace installer ([`run`]) and the local sandbox (`sandbox/local/`).

use std::borrow::Cow;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{ChildStderr, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

use super::{CommandOutput, CommandSpec, LineSink, OutputStream};

/// Output kept per stream in a [`CommandOutput`]; every line went to the sink already.
pub const KEEP_BYTES: usize = 1 << 20;

/// A line longer than this is cut into pieces (a minified bundle printed to stdout must not
/// grow a buffer without bound).
pub const MAX_LINE: usize = 64 * 1024;

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

/// Makes `cmd` die with this process: `PR_SET_PDEATHSIG` = SIGKILL, and a refusal to start
/// when the parent already went away before prctl ran.
pub fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe and touch only the child.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the server exited"));
            }
            Ok(())
        });
    }
}

/// A `Command` for `spec` in `cwd`, in a new process group that dies with this process.
pub fn command(spec: &CommandSpec, cwd: &Path) -> Command {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(cwd)
        .envs(&spec.env)
        .env_remove("FORCE_COLOR")
        .env("NO_COLOR", "1")
        .env("BROWSER", "none")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    die_with_parent(&mut cmd);
    cmd
}

/// Sends `sig` to process group `pgid`; a group that is gone only yields ESRCH.
pub fn signal_group(pgid: i32, sig: i32) {
    if pgid > 0 {
        // SAFETY: plain syscall on a group id this sandbox created.
        unsafe {
            libc::killpg(pgid, sig);
        }
    }
}

/// The last `cap` bytes of a stream's lines.
pub struct Tail {
    pub buf: String,
    cap: usize,
}

impl Tail {
    pub fn new(cap: usize) -> Tail {
        Tail {
            buf: String::new(),
            cap,
        }
    }

    pub fn push(&mut self, line: &str) {
        self.buf.push_str(line);
        self.buf.push('\n');
        if self.buf.len() > self.cap {
            let mut cut = self.buf.len() - self.cap;
            while !self.buf.is_char_boundary(cut) {
                cut += 1;
            }
            // Keep whole lines when possible.
            if let Some(nl) = self.buf[cut..].find('\n') {
                if cut + nl + 1 < self.buf.len() {
                    cut += nl + 1;
                }
            }
            self.buf.drain(..cut);
        }
    }
}

/// Reads `r` line by line (without `\n`/`\r\n`, lossy UTF-8) and hands each line to `emit`
/// as it arrives; ends at EOF or a read error.
pub async fn pump<R: AsyncRead + Unpin>(r: Option<R>, mut emit: impl FnMut(&str)) {
    let Some(r) = r else {
        return;
    };
    let mut reader = BufReader::new(r);
    let mut line: Vec<u8> = Vec::new();
    let mut flush = |line: &mut Vec<u8>| {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        emit(&String::from_utf8_lossy(line));
        line.clear();
    };
    loop {
        let chunk = match reader.fill_buf().await {
            Ok([]) | Err(_) => break,
            Ok(c) => c,
        };
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                line.extend_from_slice(&chunk[..i]);
                reader.consume(i + 1);
                flush(&mut line);
            }
            None => {
                let n = chunk.len();
                line.extend_from_slice(chunk);
                reader.consume(n);
                if line.len() >= MAX_LINE {
                    flush(&mut line);
                }
            }
        }
    }
    if !line.is_empty() {
        flush(&mut line);
    }
}

/// The exit code, or 128 + signal for a killed process (as shells report it).
pub fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(-1)
}

/// Removes ANSI escape sequences (CSI like colours, OSC like hyperlinks, two-byte escapes).
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
        match chars.next() {
            // CSI: parameters and intermediates, then one final byte in @..~.
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // OSC: up to BEL or ESC \.
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' {
                        if chars.peek() == Some(&'\\') {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

fn lock(m: &Mutex<Tail>) -> MutexGuard<'_, Tail> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a run keeps of a child's output: the last [`KEEP_BYTES`] of stdout and of stderr
/// (the local sandbox runs commands the same way, in its own process group).
pub struct Captured {
    out: Mutex<Tail>,
    err: Mutex<Tail>,
}

impl Default for Captured {
    fn default() -> Self {
        Captured {
            out: Mutex::new(Tail::new(KEEP_BYTES)),
            err: Mutex::new(Tail::new(KEEP_BYTES)),
        }
    }
}

impl Captured {
    /// Reads the child's stdout and stderr to their ends: each line (without ANSI escapes
    /// when `strip`) goes to `sink` and into its tail.
    pub async fn pump(
        &self,
        out: Option<ChildStdout>,
        err: Option<ChildStderr>,
        sink: &LineSink,
        strip: bool,
    ) {
        let line = |stream: OutputStream, tail: &Mutex<Tail>, l: &str| {
            let l = if strip {
                Cow::Owned(strip_ansi(l))
            } else {
                Cow::Borrowed(l)
            };
            sink(stream, &l);
            lock(tail).push(&l);
        };
        tokio::join!(
            pump(out, |l| line(OutputStream::Stdout, &self.out, l)),
            pump(err, |l| line(OutputStream::Stderr, &self.err, l)),
        );
    }

    /// The run's output once the child ended with `status`.
    pub fn output(&self, status: ExitStatus) -> CommandOutput {
        CommandOutput {
            exit_code: exit_code(status),
            stdout: std::mem::take(&mut lock(&self.out).buf),
            stderr: std::mem::take(&mut lock(&self.err).buf),
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
    let pgid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    let captured = Captured::default();
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let pumps = captured.pump(out, err, &sink, true);
    let status = tokio::select! {
        (s, _) = async { tokio::join!(child.wait(), pumps) } => s?,
        _ = cancel.cancelled() => {
            signal_group(pgid, libc::SIGTERM);
            if tokio::time::timeout(GRACE, child.wait()).await.is_err() {
                signal_group(pgid, libc::SIGKILL);
                let _ = child.wait().await;
            }
            // Children that ignored SIGTERM but whose leader exited still share the group.
            signal_group(pgid, libc::SIGKILL);
            return Err(ProcessError::Cancelled);
        }
    };
    // Stragglers of the group would only hold resources now.
    signal_group(pgid, libc::SIGKILL);
    Ok(captured.output(status))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

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
        let r = run(&spec, dir.path(), crate::exec::no_lines(), &cancel).await;
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
