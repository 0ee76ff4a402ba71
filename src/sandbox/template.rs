//! STUB
pub const NAMES: &[&str] = &["react-vite"];
pub fn files(n: &str) -> Option<Vec<(&'static str, &'static str)>> { (n == "react-vite").then(Vec::new) }
