//! The command reference, generated from the Rust types the router really parses and answers:
//! `builder-lsp commands --json` prints it, `docs/commands.md` is rendered from it (a test keeps
//! the doc in step). The match over [`Command`] is exhaustive, so a new command cannot ship
//! undocumented.

use schemars::{schema_for, JsonSchema, Schema};
use serde::Serialize;
use serde_json::{json, Map, Value};

use super::{
    apply, conversation, generate, history, models, packages, preview, review, sandbox, task, zip,
    Command,
};

/// The immediate answer of a command started as a task (`wait: false`).
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStarted {
    /// Follow it with `builder.task.status`, stop it with `builder.task.cancel`.
    pub task_id: String,
    pub started: bool,
}

/// One command's contract.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandDoc {
    pub name: &'static str,
    pub summary: &'static str,
    /// Runs as a task: answers `{taskId, started}` at once unless `wait: true`.
    pub task: bool,
    /// What `wait` defaults to for this command, when it takes one.
    pub wait_default: Option<bool>,
    pub arguments: Schema,
    pub result: Schema,
}

fn doc<A: JsonSchema, R: JsonSchema>(
    c: Command,
    summary: &'static str,
    task: bool,
    wait_default: Option<bool>,
) -> CommandDoc {
    CommandDoc {
        name: c.name(),
        summary,
        task,
        wait_default,
        arguments: schema_for!(A),
        result: schema_for!(R),
    }
}

