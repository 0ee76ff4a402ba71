//! The dev server's output: a bounded ring of lines for `builder.sandbox.logs` and error
//! diagnostics (the preview plugin's reports left out), and its last lines for error messages.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::{LineHook, Session};
use crate::sandbox::{LineSink, OutputStream};

/// Lines of dev-server output kept for `builder.sandbox.logs` and error diagnostics.
pub const LOG_LINES: usize = 1000;

impl Session {
    pub fn recent_logs(&self, n: usize) -> Vec<String> {
        let l = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        l.iter().skip(l.len().saturating_sub(n)).cloned().collect()
    }

    /// The dev server's current compile errors ([`crate::sandbox::vite_errors`]) in the
    /// project at `project_root` (the local folder whose files the sandbox runs).
    pub fn compile_errors(
        &self,
        project_root: &std::path::Path,
    ) -> Vec<crate::sandbox::vite_errors::ViteError> {
        let dir = self.sandbox.project_dir();
        let mut errors =
            crate::sandbox::vite_errors::parse(&self.recent_logs(300), std::path::Path::new(&dir));
        crate::sandbox::vite_errors::drop_resolved_imports(&mut errors, project_root);
        errors
    }

    /// A sink that keeps dev-server lines (not the preview plugin's reports) and forwards each
    /// to `also`.
    pub fn log_sink(logs: Arc<Mutex<VecDeque<String>>>, also: Option<LineHook>) -> LineSink {
        Arc::new(move |_s: OutputStream, line: &str| {
            // The preview plugin's reports are data, not log text (`builder.sandbox.errors`).
            if !line
                .trim_start()
                .starts_with(crate::sandbox::preview::LINE_PREFIX)
            {
                let mut l = logs.lock().unwrap_or_else(|e| e.into_inner());
                if l.len() >= LOG_LINES {
                    l.pop_front();
                }
                l.push_back(line.to_string());
            }
            if let Some(f) = &also {
                f(line);
            }
        })
    }

    /// Notes in the log that the server changed `rels` in the sandbox (see
    /// `vite_errors::CHANGED_MARKER`).
    pub fn note_changed(&self, rels: &[String]) {
        let mut l = self.logs.lock().unwrap_or_else(|e| e.into_inner());
        if l.len() >= LOG_LINES {
            l.pop_front();
        }
        l.push_back(format!(
            "{}{}",
            crate::sandbox::vite_errors::CHANGED_MARKER,
            rels.join(", ")
        ));
    }
}

pub(super) fn last_lines(logs: &Arc<Mutex<VecDeque<String>>>, n: usize) -> String {
    let l = logs.lock().unwrap_or_else(|e| e.into_inner());
    let v: Vec<&str> = l
        .iter()
        .skip(l.len().saturating_sub(n))
        .map(String::as_str)
        .collect();
    if v.is_empty() {
        "(no output)".into()
    } else {
        v.join("\n")
    }
}
