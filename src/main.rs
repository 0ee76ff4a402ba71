//! The `builder-lsp` binary: a language server on stdio by default, or a headless command.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

mod cli;

use builder_lsp::apply::{apply_to_dir, ApplyOptions};
use builder_lsp::archive::{create_zip, ZipOptions};
use builder_lsp::config::{self, DEFAULT_MAX_RESPONSE_BYTES};
use builder_lsp::conversation::ConversationStore;
use builder_lsp::events::{Event, Reporter};

#[derive(Parser)]
#[command(
    name = "builder-lsp",
    version,
    about = "An AI app builder as a language server (stdio), with a headless CLI on the same engine."
)]
struct Cli {
    /// Serve LSP on stdin/stdout (the default when no command is given).
    #[arg(long)]
    stdio: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Apply a model answer (`<file path="…">` blocks) to a folder and print the result as JSON.
    Apply {
        /// The answer file, or `-` for stdin.
        file: String,
        /// The project folder to write into.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Also overwrite protected files (package.json, build configs, .env).
        #[arg(long)]
        allow_protected: bool,
        /// Then run the folder in a fresh sandbox and keep its preview up until Ctrl-C.
        #[arg(long)]
        serve: bool,
        /// Sandbox provider for --serve: local (default), e2b, vercel.
        #[arg(long)]
        provider: Option<String>,
    },
    /// Print the command reference (every command's argument and result schema).
    Commands {
        /// JSON Schemas (the default).
        #[arg(long)]
        json: bool,
        /// The Markdown of docs/commands.md.
        #[arg(long, conflicts_with = "json")]
        markdown: bool,
    },
    /// Run a project in a sandbox with a live preview (create serves until Ctrl-C).
    Sandbox {
        #[command(subcommand)]
        action: SandboxCmd,
    },
    /// List the npm packages the code imports but package.json lacks (JSON).
    Detect {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Install npm packages (package manager chosen by lockfile); a failure changes nothing.
    Install {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// As devDependencies.
        #[arg(long)]
        dev: bool,
        /// Names, optionally `name@version`.
        #[arg(required = true)]
        packages: Vec<String>,
    },
    /// Generate code for a prompt with a model and apply it to a folder; prints the result as
    /// JSON. With --serve, then serve it in a sandbox; with --fix, fix what the browser shows.
    Generate {
        /// What to build or change.
        #[arg(long)]
        prompt: String,
        /// The project folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// `provider/model` (default: DEFAULT_AI_MODEL, else a model of the first provider with a key).
        #[arg(long)]
        model: Option<String>,
        /// Print the answer's files without writing them.
        #[arg(long)]
        no_apply: bool,
        /// Treat the folder as an existing app to edit (default: when it has source files).
        #[arg(long)]
        edit: Option<bool>,
        /// Then run the folder in a fresh sandbox, print the result with `sandbox: {sandboxId,
        /// url}` and serve the preview until Ctrl-C/SIGTERM (like `sandbox create`).
        #[arg(long, conflicts_with = "no_apply")]
        serve: bool,
        /// With --serve: load the preview in headless Chromium and let the model fix the errors
        /// it shows (the loop of `builder-lsp fix`); adds fixRounds, errorsLeft, fixStopped to
        /// the result, then keeps serving.
        #[arg(long, requires = "serve")]
        fix: bool,
        /// With --fix: fix rounds at most.
        #[arg(long, default_value_t = 2, requires = "fix")]
        rounds: u32,
        /// With --fix: stop after the fix loop instead of serving (exit 0 when clean, 1 when
        /// errors are left).
        #[arg(long, requires = "fix")]
        once: bool,
        /// Sandbox provider for --serve: local (default), e2b, vercel.
        #[arg(long, requires = "serve")]
        provider: Option<String>,
        /// Local sandbox isolation for --serve: auto, bwrap, none.
        #[arg(long, requires = "serve")]
        isolation: Option<String>,
    },
    /// Run the folder in a sandbox, load it in headless Chromium, and let the model fix the
    /// errors it shows (at most --rounds times); prints the rounds and errors left as JSON.
    Fix {
        /// The project folder.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// `provider/model` (default: DEFAULT_AI_MODEL, else a model of the first provider with a key).
        #[arg(long)]
        model: Option<String>,
        /// Fix rounds at most.
        #[arg(long, default_value_t = 2)]
        rounds: u32,
        /// Sandbox provider: local (default), e2b, vercel.
        #[arg(long)]
        provider: Option<String>,
        /// Local sandbox isolation: auto, bwrap, none.
        #[arg(long)]
        isolation: Option<String>,
    },
    /// List the project's checkpoints, newest first (every change set the server landed).
    History {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// At most this many.
        #[arg(long)]
        limit: Option<usize>,
        /// As JSON (the `builder.history` answer).
        #[arg(long)]
        json: bool,
    },
    /// Put the project back to how it was before checkpoint ID (and every later one); prints
    /// the result as JSON. Files changed since are conflicts, left alone unless --force (exit 1).
    Revert {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// A checkpoint id from `builder-lsp history`.
        id: String,
        /// Only these paths (relative to the project).
        #[arg(long, num_args = 1..)]
        files: Option<Vec<String>>,
        /// Also revert files changed since the checkpoint.
        #[arg(long)]
        force: bool,
    },
    /// Zip a project folder, leaving out node_modules, .git, secrets and build output.
    Zip {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Output file (default: <folder>.zip inside the folder).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SandboxCmd {
    /// Create a sandbox for the folder, print its URL, and serve until Ctrl-C.
    Create {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// local (default), e2b, vercel.
        #[arg(long)]
        provider: Option<String>,
        /// react-vite (default when the folder has no package.json).
        #[arg(long)]
        template: Option<String>,
        /// Local isolation: auto (default), bwrap, none.
        #[arg(long)]
        isolation: Option<String>,
    },
    /// Whether the folder's sandbox runs and answers (JSON).
    Status {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
    /// Stop the folder's sandbox.
    Kill {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BUILDER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

pub(crate) fn print_json(v: &impl serde::Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer_pretty(&mut out, v);
    let _ = writeln!(out);
}

fn stderr_reporter() -> Reporter {
    if std::io::stderr().is_terminal() {
        Arc::new(|ev: Event| eprintln!("{}", ev.message()))
    } else {
        builder_lsp::events::silent()
    }
}

/// Phases on stderr whether or not it is a terminal (sandbox creation takes a while and
/// scripts log it).
fn always_reporter() -> Reporter {
    Arc::new(|ev: Event| {
        if !matches!(ev, Event::Output(_)) {
            eprintln!("{}", ev.message());
        }
    })
}

fn cmd_apply(file: &str, dir: PathBuf, allow_protected: bool) -> Result<ExitCode, String> {
    if !dir.is_dir() {
        return Err(format!("--dir {}: not a folder", dir.display()));
    }
    let env = config::environment(Some(&dir));
    let (settings, warnings) = config::resolve(&env, None, None);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let cap = settings.max_response_bytes.max(1);
    let mut text = String::new();
    let read = if file == "-" {
        std::io::stdin()
            .lock()
            .take(cap + 1)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(file).and_then(|f| f.take(cap + 1).read_to_string(&mut text))
    };
    read.map_err(|e| format!("cannot read {file}: {e}"))?;
    if text.len() as u64 > cap {
        return Err(format!(
            "{file} is larger than the {:.1} MB limit (BUILDER_MAX_RESPONSE_BYTES, default {} bytes)",
            cap as f64 / 1e6,
            DEFAULT_MAX_RESPONSE_BYTES
        ));
    }
    let parsed = builder_lsp::response::parse(&text);
    let opts = ApplyOptions {
        allow_protected: allow_protected || settings.allow_protected,
    };
    let result = apply_to_dir(&dir, &parsed, &opts, &stderr_reporter());
    // Same record as the server keeps, so a later editor session sees this edit.
    let store = ConversationStore::new(ConversationStore::default_dir());
    let root = std::fs::canonicalize(&dir).unwrap_or(dir);
    let mut conv = store.load(&root).ok().flatten().unwrap_or_default();
    builder_lsp::apply::record(&mut conv, "apply (headless)", &result);
    if let Err(e) = store.save(&root, &conv) {
        eprintln!("warning: conversation not saved: {e}");
    }
    print_json(&result);
    Ok(if result.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn cmd_zip(dir: PathBuf, output: Option<PathBuf>) -> Result<ExitCode, String> {
    let root = std::fs::canonicalize(&dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "project".into());
    let output = output.unwrap_or_else(|| root.join(format!("{name}.zip")));
    let env = config::environment(Some(&root));
    let (settings, _) = config::resolve(&env, None, None);
    let opts = ZipOptions {
        max_files: settings.zip.max_files,
        max_file_bytes: settings.zip.max_file_bytes,
        max_total_bytes: settings.zip.max_total_bytes,
    };
    let result = create_zip(&root, &output, &opts).map_err(|e| e.to_string())?;
    print_json(&result);
    Ok(ExitCode::SUCCESS)
}

/// Serves LSP on stdin/stdout.
fn serve() -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("builder-lsp: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (input, output, written) = match builder_lsp::server::transport::stdio() {
        Ok(io) => io,
        Err(e) => {
            eprintln!("builder-lsp: cannot start the stdio threads: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(builder_lsp::run(input, output));
    // The stdin thread sits in a blocking read that only the client can end; after
    // `exit` nothing more is read, so do not wait for it. Dropping the tasks drops the
    // writer; then let the stdout thread finish what is queued, briefly.
    rt.shutdown_background();
    written.wait(std::time::Duration::from_millis(500));
    ExitCode::SUCCESS
}

/// Whether the arguments ask for the server and nothing else (no arguments, or `--stdio`, as
/// editors start it): then clap is not run at all, whose parser is ~0.3 MB of code the idle
/// server would otherwise keep resident.
fn serve_only(args: &[std::ffi::OsString]) -> bool {
    match args {
        [_] => true,
        [_, a] => a == "--stdio",
        _ => false,
    }
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if serve_only(&args) {
        init_logging();
        return serve();
    }
    let cli = Cli::parse_from(args);
    init_logging();
    let outcome = match cli.command {
        None => return serve(),
        Some(Cmd::Apply {
            file,
            dir,
            allow_protected,
            serve,
            provider,
        }) => match cmd_apply(&file, dir.clone(), allow_protected) {
            Ok(code) if serve => {
                if code != ExitCode::SUCCESS {
                    eprintln!("builder-lsp: the answer was applied with errors; serving anyway");
                }
                cli::sandbox::create_and_serve(
                    &dir,
                    cli::sandbox::CreateFlags {
                        provider,
                        template: None,
                        isolation: None,
                    },
                    always_reporter(),
                )
            }
            other => other,
        },
        Some(Cmd::Sandbox { action }) => match action {
            SandboxCmd::Create {
                dir,
                provider,
                template,
                isolation,
            } => cli::sandbox::create_and_serve(
                &dir,
                cli::sandbox::CreateFlags {
                    provider,
                    template,
                    isolation,
                },
                always_reporter(),
            ),
            SandboxCmd::Status { dir } => cli::sandbox::status(&dir),
            SandboxCmd::Kill { dir } => cli::sandbox::kill(&dir),
        },
        Some(Cmd::Commands { markdown, .. }) => {
            if markdown {
                print!("{}", builder_lsp::server::commands::schema::to_markdown());
            } else {
                print_json(&builder_lsp::server::commands::schema::to_json());
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Cmd::Detect { dir }) => cli::packages::detect(&dir),
        Some(Cmd::Install { dir, dev, packages }) => {
            cli::packages::install(&dir, packages, dev, stderr_reporter())
        }
        Some(Cmd::Zip { dir, output }) => cmd_zip(dir, output),
        Some(Cmd::History { dir, limit, json }) => cli::history::list(&dir, limit, json),
        Some(Cmd::Revert {
            dir,
            id,
            files,
            force,
        }) => cli::history::revert(&dir, &id, files, force),
        Some(Cmd::Generate {
            prompt,
            dir,
            model,
            no_apply,
            edit,
            serve,
            fix,
            rounds,
            once,
            provider,
            isolation,
        }) => cli::generate::run(cli::generate::Args {
            prompt,
            dir,
            model,
            no_apply,
            edit,
            serve: serve.then(|| cli::generate::Serve {
                create: cli::sandbox::CreateFlags {
                    provider,
                    template: None,
                    isolation,
                },
                fix: fix.then(|| cli::generate::FixFlags {
                    rounds: rounds.min(10),
                    once,
                }),
            }),
        }),
        Some(Cmd::Fix {
            dir,
            model,
            rounds,
            provider,
            isolation,
        }) => cli::fix::run(
            dir,
            model,
            rounds.min(10),
            cli::sandbox::CreateFlags {
                provider,
                template: None,
                isolation,
            },
            stderr_reporter(),
        ),
    };
    match outcome {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("builder-lsp: {msg}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::serve_only;
    use std::ffi::OsString;

    #[test]
    fn only_no_arguments_or_stdio_skip_the_cli_parser() {
        let args = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(serve_only(&args(&["builder-lsp"])));
        assert!(serve_only(&args(&["builder-lsp", "--stdio"])));
        assert!(!serve_only(&args(&["builder-lsp", "--help"])));
        assert!(!serve_only(&args(&[
            "builder-lsp",
            "history",
            "--dir",
            "."
        ])));
        assert!(!serve_only(&args(&["builder-lsp", "--stdio", "--help"])));
    }
}
