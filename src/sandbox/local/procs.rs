//! Loopback ports handed to live sandboxes, the process groups of their children, and the
//! running dev server (stopped group-wide).

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::*;

/// Ports handed to live sandboxes of this process, so two sandboxes never get the same one
/// (the kernel may hand out a just-released ephemeral port again).
pub(super) static PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A free loopback port (bind :0, read, release), reserved for this process.
pub(super) fn reserve_port() -> Result<u16> {
    for _ in 0..20 {
        let port = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        let mut taken = lock(&PORTS);
        if !taken.contains(&port) {
            taken.push(port);
            return Ok(port);
        }
    }
    Err(SandboxError::Failed(
        "cannot find a free loopback port for the dev server".into(),
    ))
}

pub(super) fn release_port(port: u16) {
    lock(&PORTS).retain(|p| *p != port);
}

/// The process groups of this sandbox's live children (commands and the dev server).
#[derive(Default)]
pub(super) struct Groups {
    pub(super) live: Mutex<HashSet<i32>>,
    pub(super) changed: Notify,
}

impl Groups {
    pub(super) fn register(self: &Arc<Self>, pgid: i32) -> GroupGuard {
        lock(&self.live).insert(pgid);
        GroupGuard {
            pgid,
            groups: self.clone(),
        }
    }

    pub(super) fn signal_all(&self, sig: i32) {
        for pgid in lock(&self.live).iter() {
            signal_group(*pgid, sig);
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        lock(&self.live).is_empty()
    }

    /// Waits until every group is unregistered or `limit` passes; whether they all went.
    pub(super) async fn wait_empty(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.changed.notified();
            if self.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return self.is_empty();
            }
        }
    }
}

/// Keeps a group registered while its leader is ours; dropping it SIGKILLs what is left of
/// the group (stragglers, or everything when the owning future was dropped mid-run).
pub(super) struct GroupGuard {
    pub(super) pgid: i32,
    pub(super) groups: Arc<Groups>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        signal_group(self.pgid, libc::SIGKILL);
        lock(&self.groups.live).remove(&self.pgid);
        self.groups.changed.notify_waiters();
    }
}

/// A running dev server: its leader, its group, the tasks forwarding its output.
pub(super) struct DevServer {
    pub(super) child: Child,
    pub(super) guard: GroupGuard,
    pub(super) pumps: Vec<JoinHandle<()>>,
}

/// How a Vite start went, as far as `start_dev_server` waits.
pub(super) enum Startup {
    Listening,
    PortInUse,
    Exited(String),
    /// Neither listening nor failed within `LISTEN_WAIT` (`vite.rs`).
    Undecided,
}

/// SIGTERM the group, SIGKILL after `grace`, reap the leader, let the forwarders drain.
pub(super) async fn stop_dev(mut dev: DevServer, grace: Duration) {
    signal_group(dev.guard.pgid, libc::SIGTERM);
    if tokio::time::timeout(grace, dev.child.wait()).await.is_err() {
        signal_group(dev.guard.pgid, libc::SIGKILL);
        let _ = tokio::time::timeout(Duration::from_secs(2), dev.child.wait()).await;
    }
    // Stragglers of the group (esbuild) go now, before the forwarders wait for EOF.
    signal_group(dev.guard.pgid, libc::SIGKILL);
    for mut p in dev.pumps.drain(..) {
        if tokio::time::timeout(Duration::from_millis(500), &mut p)
            .await
            .is_err()
        {
            p.abort();
        }
    }
}
