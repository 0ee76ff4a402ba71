//! Open documents as ropes, so edits are computed against the editor's text (not the disk),
//! with positions in the encoding negotiated at `initialize` (UTF-16 unless the client offers
//! UTF-8 or UTF-32).

use std::path::{Path, PathBuf};

use dashmap::DashMap;
use ropey::Rope;
use tower_lsp_server::ls_types::{
    Position, PositionEncodingKind, Range, TextDocumentContentChangeEvent, Uri,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

impl Encoding {
    /// Picks the cheapest encoding the client offers; UTF-16 is the protocol's default.
    pub fn negotiate(offered: Option<&[PositionEncodingKind]>) -> Self {
        let offered = offered.unwrap_or(&[]);
        if offered.contains(&PositionEncodingKind::UTF8) {
            Encoding::Utf8
        } else if offered.contains(&PositionEncodingKind::UTF32) {
            Encoding::Utf32
        } else {
            Encoding::Utf16
        }
    }

    pub fn kind(self) -> PositionEncodingKind {
        match self {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
            Encoding::Utf32 => PositionEncodingKind::UTF32,
        }
    }

    fn units(self, c: char) -> usize {
        match self {
            Encoding::Utf8 => c.len_utf8(),
            Encoding::Utf16 => c.len_utf16(),
            Encoding::Utf32 => 1,
        }
    }

    /// Length of `s` in this encoding's code units.
    pub fn len(self, s: &str) -> usize {
        match self {
            Encoding::Utf8 => s.len(),
            Encoding::Utf16 => s.chars().map(char::len_utf16).sum(),
            Encoding::Utf32 => s.chars().count(),
        }
    }
}

/// The position just past the last character of `text` (LSP line breaks: `\n`, `\r\n`, `\r`).
pub fn end_position(text: &str, enc: Encoding) -> Position {
    let bytes = text.as_bytes();
    let mut line = 0u32;
    let mut last_start = 0usize;
    let mut i = 0usize;
    while let Some(off) = memchr::memchr2(b'\n', b'\r', &bytes[i..]) {
        let at = i + off;
        let next = if bytes[at] == b'\r' && bytes.get(at + 1) == Some(&b'\n') {
            at + 2
        } else {
            at + 1
        };
        line += 1;
        last_start = next;
        i = next;
        if i >= bytes.len() {
            break;
        }
    }
    Position::new(line, enc.len(&text[last_start..]) as u32)
}

pub struct Document {
    pub rope: Rope,
    pub version: i32,
    pub path: Option<PathBuf>,
}

/// All open documents, keyed by URI string.
#[derive(Default)]
pub struct Documents {
    docs: DashMap<String, Document>,
    by_path: DashMap<PathBuf, String>,
}

impl Documents {
    pub fn open(&self, uri: &Uri, text: &str, version: i32) {
        let path = uri.to_file_path().map(|p| p.into_owned());
        if let Some(p) = &path {
            self.by_path.insert(p.clone(), uri.as_str().to_string());
        }
        self.docs.insert(
            uri.as_str().to_string(),
            Document {
                rope: Rope::from_str(text),
                version,
                path,
            },
        );
    }

    pub fn close(&self, uri: &Uri) {
        if let Some((_, doc)) = self.docs.remove(uri.as_str()) {
            if let Some(p) = doc.path {
                self.by_path.remove(&p);
            }
        }
    }

    /// Applies incremental (or full) changes in order. Out-of-range positions are clamped, as
    /// the protocol asks, so a confused client cannot make the server panic.
    pub fn change(
        &self,
        uri: &Uri,
        version: i32,
        changes: Vec<TextDocumentContentChangeEvent>,
        enc: Encoding,
    ) {
        let Some(mut doc) = self.docs.get_mut(uri.as_str()) else {
            return;
        };
        for ch in changes {
            match ch.range {
                None => doc.rope = Rope::from_str(&ch.text),
                Some(range) => {
                    let start = char_index(&doc.rope, range.start, enc);
                    let end = char_index(&doc.rope, range.end, enc).max(start);
                    doc.rope.remove(start..end);
                    doc.rope.insert(start, &ch.text);
                }
            }
        }
        doc.version = version;
    }

    pub fn text(&self, uri: &Uri) -> Option<String> {
        self.docs.get(uri.as_str()).map(|d| d.rope.to_string())
    }

    /// Line `n` of an open document, without its line break.
    pub fn line(&self, uri: &Uri, n: usize) -> Option<String> {
        let doc = self.docs.get(uri.as_str())?;
        if n >= doc.rope.len_lines() {
            return None;
        }
        let line = doc.rope.line(n).to_string();
        Some(line.trim_end_matches(['\n', '\r']).to_string())
    }

    pub fn line_count(&self, uri: &Uri) -> usize {
        self.docs
            .get(uri.as_str())
            .map(|d| d.rope.len_lines())
            .unwrap_or(0)
    }

    /// (path, text) of every open document under `root`.
    pub fn texts_under(&self, root: &Path) -> Vec<(PathBuf, String)> {
        self.docs
            .iter()
            .filter_map(|d| {
                let p = d.path.as_ref()?;
                p.starts_with(root).then(|| (p.clone(), d.rope.to_string()))
            })
            .collect()
    }

    /// Text and version of an open document (one lock, so they match).
    pub fn text_and_version(&self, uri: &Uri) -> Option<(String, i32)> {
        self.docs
            .get(uri.as_str())
            .map(|d| (d.rope.to_string(), d.version))
    }

    /// (uri, path) of every open document under `root`.
    pub fn uris_under(&self, root: &Path) -> Vec<(Uri, PathBuf)> {
        self.docs
            .iter()
            .filter_map(|d| {
                let p = d.path.as_ref()?;
                if !p.starts_with(root) {
                    return None;
                }
                let uri: Uri = d.key().parse().ok()?;
                Some((uri, p.clone()))
            })
            .collect()
    }

    pub fn version_of_path(&self, path: &Path) -> Option<i32> {
        let uri = self.by_path.get(path)?;
        self.docs.get(uri.as_str()).map(|d| d.version)
    }

    /// Text and end position of an open document, by file path.
    pub fn text_of_path(&self, path: &Path) -> Option<String> {
        let uri = self.by_path.get(path)?;
        self.docs.get(uri.as_str()).map(|d| d.rope.to_string())
    }

    pub fn is_open(&self, path: &Path) -> bool {
        self.by_path.contains_key(path)
    }
}

/// A cursor resolved against a document: where it is in bytes, and in the negotiated encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// Byte offset in the document text.
    pub byte: usize,
    /// The position, clamped into the document.
    pub position: Position,
    /// Where the identifier ending at the cursor starts (equal to `position` when none).
    pub word_start: Position,
    /// That identifier's text.
    pub word: String,
}

