//! `builder.models`: which providers are configured and which keys are present (never a key).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;

use super::{parse_args, project_for, Command};
use crate::server::steps::ai_config;
use crate::server::Backend;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ModelsArgs {
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

pub async fn run(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    let a: ModelsArgs = parse_args(cmd, args)?;
    let project = project_for(b, a.project.as_deref())?;
    let config = ai_config(&project);
    let r = ModelsResult {
        default_model: crate::generate::default_model(&config),
        providers: config.providers(),
    };
    Ok(serde_json::to_value(r).unwrap_or(Value::Null))
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ModelsResult {
    /// `provider/model` used when a command names none.
    default_model: Option<String>,
    providers: Vec<crate::ai::config::ProviderInfo>,
}
