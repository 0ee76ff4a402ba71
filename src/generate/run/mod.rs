//! The generation pipeline. The stream loop never waits on the editor: completed files go
//! through a channel to one delivery task, which applies them in order (so the first file lands
//! while the model is still writing the second) and keeps an overlay of what it delivered so
//! later `<edit>` blocks and duplicates see the newest text.
//!
//! Here: the inputs and the result, and `run` (context, prompt, the stream loop, truncation
//! follow-ups); `applier` is the delivery task, `finish` turns what happened into the result,
//! `record` writes it into the conversation.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::context::{self, ContextFile};
use super::prompt::{self, PromptInput};
use crate::ai::{AiClient, AiError, ChatMessage, ChatRequest, ModelId, Role, StreamEvent};
use crate::apply::{ApplyOptions, ApplyResult, Deliver, SkippedFile};
use crate::events::{Event, Reporter};
use crate::response::{ParseEvent, ParsedFile, ResponseParser};

mod applier;
mod finish;
mod record;

use applier::{Applier, Item};
use finish::{finish, InputSummary, StreamOutcome};
pub use record::record;

/// A `// @builder …` comment that started this generation; removed in the same edit.
#[derive(Debug, Clone)]
pub struct PromptComment {
    /// Relative path of the file holding the comment.
    pub path: String,
    /// The comment's whole line, as it is in the buffer.
    pub line: String,
}

pub struct GenerateInput {
    pub prompt: String,
    pub model: ModelId,
    pub is_edit: bool,
    pub apply: bool,
    pub continue_truncated: bool,
    pub allow_protected: bool,
    pub primary: Option<ContextFile>,
    pub requested: Vec<ContextFile>,
    pub open_documents: Vec<ContextFile>,
    pub history: Vec<(String, String)>,
    pub recently_edited: Vec<String>,
    pub comment: Option<PromptComment>,
    pub context_tokens: usize,
    pub max_tokens: u32,
    pub temperature: Option<f32>,
}

pub struct Hooks<'a> {
    pub reporter: Reporter,
    /// Raw model text as it arrives (`builder/generationDelta`).
    pub on_delta: Option<&'a (dyn Fn(&str) + Send + Sync)>,
    pub deliver: &'a dyn Deliver,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct GeneratedFile {
    pub path: String,
    pub bytes: usize,
    pub complete: bool,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The result of `builder.generate` (DESIGN.md §2), plus what the apply step did.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerateResult {
    pub files: Vec<GeneratedFile>,
    pub packages: Vec<String>,
    pub commands: Vec<String>,
    pub explanation: String,
    pub model: String,
    pub truncated: Vec<String>,
    pub applied: bool,
    pub usage: Usage,
    pub is_edit: bool,
    /// `end_turn`, `max_tokens`, `error`, `cancelled`, or the provider's own reason.
    pub stop_reason: String,
    pub files_created: Vec<String>,
    pub files_updated: Vec<String>,
    pub files_skipped: Vec<SkippedFile>,
    pub written_to_disk: Vec<String>,
    /// Truncated files completed by a follow-up request.
    pub continued: Vec<String>,
    /// Files sent to the model as context.
    pub context_files: Vec<String>,
    pub errors: Vec<String>,
    pub message: String,
    /// Milliseconds from the request to the first token.
    pub first_token_ms: Option<u64>,
    /// Milliseconds in all.
    pub elapsed_ms: u64,
    pub packages_installed: Vec<String>,
    pub packages_already_installed: Vec<String>,
    pub packages_failed: Vec<crate::packages::install::FailedPackage>,
    /// The generation's one checkpoint (`builder.revert` takes the whole generation back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
    /// Files the user left out when reviewing (not applied, not in the checkpoint).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files_declined: Vec<String>,
    /// Set when the generation's change set went to review (setting `review`, or `review: true`):
    /// nothing was streamed into the workspace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<crate::review::ReviewOutcome>,
    /// Auto-fix (setting `autoFix`): the fix rounds run after the answer landed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_rounds: Option<Vec<crate::generate::fix::FixRound>>,
    /// Auto-fix: the errors still there when it stopped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors_left: Vec<String>,
    /// Auto-fix: why it stopped (`clean`, `repeated`: the same errors came back, `maxRounds`,
    /// `cancelled`, `failed`: a round could not run or land).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix_stopped: Option<String>,
}
fn kb(n: usize) -> String {
    if n < 1024 {
        format!("{n} B")
    } else {
        format!("{} KB", n / 1024)
    }
}

