//! STUB (replaced by the real scanner).
use std::path::Path;
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import { pub specifier: String, pub range: std::ops::Range<usize>, pub kind: ImportKind, pub type_only: bool }
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportKind { Static, SideEffect, ExportFrom, Dynamic, Require, ImportEquals, CssImport }
pub enum SourceKind { Js, Css, Other }
pub fn source_kind(_p: &Path) -> SourceKind { SourceKind::Js }
pub fn scan_js(_s: &str) -> Vec<Import> { Vec::new() }
pub fn scan_css(_s: &str) -> Vec<Import> { Vec::new() }
pub fn scan_file(_p: &Path, _s: &str) -> Vec<Import> { Vec::new() }
