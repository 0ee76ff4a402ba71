//! Finding the modules a source file imports, without parsing it.
//!
//! A full parser would be slower than needed and would give up on the half-typed code an editor
//! buffer holds. Instead a tokenizer that knows exactly what can hide an `import` (comments,
//! strings, template text, regex literals, JSX text) feeds a few token patterns: `import … from`,
//! `export … from`, `import(…)`, `require(…)`, `import x = require(…)`. Everything works on bytes:
//! every delimiter is ASCII, so each range it reports falls on a char boundary.
//!
//! Regex versus division is the usual previous-token rule; JSX starts where an expression may
//! start (`return <div>`), and a would-be tag that turns out not to be one (`<T,>(x: T) => x`)
//! is re-read as a `<` operator.

use std::ops::Range;
use std::path::Path;

use memchr::{memchr, memchr2, memchr3, memmem};

/// One import found in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub specifier: String,
    /// Byte range of the specifier text (inside the quotes) in the source.
    pub range: Range<usize>,
    pub kind: ImportKind,
    /// Erased at compile time (`import type`, `typeof import('x')`): needs no runtime install.
    pub type_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind {
    /// `import x from 'a'`, `import {a} from 'a'`, `import * as ns from 'a'`.
    Static,
    /// `import 'a'`.
    SideEffect,
    /// `export * from 'a'`, `export {x} from 'a'`.
    ExportFrom,
    /// `import('a')` with a literal argument.
    Dynamic,
    /// `require('a')`.
    Require,
    /// `import x = require('a')` (TypeScript).
    ImportEquals,
    /// `@import 'a'` and its Sass/Tailwind relatives in a stylesheet.
    CssImport,
}

/// What kind of scanning a file gets, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Js,
    Css,
    Other,
}

/// Classifies a path by extension. `.vue` and `.svelte` count as `Js`: [`scan_file`] reads their
/// `<script>` (and `<style>`) blocks.
pub fn source_kind(path: &Path) -> SourceKind {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return SourceKind::Other;
    };
    match ext {
        "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" | "vue" | "svelte" => {
            SourceKind::Js
        }
        "css" | "scss" | "sass" | "less" => SourceKind::Css,
        _ => SourceKind::Other,
    }
}

/// Scans a file by its extension. `.ts`/`.mts`/`.cts` are read without JSX, because there `<T>x`
/// is a type assertion, not a tag; `.d.ts` files are read the same way.
pub fn scan_file(path: &Path, src: &str) -> Vec<Import> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "ts" | "mts" | "cts" => scan_script(src, false),
        "vue" | "svelte" => scan_component(src),
        _ => match source_kind(path) {
            SourceKind::Js => scan_js(src),
            SourceKind::Css => scan_css(src),
            SourceKind::Other => Vec::new(),
        },
    }
}

/// Scans JavaScript or TypeScript, with JSX allowed (the right default for `.js`, `.jsx`, `.tsx`).
pub fn scan_js(src: &str) -> Vec<Import> {
    scan_script(src, true)
}

/// Scans JavaScript or TypeScript; `jsx` says whether `<Tag>` in expression position is JSX.
pub fn scan_script(src: &str, jsx: bool) -> Vec<Import> {
    let mut s = Scanner::new(src, jsx);
    s.run();
    s.out
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Identifier or keyword.
    Ident,
    /// `'…'` or `"…"`; the token range is the text inside the quotes.
    Str,
    /// A template without `${`; the token range is the text inside the backticks.
    Template,
    /// Any piece of a template that has substitutions.
    TemplatePart,
    Num,
    Regex,
    /// One punctuation byte. `?.` is reported as `.`: for imports it is the same thing.
    Punct(u8),
    Eof,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// What a `}` closes, and which sub-language the bytes after the top entry are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// An ordinary `{`.
    Brace,
    /// `${` inside a template: its `}` resumes the template text.
    TemplateExpr,
    /// `{` among JSX children: its `}` resumes JSX text.
    JsxChildExpr,
    /// `{` inside a JSX tag: its `}` resumes the tag.
    JsxAttrExpr,
    /// An open element: the bytes after it are JSX text.
    JsxElem,
    /// Inside `<Name …` or `</Name`; `start` is the `<`, kept to undo a wrong guess.
    JsxTag { start: usize, closing: bool },
}

/// Keywords after which a `/` starts a regex (and a `<` may start JSX).
#[inline(always)]
fn keyword_allows_regex(word: &[u8]) -> bool {
    // Switching on the length first keeps this off `memcmp` for the common identifier.
    match word.len() {
        2 => matches!(word, b"do" | b"in" | b"of"),
        3 => word == b"new",
        4 => matches!(word, b"case" | b"else" | b"void"),
        5 => matches!(word, b"throw" | b"yield" | b"await"),
        6 => matches!(word, b"return" | b"typeof" | b"delete"),
        10 => word == b"instanceof",
        _ => false,
    }
}

