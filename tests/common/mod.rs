//! Integration-test harness: the real `builder-lsp` binary over stdio, driven by a small
//! JSON-RPC client that behaves like an editor.
//!
//! - Messages are `Content-Length` framed; a reader thread routes responses to the waiting
//!   caller and records every message the server sends (notifications and requests), in order.
//! - Requests from the server are answered like an editor would: `workspace/applyEdit` is
//!   really applied (all or nothing, positions in the negotiated encoding, versioned edits
//!   checked against the open document), `workspace/configuration` answers the configured
//!   `builder` section, progress creation and the rest answer `null`.
//! - Documents the test opens live in memory (like unsaved editor buffers): edits to them change
//!   the harness text and version and are echoed back as `textDocument/didChange`; any other
//!   file is changed on disk, as if the editor saved it.
//!
//! No mocks of the server: every test talks to the binary Cargo built.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

/// How long a request may take before the test fails.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Commands that run real npm and Vite: with `wait: true` on a cold cache they may take longer
/// than an editor would wait (editors use `wait: false`).
const SLOW_COMMANDS: &[&str] = &[
    "builder.sandbox.create",
    "builder.sandbox.restart",
    "builder.sandbox.run",
    "builder.installPackages",
    "builder.apply",
];
const SLOW_REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Every command of DESIGN.md §2, spelled out.
pub const ALL_COMMANDS: &[&str] = &[
    "builder.generate",
    "builder.apply",
    "builder.conversation.get",
    "builder.conversation.update",
    "builder.conversation.reset",
    "builder.conversation.clearOld",
    "builder.conversation.delete",
    "builder.installPackages",
    "builder.detectPackages",
    "builder.sandbox.create",
    "builder.sandbox.files",
    "builder.sandbox.status",
    "builder.sandbox.kill",
    "builder.sandbox.restart",
    "builder.sandbox.logs",
    "builder.sandbox.run",
    "builder.createZip",
    "builder.models",
    "builder.task.status",
    "builder.task.cancel",
    "builder.history",
    "builder.revert",
    "builder.diff",
    "builder.review.show",
    "builder.review.accept",
    "builder.review.discard",
    "builder.fix",
    "builder.sandbox.errors",
    "builder.sandbox.check",
];

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// URIs
// ---------------------------------------------------------------------------------------------

/// `file://` URI of an absolute path, percent-encoding everything but unreserved characters.
pub fn file_uri(path: &Path) -> String {
    let s = path.to_str().expect("test paths are UTF-8");
    let mut out = String::from("file://");
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path of a `file://` URI (percent-decoded).
pub fn uri_path(uri: &str) -> PathBuf {
    let rest = uri
        .strip_prefix("file://")
        .unwrap_or_else(|| panic!("not a file URI: {uri}"));
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(String::from_utf8(out).expect("URI decodes to UTF-8"))
}

// ---------------------------------------------------------------------------------------------
// Client presets
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    VsCode,
    Neovim,
    Helix,
    Bare,
}

/// What the client sends at `initialize` and how it behaves afterwards.
#[derive(Clone, Debug)]
pub struct ClientOpts {
    pub preset: Preset,
    folders: Vec<PathBuf>,
    /// `Some(None)`: send `rootUri: null` explicitly; `None`: derive from the preset.
    root_uri: Option<Option<PathBuf>>,
    root_path: Option<PathBuf>,
    init_options: Option<Value>,
    config: Value,
    state_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
    /// Merged over the preset's capabilities (objects key by key).
    extra_caps: Option<Value>,
}

