//! Per-project conversation state and its atomic on-disk persistence.
//!
//! The state is bounded (the seed kept the last 15 of 20 messages and 8 of 10
//! edits) so prompts built from it stay small, and it is stored as one JSON
//! file per project under the user's state dir so it survives restarts.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Trim messages once there are more than this many…
pub const MAX_MESSAGES: usize = 20;
/// …down to this many (the seed's behaviour).
pub const KEEP_MESSAGES: usize = 15;
/// Trim edits once there are more than this many…
pub const MAX_EDITS: usize = 10;
/// …down to this many.
pub const KEEP_EDITS: usize = 8;
/// Major changes kept.
pub const MAX_MAJOR_CHANGES: usize = 20;
/// Largest message content kept, in bytes (including the truncation marker).
pub const MAX_CONTENT_BYTES: usize = 32 * 1024;
/// Appended to content cut at [`MAX_CONTENT_BYTES`], so readers know it is partial.
pub const TRUNCATION_MARKER: &str = "…[truncated]";
/// Longest `currentTopic`, in characters; longer topics are truncated.
pub const MAX_TOPIC_CHARS: usize = 500;
/// Most `userPreferences` keys after a merge.
pub const MAX_PREFERENCE_KEYS: usize = 50;
/// Largest serialized `userPreferences` after a merge, in bytes.
pub const MAX_PREFERENCE_BYTES: usize = 16 * 1024;
/// What `clear_old` keeps.
const CLEAR_KEEP_MESSAGES: usize = 5;
const CLEAR_KEEP_EDITS: usize = 3;
const CLEAR_KEEP_MAJOR_CHANGES: usize = 2;

/// Current time as RFC 3339 UTC with milliseconds (`2025-01-02T03:04:05.678Z`).
pub fn now_timestamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A time-ordered, unique-enough id: `<prefix>-<millis>-<8 hex>`.
fn new_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:08x}",
        Utc::now().timestamp_millis(),
        fastrand::u32(..)
    )
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: String,
    /// `"user"`, `"assistant"` or `"system"`.
    pub role: String,
    pub content: String,
    /// RFC 3339 UTC.
    pub timestamp: String,
    /// E.g. `editedFiles: [...]`, `addedPackages`, `sandboxId`.
    #[serde(default)]
    pub metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Edit {
    pub timestamp: String,
    pub user_request: String,
    /// E.g. `"apply"`, `"generate"`.
    pub edit_type: String,
    pub target_files: Vec<String>,
    /// `"success"`, `"partial"` or `"failed"`.
    pub outcome: String,
    #[serde(default)]
    pub error: Option<String>,
}

impl Edit {
    /// An edit stamped now, so callers need not build timestamps themselves.
    pub fn new(
        user_request: &str,
        edit_type: &str,
        target_files: Vec<String>,
        outcome: &str,
        error: Option<String>,
    ) -> Self {
        Edit {
            timestamp: now_timestamp(),
            user_request: user_request.to_string(),
            edit_type: edit_type.to_string(),
            target_files,
            outcome: outcome.to_string(),
            error,
        }
    }

    /// The edit an apply or a generation records for `request` (cut to 500 characters):
    /// `"success"` when `ok`, else `"failed"` when no file changed, else `"partial"`; the
    /// first error says why. Stamped in full RFC 3339 precision, as these records always were.
    pub fn of_change(
        request: &str,
        edit_type: &str,
        files: &[String],
        ok: bool,
        errors: &[String],
    ) -> Self {
        let outcome = if ok {
            "success"
        } else if files.is_empty() {
            "failed"
        } else {
            "partial"
        };
        Edit {
            timestamp: Utc::now().to_rfc3339(),
            user_request: request.chars().take(500).collect(),
            edit_type: edit_type.to_string(),
            target_files: files.to_vec(),
            outcome: outcome.into(),
            error: errors.first().cloned(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MajorChange {
    pub timestamp: String,
    pub description: String,
    pub files_affected: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProjectEvolution {
    #[serde(default)]
    pub major_changes: Vec<MajorChange>,
}

/// Everything remembered about one project's conversation. Serialized with the
/// camelCase field names of the `builder.conversation.*` commands' results.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationState {
    pub conversation_id: String,
    pub started_at: String,
    pub last_updated: String,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default)]
    pub edits: Vec<Edit>,
    #[serde(default)]
    pub project_evolution: ProjectEvolution,
    #[serde(default)]
    pub user_preferences: Map<String, Value>,
    #[serde(default)]
    pub current_topic: Option<String>,
}

impl Default for ConversationState {
    fn default() -> Self {
        Self::new()
    }
}

/// Keeps the last `keep` items once there are more than `max`.
fn trim_front<T>(items: &mut Vec<T>, max: usize, keep: usize) {
    if items.len() > max {
        let drop = items.len() - keep.min(items.len());
        items.drain(..drop);
    }
}

/// Cuts `content` to at most [`MAX_CONTENT_BYTES`] at a char boundary, marking the cut.
fn cap_content(content: &str) -> String {
    if content.len() <= MAX_CONTENT_BYTES {
        return content.to_string();
    }
    let mut end = MAX_CONTENT_BYTES - TRUNCATION_MARKER.len();
    while !content.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + TRUNCATION_MARKER.len());
    out.push_str(&content[..end]);
    out.push_str(TRUNCATION_MARKER);
    out
}

/// Strings of a JSON array value (anything else yields nothing).
fn string_items(value: Option<&Value>) -> impl Iterator<Item = &str> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
}

