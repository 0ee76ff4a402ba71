//! Which npm packages the code imports, and which of them no `package.json` declares.
//!
//! [`scan`] finds imports in scripts and stylesheets, [`specifier`] turns a specifier into a
//! package name (or decides it is not one), [`aliases`] knows the project's import aliases,
//! [`manifest`] reads `package.json`, and [`index`] keeps all of it per workspace for
//! diagnostics and the `detectPackages` command. [`install`] runs one install on a host
//! (workspace or sandbox) and [`service`] does a project's installs.

pub mod aliases;
pub mod index;
pub mod install;
pub mod launcher;
pub mod manifest;
pub mod scan;
pub mod specifier;

#[cfg(test)]
mod tests;

pub use aliases::Aliases;
pub use index::{detect, Missing, MissingImport, PackageIndex};
pub use manifest::{Manifest, ManifestError};
pub use scan::{
    scan_css, scan_file, scan_js, scan_script, source_kind, Import, ImportKind, SourceKind,
};
pub use specifier::{is_builtin, package_name, parse_install_arg, types_package, validate_name};
