//! Readiness: polling `healthy()` until the dev server answers (never a fixed sleep), with a
//! timeout that reports the server's last lines.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::logs::last_lines;
use crate::sandbox::{ProviderKind, Sandbox, SandboxError};

/// Polls `healthy()` until the dev server answers; fails early with its last lines when it
/// cannot come up.
pub async fn wait_ready(
    sb: &dyn Sandbox,
    timeout: Duration,
    cancel: &CancellationToken,
    logs: &Arc<Mutex<VecDeque<String>>>,
) -> Result<Duration, SandboxError> {
    let start = Instant::now();
    // Locally a probe is a socket connect; in the cloud it is a request (E2B: a process), so
    // poll those less often.
    let (first, cap) = if sb.info().provider == ProviderKind::Local {
        (Duration::from_millis(10), Duration::from_millis(50))
    } else {
        (Duration::from_millis(250), Duration::from_secs(1))
    };
    let mut interval = first;
    loop {
        if sb.healthy().await {
            return Ok(start.elapsed());
        }
        if cancel.is_cancelled() {
            return Err(SandboxError::Cancelled);
        }
        if start.elapsed() > timeout {
            return Err(SandboxError::Timeout(format!(
                "the dev server did not answer within {} s; its last output:\n{}",
                timeout.as_secs(),
                last_lines(logs, 10)
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = cancel.cancelled() => return Err(SandboxError::Cancelled),
        }
        interval = (interval * 2).min(cap);
    }
}