pub fn command_doc(c: Command) -> CommandDoc {
    use crate::apply::ApplyResult;
    use crate::archive::ZipResult;
    use crate::conversation::ConversationState;
    use crate::generate::run::GenerateResult;
    use crate::packages::install::InstallOutcome;
    use crate::sandbox::manifest::FilesListing;
    use crate::sandbox::session::{CreateResult, Status};
    use crate::sandbox::CommandOutput;
    use crate::tasks::TaskSnapshot;
    match c {
        Command::Generate => doc::<generate::GenerateArgs, GenerateResult>(c,
            "Generate code for a prompt with a model, streaming progress; each complete file is applied as one undoable edit as it arrives.", true, Some(false)),
        Command::Fix => doc::<generate::FixArgs, GenerateResult>(c,
            "Fix errors with the model: the given diagnostics (any server's), or every error the project knows (Vite's compile errors, the preview's runtime errors) with `all`; an edit-mode generation whose prompt carries the messages, stacks and the failing code, applied like `builder.generate`.", true, Some(false)),
        Command::SandboxErrors => doc::<preview::ErrorsArgs, preview::ErrorsResult>(c,
            "The running app's current errors: Vite's compile errors and the errors its pages threw in the browser (uncaught, unhandled rejections, console.error, failed loads), with stacks mapped to the project's files.", false, None),
        Command::SandboxCheck => doc::<preview::CheckArgs, preview::CheckResult>(c,
            "Load the preview in a headless Chromium found on PATH (never downloaded), wait until the page settles, and return its errors; optionally a PNG screenshot (opened with window/showDocument).", false, None),
        Command::Apply => doc::<apply::ApplyArgs, ApplyResult>(c,
            "Apply a model answer (`<file path>` blocks, `<edit>` blocks, `<package>` and `<command>` tags) as one workspace edit; installs the packages it needs first.", true, Some(true)),
        Command::ConversationGet => doc::<conversation::ProjectOnly, ConversationState>(c,
            "The project's conversation state.", false, None),
        Command::ConversationUpdate => doc::<conversation::UpdateArgs, ConversationState>(c,
            "Set the current topic and merge user preferences.", false, None),
        Command::ConversationReset => doc::<conversation::ProjectOnly, ConversationState>(c,
            "Start a fresh conversation.", false, None),
        Command::ConversationClearOld => doc::<conversation::ProjectOnly, ConversationState>(c,
            "Keep only the most recent messages, edits and changes.", false, None),
        Command::ConversationDelete => doc::<conversation::ProjectOnly, ConversationState>(c,
            "Delete the stored conversation (the answer is the fresh state).", false, None),
        Command::InstallPackages => doc::<packages::InstallArgs, InstallOutcome>(c,
            "Install npm packages with the project's package manager, in its sandbox when one runs; a failed install leaves package.json and the lockfile byte-identical.", true, Some(false)),
        Command::DetectPackages => doc::<packages::DetectArgs, packages::DetectResult>(c,
            "Packages the code imports that package.json lacks (runtime and type-only), optionally installed.", true, None),
        Command::SandboxCreate => doc::<sandbox::CreateArgs, CreateResult>(c,
            "Run the project in a sandbox (local, e2b, vercel) with a live preview; replaces the project's previous sandbox.", true, Some(false)),
        Command::SandboxFiles => doc::<sandbox::FilesArgs, FilesListing>(c,
            "The sandbox's text files, folder structure and manifest (imports, exports, components, routes, entry point, styles).", false, None),
        Command::SandboxStatus => doc::<sandbox::ProjectOnly, Status>(c,
            "Whether the project's sandbox runs and its dev server answers now.", false, None),
        Command::SandboxKill => doc::<sandbox::ProjectOnly, sandbox::KillResult>(c,
            "Stop the project's sandbox and every process of it.", false, None),
        Command::SandboxRestart => doc::<sandbox::ProjectOnly, sandbox::RestartResult>(c,
            "Restart the sandbox's dev server and wait until it answers.", true, Some(false)),
        Command::SandboxLogs => doc::<sandbox::LogsArgs, sandbox::LogsResult>(c,
            "The dev server's recent output.", false, None),
        Command::SandboxRun => doc::<sandbox::RunArgs, CommandOutput>(c,
            "Run a program (no shell) in the sandbox's project folder.", true, Some(true)),
        Command::CreateZip => doc::<zip::ZipArgs, ZipResult>(c,
            "Zip the project (or its sandbox), leaving out node_modules, VCS data, build output and secrets.", false, None),
        Command::Models => doc::<models::ModelsArgs, models::ModelsResult>(c,
            "Providers, whether each has a key (never the key), and the default model; with `list: true`, each provider's own models fetched from its server (`GET …/models`, Ollama's `/api/tags`) with reachability, latency and a clear error — `{provider, list: true}` is the picker's \"Test connection\".", false, None),
        Command::TaskStatus => doc::<task::TaskArgs, TaskSnapshot>(c,
            "A task's state and, once it ended, its full result.", false, None),
        Command::History => doc::<history::HistoryArgs, Vec<crate::history::HistoryEntry>>(c,
            "The project's checkpoints, newest first: one per change set the server landed (apply, each generation, installs mirrored back, reverts).", false, None),
        Command::Revert => doc::<history::RevertArgs, history::RevertResult>(c,
            "Put the project back to how it was before a checkpoint (undoing it and every later one, or only `files`) as one undoable edit; files changed since are conflicts, left alone unless `force`. A revert is itself a checkpoint.", false, None),
        Command::Diff => doc::<history::DiffArgs, history::DiffResult>(c,
            "A unified diff of what a checkpoint changed.", false, None),
        Command::ReviewShow => doc::<review::ReviewArgs, review::ShowResult>(c,
            "Write the pending change set (held for review: setting `review` on, a client without change annotations) as a read-only unified diff under the state dir and open it (`window/showDocument`, else a message with the path).", false, None),
        Command::ReviewAccept => doc::<review::AcceptArgs, ApplyResult>(c,
            "Land the pending change set, or only `files` of it (the rest is dropped), as a normal checkpointed apply; a file changed since the set was prepared is skipped.", false, None),
        Command::ReviewDiscard => doc::<review::ReviewArgs, review::DiscardResult>(c,
            "Drop the pending change set; nothing of it is written.", false, None),
        Command::TaskCancel => doc::<task::TaskArgs, task::CancelResult>(c,
            "Cancel a task (default: the project's running one).", false, None),
    }
}

/// Every command, in the advertised order.
pub fn all() -> Vec<CommandDoc> {
    Command::ALL.iter().map(|c| command_doc(*c)).collect()
}

/// The reference as JSON (`builder-lsp commands --json`).
pub fn to_json() -> Value {
    json!({
        "server": "builder-lsp",
        "version": env!("CARGO_PKG_VERSION"),
        "taskStarted": schema_for!(TaskStarted),
        "commands": all(),
    })
}

