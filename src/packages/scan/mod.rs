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
//!
//! `lexer` is the tokenizer, `patterns` the import patterns over its tokens, `css` the
//! stylesheet scanner and `component` the `.vue`/`.svelte` block splitter.

use std::ops::Range;
use std::path::Path;

mod component;
mod css;
mod lexer;
mod patterns;

use component::scan_component;
pub use css::scan_css;
pub(crate) use lexer::{Lexer, Tok, Token};
use patterns::Scanner;

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
