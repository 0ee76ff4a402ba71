//! `builder.conversation.*`: the project's conversation state (DESIGN.md §8).

use serde::Deserialize;
use serde_json::{Map, Value};
use tower_lsp_server::jsonrpc::Result;

use super::{invalid_params, parse_args, project_for, request_failed, Command};
use crate::server::Backend;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ProjectOnly {
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct UpdateArgs {
    /// What the user is working on (at most 500 characters).
    current_topic: Option<String>,
    /// Merged into the stored preferences (at most 50 keys, 16 KB).
    user_preferences: Option<Map<String, Value>>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

pub async fn run(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    let (project_hint, update) = if cmd == Command::ConversationUpdate {
        let a: UpdateArgs = parse_args(cmd, args)?;
        (a.project.clone(), Some(a))
    } else {
        let a: ProjectOnly = parse_args(cmd, args)?;
        (a.project, None)
    };
    let project = project_for(b, project_hint.as_deref())?;
    let fail =
        |e: crate::conversation::ConversationError| request_failed(format!("{}: {e}", cmd.name()));

    if cmd == Command::ConversationDelete {
        project.delete_conversation().map_err(fail)?;
    }
    let (state, warning) = project
        .with_conversation(|c| -> std::result::Result<Value, String> {
            match cmd {
                Command::ConversationReset => c.reset(),
                Command::ConversationClearOld => c.clear_old(),
                Command::ConversationUpdate => {
                    if let Some(a) = &update {
                        c.update(a.current_topic.clone(), a.user_preferences.clone())
                            .map_err(|e| e.to_string())?;
                    }
                }
                _ => {}
            }
            serde_json::to_value(&*c).map_err(|e| e.to_string())
        })
        .map_err(fail)?;
    let mut state = state.map_err(|e| invalid_params(format!("{}: {e}", cmd.name())))?;
    if let (Some(w), Value::Object(m)) = (warning, &mut state) {
        m.insert("warning".into(), Value::String(w));
    }
    if cmd == Command::ConversationDelete {
        if let Value::Object(m) = &mut state {
            m.insert("deleted".into(), Value::Bool(true));
        }
    }
    Ok(state)
}
