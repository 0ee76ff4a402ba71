//! The tokenizer: JavaScript/TypeScript tokens with comments, strings, templates (nested `${}`),
//! regex literals and JSX text skipped, so nothing hidden in them looks like an `import`.

use memchr::{memchr, memchr2, memchr3, memmem};

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
pub(super) fn is_member_mark(t: Token) -> bool {
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
pub(super) fn is_ident_byte(c: u8) -> bool {
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
