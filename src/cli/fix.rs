//! `builder-lsp fix --dir DIR`: the fix loop without an editor. Runs the folder in a sandbox,
//! loads the preview in a headless Chromium, and while the app shows errors (Vite's compile
//! errors, the browser's runtime errors) asks the model to fix them and writes the fix to the
//! folder, at most `--rounds` times; prints the rounds and the errors left as JSON.
//!
//! The loop itself (`Fixer`, `Watch`, `fix_loop`) is shared with `generate --serve --fix`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use builder_lsp::ai::model_id::ModelId;
use builder_lsp::ai::AiClient;
use builder_lsp::config;
use builder_lsp::events::Reporter;
use builder_lsp::generate::context::ContextFile;
pub use builder_lsp::generate::fix::rounds::Outcome;
use builder_lsp::generate::fix::rounds::{self, Attempt, FixHost};
use builder_lsp::generate::fix::{self, FixRound, Problem};
use builder_lsp::generate::{self, GenerateInput, Hooks};
use builder_lsp::sandbox::preview::{self, Event, PreviewErrors};
use builder_lsp::sandbox::session::{self, Session};
use builder_lsp::sandbox::{browser, SandboxFile};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::sandbox::{cancel_on_signal, create_options, runtime, CreateFlags};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FixResult {
    rounds: Vec<FixRound>,
    errors_left: Vec<String>,
    /// `clean`, `repeated`, `maxRounds`, `cancelled`, `failed`.
    stopped: &'static str,
}

/// What the dev server's output said: runtime errors, and the check that settled last.
#[derive(Default)]
struct Seen {
    errors: PreviewErrors,
    settled: Vec<String>,
}

/// Loads the preview once and returns the errors then known.
async fn check(s: &Session, root: &Path, seen: &Arc<Mutex<Seen>>) -> Result<Vec<Problem>, String> {
    let id = format!("{:016x}", fastrand::u64(..));
    let url = preview::check_url(&s.sandbox.info().url, &id);
    browser::load(&url, None, browser::LOAD_LIMIT)
        .await
        .map_err(|e| e.to_string())?;
    for _ in 0..60 {
        if lock(seen).settled.contains(&id) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let mut out: Vec<Problem> = s
        .compile_errors(root)
        .into_iter()
        .map(|e| Problem {
            path: Some(e.file),
            line: Some(e.line),
            column: Some(e.column),
            message: e.message,
            source: Some("vite".into()),
            stack: None,
        })
        .collect();
    out.extend(lock(seen).errors.all().iter().map(|e| Problem {
        path: e.path.clone(),
        line: e.line,
        column: e.column,
        message: e.message.clone(),
        source: Some("builder (preview)".into()),
        stack: e.stack.clone(),
    }));
    Ok(fix::dedupe(out))
}

fn lock(m: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the fix loop needs besides the sandbox: the model, its client and the folder's
/// settings. Made before anything runs, so a missing browser or key is refused up front.
pub struct Fixer {
    root: PathBuf,
    client: AiClient,
    model: ModelId,
    settings: config::Settings,
    rounds: u32,
}

impl Fixer {
    /// `root` canonical; `model` as `--model` gave it; `rounds` at most.
    pub fn new(root: &Path, model: Option<&str>, rounds: u32) -> Result<Fixer, String> {
        browser::find().map_err(|e| e.to_string())?;
        let env = config::environment(Some(root));
        let (settings, _) = config::resolve(&env, None, None);
        let ai = generate::ai_config(&env, &settings);
        let model = generate::choose_model(&ai, model).map_err(|e| format!("--model: {e}"))?;
        Ok(Fixer {
            root: root.to_path_buf(),
            client: AiClient::new(ai),
            model,
            settings,
            rounds,
        })
    }
}

/// Collects what the dev server's output says for the fix loop; `hook` goes to
/// `session::create`.
#[derive(Clone, Default)]
pub struct Watch {
    seen: Arc<Mutex<Seen>>,
}

impl Watch {
    /// The line hook; `also` sees every line too (the CLI's `vite |` echo).
    pub fn hook(&self, also: Option<session::LineHook>) -> session::LineHook {
        let seen = self.seen.clone();
        Arc::new(move |l: &str| {
            match preview::parse_line(l) {
                Some(Event::Error(e)) if e.kind != "vite" => {
                    lock(&seen).errors.add(e);
                }
                Some(Event::Settled { check }) => lock(&seen).settled.push(check),
                _ => {}
            }
            if let Some(f) = &also {
                f(l);
            }
        })
    }
}

/// The CLI's side of the fix loop: checks load the preview in headless Chromium; a fix is
/// written to the folder and pushed to the sandbox.
struct CliFix<'a> {
    fixer: &'a Fixer,
    s: &'a Session,
    seen: &'a Arc<Mutex<Seen>>,
    reporter: &'a Reporter,
    cancel: &'a CancellationToken,
}

impl FixHost for CliFix<'_> {
    async fn check(&self) -> Result<Vec<Problem>, String> {
        check(self.s, &self.fixer.root, self.seen).await
    }

    async fn fix(&self, _round: u32, problems: &[Problem]) -> Attempt {
        let Fixer {
            root,
            client,
            model,
            settings,
            ..
        } = self.fixer;
        let read = |rel: &str| std::fs::read_to_string(root.join(rel)).ok();
        let requested: Vec<ContextFile> = fix::files_named(problems, &[])
            .into_iter()
            .filter_map(|p| {
                Some(ContextFile {
                    content: read(&p)?,
                    path: p,
                    reason: "named by an error".into(),
                })
            })
            .collect();
        let input = GenerateInput {
            prompt: fix::prompt(problems, &read),
            is_edit: true,
            apply: true,
            continue_truncated: settings.continue_truncated,
            allow_protected: settings.allow_protected,
            primary: None,
            requested,
            open_documents: Vec::new(),
            history: Vec::new(),
            recently_edited: Vec::new(),
            comment: None,
            context_tokens: settings.context_tokens,
            max_tokens: client.config().max_tokens,
            temperature: client.config().temperature,
            model: model.clone(),
        };
        let deliver = builder_lsp::apply::DiskDeliver {
            reporter: builder_lsp::events::silent(),
        };
        let hooks = Hooks {
            reporter: self.reporter.clone(),
            on_delta: None,
            deliver: &deliver,
        };
        let r = generate::run(client, root, input, hooks, self.cancel.clone()).await;
        let mut files = r.files_created.clone();
        files.extend(r.files_updated.iter().cloned());
        // The fix reaches the sandbox; errors of the changed files are stale.
        let pushed: Vec<SandboxFile> = files
            .iter()
            .filter_map(|p| {
                Some(SandboxFile {
                    bytes: std::fs::read(root.join(p)).ok()?,
                    path: p.clone(),
                })
            })
            .collect();
        if let Err(e) = self.s.sandbox.write_files(&pushed).await {
            eprintln!("warning: the fix did not reach the sandbox: {e}");
        }
        self.s.note_changed(&files);
        {
            let mut g = lock(self.seen);
            for f in &files {
                g.errors.forget_file(f);
            }
            g.errors.forget_unlocated();
        }
        // Let Vite see the new files before the next load.
        tokio::time::sleep(Duration::from_millis(300)).await;
        Attempt {
            ok: r.errors.is_empty() && (r.applied || files.is_empty()),
            files_changed: files,
            checkpoint: None,
            message: r.message,
        }
    }
}

