//! `textDocument/inlineCompletion` (LSP 3.18) and the `textDocument/completion` fallback: the
//! protocol side of `completion/`. Positions are converted in the negotiated encoding; the
//! core does the rest. A provider error is one log line and an empty answer, never a popup.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use super::documents::Cursor;
use super::Backend;
use crate::completion::fim::Limits;
use crate::completion::{model, CompletionError, CompletionRequest, ContextOptions};
use crate::config::{self, CompletionSettings};

/// Open documents sent as related-file candidates, and the bytes taken from each.
const MAX_OTHERS: usize = 20;
const MAX_OTHER_BYTES: usize = 256 * 1024;

/// Cancels the completion's token when the LSP request is dropped (`$/cancelRequest`),
/// unless disarmed (the fallback's budget ran out and the request goes on for the cache).
struct CancelOnDrop(Option<tokio_util::sync::CancellationToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

/// A cursor in an open document with completions on: enough to ask the cache.
struct Target {
    doc: String,
    text: String,
    path: Option<std::path::PathBuf>,
    root: Option<std::path::PathBuf>,
    cursor: Cursor,
    settings: config::Settings,
    spec: String,
}

impl Target {
    fn completion(&self) -> &CompletionSettings {
        &self.settings.completion
    }
}

struct Prepared {
    req: CompletionRequest,
    cursor: Cursor,
    settings: CompletionSettings,
}

fn relative(path: &Path, root: Option<&Path>) -> String {
    root.and_then(|r| path.strip_prefix(r).ok())
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

impl Backend {
    /// The document, cursor and settings, or `None` when completions are off or no model is set.
    fn completion_target(&self, uri: &Uri, pos: Position) -> Option<Target> {
        let enc = self.caps().encoding;
        let (text, path, cursor) = self.st.docs.cursor(uri, pos, enc)?;
        let project = path.as_deref().and_then(|p| self.st.projects.for_path(p));
        let root = project.as_ref().map(|p| p.root.clone());
        let settings = match &project {
            Some(p) => p.settings(),
            None => {
                let init = self.init_options_layer();
                config::resolve(&config::environment(None), init.as_ref(), None).0
            }
        };
        let cs = &settings.completion;
        let spec = cs
            .model
            .clone()
            .filter(|m| cs.enabled && !m.trim().is_empty())?;
        Some(Target {
            doc: uri.as_str().to_string(),
            text,
            path,
            root,
            cursor,
            settings,
            spec,
        })
    }

    /// The whole request (endpoint, related files), or `None` when the model is misconfigured
    /// (logged once per distinct message, not per keystroke).
    fn prepare_completion(&self, t: Target) -> Option<Prepared> {
        let env = config::environment(t.root.as_deref());
        let s = &t.settings;
        let endpoint = match model::resolve(&t.spec, &env, &s.base_urls, &s.api_keys.0) {
            Ok(e) => e,
            Err(e) => {
                let msg = e.to_string();
                if self.st.completion_warned.insert(msg.clone()) {
                    tracing::warn!("completion: {msg}");
                }
                return None;
            }
        };
        let shown = t
            .path
            .as_deref()
            .map(|p| relative(p, t.root.as_deref()))
            .unwrap_or_else(|| t.doc.clone());
        let others = match &t.root {
            Some(r) => self
                .st
                .docs
                .texts_under(r)
                .into_iter()
                .filter(|(p, _)| Some(p) != t.path.as_ref())
                .take(MAX_OTHERS)
                .map(|(p, mut text)| {
                    if text.len() > MAX_OTHER_BYTES {
                        let end =
                            crate::completion::context::floor_boundary(&text, MAX_OTHER_BYTES);
                        text.truncate(end);
                    }
                    (relative(&p, Some(r)), text)
                })
                .collect(),
            None => Vec::new(),
        };
        let cs = t.completion().clone();
        let req = CompletionRequest {
            doc: t.doc,
            path: shown,
            text: t.text,
            cursor: t.cursor.byte,
            others,
            endpoint: Arc::new(endpoint),
            context: ContextOptions {
                context_lines: cs.context_lines.max(1),
                budget_tokens: cs.context_tokens,
                max_snippets: 3,
            },
            limits: Limits {
                max_tokens: cs.max_tokens.max(1),
                temperature: cs.temperature as f32,
            },
            debounce: Duration::from_millis(cs.debounce_ms),
            timeout: Duration::from_millis(cs.timeout_ms.max(1)),
        };
        Some(Prepared {
            req,
            cursor: t.cursor,
            settings: cs,
        })
    }

    fn log_completion_error(&self, e: &CompletionError) {
        match e {
            CompletionError::Cancelled => tracing::debug!("completion superseded or cancelled"),
            // The message is scrubbed of the key by the client that made it.
            other => tracing::warn!("completion failed: {other}"),
        }
    }

    /// `textDocument/inlineCompletion`.
    pub async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<Option<InlineCompletionResponse>> {
        let tdp = params.text_document_position;
        let empty = Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
            items: Vec::new(),
        })));
        let Some(t) = self.completion_target(&tdp.text_document.uri, tdp.position) else {
            return empty;
        };
        let at = t.cursor.position;
        let answer = |text: String| {
            Ok(Some(InlineCompletionResponse::List(InlineCompletionList {
                items: vec![InlineCompletionItem {
                    insert_text: text,
                    filter_text: None,
                    range: Some(Range::new(at, at)),
                    command: None,
                    insert_text_format: None,
                }],
            })))
        };
        let svc = self.st.completion.clone();
        let ticket = svc.begin(&t.doc);
        // The cache first: no endpoint resolution, no copies of the other open files.
        if let Some(text) = svc.lookup(&t.doc, &t.text, t.cursor.byte) {
            return answer(text);
        }
        let Some(p) = self.prepare_completion(t) else {
            return empty;
        };
        let _cancel = CancelOnDrop(Some(ticket.token.clone()));
        let http = self.http();
        match svc.complete(&http, p.req, ticket).await {
            Ok(o) if !o.text.is_empty() => answer(o.text),
            Ok(_) => empty,
            Err(e) => {
                self.log_completion_error(&e);
                empty
            }
        }
    }

    /// `textDocument/completion`, for clients without inline completion: one item whose edit
    /// inserts the whole (multi-line) completion. Explicit invocation only unless
    /// `completion.onTyping`; an answer later than `completion.budgetMs` becomes an empty
    /// `isIncomplete` list while the request goes on to fill the cache.
    pub async fn completion_fallback(
        &self,
        params: CompletionParams,
    ) -> Result<Option<CompletionResponse>> {
        let incomplete = || {
            Ok(Some(CompletionResponse::List(CompletionList {
                is_incomplete: true,
                items: Vec::new(),
            })))
        };
        let tdp = params.text_document_position;
        let Some(t) = self.completion_target(&tdp.text_document.uri, tdp.position) else {
            return Ok(None);
        };
        let kind = params
            .context
            .as_ref()
            .map(|c| c.trigger_kind)
            .unwrap_or(CompletionTriggerKind::INVOKED);
        let explicit = kind == CompletionTriggerKind::INVOKED;
        let svc = self.st.completion.clone();
        let cached = svc.lookup(&t.doc, &t.text, t.cursor.byte);
        if let Some(text) = cached {
            return Ok(Some(CompletionResponse::List(item_list(
                &t.cursor,
                t.completion(),
                text,
            ))));
        }
        if !explicit && !t.completion().on_typing {
            // Typing: only what the cache knows (an earlier request may have filled it).
            return Ok(None);
        }
        let ticket = svc.begin(&t.doc);
        let Some(p) = self.prepare_completion(t) else {
            return Ok(None);
        };
        let mut cancel = CancelOnDrop(Some(ticket.token.clone()));
        let http = self.http();
        let budget = Duration::from_millis(p.settings.budget_ms.max(1));
        let req = p.req.clone();
        let this = self.clone();
        let task = tokio::spawn(async move {
            let r = svc.complete(&http, req, ticket).await;
            if let Err(e) = &r {
                this.log_completion_error(e);
            }
            r
        });
        match tokio::time::timeout(budget, task).await {
            Ok(Ok(Ok(o))) if !o.text.is_empty() => Ok(Some(CompletionResponse::List(item_list(
                &p.cursor,
                &p.settings,
                o.text,
            )))),
            Ok(_) => Ok(None),
            Err(_) => {
                // Let it finish into the cache; a newer request still supersedes it.
                cancel.0 = None;
                incomplete()
            }
        }
    }
}

/// The fallback's single item: replaces the identifier before the cursor with itself plus the
/// completion, so clients that filter by that word (Helix, Neovim) keep the item.
fn item_list(cursor: &Cursor, settings: &CompletionSettings, text: String) -> CompletionList {
    let word = &cursor.word;
    let new_text = format!("{word}{text}");
    let first = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    let mut detail: String = first.chars().take(60).collect();
    if text.lines().count() > 1 {
        detail.push_str(&format!(" … (+{} lines)", text.lines().count() - 1));
    }
    CompletionList {
        is_incomplete: false,
        items: vec![CompletionItem {
            label: settings.label.clone(),
            kind: Some(CompletionItemKind::SNIPPET),
            detail: Some(detail),
            documentation: Some(Documentation::MarkupContent(MarkupContent {
                kind: MarkupKind::Markdown,
                value: format!("```\n{new_text}\n```"),
            })),
            filter_text: Some(new_text.clone()),
            sort_text: Some("0".into()),
            insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
            text_edit: Some(CompletionTextEdit::Edit(TextEdit {
                range: Range::new(cursor.word_start, cursor.position),
                new_text,
            })),
            ..Default::default()
        }],
    }
}
