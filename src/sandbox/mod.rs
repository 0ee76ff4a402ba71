//! Sandboxes: a running mirror of the project with a dev server and a preview URL.
//!
//! One trait ([`Sandbox`]) over three providers: `local/` (default, a private copy under the
//! cache dir), `e2b.rs` and `vercel.rs` (cloud REST APIs). Providers implement only primitives
//! (write/read/list files, run a command with streamed output, start the dev server, health,
//! kill); the flow that is the same for all (template, seeding, install, readiness, pushing
//! edits) lives beside them, so a provider stays small and testable against its fake.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The port the template's Vite listens on inside cloud sandboxes (declared at create).
pub const DEV_PORT: u16 = 5173;

/// Which service runs the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Local,
    E2b,
    Vercel,
}

impl ProviderKind {
    pub fn parse(s: &str) -> Option<ProviderKind> {
        match s {
            "local" => Some(ProviderKind::Local),
            "e2b" => Some(ProviderKind::E2b),
            "vercel" => Some(ProviderKind::Vercel),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::E2b => "e2b",
            ProviderKind::Vercel => "vercel",
        }
    }
}

/// What `create` and `status` report about a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxInfo {
    pub sandbox_id: String,
    pub provider: ProviderKind,
    /// The preview URL of the dev server (`http://127.0.0.1:PORT`, `https://5173-ID.e2b.app`,
    /// the Vercel route URL).
    pub url: String,
    /// RFC 3339.
    pub created_at: String,
    /// How the sandbox is isolated from the host: `bwrap`, `none` (local), `vm` (cloud).
    pub isolation: String,
}

/// One file to put into the sandbox; `path` is relative to the sandbox's project dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxFile {
    pub path: String,
    pub bytes: Vec<u8>,
}

pub use crate::exec::{no_lines, CommandOutput, CommandSpec, LineSink, OutputStream};

/// `Ok` when a provider's own helper command (`find`, `rm`) exited 0; else a `Failed` that
/// says what it was doing, with the exit code and stderr.
pub(crate) fn exited_ok(out: &CommandOutput, doing: &str) -> Result<()> {
    if out.exit_code != 0 {
        return Err(SandboxError::Failed(format!(
            "{doing} failed (exit {}): {}",
            out.exit_code,
            out.stderr.trim()
        )));
    }
    Ok(())
}

/// Splits a command line into words the way a POSIX shell would for plain words and
/// quotes, without expanding anything (no variables, globs, pipes). `None` on an
/// unbalanced quote.
pub fn split_command_line(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        ch => cur.push(ch),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => cur.push(chars.next()?),
                        ch => cur.push(ch),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.push(chars.next()?);
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Some(words)
}

/// Errors of every provider. Messages say what to do; none contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Missing or invalid configuration; the message names the variable or setting.
    #[error("{0}")]
    Config(String),
    /// The service refused the credentials.
    #[error("{provider} rejected the credentials in {var} ({status})")]
    Auth {
        provider: &'static str,
        var: &'static str,
        status: u16,
    },
    /// The sandbox no longer exists (expired, killed, stopped).
    #[error("the {provider} sandbox {id} is gone (expired or stopped); create a new one")]
    Gone { provider: &'static str, id: String },
    #[error("{provider} is rate limiting requests{}", retry_after_secs.map(|s| format!("; retry after {s} s")).unwrap_or_default())]
    RateLimited {
        provider: &'static str,
        retry_after_secs: Option<u64>,
    },
    /// Any other error answer of a service API.
    #[error("{provider} API error {status}: {message}")]
    Api {
        provider: &'static str,
        status: u16,
        message: String,
    },
    #[error("cannot reach {provider}: {message}")]
    Network {
        provider: &'static str,
        message: String,
    },
    /// The service answered something that does not follow its protocol.
    #[error("unexpected answer from {provider}: {message}")]
    Protocol {
        provider: &'static str,
        message: String,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("file not found in the sandbox: {0}")]
    NotFound(String),
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("cancelled")]
    Cancelled,
    /// The dev server or a setup step failed; the message carries the last output lines.
    #[error("{0}")]
    Failed(String),
}

pub type Result<T, E = SandboxError> = std::result::Result<T, E>;

/// A running sandbox. Cheap to share (`Arc<dyn Sandbox>`); every method is safe to call
/// concurrently.
#[async_trait]
pub trait Sandbox: Send + Sync {
    fn info(&self) -> SandboxInfo;

    /// The project's directory inside the sandbox (absolute there), so paths in tool output
    /// (Vite errors) can be mapped back to workspace files.
    fn project_dir(&self) -> String {
        String::new()
    }

    /// Writes (creating parent dirs, overwriting) files under the project dir.
    async fn write_files(&self, files: &[SandboxFile]) -> Result<()>;

    /// Removes files (relative to the project dir); a path already gone is not an error.
    /// A revert deletes the files a generation created, and the preview must follow.
    async fn delete_files(&self, paths: &[String]) -> Result<()>;

    /// Reads one file; `Ok(None)` when it does not exist.
    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>>;

    /// Relative paths of the project's files, without `node_modules`, `.git` and build output.
    async fn list_files(&self) -> Result<Vec<String>>;

    /// Runs a command in the project dir to its end, streaming output lines to `sink`.
    /// Cancelling kills it (and its children) and answers `SandboxError::Cancelled`.
    async fn run(
        &self,
        cmd: &CommandSpec,
        sink: LineSink,
        cancel: CancellationToken,
    ) -> Result<CommandOutput>;

    /// Starts the dev server in the background (stopping a previous one first); its output
    /// goes to `sink` until it exits. Returns once it is started, not once it is ready.
    async fn start_dev_server(&self, sink: LineSink) -> Result<()>;

    /// Whether the dev server answers HTTP now.
    async fn healthy(&self) -> bool;

    /// Extends the sandbox's lifetime (cloud TTLs); a no-op locally.
    async fn keep_alive(&self) -> Result<()>;

    /// Stops everything and frees the sandbox; idempotent.
    async fn kill(&self) -> Result<()>;
}

#[cfg(test)]
mod tests {
    use super::split_command_line;

    #[test]
    fn command_lines_split_like_a_shell_without_expansion() {
        assert_eq!(
            split_command_line("npm run build").unwrap(),
            ["npm", "run", "build"]
        );
        assert_eq!(
            split_command_line(r#"echo "a b" 'c d' e\ f $HOME"#).unwrap(),
            ["echo", "a b", "c d", "e f", "$HOME"]
        );
        assert_eq!(split_command_line("  ").unwrap(), Vec::<String>::new());
        assert!(split_command_line("echo 'open").is_none());
    }
}

pub mod browser;
pub mod e2b;
pub mod install_host;
pub mod local;
pub mod manifest;
pub mod orphans;
pub mod preview;
pub mod record;
pub mod session;
pub mod template;
pub mod vercel;
pub mod vite_errors;
