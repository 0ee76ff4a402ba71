//! `workspace/executeCommand`: one enum feeds the advertised list and the router; one handler
//! module per command family. Arguments are one JSON object; unknown fields are refused.

pub mod apply;
mod conversation;
pub mod generate;
pub mod history;
mod models;
mod packages;
mod preview;
mod review;
pub mod sandbox;
pub mod schema;
mod task;
mod zip;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;

use super::progress::Progress;
use super::{token_key, Backend};
use crate::events::Reporter;
use crate::project::Project;
use crate::tasks::{Task, TaskState};

macro_rules! commands {
    ($($variant:ident => $name:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Command { $($variant),* }
        impl Command {
            pub const ALL: &'static [Command] = &[$(Command::$variant),*];
            pub fn name(self) -> &'static str {
                match self { $(Command::$variant => $name),* }
            }
            pub fn from_name(s: &str) -> Option<Self> {
                match s { $($name => Some(Command::$variant),)* _ => None }
            }
        }
    };
}

commands! {
    Generate => "builder.generate";
    Fix => "builder.fix";
    Apply => "builder.apply";
    ConversationGet => "builder.conversation.get";
    ConversationUpdate => "builder.conversation.update";
    ConversationReset => "builder.conversation.reset";
    ConversationClearOld => "builder.conversation.clearOld";
    ConversationDelete => "builder.conversation.delete";
    InstallPackages => "builder.installPackages";
    DetectPackages => "builder.detectPackages";
    SandboxCreate => "builder.sandbox.create";
    SandboxFiles => "builder.sandbox.files";
    SandboxStatus => "builder.sandbox.status";
    SandboxKill => "builder.sandbox.kill";
    SandboxRestart => "builder.sandbox.restart";
    SandboxLogs => "builder.sandbox.logs";
    SandboxRun => "builder.sandbox.run";
    SandboxErrors => "builder.sandbox.errors";
    SandboxCheck => "builder.sandbox.check";
    CreateZip => "builder.createZip";
    Models => "builder.models";
    TaskStatus => "builder.task.status";
    TaskCancel => "builder.task.cancel";
    History => "builder.history";
    Revert => "builder.revert";
    Diff => "builder.diff";
    ReviewShow => "builder.review.show";
    ReviewAccept => "builder.review.accept";
    ReviewDiscard => "builder.review.discard";
}

pub fn invalid_params(msg: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::InvalidParams,
        message: msg.into().into(),
        data: None,
    }
}

/// LSP's `RequestFailed`: the request was valid but the work could not be done.
pub fn request_failed(msg: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::ServerError(-32803),
        message: msg.into().into(),
        data: None,
    }
}

/// Deserializes the command's argument object; errors name the offending field.
pub fn parse_args<T: DeserializeOwned>(cmd: Command, args: Value) -> Result<T> {
    match serde_path_to_error::deserialize::<_, T>(args) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let msg = if path == "." || path.is_empty() {
                format!("{}: {inner}", cmd.name())
            } else {
                format!("{}: invalid argument `{path}`: {inner}", cmd.name())
            };
            Err(invalid_params(msg))
        }
    }
}

/// The one argument object (`arguments: [{…}]`; none means `{}`).
fn single_argument(cmd: Command, args: Vec<Value>) -> Result<Value> {
    let mut args = args;
    match args.len() {
        0 => Ok(json!({})),
        1 => match args.swap_remove(0) {
            v @ Value::Object(_) => Ok(v),
            Value::Null => Ok(json!({})),
            _ => Err(invalid_params(format!(
                "{}: arguments must be one JSON object, e.g. [{{\"prompt\": \"…\"}}]",
                cmd.name()
            ))),
        },
        n => Err(invalid_params(format!(
            "{}: expected one argument object, got {n} arguments",
            cmd.name()
        ))),
    }
}