fn merge_json(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge_json(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

fn opts(preset: Preset) -> ClientOpts {
    ClientOpts {
        preset,
        folders: Vec::new(),
        root_uri: None,
        root_path: None,
        init_options: None,
        config: Value::Null,
        state_dir: None,
        env: Vec::new(),
        extra_caps: None,
    }
}

/// VS Code 1.9x: document changes with resource operations, progress, pull configuration,
/// UTF-16 positions only.
pub fn vscode() -> ClientOpts {
    opts(Preset::VsCode)
}

/// Neovim 0.11 (`vim.lsp.protocol.make_client_capabilities()`): applyEdit with resource
/// operations but no `documentChanges`, positions utf-8/utf-16/utf-32.
pub fn neovim() -> ClientOpts {
    opts(Preset::Neovim)
}

/// Helix 25.x in a folder without `.git`: `rootUri: null`, `workspaceFolders: []`, only
/// `rootPath`; positions utf-8 first.
pub fn helix() -> ClientOpts {
    opts(Preset::Helix)
}

/// A minimal client: no applyEdit, no documentChanges, no progress, no configuration.
pub fn bare() -> ClientOpts {
    opts(Preset::Bare)
}

impl ClientOpts {
    /// Adds a workspace folder (Helix: sets `rootPath`, as Helix does without `.git`).
    pub fn folder(mut self, p: &Path) -> Self {
        self.folders.push(p.to_path_buf());
        self
    }

    /// Sends exactly this `rootUri` (`None` → `null`).
    pub fn root_uri(mut self, p: Option<&Path>) -> Self {
        self.root_uri = Some(p.map(Path::to_path_buf));
        self
    }

    pub fn root_path(mut self, p: &Path) -> Self {
        self.root_path = Some(p.to_path_buf());
        self
    }

    pub fn init_options(mut self, v: Value) -> Self {
        self.init_options = Some(v);
        self
    }

    /// The value answered for the `builder` section of `workspace/configuration`.
    pub fn config(mut self, v: Value) -> Self {
        self.config = v;
        self
    }

    /// Conversation persistence directory (default: a fresh temp dir per server).
    pub fn state_dir(mut self, p: &Path) -> Self {
        self.state_dir = Some(p.to_path_buf());
        self
    }

    /// Client capabilities added to the preset's (e.g. `textDocument.inlineCompletion`).
    pub fn capabilities(mut self, v: Value) -> Self {
        self.extra_caps = Some(v);
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    /// Sandboxes keep their npm cache and folders under `cache`.
    pub fn sandbox_cache(self, cache: &Path) -> Self {
        self.env("BUILDER_CACHE_DIR", cache.to_str().expect("UTF-8 path"))
    }

    /// OpenAI at `base_url` (a fake) with `key`, and `openai/gpt-4.1` the default model.
    pub fn openai_at(self, base_url: &str, key: &str) -> Self {
        self.env("OPENAI_BASE_URL", base_url)
            .env("DEFAULT_AI_MODEL", "openai/gpt-4.1")
            .env("OPENAI_API_KEY", key)
    }

    fn folder_json(p: &Path) -> Value {
        json!({
            "uri": file_uri(p),
            "name": p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        })
    }

    /// The `initialize` params a real client of this kind sends.
    pub fn initialize_params(&self) -> Value {
        let first = self.folders.first();
        let (root_uri, root_path, folders): (Value, Value, Value) = match self.preset {
            Preset::Helix => {
                let rp = self
                    .root_path
                    .as_ref()
                    .or(first)
                    .map(|p| Value::String(p.display().to_string()))
                    .unwrap_or(Value::Null);
                (Value::Null, rp, json!([]))
            }
            _ => {
                let ru = first
                    .map(|p| Value::String(file_uri(p)))
                    .unwrap_or(Value::Null);
                let rp = self
                    .root_path
                    .as_ref()
                    .or(first)
                    .map(|p| Value::String(p.display().to_string()))
                    .unwrap_or(Value::Null);
                let f = if self.folders.is_empty() {
                    Value::Null
                } else {
                    Value::Array(self.folders.iter().map(|p| Self::folder_json(p)).collect())
                };
                (ru, rp, f)
            }
        };
        let root_uri = match &self.root_uri {
            Some(Some(p)) => Value::String(file_uri(p)),
            Some(None) => Value::Null,
            None => root_uri,
        };
        let (client_info, capabilities) = match self.preset {
            Preset::VsCode => (
                json!({"name": "Visual Studio Code", "version": "1.96.2"}),
                json!({
                    "workspace": {
                        "applyEdit": true,
                        "workspaceEdit": {
                            "documentChanges": true,
                            "resourceOperations": ["create", "rename", "delete"],
                            "failureHandling": "textOnlyTransactional",
                            "normalizesLineEndings": true,
                            "changeAnnotationSupport": {"groupsOnLabel": true}
                        },
                        "configuration": true,
                        "workspaceFolders": true,
                        "didChangeConfiguration": {"dynamicRegistration": true},
                        "executeCommand": {"dynamicRegistration": true},
                        "didChangeWatchedFiles": {"dynamicRegistration": true, "relativePatternSupport": true}
                    },
                    "textDocument": {
                        "synchronization": {"dynamicRegistration": true, "willSave": true, "willSaveWaitUntil": true, "didSave": true},
                        "codeAction": {
                            "dynamicRegistration": true,
                            "isPreferredSupport": true,
                            "codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["", "quickfix", "refactor", "refactor.rewrite", "source"]}}
                        },
                        "publishDiagnostics": {"relatedInformation": true, "versionSupport": false}
                    },
                    "window": {
                        "workDoneProgress": true,
                        "showMessage": {"messageActionItem": {"additionalPropertiesSupport": true}},
                        "showDocument": {"support": true}
                    },
                    "general": {
                        "positionEncodings": ["utf-16"],
                        "staleRequestSupport": {"cancel": true, "retryOnContentModified": []}
                    }
                }),
            ),
            Preset::Neovim => (
                json!({"name": "Neovim", "version": "0.11.0"}),
                json!({
                    "workspace": {
                        "applyEdit": true,
                        "workspaceEdit": {"resourceOperations": ["rename", "create", "delete"]},
                        "configuration": true,
                        "workspaceFolders": true,
                        "didChangeConfiguration": {"dynamicRegistration": false},
                        "semanticTokens": {"refreshSupport": true},
                        "inlayHint": {"refreshSupport": true}
                    },
                    "textDocument": {
                        "synchronization": {"dynamicRegistration": false, "willSave": true, "willSaveWaitUntil": true, "didSave": true},
                        "codeAction": {
                            "dynamicRegistration": true,
                            "isPreferredSupport": true,
                            "codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["", "quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite", "source", "source.organizeImports"]}}
                        }
                    },
                    "window": {
                        "workDoneProgress": true,
                        "showMessage": {"messageActionItem": {"additionalPropertiesSupport": true}},
                        "showDocument": {"support": true}
                    },
                    "general": {"positionEncodings": ["utf-8", "utf-16", "utf-32"]}
                }),
            ),
            Preset::Helix => (
                json!({"name": "helix", "version": "25.01.1"}),
                json!({
                    "workspace": {
                        "configuration": true,
                        "didChangeConfiguration": {"dynamicRegistration": false},
                        "workspaceFolders": true,
                        "applyEdit": true,
                        "executeCommand": {"dynamicRegistration": false},
                        "inlayHint": {"refreshSupport": false},
                        "workspaceEdit": {
                            "documentChanges": true,
                            "resourceOperations": ["create", "rename", "delete"],
                            "failureHandling": "abort",
                            "normalizesLineEndings": false
                        },
                        "didChangeWatchedFiles": {"dynamicRegistration": true, "relativePatternSupport": false}
                    },
                    "textDocument": {
                        "codeAction": {
                            "codeActionLiteralSupport": {"codeActionKind": {"valueSet": ["", "quickfix", "refactor", "refactor.extract", "refactor.inline", "refactor.rewrite", "source", "source.organizeImports"]}},
                            "isPreferredSupport": true,
                            "disabledSupport": true,
                            "dataSupport": true
                        },
                        "publishDiagnostics": {"versionSupport": true}
                    },
                    "window": {"workDoneProgress": true, "showDocument": {"support": true}},
                    "general": {"positionEncodings": ["utf-8", "utf-32", "utf-16"]}
                }),
            ),
            Preset::Bare => (
                json!({"name": "bare-client", "version": "0"}),
                json!({"workspace": {}, "textDocument": {}, "window": {}}),
            ),
        };
        let mut capabilities = capabilities;
        if let Some(extra) = &self.extra_caps {
            merge_json(&mut capabilities, extra);
        }
        let mut params = json!({
            "processId": std::process::id(),
            "clientInfo": client_info,
            "rootPath": root_path,
            "rootUri": root_uri,
            "workspaceFolders": folders,
            "capabilities": capabilities,
            "trace": "off",
            "locale": "en",
        });
        if let Some(o) = &self.init_options {
            params["initializationOptions"] = o.clone();
        }
        params
    }
}

// ---------------------------------------------------------------------------------------------
// The editor model
// ---------------------------------------------------------------------------------------------

/// How the client answers `workspace/applyEdit`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyBehavior {
    /// Apply it and answer `{applied: true}` (or `false` with a reason if it cannot).
    Apply,
    /// Answer `{applied: false, failureReason}` without applying anything.
    Refuse(String),
    /// Answer with a JSON-RPC error.
    Error(String),
    /// Wait this long, then apply.
    Delay(Duration),
    /// Like VS Code's refactor preview: every annotation id used must be declared in
    /// `changeAnnotations`; the files whose annotation label ends with one of these paths are
    /// unticked (their operations dropped), the rest is applied and the answer is
    /// `{applied: true}`.
    Review(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
    Utf32,
}

impl Encoding {
    fn units(self, c: char) -> usize {
        match self {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
            Encoding::Utf32 => 1,
        }
    }

    /// Length of `s` in code units of this encoding.
    pub fn len(self, s: &str) -> usize {
        s.chars().map(|c| self.units(c)).sum()
    }
}

#[derive(Clone, Debug)]
pub struct Doc {
    pub uri: String,
    pub text: String,
    pub version: i32,
}

/// One `workspace/applyEdit` the server sent, and what the client answered.
#[derive(Clone, Debug)]
pub struct EditRecord {
    pub params: Value,
    pub answer: Value,
    /// Lenient-but-suspicious things the client tolerated (positions clamped as the spec says).
    pub warnings: Vec<String>,
}

#[derive(Default)]
struct Inbox {
    /// Everything the server sent except responses, in order.
    messages: Vec<Value>,
    responses: HashMap<u64, Value>,
    edits: Vec<EditRecord>,
    /// `workspace/configuration` requests answered so far.
    config_answers: usize,
    closed: bool,
}

struct Shared {
    writer: Mutex<ChildStdin>,
    inbox: Mutex<Inbox>,
    cond: Condvar,
    docs: Mutex<HashMap<PathBuf, Doc>>,
    behavior: Mutex<ApplyBehavior>,
    config: Mutex<Value>,
    encoding: Mutex<Encoding>,
    stderr: Mutex<String>,
}

impl Shared {
    fn send(&self, msg: &Value) {
        let body = serde_json::to_vec(msg).expect("serializable");
        self.send_bytes(&body);
    }

    fn send_bytes(&self, body: &[u8]) {
        let mut w = lock(&self.writer);
        // A dead server shows up as a timeout or a closed inbox, with its stderr.
        let _ = write!(w, "Content-Length: {}\r\n\r\n", body.len());
        let _ = w.write_all(body);
        let _ = w.flush();
    }

    fn send_unframed(&self, bytes: &[u8]) {
        let mut w = lock(&self.writer);
        let _ = w.write_all(bytes);
        let _ = w.flush();
    }

    fn push(&self, f: impl FnOnce(&mut Inbox)) {
        let mut inbox = lock(&self.inbox);
        f(&mut inbox);
        self.cond.notify_all();
    }
}

/// Reads one framed message; `None` at end of stream.
fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len: Option<usize> = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            }
        }
    }
    let len = len.expect("server sent a message without Content-Length");
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    Some(serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!(
            "server sent invalid JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        )
    }))
}

