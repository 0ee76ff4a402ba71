//! The delivery task: plans and delivers each closed block in order over an overlay of the
//! texts it already delivered (so later `<edit>`s and duplicates see the newest text), and
//! takes the prompt comment out of its file.

use std::collections::HashMap;
use std::path::PathBuf;

use super::PromptComment;
use crate::apply::{self, ApplyOptions, ApplyResult, ChangeKind, Deliver, FileChange, Overlay};
use crate::events::{Event, Reporter};
use crate::response::{ParsedEdit, ParsedFile, ParsedResponse};

pub(super) enum Item {
    File(ParsedFile),
    Edit(ParsedEdit),
    RemoveComment,
}

/// Applies items in order; owns the overlay of delivered texts.
pub(super) struct Applier<'a> {
    pub(super) root: PathBuf,
    pub(super) deliver: &'a dyn Deliver,
    pub(super) opts: ApplyOptions,
    pub(super) overlay: HashMap<PathBuf, String>,
    pub(super) comment: Option<PromptComment>,
    pub(super) comment_done: bool,
    pub(super) out: ApplyResult,
    pub(super) planned: usize,
    pub(super) landed: usize,
    pub(super) reporter: Reporter,
}

impl Applier<'_> {
    pub(super) async fn apply(&mut self, item: Item) {
        let parsed = match item {
            Item::File(f) => ParsedResponse {
                files: vec![f],
                ..Default::default()
            },
            Item::Edit(e) => ParsedResponse {
                edits: vec![e],
                ..Default::default()
            },
            Item::RemoveComment => {
                self.remove_comment_alone().await;
                return;
            }
        };
        let mut plan = {
            let source = Overlay {
                texts: &self.overlay,
                inner: self.deliver,
            };
            apply::plan(&self.root, &parsed, &self.opts, &source)
        };
        for c in &mut plan.changes {
            self.strip_comment(c);
            // Text from the overlay has no trustworthy editor version yet.
            if self.overlay.contains_key(&c.abs) {
                c.open = false;
            }
        }
        self.out.files_skipped.extend(plan.skipped);
        self.out.errors.extend(plan.errors);
        self.deliver_changes(plan.changes).await;
    }

    fn strip_comment(&mut self, c: &mut FileChange) {
        let Some(comment) = &self.comment else { return };
        if self.comment_done || c.rel != comment.path {
            return;
        }
        if let Some(stripped) = remove_line(&c.new_text, &comment.line) {
            c.new_text = stripped;
        }
        self.comment_done = true;
    }

    async fn remove_comment_alone(&mut self) {
        let Some(comment) = self.comment.clone() else {
            return;
        };
        if self.comment_done {
            return;
        }
        self.comment_done = true;
        let Ok(safe) = crate::edits::path::resolve(&self.root, &comment.path) else {
            return;
        };
        let current = self
            .overlay
            .get(&safe.abs)
            .cloned()
            .or_else(|| self.deliver.open_text(&safe.abs))
            .or_else(|| std::fs::read_to_string(&safe.abs).ok());
        let Some(old) = current else { return };
        let Some(new_text) = remove_line(&old, &comment.line) else {
            return;
        };
        let open =
            self.deliver.open_text(&safe.abs).is_some() && !self.overlay.contains_key(&safe.abs);
        let change = FileChange {
            rel: safe.rel,
            abs: safe.abs,
            kind: ChangeKind::Update,
            new_text,
            old_text: Some(old),
            open,
        };
        self.deliver_changes(vec![change]).await;
    }

    async fn deliver_changes(&mut self, changes: Vec<FileChange>) {
        if changes.is_empty() {
            return;
        }
        for c in &changes {
            self.planned += 1;
            (self.reporter)(Event::Status(format!("Applying {}", c.rel)));
        }
        let d = self.deliver.deliver(&changes).await;
        let landed: Vec<String> = d.created.iter().chain(d.updated.iter()).cloned().collect();
        self.landed += landed.len();
        for c in changes {
            if landed.contains(&c.rel) {
                self.overlay.insert(c.abs, c.new_text);
            }
        }
        // A file created then updated in one job counts once, as created.
        let created_before: Vec<String> = self.out.files_created.clone();
        d.merge_into(&mut self.out);
        let mut seen = std::collections::HashSet::new();
        self.out
            .files_updated
            .retain(|p| !created_before.contains(p) && seen.insert(p.clone()));
        let mut seen = std::collections::HashSet::new();
        self.out.files_created.retain(|p| seen.insert(p.clone()));
    }
}

/// Removes the first line equal (ignoring surrounding whitespace) to `line`.
fn remove_line(text: &str, line: &str) -> Option<String> {
    let want = line.trim();
    if want.is_empty() {
        return None;
    }
    let mut offset = 0;
    for l in text.split_inclusive('\n') {
        if l.trim() == want {
            let mut out = String::with_capacity(text.len());
            out.push_str(&text[..offset]);
            out.push_str(&text[offset + l.len()..]);
            return Some(out);
        }
        offset += l.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::remove_line;

    #[test]
    fn remove_line_takes_the_first_match_only() {
        let t = "a\n  // @builder make it blue\nb\n// @builder make it blue\n";
        assert_eq!(
            remove_line(t, "// @builder make it blue").unwrap(),
            "a\nb\n// @builder make it blue\n"
        );
        assert!(remove_line("x", "").is_none());
        assert!(remove_line("x\n", "y").is_none());
        assert_eq!(remove_line("last // @b", "last // @b").unwrap(), "");
    }
}