/// The fix loop of `builder-lsp fix` and `generate --serve --fix` (the core's
/// `fix::rounds::run`) on the folder's sandbox. Leaves the sandbox running.
pub async fn fix_loop(
    fixer: &Fixer,
    s: &Session,
    watch: &Watch,
    reporter: &Reporter,
    cancel: &CancellationToken,
) -> Outcome {
    let host = CliFix {
        fixer,
        s,
        seen: &watch.seen,
        reporter,
        cancel,
    };
    rounds::run(&host, fixer.rounds, reporter, cancel).await
}

pub fn run(
    dir: PathBuf,
    model: Option<String>,
    rounds: u32,
    flags: CreateFlags,
    reporter: Reporter,
) -> Result<ExitCode, String> {
    let root = std::fs::canonicalize(&dir).map_err(|e| format!("--dir {}: {e}", dir.display()))?;
    let fixer = Fixer::new(&root, model.as_deref(), rounds)?;
    let opts = create_options(&root, flags)?;
    session::check_credentials(&opts).map_err(|e| e.to_string())?;
    let rt = runtime()?;
    rt.block_on(async move {
        // Ctrl-C or SIGTERM: stop the round and kill the sandbox, like `sandbox create`.
        let cancel = cancel_on_signal();
        let watch = Watch::default();
        let (s, _) = session::create(&root, &opts, &reporter, Some(watch.hook(None)), &cancel)
            .await
            .map_err(|e| e.to_string())?;
        let outcome = fix_loop(&fixer, &s, &watch, &reporter, &cancel).await;
        let _ = s.kill().await;
        if let Some(e) = outcome.error {
            return Err(e);
        }
        let clean = outcome.clean();
        crate::print_json(&FixResult {
            stopped: outcome.stop.as_str(),
            rounds: outcome.rounds,
            errors_left: outcome.errors_left,
        });
        Ok(if clean {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    })
}
