//! Incremental parser of the model's answer.
//!
//! Recognised tags (lowercase only: JSX components such as `<File>` or `<Edit>` must stay
//! content):
//! - `<file path="…">…</file>`: inside, only `</file>` ends the block, except that a new
//!   `<file path=…>` or `<edit path=…>` opening truncates it (the model lost track).
//! - `<edit path="…"><search>…</search><replace>…</replace></edit>`; several pairs in one
//!   block each become a [`ParsedEdit`]. A missing `</replace>` right before `</edit>` is
//!   tolerated; a missing `</edit>` is not.
//! - `<package>`, `<packages>`, `<command>`, `<explanation>`. An unclosed package or command
//!   is dropped (a cut-off name or command line must not run); an unclosed explanation is
//!   kept.
//! - Everything else outside these blocks is prose. In [`ResponseParser::finish`], fenced
//!   blocks in the prose that name a file (` ```jsx path="…" ` or a first-line
//!   `// File: …` comment) become files too.
//!
//! Speed: text is scanned with `memchr` for `<` and copied in runs with `push_str`; only a
//! possibly partial tag at the end of a chunk is carried over, so each byte is looked at
//! about once no matter how the stream is chunked.
//!
//! `tags` decides what a `<` starts, `content` trims a block's content, and `prose`
//! finds the fenced fallback files in the text outside all blocks.

use std::collections::{HashMap, HashSet};

use memchr::memchr;

use super::{ParsedEdit, ParsedFile, ParsedResponse};

mod content;
mod prose;
mod tags;

use content::{is_markdown, normalize_trailing, strip_wrapping_fence, trim_inner_end};
use prose::{collapse_blank_lines, scan_fences};
use tags::{classify, Mode, Name, Step};

/// An opening tag longer than this is not a tag: bounds the carry buffer.
const MAX_TAG: usize = 1024;
/// Prose is only informational; a runaway answer must not make it huge.
const PROSE_CAP: usize = 64 * 1024;
/// A carry longer than any bare tag name is waiting for an opening tag's `>`.
const SHORT_CARRY: usize = 16;

/// What the parser reports as soon as it knows it, for live progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseEvent {
    FileStart {
        path: String,
    },
    /// `files()[index]` just closed (complete).
    FileEnd {
        index: usize,
    },
    /// `edits()[index]` just closed (complete or not: check its flag).
    EditEnd {
        index: usize,
    },
    Package(String),
    Command(String),
    Explanation(String),
}

/// Per-pair progress bits of an edit: both are needed for `complete`.
const SEARCH_DONE: u8 = 1;
const REPLACE_DONE: u8 = 2;

/// Streaming parser; see the module docs for the format.
pub struct ResponseParser {
    mode: Mode,
    /// Unprocessed tail of the stream: a possibly partial tag.
    carry: String,
    /// Reused buffer that joins `carry` and the next chunk.
    spare: String,
    bytes_seen: usize,
    files: Vec<ParsedFile>,
    /// Length of `outside` when each file opened: orders tag files against fallback blocks.
    file_keys: Vec<usize>,
    edits: Vec<ParsedEdit>,
    edit_flags: Vec<u8>,
    edit_path: String,
    edit_block_start: usize,
    /// Content of the open small tag (package, packages, command, explanation).
    small: String,
    packages: Vec<String>,
    package_set: HashSet<String>,
    commands: Vec<String>,
    explanation: String,
    /// Text outside all blocks, kept whole for the fenced fallbacks.
    outside: String,
    /// A block just ended: the next prose starts on a new line.
    outside_fresh: bool,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    pub fn new() -> Self {
        Self {
            mode: Mode::Outside,
            carry: String::new(),
            spare: String::new(),
            bytes_seen: 0,
            files: Vec::new(),
            file_keys: Vec::new(),
            edits: Vec::new(),
            edit_flags: Vec::new(),
            edit_path: String::new(),
            edit_block_start: 0,
            small: String::new(),
            packages: Vec::new(),
            package_set: HashSet::new(),
            commands: Vec::new(),
            explanation: String::new(),
            outside: String::new(),
            outside_fresh: false,
        }
    }

    /// Consumes the next piece of the answer; events for what completed are appended.
    pub fn feed(&mut self, chunk: &str, events: &mut Vec<ParseEvent>) {
        self.bytes_seen += chunk.len();
        if self.carry.is_empty() {
            let n = self.run(chunk, false, events);
            self.carry.push_str(chunk.get(n..).unwrap_or(""));
            return;
        }
        // Waiting for a long opening tag's `>`: re-reading the carry for every small
        // chunk would be quadratic, and delaying never changes the result.
        if self.carry.len() > SHORT_CARRY
            && self.carry.len() + chunk.len() < MAX_TAG
            && !matches!(self.carry.as_bytes().last(), Some(b'>' | b'\r'))
            && memchr(b'>', chunk.as_bytes()).is_none()
        {
            self.carry.push_str(chunk);
            return;
        }
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        buf.push_str(&self.carry);
        buf.push_str(chunk);
        self.carry.clear();
        let n = self.run(&buf, false, events);
        self.carry.push_str(buf.get(n..).unwrap_or(""));
        self.spare = buf;
    }

