//! The LSP edge: the only part of the crate that speaks the protocol. It translates requests and
//! notifications into calls on the core (`apply`, `project`, `conversation`, `archive`, …) and
//! holds no business logic of its own.

pub mod capabilities;
pub mod code_action;
pub mod commands;
pub mod completion;
pub mod deliver;
pub mod diagnostics;
pub mod documents;
pub mod ext;
pub mod preview;
pub mod progress;
pub mod steps;
pub mod transport;
pub mod workspace_edit;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use dashmap::DashMap;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

use crate::config;
use crate::conversation::ConversationStore;
use crate::project::{detect_root, Project, ProjectRegistry};
use crate::tasks::TaskRegistry;
use capabilities::ClientCaps;
use documents::Documents;

/// Server-wide state; per-project state lives in [`Project`].
pub struct State {
    pub projects: ProjectRegistry,
    pub tasks: TaskRegistry,
    pub docs: Documents,
    pub caps: RwLock<ClientCaps>,
    pub init_options: RwLock<Option<Value>>,
    /// Settings pushed with `workspace/didChangeConfiguration` (clients without pull support).
    pub pushed_config: RwLock<Option<Value>>,
    /// Progress token → task id, for `window/workDoneProgress/cancel`.
    pub progress_tokens: DashMap<String, String>,
    /// The file the user touched last: commands without `project` act on its project.
    pub last_active: Mutex<Option<PathBuf>>,
    /// One HTTP client for every provider request (connection pooling), built on first use so
    /// an idle server does not pay for TLS roots.
    pub http: std::sync::OnceLock<reqwest::Client>,
    pub debounce: diagnostics::Debounce,
    /// Files that carry Vite error diagnostics, per project root.
    pub vite_files: DashMap<PathBuf, Vec<PathBuf>>,
    /// Files that carry runtime-error diagnostics from the preview, per project root.
    pub preview_files: DashMap<PathBuf, Vec<PathBuf>>,
    /// Headless checks waiting for their page's "settled" report, by check id.
    pub checks: DashMap<String, tokio::sync::oneshot::Sender<()>>,
    /// One publish of runtime errors at a time, so an older snapshot never lands last.
    pub preview_publish: tokio::sync::Mutex<()>,
    /// Inline completions: cache and the request in flight per document.
    pub completion: Arc<crate::completion::CompletionService>,
    /// Completion configuration problems already logged (once each, not per keystroke).
    pub completion_warned: dashmap::DashSet<String>,
}

#[derive(Clone)]
pub struct Backend {
    pub client: Client,
    pub st: Arc<State>,
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read().unwrap_or_else(|e| e.into_inner()).clone()
}

fn write<T>(l: &RwLock<T>, v: T) {
    *l.write().unwrap_or_else(|e| e.into_inner()) = v;
}

pub fn token_key(t: &ProgressToken) -> String {
    match t {
        NumberOrString::Number(n) => n.to_string(),
        NumberOrString::String(s) => s.clone(),
    }
}

impl Backend {
    pub fn new(client: Client) -> Self {
        Backend {
            client,
            st: Arc::new(State {
                projects: ProjectRegistry::new(ConversationStore::new(
                    ConversationStore::default_dir(),
                )),
                tasks: TaskRegistry::new(),
                docs: Documents::default(),
                caps: RwLock::new(ClientCaps::default()),
                init_options: RwLock::new(None),
                pushed_config: RwLock::new(None),
                progress_tokens: DashMap::new(),
                last_active: Mutex::new(None),
                http: std::sync::OnceLock::new(),
                debounce: diagnostics::Debounce::default(),
                vite_files: DashMap::new(),
                preview_files: DashMap::new(),
                checks: DashMap::new(),
                preview_publish: tokio::sync::Mutex::new(()),
                completion: Arc::new(crate::completion::CompletionService::new()),
                completion_warned: dashmap::DashSet::new(),
            }),
        }
    }

    /// An AI client with this project's settings over the shared HTTP client.
    pub fn ai_client(&self, config: crate::ai::config::AiConfig) -> crate::ai::AiClient {
        let http = self.st.http.get_or_init(crate::http::http_client).clone();
        crate::ai::AiClient::with_http(http, config)
    }

    /// The shared HTTP client (providers and cloud sandboxes).
    pub fn http(&self) -> reqwest::Client {
        self.st.http.get_or_init(crate::http::http_client).clone()
    }

