//! Headless commands beyond apply/generate/zip: sandboxes and packages, on the same core
//! as the server.

pub mod packages;
pub mod sandbox;
