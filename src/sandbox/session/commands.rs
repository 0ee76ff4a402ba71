//! An answer's `<command>` lines run in the sandbox, split like a shell but never through one.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::events::{Event, Reporter};
use crate::sandbox::{CommandSpec, LineSink, Sandbox};

/// Runs an answer's `<command>` lines in the sandbox, one after another: split like a shell
/// but never through one (no expansion, pipes or globs; a model's command line is untrusted).
/// Returns the lines that exited 0 and an error per line that did not.
pub async fn run_commands(
    sb: &dyn Sandbox,
    commands: &[String],
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> (Vec<String>, Vec<String>) {
    let mut executed = Vec::new();
    let mut errors = Vec::new();
    for line in commands {
        let Some(words) = crate::sandbox::split_command_line(line) else {
            errors.push(format!("command `{line}`: unbalanced quotes; not run"));
            continue;
        };
        let Some((program, args)) = words.split_first() else {
            continue;
        };
        let spec = CommandSpec::new(program.clone(), args.to_vec());
        let rep = reporter.clone();
        let sink: LineSink = Arc::new(move |_, l: &str| rep(Event::Output(l.to_string())));
        reporter(Event::Status(format!("Running {line}")));
        match sb.run(&spec, sink, cancel.clone()).await {
            Ok(o) if o.exit_code == 0 => executed.push(line.clone()),
            Ok(o) => errors.push(format!(
                "command `{line}` exited with {}: {}",
                o.exit_code,
                o.stderr.lines().last().unwrap_or("")
            )),
            Err(e) => errors.push(format!("command `{line}`: {e}")),
        }
    }
    (executed, errors)
}