/// A short type name for a property schema.
fn type_of(p: &Value, defs: &Map<String, Value>) -> String {
    if let Some(r) = p.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return match defs
            .get(name)
            .and_then(|d| d.get("enum"))
            .and_then(Value::as_array)
        {
            Some(vals) => vals
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(" \\| "),
            None => name.to_string(),
        };
    }
    if let Some(vals) = p.get("enum").and_then(Value::as_array) {
        return vals
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" \\| ");
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alts) = p.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = alts
                .iter()
                .filter(|a| a.get("type") != Some(&json!("null")))
                .map(|a| type_of(a, defs))
                .collect();
            return parts.join(" \\| ");
        }
    }
    let items = || {
        p.get("items")
            .map(|i| type_of(i, defs))
            .unwrap_or_else(|| "any".into())
    };
    match p.get("type") {
        Some(Value::String(t)) if t == "array" => format!("{}[]", items()),
        Some(Value::String(t)) if t == "object" => match p.get("additionalProperties") {
            Some(ap) if ap.is_object() => format!("{{string: {}}}", type_of(ap, defs)),
            _ => "object".into(),
        },
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            let non_null: Vec<&Value> = ts.iter().filter(|t| *t != "null").collect();
            match non_null.as_slice() {
                [Value::String(t)] if t == "array" => format!("{}[]", items()),
                [Value::String(t)] => t.clone(),
                _ => "any".into(),
            }
        }
        _ => "any".into(),
    }
}

fn table(schema: &Value, out: &mut String, arguments: bool) {
    let empty = Map::new();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let props = schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = props.filter(|p| !p.is_empty()) else {
        out.push_str("_none_\n\n");
        return;
    };
    if arguments {
        out.push_str("| argument | type | required | description |\n|---|---|---|---|\n");
    } else {
        out.push_str("| field | type | description |\n|---|---|---|\n");
    }
    for (name, p) in props {
        let desc = p
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .replace('\n', " ")
            .replace('|', "\\|");
        let ty = type_of(p, defs);
        if arguments {
            let req = if required.contains(&name.as_str()) {
                "yes"
            } else {
                ""
            };
            out.push_str(&format!("| `{name}` | {ty} | {req} | {desc} |\n"));
        } else {
            out.push_str(&format!("| `{name}` | {ty} | {desc} |\n"));
        }
    }
    out.push('\n');
}

/// `docs/commands.md`.
pub fn to_markdown() -> String {
    let mut out = String::from(
        "# Command reference\n\n\
         Generated by `builder-lsp commands --markdown` from the types the server parses and \
         answers (`builder-lsp commands --json` prints the full JSON Schemas); a test fails when \
         this file is stale.\n\n\
         Every command is a `workspace/executeCommand` with ONE JSON object as its argument; \
         unknown fields are refused with `InvalidParams` naming the field. `project` (a folder \
         path or `file://` URI) picks the workspace folder; without it, the folder of the file \
         touched last, or the only one.\n\n\
         Commands marked *task* answer `{taskId, started: true}` at once and report `$/progress`, \
         ending with a `window/showMessage`; pass `wait: true` to get the full result instead \
         (scripts, plugins). `builder.task.status {taskId}` returns a task's result later.\n\n",
    );
    for d in all() {
        out.push_str(&format!("## `{}`\n\n{}\n\n", d.name, d.summary));
        if d.task {
            let w = match d.wait_default {
                Some(true) => " (`wait` defaults to true)",
                Some(false) => " (`wait` defaults to false)",
                None => "",
            };
            out.push_str(&format!("*task*{w}\n\n"));
        }
        out.push_str("**Arguments**\n\n");
        table(
            &serde_json::to_value(&d.arguments).unwrap_or(Value::Null),
            &mut out,
            true,
        );
        out.push_str("**Result**\n\n");
        table(
            &serde_json::to_value(&d.result).unwrap_or(Value::Null),
            &mut out,
            false,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_argument_and_result_schemas() {
        let j = to_json();
        let cmds = j["commands"].as_array().unwrap();
        assert_eq!(cmds.len(), Command::ALL.len());
        for c in cmds {
            assert!(
                c["arguments"]["properties"].is_object()
                    || c["arguments"]["type"] == json!("object"),
                "{c}"
            );
            assert!(c["result"].is_object(), "{c}");
        }
        let apply = cmds
            .iter()
            .find(|c| c["name"] == json!("builder.apply"))
            .unwrap();
        assert_eq!(apply["arguments"]["required"], json!(["response"]));
        assert!(apply["result"]["properties"]["filesCreated"].is_object());
        let md = to_markdown();
        assert!(md.contains("## `builder.sandbox.create`"));
        assert!(md.contains("| `response` | string | yes |"), "{md}");
    }
}
