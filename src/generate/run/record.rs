//! A finished generation recorded in the conversation: the request, the answer's gist, the edit
//! and, when files changed, a major change.

use super::GenerateResult;
use crate::conversation::{ConversationState, Edit};

/// Records a generation in the conversation: the request, the answer's gist, the edit.
pub fn record(conv: &mut ConversationState, request: &str, result: &GenerateResult) {
    let mut meta = serde_json::Map::new();
    meta.insert("model".into(), result.model.clone().into());
    conv.add_message("user", request, meta);
    let files: Vec<String> = result
        .files_created
        .iter()
        .chain(&result.files_updated)
        .cloned()
        .collect();
    let mut meta = serde_json::Map::new();
    meta.insert("editedFiles".into(), files.clone().into());
    meta.insert("packages".into(), result.packages.clone().into());
    let summary = if result.explanation.is_empty() {
        result.message.clone()
    } else {
        result.explanation.clone()
    };
    conv.add_message("assistant", &summary, meta);
    conv.record_edited_files(&files);
    conv.add_edit(Edit::of_change(
        request,
        if result.is_edit { "edit" } else { "generate" },
        &files,
        result.errors.is_empty() && (result.applied || files.is_empty()),
        &result.errors,
    ));
    if !files.is_empty() {
        let desc: String = if result.explanation.is_empty() {
            format!(
                "{}: {}",
                request.chars().take(120).collect::<String>(),
                crate::wording::count(files.len(), "file")
            )
        } else {
            result.explanation.chars().take(300).collect()
        };
        conv.add_major_change(&desc, files);
    }
}
