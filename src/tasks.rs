//! Long-running work as tasks: an id answered at once, state and result queried later,
//! one cancellation token shared by every way of cancelling (command, `$/cancelRequest`,
//! progress cancel). Editors time out long requests and Helix never cancels, hence this.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dashmap::DashMap;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How many finished tasks are remembered for `builder.task.status`.
const KEEP_FINISHED: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Running,
    Done,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskSnapshot {
    pub task_id: String,
    pub command: String,
    pub project: String,
    pub state: TaskState,
    pub message: String,
    pub elapsed_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

struct Inner {
    state: TaskState,
    message: String,
    result: Option<Value>,
    finished_at: Option<Instant>,
}

pub struct Task {
    pub id: String,
    pub command: String,
    pub project: PathBuf,
    pub cancel: CancellationToken,
    started: Instant,
    inner: Mutex<Inner>,
    done_tx: watch::Sender<bool>,
}

impl Task {
    pub fn state(&self) -> TaskState {
        self.lock().state
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere while holding it; the data is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_message(&self, message: impl Into<String>) {
        self.lock().message = message.into();
    }

    /// Records the end state and result; the first call wins.
    pub fn finish(&self, state: TaskState, result: Value) {
        let mut inner = self.lock();
        if inner.state != TaskState::Running {
            return;
        }
        inner.state = state;
        inner.result = Some(result);
        inner.finished_at = Some(Instant::now());
        drop(inner);
        self.done_tx.send_replace(true);
    }

    pub fn snapshot(&self) -> TaskSnapshot {
        let inner = self.lock();
        TaskSnapshot {
            task_id: self.id.clone(),
            command: self.command.clone(),
            project: self.project.display().to_string(),
            state: inner.state,
            message: inner.message.clone(),
            elapsed_ms: inner
                .finished_at
                .unwrap_or_else(Instant::now)
                .duration_since(self.started)
                .as_millis() as u64,
            result: inner.result.clone(),
        }
    }

    /// Resolves when the task has finished (any end state).
    pub async fn wait(&self) {
        let mut rx = self.done_tx.subscribe();
        while !*rx.borrow_and_update() {
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}

/// All tasks of the server, keyed by id.
#[derive(Default)]
pub struct TaskRegistry {
    tasks: DashMap<String, Arc<Task>>,
    next: AtomicU64,
}

impl TaskRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn start(&self, command: &str, project: PathBuf) -> Arc<Task> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (done_tx, _) = watch::channel(false);
        let task = Arc::new(Task {
            id: format!("task-{n}"),
            command: command.to_string(),
            project,
            cancel: CancellationToken::new(),
            started: Instant::now(),
            inner: Mutex::new(Inner {
                state: TaskState::Running,
                message: "started".into(),
                result: None,
                finished_at: None,
            }),
            done_tx,
        });
        self.tasks.insert(task.id.clone(), task.clone());
        self.prune();
        task
    }

    pub fn get(&self, id: &str) -> Option<Arc<Task>> {
        self.tasks.get(id).map(|t| t.clone())
    }

    /// The running tasks of one project, newest first.
    pub fn running_in(&self, project: &std::path::Path) -> Vec<Arc<Task>> {
        let mut v: Vec<Arc<Task>> = self
            .tasks
            .iter()
            .filter(|t| t.project == project && t.state() == TaskState::Running)
            .map(|t| t.clone())
            .collect();
        v.sort_by_key(|t| std::cmp::Reverse(t.started));
        v
    }

    /// A task of `command` still running in `project`. One that was cancelled but has not wound
    /// down yet (`$/cancelRequest` is answered before its task ends) is waited for, up to
    /// `wind_down`, so a follow-up request is not refused because of it.
    pub async fn busy(
        &self,
        project: &std::path::Path,
        command: &str,
        wind_down: std::time::Duration,
    ) -> Option<Arc<Task>> {
        let running: Vec<_> = self
            .running_in(project)
            .into_iter()
            .filter(|t| t.command == command)
            .collect();
        for t in running.iter().filter(|t| t.cancel.is_cancelled()) {
            let _ = tokio::time::timeout(wind_down, t.wait()).await;
        }
        running
            .into_iter()
            .find(|t| t.state() == TaskState::Running)
    }

    pub fn cancel_all(&self) {
        for t in self.tasks.iter() {
            t.cancel.cancel();
        }
    }

    /// Forgets the oldest finished tasks beyond [`KEEP_FINISHED`].
    fn prune(&self) {
        let mut finished: Vec<(Instant, String)> = self
            .tasks
            .iter()
            .filter_map(|t| t.lock().finished_at.map(|f| (f, t.id.clone())))
            .collect();
        if finished.len() <= KEEP_FINISHED {
            return;
        }
        finished.sort();
        let excess = finished.len() - KEEP_FINISHED;
        for (_, id) in finished.into_iter().take(excess) {
            self.tasks.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finish_is_first_wins_and_wakes_waiters() {
        let reg = TaskRegistry::new();
        let t = reg.start("builder.apply", PathBuf::from("/p"));
        let t2 = t.clone();
        let waiter = tokio::spawn(async move { t2.wait().await });
        t.finish(TaskState::Cancelled, serde_json::json!({"a": 1}));
        t.finish(TaskState::Done, serde_json::json!({"a": 2}));
        waiter.await.unwrap();
        let s = t.snapshot();
        assert_eq!(s.state, TaskState::Cancelled);
        assert_eq!(s.result, Some(serde_json::json!({"a": 1})));
        assert!(reg.running_in(std::path::Path::new("/p")).is_empty());
    }

    #[tokio::test]
    async fn busy_waits_out_a_cancelled_task_but_not_a_running_one() {
        let reg = TaskRegistry::new();
        let p = std::path::Path::new("/p");
        let wind_down = std::time::Duration::from_secs(5);
        let gen = reg.start("builder.generate", p.to_path_buf());
        assert!(reg.busy(p, "builder.apply", wind_down).await.is_none());
        let t = std::time::Instant::now();
        assert_eq!(
            reg.busy(p, "builder.generate", wind_down)
                .await
                .map(|t| t.id.clone()),
            Some(gen.id.clone())
        );
        assert!(t.elapsed() < wind_down, "a running task is not waited for");
        // Cancelled, ending a moment later: waited for, then not busy.
        gen.cancel.cancel();
        let g2 = gen.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            g2.finish(TaskState::Cancelled, Value::Null);
        });
        assert!(reg.busy(p, "builder.generate", wind_down).await.is_none());
        // Cancelled but stuck: still busy once the wind-down is over.
        let stuck = reg.start("builder.generate", p.to_path_buf());
        stuck.cancel.cancel();
        let short = std::time::Duration::from_millis(20);
        assert!(reg.busy(p, "builder.generate", short).await.is_some());
    }

    #[test]
    fn prune_keeps_running_tasks() {
        let reg = TaskRegistry::new();
        let running = reg.start("x", PathBuf::from("/p"));
        for _ in 0..(KEEP_FINISHED + 10) {
            let t = reg.start("y", PathBuf::from("/p"));
            t.finish(TaskState::Done, Value::Null);
        }
        reg.start("z", PathBuf::from("/p"));
        assert!(reg.get(&running.id).is_some());
        assert!(reg.tasks.len() <= KEEP_FINISHED + 2);
    }
}
