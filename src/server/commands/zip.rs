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
    let from_sandbox = match a.source.as_deref() {
        None | Some("workspace") => false,
        Some("sandbox") => true,
        Some(other) => {
            return Err(invalid_params(format!(
                "builder.createZip: invalid argument `source`: `{other}` (expected \"workspace\" or \"sandbox\")"
            )))
        }
    };
    let project = project_for(b, a.project.as_deref())?;
    // From the sandbox: its files are copied out to a temp folder, which is zipped like a
    // workspace (same exclusions and limits).
    let staging = if from_sandbox {
        let session = project.sandbox().ok_or_else(|| {
            request_failed(
                "builder.createZip: no sandbox is running for this project (source: \"sandbox\")",
            )
        })?;
        let dir = tempfile::Builder::new()
            .prefix("builder-zip-")
            .tempdir()
            .map_err(|e| request_failed(format!("builder.createZip: {e}")))?;
        let cap = project.settings().zip.max_total_bytes;
        crate::sandbox::session::copy_out(session.sandbox.as_ref(), dir.path(), cap)
            .await
            .map_err(|e| request_failed(format!("builder.createZip: {e}")))?;
        Some(dir)
    } else {
        None
    };
    let base = match &staging {
        Some(d) => d.path().to_path_buf(),
        None => project.canonical_root.clone(),
    };
    let source = match a.path.as_deref() {
        None | Some("") | Some(".") => base.clone(),
        Some(sub) => {
            let bad = |why: String| {
                invalid_params(format!(
                    "builder.createZip: invalid argument `path`: {sub}: {why}"
                ))
            };
            let rel =
                normalize(sub.trim_end_matches(['/', '\\'])).map_err(|e| bad(e.to_string()))?;
            let base = std::fs::canonicalize(&base).unwrap_or(base.clone());
            let dir = std::fs::canonicalize(base.join(&rel)).map_err(|e| bad(e.to_string()))?;
            if !dir.starts_with(&base) {
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
    let out = tokio::task::spawn_blocking(move || {
        let r = create_zip(&source, &output, &opts);
        drop(staging);
        r
    })
    .await
    .map_err(|e| request_failed(format!("builder.createZip failed: {e}")))?
    .map_err(|e| request_failed(format!("builder.createZip: {e}")))?;
    serde_json::to_value(out).map_err(|e| request_failed(e.to_string()))
}
