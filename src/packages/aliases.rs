//! STUB
use std::path::Path;
#[derive(Default, Debug, Clone)]
pub struct Aliases;
impl Aliases { pub fn load(_r: &Path) -> Aliases { Aliases } pub fn matches(&self, _s: &str) -> bool { false } }
