//! Running commands with their output streamed line by line, wherever they run: the command
//! spec, its output, the line sink, and (`process.rs`) local child processes in their own
//! process group. The lowest layer: sandboxes and package installs both build on it, and it
//! imports neither.

pub mod process;

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;

/// Which pipe a line of command output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Receives command output line by line (without the line break) as it arrives.
pub type LineSink = Arc<dyn Fn(OutputStream, &str) + Send + Sync>;

/// A sink that drops every line.
pub fn no_lines() -> LineSink {
    Arc::new(|_, _| {})
}

/// The outcome of a command that ran to its end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandOutput {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A command to run in the sandbox's project dir, without a shell: `program` and its `args`
/// are passed as they are (providers that only offer a shell quote them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    pub program: String,
    pub args: Vec<String>,
    pub env: HashMap<String, String>,
}

impl CommandSpec {
    pub fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        CommandSpec {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: HashMap::new(),
        }
    }
}
