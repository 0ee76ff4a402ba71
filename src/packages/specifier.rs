//! STUB
use super::aliases::Aliases;
pub fn package_name<'a>(spec: &'a str, _a: &Aliases) -> Option<&'a str> { Some(spec) }
pub fn validate_name(_n: &str) -> Result<(), String> { Ok(()) }
pub fn parse_install_arg(a: &str) -> Result<(String, Option<String>), String> { Ok((a.to_string(), None)) }
pub fn is_builtin(_n: &str) -> bool { false }
pub fn types_package(n: &str) -> Option<String> { Some(format!("@types/{n}")) }