    /// Raw `<file>` blocks as seen so far, duplicates included.
    pub fn files(&self) -> &[ParsedFile] {
        &self.files
    }

    pub fn edits(&self) -> &[ParsedEdit] {
        &self.edits
    }

    /// Packages named so far (deduplicated).
    pub fn packages(&self) -> &[String] {
        &self.packages
    }

    pub fn commands(&self) -> &[String] {
        &self.commands
    }

    /// Path and bytes so far of the open `<file>`, for progress messages.
    pub fn current_file(&self) -> Option<(&str, usize)> {
        match self.mode {
            Mode::File => self
                .files
                .last()
                .map(|f| (f.path.as_str(), f.content.len())),
            _ => None,
        }
    }

    pub fn bytes_seen(&self) -> usize {
        self.bytes_seen
    }

    /// Ends the stream: open blocks stay incomplete, fallbacks are applied, duplicates
    /// resolved.
    pub fn finish(mut self) -> ParsedResponse {
        let mut events = Vec::new();
        let carry = std::mem::take(&mut self.carry);
        self.run(&carry, true, &mut events);
        if self.mode == Mode::Small(Name::Explanation) {
            self.close_small(Name::Explanation, &mut events);
        }

        let (fallbacks, prose) = scan_fences(&self.outside);
        let mut blocks: Vec<(usize, u8, ParsedFile)> = self
            .file_keys
            .iter()
            .copied()
            .zip(self.files)
            .map(|(k, f)| (k, 0, f))
            .chain(fallbacks.into_iter().map(|(k, f)| (k, 1, f)))
            .collect();
        blocks.sort_by_key(|b| (b.0, b.1));

        let mut files: Vec<ParsedFile> = Vec::new();
        let mut slot: HashMap<String, usize> = HashMap::new();
        for (_, _, f) in blocks {
            match slot.get(&f.path) {
                None => {
                    slot.insert(f.path.clone(), files.len());
                    files.push(f);
                }
                Some(&i) => {
                    if let Some(old) = files.get_mut(i) {
                        if f.complete || !old.complete {
                            *old = f;
                        }
                    }
                }
            }
        }
        let truncated = files
            .iter()
            .filter(|f| !f.complete)
            .map(|f| f.path.clone())
            .collect();

        let prose = collapse_blank_lines(prose.trim());
        let mut cut = prose.len().min(PROSE_CAP);
        while !prose.is_char_boundary(cut) {
            cut -= 1;
        }
        ParsedResponse {
            files,
            edits: self.edits,
            packages: self.packages,
            commands: self.commands,
            explanation: self.explanation,
            prose: prose[..cut].to_string(),
            truncated,
        }
    }

    /// Processes `data`; returns how many bytes were consumed (the rest is a possibly
    /// partial tag). With `eof`, everything is consumed.
    fn run(&mut self, data: &str, eof: bool, events: &mut Vec<ParseEvent>) -> usize {
        let bytes = data.as_bytes();
        let mut flushed = 0;
        let mut scan = 0;
        while let Some(off) = bytes.get(scan..).and_then(|rest| memchr(b'<', rest)) {
            let lt = scan + off;
            match classify(bytes, lt, eof, self.mode) {
                Step::Text => scan = lt + 1,
                Step::More => {
                    self.emit(data.get(flushed..lt).unwrap_or(""));
                    return lt;
                }
                Step::Open { name, path, end } => {
                    self.emit(data.get(flushed..lt).unwrap_or(""));
                    let path = path
                        .and_then(|(a, b)| data.get(a..b))
                        .unwrap_or("")
                        .trim()
                        .to_string();
                    self.open(name, path, events);
                    flushed = end;
                    scan = end;
                }
                Step::Close { name, end } => {
                    self.emit(data.get(flushed..lt).unwrap_or(""));
                    self.close(name, events);
                    flushed = end;
                    scan = end;
                }
            }
        }
        self.emit(data.get(flushed..).unwrap_or(""));
        bytes.len()
    }

