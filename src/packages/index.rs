//! STUB
use std::path::{Path, PathBuf};
use super::scan::Import;
pub struct PackageIndex;
pub struct MissingImport { pub package: String, pub import: Import, pub manifest: Option<PathBuf> }
pub struct Missing { pub imports: Vec<String>, pub packages: Vec<String>, pub type_packages: Vec<String> }
impl PackageIndex {
    pub fn build(_r: &Path) -> PackageIndex { PackageIndex }
    pub fn update_file(&mut self, _p: &Path, _t: &str) {}
    pub fn remove_file(&mut self, _p: &Path) {}
    pub fn reload_manifest(&mut self, _p: &Path) {}
    pub fn reload_aliases(&mut self) {}
    pub fn missing(&self) -> Missing { Missing { imports: vec![], packages: vec![], type_packages: vec![] } }
    pub fn missing_in(&self, _p: &Path, _i: &[Import]) -> Vec<MissingImport> { vec![] }
}
pub fn detect(_f: &[(PathBuf, String)], _r: &Path) -> Missing { Missing { imports: vec![], packages: vec![], type_packages: vec![] } }
