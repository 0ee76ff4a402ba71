//! `builder-lsp generate`: one generation for a prompt, written to the folder and printed as
//! JSON. With `--serve` the folder then runs in a fresh sandbox (as `sandbox create` runs it)
//! until Ctrl-C/SIGTERM; with `--fix` the fix loop of `builder-lsp fix` (`cli/fix.rs`,
//! `fix_loop`) runs on that sandbox first, and `--once` exits after it instead of serving.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use builder_lsp::ai::AiClient;
use builder_lsp::config;
use builder_lsp::conversation::ConversationStore;
use builder_lsp::events::{Event, Reporter};
use builder_lsp::generate::run::GenerateResult;
use builder_lsp::generate::{self, GenerateInput, Hooks};
use builder_lsp::sandbox::session::{self, CreateOptions, CreateResult};
use serde_json::Value;

use super::fix::{fix_loop, Fixer, Outcome, Watch};
use super::sandbox::{self, CreateFlags};

pub struct Args {
    pub prompt: String,
    pub dir: PathBuf,
    pub model: Option<String>,
    pub no_apply: bool,
    pub edit: Option<bool>,
    /// `--serve` (with its sandbox flags), else `None`.
    pub serve: Option<Serve>,
}

pub struct Serve {
    pub create: CreateFlags,
    /// `--fix`, else `None`.
    pub fix: Option<FixFlags>,
}

pub struct FixFlags {
    /// `--rounds`: fix rounds at most.
    pub rounds: u32,
    /// `--once`: stop after the fix loop instead of serving.
    pub once: bool,
}

/// What serving needs, made before the model is asked: a folder that is already served, a
/// bad `--provider`, missing credentials or no Chromium cost no generation.
struct Prepared {
    opts: CreateOptions,
    fix: Option<(Fixer, bool)>,
}