/// Runs a command. Helix shows neither a command's answer nor its error (it only logs them),
/// so for Helix the outcome of a quick command is also sent as a message.
pub async fn execute(b: &Backend, params: ExecuteCommandParams) -> Result<Value> {
    let name = params.command.clone();
    let out = execute_inner(b, params).await;
    if b.caps().helix {
        match &out {
            Ok(v) => {
                if let Some(text) = summary(&name, v) {
                    b.client
                        .show_message(MessageType::INFO, format!("Builder: {text}"))
                        .await;
                }
            }
            Err(e) => {
                b.client
                    .show_message(MessageType::ERROR, format!("Builder: {}", e.message))
                    .await;
            }
        }
    }
    out
}

/// One line about a command's answer, for clients that do not display answers.
fn summary(command: &str, v: &Value) -> Option<String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(String::from);
    if v.get("started") == Some(&Value::Bool(true)) {
        // The task reports progress and ends with its own message.
        return None;
    }
    if let Some(m) = s("message").filter(|m| !m.is_empty()) {
        return Some(m);
    }
    Some(match command {
        "builder.sandbox.status" => match (v["active"].as_bool(), s("url")) {
            (Some(true), Some(url)) => format!(
                "sandbox {} at {url} ({})",
                s("provider").unwrap_or_default(),
                if v["healthy"] == Value::Bool(true) {
                    "healthy"
                } else {
                    "not answering"
                }
            ),
            _ => "no sandbox is running".into(),
        },
        "builder.sandbox.create" => format!("sandbox ready at {}", s("url")?),
        "builder.sandbox.kill" => format!("sandbox {} stopped", s("sandboxId")?),
        "builder.sandbox.logs" => {
            let lines = v["lines"].as_array()?;
            let tail: Vec<&str> = lines
                .iter()
                .rev()
                .take(5)
                .rev()
                .filter_map(Value::as_str)
                .collect();
            format!("last dev-server lines:\n{}", tail.join("\n"))
        }
        "builder.sandbox.files" => format!(
            "{} in the sandbox",
            crate::wording::count(v["fileCount"].as_u64().unwrap_or(0) as usize, "file")
        ),
        "builder.sandbox.run" => format!(
            "exit {}: {}",
            v["exitCode"],
            s("stdout").unwrap_or_default().lines().last().unwrap_or("")
        ),
        "builder.createZip" => format!(
            "zip written to {} ({})",
            s("path")?,
            crate::wording::count(v["files"].as_u64().unwrap_or(0) as usize, "file")
        ),
        "builder.models" => {
            let mut text = format!(
                "default model: {}",
                s("defaultModel").unwrap_or_else(|| "none (no key set)".into())
            );
            // With `list: true`: one line per listed provider.
            for p in v["providers"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap_or_default();
                match (p["reachable"].as_bool(), p["error"].as_str()) {
                    (Some(true), _) => text.push_str(&format!(
                        "\n{name}: reachable, {}, {} ms",
                        crate::wording::count(
                            p["listedCount"].as_u64().unwrap_or(0) as usize,
                            "model"
                        ),
                        p["latencyMs"].as_u64().unwrap_or(0)
                    )),
                    (Some(false), e) => {
                        text.push_str(&format!("\n{name}: {}", e.unwrap_or("not reachable")))
                    }
                    _ => {}
                }
            }
            text
        }
        "builder.detectPackages" => {
            let p: Vec<&str> = v["packages"]
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .collect();
            if p.is_empty() {
                "no missing packages".into()
            } else {
                format!("missing: {}", p.join(", "))
            }
        }
        "builder.task.status" => format!(
            "task {}: {}",
            s("taskId").unwrap_or_default(),
            s("state").unwrap_or_default()
        ),
        "builder.task.cancel" => {
            if v["cancelled"] == Value::Bool(true) {
                "task cancelled".into()
            } else {
                "nothing to cancel".into()
            }
        }
        "builder.history" => {
            let list = v.as_array()?;
            let lines: Vec<String> = list
                .iter()
                .take(10)
                .map(|c| {
                    format!(
                        "{} {} — {}",
                        c["id"].as_str().unwrap_or(""),
                        c["source"].as_str().unwrap_or(""),
                        c["summary"].as_str().unwrap_or("")
                    )
                })
                .collect();
            format!(
                "{}\n{}",
                crate::wording::count(list.len(), "checkpoint"),
                lines.join("\n")
            )
        }
        "builder.diff" => s("diff")
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "no changes".into()),
        c if c.starts_with("builder.conversation.") => {
            format!("conversation {}", s("conversationId")?)
        }
        _ => return None,
    })
}