/// `.`, `?.` or `#` before an identifier make it a member name.
#[inline(always)]
fn is_member_mark(t: Token) -> bool {
    matches!(t.kind, Tok::Punct(b'.') | Tok::Punct(b'#'))
}

/// ASCII bytes that continue an identifier, for the hottest loop.
static ASCII_IDENT: [bool; 128] = {
    let mut t = [false; 128];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b == b'_' || b == b'$';
        c += 1;
    }
    t
};

#[inline]
fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

#[inline]
fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c >= 0x80
}

fn is_unicode_space(c: char) -> bool {
    c.is_whitespace() || c == '\u{feff}'
}

/// The tokenizer. It keeps its own context stack, so whoever pulls tokens (the import patterns,
/// the alias reader) may stop and resume anywhere without confusing it.
pub(crate) struct Lexer<'a> {
    src: &'a str,
    b: &'a [u8],
    pos: usize,
    regex_ok: bool,
    jsx: bool,
    stack: Vec<Ctx>,
    /// The last token was `.` or `?.`: an identifier now is a property name, never a keyword.
    after_dot: bool,
    /// `JsxTag` entries on the stack. Capped, which bounds how many open guesses one undo can
    /// leave to be undone again.
    open_tags: usize,
    /// Bytes that undos may still rescan before JSX guessing is turned off for the file: nested
    /// guesses that all fail would otherwise rescan exponentially.
    rescan_budget: usize,
    /// Set when a guessed JSX tag was undone: tokens from that position on were read wrongly.
    pub reverted: Option<usize>,
}

