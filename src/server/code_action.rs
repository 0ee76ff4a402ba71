//! `textDocument/codeAction`: "Builder: <request>" on a prompt comment line runs
//! `builder.generate` in edit mode with that file as primary context.

use serde_json::json;
use tower_lsp_server::ls_types::*;

use super::Backend;
use crate::generate::comments::prompt_in_line;

/// Lines scanned per request, so a select-all never costs much.
const MAX_LINES: u32 = 400;

pub fn code_actions(b: &Backend, params: &CodeActionParams) -> Vec<CodeActionOrCommand> {
    let uri = &params.text_document.uri;
    let docs = &b.st.docs;
    let count = docs.line_count(uri) as u32;
    let start = params.range.start.line;
    let end = params
        .range
        .end
        .line
        .min(start.saturating_add(MAX_LINES))
        .min(count.saturating_sub(1));
    let mut out = Vec::new();
    for n in start..=end {
        let Some(line) = docs.line(uri, n as usize) else {
            break;
        };
        let Some(request) = prompt_in_line(&line) else {
            continue;
        };
        let title = format!("Builder: {request}");
        out.push(CodeActionOrCommand::CodeAction(CodeAction {
            title: title.clone(),
            kind: Some(CodeActionKind::REFACTOR_REWRITE),
            command: Some(Command {
                title,
                command: "builder.generate".into(),
                arguments: Some(vec![json!({
                    "prompt": request,
                    "uri": uri.as_str(),
                    "commentLine": n,
                    "isEdit": true,
                })]),
            }),
            ..Default::default()
        }));
    }
    out
}
