//! Missing-package diagnostics on open JS/TS/CSS documents: a warning on the import
//! specifier's exact range, recomputed (debounced) on change and after `package.json` changes.
//! The detection itself is `packages::index`; this module only schedules and converts ranges.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde_json::json;
use tower_lsp_server::ls_types::*;

use super::documents::Encoding;
use super::Backend;
use crate::packages::scan::{scan_file, source_kind, SourceKind};
use crate::project::Project;

/// `Diagnostic.code` of ours; quick fixes look for it.
pub const CODE: &str = "missing-package";
pub const SOURCE: &str = "builder";

/// Per-document debounce generations: a newer change makes older timers give up.
#[derive(Default)]
pub struct Debounce {
    generation: DashMap<String, Arc<AtomicU64>>,
    /// Missing runtime packages last published per document, for "Install all missing".
    pub missing: DashMap<String, Vec<String>>,
    /// What each source (`builder`, `vite`) last reported per document: one
    /// `publishDiagnostics` replaces a document's whole set, so sources are merged.
    by_source: DashMap<String, Vec<(&'static str, Vec<Diagnostic>)>>,
}

impl Debounce {
    /// No source has anything to show for `uri`.
    pub fn is_empty_for(&self, uri: &Uri) -> bool {
        self.by_source
            .get(uri.as_str())
            .is_none_or(|v| v.iter().all(|(_, d)| d.is_empty()))
    }
}

/// Publishes `diags` as `source`'s set for `uri`, together with the other sources' sets.
pub async fn publish_source(
    b: &Backend,
    uri: &Uri,
    source: &'static str,
    diags: Vec<Diagnostic>,
    version: Option<i32>,
) {
    let all: Vec<Diagnostic> = {
        let mut entry =
            b.st.debounce
                .by_source
                .entry(uri.as_str().to_string())
                .or_default();
        match entry.iter_mut().find(|(s, _)| *s == source) {
            Some(slot) => slot.1 = diags,
            None => entry.push((source, diags)),
        }
        entry.iter().flat_map(|(_, d)| d.iter().cloned()).collect()
    };
    b.client
        .publish_diagnostics(uri.clone(), all, version)
        .await;
}

/// Every source's diagnostics last published for `uri`.
pub fn published(b: &Backend, uri: &Uri) -> Vec<Diagnostic> {
    b.st.debounce
        .by_source
        .get(uri.as_str())
        .map(|e| e.iter().flat_map(|(_, d)| d.iter().cloned()).collect())
        .unwrap_or_default()
}

/// Forgets every source's diagnostics of a closed document.
pub fn forget(b: &Backend, uri: &Uri) {
    b.st.debounce.by_source.remove(uri.as_str());
    b.st.debounce.missing.remove(uri.as_str());
}

fn wants_diagnostics(path: &Path) -> bool {
    !matches!(source_kind(path), SourceKind::Other)
}

/// Schedules a diagnostics run for `uri` after the project's debounce delay.
pub fn schedule(b: &Backend, uri: &Uri) {
    let Some(path) = uri.to_file_path().map(|p| p.into_owned()) else {
        return;
    };
    if path.file_name().is_some_and(|n| n == "package.json") {
        // The buffer is not on disk yet; diagnostics follow on save.
        return;
    }
    if !wants_diagnostics(&path) {
        return;
    }
    let Some(project) = b.st.projects.for_path(&path) else {
        return;
    };
    let settings = project.settings();
    if !settings.diagnostics {
        return;
    }
    let gen =
        b.st.debounce
            .generation
            .entry(uri.as_str().to_string())
            .or_default()
            .clone();
    let mine = gen.fetch_add(1, Ordering::SeqCst) + 1;
    let delay = Duration::from_millis(settings.diagnostics_debounce_ms);
    let this = b.clone();
    let uri = uri.clone();
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if gen.load(Ordering::SeqCst) != mine {
            return;
        }
        publish(&this, &project, &uri, &path).await;
    });
}