fn reader_loop(shared: Arc<Shared>, stdout: std::process::ChildStdout) {
    let mut r = BufReader::new(stdout);
    while let Some(msg) = read_message(&mut r) {
        let method = msg
            .get("method")
            .and_then(Value::as_str)
            .map(str::to_string);
        match (method, msg.get("id").cloned()) {
            (None, Some(id)) => match id.as_u64() {
                Some(id) => shared.push(|i| {
                    i.responses.insert(id, msg);
                }),
                // `id: null`: an answer to a message the server could not parse.
                None => shared.push(|i| i.messages.push(msg)),
            },
            (Some(method), Some(id)) => {
                shared.push(|i| i.messages.push(msg.clone()));
                let params = msg.get("params").cloned().unwrap_or(Value::Null);
                if method == "workspace/applyEdit" {
                    // Answered off the reader thread, so a delayed answer blocks nothing else.
                    let s = shared.clone();
                    std::thread::spawn(move || answer_apply_edit(&s, id, params));
                } else {
                    answer_request(&shared, id, &method, &params);
                }
            }
            (Some(_), None) => shared.push(|i| i.messages.push(msg)),
            (None, None) => panic!("server sent a message with neither id nor method: {msg}"),
        }
    }
    shared.push(|i| i.closed = true);
}

fn answer_request(shared: &Shared, id: Value, method: &str, params: &Value) {
    let result = match method {
        "workspace/configuration" => {
            let cfg = lock(&shared.config).clone();
            let items = params
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Value::Array(
                items
                    .iter()
                    .map(|it| match it.get("section").and_then(Value::as_str) {
                        Some("builder") => cfg.clone(),
                        Some(s) if s.starts_with("builder.") => {
                            let mut v = &cfg;
                            for k in s["builder.".len()..].split('.') {
                                v = v.get(k).unwrap_or(&Value::Null);
                            }
                            v.clone()
                        }
                        None => json!({ "builder": cfg }),
                        _ => Value::Null,
                    })
                    .collect(),
            )
        }
        "window/showDocument" => json!({"success": true}),
        // window/workDoneProgress/create, client/registerCapability, and anything else.
        _ => Value::Null,
    };
    shared.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
    if method == "workspace/configuration" {
        shared.push(|i| i.config_answers += 1);
    }
}

fn answer_apply_edit(shared: &Shared, id: Value, params: Value) {
    let behavior = lock(&shared.behavior).clone();
    let (answer, warnings, error): (Value, Vec<String>, Option<String>) = match behavior {
        ApplyBehavior::Refuse(reason) => (
            json!({"applied": false, "failureReason": reason}),
            vec![],
            None,
        ),
        ApplyBehavior::Error(message) => (Value::Null, vec![], Some(message)),
        ApplyBehavior::Review(untick) => {
            let edit = params.get("edit").cloned().unwrap_or(Value::Null);
            match untick_in_preview(&edit, &untick)
                .and_then(|kept| apply_workspace_edit(shared, &kept))
            {
                Ok(warnings) => (json!({"applied": true}), warnings, None),
                Err(reason) => (
                    json!({"applied": false, "failureReason": reason}),
                    vec![],
                    None,
                ),
            }
        }
        ApplyBehavior::Apply | ApplyBehavior::Delay(_) => {
            if let ApplyBehavior::Delay(d) = behavior {
                std::thread::sleep(d);
            }
            let edit = params.get("edit").cloned().unwrap_or(Value::Null);
            match apply_workspace_edit(shared, &edit) {
                Ok(warnings) => (json!({"applied": true}), warnings, None),
                Err(reason) => (
                    json!({"applied": false, "failureReason": reason}),
                    vec![],
                    None,
                ),
            }
        }
    };
    let record = EditRecord {
        params,
        answer: error
            .as_ref()
            .map(|m| json!({"error": m}))
            .unwrap_or_else(|| answer.clone()),
        warnings,
    };
    // Recorded before answering, so a test that has the server's answer sees the record.
    shared.push(|i| i.edits.push(record));
    match error {
        Some(message) => shared.send(&json!({
            "jsonrpc": "2.0", "id": id,
            "error": {"code": -32603, "message": message}
        })),
        None => shared.send(&json!({"jsonrpc": "2.0", "id": id, "result": answer})),
    }
}

