//! The generation's result from what happened: the parsed answer, the stream's stop reason or
//! error, the follow-ups, and what the delivery task landed; then the one-line message.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::applier::Applier;
use super::{GenerateResult, GeneratedFile, Usage};
use crate::ai::{AiError, StopReason};
use crate::apply::SkippedFile;
use crate::response::ParsedResponse;

#[derive(Default)]
pub(super) struct StreamOutcome {
    pub(super) parsed: ParsedResponse,
    pub(super) stop: Option<StopReason>,
    pub(super) error: Option<AiError>,
    pub(super) usage: Usage,
    pub(super) first_token_ms: Option<u64>,
    pub(super) continued: Vec<String>,
    pub(super) follow_errors: Vec<String>,
}

pub(super) struct InputSummary {
    pub(super) apply: bool,
    pub(super) cancelled: CancellationToken,
}

pub(super) fn finish(
    mut result: GenerateResult,
    out: StreamOutcome,
    applier: Applier<'_>,
    input: &InputSummary,
    started: Instant,
) -> GenerateResult {
    let parsed = out.parsed;
    result.files = parsed
        .files
        .iter()
        .map(|f| GeneratedFile {
            path: f.path.clone(),
            bytes: f.content.len(),
            complete: f.complete,
        })
        .collect();
    result.packages = parsed.packages;
    result.commands = parsed.commands;
    result.explanation = parsed.explanation;
    result.truncated = parsed.truncated;
    result.usage = out.usage;
    result.first_token_ms = out.first_token_ms;
    result.continued = out.continued;
    result.stop_reason = if input.cancelled.is_cancelled() {
        "cancelled".into()
    } else if out.error.is_some() {
        "error".into()
    } else {
        match out.stop {
            Some(StopReason::EndTurn) => "end_turn".into(),
            Some(StopReason::MaxTokens) => "max_tokens".into(),
            Some(StopReason::Other(s)) => s,
            None => "unknown".into(),
        }
    };
    let a = applier.out;
    result.files_created = a.files_created;
    result.files_updated = a.files_updated;
    result.files_skipped = a.files_skipped;
    result.written_to_disk = a.written_to_disk;
    result.errors = a.errors;
    result.errors.extend(out.follow_errors);
    let applied_files: Vec<String> = result
        .files_created
        .iter()
        .chain(&result.files_updated)
        .cloned()
        .collect();
    if let Some(e) = &out.error {
        let complete: Vec<&str> = result
            .files
            .iter()
            .filter(|f| f.complete)
            .map(|f| f.path.as_str())
            .collect();
        let incomplete: Vec<&str> = result
            .files
            .iter()
            .filter(|f| !f.complete)
            .map(|f| f.path.as_str())
            .collect();
        let mut msg = e.to_string();
        if !result.files.is_empty() {
            msg.push_str(&format!(
                " — complete{}: [{}]; incomplete (not applied): [{}]",
                if input.apply { " and applied" } else { "" },
                complete.join(", "),
                incomplete.join(", ")
            ));
        }
        result.errors.insert(0, msg);
    }
    for t in &result.truncated {
        result.files_skipped.push(SkippedFile {
            path: t.clone(),
            reason: "truncated: the answer stopped before the closing </file> tag".into(),
        });
    }
    result.applied = input.apply && applier.planned > 0 && applier.landed == applier.planned;
    result.elapsed_ms = started.elapsed().as_millis() as u64;
    result.message = if input.cancelled.is_cancelled() {
        format!(
            "Generation cancelled; {} had been applied",
            crate::wording::count(applied_files.len(), "file")
        )
    } else if let Some(first) = result.errors.first() {
        format!("Generation failed: {first}")
    } else if result.files.is_empty() && !input.apply {
        "The model answered without files.".into()
    } else if input.apply {
        // The count is what landed, so it always agrees with its parts.
        let mut m = format!(
            "Generated {}: {} created, {} updated",
            crate::wording::count(applied_files.len(), "file"),
            result.files_created.len(),
            result.files_updated.len()
        );
        if !result.files_skipped.is_empty() {
            m.push_str(&format!(", {} skipped", result.files_skipped.len()));
        }
        if !result.truncated.is_empty() {
            m.push_str(&format!(
                "; truncated, not applied: {}",
                result.truncated.join(", ")
            ));
        }
        m
    } else {
        format!(
            "Generated {} (not applied)",
            crate::wording::count(result.files.len(), "file")
        )
    };
    result
}
