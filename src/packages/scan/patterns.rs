//! The import patterns over the token stream: `import … from`, `export … from`, `import(…)`,
//! `require(…)` and `import x = require(…)`, with type-only imports told apart.

use super::lexer::{is_member_mark, Lexer, Tok, Token};
use super::{Import, ImportKind};

const EOF: Token = Token {
    kind: Tok::Eof,
    start: 0,
    end: 0,
};

pub(super) struct Scanner<'a> {
    lx: Lexer<'a>,
    peeked: Option<Token>,
    /// The last token taken.
    last: Token,
    pub(super) out: Vec<Import>,
}

impl<'a> Scanner<'a> {
    pub(super) fn new(src: &'a str, jsx: bool) -> Self {
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

    pub(super) fn run(&mut self) {
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
