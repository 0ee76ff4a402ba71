//! `builder.createZip`: the project (or a subfolder) as a zip, secrets and build output left out.

use serde::Deserialize;
use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;

use super::{invalid_params, parse_args, project_for, request_failed, user_path, Command};
use crate::archive::{create_zip, ZipOptions};
use crate::edits::path::normalize;
use crate::server::Backend;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ZipArgs {
    /// Where to write the zip (absolute, or relative to the project); default `<project>.zip`
    /// in the project folder.
    output: Option<String>,
    /// `workspace` (default) or `sandbox`.
    source: Option<String>,
    /// A subfolder of the project to zip instead of all of it.
    path: Option<String>,
    /// Workspace folder (path or file:// URI) to act on; default: the folder of the file touched last, or the only one.
    project: Option<String>,
}

pub async fn run(b: &Backend, cmd: Command, args: Value) -> Result<Value> {
    let a: ZipArgs = parse_args(cmd, args)?;
    match a.source.as_deref() {
        None | Some("workspace") => {}
        Some("sandbox") => {
            return Err(request_failed(
                "builder.createZip: no sandbox is running for this project (source: \"sandbox\")",
            ))
        }
        Some(other) => {
            return Err(invalid_params(format!(
                "builder.createZip: invalid argument `source`: `{other}` (expected \"workspace\" or \"sandbox\")"
            )))
        }
    }
    let project = project_for(b, a.project.as_deref())?;
    let source = match a.path.as_deref() {
        None | Some("") | Some(".") => project.canonical_root.clone(),
        Some(sub) => {
            let bad = |why: String| {
                invalid_params(format!(
                    "builder.createZip: invalid argument `path`: {sub}: {why}"
                ))
            };
            let rel =
                normalize(sub.trim_end_matches(['/', '\\'])).map_err(|e| bad(e.to_string()))?;
            let dir = std::fs::canonicalize(project.canonical_root.join(&rel))
                .map_err(|e| bad(e.to_string()))?;
            if !dir.starts_with(&project.canonical_root) {
                return Err(bad("leaves the project".into()));
            }
            if !dir.is_dir() {
                return Err(bad("not a folder".into()));
            }
            dir
        }
    };
    let output = match a.output.as_deref() {
        Some(o) if !o.trim().is_empty() => user_path(&project, o),
        _ => project.root.join(format!("{}.zip", project.name)),
    };
    let s = project.settings().zip;
    let opts = ZipOptions {
        max_files: s.max_files,
        max_file_bytes: s.max_file_bytes,
        max_total_bytes: s.max_total_bytes,
    };
    let out = tokio::task::spawn_blocking(move || create_zip(&source, &output, &opts))
        .await
        .map_err(|e| request_failed(format!("builder.createZip failed: {e}")))?
        .map_err(|e| request_failed(format!("builder.createZip: {e}")))?;
    serde_json::to_value(out).map_err(|e| request_failed(e.to_string()))
}