/// Streams one request to completion (used for truncation follow-ups), returning the text.
async fn collect(
    client: &AiClient,
    req: &ChatRequest,
    cancel: &CancellationToken,
) -> Result<String, AiError> {
    let mut stream = client.stream(req, cancel.clone()).await?;
    let mut text = String::new();
    while let Some(ev) = stream.next().await {
        if let StreamEvent::Text(t) = ev? {
            text.push_str(&t);
        }
    }
    Ok(text)
}

fn to_messages(built: prompt::BuiltPrompt) -> (String, Vec<ChatMessage>) {
    let messages = built
        .messages
        .into_iter()
        .map(|(role, content)| ChatMessage {
            role: if role == "assistant" {
                Role::Assistant
            } else {
                Role::User
            },
            content,
        })
        .collect();
    (built.system, messages)
}

/// Runs one generation. Never fails: errors are in the result, with what was applied.
pub async fn run(
    client: &AiClient,
    root: &Path,
    input: GenerateInput,
    hooks: Hooks<'_>,
    cancel: CancellationToken,
) -> GenerateResult {
    let started = Instant::now();
    let report = hooks.reporter.clone();
    let mut result = GenerateResult {
        model: input.model.to_string(),
        is_edit: input.is_edit,
        ..Default::default()
    };

    report(Event::Status("Choosing context".into()));
    let ctx_files = context::select(context::Selection {
        root,
        request: &input.prompt,
        primary: input.primary.clone(),
        requested: input.requested.clone(),
        recently_edited: &input.recently_edited,
        open_documents: input.open_documents.clone(),
        budget_tokens: if input.is_edit {
            input.context_tokens
        } else {
            input.context_tokens / 4
        },
    });
    result.context_files = ctx_files.iter().map(|f| f.path.clone()).collect();
    let project_files: Vec<String> = context::list_files(root, 400)
        .into_iter()
        .map(|f| f.path)
        .collect();
    let built = prompt::build(&PromptInput {
        request: &input.prompt,
        is_edit: input.is_edit,
        context: &ctx_files,
        history: &input.history,
        recently_edited: &input.recently_edited,
        primary: input.primary.as_ref().map(|p| p.path.as_str()),
        max_tokens: input.max_tokens,
        project_files: &project_files,
    });
    let (system, messages) = to_messages(built);
    let req = ChatRequest {
        model: input.model.clone(),
        system,
        messages,
        max_tokens: input.max_tokens,
        temperature: input.temperature,
    };

    // The delivery side: one task, in order, never blocking the stream loop.
    let (tx, mut rx) = mpsc::unbounded_channel::<Item>();
    let mut applier = Applier {
        root: root.to_path_buf(),
        deliver: hooks.deliver,
        opts: ApplyOptions {
            allow_protected: input.allow_protected,
        },
        overlay: HashMap::new(),
        comment: input.comment.clone(),
        comment_done: false,
        out: ApplyResult {
            applied_via: "none".into(),
            ..Default::default()
        },
        planned: 0,
        landed: 0,
        reporter: report.clone(),
    };
    let apply_enabled = input.apply;
    let input_summary = InputSummary {
        apply: input.apply,
        cancelled: cancel.clone(),
    };
    let applying = async {
        while let Some(item) = rx.recv().await {
            if apply_enabled {
                applier.apply(item).await;
            }
        }
        applier
    };

    let streaming = async move {
        report(Event::Status(format!("Asking {}", input.model)));
        let mut parser = ResponseParser::new();
        let mut events = Vec::new();
        let mut out = StreamOutcome::default();
        let mut last_report = Instant::now() - Duration::from_secs(1);
        let mut files_done = 0usize;
        let mut sent: std::collections::HashSet<String> = Default::default();
        match client.stream(&req, cancel.clone()).await {
            Err(e) => out.error = Some(e),
            Ok(mut stream) => {
                while let Some(ev) = stream.next().await {
                    match ev {
                        Ok(StreamEvent::Text(t)) => {
                            if out.first_token_ms.is_none() {
                                out.first_token_ms = Some(started.elapsed().as_millis() as u64);
                            }
                            if let Some(f) = hooks.on_delta {
                                f(&t);
                            }
                            parser.feed(&t, &mut events);
                            for ev in events.drain(..) {
                                match ev {
                                    ParseEvent::FileEnd { index } => {
                                        files_done += 1;
                                        if let Some(f) = parser.files().get(index) {
                                            sent.insert(f.path.clone());
                                            let _ = tx.send(Item::File(f.clone()));
                                        }
                                    }
                                    ParseEvent::EditEnd { index } => {
                                        if let Some(e) = parser.edits().get(index) {
                                            let _ = tx.send(Item::Edit(e.clone()));
                                        }
                                    }
                                    _ => {}
                                }
                            }
                            if last_report.elapsed() >= Duration::from_millis(100) {
                                last_report = Instant::now();
                                let msg = match parser.current_file() {
                                    Some((path, bytes)) => {
                                        format!(
                                            "Writing {path} — {files_done} files, {}",
                                            kb(bytes)
                                        )
                                    }
                                    None => format!(
                                        "Receiving — {files_done} files, {}",
                                        kb(parser.bytes_seen())
                                    ),
                                };
                                report(Event::Status(msg));
                            }
                        }
                        Ok(StreamEvent::Usage {
                            input_tokens,
                            output_tokens,
                        }) => {
                            if input_tokens > 0 {
                                out.usage.input_tokens = input_tokens;
                            }
                            if output_tokens > 0 {
                                out.usage.output_tokens = output_tokens;
                            }
                        }
                        Ok(StreamEvent::Stop(r)) => out.stop = Some(r),
                        Err(e) => {
                            out.error = Some(e);
                            break;
                        }
                    }
                }
            }
        }
        let partials: HashMap<String, String> = parser
            .files()
            .iter()
            .filter(|f| !f.complete)
            .map(|f| (f.path.clone(), f.content.clone()))
            .collect();
        let mut parsed = parser.finish();
        // Files recognised only at the end (fenced fallbacks) go now.
        for f in parsed
            .files
            .iter()
            .filter(|f| f.complete && !sent.contains(&f.path))
        {
            let _ = tx.send(Item::File(f.clone()));
        }
        // Truncated files: ask once per file for the complete file (at most three).
        if input.continue_truncated && out.error.is_none() && !cancel.is_cancelled() {
            let mut still = Vec::new();
            for path in std::mem::take(&mut parsed.truncated) {
                if out.continued.len() >= 3 || cancel.is_cancelled() {
                    still.push(path);
                    continue;
                }
                report(Event::Status(format!("Asking the model to finish {path}")));
                let partial = partials.get(&path).map(String::as_str).unwrap_or("");
                let (system, messages) =
                    to_messages(prompt::continuation(&path, partial, &input.prompt));
                let follow = ChatRequest {
                    system,
                    messages,
                    ..req.clone()
                };
                let done = match collect(client, &follow, &cancel).await {
                    Ok(text) => {
                        // The block for this path, or the only complete block if the model
                        // spelled the path differently.
                        let p = crate::response::parse(&text);
                        let complete: Vec<&ParsedFile> =
                            p.files.iter().filter(|f| f.complete).collect();
                        complete
                            .iter()
                            .find(|f| f.path == path)
                            .or(if complete.len() == 1 {
                                complete.first()
                            } else {
                                None
                            })
                            .map(|f| (*f).clone())
                    }
                    Err(e) => {
                        out.follow_errors
                            .push(format!("{path}: completing it failed: {e}"));
                        None
                    }
                };
                match done {
                    Some(mut f) => {
                        f.path = path.clone();
                        if let Some(file) = parsed.files.iter_mut().find(|x| x.path == path) {
                            file.content = f.content.clone();
                            file.complete = true;
                        }
                        let _ = tx.send(Item::File(f));
                        out.continued.push(path);
                    }
                    None => still.push(path),
                }
            }
            parsed.truncated = still;
        }
        if input.comment.is_some() && !cancel.is_cancelled() {
            let _ = tx.send(Item::RemoveComment);
        }
        drop(tx);
        out.parsed = parsed;
        out
    };

    let last_report = hooks.reporter.clone();
    let (out, applier) = tokio::join!(streaming, applying);
    // A last report naming what landed (the throttle always delivers the final one).
    let landed: Vec<&str> = applier
        .out
        .files_created
        .iter()
        .chain(&applier.out.files_updated)
        .map(String::as_str)
        .collect();
    if !landed.is_empty() {
        last_report(Event::Status(format!("Applied {}", landed.join(", "))));
    }
    finish(result, out, applier, &input_summary, started)
}