    pub fn caps(&self) -> ClientCaps {
        read(&self.st.caps)
    }

    fn set_active(&self, path: PathBuf) {
        *self
            .st
            .last_active
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(path);
    }

    pub fn last_active(&self) -> Option<PathBuf> {
        self.st
            .last_active
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Re-reads one project's settings from every layer; problems are shown, not fatal.
    pub async fn refresh_settings(&self, project: &Arc<Project>) {
        let env = config::environment(Some(&project.root));
        let init = self.init_options_layer();
        let workspace = if self.caps().configuration {
            let item = ConfigurationItem {
                scope_uri: Uri::from_file_path(&project.root),
                section: Some("builder".into()),
            };
            match self.client.configuration(vec![item]).await {
                Ok(mut v) if !v.is_empty() => Some(v.swap_remove(0)),
                _ => None,
            }
        } else {
            read(&self.st.pushed_config)
        };
        let (settings, warnings) = config::resolve(&env, init.as_ref(), workspace.as_ref());
        project.set_settings(settings);
        for w in warnings {
            tracing::warn!("{}: {w}", project.name);
            self.client
                .show_message(MessageType::WARNING, format!("builder-lsp settings: {w}"))
                .await;
        }
    }

    fn add_project(&self, root: PathBuf) -> Arc<Project> {
        tracing::info!(root = %root.display(), "project added");
        let project = self.st.projects.add(root);
        // The environment and initializationOptions are known now: apply them at once, so a
        // command sent before the client answers `workspace/configuration` already sees the
        // keys the client passed.
        let env = config::environment(Some(&project.root));
        let init = self.init_options_layer();
        let (settings, _) = config::resolve(&env, init.as_ref(), None);
        project.set_settings(settings);
        project
    }

    /// initializationOptions as a settings layer. Helix passes its `config` table as is, often
    /// nested under `builder` like the configuration section: accept both shapes.
    fn init_options_layer(&self) -> Option<Value> {
        read(&self.st.init_options).map(|v| match v {
            Value::Object(mut m) if m.get("builder").is_some_and(Value::is_object) => {
                m.remove("builder").unwrap_or(Value::Null)
            }
            other => other,
        })
    }

    /// Handles `window/workDoneProgress/cancel`: the token names a task.
    pub async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        if let Some(id) = self
            .st
            .progress_tokens
            .get(&token_key(&params.token))
            .map(|v| v.clone())
        {
            if let Some(task) = self.st.tasks.get(&id) {
                tracing::info!(task = %id, "cancelled from progress");
                task.cancel.cancel();
            }
        }
    }
}