/// Recomputes and publishes diagnostics for one open document now.
pub async fn publish(b: &Backend, project: &Arc<Project>, uri: &Uri, path: &Path) {
    let Some((text, version)) = b.st.docs.text_and_version(uri) else {
        return;
    };
    let enc = b.caps().encoding;
    let p = project.clone();
    let path2 = path.to_path_buf();
    let computed = tokio::task::spawn_blocking(move || {
        let imports = scan_file(&path2, &text);
        let missing = p.with_packages(|idx| {
            idx.update_file(&path2, &text);
            idx.missing_in(&path2, &imports)
        });
        let lines = LineIndex::new(&text);
        missing
            .into_iter()
            .map(|m| {
                let range = Range {
                    start: lines.position(&text, m.import.range.start, enc),
                    end: lines.position(&text, m.import.range.end, enc),
                };
                let message = if m.import.type_only {
                    format!(
                        "'{}' is not in package.json (imported for types only)",
                        m.package
                    )
                } else {
                    format!("'{}' is not in package.json", m.package)
                };
                Diagnostic {
                    range,
                    severity: Some(DiagnosticSeverity::WARNING),
                    code: Some(NumberOrString::String(CODE.into())),
                    source: Some(SOURCE.into()),
                    message,
                    data: Some(json!({
                        "package": m.package,
                        "typeOnly": m.import.type_only,
                    })),
                    ..Default::default()
                }
            })
            .collect::<Vec<_>>()
    })
    .await;
    if let Ok(diags) = computed {
        let mut names: Vec<String> = diags
            .iter()
            .filter_map(|d| {
                let data = d.data.as_ref()?;
                if data.get("typeOnly")?.as_bool()? {
                    return None;
                }
                data.get("package")?.as_str().map(String::from)
            })
            .collect();
        names.sort();
        names.dedup();
        b.st.debounce
            .missing
            .insert(uri.as_str().to_string(), names);
        publish_source(b, uri, SOURCE, diags, Some(version)).await;
    }
}

/// Republishes every open document of `project` (after an install or a package.json change).
pub async fn refresh_project(b: &Backend, project: &Arc<Project>) {
    let open: Vec<(Uri, PathBuf)> = b.st.docs.uris_under(&project.root);
    for (uri, path) in open {
        if wants_diagnostics(&path) && project.settings().diagnostics {
            publish(b, project, &uri, &path).await;
        }
    }
}

/// A `package.json` (or config with aliases) changed on disk: reload it and republish.
pub async fn manifest_changed(b: &Backend, path: &Path) {
    let Some(project) = b.st.projects.for_path(path) else {
        return;
    };
    let p = project.clone();
    let path = path.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(idx) = p
            .packages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name == "package.json" {
                idx.reload_manifest(&path);
            } else {
                idx.reload_aliases();
            }
        }
    })
    .await;
    refresh_project(b, &project).await;
}

/// Whether a saved or watched file changes what counts as missing.
pub fn affects_detection(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name == "package.json"
        || name == "tsconfig.json"
        || name == "jsconfig.json"
        || name.starts_with("vite.config.")
}

/// Byte offset → LSP position, with line breaks as LSP counts them (`\n`, `\r\n`, `\r`).
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let b = text.as_bytes();
        let mut starts = vec![0];
        let mut i = 0;
        while let Some(off) = memchr::memchr2(b'\n', b'\r', &b[i..]) {
            let at = i + off;
            let next = if b[at] == b'\r' && b.get(at + 1) == Some(&b'\n') {
                at + 2
            } else {
                at + 1
            };
            starts.push(next);
            i = next;
            if i >= b.len() {
                break;
            }
        }
        LineIndex { starts }
    }

    pub fn position(&self, text: &str, offset: usize, enc: Encoding) -> Position {
        let offset = offset.min(text.len());
        let line = self
            .starts
            .partition_point(|&s| s <= offset)
            .saturating_sub(1);
        let start = self.starts.get(line).copied().unwrap_or(0);
        let col = text.get(start..offset).map(|s| enc.len(s)).unwrap_or(0);
        Position {
            line: line as u32,
            character: col as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_lsp_line_breaks_and_encodings() {
        let text = "a\r\nb\rc\n😀'x'";
        let idx = LineIndex::new(text);
        let at = text.find("'x'").unwrap() + 1;
        assert_eq!(
            idx.position(text, at, Encoding::Utf8),
            Position {
                line: 3,
                character: 5
            }
        );
        assert_eq!(
            idx.position(text, at, Encoding::Utf16),
            Position {
                line: 3,
                character: 3
            }
        );
        assert_eq!(
            idx.position(text, at, Encoding::Utf32),
            Position {
                line: 3,
                character: 2
            }
        );
        assert_eq!(
            idx.position(text, 0, Encoding::Utf16),
            Position {
                line: 0,
                character: 0
            }
        );
        let c = text.find('c').unwrap();
        assert_eq!(
            idx.position(text, c, Encoding::Utf16),
            Position {
                line: 2,
                character: 0
            }
        );
    }
}