impl Documents {
    /// Text, path and resolved cursor of an open document (one lock, so they agree).
    pub fn cursor(
        &self,
        uri: &Uri,
        pos: Position,
        enc: Encoding,
    ) -> Option<(String, Option<PathBuf>, Cursor)> {
        let doc = self.docs.get(uri.as_str())?;
        let rope = &doc.rope;
        let ci = char_index(rope, pos, enc);
        let line = rope.char_to_line(ci);
        let before: String = rope.slice(rope.line_to_char(line)..ci).chars().collect();
        let word_len = before
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
            .map(char::len_utf8)
            .sum::<usize>();
        let word = before[before.len() - word_len..].to_string();
        let line = line as u32;
        let cursor = Cursor {
            byte: rope.char_to_byte(ci),
            position: Position::new(line, enc.len(&before) as u32),
            word_start: Position::new(line, enc.len(&before[..before.len() - word_len]) as u32),
            word,
        };
        Some((rope.to_string(), doc.path.clone(), cursor))
    }
}

/// Char index of an LSP position in `rope`, clamping past-the-end lines and columns.
pub fn char_index(rope: &Rope, pos: Position, enc: Encoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let line_start = rope.line_to_char(line);
    let line_slice = rope.line(line);
    let mut units = 0usize;
    let want = pos.character as usize;
    for (i, c) in line_slice.chars().enumerate() {
        if c == '\n' || c == '\r' || units >= want {
            return line_start + i;
        }
        units += enc.units(c);
    }
    line_start + line_slice.len_chars()
}