    /// Appends text to wherever the current mode sends it.
    fn emit(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        match self.mode {
            Mode::Outside => {
                if self.outside_fresh {
                    self.outside_fresh = false;
                    if !self.outside.is_empty() && !self.outside.ends_with('\n') {
                        self.outside.push('\n');
                    }
                }
                self.outside.push_str(s);
            }
            Mode::File => {
                if let Some(f) = self.files.last_mut() {
                    f.content.push_str(s);
                }
            }
            Mode::EditBody => {}
            Mode::EditSearch => {
                if let Some(e) = self.edits.last_mut() {
                    e.search.push_str(s);
                }
            }
            Mode::EditReplace => {
                if let Some(e) = self.edits.last_mut() {
                    e.replace.push_str(s);
                }
            }
            Mode::Small(_) => self.small.push_str(s),
        }
    }

    fn open(&mut self, name: Name, path: String, events: &mut Vec<ParseEvent>) {
        match name {
            Name::File | Name::Edit => {
                // A new block while one is open: that one stays incomplete.
                if let Mode::Small(k) = self.mode {
                    if k == Name::Explanation {
                        self.close_small(k, events);
                    }
                    self.small.clear();
                }
                if name == Name::File {
                    self.file_keys.push(self.outside.len());
                    events.push(ParseEvent::FileStart { path: path.clone() });
                    self.files.push(ParsedFile {
                        path,
                        content: String::new(),
                        complete: false,
                    });
                    self.mode = Mode::File;
                } else {
                    self.edit_path = path;
                    self.edit_block_start = self.edits.len();
                    self.mode = Mode::EditBody;
                }
            }
            Name::Search => {
                self.push_pair();
                self.mode = Mode::EditSearch;
            }
            Name::Replace => {
                let reuse = self.edits.len() > self.edit_block_start
                    && self.edit_flags.last() == Some(&SEARCH_DONE);
                if !reuse {
                    self.push_pair();
                }
                self.mode = Mode::EditReplace;
            }
            Name::Package | Name::Packages | Name::Command | Name::Explanation => {
                self.small.clear();
                self.mode = Mode::Small(name);
            }
        }
    }

    fn push_pair(&mut self) {
        self.edits.push(ParsedEdit {
            path: self.edit_path.clone(),
            search: String::new(),
            replace: String::new(),
            complete: false,
        });
        self.edit_flags.push(0);
    }

    fn close(&mut self, name: Name, events: &mut Vec<ParseEvent>) {
        match name {
            Name::File => {
                if let Some(f) = self.files.last_mut() {
                    if !is_markdown(&f.path) {
                        strip_wrapping_fence(&mut f.content);
                    }
                    normalize_trailing(&mut f.content);
                    f.complete = true;
                    events.push(ParseEvent::FileEnd {
                        index: self.files.len() - 1,
                    });
                }
                self.enter_outside();
            }
            Name::Search => {
                self.finish_inner(SEARCH_DONE);
                self.mode = Mode::EditBody;
            }
            Name::Replace => {
                self.finish_inner(REPLACE_DONE);
                self.mode = Mode::EditBody;
            }
            Name::Edit => {
                match self.mode {
                    Mode::EditSearch => self.finish_inner(SEARCH_DONE),
                    Mode::EditReplace => self.finish_inner(REPLACE_DONE),
                    _ => {}
                }
                let start = self.edit_block_start.min(self.edits.len());
                for (i, e) in self.edits.iter_mut().enumerate().skip(start) {
                    let flags = self.edit_flags.get(i).copied().unwrap_or(0);
                    e.complete = flags == SEARCH_DONE | REPLACE_DONE;
                    events.push(ParseEvent::EditEnd { index: i });
                }
                self.edit_block_start = self.edits.len();
                self.enter_outside();
            }
            Name::Package | Name::Packages | Name::Command | Name::Explanation => {
                self.close_small(name, events);
                self.enter_outside();
            }
        }
    }

    /// Ends the search or replace text of the last pair.
    fn finish_inner(&mut self, bit: u8) {
        if let (Some(e), Some(flags)) = (self.edits.last_mut(), self.edit_flags.last_mut()) {
            let text = if bit == SEARCH_DONE {
                &mut e.search
            } else {
                &mut e.replace
            };
            trim_inner_end(text);
            *flags |= bit;
        }
    }

    fn close_small(&mut self, name: Name, events: &mut Vec<ParseEvent>) {
        let text = std::mem::take(&mut self.small);
        match name {
            Name::Package | Name::Packages => {
                let names = text
                    .split(|c: char| c == ',' || c.is_whitespace())
                    .map(|s| s.trim_matches(|c| matches!(c, '"' | '\'' | '`')))
                    .filter(|s| !s.is_empty());
                for n in names {
                    if self.package_set.insert(n.to_string()) {
                        self.packages.push(n.to_string());
                        events.push(ParseEvent::Package(n.to_string()));
                    }
                }
            }
            Name::Command => {
                let cmd = text.trim();
                if !cmd.is_empty() {
                    self.commands.push(cmd.to_string());
                    events.push(ParseEvent::Command(cmd.to_string()));
                }
            }
            _ => {
                let t = text.trim();
                if !t.is_empty() {
                    if !self.explanation.is_empty() {
                        self.explanation.push_str("\n\n");
                    }
                    self.explanation.push_str(t);
                    events.push(ParseEvent::Explanation(t.to_string()));
                }
            }
        }
        self.small = text;
        self.small.clear();
    }

