//! npm packages: what the code imports (`scan`, `specifier`, `aliases`), what `package.json`
//! declares (`manifest`), the per-project index behind diagnostics (`index`), and installing
//! (`install` for one run, `service` for a project's installs).

pub mod aliases;
pub mod index;
pub mod install;
pub mod manifest;
pub mod scan;
pub mod service;
pub mod specifier;