async fn execute_inner(b: &Backend, params: ExecuteCommandParams) -> Result<Value> {
    let Some(cmd) = Command::from_name(&params.command) else {
        return Err(Error {
            code: ErrorCode::MethodNotFound,
            message: format!("unknown command `{}`", params.command).into(),
            data: None,
        });
    };
    let args = single_argument(cmd, params.arguments)?;
    let token = params.work_done_progress_params.work_done_token;
    tracing::debug!(command = cmd.name(), "execute");
    match cmd {
        Command::Apply => apply::run(b, cmd, args, token).await,
        Command::Generate => generate::run(b, cmd, args, token).await,
        Command::Fix => generate::fix(b, cmd, args, token).await,
        Command::SandboxErrors | Command::SandboxCheck => preview::run(b, cmd, args).await,
        Command::Models => models::run(b, cmd, args).await,
        Command::ConversationGet
        | Command::ConversationUpdate
        | Command::ConversationReset
        | Command::ConversationClearOld
        | Command::ConversationDelete => conversation::run(b, cmd, args).await,
        Command::CreateZip => zip::run(b, cmd, args).await,
        Command::TaskStatus | Command::TaskCancel => task::run(b, cmd, args).await,
        Command::History | Command::Revert | Command::Diff => history::run(b, cmd, args).await,
        Command::ReviewShow | Command::ReviewAccept | Command::ReviewDiscard => {
            review::run(b, cmd, args).await
        }
        Command::InstallPackages | Command::DetectPackages => {
            packages::run(b, cmd, args, token).await
        }
        Command::SandboxCreate
        | Command::SandboxFiles
        | Command::SandboxStatus
        | Command::SandboxKill
        | Command::SandboxRestart
        | Command::SandboxLogs
        | Command::SandboxRun => sandbox::run(b, cmd, args, token).await,
    }
}

/// Parses a `project` argument (a `file://` URI or a path).
fn hint_path(hint: &str) -> Result<PathBuf> {
    if hint.starts_with("file:") {
        let uri: Uri = hint.parse().map_err(|_| {
            invalid_params(format!(
                "invalid argument `project`: `{hint}` is not a valid URI"
            ))
        })?;
        uri.to_file_path().map(|p| p.into_owned()).ok_or_else(|| {
            invalid_params(format!(
                "invalid argument `project`: `{hint}` is not a file URI"
            ))
        })
    } else {
        Ok(PathBuf::from(hint))
    }
}

/// The project a command acts on: the one named by `project`, else the one of the file the user
/// touched last, else the only one.
pub fn project_for(b: &Backend, hint: Option<&str>) -> Result<Arc<Project>> {
    let projects = &b.st.projects;
    if let Some(h) = hint {
        let path = hint_path(h)?;
        return projects.for_path(&path).ok_or_else(|| {
            invalid_params(format!(
                "invalid argument `project`: {} is outside every workspace folder ({})",
                path.display(),
                folders(b)
            ))
        });
    }
    if let Some(p) = b.last_active().and_then(|p| projects.for_path(&p)) {
        return Ok(p);
    }
    let all = projects.all();
    match all.len() {
        0 => Err(request_failed(
            "no project: open a workspace folder (or a file inside a folder with package.json or .git)",
        )),
        1 => Ok(all[0].clone()),
        _ => Err(invalid_params(format!(
            "several workspace folders are open ({}); pass `project` with one of them",
            folders(b)
        ))),
    }
}