impl ConversationState {
    /// A fresh conversation with a new id, stamped now.
    pub fn new() -> Self {
        let now = now_timestamp();
        ConversationState {
            conversation_id: new_id("conv"),
            started_at: now.clone(),
            last_updated: now,
            messages: Vec::new(),
            edits: Vec::new(),
            project_evolution: ProjectEvolution::default(),
            user_preferences: Map::new(),
            current_topic: None,
        }
    }

    fn touch(&mut self) {
        self.last_updated = now_timestamp();
    }

    /// Appends a message (content capped at [`MAX_CONTENT_BYTES`]) and trims
    /// the history: once there are more than 20 messages the last 15 are kept.
    pub fn add_message(
        &mut self,
        role: &str,
        content: &str,
        metadata: Map<String, Value>,
    ) -> &Message {
        self.messages.push(Message {
            id: new_id("msg"),
            role: role.to_string(),
            content: cap_content(content),
            timestamp: now_timestamp(),
            metadata,
        });
        trim_front(&mut self.messages, MAX_MESSAGES, KEEP_MESSAGES);
        self.touch();
        // Never empty: we just pushed and trimming keeps at least one.
        &self.messages[self.messages.len() - 1]
    }

    /// Appends an edit; once there are more than 10 the last 8 are kept.
    pub fn add_edit(&mut self, edit: Edit) {
        self.edits.push(edit);
        trim_front(&mut self.edits, MAX_EDITS, KEEP_EDITS);
        self.touch();
    }

    /// Records a major change stamped now; the last 20 are kept.
    pub fn add_major_change(&mut self, description: &str, files: Vec<String>) {
        let changes = &mut self.project_evolution.major_changes;
        changes.push(MajorChange {
            timestamp: now_timestamp(),
            description: description.to_string(),
            files_affected: files,
        });
        trim_front(changes, MAX_MAJOR_CHANGES, MAX_MAJOR_CHANGES);
        self.touch();
    }

    /// Marks the latest user message with `editedFiles` (merged with any
    /// already there, order kept, no duplicates), as the seed did after apply,
    /// so the next prompt knows what that request changed. A no-op when there
    /// is no user message or nothing new to add.
    pub fn record_edited_files(&mut self, files: &[String]) {
        let Some(msg) = self.messages.iter_mut().rev().find(|m| m.role == "user") else {
            return;
        };
        let mut merged: Vec<String> = Vec::new();
        for f in string_items(msg.metadata.get("editedFiles")) {
            if !merged.iter().any(|m| m == f) {
                merged.push(f.to_string());
            }
        }
        let before = merged.len();
        for f in files {
            if !merged.contains(f) {
                merged.push(f.clone());
            }
        }
        if merged.len() == before {
            return;
        }
        msg.metadata.insert(
            "editedFiles".to_string(),
            Value::Array(merged.into_iter().map(Value::String).collect()),
        );
        self.touch();
    }