    fn enter_outside(&mut self) {
        self.mode = Mode::Outside;
        self.outside_fresh = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::parse;

    /// Feeds `text` in chunks of about `size` bytes, split at char boundaries.
    fn chunked(text: &str, size: usize) -> (ParsedResponse, Vec<ParseEvent>) {
        let mut p = ResponseParser::new();
        let mut ev = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let mut e = (i + size).min(text.len());
            while !text.is_char_boundary(e) {
                e += 1;
            }
            p.feed(&text[i..e], &mut ev);
            i = e;
        }
        assert_eq!(p.bytes_seen(), text.len());
        (p.finish(), ev)
    }

    fn one_shot(text: &str) -> (ParsedResponse, Vec<ParseEvent>) {
        chunked(text, usize::MAX / 2)
    }

    fn file<'a>(r: &'a ParsedResponse, path: &str) -> &'a ParsedFile {
        r.files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no file {path} in {r:#?}"))
    }

    const JSX: &str = r#"import { useState } from 'react'

export default function Hero({ title }) {
  const [open, setOpen] = useState(false)
  return (
    <section className="py-20 bg-gray-900 text-white">
      <div className="container mx-auto px-4">
        <h1 className="text-5xl font-bold">{title}</h1>
        {items.map((i) => <li key={i}>{i < 3 ? 'a' : 'b'}</li>)}
        <button onClick={() => setOpen(!open)} disabled={a<b}>Toggle</button>
        <filter id="f"></filter><file-icon /><File path="x" /></File>
      </div>
    </section>
  )
}
"#;

    fn cases() -> Vec<String> {
        vec![
            String::new(),
            "Just some prose, no tags at all.".into(),
            format!("Here you go:\n<file path=\"src/Hero.jsx\">\n{JSX}</file>\n<file path='src/App.jsx'>\nexport default () => <div/>\n</file>\nDone."),
            "<file path=\"a.js\">\none\n</file>\n<file path=\"a.js\">\ntwo\n</file>\n<file path=\"b.js\">\nb\n</file>".into(),
            "<file path=\"a.js\">\ncomplete\n</file>\n<file path=\"a.js\">\npartial".into(),
            "<file path=\"a.js\">\nfirst\n<file path=\"b.js\">\nsecond\n</file>".into(),
            "Intro\n```jsx path=\"src/A.jsx\"\nconst a = <div>1</div>\n```\nmiddle\n```js\n// File: src/B.js\nexport const b = 2\n```\n```css\n/* File: src/c.css */\nbody{}\n```\n```\nplain fence\n```\nend".into(),
            "<file path=\"src/W.jsx\">\n```jsx\nconst w = <p>w</p>\n```\n</file>".into(),
            "<packages>react-router-dom, lucide-react\nframer-motion  axios,,react-router-dom</packages>\n<package>axios</package><package> zod </package>".into(),
            "<command>npm run build</command>\n<command>\n  npm test  \n</command><command>  </command>".into(),
            "<explanation>\n  Built a hero section.\n</explanation> trailing prose".into(),
            "<edit path=\"src/App.jsx\">\n  <search>\n  <h1>Old</h1>\n  </search>\n  <replace>\n  <h1>New</h1>\n  </replace>\n</edit>".into(),
            "<edit path=\"src/App.jsx\"><search>a</search><replace>b</replace></edit><edit path=\"x.js\"><search>\nq\n</search>".into(),
            "<file path=\"src/i18n.js\">\nexport const t = { zh: '你好世界', emoji: '🚀✨👩‍💻', ja: 'こんにちは' }\n</file>".into(),
            "<thinking>plan <div>stuff</div></thinking>\n<structure>src/</structure><template>x</template>\n<file path=\"x.jsx\">\n<div><span>a</span></div>\n</file>".into(),
            "<file path=\"x.jsx\">\n</fil</filter></file >\n".into(),
            "<file\n  path = \"src/sp.js\"\n  lang=\"js\" >\r\nwindows\r\nlines\r\n\r\n</file>".into(),
            "```tsx path='src/T.tsx'\nconst t = 1\n".into(),
            "< file path=\"no.js\">x</file> <file>no path</file> <file path=\"\">empty</file> <file path=\"self\"/>".into(),
            "<explanation>never closed <file path=\"e.js\">\ne\n</file>".into(),
            "<command>rm -rf /tmp/x".into(),
            "<edit path=\"e.js\">\n<search>\nold\n</search>\n<replace>\nnew\n</edit>".into(),
        ]
    }

    #[test]
    fn all_chunk_sizes_match_one_shot() {
        let mut inputs = cases();
        inputs.push(big_answer(40));
        for text in &inputs {
            let (whole, whole_ev) = one_shot(text);
            assert_eq!(whole, parse(text));
            for size in 1..=17 {
                let (r, ev) = chunked(text, size);
                assert_eq!(r, whole, "size {size} on {text:?}");
                assert_eq!(ev, whole_ev, "events, size {size} on {text:?}");
            }
        }
    }

    fn big_answer(files: usize) -> String {
        let mut s = String::from("I'll build it.\n");
        for i in 0..files {
            s.push_str(&format!("<file path=\"src/components/C{i}.jsx\">\n"));
            for _ in 0..(i % 5 + 1) {
                s.push_str(JSX);
            }
            s.push_str("</file>\n");
        }
        s.push_str("<packages>react-icons</packages>\n<explanation>done</explanation>");
        s
    }

    #[test]
    fn empty_response() {
        let r = parse("");
        assert_eq!(r, ParsedResponse::default());
        let p = ResponseParser::default();
        assert_eq!(p.current_file(), None);
        assert_eq!(p.finish(), ParsedResponse::default());
    }

    #[test]
    fn prose_only() {
        let r = parse("  Just some prose, no tags at all.\n");
        assert!(r.files.is_empty());
        assert_eq!(r.prose, "Just some prose, no tags at all.");
    }

    #[test]
    fn multi_file_in_order() {
        let r = parse(&cases()[2]);
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.files[0].path, "src/Hero.jsx");
        assert_eq!(r.files[0].content, JSX);
        assert!(r.files[0].complete);
        assert_eq!(r.files[1].path, "src/App.jsx");
        assert_eq!(r.files[1].content, "export default () => <div/>\n");
        assert!(r.truncated.is_empty());
        assert_eq!(r.prose, "Here you go:\n\nDone.");
    }

    #[test]
    fn jsx_with_many_angle_brackets_is_byte_exact() {
        let text = format!("<file path=\"h.jsx\">\n{JSX}</file>");
        for size in [1, 2, 3, 7, 64] {
            let (r, _) = chunked(&text, size);
            assert_eq!(r.files[0].content, JSX, "size {size}");
        }
    }

    #[test]
    fn single_quoted_attribute_and_extra_attributes() {
        let r = parse("<file lang=\"jsx\" path='src/Q.jsx' mode=x>\nq\n</file>");
        assert_eq!(file(&r, "src/Q.jsx").content, "q\n");
    }

    #[test]
    fn whitespace_and_crlf_in_tags() {
        let r = parse(&cases()[16]);
        let f = file(&r, "src/sp.js");
        assert!(f.complete);
        assert_eq!(f.content, "windows\r\nlines\r\n");
    }

    #[test]
    fn duplicate_last_complete_wins_in_first_position() {
        let r = parse(&cases()[3]);
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.files[0].path, "a.js");
        assert_eq!(r.files[0].content, "two\n");
        assert_eq!(r.files[1].path, "b.js");
    }

    #[test]
    fn duplicate_incomplete_does_not_replace_complete() {
        let r = parse(&cases()[4]);
        assert_eq!(r.files.len(), 1);
        assert!(r.files[0].complete);
        assert_eq!(r.files[0].content, "complete\n");
        assert!(r.truncated.is_empty());
    }

    #[test]
    fn duplicates_all_incomplete_keep_last() {
        let r = parse(
            "<file path=\"a\">\nv1\n<file path=\"b\">\nb\n</file><file path=\"a\">\nv2 partial",
        );
        assert_eq!(r.files.len(), 2);
        assert_eq!(r.files[0].path, "a");
        assert_eq!(r.files[0].content, "v2 partial");
        assert!(!r.files[0].complete);
        assert_eq!(r.truncated, vec!["a".to_string()]);
    }

    #[test]
    fn complete_copy_after_truncated_one_wins() {
        let r = parse("<file path=\"a\">\npart<file path=\"a\">\nfull\n</file>");
        assert_eq!(r.files.len(), 1);
        assert!(r.files[0].complete);
        assert_eq!(r.files[0].content, "full\n");
        assert!(r.truncated.is_empty());
    }

    #[test]
    fn truncated_last_file() {
        let mut p = ResponseParser::new();
        let mut ev = Vec::new();
        p.feed(
            "<file path=\"a.js\">\nok\n</file><file path=\"b.js\">\nconst x = <div>",
            &mut ev,
        );
        assert_eq!(p.current_file(), Some(("b.js", "const x = <div>".len())));
        let r = p.finish();
        assert_eq!(r.truncated, vec!["b.js".to_string()]);
        assert!(!file(&r, "b.js").complete);
        assert_eq!(file(&r, "b.js").content, "const x = <div>");
        assert!(file(&r, "a.js").complete);
    }

    #[test]
    fn new_file_while_one_is_open_truncates_it() {
        let (r, ev) = one_shot(&cases()[5]);
        assert_eq!(r.truncated, vec!["a.js".to_string()]);
        assert_eq!(file(&r, "a.js").content, "first\n");
        assert!(file(&r, "b.js").complete);
        assert_eq!(
            ev,
            vec![
                ParseEvent::FileStart {
                    path: "a.js".into()
                },
                ParseEvent::FileStart {
                    path: "b.js".into()
                },
                ParseEvent::FileEnd { index: 1 },
            ]
        );
    }

    #[test]
    fn events_arrive_as_soon_as_known() {
        let mut p = ResponseParser::new();
        let mut ev = Vec::new();
        p.feed("<file path=\"a.js\">\nx", &mut ev);
        assert_eq!(
            ev,
            vec![ParseEvent::FileStart {
                path: "a.js".into()
            }]
        );
        assert_eq!(p.files().len(), 1);
        assert!(!p.files()[0].complete);
        p.feed("y\n</file>", &mut ev);
        assert_eq!(ev[1], ParseEvent::FileEnd { index: 0 });
        assert!(p.files()[0].complete);
        assert_eq!(p.files()[0].content, "xy\n");
        assert_eq!(p.current_file(), None);
    }

    #[test]
    fn fenced_fallbacks_path_and_comment() {
        let r = parse(&cases()[6]);
        assert_eq!(r.files.len(), 3, "{r:#?}");
        assert_eq!(file(&r, "src/A.jsx").content, "const a = <div>1</div>\n");
        assert_eq!(file(&r, "src/B.js").content, "export const b = 2\n");
        assert_eq!(file(&r, "src/c.css").content, "body{}\n");
        assert!(r.files.iter().all(|f| f.complete));
        assert!(r.prose.contains("plain fence"));
        assert!(r.prose.starts_with("Intro\nmiddle"));
        assert!(!r.prose.contains("export const b"));
    }

    #[test]
    fn fenced_fallback_html_and_hash_comments() {
        let r = parse("```html\n<!-- File: index.html -->\n<p>hi</p>\n```\n```py\n# file: tool.py\nprint(1)\n```");
        assert_eq!(file(&r, "index.html").content, "<p>hi</p>\n");
        assert_eq!(file(&r, "tool.py").content, "print(1)\n");
    }

    #[test]
    fn comment_that_is_not_a_path_stays_prose() {
        let r = parse("```js\n// file: this is not a path\nx\n```");
        assert!(r.files.is_empty());
        assert!(r.prose.contains("this is not a path"));
    }

    #[test]
    fn unclosed_fence_is_truncated() {
        let r = parse(&cases()[17]);
        assert_eq!(r.truncated, vec!["src/T.tsx".to_string()]);
        assert_eq!(file(&r, "src/T.tsx").content, "const t = 1\n");
    }

    #[test]
    fn fallback_order_interleaves_with_tags() {
        let r = parse("```js path=a.js\na\n```\n<file path=\"b.js\">\nb\n</file>\n```js\n// File: c.js\nc\n```");
        let paths: Vec<_> = r.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a.js", "b.js", "c.js"]);
    }

    #[test]
    fn tag_file_after_fallback_copy_wins() {
        let r = parse("```js path=a.js\nold\n```\n<file path=\"a.js\">\nnew\n</file>");
        assert_eq!(r.files.len(), 1);
        assert_eq!(r.files[0].content, "new\n");
    }

    #[test]
    fn wrapping_fence_inside_tag_is_stripped() {
        let r = parse(&cases()[7]);
        assert_eq!(file(&r, "src/W.jsx").content, "const w = <p>w</p>\n");
    }

    #[test]
    fn markdown_file_keeps_its_fence() {
        let r = parse("<file path=\"README.md\">\n```bash\nnpm i\n```\n</file>");
        assert_eq!(file(&r, "README.md").content, "```bash\nnpm i\n```\n");
    }

    #[test]
    fn inner_backticks_are_not_a_wrapping_fence() {
        let body = "const s = `a`\nconst t = `b`\n";
        let r = parse(&format!("<file path=\"s.js\">\n{body}</file>"));
        assert_eq!(file(&r, "s.js").content, body);
    }

    #[test]
    fn trailing_newlines_collapse_to_one() {
        let r = parse("<file path=\"a\">\nx  \n\n\n   </file><file path=\"b\">no newline</file><file path=\"c\">\n\n</file>");
        assert_eq!(file(&r, "a").content, "x  \n");
        assert_eq!(file(&r, "b").content, "no newline");
        assert_eq!(file(&r, "c").content, "");
    }

    #[test]
    fn only_one_leading_newline_is_stripped() {
        let r = parse("<file path=\"a\">\n\n  indented\n</file>");
        assert_eq!(file(&r, "a").content, "\n  indented\n");
    }

    #[test]
    fn packages_split_and_dedupe() {
        let (r, ev) = one_shot(&cases()[8]);
        assert_eq!(
            r.packages,
            [
                "react-router-dom",
                "lucide-react",
                "framer-motion",
                "axios",
                "zod"
            ]
        );
        let n = ev
            .iter()
            .filter(|e| matches!(e, ParseEvent::Package(_)))
            .count();
        assert_eq!(n, 5);
    }

    #[test]
    fn commands_trimmed_and_empty_dropped() {
        let (r, ev) = one_shot(&cases()[9]);
        assert_eq!(r.commands, ["npm run build", "npm test"]);
        assert!(ev.contains(&ParseEvent::Command("npm test".into())));
    }

    #[test]
    fn unclosed_command_is_not_run() {
        let r = parse(&cases()[20]);
        assert!(r.commands.is_empty());
        assert_eq!(r.prose, "");
    }

    #[test]
    fn explanation_trimmed_and_kept_out_of_prose() {
        let (r, ev) = one_shot(&cases()[10]);
        assert_eq!(r.explanation, "Built a hero section.");
        assert_eq!(r.prose, "trailing prose");
        assert_eq!(
            ev,
            vec![ParseEvent::Explanation("Built a hero section.".into())]
        );
    }

    #[test]
    fn unclosed_explanation_ends_at_next_file() {
        let r = parse(&cases()[19]);
        assert_eq!(r.explanation, "never closed");
        assert_eq!(file(&r, "e.js").content, "e\n");
    }

    #[test]
    fn edit_with_whitespace_between_tags() {
        let (r, ev) = one_shot(&cases()[11]);
        assert_eq!(
            r.edits,
            vec![ParsedEdit {
                path: "src/App.jsx".into(),
                search: "  <h1>Old</h1>".into(),
                replace: "  <h1>New</h1>".into(),
                complete: true,
            }]
        );
        assert_eq!(ev, vec![ParseEvent::EditEnd { index: 0 }]);
    }

    #[test]
    fn edit_compact_and_incomplete() {
        let r = parse(&cases()[12]);
        assert_eq!(r.edits.len(), 2);
        assert_eq!(r.edits[0].search, "a");
        assert_eq!(r.edits[0].replace, "b");
        assert!(r.edits[0].complete);
        assert_eq!(r.edits[1].path, "x.js");
        assert_eq!(r.edits[1].search, "q");
        assert!(!r.edits[1].complete);
    }

    #[test]
    fn edit_missing_replace_close_is_tolerated() {
        let r = parse(&cases()[21]);
        assert_eq!(r.edits[0].search, "old");
        assert_eq!(r.edits[0].replace, "new");
        assert!(r.edits[0].complete);
    }

    #[test]
    fn edit_with_several_pairs_and_missing_replace() {
        let r = parse("<edit path=\"m.js\"><search>a</search><replace>A</replace>\n<search>b</search><replace>B</replace><search>c</search></edit>");
        assert_eq!(r.edits.len(), 3);
        assert!(r.edits[0].complete && r.edits[1].complete);
        assert_eq!(r.edits[1].replace, "B");
        assert!(!r.edits[2].complete);
        assert!(r.edits.iter().all(|e| e.path == "m.js"));
    }

    #[test]
    fn edit_keeps_inner_markup_exact() {
        let r = parse("<edit path=\"a.jsx\"><search>\n<div className=\"a\">\n  <Edit path=\"x\"/>\n</div>\n</search><replace></replace></edit>");
        assert_eq!(
            r.edits[0].search,
            "<div className=\"a\">\n  <Edit path=\"x\"/>\n</div>"
        );
        assert_eq!(r.edits[0].replace, "");
        assert!(r.edits[0].complete);
    }

    #[test]
    fn unknown_tags_are_prose() {
        let r = parse(&cases()[14]);
        assert!(r
            .prose
            .contains("<thinking>plan <div>stuff</div></thinking>"));
        assert!(r.prose.contains("<structure>src/</structure>"));
        assert_eq!(file(&r, "x.jsx").content, "<div><span>a</span></div>\n");
    }

    #[test]
    fn partial_close_tag_that_is_filter() {
        let text = "<file path=\"x.jsx\">\n<svg></fil";
        let mut p = ResponseParser::new();
        let mut ev = Vec::new();
        p.feed(text, &mut ev);
        assert_eq!(p.current_file(), Some(("x.jsx", 5)));
        p.feed("ter></svg>\n</file>", &mut ev);
        let r = p.finish();
        assert_eq!(file(&r, "x.jsx").content, "<svg></filter></svg>\n");
        assert!(file(&r, "x.jsx").complete);
        let r = parse(&cases()[15]);
        assert_eq!(file(&r, "x.jsx").content, "</fil</filter>");
    }

    #[test]
    fn capitalised_components_do_not_end_files() {
        let r = parse("<file path=\"f.jsx\">\n<File path=\"a\">x</File><Edit path='b'/>\n</file>");
        assert_eq!(
            file(&r, "f.jsx").content,
            "<File path=\"a\">x</File><Edit path='b'/>\n"
        );
        assert_eq!(r.files.len(), 1);
    }

    #[test]
    fn malformed_file_tags_are_prose() {
        let r = parse(&cases()[18]);
        // Only the `path=""` block is a block (reported later as an unsafe empty path).
        assert_eq!(r.files.len(), 1, "{r:#?}");
        assert_eq!(r.files[0].path, "");
        assert_eq!(r.files[0].content, "empty");
        assert!(r.prose.contains("no path"));
    }

    #[test]
    fn stray_close_tags_outside_are_prose() {
        let r = parse("a </file> b </edit>");
        assert_eq!(r.prose, "a </file> b </edit>");
    }

    #[test]
    fn unicode_split_across_chunks() {
        let text = &cases()[13];
        let (whole, _) = one_shot(text);
        assert!(file(&whole, "src/i18n.js").content.contains("👩‍💻"));
        for size in 1..=9 {
            let (r, _) = chunked(text, size);
            assert_eq!(r, whole);
        }
    }

    #[test]
    fn long_opening_tag_waits_and_overlong_is_text() {
        let path = "p/".repeat(200);
        let text = format!("<file path=\"{path}x.js\">\nok\n</file>");
        let (r, _) = chunked(&text, 1);
        assert_eq!(file(&r, &format!("{path}x.js")).content, "ok\n");
        let path = "p/".repeat(MAX_TAG);
        let r = parse(&format!("<file path=\"{path}\">\nno\n</file>"));
        assert!(r.files.is_empty());
    }

    #[test]
    fn prose_is_capped() {
        let text = "é".repeat(PROSE_CAP);
        let r = parse(&text);
        assert!(r.prose.len() <= PROSE_CAP);
        assert!(r.prose.len() > PROSE_CAP - 4);
    }

    #[test]
    fn huge_response_consistency() {
        let text = big_answer(300);
        let (whole, ev) = one_shot(&text);
        assert_eq!(whole.files.len(), 300);
        assert!(whole.files.iter().all(|f| f.complete));
        assert_eq!(whole.files[7].content, JSX.repeat(3));
        assert_eq!(whole.packages, ["react-icons"]);
        for size in [1, 13, 64, 4096] {
            let (r, e) = chunked(&text, size);
            assert_eq!(r, whole);
            assert_eq!(e, ev);
        }
    }

    #[test]
    fn garbage_never_panics_and_chunking_never_matters() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: &[&str] = &[
            "<",
            ">",
            "/",
            "file",
            "edit",
            "search",
            "replace",
            "package",
            "packages",
            "command",
            "explanation",
            " path=",
            "\"",
            "'",
            "a.js",
            "\n",
            "\r",
            "```",
            "//",
            " File: ",
            "x",
            "é",
            "🚀",
            "=",
            ",",
            " ",
            "</",
            "<file path=\"g.js\">",
        ];
        for round in 0..300 {
            let text = if round % 3 == 0 {
                let raw: Vec<u8> = (0..(next() % 400)).map(|_| next() as u8).collect();
                String::from_utf8_lossy(&raw).into_owned()
            } else {
                (0..(next() % 200))
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            };
            let whole = parse(&text);
            let mut p = ResponseParser::new();
            let mut ev = Vec::new();
            let mut i = 0;
            while i < text.len() {
                let mut e = (i + 1 + (next() % 12) as usize).min(text.len());
                while !text.is_char_boundary(e) {
                    e += 1;
                }
                p.feed(&text[i..e], &mut ev);
                let _ = p.current_file();
                i = e;
            }
            assert_eq!(p.finish(), whole, "{text:?}");
        }
    }
}
