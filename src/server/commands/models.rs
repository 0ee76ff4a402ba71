//! `builder.models`: which providers are configured and which keys are present (never a key).

use serde::Deserialize;
use serde_json::{json, Value};
use tower_lsp_server::jsonrpc::Result;

use super::generate::ai_config;
use super::{parse_args, project_for, Command};
use crate::server::Backend;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ModelsArgs {
    project: Option<String>,
}

pub async fn run(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    let a: ModelsArgs = parse_args(cmd, args)?;
    let project = project_for(b, a.project.as_deref())?;
    let config = ai_config(&project);
    Ok(json!({
        "defaultModel": crate::generate::default_model(&config),
        "providers": config.describe(),
    }))
}
