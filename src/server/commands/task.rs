//! `builder.task.status` and `builder.task.cancel`: a command, because Helix never sends
//! `$/cancelRequest` or `window/workDoneProgress/cancel`.

use serde::Deserialize;
use serde_json::{json, Value};
use tower_lsp_server::jsonrpc::Result;

use super::{invalid_params, parse_args, project_for, Command};
use crate::server::Backend;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TaskArgs {
    /// The task (from `{taskId, started}`); default: the project's running task.
    task_id: Option<String>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

pub async fn run(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    let a: TaskArgs = parse_args(cmd, args)?;
    let task = match &a.task_id {
        Some(id) => Some(b.st.tasks.get(id).ok_or_else(|| {
            invalid_params(format!(
                "{}: invalid argument `taskId`: no task `{id}`",
                cmd.name()
            ))
        })?),
        None => {
            let project = project_for(b, a.project.as_deref())?;
            b.st.tasks.running_in(&project.root).into_iter().next()
        }
    };
    match (cmd, task) {
        (Command::TaskCancel, Some(t)) => {
            let was_running = t.state() == crate::tasks::TaskState::Running;
            t.cancel.cancel();
            Ok(cancel_result(Some(t.id.clone()), was_running, None))
        }
        (Command::TaskCancel, None) => Ok(cancel_result(
            None,
            false,
            Some("no running task in this project".into()),
        )),
        (_, Some(t)) => {
            serde_json::to_value(t.snapshot()).map_err(|e| invalid_params(e.to_string()))
        }
        (_, None) => Ok(
            json!({"state": "none", "message": "no running task in this project; pass `taskId`"}),
        ),
    }
}

/// The answer of `builder.task.cancel`.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CancelResult {
    task_id: Option<String>,
    /// The task was running and is now cancelled.
    cancelled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

fn cancel_result(task_id: Option<String>, cancelled: bool, message: Option<String>) -> Value {
    serde_json::to_value(CancelResult {
        task_id,
        cancelled,
        message,
    })
    .unwrap_or(Value::Null)
}