/// Byte spans `(start, content_end)` of each line; LSP line breaks are `\n`, `\r\n` and `\r`.
fn line_spans(text: &str) -> Vec<(usize, usize)> {
    let b = text.as_bytes();
    let mut spans = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\n' => {
                spans.push((start, i));
                i += 1;
                start = i;
            }
            b'\r' => {
                spans.push((start, i));
                i += if b.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            }
            _ => i += 1,
        }
    }
    spans.push((start, b.len()));
    spans
}

/// Byte offset of an LSP position. Past-the-end lines and characters are clamped, as the
/// protocol says, but noted in `warnings` (a correct server never needs the clamp); a position
/// inside a character is refused.
fn offset_of(
    text: &str,
    spans: &[(usize, usize)],
    pos: &Value,
    enc: Encoding,
    warnings: &mut Vec<String>,
) -> Result<usize, String> {
    let line = pos
        .get("line")
        .and_then(Value::as_u64)
        .ok_or("position without line")? as usize;
    let character = pos
        .get("character")
        .and_then(Value::as_u64)
        .ok_or("position without character")? as usize;
    let Some(&(start, end)) = spans.get(line) else {
        warnings.push(format!(
            "line {line} is past the last line ({}); clamped",
            spans.len() - 1
        ));
        return Ok(text.len());
    };
    let mut units = 0;
    for (off, c) in text[start..end].char_indices() {
        if units == character {
            return Ok(start + off);
        }
        if units > character {
            return Err(format!(
                "position {line}:{character} falls inside a character ({enc:?})"
            ));
        }
        units += enc.units(c);
    }
    if units == character {
        return Ok(end);
    }
    if units > character {
        return Err(format!(
            "position {line}:{character} falls inside a character ({enc:?})"
        ));
    }
    warnings.push(format!(
        "position {line}:{character} is past the end of the line (length {units} in {enc:?}); clamped"
    ));
    Ok(end)
}

