//! Headless commands beyond apply/generate/zip: sandboxes, packages and history, on the same core
//! as the server.

pub mod fix;
pub mod history;
pub mod packages;
pub mod sandbox;