/// The range covering all of `text`.
pub fn full_range(text: &str, enc: Encoding) -> Range {
    Range::new(Position::new(0, 0), end_position(text, enc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri() -> Uri {
        Uri::from_file_path("/p/a.js").unwrap()
    }

    fn change(sl: u32, sc: u32, el: u32, ec: u32, text: &str) -> TextDocumentContentChangeEvent {
        TextDocumentContentChangeEvent {
            range: Some(Range::new(Position::new(sl, sc), Position::new(el, ec))),
            range_length: None,
            text: text.into(),
        }
    }

    #[test]
    fn end_position_counts_lsp_line_breaks() {
        assert_eq!(end_position("", Encoding::Utf16), Position::new(0, 0));
        assert_eq!(end_position("ab", Encoding::Utf16), Position::new(0, 2));
        assert_eq!(end_position("a\n", Encoding::Utf16), Position::new(1, 0));
        assert_eq!(end_position("a\r\nb", Encoding::Utf16), Position::new(1, 1));
        assert_eq!(
            end_position("a\rb\nc😀", Encoding::Utf16),
            Position::new(2, 3)
        );
        assert_eq!(
            end_position("a\rb\nc😀", Encoding::Utf8),
            Position::new(2, 5)
        );
        assert_eq!(
            end_position("a\rb\nc😀", Encoding::Utf32),
            Position::new(2, 2)
        );
        // U+2028 is not an LSP line break.
        assert_eq!(
            end_position("a\u{2028}b", Encoding::Utf32),
            Position::new(0, 3)
        );
    }

    #[test]
    fn incremental_changes_in_utf16() {
        let d = Documents::default();
        d.open(&uri(), "const a = '😀';\nlet b;\n", 1);
        // Replace `b` (line 1, col 4..5) with `bee`.
        d.change(&uri(), 2, vec![change(1, 4, 1, 5, "bee")], Encoding::Utf16);
        // Replace the emoji: in UTF-16 it spans columns 11..13.
        d.change(&uri(), 3, vec![change(0, 11, 0, 13, "x")], Encoding::Utf16);
        assert_eq!(d.text(&uri()).unwrap(), "const a = 'x';\nlet bee;\n");
        assert_eq!(d.version_of_path(Path::new("/p/a.js")), Some(3));
    }

    #[test]
    fn incremental_changes_in_utf8() {
        let d = Documents::default();
        d.open(&uri(), "é=1\n", 1);
        d.change(&uri(), 2, vec![change(0, 2, 0, 3, "=")], Encoding::Utf8);
        assert_eq!(d.text(&uri()).unwrap(), "é=1\n");
        d.change(&uri(), 3, vec![change(0, 3, 0, 4, "2")], Encoding::Utf8);
        assert_eq!(d.text(&uri()).unwrap(), "é=2\n");
    }

    #[test]
    fn out_of_range_positions_are_clamped() {
        let d = Documents::default();
        d.open(&uri(), "ab\ncd", 1);
        d.change(&uri(), 2, vec![change(0, 99, 0, 120, "!")], Encoding::Utf16);
        d.change(&uri(), 3, vec![change(50, 0, 60, 0, "?")], Encoding::Utf16);
        d.change(&uri(), 4, vec![change(1, 1, 0, 0, "")], Encoding::Utf16);
        assert_eq!(d.text(&uri()).unwrap(), "ab!\ncd?");
    }

    #[test]
    fn full_replacement_and_close() {
        let d = Documents::default();
        d.open(&uri(), "x", 1);
        d.change(
            &uri(),
            2,
            vec![TextDocumentContentChangeEvent {
                range: None,
                range_length: None,
                text: "y\r\nz".into(),
            }],
            Encoding::Utf16,
        );
        assert_eq!(
            d.text_of_path(Path::new("/p/a.js")).as_deref(),
            Some("y\r\nz")
        );
        d.close(&uri());
        assert!(!d.is_open(Path::new("/p/a.js")));
    }

    #[test]
    fn cursor_in_utf16_and_utf8() {
        let d = Documents::default();
        // `é` is 1 UTF-16 unit / 2 bytes, `😀` is 2 units / 4 bytes.
        d.open(&uri(), "a\nlet é😀 = fooBar", 1);
        let text_len = "a\nlet é😀 = fooBar".len();
        let (_, _, c16) = d
            .cursor(&uri(), Position::new(1, 16), Encoding::Utf16)
            .unwrap();
        assert_eq!(c16.byte, text_len);
        assert_eq!(c16.position, Position::new(1, 16));
        assert_eq!(c16.word, "fooBar");
        assert_eq!(c16.word_start, Position::new(1, 10));
        let (_, _, c8) = d
            .cursor(&uri(), Position::new(1, 19), Encoding::Utf8)
            .unwrap();
        assert_eq!(c8.byte, text_len);
        assert_eq!(c8.word_start, Position::new(1, 13));
        // Past the end of the line: clamped, and reported where it really is.
        let (_, _, c) = d
            .cursor(&uri(), Position::new(1, 99), Encoding::Utf16)
            .unwrap();
        assert_eq!(c.position, Position::new(1, 16));
        // Inside the emoji's surrogate pair: the cursor moves past the whole character.
        let (_, _, c) = d
            .cursor(&uri(), Position::new(1, 6), Encoding::Utf16)
            .unwrap();
        assert_eq!(c.position, Position::new(1, 7));
        assert_eq!(c.byte, "a\nlet é😀".len());
        assert_eq!(c.word, "");
        let (_, _, c) = d
            .cursor(&uri(), Position::new(1, 6), Encoding::Utf8)
            .unwrap();
        assert_eq!(c.word, "é");
        assert_eq!(c.word_start, Position::new(1, 4));
    }

    #[test]
    fn negotiation_prefers_utf8() {
        let k = [PositionEncodingKind::UTF16, PositionEncodingKind::UTF8];
        assert_eq!(Encoding::negotiate(Some(&k)), Encoding::Utf8);
        assert_eq!(Encoding::negotiate(None), Encoding::Utf16);
    }
}