pub fn run(a: Args) -> Result<ExitCode, String> {
    let t0 = Instant::now();
    if !a.dir.is_dir() {
        return Err(format!("--dir {}: not a folder", a.dir.display()));
    }
    let root =
        std::fs::canonicalize(&a.dir).map_err(|e| format!("--dir {}: {e}", a.dir.display()))?;
    let env = config::environment(Some(&root));
    let (settings, warnings) = config::resolve(&env, None, None);
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let ai = generate::ai_config(&env, &settings);
    let model =
        generate::choose_model(&ai, a.model.as_deref()).map_err(|e| format!("--model: {e}"))?;
    let prepared = match a.serve {
        Some(sv) => {
            sandbox::ensure_not_running(&root)?;
            let opts = sandbox::create_options(&root, sv.create)?;
            session::check_credentials(&opts).map_err(|e| e.to_string())?;
            let fix = match sv.fix {
                Some(f) => Some((Fixer::new(&root, a.model.as_deref(), f.rounds)?, f.once)),
                None => None,
            };
            Some(Prepared { opts, fix })
        }
        None => None,
    };
    let store = ConversationStore::new(ConversationStore::default_dir());
    let mut conv = store.load(&root).ok().flatten().unwrap_or_default();
    let history = conv
        .recent_messages(6)
        .iter()
        .map(|m| (m.role.clone(), m.content.clone()))
        .collect();
    let recently_edited = conv.recently_edited_files(10);
    let input = GenerateInput {
        prompt: a.prompt.clone(),
        is_edit: a
            .edit
            .unwrap_or_else(|| !generate::context::list_files(&root, 1).is_empty()),
        apply: !a.no_apply,
        continue_truncated: settings.continue_truncated,
        allow_protected: settings.allow_protected,
        primary: None,
        requested: Vec::new(),
        open_documents: Vec::new(),
        history,
        recently_edited,
        comment: None,
        context_tokens: settings.context_tokens,
        max_tokens: ai.max_tokens,
        temperature: ai.temperature,
        model,
    };
    let bar = if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {elapsed} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        Some(pb)
    } else {
        None
    };
    let reporter: Reporter = match &bar {
        Some(pb) => {
            let pb = pb.clone();
            Arc::new(move |ev: Event| pb.set_message(ev.message()))
        }
        None => builder_lsp::events::silent(),
    };
    let rt = sandbox::runtime()?;
    rt.block_on(async move {
        // Ctrl-C or SIGTERM: cancels the generation, the fix loop, or ends serving.
        let cancel = sandbox::cancel_on_signal();
        let client = AiClient::new(ai);
        let deliver = builder_lsp::apply::DiskDeliver {
            reporter: builder_lsp::events::silent(),
        };
        let hooks = Hooks {
            reporter,
            on_delta: None,
            deliver: &deliver,
        };
        let mut result = generate::run(&client, &root, input, hooks, cancel.clone()).await;
        if let Some(pb) = bar {
            pb.finish_and_clear();
        }
        generate::run::record(&mut conv, &a.prompt, &result);
        if let Err(e) = store.save(&root, &conv) {
            eprintln!("warning: conversation not saved: {e}");
        }
        let generated = result.errors.is_empty() && !cancel.is_cancelled();
        let Some(p) = prepared.filter(|_| !cancel.is_cancelled()) else {
            crate::print_json(&result);
            return Ok(exit(generated));
        };
        if !result.errors.is_empty() {
            eprintln!("builder-lsp: the generation has errors; serving anyway");
        }
        let watch = Watch::default();
        let hook = match &p.fix {
            Some(_) => watch.hook(Some(sandbox::echo_hook())),
            None => sandbox::echo_hook(),
        };
        let (s, created) =
            match sandbox::start(&root, &p.opts, &crate::always_reporter(), hook, &cancel).await {
                Ok(v) => v,
                Err(e) => {
                    crate::print_json(&result);
                    return Err(format!("the sandbox did not start: {e}"));
                }
            };
        let Some((fixer, once)) = p.fix else {
            crate::print_json(&served_json(&mut result, &created, None));
            eprintln!("Preview: {}  (Ctrl-C to stop)", created.url);
            sandbox::serve_until(&root, s, &cancel).await;
            return Ok(exit(generated));
        };
        eprintln!(
            "Preview: {}  ({})",
            created.url,
            if once {
                "fixing, then stopping"
            } else {
                "fixing, then serving until Ctrl-C"
            }
        );
        let outcome = fix_loop(&fixer, &s, &watch, &crate::stderr_reporter(), &cancel).await;
        if let Some(e) = &outcome.error {
            eprintln!("warning: the fix loop stopped: {e}");
        }
        eprintln!(
            "Fix: {} after {}; generate → {}: {:.1} s",
            outcome.stop.as_str(),
            builder_lsp::wording::count(outcome.rounds.len(), "round"),
            outcome.stop.as_str(),
            t0.elapsed().as_secs_f64()
        );
        let clean = outcome.clean();
        crate::print_json(&served_json(&mut result, &created, Some(outcome)));
        if once || cancel.is_cancelled() {
            sandbox::stop(&root, s).await;
        } else {
            eprintln!("Serving {}  (Ctrl-C to stop)", created.url);
            sandbox::serve_until(&root, s, &cancel).await;
        }
        Ok(exit(generated && clean))
    })
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The generation's result plus `sandbox: {sandboxId, url}`, and after a fix loop its
/// `fixRounds`, `errorsLeft` (always there, `[]` when clean, as `builder-lsp fix` prints it)
/// and `fixStopped` — the fields `builder.generate` fills for auto-fix.
fn served_json(
    result: &mut GenerateResult,
    created: &CreateResult,
    fixed: Option<Outcome>,
) -> Value {
    let had_fix = fixed.is_some();
    if let Some(o) = fixed {
        result.fix_stopped = Some(o.stop.as_str().to_string());
        result.fix_rounds = Some(o.rounds);
        result.errors_left = o.errors_left;
    }
    let mut v = serde_json::to_value(&*result).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "sandbox".into(),
            serde_json::json!({"sandboxId": created.sandbox_id, "url": created.url}),
        );
        if had_fix {
            m.entry("errorsLeft")
                .or_insert_with(|| Value::Array(Vec::new()));
        }
    }
    v
}