fn folders(b: &Backend) -> String {
    let v: Vec<String> =
        b.st.projects
            .all()
            .iter()
            .map(|p| p.root.display().to_string())
            .collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// What a task hands its work.
pub struct TaskCtx {
    pub task: Arc<Task>,
    pub reporter: Reporter,
    pub cancel: CancellationToken,
}

/// A command's answer as JSON (`null` if it cannot be serialized).
pub fn to_value(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The end of a task: state, full result, and a one-line summary for `window/showMessage`.
pub struct Outcome {
    pub state: TaskState,
    pub result: Value,
    pub summary: String,
}

impl Outcome {
    /// The end of a task whose full result is `result` as JSON (`null` if it cannot be).
    pub fn of(state: TaskState, summary: String, result: &impl serde::Serialize) -> Outcome {
        Outcome {
            state,
            summary,
            result: to_value(result),
        }
    }

    /// Like [`Outcome::of`], the state said by the task's own end: cancelled wins over
    /// everything, then done when `ok`, else failed (the rule apply, generate and install share).
    pub fn ended(
        cancelled: bool,
        ok: bool,
        summary: String,
        result: &impl serde::Serialize,
    ) -> Outcome {
        let state = if cancelled {
            TaskState::Cancelled
        } else if ok {
            TaskState::Done
        } else {
            TaskState::Failed
        };
        Outcome::of(state, summary, result)
    }
}

/// Cancels the task if the request waiting for it is dropped (`$/cancelRequest`).
struct CancelOnDrop(Option<CancellationToken>);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

/// Runs `work` as a task of `project`. With `wait` the response is the full result; otherwise the
/// answer is `{taskId, started: true}` at once and the end is announced with `showMessage`.
pub async fn run_task<F, Fut>(
    b: &Backend,
    cmd: Command,
    project: Arc<Project>,
    wait: bool,
    client_token: Option<ProgressToken>,
    title: String,
    work: F,
) -> Result<Value>
where
    F: FnOnce(TaskCtx) -> Fut + Send + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let task = b.st.tasks.start(cmd.name(), project.root.clone());
    let token = match client_token {
        Some(t) => Some(t),
        None if !wait && b.caps().work_done_progress => {
            let t = NumberOrString::String(format!(
                "builder/{}/{}",
                cmd.name().trim_start_matches("builder."),
                task.id
            ));
            b.client
                .create_work_done_progress(t.clone())
                .await
                .ok()
                .map(|_| t)
        }
        None => None,
    };
    let progress = match &token {
        Some(t) => {
            b.st.progress_tokens.insert(token_key(t), task.id.clone());
            Progress::begin(&b.client, t.clone(), &title, true).await
        }
        None => Progress::none(),
    };
    let ctx = TaskCtx {
        task: task.clone(),
        reporter: progress.reporter(),
        cancel: task.cancel.clone(),
    };
    let this = b.clone();
    let t2 = task.clone();
    let handle = tokio::spawn(async move {
        let out = work(ctx).await;
        progress.end(out.summary.clone()).await;
        if let Some(t) = &token {
            this.st.progress_tokens.remove(&token_key(t));
        }
        t2.set_message(out.summary.clone());
        t2.finish(out.state, out.result);
        if !wait {
            let typ = match out.state {
                TaskState::Done => MessageType::INFO,
                TaskState::Cancelled => MessageType::WARNING,
                _ => MessageType::ERROR,
            };
            this.client
                .show_message(typ, format!("Builder: {}", out.summary))
                .await;
        }
    });
    if !wait {
        return Ok(json!({"taskId": task.id, "started": true}));
    }
    let mut guard = CancelOnDrop(Some(task.cancel.clone()));
    let joined = handle.await;
    guard.0 = None;
    if joined.is_err() {
        return Err(request_failed(format!(
            "{} failed unexpectedly",
            cmd.name()
        )));
    }
    Ok(task.snapshot().result.unwrap_or(Value::Null))
}

/// Resolves a user-given path (absolute, or relative to the project root).
pub fn user_path(project: &Project, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        project.root.join(path)
    }
}