/// See [`Lexer::open_tags`]; real code nests tags inside attribute expressions a few deep.
const MAX_OPEN_TAGS: usize = 32;

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, jsx: bool) -> Self {
        let b = src.as_bytes();
        let mut pos = 0;
        if b.starts_with(b"\xEF\xBB\xBF") {
            pos = 3;
        }
        if b.get(pos..pos + 2) == Some(b"#!") {
            pos = memchr(b'\n', &b[pos..]).map_or(b.len(), |i| pos + i);
        }
        Lexer {
            src,
            b,
            pos,
            regex_ok: true,
            jsx,
            stack: Vec::new(),
            after_dot: false,
            open_tags: 0,
            rescan_budget: src.len().saturating_mul(4).saturating_add(64 * 1024),
            reverted: None,
        }
    }

    pub fn text(&self, t: Token) -> &'a str {
        self.src.get(t.start..t.end).unwrap_or("")
    }

    #[inline]
    fn at(&self, i: usize) -> u8 {
        self.b.get(i).copied().unwrap_or(0)
    }

    /// The char at `i` when it is not ASCII (None off a boundary or at the end).
    fn char_at(&self, i: usize) -> Option<char> {
        self.src.get(i..).and_then(|s| s.chars().next())
    }

    fn tok(&self, kind: Tok, start: usize, end: usize) -> Token {
        Token { kind, start, end }
    }

    /// Skips to the next `import`, `export` or `require` that is not a member name (or to the
    /// end); returns it with the token before it. One tight loop, because almost every token of
    /// a file is of no interest.
    pub fn next_candidate(&mut self, mut prev: Token) -> (Token, Token) {
        loop {
            let t = self.next_token();
            match t.kind {
                Tok::Eof => return (prev, t),
                Tok::Ident if !is_member_mark(prev) => {
                    if matches!(&self.b[t.start..t.end], b"import" | b"export" | b"require") {
                        return (prev, t);
                    }
                }
                _ => {}
            }
            prev = t;
        }
    }

    #[inline(always)]
    pub fn next_token(&mut self) -> Token {
        loop {
            if self.pos >= self.b.len() {
                self.pos = self.b.len();
                return self.tok(Tok::Eof, self.pos, self.pos);
            }
            match self.stack.last() {
                Some(Ctx::JsxElem) => self.jsx_text(),
                Some(&Ctx::JsxTag { start, closing }) => {
                    if let Some(t) = self.jsx_tag(start, closing) {
                        return t;
                    }
                }
                _ => {
                    if let Some(t) = self.js_token() {
                        self.after_dot = t.kind == Tok::Punct(b'.');
                        return t;
                    }
                }
            }
        }
    }

    /// Skips whitespace and comments; false at the end of input.
    #[inline(always)]
    fn skip_trivia(&mut self) -> bool {
        let b = self.b;
        loop {
            let Some(&c) = b.get(self.pos) else {
                return false;
            };
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c => self.pos += 1,
                b'/' if self.at(self.pos + 1) == b'/' => {
                    self.pos = memchr(b'\n', &b[self.pos..]).map_or(b.len(), |i| self.pos + i);
                }
                b'/' if self.at(self.pos + 1) == b'*' => {
                    self.pos = memmem::find(&b[self.pos + 2..], b"*/")
                        .map_or(b.len(), |i| self.pos + 2 + i + 2);
                }
                0x80.. => match self.char_at(self.pos) {
                    Some(ch) if is_unicode_space(ch) => self.pos += ch.len_utf8(),
                    _ => return true,
                },
                _ => return true,
            }
        }
    }

    /// One token in JavaScript mode; None when the bytes consumed produced no token (a `}` that
    /// returned to JSX).
    #[inline(always)]
    fn js_token(&mut self) -> Option<Token> {
        if !self.skip_trivia() {
            return Some(self.tok(Tok::Eof, self.b.len(), self.b.len()));
        }
        let start = self.pos;
        let c = self.b[start];
        if is_ident_start(c) || c == b'\\' {
            let end = self.ident_end(start + 1);
            self.pos = end;
            self.regex_ok = !self.after_dot && keyword_allows_regex(&self.b[start..end]);
            return Some(self.tok(Tok::Ident, start, end));
        }
        if c.is_ascii_digit() || (c == b'.' && self.at(start + 1).is_ascii_digit()) {
            let mut i = start + 1;
            while i < self.b.len()
                && (self.b[i].is_ascii_alphanumeric() || matches!(self.b[i], b'.' | b'_'))
            {
                i += 1;
            }
            self.pos = i;
            self.regex_ok = false;
            return Some(self.tok(Tok::Num, start, i));
        }
        match c {
            b'\'' | b'"' => {
                let (content_end, next) = self.string_end(start + 1, c);
                self.pos = next;
                self.regex_ok = false;
                Some(self.tok(Tok::Str, start + 1, content_end))
            }
            b'`' => Some(self.template(start + 1, true)),
            b'{' => {
                self.stack.push(Ctx::Brace);
                self.pos += 1;
                self.regex_ok = true;
                Some(self.tok(Tok::Punct(b'{'), start, start + 1))
            }
            b'}' => {
                self.pos += 1;
                match self.stack.pop() {
                    Some(Ctx::TemplateExpr) => Some(self.template(self.pos, false)),
                    Some(Ctx::JsxChildExpr) | Some(Ctx::JsxAttrExpr) => None,
                    // `Brace`, or a stray `}` on an empty stack. (JSX entries are never on top
                    // in this mode.)
                    _ => {
                        self.regex_ok = false;
                        Some(self.tok(Tok::Punct(b'}'), start, start + 1))
                    }
                }
            }
            b'/' if self.regex_ok => {
                let end = self.regex_end(start + 1);
                self.pos = end;
                self.regex_ok = false;
                Some(self.tok(Tok::Regex, start, end))
            }
            b'<' if self.jsx
                && self.regex_ok
                && self.open_tags < MAX_OPEN_TAGS
                && self.jsx_can_start(start + 1) =>
            {
                if self.at(start + 1) == b'>' {
                    self.stack.push(Ctx::JsxElem);
                    self.pos = start + 2;
                } else {
                    self.push_tag(start, false);
                    self.pos = start + 1;
                }
                None
            }
            b'?' if self.at(start + 1) == b'.' && !self.at(start + 2).is_ascii_digit() => {
                self.pos += 2;
                self.regex_ok = false;
                Some(self.tok(Tok::Punct(b'.'), start, start + 2))
            }
            b'+' | b'-' if self.at(start + 1) == c => {
                self.pos += 2;
                self.regex_ok = false;
                Some(self.tok(Tok::Punct(c), start, start + 2))
            }
            b')' | b']' => {
                self.pos += 1;
                self.regex_ok = false;
                Some(self.tok(Tok::Punct(c), start, start + 1))
            }
            _ => {
                // Every other byte here is ASCII: non-ASCII went to the identifier branch.
                self.pos += 1;
                self.regex_ok = true;
                Some(self.tok(Tok::Punct(c), start, start + 1))
            }
        }
    }

    #[inline(always)]
    fn ident_end(&self, mut i: usize) -> usize {
        let b = self.b;
        while let Some(&c) = b.get(i) {
            if c < 0x80 {
                if ASCII_IDENT[c as usize] {
                    i += 1;
                } else if c == b'\\' {
                    // `\u0041`-style escapes belong to the identifier.
                    i += 2;
                } else {
                    break;
                }
            } else {
                match self.char_at(i) {
                    Some(ch) if is_unicode_space(ch) => break,
                    Some(ch) => i += ch.len_utf8(),
                    None => i += 1,
                }
            }
        }
        i.min(b.len())
    }

    /// From just after the opening quote: (end of content, position after the closing quote).
    /// An unterminated string ends at the line break.
    fn string_end(&self, mut i: usize, quote: u8) -> (usize, usize) {
        let b = self.b;
        while i < b.len() {
            match memchr3(quote, b'\\', b'\n', &b[i..]) {
                None => return (b.len(), b.len()),
                Some(k) => {
                    let j = i + k;
                    match b[j] {
                        b'\\' => {
                            i = j + 2;
                            if b.get(j + 1) == Some(&b'\r') && b.get(j + 2) == Some(&b'\n') {
                                i += 1;
                            }
                        }
                        b'\n' => return (j, j),
                        _ => return (j, j + 1),
                    }
                }
            }
        }
        (b.len(), b.len())
    }

    /// Reads template text from `i` up to the closing backtick or the next `${`.
    fn template(&mut self, content_start: usize, first: bool) -> Token {
        let b = self.b;
        // The backtick, or the `}` that closed a substitution.
        let tok_start = content_start - 1;
        let mut i = content_start;
        while i < b.len() {
            match memchr3(b'`', b'\\', b'$', &b[i..]) {
                None => break,
                Some(k) => {
                    let j = i + k;
                    match b[j] {
                        b'\\' => i = j + 2,
                        b'$' if self.at(j + 1) == b'{' => {
                            self.stack.push(Ctx::TemplateExpr);
                            self.pos = j + 2;
                            self.regex_ok = true;
                            return self.tok(Tok::TemplatePart, tok_start, j + 2);
                        }
                        b'$' => i = j + 1,
                        _ => {
                            self.pos = j + 1;
                            self.regex_ok = false;
                            return if first {
                                self.tok(Tok::Template, content_start, j)
                            } else {
                                self.tok(Tok::TemplatePart, tok_start, j + 1)
                            };
                        }
                    }
                }
            }
        }
        // Unterminated: the rest of the file is template text.
        self.pos = b.len();
        self.regex_ok = false;
        self.tok(Tok::TemplatePart, tok_start, b.len())
    }

    /// From just after the opening `/`: the end of the regex including its flags. A regex never
    /// spans lines, so a line break ends a wrong guess early.
    fn regex_end(&self, mut i: usize) -> usize {
        let b = self.b;
        let mut class = false;
        while let Some(&c) = b.get(i) {
            match c {
                b'\\' => i += 2,
                b'[' => {
                    class = true;
                    i += 1;
                }
                b']' => {
                    class = false;
                    i += 1;
                }
                b'/' if !class => {
                    i += 1;
                    while i < b.len() && b[i].is_ascii_alphanumeric() {
                        i += 1;
                    }
                    return i;
                }
                b'\n' | b'\r' => return i,
                _ => i += 1,
            }
        }
        b.len()
    }

    /// After a `<` in expression position: a tag name or `>` (fragment) follows.
    fn jsx_can_start(&self, i: usize) -> bool {
        let c = self.at(i);
        c == b'>' || (is_ident_start(c) && i < self.b.len())
    }

    /// JSX children: skips text up to `<` or `{`.
    fn jsx_text(&mut self) {
        let b = self.b;
        match memchr2(b'<', b'{', &b[self.pos..]) {
            None => self.pos = b.len(),
            Some(k) => {
                let j = self.pos + k;
                if b[j] == b'{' {
                    self.stack.push(Ctx::JsxChildExpr);
                    self.pos = j + 1;
                    self.regex_ok = true;
                } else if self.open_tags >= MAX_OPEN_TAGS {
                    self.pos = j + 1; // too deep to be real: read as text
                } else if self.at(j + 1) == b'/' {
                    self.push_tag(j, true);
                    self.pos = j + 2;
                } else {
                    self.push_tag(j, false);
                    self.pos = j + 1;
                }
            }
        }
    }

    /// One step inside a tag. Returns a token only when the guess that this was a tag is undone
    /// at the top level (the `<` becomes an operator).
    fn jsx_tag(&mut self, start: usize, closing: bool) -> Option<Token> {
        let b = self.b;
        let &c = b.get(self.pos)?;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => self.pos += 1,
            b'>' => {
                // `<T>(x: T) => …` in a type: a one-letter "tag" followed by `(` is a generic.
                if !closing
                    && self.pos == start + 2
                    && self.at(start + 1).is_ascii_uppercase()
                    && self.at(self.pos + 1) == b'('
                {
                    return self.undo_tag(start);
                }
                self.pos += 1;
                self.pop_tag();
                if closing {
                    if self.stack.last() == Some(&Ctx::JsxElem) {
                        self.stack.pop();
                    }
                    self.after_element();
                } else {
                    self.stack.push(Ctx::JsxElem);
                }
            }
            b'/' if self.at(self.pos + 1) == b'>' => {
                self.pos += 2;
                self.pop_tag();
                self.after_element();
            }
            b'/' if self.at(self.pos + 1) == b'/' => {
                self.pos = memchr(b'\n', &b[self.pos..]).map_or(b.len(), |i| self.pos + i);
            }
            b'/' if self.at(self.pos + 1) == b'*' => {
                self.pos = memmem::find(&b[self.pos + 2..], b"*/")
                    .map_or(b.len(), |i| self.pos + 2 + i + 2);
            }
            b'{' => {
                self.stack.push(Ctx::JsxAttrExpr);
                self.pos += 1;
                self.regex_ok = true;
            }
            b'"' | b'\'' => {
                // Attribute strings have no escapes and may span lines.
                self.pos = memchr(c, &b[self.pos + 1..]).map_or(b.len(), |i| self.pos + 1 + i + 1);
            }
            b'=' => {
                // An attribute value is a string, `{…}` or an element; `<T = unknown>(…)` is a
                // generic with a default.
                let mut i = self.pos + 1;
                while matches!(self.at(i), b' ' | b'\t' | b'\n' | b'\r') {
                    i += 1;
                }
                if !matches!(self.at(i), b'"' | b'\'' | b'{') {
                    return self.undo_tag(start);
                }
                self.pos = i;
            }
            c if is_ident_byte(c) || matches!(c, b'-' | b':' | b'.') => {
                let s = self.pos;
                let mut i = s + 1;
                while i < b.len() && (is_ident_byte(b[i]) || matches!(b[i], b'-' | b':' | b'.')) {
                    i += 1;
                }
                self.pos = i;
                // `<T extends U>(…)` in a .tsx file is a generic arrow function.
                if &b[s..i] == b"extends" {
                    return self.undo_tag(start);
                }
            }
            _ => return self.undo_tag(start),
        }
        None
    }

    fn push_tag(&mut self, start: usize, closing: bool) {
        self.stack.push(Ctx::JsxTag { start, closing });
        self.open_tags += 1;
    }

    /// Pops the `JsxTag` on top of the stack.
    fn pop_tag(&mut self) {
        self.stack.pop();
        self.open_tags = self.open_tags.saturating_sub(1);
    }

    /// After an element closed: back to the parent's children, or to JavaScript, where the
    /// element was a value (so a following `/` divides).
    fn after_element(&mut self) {
        if self.stack.last() != Some(&Ctx::JsxElem) {
            self.regex_ok = false;
        }
    }

    /// The `<` at `start` did not open a tag: read it again as an operator (or as text).
    fn undo_tag(&mut self, start: usize) -> Option<Token> {
        self.pop_tag();
        let rescan = self.pos - start;
        self.rescan_budget = self.rescan_budget.saturating_sub(rescan);
        if self.rescan_budget == 0 {
            self.jsx = false;
        }
        self.pos = start + 1;
        self.reverted = Some(self.reverted.map_or(start, |r| r.min(start)));
        if self.stack.last() == Some(&Ctx::JsxElem) {
            None
        } else {
            self.regex_ok = true;
            Some(self.tok(Tok::Punct(b'<'), start, start + 1))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Import patterns over the token stream
// ---------------------------------------------------------------------------------------------

const EOF: Token = Token {
    kind: Tok::Eof,
    start: 0,
    end: 0,
};

struct Scanner<'a> {
    lx: Lexer<'a>,
    peeked: Option<Token>,
    /// The last token taken.
    last: Token,
    out: Vec<Import>,
}

impl<'a> Scanner<'a> {
    fn new(src: &'a str, jsx: bool) -> Self {
        Scanner {
            lx: Lexer::new(src, jsx),
            peeked: None,
            last: EOF,
            out: Vec::new(),
        }
    }

    fn fetch(&mut self) -> Token {
        let t = self.lx.next_token();
        self.take_revert();
        t
    }

    fn take_revert(&mut self) {
        if let Some(p) = self.lx.reverted.take() {
            // Imports found inside what looked like a tag are read again.
            self.out.retain(|i| i.range.start < p);
        }
    }

    fn peek(&mut self) -> Token {
        match self.peeked {
            Some(t) => t,
            None => {
                let t = self.fetch();
                self.peeked = Some(t);
                t
            }
        }
    }

    fn bump(&mut self) -> Token {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.fetch(),
        };
        self.last = t;
        t
    }

    fn is_word(&self, t: Token, w: &str) -> bool {
        t.kind == Tok::Ident && self.lx.text(t) == w
    }

    fn run(&mut self) {
        loop {
            let (before, t) = match self.peeked.take() {
                // A token a pattern looked at but did not use may start the next one.
                Some(t) => (self.last, t),
                None => {
                    let (before, t) = self.lx.next_candidate(self.last);
                    self.take_revert();
                    (before, t)
                }
            };
            self.last = t;
            match t.kind {
                Tok::Eof => break,
                Tok::Ident if !is_member_mark(before) => match self.lx.text(t) {
                    "import" => self.import(before),
                    "export" => self.export(),
                    "require" => self.require(),
                    _ => {}
                },
                _ => {}
            }
        }
    }

    fn emit(&mut self, t: Token, kind: ImportKind, type_only: bool) {
        self.out.push(Import {
            specifier: self.lx.text(t).to_owned(),
            range: t.start..t.end,
            kind,
            type_only,
        });
    }

    /// After `import`.
    fn import(&mut self, before: Token) {
        let t = self.peek();
        match t.kind {
            Tok::Punct(b'(') => {
                self.bump();
                self.dynamic_import(self.is_word(before, "typeof"));
            }
            Tok::Str => {
                self.bump();
                self.emit(t, ImportKind::SideEffect, false);
            }
            Tok::Ident | Tok::Punct(b'{') | Tok::Punct(b'*') => self.import_clause(),
            _ => {}
        }
    }

    /// After `import(`: only a literal argument names a module.
    fn dynamic_import(&mut self, after_typeof: bool) {
        let s = self.peek();
        if !matches!(s.kind, Tok::Str | Tok::Template) {
            return;
        }
        self.bump();
        let close = self.peek();
        match close.kind {
            // `import('x', { with: … })`
            Tok::Punct(b',') => self.emit(s, ImportKind::Dynamic, after_typeof),
            Tok::Punct(b')') => {
                self.bump();
                // `import('x').Foo` not followed by `(` is a type reference: a runtime
                // `import()` is a promise, whose only members worth naming are calls.
                let mut type_only = after_typeof;
                if !type_only && self.peek().kind == Tok::Punct(b'.') {
                    self.bump();
                    if self.peek().kind == Tok::Ident {
                        self.bump();
                        type_only = self.peek().kind != Tok::Punct(b'(');
                    }
                }
                self.emit(s, ImportKind::Dynamic, type_only);
            }
            _ => {}
        }
    }

    /// After `import` when a binding list follows.
    fn import_clause(&mut self) {
        let mut type_only = false;
        let t = self.peek();
        if self.is_word(t, "type") {
            self.bump();
            let n = self.peek();
            if self.is_word(n, "from") {
                self.bump();
                let s = self.peek();
                if s.kind == Tok::Str {
                    // `import type from 'x'`: a default import named `type`.
                    self.bump();
                    self.emit(s, ImportKind::Static, false);
                    return;
                }
                // `import type from from 'x'`: `from` was the binding.
                return self.after_default(true);
            }
            if matches!(n.kind, Tok::Punct(b',') | Tok::Punct(b'=')) {
                return self.after_default(false);
            }
            type_only = true;
        }
        let t = self.peek();
        match t.kind {
            Tok::Ident => {
                self.bump();
                self.after_default(type_only);
            }
            Tok::Punct(b'{') => self.named(type_only, false, ImportKind::Static),
            Tok::Punct(b'*') => self.namespace(type_only, ImportKind::Static),
            _ => {}
        }
    }

    /// After a default binding.
    fn after_default(&mut self, type_only: bool) {
        let t = self.peek();
        match t.kind {
            Tok::Punct(b',') => {
                self.bump();
                match self.peek().kind {
                    Tok::Punct(b'{') => self.named(type_only, true, ImportKind::Static),
                    Tok::Punct(b'*') => self.namespace(type_only, ImportKind::Static),
                    _ => {}
                }
            }
            Tok::Punct(b'=') => {
                self.bump();
                let r = self.peek();
                if !self.is_word(r, "require") {
                    return; // `import A = B.C` aliases a namespace
                }
                self.bump();
                if self.peek().kind != Tok::Punct(b'(') {
                    return;
                }
                self.bump();
                let s = self.peek();
                if s.kind != Tok::Str {
                    return;
                }
                self.bump();
                if self.peek().kind == Tok::Punct(b')') {
                    self.emit(s, ImportKind::ImportEquals, type_only);
                }
            }
            _ => self.source_clause(ImportKind::Static, type_only),
        }
    }

    /// `{ a, type b, c as d }`. The import is type-only when the whole clause is, or when every
    /// specifier is marked `type` and there is no default binding.
    fn named(&mut self, type_only: bool, has_default: bool, kind: ImportKind) {
        self.bump(); // `{`
        let mut count = 0usize;
        let mut all_type = true;
        let mut words = 0usize;
        let mut first_is_type = false;
        let mut after_as = false;
        loop {
            let t = self.peek();
            let end = match t.kind {
                Tok::Punct(b'}') => true,
                Tok::Punct(b',') => false,
                Tok::Ident | Tok::Str => {
                    // A list left open while typing: the next statement is not swallowed.
                    // (`x as import` is the one place such a word is a name.)
                    if !after_as
                        && t.kind == Tok::Ident
                        && matches!(self.lx.text(t), "import" | "export")
                    {
                        return;
                    }
                    self.bump();
                    if words == 0 {
                        first_is_type = self.is_word(t, "type");
                    }
                    after_as = self.is_word(t, "as");
                    words += 1;
                    if words > 4 {
                        return;
                    }
                    continue;
                }
                _ => return,
            };
            self.bump();
            if words > 0 {
                count += 1;
                // `type A` or `type A as B`; `type` alone or `type as B` name a binding `type`.
                if !(first_is_type && (words == 2 || words == 4)) {
                    all_type = false;
                }
            }
            words = 0;
            if end {
                break;
            }
        }
        let type_only = type_only || (!has_default && count > 0 && all_type);
        self.source_clause(kind, type_only);
    }

    /// `* as ns from 'x'` (or, for exports, `* from 'x'`).
    fn namespace(&mut self, type_only: bool, kind: ImportKind) {
        self.bump(); // `*`
        let t = self.peek();
        if self.is_word(t, "as") {
            self.bump();
            if matches!(self.peek().kind, Tok::Ident | Tok::Str) {
                self.bump();
            } else {
                return;
            }
        }
        self.source_clause(kind, type_only);
    }

    fn source_clause(&mut self, kind: ImportKind, type_only: bool) {
        let t = self.peek();
        if !self.is_word(t, "from") {
            return;
        }
        self.bump();
        let s = self.peek();
        if s.kind == Tok::Str {
            self.bump();
            self.emit(s, kind, type_only);
        }
    }

    /// After `export`: only re-exports name a module.
    fn export(&mut self) {
        let mut type_only = false;
        let mut t = self.peek();
        if self.is_word(t, "type") {
            self.bump();
            type_only = true;
            t = self.peek();
        }
        match t.kind {
            Tok::Punct(b'*') => self.namespace(type_only, ImportKind::ExportFrom),
            Tok::Punct(b'{') => self.named(type_only, false, ImportKind::ExportFrom),
            _ => {}
        }
    }

    /// After `require`.
    fn require(&mut self) {
        if self.peek().kind != Tok::Punct(b'(') {
            return;
        }
        self.bump();
        let s = self.peek();
        if !matches!(s.kind, Tok::Str | Tok::Template) {
            return;
        }
        self.bump();
        if self.peek().kind == Tok::Punct(b')') {
            self.emit(s, ImportKind::Require, false);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Stylesheets and single-file components
// ---------------------------------------------------------------------------------------------

/// Finds `@import`, Sass `@use`/`@forward` and Tailwind `@plugin` targets in a stylesheet. Strings
/// and comments elsewhere are skipped; `//` counts as a comment only where a rule could start,
/// so `url(http://…)` is safe.
pub fn scan_css(src: &str) -> Vec<Import> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut rule_start = true;
    while i < b.len() {
        let c = b[i];
        match c {
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |k| i + 2 + k + 2);
                continue;
            }
            b'/' if rule_start && b.get(i + 1) == Some(&b'/') => {
                i = memchr(b'\n', &b[i..]).map_or(b.len(), |k| i + k);
                continue;
            }
            b'"' | b'\'' => {
                i = css_string_end(b, i + 1, c).1;
                rule_start = false;
                continue;
            }
            b'@' => {
                let s = i + 1;
                let mut e = s;
                while e < b.len() && (b[e].is_ascii_alphanumeric() || b[e] == b'-') {
                    e += 1;
                }
                let word = &b[s..e];
                i = e;
                rule_start = false;
                if word.eq_ignore_ascii_case(b"import")
                    || matches!(word, b"use" | b"forward" | b"plugin")
                {
                    i = css_targets(src, e, &mut out);
                }
                continue;
            }
            b';' | b'{' | b'}' => rule_start = true,
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => rule_start = false,
        }
        i += 1;
    }
    out
}

