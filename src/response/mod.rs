//! The model's answer, parsed: files, targeted edits, packages, commands, explanation.
//!
//! [`parser::ResponseParser`] is fed the answer as it streams in, so the editor can show
//! progress per file; [`parse`] is the one-shot form for a complete text (`builder.apply`).
//! The accepted format is described in `DESIGN.md` §5 and in [`parser`]'s module docs.

pub mod parser;

pub use parser::{ParseEvent, ResponseParser};

/// One `<file path="…">` block (or a tolerated fenced fallback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedFile {
    /// The path exactly as the model wrote it (trimmed); safety checks happen when applying.
    pub path: String,
    /// Full new content. For a complete block: one leading newline removed, one wrapping
    /// markdown fence removed, trailing blank lines collapsed to one line ending.
    /// An incomplete block keeps its raw bytes so a continuation can be appended.
    pub content: String,
    /// False when the closing tag (or fence) never arrived: such content must not be applied.
    pub complete: bool,
}

/// One search/replace pair of an `<edit path="…">` block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedEdit {
    pub path: String,
    /// Text to find; one leading and one trailing newline removed.
    pub search: String,
    /// Text to put in its place; same trimming as `search`.
    pub replace: String,
    /// True only when both inner blocks and `</edit>` were seen.
    pub complete: bool,
}

/// Everything an answer asked for, after duplicate resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedResponse {
    /// One entry per path, in order of first appearance; the last complete block wins.
    pub files: Vec<ParsedFile>,
    /// `<edit>` pairs in order (incomplete ones have `complete == false`).
    pub edits: Vec<ParsedEdit>,
    /// Deduplicated, order kept.
    pub packages: Vec<String>,
    pub commands: Vec<String>,
    /// Trimmed content of `<explanation>` (several are joined by a blank line), "" if none.
    pub explanation: String,
    /// Text outside all recognised tags and fallback file blocks, trimmed, capped at 64 KiB.
    pub prose: String,
    /// Paths whose block never closed and that have no complete copy.
    pub truncated: Vec<String>,
}

/// Parses a complete answer at once; same result as feeding it in any chunking.
pub fn parse(text: &str) -> ParsedResponse {
    let mut parser = ResponseParser::new();
    let mut events = Vec::new();
    parser.feed(text, &mut events);
    parser.finish()
}
