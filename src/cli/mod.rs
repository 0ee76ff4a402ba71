//! Headless commands beyond apply/zip: generate, sandboxes, fix, packages and history, on the
//! same core as the server.

pub mod fix;
pub mod generate;
pub mod history;
pub mod packages;
pub mod sandbox;