/// (end of content, position after the closing quote) for a CSS string.
fn css_string_end(b: &[u8], mut i: usize, quote: u8) -> (usize, usize) {
    while i < b.len() {
        match memchr3(quote, b'\\', b'\n', &b[i..]) {
            None => break,
            Some(k) => {
                let j = i + k;
                match b[j] {
                    b'\\' => i = j + 2,
                    b'\n' => return (j, j),
                    _ => return (j, j + 1),
                }
            }
        }
    }
    (b.len(), b.len())
}

fn skip_css_space(b: &[u8], mut i: usize) -> usize {
    loop {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&b'/') && b.get(i + 1) == Some(&b'*') {
            i = memmem::find(&b[i + 2..], b"*/").map_or(b.len(), |k| i + 2 + k + 2);
        } else {
            return i;
        }
    }
}

/// Reads `'a'`, `url(a)`, `url("a")`, and Sass's comma lists of them, after an at-keyword.
fn css_targets(src: &str, mut i: usize, out: &mut Vec<Import>) -> usize {
    let b = src.as_bytes();
    loop {
        i = skip_css_space(b, i);
        let Some(&c) = b.get(i) else {
            return i;
        };
        let range = if c == b'"' || c == b'\'' {
            let (end, next) = css_string_end(b, i + 1, c);
            let r = i + 1..end;
            i = next;
            r
        } else if b.len() >= i + 4 && b[i..i + 4].eq_ignore_ascii_case(b"url(") {
            i = skip_css_space(b, i + 4);
            match b.get(i) {
                Some(&q) if q == b'"' || q == b'\'' => {
                    let (end, next) = css_string_end(b, i + 1, q);
                    let r = i + 1..end;
                    i = memchr(b')', &b[next..]).map_or(b.len(), |k| next + k + 1);
                    r
                }
                _ => {
                    let close = memchr2(b')', b'\n', &b[i..]).map_or(b.len(), |k| i + k);
                    let mut end = close;
                    while end > i && b[end - 1].is_ascii_whitespace() {
                        end -= 1;
                    }
                    let r = i..end;
                    i = (close + 1).min(b.len());
                    r
                }
            }
        } else {
            return i;
        };
        if let Some(spec) = src.get(range.clone()).filter(|s| !s.is_empty()) {
            out.push(Import {
                specifier: spec.to_owned(),
                range,
                kind: ImportKind::CssImport,
                type_only: false,
            });
        }
        i = skip_css_space(b, i);
        if b.get(i) == Some(&b',') {
            i += 1;
        } else {
            return i;
        }
    }
}

