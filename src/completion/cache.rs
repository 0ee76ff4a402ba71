//! A small cache of cleaned completions. A request is answered without the network when its
//! document has the same text before the cursor as a cached one, or that text plus characters
//! the user typed that match the start of the cached suggestion (then the rest is offered).
//! Entries keep only the last [`TAIL`] bytes of the text before the cursor and its length, so
//! memory stays bounded whatever the file size.

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};

/// Bytes of the text before the cursor an entry remembers.
pub const TAIL: usize = 2048;
/// Entries kept (oldest evicted first).
pub const CAPACITY: usize = 64;

#[derive(Debug, Clone)]
struct Entry {
    doc: String,
    /// Length of the text before the cursor.
    prefix_len: usize,
    /// Its last bytes (at most `TAIL`, starting on a char boundary).
    tail: String,
    /// Hash of the text after the cursor (its first `TAIL` bytes).
    suffix_hash: u64,
    completion: String,
}

#[derive(Debug, Default)]
pub struct Cache {
    entries: VecDeque<Entry>,
}

fn tail_of(s: &str) -> &str {
    let start = super::context::floor_boundary(s, s.len().saturating_sub(TAIL));
    let mut start = start;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn suffix_hash(suffix: &str) -> u64 {
    let end = super::context::floor_boundary(suffix, TAIL);
    let mut h = DefaultHasher::new();
    suffix[..end].hash(&mut h);
    h.finish()
}

impl Cache {
    /// The completion for `before` (text before the cursor) / `after` (text after it), if one
    /// is known: the cached one, minus what the user has typed of it since.
    pub fn get(&mut self, doc: &str, before: &str, after: &str) -> Option<String> {
        let sh = suffix_hash(after);
        let found = self.entries.iter().enumerate().rev().find_map(|(i, e)| {
            if e.doc != doc || e.suffix_hash != sh || before.len() < e.prefix_len {
                return None;
            }
            let base = before.get(..e.prefix_len)?;
            if !base.ends_with(&e.tail) {
                return None;
            }
            let typed = &before[e.prefix_len..];
            let rest = e.completion.strip_prefix(typed)?;
            (!rest.is_empty()).then(|| (i, rest.to_string()))
        });
        let (i, rest) = found?;
        // Most recently used last.
        if let Some(e) = self.entries.remove(i) {
            self.entries.push_back(e);
        }
        Some(rest)
    }

    pub fn put(&mut self, doc: &str, before: &str, after: &str, completion: &str) {
        if completion.is_empty() {
            return;
        }
        let sh = suffix_hash(after);
        let tail = tail_of(before);
        self.entries.retain(|e| {
            !(e.doc == doc && e.prefix_len == before.len() && e.suffix_hash == sh && e.tail == tail)
        });
        while self.entries.len() >= CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            doc: doc.to_string(),
            prefix_len: before.len(),
            tail: tail.to_string(),
            suffix_hash: sh,
            completion: completion.to_string(),
        });
    }

    /// Forgets a closed document.
    pub fn forget(&mut self, doc: &str) {
        self.entries.retain(|e| e.doc != doc);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_prefix_and_typed_into_suggestion() {
        let mut c = Cache::default();
        c.put("a", "let x = ", "\n", "compute(1);");
        assert_eq!(c.get("a", "let x = ", "\n").as_deref(), Some("compute(1);"));
        assert_eq!(c.get("a", "let x = comp", "\n").as_deref(), Some("ute(1);"));
        // Typed something else: no answer.
        assert_eq!(c.get("a", "let x = cx", "\n"), None);
        // Typed all of it: nothing left to offer.
        assert_eq!(c.get("a", "let x = compute(1);", "\n"), None);
        // Another document, another suffix, another prefix.
        assert_eq!(c.get("b", "let x = ", "\n"), None);
        assert_eq!(c.get("a", "let x = ", "\nmore"), None);
        assert_eq!(c.get("a", "let y = ", "\n"), None);
    }

    #[test]
    fn long_prefixes_compare_by_tail_and_length() {
        let mut c = Cache::default();
        let before = format!("{}é tail", "x".repeat(10_000));
        c.put("a", &before, "", "done");
        assert_eq!(c.get("a", &before, "").as_deref(), Some("done"));
        let mut changed = before.clone();
        changed.replace_range(9_990..9_991, "y");
        assert_eq!(c.get("a", &changed, ""), None, "edit inside the tail");
        assert!(c.entries[0].tail.len() <= TAIL);
    }

    #[test]
    fn bounded_and_forgets_documents() {
        let mut c = Cache::default();
        for i in 0..(CAPACITY + 10) {
            c.put("a", &format!("p{i}"), "", "x");
        }
        assert_eq!(c.len(), CAPACITY);
        assert_eq!(c.get("a", "p0", ""), None, "oldest evicted");
        c.forget("a");
        assert!(c.is_empty());
    }
}