fn folder_path(uri: &Uri) -> Option<PathBuf> {
    uri.to_file_path().map(|p| p.into_owned())
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let caps = ClientCaps::from_params(&params);
        let encoding = caps.encoding;
        tracing::info!(client = %caps.client_name, ?encoding, "initialize");
        write(&self.st.caps, caps);
        write(&self.st.init_options, params.initialization_options.clone());

        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .as_deref()
            .unwrap_or(&[])
            .iter()
            .filter_map(|f| folder_path(&f.uri))
            .collect();
        if roots.is_empty() {
            #[allow(deprecated)]
            let from_root = params.root_uri.as_ref().and_then(folder_path).or_else(|| {
                params
                    .root_path
                    .as_ref()
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
            });
            roots.extend(from_root);
        }
        for r in roots {
            self.add_project(r);
        }
        let mut server_caps = capabilities::server_capabilities(encoding);
        capabilities::completion_capabilities(&mut server_caps, &self.caps());
        Ok(InitializeResult {
            capabilities: server_caps,
            server_info: Some(ServerInfo {
                name: "builder-lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        if self.caps().watch_files {
            // npm rewrites package.json behind the editor's back; watching it keeps the
            // missing-package diagnostics true.
            let watchers: Vec<FileSystemWatcher> = [
                "**/package.json",
                "**/tsconfig.json",
                "**/jsconfig.json",
                "**/vite.config.*",
            ]
            .iter()
            .map(|g| FileSystemWatcher {
                glob_pattern: GlobPattern::String(g.to_string()),
                kind: None,
            })
            .collect();
            let reg = Registration {
                id: "builder-watch-manifests".into(),
                method: "workspace/didChangeWatchedFiles".into(),
                register_options: serde_json::to_value(DidChangeWatchedFilesRegistrationOptions {
                    watchers,
                })
                .ok(),
            };
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.client.register_capability(vec![reg]).await {
                    tracing::debug!("file watch registration refused: {e}");
                }
            });
        }
        let this = self.clone();
        tokio::spawn(async move {
            for p in this.st.projects.all() {
                this.refresh_settings(&p).await;
            }
        });
    }

    async fn shutdown(&self) -> Result<()> {
        self.st.tasks.cancel_all();
        commands::sandbox::kill_all(self).await;
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        self.st.docs.open(&doc.uri, &doc.text, doc.version);
        let Some(path) = folder_path(&doc.uri) else {
            return;
        };
        self.set_active(path.clone());
        if self.st.projects.is_empty() {
            if let Some(root) = detect_root(&path) {
                let p = self.add_project(root);
                self.refresh_settings(&p).await;
            }
        }
        diagnostics::schedule(self, &doc.uri);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let enc = self.caps().encoding;
        let doc = params.text_document;
        self.st
            .docs
            .change(&doc.uri, doc.version, params.content_changes, enc);
        if let Some(path) = folder_path(&doc.uri) {
            self.set_active(path);
        }
        diagnostics::schedule(self, &doc.uri);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        let uri = params.text_document.uri;
        let Some(path) = folder_path(&uri) else {
            return;
        };
        if diagnostics::affects_detection(&path) {
            diagnostics::manifest_changed(self, &path).await;
        }
        commands::sandbox::push_saved(self, &path, params.text).await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        self.st.docs.close(&uri);
        self.st.completion.forget(uri.as_str());
        // Missing-package diagnostics of a closed file would go stale: keep only Vite's.
        diagnostics::publish_source(self, &uri, diagnostics::SOURCE, Vec::new(), None).await;
        if self.st.debounce.is_empty_for(&uri) {
            diagnostics::forget(self, &uri);
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        for ch in params.changes {
            if let Some(path) = folder_path(&ch.uri) {
                if diagnostics::affects_detection(&path) {
                    diagnostics::manifest_changed(self, &path).await;
                }
            }
        }
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        for f in &params.event.removed {
            if let Some(p) = folder_path(&f.uri) {
                tracing::info!(root = %p.display(), "project removed");
                if let Some(project) = self.st.projects.remove(&p) {
                    for t in self.st.tasks.running_in(&project.root) {
                        t.cancel.cancel();
                    }
                }
            }
        }
        for f in &params.event.added {
            if let Some(p) = folder_path(&f.uri) {
                let project = self.add_project(p);
                self.refresh_settings(&project).await;
            }
        }
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let pushed = match params.settings {
            Value::Object(mut m) if m.contains_key("builder") => m.remove("builder"),
            Value::Null => None,
            other => Some(other),
        };
        write(&self.st.pushed_config, pushed);
        for p in self.st.projects.all() {
            self.refresh_settings(&p).await;
        }
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<LSPAny>> {
        commands::execute(self, params).await.map(Some)
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        Ok(Some(code_action::code_actions(self, &params)))
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        self.completion_fallback(params).await
    }
}

/// Runs the language server on the given streams until `exit` (stdio in the binary, in-memory
/// pipes in tests).
pub async fn serve<I, O>(input: I, output: O)
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite + Unpin + Send + 'static,
{
    let (service, socket) = LspService::build(Backend::new)
        .custom_method("window/workDoneProgress/cancel", Backend::progress_cancel)
        .custom_method("textDocument/inlineCompletion", Backend::inline_completion)
        .finish();
    // Long commands run as tasks, but `wait: true` requests stay open: allow plenty at once so
    // they never starve quick requests.
    let (server_in, guard_out) = tokio::io::duplex(1 << 20);
    let (server_out, pump_in) = tokio::io::duplex(1 << 20);
    let (errors_tx, errors_rx) = tokio::sync::mpsc::unbounded_channel();
    let guard = tokio::spawn(transport::guard(input, guard_out, errors_tx));
    let pump = tokio::spawn(transport::pump(pump_in, output, errors_rx));
    Server::new(server_in, server_out, socket)
        .concurrency_level(64)
        .serve(service)
        .await;
    guard.abort();
    // Everything the server wrote is in the pipe: let the pump flush it, briefly.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), pump).await;
}
