//! Progress events the core emits; the LSP edge turns them into `$/progress`, the CLI into stderr lines.
//! Keeping this tiny type in the core is what lets the core stay free of LSP types.

use std::sync::Arc;

/// One step of a long job, in words a person can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A phase starts ("Parsing answer", "Writing files").
    Status(String),
    /// `current` of `total` files is being written.
    File {
        path: String,
        current: usize,
        total: usize,
    },
    /// Something the user should know that is not an error.
    Warning(String),
    /// A line of output from a tool (npm, vite).
    Output(String),
}

impl Event {
    /// The message shown to the user for this event.
    pub fn message(&self) -> String {
        match self {
            Event::Status(s) | Event::Warning(s) | Event::Output(s) => s.clone(),
            Event::File {
                path,
                current,
                total,
            } => format!("Writing {path} ({current}/{total})"),
        }
    }

    /// Percentage for progress bars, when the event knows it.
    pub fn percentage(&self) -> Option<u32> {
        match self {
            Event::File { current, total, .. } if *total > 0 => {
                Some(((*current as u64 * 100) / *total as u64).min(100) as u32)
            }
            _ => None,
        }
    }
}

/// Where the core sends events; cheap to clone, callable from any thread.
pub type Reporter = Arc<dyn Fn(Event) + Send + Sync>;

/// A reporter that drops every event (headless JSON output, tests).
pub fn silent() -> Reporter {
    Arc::new(|_| {})
}
