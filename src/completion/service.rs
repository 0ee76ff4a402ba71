//! One completion, start to end: the cache first, then (after the debounce) the context, the
//! request and the clean-up. A newer request for a document cancels the older one at once,
//! whether or not the client cancels it (Helix never does); the cancelled request's connection
//! is dropped, so the server stops generating.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;

use super::cache::Cache;
use super::context::{self, ContextOptions};
use super::fim::{self, Limits};
use super::model::Endpoint;
use super::{post, CompletionError};

/// Everything one completion needs, owned (it may outlive the LSP request that asked for it,
/// to fill the cache).
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// The document's key (its URI).
    pub doc: String,
    /// The document's path as shown to the model.
    pub path: String,
    pub text: String,
    /// Byte offset of the cursor in `text`.
    pub cursor: usize,
    /// (path, text) of other open documents of the project.
    pub others: Vec<(String, String)>,
    pub endpoint: Arc<Endpoint>,
    pub context: ContextOptions,
    pub limits: Limits,
    pub debounce: Duration,
    /// Bound on the whole request to the provider.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// To insert at the cursor; empty when the model had nothing useful.
    pub text: String,
    pub cached: bool,
}

/// The right to run one completion for a document, until a newer one takes it.
#[derive(Debug, Clone)]
pub struct Ticket {
    id: u64,
    doc: String,
    pub token: CancellationToken,
}

#[derive(Debug, Default)]
pub struct CompletionService {
    cache: Mutex<Cache>,
    inflight: DashMap<String, (u64, CancellationToken)>,
    seq: AtomicU64,
    /// A current-thread runtime of its own, started on first use: a streamed answer is ~130
    /// small chunks, and handing each from the connection task to the reader on the same
    /// thread costs far less than a wake-up across the server's worker threads.
    runtime: std::sync::OnceLock<Option<tokio::runtime::Handle>>,
}

/// Aborts the task when dropped (superseded, cancelled, timed out): its connection closes.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn start_runtime() -> Option<tokio::runtime::Handle> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| tracing::warn!("completion runtime: {e}; using the server's"))
        .ok()?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("completion".into())
        .spawn(move || rt.block_on(std::future::pending::<()>()))
        .map_err(|e| tracing::warn!("completion thread: {e}; using the server's runtime"))
        .ok()?;
    Some(handle)
}

/// Removes the in-flight entry when the completion ends, however it ends.
struct Release<'a> {
    svc: &'a CompletionService,
    ticket: &'a Ticket,
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        self.svc
            .inflight
            .remove_if(&self.ticket.doc, |_, (id, _)| *id == self.ticket.id);
    }
}

impl CompletionService {
    pub fn new() -> CompletionService {
        CompletionService::default()
    }

    /// Starts a completion for `doc`, cancelling the one before it.
    pub fn begin(&self, doc: &str) -> Ticket {
        let id = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let token = CancellationToken::new();
        if let Some((_, (_, old))) = self.inflight.remove(doc) {
            old.cancel();
        }
        self.inflight.insert(doc.to_string(), (id, token.clone()));
        Ticket {
            id,
            doc: doc.to_string(),
            token,
        }
    }

    /// Requests in flight (for tests and the bench).
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// Forgets what is cached for a closed document and cancels its request.
    pub fn forget(&self, doc: &str) {
        if let Some((_, (_, t))) = self.inflight.remove(doc) {
            t.cancel();
        }
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(doc);
    }

    /// The cached completion at byte `cursor` of `text`, without any request.
    pub fn lookup(&self, doc: &str, text: &str, cursor: usize) -> Option<String> {
        let (before, after) = text.split_at(context::floor_boundary(text, cursor));
        self.cached(doc, before, after)
    }

    fn cached(&self, doc: &str, before: &str, after: &str) -> Option<String> {
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(doc, before, after)
    }

    /// Runs the completion. `Err(Cancelled)` when superseded or cancelled.
    pub async fn complete(
        &self,
        http: &reqwest::Client,
        req: CompletionRequest,
        ticket: Ticket,
    ) -> Result<Outcome, CompletionError> {
        let _release = Release {
            svc: self,
            ticket: &ticket,
        };
        let cursor = context::floor_boundary(&req.text, req.cursor);
        let (before, after) = req.text.split_at(cursor);
        if let Some(text) = self.cached(&req.doc, before, after) {
            return Ok(Outcome { text, cached: true });
        }
        let provider = req.endpoint.provider();
        let work = async {
            if !req.debounce.is_zero() {
                tokio::time::sleep(req.debounce).await;
            }
            let ctx = context::build(&req.text, cursor, &req.path, &req.others, &req.context);
            let raw = match self.runtime.get_or_init(start_runtime) {
                Some(rt) => {
                    let (http, ep, limits) = (http.clone(), req.endpoint.clone(), req.limits);
                    let ctx = ctx.clone();
                    let mut task = AbortOnDrop(
                        rt.spawn(async move { fim::fetch(&http, &ep, &ctx, limits).await }),
                    );
                    match (&mut task.0).await {
                        Ok(r) => r?,
                        Err(e) => {
                            return Err(CompletionError::Protocol {
                                provider,
                                message: format!("completion task failed: {e}"),
                            })
                        }
                    }
                }
                None => fim::fetch(http, &req.endpoint, &ctx, req.limits).await?,
            };
            Ok::<_, CompletionError>(post::clean(&raw, &ctx))
        };
        let text = tokio::select! {
            biased;
            _ = ticket.token.cancelled() => return Err(CompletionError::Cancelled),
            _ = tokio::time::sleep(req.timeout) => return Err(CompletionError::Timeout {
                provider,
                ms: req.timeout.as_millis() as u64,
            }),
            r = work => r?,
        };
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(&req.doc, before, after, &text);
        Ok(Outcome {
            text,
            cached: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_ticket_cancels_the_older_one() {
        let s = CompletionService::new();
        let a = s.begin("file:///a");
        let b = s.begin("file:///b");
        let a2 = s.begin("file:///a");
        assert!(a.token.is_cancelled());
        assert!(!b.token.is_cancelled());
        assert!(!a2.token.is_cancelled());
        assert_eq!(s.in_flight(), 2);
        s.forget("file:///b");
        assert!(b.token.is_cancelled());
    }
}
