//! STUB
use std::path::{Path, PathBuf};
#[derive(Debug, thiserror::Error)]
#[error("bad")]
pub struct ManifestError;
pub struct Manifest { pub path: PathBuf }
impl Manifest {
    pub fn parse(p: &Path, _t: &str) -> Result<Manifest, ManifestError> { Ok(Manifest { path: p.to_path_buf() }) }
    pub fn declares(&self, _n: &str) -> bool { false }
}