    /// Sets the topic and merges preferences key by key (`null` deletes a key).
    ///
    /// `current_topic: None` leaves the topic alone; `Some("")` clears it; a
    /// topic longer than 500 characters is truncated (not rejected: the
    /// topic is a hint, and losing its tail hurts less than failing the call).
    /// After the merge at most 50 keys and 16 KiB serialized are allowed; over
    /// either limit the call fails with [`ConversationError::PreferencesTooLarge`]
    /// and nothing (topic included) changes.
    pub fn update(
        &mut self,
        current_topic: Option<String>,
        user_preferences: Option<Map<String, Value>>,
    ) -> Result<(), ConversationError> {
        let merged = match user_preferences {
            Some(patch) => {
                let mut merged = self.user_preferences.clone();
                for (k, v) in patch {
                    if v.is_null() {
                        merged.remove(&k);
                    } else {
                        merged.insert(k, v);
                    }
                }
                if merged.len() > MAX_PREFERENCE_KEYS {
                    return Err(ConversationError::PreferencesTooLarge {
                        what: "keys",
                        actual: merged.len(),
                        limit: MAX_PREFERENCE_KEYS,
                    });
                }
                let bytes = serde_json::to_vec(&merged)
                    .map(|v| v.len())
                    .unwrap_or(usize::MAX);
                if bytes > MAX_PREFERENCE_BYTES {
                    return Err(ConversationError::PreferencesTooLarge {
                        what: "bytes",
                        actual: bytes,
                        limit: MAX_PREFERENCE_BYTES,
                    });
                }
                Some(merged)
            }
            None => None,
        };
        if let Some(merged) = merged {
            self.user_preferences = merged;
        }
        if let Some(topic) = current_topic {
            self.current_topic = if topic.is_empty() {
                None
            } else {
                Some(topic.chars().take(MAX_TOPIC_CHARS).collect())
            };
        }
        self.touch();
        Ok(())
    }

    /// Forgets all but the last 5 messages, 3 edits and 2 major changes (the
    /// seed's `clear-old`); id, preferences and topic stay.
    pub fn clear_old(&mut self) {
        trim_front(&mut self.messages, CLEAR_KEEP_MESSAGES, CLEAR_KEEP_MESSAGES);
        trim_front(&mut self.edits, CLEAR_KEEP_EDITS, CLEAR_KEEP_EDITS);
        trim_front(
            &mut self.project_evolution.major_changes,
            CLEAR_KEEP_MAJOR_CHANGES,
            CLEAR_KEEP_MAJOR_CHANGES,
        );
        self.touch();
    }

    /// Starts a new conversation (new id, new `startedAt`); like the seed's
    /// reset, everything is cleared, preferences and topic included.
    pub fn reset(&mut self) {
        *self = Self::new();
    }

    /// The last `n` messages, oldest first.
    pub fn recent_messages(&self, n: usize) -> &[Message] {
        &self.messages[self.messages.len().saturating_sub(n)..]
    }

    /// Up to `n` distinct files touched recently, most recent first, from
    /// edits' `targetFiles` and messages' `editedFiles` metadata. Events are
    /// ordered by timestamp (unparseable ones count as oldest), ties by their
    /// position in their list; files within one event keep their order.
    pub fn recently_edited_files(&self, n: usize) -> Vec<String> {
        fn parse(ts: &str) -> Option<DateTime<Utc>> {
            DateTime::parse_from_rfc3339(ts)
                .ok()
                .map(|d| d.with_timezone(&Utc))
        }
        /// (when, position in its list, files)
        type Event<'a> = (Option<DateTime<Utc>>, usize, Vec<&'a str>);
        let mut events: Vec<Event> = Vec::new();
        for (i, m) in self.messages.iter().enumerate() {
            let files: Vec<&str> = string_items(m.metadata.get("editedFiles")).collect();
            if !files.is_empty() {
                events.push((parse(&m.timestamp), i, files));
            }
        }
        for (i, e) in self.edits.iter().enumerate() {
            if !e.target_files.is_empty() {
                let files = e.target_files.iter().map(String::as_str).collect();
                events.push((parse(&e.timestamp), i, files));
            }
        }
        events.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
        let mut out: Vec<String> = Vec::new();
        for (_, _, files) in events {
            for f in files {
                if out.len() >= n {
                    return out;
                }
                if !out.iter().any(|o| o == f) {
                    out.push(f.to_string());
                }
            }
        }
        out
    }

    /// Re-applies the bounds to a state read from disk (it may have been
    /// edited by hand or written by another version).
    fn enforce_bounds(&mut self) {
        trim_front(&mut self.messages, MAX_MESSAGES, KEEP_MESSAGES);
        trim_front(&mut self.edits, MAX_EDITS, KEEP_EDITS);
        trim_front(
            &mut self.project_evolution.major_changes,
            MAX_MAJOR_CHANGES,
            MAX_MAJOR_CHANGES,
        );
        for m in &mut self.messages {
            if m.content.len() > MAX_CONTENT_BYTES {
                m.content = cap_content(&m.content);
            }
        }
        if let Some(t) = &self.current_topic {
            if t.chars().count() > MAX_TOPIC_CHARS {
                self.current_topic = Some(t.chars().take(MAX_TOPIC_CHARS).collect());
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// `what` is `"keys"` or `"bytes"`.
    #[error(
        "userPreferences would have {actual} {what}, over the limit of {limit} {what}; \
         remove keys by setting them to null"
    )]
    PreferencesTooLarge {
        what: &'static str,
        actual: usize,
        limit: usize,
    },
    #[error("conversation state file {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("conversation state file {} is corrupt: {message}", path.display())]
    Corrupt { path: PathBuf, message: String },
}

