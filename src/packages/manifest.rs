//! The parts of `package.json` that say which packages a folder may import.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Why a `package.json` could not be used; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid JSON: {message}", path.display())]
    Json { path: PathBuf, message: String },
    #[error("{}: \"{field}\" {why}", path.display())]
    Field {
        path: PathBuf,
        field: String,
        why: String,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub path: PathBuf,
    /// The package's own name: importing yourself (or a workspace sibling) is not missing.
    pub name: Option<String>,
    pub dependencies: BTreeMap<String, String>,
    pub dev_dependencies: BTreeMap<String, String>,
    pub peer_dependencies: BTreeMap<String, String>,
    pub optional_dependencies: BTreeMap<String, String>,
    /// Workspace globs, from the array form or Yarn's `{ "packages": [...] }`.
    pub workspaces: Vec<String>,
}

impl Manifest {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Manifest::parse(path, &text)
    }

    /// Parses `text` as the `package.json` at `path`. Fields this model does not use are not
    /// looked at; the ones it uses must have the types npm requires.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ManifestError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let v: Value = serde_json::from_str(text).map_err(|e| ManifestError::Json {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let field_err = |field: &str, why: &str| ManifestError::Field {
            path: path.to_path_buf(),
            field: field.to_owned(),
            why: why.to_owned(),
        };
        let Value::Object(obj) = &v else {
            return Err(field_err("(top level)", "must be an object"));
        };
        let name = match obj.get("name") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(field_err("name", "must be a string")),
        };
        let deps = |field: &str| -> Result<BTreeMap<String, String>, ManifestError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(BTreeMap::new()),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone())),
                        _ => Err(field_err(
                            &format!("{field}.{k}"),
                            "must be a version string",
                        )),
                    })
                    .collect(),
                Some(_) => Err(field_err(field, "must be an object of name → version")),
            }
        };
        let globs = |v: &Value, field: &str| -> Result<Vec<String>, ManifestError> {
            match v {
                Value::Array(a) => a
                    .iter()
                    .map(|g| {
                        g.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| field_err(field, "must hold only strings"))
                    })
                    .collect(),
                _ => Err(field_err(field, "must be an array of globs")),
            }
        };
        let workspaces = match obj.get("workspaces") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Object(w)) => match w.get("packages") {
                Some(p) => globs(p, "workspaces.packages")?,
                None => Vec::new(),
            },
            Some(other) => globs(other, "workspaces")?,
        };
        Ok(Manifest {
            path: path.to_path_buf(),
            name,
            dependencies: deps("dependencies")?,
            dev_dependencies: deps("devDependencies")?,
            peer_dependencies: deps("peerDependencies")?,
            optional_dependencies: deps("optionalDependencies")?,
            workspaces,
        })
    }

    /// True when any of the four dependency maps lists `name`.
    pub fn declares(&self, name: &str) -> bool {
        self.declared_version(name).is_some()
    }

    /// The version range `name` is declared with, looking in dependencies, then dev, peer and
    /// optional dependencies.
    pub fn declared_version(&self, name: &str) -> Option<&str> {
        [
            &self.dependencies,
            &self.dev_dependencies,
            &self.peer_dependencies,
            &self.optional_dependencies,
        ]
        .into_iter()
        .find_map(|m| m.get(name))
        .map(String::as_str)
    }
}

/// The nearest `package.json` at or above `dir`, never looking above `stop_at` (the project
/// root): a manifest outside the project is not the project's to edit.
pub fn nearest(dir: &Path, stop_at: &Path) -> Option<PathBuf> {
    if !dir.starts_with(stop_at) {
        return None;
    }
    for d in dir.ancestors() {
        let candidate = d.join("package.json");
        if candidate.is_file() {
            return Some(candidate);
        }
        if d == stop_at {
            break;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_maps_and_workspaces() {
        let m = Manifest::parse(
            Path::new("/p/package.json"),
            r#"{ "name": "app", "dependencies": {"react": "^19.0.0"},
                 "devDependencies": {"vite": "^6"}, "peerDependencies": {"vue": "*"},
                 "optionalDependencies": {"fsevents": "2"}, "workspaces": ["packages/*"] }"#,
        )
        .unwrap();
        assert_eq!(m.name.as_deref(), Some("app"));
        for n in ["react", "vite", "vue", "fsevents"] {
            assert!(m.declares(n), "{n}");
        }
        assert!(!m.declares("lodash"));
        assert_eq!(m.declared_version("vite"), Some("^6"));
        assert_eq!(m.workspaces, vec!["packages/*".to_string()]);
        let y = Manifest::parse(
            Path::new("p.json"),
            r#"{"workspaces": {"packages": ["apps/*", "libs/*"]}}"#,
        )
        .unwrap();
        assert_eq!(y.workspaces.len(), 2);
    }

    #[test]
    fn errors_name_the_file_and_the_problem() {
        let p = Path::new("/w/package.json");
        let e = Manifest::parse(p, "{ \"name\": ").unwrap_err().to_string();
        assert!(
            e.contains("/w/package.json") && e.contains("not valid JSON"),
            "{e}"
        );
        let e = Manifest::parse(p, "[]").unwrap_err().to_string();
        assert!(e.contains("must be an object"), "{e}");
        let e = Manifest::parse(p, r#"{"dependencies": {"a": 1}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("dependencies.a") && e.contains("version string"),
            "{e}"
        );
        let e = Manifest::parse(p, r#"{"devDependencies": []}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("devDependencies"), "{e}");
        let e = Manifest::parse(p, r#"{"workspaces": [1]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("workspaces"), "{e}");
        let e = Manifest::load(Path::new("/nonexistent/package.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read /nonexistent/package.json"), "{e}");
    }

    #[test]
    fn nearest_stops_at_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proj");
        std::fs::create_dir_all(root.join("packages/a/src/deep")).unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        std::fs::write(root.join("packages/a/package.json"), "{}").unwrap();
        assert_eq!(
            nearest(&root.join("packages/a/src/deep"), &root),
            Some(root.join("packages/a/package.json"))
        );
        assert_eq!(
            nearest(&root.join("src"), &root),
            None,
            "the one above the root is not ours"
        );
        std::fs::write(root.join("package.json"), "{}").unwrap();
        assert_eq!(
            nearest(&root.join("src"), &root),
            Some(root.join("package.json"))
        );
        assert_eq!(nearest(dir.path(), &root), None);
    }
}
