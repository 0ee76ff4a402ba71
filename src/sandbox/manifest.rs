//! `builder.sandbox.files`: the sandbox's text files, its folder structure, and a manifest
//! (per file: imports, exports, components; routes; entry point; style files) — the context
//! edit-mode generation works from.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use super::{Sandbox, SandboxError};
use crate::packages::scan::scan_file;

/// Extensions read as text; everything else is only listed.
const TEXT_EXTENSIONS: &[&str] = &[
    "js", "jsx", "ts", "tsx", "mjs", "cjs", "css", "scss", "json", "html", "md",
];
/// Files above this are listed in the structure but not read (the seed read only < 10 KB).
pub const MAX_FILE_BYTES: usize = 256 * 1024;
/// Total bytes read, so a huge tree cannot flood the editor.
pub const MAX_TOTAL_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilesListing {
    pub files: BTreeMap<String, String>,
    /// Folders, `/`-separated, sorted.
    pub structure: Vec<String>,
    pub file_count: usize,
    pub manifest: Manifest,
    /// Text files not read because of the size caps.
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub files: BTreeMap<String, FileInfo>,
    pub routes: Vec<RouteInfo>,
    pub entry_point: Option<String>,
    pub style_files: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    /// `component`, `page`, `entry`, `style`, `config`, `module`.
    pub kind: String,
    pub imports: Vec<String>,
    pub exports: Vec<String>,
    pub components: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteInfo {
    pub path: String,
    pub component: Option<String>,
    pub file: String,
}

/// Lists and reads the sandbox's files (under `sub` when given) and builds the manifest.
pub async fn collect(sb: &dyn Sandbox, sub: Option<&str>) -> Result<FilesListing, SandboxError> {
    let mut paths = sb.list_files().await?;
    if let Some(sub) = sub {
        let prefix = format!("{}/", sub.trim_end_matches('/'));
        paths.retain(|p| p.starts_with(&prefix));
    }
    paths.sort();
    let mut out = FilesListing {
        file_count: paths.len(),
        ..Default::default()
    };
    let mut dirs = BTreeSet::new();
    let mut total = 0usize;
    for p in &paths {
        let mut d = Path::new(p).parent();
        while let Some(dir) = d {
            let s = dir.to_string_lossy();
            if s.is_empty() {
                break;
            }
            dirs.insert(s.replace('\\', "/"));
            d = dir.parent();
        }
        let ext = p
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if !TEXT_EXTENSIONS.contains(&ext.as_str()) || p.ends_with("package-lock.json") {
            continue;
        }
        if total >= MAX_TOTAL_BYTES {
            out.skipped.push(p.clone());
            continue;
        }
        let Some(bytes) = sb.read_file(p).await? else {
            continue;
        };
        if bytes.len() > MAX_FILE_BYTES || total + bytes.len() > MAX_TOTAL_BYTES {
            out.skipped.push(p.clone());
            continue;
        }
        total += bytes.len();
        out.files
            .insert(p.clone(), String::from_utf8_lossy(&bytes).into_owned());
    }
    out.structure = dirs.into_iter().collect();
    out.manifest = build(&out.files);
    Ok(out)
}

/// The manifest of a set of files (path → content).
pub fn build(files: &BTreeMap<String, String>) -> Manifest {
    let mut m = Manifest::default();
    for (path, content) in files {
        let lower = path.to_ascii_lowercase();
        let is_style = [".css", ".scss", ".sass", ".less"]
            .iter()
            .any(|e| lower.ends_with(e));
        if is_style {
            m.style_files.push(path.clone());
        }
        let is_code = [".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs"]
            .iter()
            .any(|e| lower.ends_with(e));
        if !is_code && !is_style {
            continue;
        }
        let imports: Vec<String> = scan_file(Path::new(path), content)
            .into_iter()
            .map(|i| i.specifier)
            .collect();
        let exports = if is_code {
            exports_of(content)
        } else {
            Vec::new()
        };
        let has_jsx = is_code
            && (lower.ends_with("x") || content.contains("React"))
            && content.contains("</");
        let components: Vec<String> = if has_jsx {
            declared_names(content)
                .into_iter()
                .filter(|n| n.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
                .collect()
        } else {
            Vec::new()
        };
        let file_name = lower.rsplit('/').next().unwrap_or("");
        let kind = if is_style {
            "style"
        } else if crate::generate::context::is_entry(&lower) {
            "entry"
        } else if file_name.contains(".config.") {
            "config"
        } else if lower.contains("/pages/")
            || lower.contains("/routes/")
            || lower.contains("/app/") && file_name.starts_with("page.")
        {
            "page"
        } else if !components.is_empty() {
            "component"
        } else {
            "module"
        };
        if kind == "entry" && m.entry_point.is_none() {
            m.entry_point = Some(path.clone());
        }
        if is_code {
            m.routes.extend(routes_in(path, content));
        }
        m.files.insert(
            path.clone(),
            FileInfo {
                kind: kind.into(),
                imports,
                exports,
                components,
            },
        );
    }
    m
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == '$'))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// Names exported by `export …` statements (line-based; good enough for app code).
fn exports_of(content: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in content.lines() {
        let t = line.trim_start();
        let Some(rest) = t.strip_prefix("export ") else {
            continue;
        };
        let rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("default ") {
            let r = r.trim_start();
            let r = r.strip_prefix("async ").unwrap_or(r).trim_start();
            let name = r
                .strip_prefix("function")
                .map(|x| x.trim_start_matches('*').trim_start())
                .or_else(|| r.strip_prefix("class "))
                .and_then(ident_at)
                .or_else(|| ident_at(r).filter(|n| !matches!(*n, "function" | "class")));
            out.push(match name {
                Some(n) => format!("default ({n})"),
                None => "default".into(),
            });
            continue;
        }
        if let Some(r) = rest.strip_prefix('{') {
            let inner = r.split('}').next().unwrap_or("");
            for part in inner.split(',') {
                let part = part.trim();
                let name = part.rsplit(" as ").next().unwrap_or(part).trim();
                if !name.is_empty() {
                    out.push(name.to_string());
                }
            }
            continue;
        }
        let r = rest.strip_prefix("async ").unwrap_or(rest);
        for kw in [
            "function* ",
            "function ",
            "const ",
            "let ",
            "var ",
            "class ",
            "interface ",
            "type ",
            "enum ",
        ] {
            if let Some(x) = r.strip_prefix(kw) {
                if let Some(n) = ident_at(x.trim_start()) {
                    out.push(n.to_string());
                }
                break;
            }
        }
    }
    out.dedup();
    out
}

/// Top-level-looking function/const/class names (component candidates).
fn declared_names(content: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in content.lines() {
        let mut t = line.trim_start();
        for p in ["export ", "default ", "async "] {
            t = t.strip_prefix(p).unwrap_or(t).trim_start();
        }
        for kw in ["function ", "const ", "let ", "class "] {
            if let Some(x) = t.strip_prefix(kw) {
                if let Some(n) = ident_at(x.trim_start()) {
                    if !out.iter().any(|o| o == n) {
                        out.push(n.to_string());
                    }
                }
                break;
            }
        }
    }
    out
}

/// `<Route path="/x" element={<X />}>` and `{ path: '/x', element: <X /> }` routes.
fn routes_in(file: &str, content: &str) -> Vec<RouteInfo> {
    let mut out = Vec::new();
    let mut rest = content;
    while let Some(i) = rest.find("path") {
        let after = &rest[i + 4..];
        rest = after;
        let a = after.trim_start();
        let Some(a) = a.strip_prefix('=').or_else(|| a.strip_prefix(':')) else {
            continue;
        };
        let a = a.trim_start();
        let Some(q) = a.chars().next().filter(|c| matches!(c, '"' | '\'' | '`')) else {
            continue;
        };
        let Some(end) = a[1..].find(q) else { continue };
        let path = &a[1..1 + end];
        if !path.starts_with('/') && path != "*" {
            continue;
        }
        // The component: the first `<Name` within the next 200 bytes.
        let window: String = a[1 + end..].chars().take(200).collect();
        let component = window
            .find("element")
            .and_then(|e| {
                let w = &window[e..];
                let lt = w.find('<')?;
                ident_at(&w[lt + 1..]).map(String::from)
            })
            .or_else(|| {
                let e = window.find("component")?;
                let w = window[e + 9..].trim_start_matches([' ', ':', '=', '{']);
                ident_at(w).map(String::from)
            });
        out.push(RouteInfo {
            path: path.to_string(),
            component,
            file: file.to_string(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_finds_exports_components_routes_entry_and_styles() {
        let mut f = BTreeMap::new();
        f.insert("src/main.jsx".to_string(), "import React from 'react'\nimport App from './App'\nimport './index.css'\ncreateRoot(document.getElementById('root')).render(<App />)\n".to_string());
        f.insert("src/App.jsx".to_string(), "import { Routes, Route } from 'react-router-dom'\nimport Home from './pages/Home'\nexport default function App() {\n  return <Routes><Route path=\"/\" element={<Home />} /><Route path='/about' element={<About/>} /></Routes>\n}\nconst About = () => <p>About</p>\n".to_string());
        f.insert(
            "src/pages/Home.jsx".to_string(),
            "export const Home = () => <div>Home</div>\nexport { Home as default }\n".to_string(),
        );
        f.insert("src/index.css".to_string(), "@tailwind base;\n".to_string());
        f.insert(
            "src/lib/util.js".to_string(),
            "export function sum(a, b) { return a + b }\nexport const K = 1\n".to_string(),
        );
        let m = build(&f);
        assert_eq!(m.entry_point.as_deref(), Some("src/main.jsx"));
        assert_eq!(m.style_files, ["src/index.css"]);
        let app = &m.files["src/App.jsx"];
        assert_eq!(app.kind, "component");
        assert_eq!(app.exports, ["default (App)"]);
        assert_eq!(app.components, ["App", "About"]);
        assert_eq!(app.imports, ["react-router-dom", "./pages/Home"]);
        assert_eq!(m.files["src/pages/Home.jsx"].kind, "page");
        assert_eq!(m.files["src/pages/Home.jsx"].exports, ["Home", "default"]);
        assert_eq!(m.files["src/lib/util.js"].kind, "module");
        assert_eq!(m.files["src/lib/util.js"].exports, ["sum", "K"]);
        assert_eq!(
            m.routes,
            [
                RouteInfo {
                    path: "/".into(),
                    component: Some("Home".into()),
                    file: "src/App.jsx".into()
                },
                RouteInfo {
                    path: "/about".into(),
                    component: Some("About".into()),
                    file: "src/App.jsx".into()
                },
            ]
        );
    }
}