/// A `.vue` or `.svelte` file: its `<script>` blocks scanned as script (JSX only when the block
/// says `lang="jsx"`/`"tsx"`), its `<style>` blocks as CSS; ranges stay in file coordinates.
fn scan_component(src: &str) -> Vec<Import> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(k) = memchr(b'<', &b[i..]) {
        let open = i + k;
        let rest = &b[open + 1..];
        let (tag, close_tag): (&[u8], &[u8]) = if starts_with_ci(rest, b"script") {
            (b"script", b"</script")
        } else if starts_with_ci(rest, b"style") {
            (b"style", b"</style")
        } else {
            i = open + 1;
            continue;
        };
        let after_name = open + 1 + tag.len();
        if b.get(after_name)
            .is_some_and(|c| is_ident_byte(*c) || *c == b'-')
        {
            i = after_name;
            continue;
        }
        let Some(gt) = memchr(b'>', &b[after_name..]) else {
            break;
        };
        let attrs = &b[after_name..after_name + gt];
        let body_start = after_name + gt + 1;
        let body_end = find_ci(&b[body_start..], close_tag).map_or(b.len(), |k| body_start + k);
        let Some(body) = src.get(body_start..body_end) else {
            break;
        };
        let found = if tag == b"script" {
            let jsx =
                memmem::find(attrs, b"jsx").is_some() || memmem::find(attrs, b"tsx").is_some();
            scan_script(body, jsx)
        } else {
            scan_css(body)
        };
        out.extend(found.into_iter().map(|mut imp| {
            imp.range = imp.range.start + body_start..imp.range.end + body_start;
            imp
        }));
        i = body_end;
    }
    out
}

fn starts_with_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.len() >= needle.len() && hay[..needle.len()].eq_ignore_ascii_case(needle)
}

fn find_ci(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(k) = memchr(b'<', hay.get(i..)?) {
        let j = i + k;
        if starts_with_ci(&hay[j..], needle) {
            return Some(j);
        }
        i = j + 1;
    }
    None
}
