//! What the server advertises, and what it learned about the client at `initialize`.

use serde_json::Value;
use tower_lsp_server::ls_types::*;

use super::commands::Command;
use super::documents::Encoding;

/// The client's abilities that change how the server behaves.
#[derive(Debug, Clone, Default)]
pub struct ClientCaps {
    pub apply_edit: bool,
    pub document_changes: bool,
    pub create_files: bool,
    /// `DeleteFile` resource operations (reverts remove files a generation created).
    pub delete_files: bool,
    /// `workspace.workspaceEdit.changeAnnotationSupport`: the client can show an edit for
    /// confirmation (VS Code's refactor preview), so review happens there.
    pub change_annotations: bool,
    pub work_done_progress: bool,
    pub configuration: bool,
    pub show_document: bool,
    pub encoding: Encoding,
    pub client_name: String,
    /// Neovim writes one extra newline when a new buffer receives text ending in `\n`.
    pub neovim: bool,
    /// `initializationOptions.streamDeltas`: the client displays raw model text.
    pub stream_deltas: bool,
    /// The client registers file watchers on request (`didChangeWatchedFiles`).
    pub watch_files: bool,
    /// Helix: shows neither command answers nor command errors, so they also go out as messages.
    pub helix: bool,
    /// The client declared `textDocument.inlineCompletion` (LSP 3.18).
    pub inline_completion: bool,
}

impl ClientCaps {
    pub fn from_params(p: &InitializeParams) -> Self {
        let caps = &p.capabilities;
        let ws = caps.workspace.as_ref();
        let we = ws.and_then(|w| w.workspace_edit.as_ref());
        let name = p
            .client_info
            .as_ref()
            .map(|c| c.name.clone())
            .unwrap_or_default();
        ClientCaps {
            apply_edit: ws.and_then(|w| w.apply_edit).unwrap_or(false),
            // Resource operations only exist inside `documentChanges`, so a client that lists
            // them takes that form even without saying so (Neovim 0.11 does exactly this).
            document_changes: we.and_then(|e| e.document_changes).unwrap_or(false)
                || we
                    .and_then(|e| e.resource_operations.as_ref())
                    .is_some_and(|ops| !ops.is_empty()),
            create_files: we
                .and_then(|e| e.resource_operations.as_ref())
                .is_some_and(|ops| ops.contains(&ResourceOperationKind::Create)),
            delete_files: we
                .and_then(|e| e.resource_operations.as_ref())
                .is_some_and(|ops| ops.contains(&ResourceOperationKind::Delete)),
            change_annotations: we.is_some_and(|e| e.change_annotation_support.is_some()),
            work_done_progress: caps
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            configuration: ws.and_then(|w| w.configuration).unwrap_or(false),
            watch_files: ws
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|d| d.dynamic_registration)
                .unwrap_or(false),
            show_document: caps
                .window
                .as_ref()
                .and_then(|w| w.show_document.as_ref())
                .is_some_and(|s| s.support),
            encoding: Encoding::negotiate(
                caps.general
                    .as_ref()
                    .and_then(|g| g.position_encodings.as_deref()),
            ),
            neovim: name.eq_ignore_ascii_case("neovim") || name.eq_ignore_ascii_case("nvim"),
            helix: name.eq_ignore_ascii_case("helix"),
            inline_completion: caps
                .text_document
                .as_ref()
                .is_some_and(|t| t.inline_completion.is_some()),
            client_name: name,
            stream_deltas: p
                .initialization_options
                .as_ref()
                .and_then(|o| o.get("streamDeltas"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }
    }
}

pub fn server_capabilities(encoding: Encoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(encoding.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                    include_text: Some(false),
                })),
                ..Default::default()
            },
        )),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![
                CodeActionKind::QUICKFIX,
                CodeActionKind::REFACTOR_REWRITE,
            ]),
            work_done_progress_options: WorkDoneProgressOptions::default(),
            resolve_provider: Some(false),
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: Command::ALL.iter().map(|c| c.name().to_string()).collect(),
            work_done_progress_options: WorkDoneProgressOptions {
                work_done_progress: Some(true),
            },
        }),
        workspace: Some(WorkspaceServerCapabilities {
            workspace_folders: Some(WorkspaceFoldersServerCapabilities {
                supported: Some(true),
                change_notifications: Some(OneOf::Left(true)),
            }),
            file_operations: None,
        }),
        ..Default::default()
    }
}

/// Inline completion for clients that declare it; otherwise the `textDocument/completion`
/// fallback (never both: VS Code would ask for completion lists on every keystroke). No
/// trigger characters, so clients ask only when invoked or on their own typing rules.
pub fn completion_capabilities(server: &mut ServerCapabilities, client: &ClientCaps) {
    if client.inline_completion {
        server.inline_completion_provider = Some(OneOf::Left(true));
    } else {
        server.completion_provider = Some(CompletionOptions {
            resolve_provider: Some(false),
            ..Default::default()
        });
    }
}