/// FNV-1a 64: stable across runs and Rust versions (unlike `DefaultHasher`).
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(unix)]
fn path_bytes(p: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    p.as_os_str().as_bytes().to_vec()
}

#[cfg(not(unix))]
fn path_bytes(p: &Path) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

/// A file-name-safe, readable form of the project folder's name.
fn sanitize_component(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let s = s.trim_matches('.').to_string();
    if s.is_empty() {
        "project".to_string()
    } else {
        s
    }
}

/// Persists one state file per project: `<dir>/<name>-<fnv1a64 hex>.json`.
#[derive(Debug, Clone)]
pub struct ConversationStore {
    dir: PathBuf,
}

impl ConversationStore {
    pub fn new(dir: PathBuf) -> Self {
        ConversationStore { dir }
    }

    /// The directory the state files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `$BUILDER_STATE_DIR`, else `$XDG_STATE_HOME/builder-lsp/conversations`,
    /// else `~/.local/state/builder-lsp/conversations` (falling back to the
    /// temp dir when there is no home at all).
    pub fn default_dir() -> PathBuf {
        default_dir_from(|k| std::env::var_os(k))
    }

    /// The state file for a project. The key hashes the root path as given
    /// (normalized: repeated and trailing separators removed), so callers
    /// should pass the same, preferably canonical, root each time.
    pub fn path_for(&self, project_root: &Path) -> PathBuf {
        let normalized: PathBuf = project_root.components().collect();
        let hash = fnv1a64(&path_bytes(&normalized));
        let name = normalized
            .file_name()
            .map(|n| sanitize_component(&n.to_string_lossy()))
            .unwrap_or_else(|| "project".to_string());
        self.dir.join(format!("{name}-{hash:016x}.json"))
    }