/// Applies a list of `TextEdit`s (all relative to `text`).
pub fn apply_text_edits(
    text: &str,
    edits: &[Value],
    enc: Encoding,
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    let spans = line_spans(text);
    let mut resolved: Vec<(usize, usize, usize, String)> = Vec::new();
    for (n, e) in edits.iter().enumerate() {
        let range = e.get("range").ok_or("text edit without range")?;
        let s = offset_of(text, &spans, &range["start"], enc, warnings)?;
        let t = offset_of(text, &spans, &range["end"], enc, warnings)?;
        if t < s {
            return Err(format!("text edit {n}: end before start"));
        }
        let new_text = e
            .get("newText")
            .and_then(Value::as_str)
            .ok_or("text edit without newText")?;
        resolved.push((s, t, n, new_text.to_string()));
    }
    resolved.sort_by_key(|r| (r.0, r.2));
    for w in resolved.windows(2) {
        if w[0].1 > w[1].0 {
            return Err("overlapping text edits".into());
        }
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, t, _, new_text) in &resolved {
        out.push_str(&text[at..*s]);
        out.push_str(new_text);
        at = *t;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// Validates the whole edit against a staged view, then applies it; nothing changes on error.
/// The edit as a preview leaves it after the user unticked the files whose annotation label
/// ends with one of `untick`. Errors on an annotation id that is not declared.
fn untick_in_preview(edit: &Value, untick: &[String]) -> Result<Value, String> {
    let declared = edit
        .get("changeAnnotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let dropped: Vec<String> = declared
        .iter()
        .filter(|(_, a)| {
            a["label"]
                .as_str()
                .is_some_and(|l| untick.iter().any(|u| l.ends_with(u.as_str())))
        })
        .map(|(id, _)| id.clone())
        .collect();
    let check = |id: &Value| -> Result<bool, String> {
        match id.as_str() {
            None => Ok(false),
            Some(id) if declared.contains_key(id) => Ok(dropped.iter().any(|d| d == id)),
            Some(id) => Err(format!("annotation `{id}` is not declared")),
        }
    };
    let mut kept = Vec::new();
    for op in edit
        .get("documentChanges")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
    {
        if op.get("kind").is_some() {
            if !check(&op["annotationId"])? {
                kept.push(op);
            }
            continue;
        }
        let mut op = op;
        let mut edits = Vec::new();
        for e in op["edits"].as_array().cloned().unwrap_or_default() {
            if !check(&e["annotationId"])? {
                edits.push(e);
            }
        }
        if !edits.is_empty() {
            op["edits"] = Value::Array(edits);
            kept.push(op);
        }
    }
    let mut out = edit.clone();
    out["documentChanges"] = Value::Array(kept);
    Ok(out)
}

fn apply_workspace_edit(shared: &Shared, edit: &Value) -> Result<Vec<String>, String> {
    let enc = *lock(&shared.encoding);
    let mut warnings = Vec::new();
    let mut changed_open: Vec<(String, i32, String)> = Vec::new();
    {
        let mut docs = lock(&shared.docs);
        // path → Some(text) (exists with this text) | None (deleted / absent)
        let mut staged: BTreeMap<PathBuf, Option<String>> = BTreeMap::new();
        let current = |staged: &BTreeMap<PathBuf, Option<String>>,
                       docs: &HashMap<PathBuf, Doc>,
                       p: &Path|
         -> Option<String> {
            if let Some(s) = staged.get(p) {
                return s.clone();
            }
            if let Some(d) = docs.get(p) {
                return Some(d.text.clone());
            }
            if p.is_dir() {
                return Some(String::new());
            }
            std::fs::read(p)
                .ok()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
        };

        let mut ops: Vec<Value> = Vec::new();
        if let Some(dc) = edit.get("documentChanges").filter(|v| !v.is_null()) {
            ops.extend(
                dc.as_array()
                    .ok_or("documentChanges is not an array")?
                    .iter()
                    .cloned(),
            );
        } else if let Some(ch) = edit.get("changes").filter(|v| !v.is_null()) {
            for (uri, edits) in ch.as_object().ok_or("changes is not an object")? {
                ops.push(json!({"textDocument": {"uri": uri, "version": null}, "edits": edits}));
            }
        }

        for op in &ops {
            let opt = |k: &str| {
                op.get("options")
                    .and_then(|o| o.get(k))
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            };
            match op.get("kind").and_then(Value::as_str) {
                Some("create") => {
                    let p = uri_path(op["uri"].as_str().ok_or("create without uri")?);
                    if current(&staged, &docs, &p).is_some() {
                        if opt("overwrite") {
                        } else if opt("ignoreIfExists") {
                            continue;
                        } else {
                            return Err(format!(
                                "cannot create {}: it already exists",
                                p.display()
                            ));
                        }
                    }
                    staged.insert(p, Some(String::new()));
                }
                Some("rename") => {
                    let from = uri_path(op["oldUri"].as_str().ok_or("rename without oldUri")?);
                    let to = uri_path(op["newUri"].as_str().ok_or("rename without newUri")?);
                    if docs.contains_key(&from) {
                        return Err("the harness does not rename open documents".into());
                    }
                    let text = current(&staged, &docs, &from).ok_or_else(|| {
                        format!("cannot rename {}: it does not exist", from.display())
                    })?;
                    if current(&staged, &docs, &to).is_some() && !opt("overwrite") {
                        if opt("ignoreIfExists") {
                            continue;
                        }
                        return Err(format!("cannot rename to {}: it exists", to.display()));
                    }
                    staged.insert(from, None);
                    staged.insert(to, Some(text));
                }
                Some("delete") => {
                    let p = uri_path(op["uri"].as_str().ok_or("delete without uri")?);
                    if current(&staged, &docs, &p).is_none() && !opt("ignoreIfNotExists") {
                        return Err(format!("cannot delete {}: it does not exist", p.display()));
                    }
                    staged.insert(p, None);
                }
                Some(other) => return Err(format!("unknown resource operation {other}")),
                None => {
                    let td = op
                        .get("textDocument")
                        .ok_or("document change without textDocument")?;
                    let p = uri_path(td["uri"].as_str().ok_or("textDocument without uri")?);
                    if let Some(v) = td.get("version").and_then(Value::as_i64) {
                        match docs.get(&p) {
                            Some(d) if i64::from(d.version) == v => {}
                            Some(d) => {
                                return Err(format!(
                                "{}: the edit is for version {v} but the document is at version {}",
                                p.display(),
                                d.version
                            ))
                            }
                            None => {
                                return Err(format!(
                                    "{}: versioned edit for a document that is not open",
                                    p.display()
                                ))
                            }
                        }
                    }
                    let text = current(&staged, &docs, &p)
                        .ok_or_else(|| format!("cannot edit {}: it does not exist", p.display()))?;
                    let edits = op
                        .get("edits")
                        .and_then(Value::as_array)
                        .ok_or("edit without edits")?;
                    let new = apply_text_edits(&text, edits, enc, &mut warnings)?;
                    staged.insert(p, Some(new));
                }
            }
        }

        // Validation passed: commit.
        for (p, content) in staged {
            if let Some(doc) = docs.get_mut(&p) {
                match content {
                    Some(t) => {
                        if t != doc.text {
                            doc.text = t;
                            doc.version += 1;
                            changed_open.push((doc.uri.clone(), doc.version, doc.text.clone()));
                        }
                    }
                    None => {
                        docs.remove(&p);
                        let _ = std::fs::remove_file(&p);
                    }
                }
            } else {
                match content {
                    Some(t) => {
                        if let Some(parent) = p.parent() {
                            std::fs::create_dir_all(parent)
                                .map_err(|e| format!("{}: {e}", parent.display()))?;
                        }
                        std::fs::write(&p, t).map_err(|e| format!("{}: {e}", p.display()))?;
                    }
                    None => {
                        let _ = std::fs::remove_file(&p);
                    }
                }
            }
        }
    }
    // Like an editor, tell the server about the changed buffers.
    for (uri, version, text) in changed_open {
        shared.send(&json!({
            "jsonrpc": "2.0",
            "method": "textDocument/didChange",
            "params": {
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"text": text}]
            }
        }));
    }
    Ok(warnings)
}

// ---------------------------------------------------------------------------------------------
// The server under test
// ---------------------------------------------------------------------------------------------

pub struct TestServer {
    child: Mutex<Option<Child>>,
    shared: Arc<Shared>,
    next_id: AtomicU64,
    /// The `initialize` result.
    pub init: Value,
    pub opts: ClientOpts,
    /// Where the server keeps conversations (`BUILDER_STATE_DIR`).
    pub state_dir: PathBuf,
    _state_tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Spawns the binary, runs `initialize` / `initialized`, and returns the live server.
    /// Starts a server, opens `path` in the editor with `text` and waits until the server has
    /// read the open.
    pub fn start_with_open(opts: ClientOpts, path: &Path, text: &str) -> TestServer {
        let s = TestServer::start(opts);
        s.open(path, text);
        s.sync();
        s
    }

    pub fn start(opts: ClientOpts) -> TestServer {
        let (state_dir, state_tmp) = match &opts.state_dir {
            Some(p) => (p.clone(), None),
            None => {
                let t = tempfile::tempdir().expect("temp dir");
                (t.path().to_path_buf(), Some(t))
            }
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_builder-lsp"));
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("BUILDER_STATE_DIR", &state_dir)
            .env("BUILDER_LOG", "info")
            .env_remove("BUILDER_MAX_RESPONSE_BYTES");
        // Never use the developer's real providers: only what a test sets explicitly.
        for var in [
            "ANTHROPIC_API_KEY",
            "OPENAI_API_KEY",
            "GEMINI_API_KEY",
            "GROQ_API_KEY",
            "OPENROUTER_API_KEY",
            "COMPATIBLE_API_KEY",
            "ANTHROPIC_BASE_URL",
            "OPENAI_BASE_URL",
            "GEMINI_BASE_URL",
            "GROQ_BASE_URL",
            "OPENROUTER_BASE_URL",
            "OLLAMA_BASE_URL",
            "COMPATIBLE_BASE_URL",
            "DEFAULT_AI_MODEL",
            "E2B_API_KEY",
            "E2B_API_URL",
            "E2B_DOMAIN",
            "E2B_SANDBOX_URL",
            "VERCEL_TOKEN",
            "VERCEL_TEAM_ID",
            "VERCEL_PROJECT_ID",
            "VERCEL_OIDC_TOKEN",
            "VERCEL_API_URL",
            "BUILDER_SANDBOX_PROVIDER",
            "SANDBOX_PROVIDER",
            "BUILDER_CACHE_DIR",
            "BUILDER_COMPLETION_MODEL",
            "LLAMACPP_BASE_URL",
            "LLAMACPP_API_KEY",
            "MISTRAL_BASE_URL",
            "MISTRAL_API_KEY",
            "CODESTRAL_API_KEY",
            "DEEPSEEK_BASE_URL",
            "DEEPSEEK_API_KEY",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn builder-lsp");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let shared = Arc::new(Shared {
            writer: Mutex::new(stdin),
            inbox: Mutex::new(Inbox::default()),
            cond: Condvar::new(),
            docs: Mutex::new(HashMap::new()),
            behavior: Mutex::new(ApplyBehavior::Apply),
            config: Mutex::new(opts.config.clone()),
            encoding: Mutex::new(Encoding::Utf16),
            stderr: Mutex::new(String::new()),
        });
        {
            let s = shared.clone();
            std::thread::spawn(move || reader_loop(s, stdout));
        }
        {
            let s = shared.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(stderr);
                let mut line = String::new();
                while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    lock(&s.stderr).push_str(&line);
                    line.clear();
                }
            });
        }
        let mut server = TestServer {
            child: Mutex::new(Some(child)),
            shared,
            next_id: AtomicU64::new(1),
            init: Value::Null,
            opts: opts.clone(),
            state_dir,
            _state_tmp: state_tmp,
        };
        let init = server
            .request("initialize", opts.initialize_params())
            .unwrap_or_else(|e| panic!("initialize failed: {e}"));
        let enc = match init
            .pointer("/capabilities/positionEncoding")
            .and_then(Value::as_str)
            .unwrap_or("utf-16")
        {
            "utf-8" => Encoding::Utf8,
            "utf-32" => Encoding::Utf32,
            _ => Encoding::Utf16,
        };
        *lock(&server.shared.encoding) = enc;
        server.init = init;
        server.notify("initialized", json!({}));
        server
    }

    /// Sends a request and waits for its answer: `Ok(result)` or `Err(error object)`.
    pub fn request(&self, method: &str, params: Value) -> Result<Value, Value> {
        let slow = method == "workspace/executeCommand"
            && params["command"]
                .as_str()
                .is_some_and(|c| SLOW_COMMANDS.contains(&c));
        let id = self.send_request(method, params);
        if slow {
            self.wait_response_within(id, method, SLOW_REQUEST_TIMEOUT)
        } else {
            self.wait_response(id, method)
        }
    }

    /// Like [`TestServer::wait_response`] with another limit.
    pub fn wait_response_within(
        &self,
        id: u64,
        what: &str,
        limit: Duration,
    ) -> Result<Value, Value> {
        self.wait_response_or_closed_within(id, what, limit)
            .unwrap_or_else(|| {
                panic!(
                    "server closed its output while `{what}` waited\nstderr:\n{}",
                    self.stderr()
                )
            })
    }

    /// Sends a request without waiting; see [`TestServer::wait_response`].
    pub fn send_request(&self, method: &str, params: Value) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared
            .send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    pub fn wait_response(&self, id: u64, what: &str) -> Result<Value, Value> {
        self.wait_response_or_closed(id, what).unwrap_or_else(|| {
            panic!(
                "server closed its output while `{what}` waited\nstderr:\n{}",
                self.stderr()
            )
        })
    }

    /// Like [`TestServer::request`], but `None` if the server has closed its output.
    pub fn try_request(&self, method: &str, params: Value) -> Option<Result<Value, Value>> {
        let id = self.send_request(method, params);
        self.wait_response_or_closed(id, method)
    }

    fn wait_response_or_closed(&self, id: u64, what: &str) -> Option<Result<Value, Value>> {
        self.wait_response_or_closed_within(id, what, REQUEST_TIMEOUT)
    }

    fn wait_response_or_closed_within(
        &self,
        id: u64,
        what: &str,
        limit: Duration,
    ) -> Option<Result<Value, Value>> {
        let deadline = Instant::now() + limit;
        let mut inbox = lock(&self.shared.inbox);
        loop {
            if let Some(msg) = inbox.responses.remove(&id) {
                return Some(match msg.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(msg.get("result").cloned().unwrap_or(Value::Null)),
                });
            }
            if inbox.closed {
                return None;
            }
            let now = Instant::now();
            if now >= deadline {
                drop(inbox);
                panic!(
                    "no answer to `{what}` within {limit:?}\nstderr:\n{}",
                    self.stderr()
                );
            }
            inbox = self
                .shared
                .cond
                .wait_timeout(inbox, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn notify(&self, method: &str, params: Value) {
        self.shared
            .send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Writes raw bytes as one framed message body (for malformed-input tests).
    pub fn send_raw(&self, body: &[u8]) {
        self.shared.send_bytes(body);
    }

    /// Writes raw bytes with no framing at all (bad headers).
    pub fn send_raw_frame(&self, bytes: &[u8]) {
        self.shared.send_unframed(bytes);
    }

    /// `workspace/executeCommand` with `arguments: [args]`.
    pub fn execute(&self, command: &str, args: Value) -> Result<Value, Value> {
        self.request(
            "workspace/executeCommand",
            json!({"command": command, "arguments": [args]}),
        )
    }

    /// Like [`TestServer::execute`], with a client `workDoneToken`.
    pub fn execute_with_token(
        &self,
        command: &str,
        args: Value,
        token: &str,
    ) -> Result<Value, Value> {
        self.request(
            "workspace/executeCommand",
            json!({"command": command, "arguments": [args], "workDoneToken": token}),
        )
    }

    /// `workspace/executeCommand` with exactly these `arguments` (any JSON, or absent).
    pub fn execute_raw(&self, command: &str, arguments: Option<Value>) -> Result<Value, Value> {
        let mut params = json!({ "command": command });
        if let Some(a) = arguments {
            params["arguments"] = a;
        }
        self.request("workspace/executeCommand", params)
    }

    /// `builder.sandbox.create` with these arguments; panics (with the server's stderr) on an
    /// error.
    pub fn create_sandbox(&self, args: Value) -> Value {
        self.execute("builder.sandbox.create", args)
            .unwrap_or_else(|e| panic!("create failed: {e}\n{}", self.stderr()))
    }

    /// `builder.sandbox.check {}`; panics (with the server's stderr) on an error.
    pub fn check_sandbox(&self) -> Value {
        self.execute("builder.sandbox.check", json!({}))
            .unwrap_or_else(|e| panic!("check failed: {e}\n{}", self.stderr()))
    }

    /// `builder.generate {prompt, wait: true}`; panics on a JSON-RPC error.
    pub fn generate(&self, prompt: &str) -> Value {
        self.execute("builder.generate", json!({"prompt": prompt, "wait": true}))
            .unwrap_or_else(|e| panic!("builder.generate failed: {e}\nstderr:\n{}", self.stderr()))
    }

    /// `workspace/executeCommand` that must fail with InvalidParams (-32602); the error.
    pub fn invalid_params(&self, command: &str, args: Value) -> Value {
        let e = self
            .execute(command, args)
            .expect_err("InvalidParams expected");
        assert_eq!(code(&e), -32602, "{command}: {e}");
        e
    }

    /// `builder.apply` with `wait: true`; panics on a JSON-RPC error.
    pub fn apply(&self, response: &str) -> Value {
        self.apply_with(json!({ "response": response }))
    }

    /// `builder.apply` with extra arguments (`wait: true` unless given); panics on error.
    pub fn apply_with(&self, mut args: Value) -> Value {
        if args.get("wait").is_none() {
            args["wait"] = json!(true);
        }
        self.execute("builder.apply", args)
            .unwrap_or_else(|e| panic!("builder.apply failed: {e}\nstderr:\n{}", self.stderr()))
    }

    /// A cheap round trip: the server has read everything sent before it.
    pub fn sync(&self) {
        let _ = self.request("builder/harnessPing", json!({}));
    }

    // --- documents ---------------------------------------------------------------------------

    fn language_id(path: &Path) -> &'static str {
        match path.extension().and_then(|e| e.to_str()) {
            Some("js") | Some("mjs") | Some("cjs") => "javascript",
            Some("jsx") => "javascriptreact",
            Some("ts") => "typescript",
            Some("tsx") => "typescriptreact",
            Some("css") => "css",
            Some("html") => "html",
            Some("json") => "json",
            _ => "plaintext",
        }
    }

    /// Opens `path` in the "editor" with `text` (which may differ from the disk), version 1.
    pub fn open(&self, path: &Path, text: &str) {
        let uri = file_uri(path);
        lock(&self.shared.docs).insert(
            path.to_path_buf(),
            Doc {
                uri: uri.clone(),
                text: text.to_string(),
                version: 1,
            },
        );
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": Self::language_id(path), "version": 1, "text": text}}),
        );
    }

    /// Replaces the whole buffer text (unsaved), bumping the version; returns the new version.
    pub fn change(&self, path: &Path, text: &str) -> i32 {
        let (uri, version) = {
            let mut docs = lock(&self.shared.docs);
            let d = docs.get_mut(path).expect("change: document not open");
            d.text = text.to_string();
            d.version += 1;
            (d.uri.clone(), d.version)
        };
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
        version
    }

    /// An incremental change (`range` in the negotiated encoding).
    pub fn change_range(&self, path: &Path, range: Value, new_text: &str) -> i32 {
        let enc = self.encoding();
        let (uri, version) = {
            let mut docs = lock(&self.shared.docs);
            let d = docs.get_mut(path).expect("change_range: document not open");
            let mut w = Vec::new();
            d.text = apply_text_edits(
                &d.text,
                &[json!({"range": range, "newText": new_text})],
                enc,
                &mut w,
            )
            .expect("valid incremental change");
            d.version += 1;
            (d.uri.clone(), d.version)
        };
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"range": range, "text": new_text}]}),
        );
        version
    }

    pub fn close(&self, path: &Path) {
        let uri = file_uri(path);
        lock(&self.shared.docs).remove(path);
        self.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri}}),
        );
    }

    /// The editor's text of an open document.
    pub fn doc_text(&self, path: &Path) -> Option<String> {
        lock(&self.shared.docs).get(path).map(|d| d.text.clone())
    }

    pub fn doc_version(&self, path: &Path) -> Option<i32> {
        lock(&self.shared.docs).get(path).map(|d| d.version)
    }

    // --- client behaviour --------------------------------------------------------------------

    pub fn set_apply_behavior(&self, b: ApplyBehavior) {
        *lock(&self.shared.behavior) = b;
    }

    /// Changes what `workspace/configuration` answers from now on.
    pub fn set_config(&self, v: Value) {
        *lock(&self.shared.config) = v;
    }

    pub fn encoding(&self) -> Encoding {
        *lock(&self.shared.encoding)
    }

    // --- observations ------------------------------------------------------------------------

    /// Every notification and request the server sent so far, in order.
    pub fn messages(&self) -> Vec<Value> {
        lock(&self.shared.inbox).messages.clone()
    }

    /// Messages with this method.
    pub fn messages_of(&self, method: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m.get("method").and_then(Value::as_str) == Some(method))
            .collect()
    }

    /// Every `workspace/applyEdit` the server sent, with the client's answer.
    pub fn edits(&self) -> Vec<EditRecord> {
        lock(&self.shared.inbox).edits.clone()
    }

    /// `$/progress` values for one token, in order.
    pub fn progress(&self, token: &str) -> Vec<Value> {
        self.messages_of("$/progress")
            .into_iter()
            .filter(|m| m["params"]["token"] == json!(token))
            .map(|m| m["params"]["value"].clone())
            .collect()
    }

    /// The progress on `token` once its `end` has arrived. tower-lsp-server merges responses and
    /// notifications in no fixed order, so a `wait: true` answer may overtake the `end` that the
    /// server sent before it.
    pub fn progress_ended(&self, token: &str) -> Vec<Value> {
        let ended = |m: &[Value]| {
            m.iter().any(|m| {
                m["method"] == json!("$/progress")
                    && m["params"]["token"] == json!(token)
                    && m["params"]["value"]["kind"] == json!("end")
            })
        };
        assert!(
            self.wait_for(ended, Duration::from_secs(5)),
            "no progress end on {token}: {:?}",
            self.progress(token)
        );
        self.progress(token)
    }

    pub fn config_answers(&self) -> usize {
        lock(&self.shared.inbox).config_answers
    }

    /// Waits until the server has sent a message with this method.
    pub fn wait_for_method(&self, method: &str, timeout: Duration) -> bool {
        self.wait_for(|m| m.iter().any(|m| m["method"] == json!(method)), timeout)
    }

    /// Waits until `pred` holds over the messages received so far.
    pub fn wait_for(&self, pred: impl Fn(&[Value]) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut inbox = lock(&self.shared.inbox);
        loop {
            if pred(&inbox.messages) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline || inbox.closed {
                return pred(&inbox.messages);
            }
            inbox = self
                .shared
                .cond
                .wait_timeout(inbox, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits until the client has answered `n` `workspace/configuration` requests, then gives
    /// the server a moment to store the settings.
    pub fn wait_config_answers(&self, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.config_answers() >= n {
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the server asked for workspace/configuration {} time(s), expected {n}",
                self.config_answers()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        lock(&self.shared.stderr).clone()
    }

    pub fn assert_no_panic(&self) {
        let err = self.stderr();
        assert!(!err.contains("panicked"), "the server panicked:\n{err}");
    }

    /// Whether the process is still running.
    pub fn is_running(&self) -> bool {
        let mut c = lock(&self.child);
        match c.as_mut() {
            Some(ch) => matches!(ch.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// `shutdown` then `exit`; asserts the process exits with status 0 within 5 s.
    pub fn shutdown(self) {
        let r = self.request("shutdown", Value::Null);
        assert_eq!(r, Ok(Value::Null), "shutdown answer");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let status = {
                let mut c = lock(&self.child);
                c.as_mut().expect("child").try_wait().expect("try_wait")
            };
            if let Some(st) = status {
                assert!(
                    st.success(),
                    "server exited with {st}\nstderr:\n{}",
                    self.stderr()
                );
                lock(&self.child).take();
                self.assert_no_panic();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "server still running 5 s after exit\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut c) = lock(&self.child).take() {
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// File-system helpers
// ---------------------------------------------------------------------------------------------

/// A fresh temporary folder, and a server for `opts` with it as the workspace folder.
pub fn server_in_tempdir(opts: ClientOpts) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let s = TestServer::start(opts.folder(dir.path()));
    (dir, s)
}

/// A VS Code server on a fresh folder whose sandboxes cache under a fresh folder of their own,
/// with `configure` applied to its options: (folder, cache, server).
pub fn sandbox_server(
    configure: impl FnOnce(ClientOpts) -> ClientOpts,
) -> (tempfile::TempDir, tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = tempfile::tempdir().expect("temp dir");
    let opts = vscode().folder(dir.path()).sandbox_cache(cache.path());
    let s = TestServer::start(configure(opts));
    (dir, cache, s)
}

/// A fresh temporary folder holding `files` (`(rel, content)`), and a server for `opts` with it
/// as the workspace folder.
pub fn server_with_files(
    opts: ClientOpts,
    files: &[(&str, &str)],
) -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("temp dir");
    write_files(dir.path(), files);
    let s = TestServer::start(opts.folder(dir.path()));
    (dir, s)
}

/// Writes `content` at `root/rel`, creating folders.
pub fn write_file(root: &Path, rel: &str, content: &str) -> PathBuf {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("create dirs");
    }
    std::fs::write(&p, content).expect("write file");
    p
}

/// Writes each `(rel, content)` under `root`, creating folders.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    for (rel, content) in files {
        write_file(root, rel, content);
    }
}

pub fn read(root: &Path, rel: &str) -> String {
    std::fs::read_to_string(root.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// What is in a tree, without following symlinks: relative path → file bytes, `dir`, or
/// `-> target` for links.
pub fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                let t = std::fs::read_link(&p)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                out.insert(rel, format!("-> {t}"));
            } else if meta.is_dir() {
                out.insert(format!("{rel}/"), "dir".into());
                walk(root, &p, out);
            } else {
                let bytes = std::fs::read(&p).unwrap_or_default();
                out.insert(rel, String::from_utf8_lossy(&bytes).into_owned());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The `path`s of a result's `filesSkipped`.
pub fn skipped_paths(result: &Value) -> Vec<String> {
    result["filesSkipped"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["path"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The reason given for `path` in `filesSkipped`.
pub fn skip_reason(result: &Value, path: &str) -> Option<String> {
    result["filesSkipped"]
        .as_array()?
        .iter()
        .find(|s| s["path"] == json!(path))
        .and_then(|s| s["reason"].as_str().map(String::from))
}

/// `path` is in the result's `filesSkipped`, with a reason that says `because`.
pub fn assert_skipped(result: &Value, path: &str, because: &str) {
    let reason =
        skip_reason(result, path).unwrap_or_else(|| panic!("{path} not skipped: {result}"));
    assert!(reason.contains(because), "{path}: {reason}");
}

/// The checkpoint id a result names (`apply`, `revert`, `generate`).
pub fn checkpoint(result: &Value) -> String {
    result["checkpoint"]
        .as_str()
        .unwrap_or_else(|| panic!("no checkpoint in {result}"))
        .to_string()
}

/// A string array field as `Vec<String>`.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The diagnostics of the last `textDocument/publishDiagnostics` for `uri` among `messages`.
pub fn latest_diagnostics(messages: &[Value], uri: &str) -> Option<Vec<Value>> {
    messages
        .iter()
        .rfind(|m| {
            m["method"] == json!("textDocument/publishDiagnostics")
                && m["params"]["uri"] == json!(uri)
        })
        .map(|m| {
            m["params"]["diagnostics"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
}

/// A string array field, sorted.
pub fn sorted_strings(v: &Value) -> Vec<String> {
    let mut out = strings(v);
    out.sort();
    out
}

/// Whether the string array `field` of `result` holds `item`.
pub fn lists(result: &Value, field: &str, item: &str) -> bool {
    strings(&result[field]).iter().any(|s| s == item)
}

/// Whether some entry of a result's `errors` names `path`.
pub fn errors_name(result: &Value, path: &str) -> bool {
    strings(&result["errors"]).iter().any(|e| e.contains(path))
}

/// `<file path="…">` block whose parsed content is exactly `content` (which should end in
/// one newline).
pub fn file_block(path: &str, content: &str) -> String {
    format!("<file path=\"{path}\">\n{content}</file>\n")
}

/// An error object's code.
pub fn code(e: &Value) -> i64 {
    e["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("error without code: {e}"))
}

pub fn message(e: &Value) -> String {
    e["message"].as_str().unwrap_or_default().to_string()
}

/// A JSON object with these keys, for building arguments.
pub fn obj(pairs: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), v.clone());
    }
    Value::Object(m)
}

/// The `sandbox` init options of the real-npm tests: the local sandbox without isolation,
/// and no preview opened in a browser.
pub fn local_sandbox_options() -> Value {
    json!({"sandbox": {"isolation": "none", "openPreview": false}})
}

/// Whether some `$/progress` value's string `field` (`title`, `message`) satisfies `pred`.
pub fn progress_says(progress: &[Value], field: &str, pred: impl Fn(&str) -> bool) -> bool {
    progress
        .iter()
        .any(|p| p[field].as_str().is_some_and(&pred))
}

/// The runtime error with this message in a `builder.sandbox.check` answer.
pub fn runtime_error<'a>(check: &'a Value, message: &str) -> &'a Value {
    check["runtime"]
        .as_array()
        .and_then(|r| r.iter().find(|e| e["message"] == json!(message)))
        .unwrap_or_else(|| panic!("no render error {message:?} in {check:#}"))
}

/// Fails unless Debian's headless `chromium` runs (the browser checks need it).
pub fn assert_chromium() {
    assert!(
        std::process::Command::new("chromium")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "this test needs Debian's `chromium` (installed by .ci/run)"
    );
}

/// Whether the npm registry answers (the real-npm tests say SKIPPED and return when not).
pub fn registry_answers() -> bool {
    match std::process::Command::new("npm")
        .args(["view", "vite", "version"])
        .output()
    {
        Ok(o) if o.status.success() => true,
        other => {
            eprintln!("SKIPPED: no npm registry answers (`npm view vite` failed: {other:?})");
            false
        }
    }
}