    /// Missing → `Ok(None)`; unreadable JSON → `Err(Corrupt)` (the caller
    /// starts fresh and warns). Bounds are re-applied to what was read.
    pub fn load(
        &self,
        project_root: &Path,
    ) -> Result<Option<ConversationState>, ConversationError> {
        let path = self.path_for(project_root);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(ConversationError::Io { path, source }),
        };
        match serde_json::from_slice::<ConversationState>(&bytes) {
            Ok(mut state) => {
                state.enforce_bounds();
                Ok(Some(state))
            }
            Err(e) => Err(ConversationError::Corrupt {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// Atomic save: write `<file>.tmp-<random>`, fsync, rename over the file,
    /// fsync the dir (best effort), so a crash leaves the old or the new state,
    /// never a torn one. The dir is created 0700 and the file 0600 on unix:
    /// conversations may hold private code.
    pub fn save(
        &self,
        project_root: &Path,
        state: &ConversationState,
    ) -> Result<(), ConversationError> {
        let path = self.path_for(project_root);
        crate::private_file::create_dir(&self.dir).map_err(|source| ConversationError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let json = serde_json::to_vec_pretty(state).map_err(|e| ConversationError::Io {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        crate::private_file::write_atomic(&path, &json)
            .map_err(|source| ConversationError::Io { path, source })?;
        Ok(())
    }

    /// Removes the project's state file; a missing file is fine.
    pub fn delete(&self, project_root: &Path) -> Result<(), ConversationError> {
        let path = self.path_for(project_root);
        match fs::remove_file(&path) {
            Ok(()) => {
                crate::private_file::sync_dir(&self.dir);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ConversationError::Io { path, source }),
        }
    }
}

/// [`ConversationStore::default_dir`] with the environment injected, for tests.
fn default_dir_from(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    let non_empty = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty("BUILDER_STATE_DIR") {
        return dir;
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(dir) = non_empty("XDG_STATE_HOME").filter(|d| d.is_absolute()) {
        return dir.join("builder-lsp").join("conversations");
    }
    if let Some(home) = non_empty("HOME").or_else(|| non_empty("USERPROFILE")) {
        return home
            .join(".local")
            .join("state")
            .join("builder-lsp")
            .join("conversations");
    }
    std::env::temp_dir()
        .join("builder-lsp")
        .join("conversations")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A successful apply of no files for `request`.
    fn applied(request: &str) -> Edit {
        Edit::new(request, "apply", vec![], "success", None)
    }

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn edit_at(ts: &str, files: &[&str]) -> Edit {
        Edit {
            timestamp: ts.to_string(),
            user_request: "r".into(),
            edit_type: "apply".into(),
            target_files: files.iter().map(|s| s.to_string()).collect(),
            outcome: "success".into(),
            error: None,
        }
    }

    #[test]
    fn new_state_has_id_and_timestamps() {
        let s = ConversationState::new();
        assert!(s.conversation_id.starts_with("conv-"));
        assert!(DateTime::parse_from_rfc3339(&s.started_at).is_ok());
        assert!(s.started_at.ends_with('Z'));
        assert_ne!(s.conversation_id, ConversationState::new().conversation_id);
    }

    #[test]
    fn json_field_names_are_camel_case() {
        let mut s = ConversationState::new();
        s.add_edit(Edit::new(
            "make it blue",
            "apply",
            vec!["a.jsx".into()],
            "success",
            None,
        ));
        s.add_major_change("created app", vec!["src/App.jsx".into()]);
        let v = serde_json::to_value(&s).unwrap();
        for k in [
            "conversationId",
            "startedAt",
            "lastUpdated",
            "messages",
            "edits",
            "projectEvolution",
            "userPreferences",
            "currentTopic",
        ] {
            assert!(v.get(k).is_some(), "missing {k}");
        }
        assert!(v["projectEvolution"]["majorChanges"][0]["filesAffected"].is_array());
        assert_eq!(v["edits"][0]["userRequest"], "make it blue");
        assert_eq!(v["edits"][0]["editType"], "apply");
        assert!(v["edits"][0]["targetFiles"].is_array());
    }

    #[test]
    fn messages_trim_to_15_after_20() {
        let mut s = ConversationState::new();
        for i in 0..20 {
            s.add_message("user", &format!("m{i}"), Map::new());
        }
        assert_eq!(s.messages.len(), 20);
        let last = s
            .add_message("assistant", "m20", Map::new())
            .content
            .clone();
        assert_eq!(last, "m20");
        assert_eq!(s.messages.len(), 15);
        assert_eq!(s.messages[0].content, "m6");
        assert_eq!(s.messages[14].content, "m20");
    }

    #[test]
    fn edits_trim_to_8_after_10_and_major_changes_to_20() {
        let mut s = ConversationState::new();
        for i in 0..10 {
            s.add_edit(applied(&format!("e{i}")));
        }
        assert_eq!(s.edits.len(), 10);
        s.add_edit(applied("e10"));
        assert_eq!(s.edits.len(), 8);
        assert_eq!(s.edits[0].user_request, "e3");
        for i in 0..25 {
            s.add_major_change(&format!("c{i}"), vec![]);
        }
        let changes = &s.project_evolution.major_changes;
        assert_eq!(changes.len(), 20);
        assert_eq!(changes[0].description, "c5");
    }

    #[test]
    fn long_content_is_cut_at_char_boundary() {
        let mut s = ConversationState::new();
        // 3-byte chars so that the cut point falls inside one.
        let content = "€".repeat(20_000);
        let m = s.add_message("assistant", &content, Map::new());
        assert!(m.content.len() <= MAX_CONTENT_BYTES);
        assert!(m.content.ends_with(TRUNCATION_MARKER));
        let body = m.content.strip_suffix(TRUNCATION_MARKER).unwrap();
        assert!(body.chars().all(|c| c == '€'));
        assert!(body.len() > MAX_CONTENT_BYTES - TRUNCATION_MARKER.len() - 3);
        // Exactly at the limit is kept whole.
        let exact = "a".repeat(MAX_CONTENT_BYTES);
        assert_eq!(s.add_message("user", &exact, Map::new()).content, exact);
    }

    #[test]
    fn mutations_update_last_updated() {
        let mut s = ConversationState::new();
        s.last_updated = "2000-01-01T00:00:00.000Z".into();
        s.add_message("user", "hi", Map::new());
        assert_ne!(s.last_updated, "2000-01-01T00:00:00.000Z");
        for f in [
            (|s: &mut ConversationState| s.add_edit(applied("x"))) as fn(&mut ConversationState),
            |s| s.add_major_change("x", vec![]),
            |s| s.record_edited_files(&["a".into()]),
            |s| s.update(Some("t".into()), None).unwrap(),
            |s| s.clear_old(),
        ] {
            s.last_updated = "2000-01-01T00:00:00.000Z".into();
            f(&mut s);
            assert_ne!(s.last_updated, "2000-01-01T00:00:00.000Z");
        }
    }

    #[test]
    fn clear_old_keeps_5_3_2() {
        let mut s = ConversationState::new();
        for i in 0..12 {
            s.add_message("user", &format!("m{i}"), Map::new());
            s.add_major_change(&format!("c{i}"), vec![]);
        }
        for i in 0..9 {
            s.add_edit(applied(&format!("e{i}")));
        }
        s.update(Some("topic".into()), Some(obj(json!({"style": "dark"}))))
            .unwrap();
        let id = s.conversation_id.clone();
        s.clear_old();
        assert_eq!(s.messages.len(), 5);
        assert_eq!(s.messages[0].content, "m7");
        assert_eq!(s.edits.len(), 3);
        assert_eq!(s.edits[0].user_request, "e6");
        assert_eq!(s.project_evolution.major_changes.len(), 2);
        assert_eq!(s.project_evolution.major_changes[1].description, "c11");
        assert_eq!(s.conversation_id, id);
        assert_eq!(s.current_topic.as_deref(), Some("topic"));
        assert_eq!(s.user_preferences.len(), 1);
        // Fewer than the bounds: untouched.
        let mut small = ConversationState::new();
        small.add_message("user", "only", Map::new());
        small.clear_old();
        assert_eq!(small.messages.len(), 1);
    }

    #[test]
    fn reset_clears_everything_with_new_id() {
        let mut s = ConversationState::new();
        s.add_message("user", "hi", Map::new());
        s.add_edit(Edit::new("x", "apply", vec!["a".into()], "success", None));
        s.add_major_change("x", vec![]);
        s.update(Some("topic".into()), Some(obj(json!({"a": 1}))))
            .unwrap();
        let old = s.conversation_id.clone();
        s.reset();
        assert_ne!(s.conversation_id, old);
        assert!(s.messages.is_empty() && s.edits.is_empty());
        assert!(s.project_evolution.major_changes.is_empty());
        assert!(s.user_preferences.is_empty());
        assert!(s.current_topic.is_none());
    }

    #[test]
    fn update_merges_and_null_deletes() {
        let mut s = ConversationState::new();
        s.update(None, Some(obj(json!({"a": 1, "b": "x"}))))
            .unwrap();
        s.update(None, Some(obj(json!({"b": null, "c": [1, 2], "a": 2}))))
            .unwrap();
        assert_eq!(
            Value::Object(s.user_preferences.clone()),
            json!({"a": 2, "c": [1, 2]})
        );
        // Deleting a missing key is fine.
        s.update(None, Some(obj(json!({"zzz": null})))).unwrap();
        assert_eq!(s.user_preferences.len(), 2);
    }

    #[test]
    fn update_topic_truncates_and_clears() {
        let mut s = ConversationState::new();
        s.update(Some("é".repeat(600)), None).unwrap();
        assert_eq!(
            s.current_topic.as_ref().unwrap().chars().count(),
            MAX_TOPIC_CHARS
        );
        s.update(None, None).unwrap();
        assert!(s.current_topic.is_some(), "None leaves the topic alone");
        s.update(Some(String::new()), None).unwrap();
        assert!(s.current_topic.is_none());
    }

    #[test]
    fn update_too_many_keys_leaves_state_unchanged() {
        let mut s = ConversationState::new();
        let mut prefs = Map::new();
        for i in 0..MAX_PREFERENCE_KEYS {
            prefs.insert(format!("k{i}"), json!(i));
        }
        s.update(Some("before".into()), Some(prefs)).unwrap();
        let before = s.clone();
        let err = s
            .update(Some("after".into()), Some(obj(json!({"one_more": 1}))))
            .unwrap_err();
        assert!(matches!(
            err,
            ConversationError::PreferencesTooLarge {
                what: "keys",
                actual: 51,
                limit: 50
            }
        ));
        assert!(err.to_string().contains("50 keys"));
        assert_eq!(s, before);
        // Replacing an existing key at the limit is fine, and so is delete + add.
        s.update(None, Some(obj(json!({"k0": "x", "k1": null, "new": 1}))))
            .unwrap();
        assert_eq!(s.user_preferences.len(), MAX_PREFERENCE_KEYS);
    }

    #[test]
    fn update_too_many_bytes_leaves_state_unchanged() {
        let mut s = ConversationState::new();
        s.update(None, Some(obj(json!({"a": 1})))).unwrap();
        let before = s.clone();
        let big = "x".repeat(MAX_PREFERENCE_BYTES);
        let err = s.update(None, Some(obj(json!({"big": big})))).unwrap_err();
        match &err {
            ConversationError::PreferencesTooLarge { what, limit, .. } => {
                assert_eq!(*what, "bytes");
                assert_eq!(*limit, MAX_PREFERENCE_BYTES);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("16384 bytes"));
        assert_eq!(s, before);
    }

    #[test]
    fn record_edited_files_marks_latest_user_message() {
        let mut s = ConversationState::new();
        // No user message: nothing happens.
        s.record_edited_files(&["x".into()]);
        s.add_message("user", "first", Map::new());
        s.add_message("user", "second", obj(json!({"editedFiles": ["a.jsx"]})));
        s.add_message("assistant", "done", Map::new());
        s.record_edited_files(&["b.jsx".into(), "a.jsx".into()]);
        s.record_edited_files(&["c.css".into()]);
        assert!(s.messages[0].metadata.is_empty());
        assert_eq!(
            s.messages[1].metadata["editedFiles"],
            json!(["a.jsx", "b.jsx", "c.css"])
        );
        assert!(s.messages[2].metadata.is_empty());
    }

    #[test]
    fn recently_edited_files_most_recent_first_deduped() {
        let mut s = ConversationState::new();
        s.edits.push(edit_at(
            "2025-01-01T00:00:01.000Z",
            &["old.jsx", "shared.jsx"],
        ));
        s.messages.push(Message {
            id: "m1".into(),
            role: "user".into(),
            content: "c".into(),
            timestamp: "2025-01-01T00:00:02.000Z".into(),
            metadata: obj(json!({"editedFiles": ["mid.jsx", 5]})),
        });
        s.edits.push(edit_at(
            "2025-01-01T00:00:03.000Z",
            &["new.jsx", "shared.jsx"],
        ));
        s.edits.push(edit_at("not a time", &["ancient.jsx"]));
        assert_eq!(
            s.recently_edited_files(10),
            vec!["new.jsx", "shared.jsx", "mid.jsx", "old.jsx", "ancient.jsx"]
        );
        assert_eq!(s.recently_edited_files(2), vec!["new.jsx", "shared.jsx"]);
        assert!(s.recently_edited_files(0).is_empty());
    }

    #[test]
    fn recent_messages_returns_tail() {
        let mut s = ConversationState::new();
        assert!(s.recent_messages(3).is_empty());
        for i in 0..5 {
            s.add_message("user", &format!("m{i}"), Map::new());
        }
        let r = s.recent_messages(2);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].content, "m3");
        assert_eq!(s.recent_messages(99).len(), 5);
    }

    #[test]
    fn save_load_round_trip_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConversationStore::new(dir.path().join("state").join("conv"));
        let root = Path::new("/home/me/my app");
        assert!(store.load(root).unwrap().is_none());
        let mut s = ConversationState::new();
        s.add_message("user", "héllo ✨", obj(json!({"sandboxId": "sb1"})));
        s.add_edit(Edit::new(
            "x",
            "apply",
            vec!["a".into()],
            "failed",
            Some("boom".into()),
        ));
        s.update(Some("t".into()), Some(obj(json!({"k": {"n": 1}}))))
            .unwrap();
        store.save(root, &s).unwrap();
        // Saving twice replaces the file.
        store.save(root, &s).unwrap();
        assert_eq!(store.load(root).unwrap(), Some(s));
        let names: Vec<String> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].starts_with("my_app-") && names[0].ends_with(".json"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(store.dir()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
            let fmode = fs::metadata(store.path_for(root))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(fmode & 0o777, 0o600);
        }
    }

    #[test]
    fn corrupt_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConversationStore::new(dir.path().to_path_buf());
        let root = Path::new("/p/q");
        fs::write(store.path_for(root), b"{\"conversationId\": ").unwrap();
        match store.load(root) {
            Err(ConversationError::Corrupt { path, message }) => {
                assert_eq!(path, store.path_for(root));
                assert!(!message.is_empty());
            }
            other => panic!("unexpected {other:?}"),
        }
        // Saving over a corrupt file recovers.
        store.save(root, &ConversationState::new()).unwrap();
        assert!(store.load(root).unwrap().is_some());
    }

    #[test]
    fn load_reapplies_bounds_and_tolerates_missing_fields() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConversationStore::new(dir.path().to_path_buf());
        let root = Path::new("/p/bounds");
        let msgs: Vec<Value> = (0..30)
            .map(|i| json!({"id": format!("m{i}"), "role": "user", "content": "c", "timestamp": "t"}))
            .collect();
        let v = json!({"conversationId": "conv-1", "startedAt": "a", "lastUpdated": "b", "messages": msgs});
        fs::write(store.path_for(root), serde_json::to_vec(&v).unwrap()).unwrap();
        let s = store.load(root).unwrap().unwrap();
        assert_eq!(s.messages.len(), KEEP_MESSAGES);
        assert_eq!(s.messages[0].id, "m15");
        assert!(s.edits.is_empty() && s.current_topic.is_none());
    }

    #[test]
    fn two_projects_two_files_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = ConversationStore::new(dir.path().to_path_buf());
        let (a, b) = (Path::new("/work/app"), Path::new("/other/app"));
        assert_ne!(store.path_for(a), store.path_for(b));
        // Normalization: trailing and doubled separators map to the same file.
        assert_eq!(store.path_for(a), store.path_for(Path::new("/work//app/")));
        let mut sa = ConversationState::new();
        sa.add_message("user", "A", Map::new());
        let sb = ConversationState::new();
        store.save(a, &sa).unwrap();
        store.save(b, &sb).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
        assert_eq!(store.load(a).unwrap().unwrap().messages[0].content, "A");
        assert!(store.load(b).unwrap().unwrap().messages.is_empty());
        store.delete(a).unwrap();
        store.delete(a).unwrap();
        assert!(store.load(a).unwrap().is_none());
        assert!(store.load(b).unwrap().is_some());
    }

    #[test]
    fn path_for_sanitizes_name() {
        let store = ConversationStore::new(PathBuf::from("/s"));
        let p = store.path_for(Path::new("/x/..hidden name/"));
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("hidden_name-"), "{name}");
        let root = store.path_for(Path::new("/"));
        assert!(root
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("project-"));
        // Stable across runs: FNV-1a of a known input.
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn default_dir_precedence() {
        use std::collections::HashMap;
        use std::ffi::OsString;
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, OsString> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), OsString::from(v)))
                .collect();
            move |k: &str| m.get(k).cloned()
        };
        assert_eq!(
            default_dir_from(env(&[
                ("BUILDER_STATE_DIR", "/b"),
                ("XDG_STATE_HOME", "/x")
            ])),
            PathBuf::from("/b")
        );
        assert_eq!(
            default_dir_from(env(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")])),
            PathBuf::from("/x/builder-lsp/conversations")
        );
        assert_eq!(
            default_dir_from(env(&[("XDG_STATE_HOME", "rel"), ("HOME", "/h")])),
            PathBuf::from("/h/.local/state/builder-lsp/conversations")
        );
        assert_eq!(
            default_dir_from(env(&[("BUILDER_STATE_DIR", ""), ("HOME", "/h")])),
            PathBuf::from("/h/.local/state/builder-lsp/conversations")
        );
        assert!(default_dir_from(env(&[])).starts_with(std::env::temp_dir()));
    }
}
